//! The origin as its real binary: graceful shutdown on SIGTERM, the start-up refusal without
//! secrets, and `seckillctl` against it. (Built by `cargo xtask build`: release binaries.)

use std::process::Command;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use seckill_origin::client::HttpClient;
use seckill_tests::origin_proc::OriginProc;
use seckill_tests::paths;
use seckill_tests::redis_proc::RedisProc;

fn free_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], seckill_tests::net::free_port()))
}

fn seckillctl(origin: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(paths::native_bin("seckillctl"))
        .arg("--origin")
        .arg(origin)
        .args(args)
        .env("SECKILL_ADMIN_TOKEN", seckill_core::demo::ADMIN_TOKEN)
        .output()
        .expect("seckillctl runs (built by `cargo xtask build`)");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn refuses_to_start_without_secrets() {
    let out = Command::new(paths::native_bin("seckill-origin"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SECKILL_TICKET_SECRET")
        .env_remove("SECKILL_ADMIN_TOKEN")
        .env_remove("SECKILL_EDGE_KEY")
        .env_remove("SECKILL_DEV")
        .output()
        .expect("seckill-origin runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SECKILL_TICKET_SECRET") && err.contains("--dev"), "{err}");
}

/// A Redis Cluster node list that is malformed, or reaches no cluster, is a start-up error that
/// names it (not an origin that starts and answers `busy` all sale long).
#[test]
fn a_bad_cluster_node_list_is_a_start_up_error() {
    let start = |list: &str| {
        let out = Command::new(paths::native_bin("seckill-origin"))
            .args(["--dev", "--listen", "127.0.0.1:0", "--redis-cluster", list, "--redis-timeout-ms", "300"])
            .env_remove("SECKILL_REDIS_URL")
            .output()
            .expect("seckill-origin runs");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = start("127.0.0.1");
    assert!(!ok && err.contains("--redis-cluster") && err.contains("not host:port"), "{err}");
    let (ok, err) = start(" , ");
    assert!(!ok && err.contains("node list is empty"), "{err}");
    // A port with nothing listening: no cluster to read the slots from.
    let nobody = seckill_tests::net::free_port();
    let (ok, err) = start(&format!("127.0.0.1:{nobody}"));
    assert!(!ok && err.contains(&format!("cannot use Redis at cluster redis://127.0.0.1:{nobody}")), "{err}");
    // A standalone Redis is not a cluster either.
    let dir = paths::scratch_dir("not-a-cluster");
    let redis = RedisProc::start(seckill_tests::net::free_port(), &dir, seckill_tests::redis_proc::STACK_FSYNC).unwrap();
    let (ok, err) = start(&format!("127.0.0.1:{}", redis.port()));
    assert!(!ok && err.contains("cannot use Redis at cluster"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_buys_finish() {
    let dir = paths::scratch_dir("sigterm");
    let redis = RedisProc::start(seckill_tests::net::free_port(), &dir, seckill_tests::redis_proc::STACK_FSYNC).unwrap();
    let mut origin = OriginProc::start(&paths::native_bin("seckill-origin"), free_addr(), &redis.url(), &dir.join("origin.log")).unwrap();
    let url = origin.url();
    let (ok, _, err) = seckillctl(&url, &["sale", "create", "term-1", "--stock", "50", "--starts-at", "now", "--ends-at", "+1h"]);
    assert!(ok, "{err}");
    // Hold Redis so the buys are in flight inside the origin when SIGTERM arrives.
    redis.pause();
    let http = HttpClient::new(Duration::from_secs(10));
    let buys = tokio::spawn({
        let http = http.clone();
        let url = format!("{url}/api/sales/term-1/orders");
        async move {
            stream::iter(0..20)
                .map(|i| {
                    let (http, url) = (http.clone(), url.clone());
                    async move {
                        let uid = format!("t{i}");
                        http.send(hyper::Method::POST, &url, &[("x-seckill-edge-key", seckill_core::demo::EDGE_KEY), ("x-seckill-uid", &uid)], "").await
                    }
                })
                .buffer_unordered(20)
                .collect::<Vec<_>>()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let term = std::thread::spawn(move || {
        origin.terminate(Duration::from_secs(10));
        origin
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    redis.resume();
    let answers = buys.await.unwrap();
    let _origin = term.join().unwrap();
    // Every in-flight request got a real answer (not a reset): won, or busy if its fence passed.
    for a in &answers {
        let a = a.as_ref().expect("in-flight request answered during graceful shutdown");
        assert!(a.status == 201 || a.status == 503, "{} {}", a.status, a.text());
    }
    // Nothing half-done: orders in Redis are exactly the `won` answers.
    let won = answers.iter().filter(|a| a.as_ref().map(|a| a.status == 201).unwrap_or(false)).count();
    let mut c = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let orders: usize = redis::cmd("HLEN").arg("sk:{term-1}:orders").query(&mut c).unwrap();
    assert_eq!(orders, won);
    // And the origin is gone: new connections are refused.
    assert!(http.get(&format!("{url}/api/sales/term-1"), &[]).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seckillctl_creates_shows_and_flips() {
    let dir = paths::scratch_dir("ctl");
    let redis = RedisProc::start(seckill_tests::net::free_port(), &dir, seckill_tests::redis_proc::STACK_FSYNC).unwrap();
    let origin = OriginProc::start(&paths::native_bin("seckill-origin"), free_addr(), &redis.url(), &dir.join("origin.log")).unwrap();
    let url = origin.url();
    let (ok, out, err) = seckillctl(&url, &["sale", "create", "ctl-1", "--stock", "7", "--starts-at", "+1h", "--ends-at", "+2h"]);
    assert!(ok, "{err}");
    assert!(out.contains("ctl-1") && out.contains("7 total, 7 left") && out.contains("upcoming"), "{out}");
    let (ok, out, _) = seckillctl(&url, &["--json", "sale", "show", "ctl-1"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["stock_total"].as_u64(), v["sold_out_flag"].as_bool()), (Some(7), Some(false)));
    let (ok, out, _) = seckillctl(&url, &["sold-out", "on", "ctl-1"]);
    assert!(ok && out.contains("yes (SRE switch)"), "{out}");
    let (ok, out, _) = seckillctl(&url, &["sold-out", "off", "ctl-1", "--json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["sold_out_flag"], false);
    let (ok, out, _) = seckillctl(&url, &["sale", "list"]);
    assert!(ok && out.lines().any(|l| l.starts_with("ctl-1")), "{out}");
    // Output into a pipe closed at once (`seckillctl sale list | head -0`): no panic, exit 0.
    let mut child = Command::new(paths::native_bin("seckillctl"))
        .args(["--origin", &url, "sale", "list"])
        .env("SECKILL_ADMIN_TOKEN", seckill_core::demo::ADMIN_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is written
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success() && !err.contains("panicked"), "{:?} {err}", done.status);
    // Errors are clear and exit non-zero.
    let (ok, _, err) = seckillctl(&url, &["sale", "show", "nosuch"]);
    assert!(!ok && err.contains("404") && err.contains("no such sale"), "{err}");
    let (ok, _, err) = seckillctl(&url, &["sale", "create", "ctl-2", "--stock", "1", "--starts-at", "tomorrow"]);
    assert!(!ok && err.contains("tomorrow"), "{err}");
    let (ok, _, err) = seckillctl(&url, &["sale", "create", "ctl-2", "--stock", "1", "--starts-at", "+2h", "--ends-at", "+1h"]);
    assert!(!ok && err.contains("ends_at"), "{err}");
    let out = Command::new(paths::native_bin("seckillctl")).args(["--origin", &url, "--token", "wrong", "sale", "list"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = Command::new(paths::native_bin("seckillctl")).args(["--origin", &url, "sale", "list"]).env_remove("SECKILL_ADMIN_TOKEN").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("admin token required"));
}
