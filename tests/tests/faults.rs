//! The fault matrix: a crowd through the real stack (Envoy + filter with 2 workers, the origin
//! binary, Redis with AOF `always`) while something breaks; afterwards every invariant of the
//! contract is checked against Redis (see `seckill_tests::crowd::check_invariants`).
//! Each test prints what it observed, for the closing notes.

use std::time::Duration;

use seckill_tests::crowd::{check_invariants, wait_until, Crowd};
use seckill_tests::stack_rig::{StackOptions, StackRig};

const WORKERS: usize = 24;
const PAUSE: Duration = Duration::from_millis(20);

async fn sell_out(rig: &StackRig, crowd: &Crowd, sku: &str, within: Duration) -> bool {
    let run = crowd.start(WORKERS, PAUSE);
    let t0 = std::time::Instant::now();
    let mut sold_out = false;
    while t0.elapsed() < within {
        if rig.figures(sku).await.map(|f| f["stock_left"] == 0).unwrap_or(false) {
            sold_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.stop().await;
    sold_out
}

/// 1. Redis SIGKILLed mid-sale and restarted: `busy` while it is down, the sale resumes, every
/// `won` survives (AOF, appendfsync always), all stock sold in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_sale() {
    let mut rig = StackRig::start("fault-redis-kill", StackOptions::default()).await.unwrap();
    rig.open_sale("f1", 1500).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "f1", "k", 4000);
    let run = crowd.start(WORKERS, PAUSE);
    tokio::time::sleep(Duration::from_millis(800)).await;
    rig.redis.kill9();
    let down_at = seckill_tests::now_ms();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let restart_at = seckill_tests::now_ms();
    rig.redis.restart().unwrap();
    let up_at = seckill_tests::now_ms();
    let recovered = wait_until(Duration::from_secs(10), || crowd.between(up_at, u64::MAX).iter().any(|a| a.is("won"))).await;
    run.stop().await;
    assert!(sell_out(&rig, &crowd, "f1", Duration::from_secs(30)).await, "sale did not resume to sell out");
    // Answers that arrived while Redis was down (a request sent then may legitimately wait for the
    // reconnection and win right after the restart).
    let during: Vec<_> = crowd.attempts().into_iter().filter(|a| a.done_ms > down_at + 50 && a.done_ms < restart_at).collect();
    let busy = during.iter().filter(|a| a.is("busy")).count();
    assert!(busy > 0, "no busy answers while Redis was down");
    let won_down: Vec<_> = during.iter().filter(|a| a.is("won")).collect();
    assert!(won_down.is_empty(), "won while Redis was down (killed at {down_at}, restarted at {restart_at}): {won_down:?}");
    let orders = rig.orders_in_redis("f1").unwrap();
    let c = check_invariants(&crowd.attempts(), &orders, 1500).unwrap();
    assert_eq!(c.orders, 1500, "all stock sold");
    println!("redis SIGKILL: {c:?}; busy while down {busy}/{}; first won {:?} after restart", during.len(), recovered);
}

/// 2. Redis slow (SIGSTOP for 1.5 s): the origin answers `busy` within its bound (300 ms +
/// 200 ms grace) and commits nothing late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_slow_gives_fast_busy() {
    let rig = StackRig::start("fault-redis-slow", StackOptions::default()).await.unwrap();
    rig.open_sale("f2", 1500).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "f2", "s", 4000);
    let run = crowd.start(WORKERS, PAUSE);
    tokio::time::sleep(Duration::from_millis(600)).await;
    rig.redis.pause();
    let paused_at = seckill_tests::now_ms();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    rig.redis.resume();
    let resumed_at = seckill_tests::now_ms();
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.stop().await;
    let busy: Vec<_> = crowd.between(paused_at, resumed_at).into_iter().filter(|a| a.is("busy")).collect();
    assert!(!busy.is_empty(), "no busy while Redis was paused");
    let slowest = busy.iter().map(|a| a.latency_ms()).max().unwrap_or(0);
    assert!(slowest < 1_200, "busy took {slowest} ms (bound: 500 ms + scheduling)");
    assert!(sell_out(&rig, &crowd, "f2", Duration::from_secs(20)).await);
    let c = check_invariants(&crowd.attempts(), &rig.orders_in_redis("f2").unwrap(), 1500).unwrap();
    assert_eq!(c.orders, 1500);
    println!("redis paused 1.5 s: {c:?}; {} busy, slowest busy {slowest} ms", busy.len());
}

