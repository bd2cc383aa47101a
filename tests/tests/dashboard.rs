//! The Grafana dashboard (`envoy/monitoring/grafana-sale.json`) against a real Prometheus: the
//! stack (Redis, the origin binary, Envoy with the filter) runs a sale with a crowd (and a few
//! forged tickets), Debian's Prometheus scrapes it with the project's config and rules
//! (`seckill_stack::prometheus_proc`, as `cargo xtask up --monitoring` does), and every panel's
//! query must succeed and return data. Also: both scrape jobs are up, every rule evaluates without
//! error, and the Envoy Wasm metric names the VM alert relies on exist.

use std::time::{Duration, Instant};

use seckill_origin::client::HttpClient;
use seckill_stack::prometheus_proc::{PrometheusProc, ScrapeTargets};
use seckill_tests::crowd::Crowd;
use seckill_tests::net::free_port;
use seckill_tests::stack_rig::{StackOptions, StackRig};

/// Every `expr` of every panel, with its panel's title.
fn panel_queries() -> Vec<(String, String)> {
    let path = seckill_tests::paths::workspace().join("envoy/monitoring/grafana-sale.json");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push((p["title"].as_str().unwrap().to_owned(), t["expr"].as_str().unwrap().to_owned()));
        }
    }
    out
}

fn encode(q: &str) -> String {
    q.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// `GET /api/v1/query`: Ok(result array) or Err(why).
async fn query(http: &HttpClient, prom: &str, q: &str) -> Result<Vec<serde_json::Value>, String> {
    let a = http.get(&format!("{prom}/api/v1/query?query={}", encode(q)), &[]).await.map_err(|e| e.to_string())?;
    let v = a.json_value();
    if v["status"] != "success" {
        return Err(format!("{}: {}", a.status, a.text()));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// A series whose value is a number (not NaN: a panel would draw nothing).
fn finite(series: &serde_json::Value) -> bool {
    series["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).is_some_and(f64::is_finite)
}

/// Poll `q` until it returns a finite value (the rate windows need two scrapes, the rules an evaluation).
async fn query_until_data(http: &HttpClient, prom: &str, q: &str, within: Duration) -> Result<Vec<serde_json::Value>, String> {
    let deadline = Instant::now() + within;
    loop {
        match query(http, prom, q).await {
            Ok(r) if r.iter().any(finite) => return Ok(r),
            Ok(r) if Instant::now() > deadline => return Err(format!("no data (only {r:?})")),
            Err(e) if Instant::now() > deadline => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn forged_tickets(rig: &StackRig, sku: &str, n: usize) {
    let http = HttpClient::new(Duration::from_secs(5));
    let url = format!("{}/api/sales/{sku}/orders", rig.edge_url());
    for i in 0..n {
        let _ = http.send(hyper::Method::POST, &url, &[("authorization", &format!("Bearer v1.bot{i}.9999999999.forged"))], "").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_after_a_crowd() {
    let rig = StackRig::start("dashboard", StackOptions::default()).await.unwrap();
    let dir = seckill_tests::paths::scratch_dir("dashboard-prometheus");
    let admin = rig.envoy.as_ref().unwrap().admin;
    let targets = ScrapeTargets { edges: vec![admin], origins: vec![rig.origin_addr], origin_token: seckill_core::demo::ADMIN_TOKEN.into(), interval_s: 1 };
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let prom = tokio::task::block_in_place(|| PrometheusProc::start(listen, &targets, &dir)).unwrap();
    let url = prom.url();

    // Enough stock and shoppers that buys keep reaching the origin while the panels are queried
    // (each shopper wins once, then the edge answers its repeats): commits, rates and latency live.
    rig.open_sale("dash-1", 100_000).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "dash-1", "dash-shopper-", 20_000);
    let run = crowd.start(8, Duration::from_millis(10));
    forged_tickets(&rig, "dash-1", 30).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    let http = HttpClient::new(Duration::from_secs(5));
    let mut failures = Vec::new();
    for (title, q) in panel_queries() {
        match query_until_data(&http, &url, &q, Duration::from_secs(30)).await {
            Ok(r) => eprintln!("dashboard: {title}: `{q}` -> {} series, e.g. {}", r.len(), r[0]),
            Err(e) => failures.push(format!("{title}: `{q}`: {e}")),
        }
    }
    run.stop().await;
    assert!(failures.is_empty(), "panel queries failing against a real Prometheus:\n{}", failures.join("\n"));

    // After the crowd, Prometheus' sold count reaches exactly the crowd's wins.
    let won = crowd.attempts().iter().filter(|a| a.is("won")).count();
    assert!(won > 0, "the crowd bought nothing: the test would prove little");
    let seen = query_until_data(&http, &url, &format!("seckill:origin_won:total == {won}"), Duration::from_secs(20)).await;
    assert!(seen.is_ok(), "Prometheus never saw the crowd's {won} wins: {seen:?}");
    check_targets_rules_and_wasm_names(&http, &url).await;
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Both jobs up; every recording and alert rule evaluates (`health: ok`); the Envoy Wasm VM
/// counters SeckillEdgeWasmVmFailure reads exist under the names it uses.
async fn check_targets_rules_and_wasm_names(http: &HttpClient, url: &str) {
    let up = query(http, url, "up").await.unwrap();
    assert_eq!(up.len(), 2, "{up:?}");
    assert!(up.iter().all(|s| s["value"][1] == "1"), "a scrape target is down: {up:?}");
    let rules = http.get(&format!("{url}/api/v1/rules"), &[]).await.unwrap().json_value();
    let mut count = 0;
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            count += 1;
            assert_eq!(r["health"], "ok", "rule {} does not evaluate: {}", r["name"], r["lastError"]);
        }
    }
    assert_eq!(count, 23, "every rule of envoy/monitoring/rules/ is loaded");
    let created = query(http, url, "envoy_wasm_envoy_wasm_runtime_v8_created").await.unwrap();
    assert!(!created.is_empty(), "Envoy exports no envoy_wasm_envoy_wasm_runtime_v8_created: fix SeckillEdgeWasmVmFailure");
    let uptime = query(http, url, "envoy_server_uptime").await.unwrap();
    assert!(!uptime.is_empty(), "Envoy exports no envoy_server_uptime: fix SeckillEdgeWasmVmFailure");
}
