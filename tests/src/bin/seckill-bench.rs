//! `seckill-bench`: the benchmarks behind `cargo xtask bench`. Each prints figures measured side by
//! side in one run (the machine is shared and noisy, so only ratios within a run mean anything) and
//! writes them to `target/bench/<name>.json`.
//!
//! - `origin`: committed buys per second through the origin (HTTP, many concurrent connections,
//!   pipelined into Redis) against `redis-benchmark` running the same `buy.lua` with EVALSHA on the
//!   same Redis; and the origin with `appendfsync always` against `everysec`.
//! - `edge`: requests/s through one Envoy without a filter, with the native per-uid
//!   `local_ratelimit`, and with the seckill filter (passing and throttling), as ratios; then the
//!   memory of 1,000,000 distinct uids against the filter's bound (`seckill_tests::bench::edge`);
//!   and the challenge's check at the edge against the ticket check, and its solve times
//!   (`seckill_tests::bench::challenge`; `edge-challenge` runs that part alone).
//!   `edge-throughput` and `edge-memory` run one part; `edge-memory-10m` runs the memory part with
//!   10,000,000 uids and a reading every million (`target/bench/edge-memory-10m.json`);
//!   `edge-stack` compares each build with no filter on the stack's own Envoy config
//!   (`seckill_tests::bench::edge_stack`, `target/bench/edge-stack.json`).
//! - `cluster`: commits/s of a 1,000-sku sale on a standalone Redis, the 3-master cluster, and the
//!   cluster with the failover-safe `won` rule (`WAIT 1 150`), and one hot sku's commit rate
//!   (`seckill_tests::bench::cluster`, `target/bench/cluster.json`).
//! - `soak [minutes]` (`cargo xtask soak`): the whole stack under a steady crowd whose data stays
//!   bounded, the memory of Envoy, the origin and Redis sampled every 10 s and its trend checked
//!   (`seckill_tests::bench::soak`, `target/bench/soak.json`).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seckill_origin::client::HttpClient;
use seckill_tests::origin_proc::OriginProc;
use seckill_tests::paths;
use seckill_tests::redis_proc::{Fsync, RedisProc};

const CONNECTIONS: usize = 64;
const SECONDS: u64 = 4;
const ADMIN: &str = seckill_core::demo::ADMIN_AUTHORIZATION;

fn write_result(name: &str, value: &serde_json::Value) {
    let dir = paths::target_dir().join("bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}.json"));
    if std::fs::write(&path, serde_json::to_string_pretty(value).unwrap_or_default()).is_ok() {
        println!("  written to {}", path.display());
    }
}

async fn create_sale(http: &HttpClient, origin: &str, sku: &str, stock: u64) -> anyhow::Result<()> {
    let now = seckill_tests::now_ms();
    let body = serde_json::json!({"stock": stock, "starts_at": now - 1000, "ends_at": now + 3_600_000});
    let a = http.put_json(&format!("{origin}/admin/sales/{sku}"), &[("authorization", ADMIN)], &body).await?;
    anyhow::ensure!(a.status == 200, "create sale: {}", a.text());
    Ok(())
}

/// Buys through the origin from `CONNECTIONS` concurrent clients for `SECONDS`: committed per second.
async fn origin_rate(origin: &str, sku: &str, round: usize) -> anyhow::Result<f64> {
    let http = HttpClient::new(Duration::from_secs(10));
    let won = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (http, won, other) = (http.clone(), won.clone(), other.clone());
        let url = format!("{origin}/api/sales/{sku}/orders");
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                let uid = format!("r{round}c{c}n{i}");
                i += 1;
                match http.send(hyper::Method::POST, &url, &[("x-seckill-edge-key", seckill_core::demo::EDGE_KEY), ("x-seckill-uid", &uid)], "").await {
                    Ok(a) if a.status == 201 => won.fetch_add(1, Ordering::Relaxed),
                    _ => other.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let o = other.load(Ordering::Relaxed);
    anyhow::ensure!(o == 0, "{o} buys did not commit during the benchmark");
    Ok(won.load(Ordering::Relaxed) as f64 / secs)
}

/// `redis-benchmark` running buy.lua with EVALSHA (random uids) on the same Redis: calls per second.
fn raw_rate(redis: &RedisProc, sku: &str, sha: &str) -> anyhow::Result<f64> {
    let keys: Vec<String> = ["sale", "orders", "held", "history", "pending"].iter().map(|k| format!("sk:{{{sku}}}:{k}")).collect();
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &redis.port().to_string(), "-c", &CONNECTIONS.to_string(), "-n", "150000", "-r", "1000000000", "--csv"])
        .arg("EVALSHA").arg(sha).arg("5").args(&keys).arg(sku).arg("raw__rand_int__").arg("0")
        .output()?;
    anyhow::ensure!(out.status.success(), "redis-benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let rps = line.split(',').nth(1).map(|f| f.trim_matches('"')).and_then(|f| f.parse::<f64>().ok());
    rps.ok_or_else(|| anyhow::anyhow!("cannot read redis-benchmark's output: {text}"))
}