/// 3a. The origin SIGKILLed and restarted mid-sale: the edge answers `busy` fast while it is
/// down (nothing reached it), the sale resumes, nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_killed_and_restarted() {
    let mut rig = StackRig::start("fault-origin-kill", StackOptions::default()).await.unwrap();
    rig.open_sale("f3", 1500).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "f3", "o", 4000);
    let run = crowd.start(WORKERS, PAUSE);
    tokio::time::sleep(Duration::from_millis(800)).await;
    rig.kill_origin();
    let down_at = seckill_tests::now_ms();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let restart_at = seckill_tests::now_ms();
    rig.start_origin().unwrap();
    let up_at = seckill_tests::now_ms();
    let recovered = wait_until(Duration::from_secs(10), || crowd.between(up_at, u64::MAX).iter().any(|a| a.is("won"))).await;
    run.stop().await;
    let during = crowd.between(down_at + 50, restart_at);
    let busy: Vec<_> = during.iter().filter(|a| a.is("busy")).collect();
    assert!(!busy.is_empty(), "no busy while the origin was down: {:?}", during.iter().take(3).collect::<Vec<_>>());
    assert!(busy.iter().all(|a| a.by.as_deref() == Some("edge")), "busy came from the edge");
    let slowest = busy.iter().map(|a| a.latency_ms()).max().unwrap_or(0);
    assert!(slowest < 1_500, "busy answered fast (slowest {slowest} ms)");
    assert!(recovered.is_some(), "the sale did not resume after the origin came back");
    assert!(sell_out(&rig, &crowd, "f3", Duration::from_secs(20)).await);
    let c = check_invariants(&crowd.attempts(), &rig.orders_in_redis("f3").unwrap(), 1500).unwrap();
    assert_eq!(c.orders, 1500);
    println!("origin SIGKILL: {c:?}; {} busy while down, slowest {slowest} ms; first won {recovered:?} after restart", busy.len());
}

/// 3b. The origin hung (SIGSTOP) under a flood: Envoy's circuit breaker answers `busy` at once
/// instead of queueing without bound; the stuck requests finish when it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_overloaded_trips_the_circuit_breaker() {
    let opts = StackOptions {
        // A small breaker so a test-sized flood trips it (the stack's default is 4096).
        tweak_envoy: Some(|yaml| yaml.replace("max_requests: 4096", "max_requests: 16").replace("max_pending_requests: 4096", "max_pending_requests: 16")),
        ..StackOptions::default()
    };
    let rig = StackRig::start("fault-origin-hung", opts).await.unwrap();
    rig.open_sale("f3b", 500).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "f3b", "h", 300);
    rig.signal_origin("STOP");
    let flood: Vec<_> = (0..200).map(|i| {
        let c = crowd.clone();
        tokio::spawn(async move { c.attempt(i).await })
    }).collect();
    // While the origin is still hung, the breaker answers the overflow: no request waits for it.
    let tripped = wait_until(Duration::from_secs(10), || crowd.attempts().iter().filter(|a| a.is("busy")).count() >= 150).await;
    let early = crowd.attempts();
    rig.signal_origin("CONT");
    for f in flood {
        f.await.unwrap();
    }
    let busy: Vec<_> = early.iter().filter(|a| a.is("busy")).collect();
    assert!(tripped.is_some(), "only {} of 200 answered busy while the origin hung", busy.len());
    let slowest = busy.iter().map(|a| a.latency_ms()).max().unwrap_or(0);
    assert!(busy.iter().all(|a| a.by.as_deref() == Some("edge")));
    assert!(slowest < 2_000, "busy answers took up to {slowest} ms");
    let c = check_invariants(&crowd.attempts(), &rig.orders_in_redis("f3b").unwrap(), 500).unwrap();
    println!("origin hung under 200 requests: {} busy from the breaker (slowest {slowest} ms) while it hung; then {c:?}", busy.len());
}

