//! `seckillctl watch SKU` against the real stack (origin binary, Envoy with the filter, Redis) and a
//! real Prometheus: the view shows the sale's figures, the bar and the edges' decisions per second;
//! it keeps refreshing through an origin restart and a dead Prometheus, saying so on screen; a wrong
//! token, an unknown sku and an unreachable origin end it with one line and a non-zero exit.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use seckill_stack::prometheus_proc::{PrometheusProc, ScrapeTargets};
use seckill_tests::crowd::Crowd;
use seckill_tests::net::free_port;
use seckill_tests::stack_rig::{StackOptions, StackRig};

fn seckillctl(origin: &str, token: &str, args: &[&str]) -> Command {
    let mut c = Command::new(seckill_tests::paths::native_bin("seckillctl"));
    c.env_remove("SECKILL_ADMIN_TOKEN").env_remove("SECKILL_PROMETHEUS").args(["--origin", origin, "--token", token, "watch"]).args(args);
    c
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Bad input: one clear line on stderr, nothing on stdout, exit code 1.
fn assert_fails(o: Output, expected: &str) {
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("seckillctl: ") && err.contains(expected), "expected `{expected}` in: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_unknown_sku_and_dead_origin_fail_in_one_line() {
    let rig = StackRig::start("watch-bad", StackOptions::default()).await.unwrap();
    rig.open_sale("w-bad", 5).await.unwrap();
    let origin = rig.origin_url();
    assert_fails(seckillctl(&origin, "wrong-token", &["w-bad", "--once"]).output().unwrap(), "refused the admin token (401)");
    assert_fails(seckillctl(&origin, seckill_core::demo::ADMIN_TOKEN, &["no-such-sku", "--once"]).output().unwrap(), "no sale `no-such-sku` on the origin (404)");
    let dead = format!("http://127.0.0.1:{}", free_port());
    assert_fails(seckillctl(&dead, seckill_core::demo::ADMIN_TOKEN, &["w-bad", "--once"]).output().unwrap(), &format!("cannot reach the origin at {dead}"));
    let ok = seckillctl(&origin, seckill_core::demo::ADMIN_TOKEN, &["w-bad", "--once"]).output().unwrap();
    assert!(ok.status.success(), "{:?}", text(&ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_the_sale_with_edge_rates_from_prometheus() {
    let rig = StackRig::start("watch-live", StackOptions::default()).await.unwrap();
    let dir = seckill_tests::paths::scratch_dir("watch-prometheus");
    let targets = ScrapeTargets { edges: vec![rig.envoy.as_ref().unwrap().admin], origins: vec![rig.origin_addr], origin_token: seckill_core::demo::ADMIN_TOKEN.into(), interval_s: 1 };
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let prom = tokio::task::block_in_place(|| PrometheusProc::start(listen, &targets, &dir)).unwrap();
    rig.open_sale("w-live", 50).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "w-live", "watcher-", 400);
    let run = crowd.start(6, Duration::from_millis(10));
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let o = seckillctl(&rig.origin_url(), seckill_core::demo::ADMIN_TOKEN, &["w-live", "--once", "--prometheus", &prom.url()]).output().unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out}\n{err}");
        let edge_moving = out.lines().any(|l| l.starts_with("edge/s     ") && l.split_whitespace().any(|w| w.parse::<f64>().is_ok_and(|x| x > 0.0)));
        if edge_moving && !out.contains("50 total, 50 left") {
            break out;
        }
        assert!(Instant::now() < deadline, "no edge rates or sales in the view:\n{out}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    run.stop().await;
    eprintln!("{out}");
    assert!(out.contains("stock      50 total"), "{out}");
    assert!(out.contains("toward sold out") && out.contains("[#"), "a bar with progress: {out}");
    assert!(out.contains("origin     ") && out.contains("won "), "origin outcomes: {out}");
    assert!(!out.contains("WARNING"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_refreshing_through_an_origin_restart_and_a_dead_prometheus() {
    let mut rig = StackRig::start("watch-faults", StackOptions::default()).await.unwrap();
    rig.open_sale("w-faults", 10).await.unwrap();
    let dead_prometheus = format!("http://127.0.0.1:{}", free_port());
    let child = seckillctl(&rig.origin_url(), seckill_core::demo::ADMIN_TOKEN, &["w-faults", "--count", "24", "--interval", "300ms", "--prometheus", &dead_prometheus])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    rig.kill_origin();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rig.start_origin().unwrap();
    let o = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "watch gave up: {out}\n{err}");
    let frames: Vec<&str> = out.split("\n\n").filter(|f| f.starts_with("seckillctl watch")).collect();
    assert_eq!(frames.len(), 24, "every refresh shown:\n{out}");
    assert!(frames.iter().any(|f| f.contains("WARNING    origin unreachable since")), "the outage is shown:\n{out}");
    assert!(frames.iter().all(|f| f.contains("stock      10 total")), "last known figures stay on screen:\n{out}");
    assert!(frames.iter().all(|f| f.contains("WARNING    Prometheus unreachable since")), "{out}");
    let last = frames.last().unwrap();
    assert!(!last.contains("origin unreachable"), "the view recovered once the origin was back:\n{last}");
}