fn script_load(redis: &RedisProc) -> anyhow::Result<String> {
    let mut c = redis::Client::open(redis.url())?.get_connection()?;
    let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(include_str!("../../../origin/src/lua/buy.lua")).query(&mut c)?;
    Ok(sha)
}

fn orders(redis: &RedisProc, sku: &str) -> anyhow::Result<u64> {
    let mut c = redis::Client::open(redis.url())?.get_connection()?;
    Ok(redis::cmd("HLEN").arg(format!("sk:{{{sku}}}:orders")).query(&mut c)?)
}

struct Stack {
    redis: RedisProc,
    origin: OriginProc,
}

fn start_stack(name: &str, fsync: Fsync) -> anyhow::Result<Stack> {
    let dir = paths::scratch_dir(name);
    let redis = RedisProc::start(seckill_tests::net::free_port(), &dir, fsync)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], seckill_tests::net::free_port()));
    let origin = OriginProc::start(&paths::native_bin("seckill-origin"), addr, &redis.url(), &dir.join("origin.log")).map_err(anyhow::Error::msg)?;
    Ok(Stack { redis, origin })
}

async fn bench_origin() -> anyhow::Result<()> {
    println!("origin benchmark: {CONNECTIONS} concurrent clients, {SECONDS} s per origin round, rounds alternate");
    let http = HttpClient::new(Duration::from_secs(10));
    let always = start_stack("bench-always", Fsync::Always)?;
    let origin = always.origin.url();
    create_sale(&http, &origin, "bench", 100_000_000).await?;
    create_sale(&http, &origin, "rawbench", 100_000_000).await?;
    let sha = script_load(&always.redis)?;
    let (mut raw, mut via) = (Vec::new(), Vec::new());
    for round in 0..2 {
        raw.push(raw_rate(&always.redis, "rawbench", &sha)?);
        via.push(origin_rate(&origin, "bench", round).await?);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (raw_m, via_m) = (mean(&raw), mean(&via));
    let committed = orders(&always.redis, "bench")?;
    drop(always);

    let everysec = start_stack("bench-everysec", Fsync::EverySec)?;
    let origin2 = everysec.origin.url();
    create_sale(&http, &origin2, "bench", 100_000_000).await?;
    create_sale(&http, &origin2, "rawbench", 100_000_000).await?;
    let sha2 = script_load(&everysec.redis)?;
    let raw_es = raw_rate(&everysec.redis, "rawbench", &sha2)?;
    let via_es = origin_rate(&origin2, "bench", 9).await?;
    drop(everysec);

    println!("  raw Redis, EVALSHA buy.lua (redis-benchmark -c {CONNECTIONS}), appendfsync always: {:>9.0} commits/s  (rounds {:.0?})", raw_m, raw);
    println!("  origin, HTTP POST buys, appendfsync always:                             {:>9.0} commits/s  (rounds {:.0?})", via_m, via);
    println!("  ratio origin / raw Redis:                                                {:>9.2}  (target >= 0.50)", via_m / raw_m);
    println!("  appendfsync everysec: raw {:.0}/s, origin {:.0}/s; origin always/everysec = {:.2}", raw_es, via_es, via_m / via_es);
    println!("  orders committed in the always rounds: {committed} (each counted buy was a 201)");
    let mut r = BTreeMap::new();
    r.insert("connections", serde_json::json!(CONNECTIONS));
    r.insert("raw_redis_commits_per_s", serde_json::json!(raw_m));
    r.insert("origin_commits_per_s", serde_json::json!(via_m));
    r.insert("ratio_origin_to_raw", serde_json::json!(via_m / raw_m));
    r.insert("raw_everysec_commits_per_s", serde_json::json!(raw_es));
    r.insert("origin_everysec_commits_per_s", serde_json::json!(via_es));
    r.insert("origin_always_to_everysec", serde_json::json!(via_m / via_es));
    write_result("origin", &serde_json::json!(r));
    Ok(())
}

async fn bench_edge(throughput: bool, memory: bool) -> anyhow::Result<()> {
    let mut r = serde_json::Map::new();
    if throughput {
        r.insert("throughput".into(), seckill_tests::bench::edge::throughput().await?);
        r.insert("challenge".into(), tokio::task::spawn_blocking(seckill_tests::bench::challenge::run).await?);
    }
    if memory {
        use seckill_tests::bench::edge::{MEMORY_CHECKPOINT_EVERY, MEMORY_UIDS};
        // The build measured on the `filter` listener: `SECKILL_EDGE_BUILD` (wasm by default).
        let build = seckill_stack::edge_build::EdgeBuild::from_env().map_err(anyhow::Error::msg)?;
        r.insert("memory_1m_uids".into(), seckill_tests::bench::edge::memory(build, MEMORY_UIDS, MEMORY_CHECKPOINT_EVERY).await?);
    }
    write_result("edge", &serde_json::Value::Object(r));
    Ok(())
}

/// 10,000,000 distinct uids through the edge, a reading every million, for each build of the
/// filter (`SECKILL_EDGE_BUILD` picks one; unset: native, then proxy-wasm, each on a fresh Envoy),
/// then both side by side; fails when Envoy's memory grew past the filter's stated bound at any
/// reading of any build.
async fn bench_edge_memory_10m() -> anyhow::Result<()> {
    use seckill_tests::bench::edge::{memory, memory_builds, side_by_side, MEMORY_10M_CHECKPOINT_EVERY, MEMORY_10M_UIDS};
    let mut runs = Vec::new();
    for build in memory_builds().map_err(anyhow::Error::msg)? {
        runs.push(memory(build, MEMORY_10M_UIDS, MEMORY_10M_CHECKPOINT_EVERY).await?);
    }
    println!("edge memory, 10M distinct uids, growth over \"before\", side by side:\n{}", side_by_side(&runs));
    let by_build: serde_json::Map<String, serde_json::Value> = runs.iter().map(|r| (r["edge_build"].as_str().unwrap_or("?").to_owned(), r.clone())).collect();
    write_result("edge-memory-10m", &serde_json::Value::Object(by_build));
    anyhow::ensure!(runs.iter().all(|r| r["within_bound"] == serde_json::Value::Bool(true)), "Envoy's memory grew past the filter's stated bound (see above)");
    Ok(())
}

/// `soak [minutes]`: the whole stack under a steady, bounded crowd; fails when memory keeps growing.
async fn soak(minutes: Option<String>) -> anyhow::Result<()> {
    let minutes = match minutes {
        None => seckill_tests::bench::soak::DEFAULT_MINUTES,
        Some(m) => m.parse::<u64>().map_err(|_| anyhow::anyhow!("soak: minutes must be a whole number, got `{m}`"))?,
    };
    let settings = seckill_tests::bench::soak::SoakSettings::for_minutes(minutes)?;
    let report = seckill_tests::bench::soak::run(&settings).await?;
    write_result("soak", &report.to_json(&settings));
    report.verdict()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let result = match what.as_str() {
        "origin" => bench_origin().await,
        "edge" => bench_edge(true, true).await,
        "edge-throughput" => bench_edge(true, false).await,
        "edge-memory" => bench_edge(false, true).await,
        "edge-memory-10m" => bench_edge_memory_10m().await,
        "edge-stack" => seckill_tests::bench::edge_stack::run().await.map(|r| write_result("edge-stack", &r)),
        "edge-challenge" => match tokio::task::spawn_blocking(seckill_tests::bench::challenge::run).await {
            Ok(r) => {
                write_result("edge-challenge", &r);
                Ok(())
            }
            Err(e) => Err(e.into()),
        },
        "cluster" => seckill_tests::bench::cluster::run().await.map(|r| write_result("cluster", &r)),
        "soak" => soak(std::env::args().nth(2)).await,
        "all" => match bench_origin().await {
            Ok(()) => bench_edge(true, true).await,
            Err(e) => Err(e),
        },
        "demo-crowd" => {
            eprintln!("the crowd simulator is not built yet (issue: flash-sale simulator)");
            Ok(())
        }
        other => Err(anyhow::anyhow!("unknown benchmark `{other}`: expected origin, edge, edge-throughput, edge-memory, edge-memory-10m, edge-stack, edge-challenge, cluster, soak or all")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seckill-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