/// 4. Envoy restarted mid-sale (the edge's memory is lost): nothing oversold, no uid gets a
/// second unit, and the new edge rebuilds its flags from the feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_restarted_mid_sale() {
    let mut rig = StackRig::start("fault-envoy", StackOptions::default()).await.unwrap();
    rig.open_sale("f4", 1200).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "f4", "e", 3000);
    let run = crowd.start(WORKERS, PAUSE);
    tokio::time::sleep(Duration::from_millis(800)).await;
    rig.kill_envoy();
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.start_envoy().unwrap();
    // Winners come back to a fresh edge that forgot them: the origin answers already_won with
    // the same order, never a second unit.
    let winners: Vec<(String, String)> = crowd.attempts().into_iter().filter(|a| a.is("won")).map(|a| (a.uid, a.order_id.unwrap_or_default())).take(20).collect();
    assert!(!winners.is_empty(), "nobody won before the restart");
    for (uid, order) in &winners {
        let i: usize = uid.trim_start_matches('e').parse().unwrap();
        let a = crowd.attempt(i).await;
        assert_eq!((a.outcome.as_deref(), a.by.as_deref(), a.order_id.as_deref()), (Some("already_won"), Some("origin"), Some(order.as_str())), "{uid}");
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    run.stop().await;
    assert!(sell_out(&rig, &crowd, "f4", Duration::from_secs(20)).await);
    // After the sell-out the new edge knows it from the feed and answers by itself.
    let probe = Crowd::new(&rig.edge_url(), "f4", "late", 5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = probe.attempt(0).await;
    assert_eq!((a.outcome.as_deref(), a.by.as_deref()), (Some("sold_out"), Some("edge")), "{a:?}");
    let c = check_invariants(&crowd.attempts(), &rig.orders_in_redis("f4").unwrap(), 1200).unwrap();
    assert_eq!(c.orders, 1200);
    println!("envoy restart: {c:?}");
}

/// 5. The flags feed unreachable for a while (the origin itself fine): the edge keeps its last
/// flags, never invents `sold_out`, and buys still reach the origin, which decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_unreachable_keeps_last_flags() {
    let rig = StackRig::start("fault-feed", StackOptions { feed_gate: true, ..StackOptions::default() }).await.unwrap();
    rig.open_sale("f5", 60).await.unwrap();
    rig.open_sale("f5-closed", 10).await.unwrap();
    rig.set_sold_out("f5-closed", true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let gate = rig.gate.as_ref().unwrap();
    gate.set_feed_down(true);
    let cut_at = seckill_tests::now_ms();
    // While the feed is down the SRE lowers the flag: the edge cannot know, keeps answering from its
    // last flags (sold out, by the edge) and never decides anything new by itself.
    rig.set_sold_out("f5-closed", false).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "f5", "d", 200);
    let closed = Crowd::new(&rig.edge_url(), "f5-closed", "c", 200);
    let run = crowd.start(WORKERS, PAUSE);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let c0 = closed.attempt(0).await;
    assert_eq!((c0.outcome.as_deref(), c0.by.as_deref()), (Some("sold_out"), Some("edge")), "last flags kept");
    let during = crowd.between(cut_at, u64::MAX);
    assert!(during.iter().any(|a| a.is("won") && a.by.as_deref() == Some("origin")), "buys reached the origin while the feed was down");
    // No sold_out from the edge before the origin itself said sold_out.
    let first_origin_sold_out = during.iter().filter(|a| a.is("sold_out") && a.by.as_deref() == Some("origin")).map(|a| a.sent_ms).min();
    let invented = during.iter().filter(|a| a.is("sold_out") && a.by.as_deref() == Some("edge") && Some(a.sent_ms) < first_origin_sold_out.or(Some(u64::MAX))).count();
    assert_eq!(invented, 0, "the edge invented sold_out while the feed was down");
    gate.set_feed_down(false);
    // Feed back: the edge learns the flag was lowered and stops answering sold_out itself.
    let mut k = 1;
    let t0 = std::time::Instant::now();
    loop {
        let a = closed.attempt(k).await;
        k += 1;
        if a.by.as_deref().zip(a.outcome.as_deref()) != Some(("edge", "sold_out")) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "the edge did not pick up the feed again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.stop().await;
    let c = check_invariants(&crowd.attempts(), &rig.orders_in_redis("f5").unwrap(), 60).unwrap();
    println!("feed down 1.5 s+: {c:?}; first origin sold_out at {first_origin_sold_out:?}");
}

/// 6. An SRE flips sold-out on and off repeatedly during the crowd: no unit is sold while the flag
/// is on (the buy script checks it, so from the moment the switch returns), and sales resume
/// when it is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sre_flips_sold_out_during_the_crowd() {
    let rig = StackRig::start("fault-flips", StackOptions::default()).await.unwrap();
    rig.open_sale("f6", 2500).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "f6", "f", 5000);
    let run = crowd.start(WORKERS, PAUSE);
    let mut on_windows = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        rig.set_sold_out("f6", true).await.unwrap();
        let on = seckill_tests::now_ms();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let off_sent = seckill_tests::now_ms();
        rig.set_sold_out("f6", false).await.unwrap();
        on_windows.push((on, off_sent));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.stop().await;
    let times = rig.order_times("f6").unwrap();
    for (on, off) in &on_windows {
        let sold = times.values().filter(|t| **t > *on && **t < *off).count();
        assert_eq!(sold, 0, "{sold} units sold while the switch was on ({on}..{off})");
        // And after the propagation bound the edge itself answers sold_out.
        let at_edge = crowd.between(on + 250, *off).iter().filter(|a| a.is("sold_out") && a.by.as_deref() == Some("edge")).count();
        assert!(at_edge > 0, "the edge did not answer sold_out within 250 ms of the switch");
    }
    let last_off = on_windows.last().map(|w| w.1).unwrap_or(0);
    assert!(times.values().any(|t| *t > last_off), "sales resumed after the switch went off");
    let c = check_invariants(&crowd.attempts(), &rig.orders_in_redis("f6").unwrap(), 2500).unwrap();
    println!("4 flips: {c:?}; orders {}", times.len());
}

/// Whether `hay` holds `needle` (bytes).
fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Envoy's Wasm VM counters (`/stats`, lines naming `wasm` and `vm`), name → value.
fn vm_stats(admin: std::net::SocketAddr) -> std::collections::BTreeMap<String, u64> {
    let text = seckill_stack::net::http_get(admin, "/stats", &[], Duration::from_secs(5)).map(|(_, b)| b).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("wasm") && (l.contains("vm") || l.contains("reload")))
        .filter_map(|l| l.split_once(": ").and_then(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?))))
        .collect()
}

/// The Envoy threads (log field `[tid]`) that logged the test fault's panic.
fn panicked_threads(log: &std::path::Path) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    // `[time][tid][critical][wasm] ... seckill_edge: panicked at edge-filter/src/lib.rs:..` and the
    // panic message on the next line.
    text.lines()
        .filter(|l| l.contains("panicked at edge-filter/src/lib.rs"))
        .filter_map(|l| l.split('[').nth(2).and_then(|t| t.split(']').next()).map(str::to_owned))
        .collect()
}

/// 7. A proxy-wasm VM that panics mid-sale comes back (`failure_policy: FAIL_RELOAD`): the
/// test-only build (`--features test-fault`) panics on `TEST_FAULT_PATH`; requests fired at it
/// over fresh connections kill the VM of every worker while a crowd buys. Measured: how many of
/// the crowd's requests got no contract answer and for how long; then, with the flags feed cut
/// (so a VM can only know what shared data holds), the reloaded VMs answer a sku flagged before
/// the crash `sold_out` and the winners from before the crash `already_won` with their order
/// (the throttle/dedup slots survived); the sale then sells out with every invariant holding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_vm_panic_is_reloaded_under_a_crowd() {
    use seckill_stack::edge_build::EdgeBuild;
    if EdgeBuild::from_env() == Ok(EdgeBuild::Native) {
        println!("wasm VM reload: skipped for the native build (no VM; its own `fault` test: a panic answers busy)");
        return;
    }
    let fault_path = seckill_edge::route::TEST_FAULT_PATH;
    let fault_module = seckill_tests::edge_rig::fault_filter_wasm().unwrap();
    let shipped = std::fs::read(seckill_tests::edge_rig::filter_wasm().unwrap()).unwrap();
    assert!(!contains(&shipped, fault_path), "the shipped module contains the test fault");
    assert!(contains(&std::fs::read(&fault_module).unwrap(), fault_path), "the test-fault build has no fault");
    let opts = StackOptions { feed_gate: true, filter_module: Some(fault_module), ..StackOptions::default() };
    let rig = StackRig::start("fault-wasm-vm", opts).await.unwrap();
    rig.open_sale("f7", 1500).await.unwrap();
    rig.open_sale("f7-closed", 10).await.unwrap();
    rig.set_sold_out("f7-closed", true).await.unwrap();
    let crowd = Crowd::new(&rig.edge_url(), "f7", "v", 4000);
    let closed = Crowd::new(&rig.edge_url(), "f7-closed", "c", 50);
    let run = crowd.start(WORKERS, PAUSE);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // From here on the VMs can only know the flags from shared data: the origin's feed is cut and
    // the SRE lowers the flag behind it.
    let gate = rig.gate.as_ref().unwrap();
    gate.set_feed_down(true);
    rig.set_sold_out("f7-closed", false).await.unwrap();
    let winners: Vec<(String, String)> = crowd.attempts().into_iter().filter(|a| a.is("won")).map(|a| (a.uid, a.order_id.unwrap_or_default())).take(30).collect();
    assert!(winners.len() >= 10, "only {} winners before the crash", winners.len());
    let before = vm_stats(rig.admin_addr());
    let crash_at = seckill_tests::now_ms();
    // Each on a fresh connection, so the kernel spreads them over both workers.
    let edge = rig.edge_addr();
    let faults: Vec<_> = (0..8)
        .map(|_| tokio::task::spawn_blocking(move || seckill_stack::net::http_request(edge, "GET", fault_path, &[], "", Duration::from_secs(3)).map(|(s, _)| s)))
        .collect();
    let mut fault_answers = Vec::new();
    for f in faults {
        fault_answers.push(f.await.unwrap());
    }
    let faults_done = seckill_tests::now_ms();
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    let threads = panicked_threads(rig.envoy_log());
    let after = vm_stats(rig.admin_addr());
    // Every crowd request sent since the crash that got no contract answer (reset, Envoy's own 5xx).
    let since = crowd.between(crash_at, u64::MAX);
    let failed: Vec<_> = since.iter().filter(|a| a.outcome.is_none()).collect();
    let last_failed = failed.iter().map(|a| a.done_ms).max().unwrap_or(crash_at);
    let statuses: std::collections::BTreeMap<String, usize> = failed.iter().fold(Default::default(), |mut m, a| {
        *m.entry(format!("{:?}", a.status)).or_default() += 1;
        m
    });
    println!("wasm VM panic: 8 fault requests answered {fault_answers:?} within {} ms; panicked on Envoy threads {threads:?}", faults_done - crash_at);
    println!("  VM stats before {before:?}");
    println!("  VM stats after  {after:?}");
    println!("  crowd since the crash: {} attempts, {} without a contract answer {statuses:?}, the last {} ms after the crash", since.len(), failed.len(), last_failed - crash_at);
    assert!(threads.len() >= 2, "the fault did not reach both workers' VMs: {threads:?}");
    let after_window: Vec<_> = since.iter().filter(|a| a.sent_ms > last_failed).collect();
    assert!(after_window.len() > 50 && after_window.iter().all(|a| a.outcome.is_some()), "the crowd is answered again after the reload");
    assert!(last_failed - crash_at < 10_000, "requests failed for {} ms", last_failed - crash_at);
    // Same flags: sold out at the edge although the origin's flag is down and the feed is cut.
    let c0 = closed.attempt(0).await;
    assert_eq!((c0.outcome.as_deref(), c0.by.as_deref()), (Some("sold_out"), Some("edge")), "the reloaded VM lost the flags");
    // Same slots: a winner from before the crash is answered by the edge, with its order.
    let mut by_edge = 0;
    for (uid, order) in &winners {
        let i: usize = uid.trim_start_matches('v').parse().unwrap();
        let a = crowd.attempt(i).await;
        assert_eq!((a.outcome.as_deref(), a.order_id.as_deref()), (Some("already_won"), Some(order.as_str())), "{uid}");
        by_edge += usize::from(a.by.as_deref() == Some("edge"));
    }
    assert_eq!(by_edge, winners.len(), "winners from before the crash answered by the reloaded VMs' shared slots");
    gate.set_feed_down(false);
    run.stop().await;
    assert!(sell_out(&rig, &crowd, "f7", Duration::from_secs(30)).await, "the sale did not sell out after the reload");
    let c = check_invariants(&crowd.attempts(), &rig.orders_in_redis("f7").unwrap(), 1500).unwrap();
    assert_eq!(c.orders, 1500);
    println!("  then: {c:?}; {} winners from before the crash answered already_won by the edge", winners.len());
}
