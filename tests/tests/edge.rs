//! The edge in real Envoy (`--concurrency 2`, the stack's template and the built filter) over the
//! real origin and a real Redis ([`EdgeRig`]): every outcome of the contract's table with the
//! right `x-seckill-by`, header stripping, one request per window reaching the origin from a burst
//! spread over many connections, the SRE switch reaching both workers within 250 ms both ways, the
//! flags feed going away, page loads never reaching the origin, config validation, and the memory
//! bound with hundreds of thousands of distinct uids.
//!
//! Tests run 4 at a time on 2 shared cores, so no timing is asserted except the contract's 250 ms
//! propagation bound (polled every ~10 ms, failing only above the bound).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use seckill_core::demo;
use seckill_tests::bench::envoy::{self as bench_envoy, slots_bound_bytes, BenchEnvoy, FeedServer};
use seckill_tests::edge_rig::{envoy_bin, filter_wasm, http, ticket, ticket_with, EdgeRig, Resp, RespExt, PAGE_MARKER};
use seckill_tests::rig::SaleSpec;

fn rig(name: &str, extra: &[(&str, &str)]) -> EdgeRig {
    EdgeRig::start(name, extra).unwrap_or_else(|e| panic!("starting the edge rig: {e}"))
}

/// Assert the contract's shape of a buy answer: status, `outcome` in the body and in
/// `x-seckill-outcome`, and who decided.
#[track_caller]
fn expect(r: &Resp, status: u16, outcome: &str, by: &str) {
    assert_eq!((r.status, r.outcome().as_str(), r.by()), (status, outcome, by), "{r:?}");
    assert_eq!(r.header("x-seckill-outcome"), Some(outcome), "{r:?}");
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{r:?}");
}

fn sale_starting(stock: u64, starts_in_ms: i64, lasts_ms: u64) -> SaleSpec {
    let now = seckill_tests::now_ms() as i64;
    let starts_at = (now + starts_in_ms) as u64;
    SaleSpec { stock, starts_at, ends_at: starts_at + lasts_ms, per_user_limit: 1, pay_within_s: 900 }
}

#[test]
fn every_outcome_of_the_contract_through_the_edge() {
    // A short window so the test can wait it out; a long start grace so a sale starting in a few
    // seconds is passed to the origin (which then answers `not_started` itself).
    let rig = rig("outcomes", &[("window_ms", "400"), ("start_grace_ms", "10000")]);
    rig.create_sale("phone", &SaleSpec::open(10));
    let later = sale_starting(5, 3_600_000, 3_600_000);
    rig.create_sale("later", &later);
    let soon = sale_starting(5, 8_000, 3_600_000);
    rig.create_sale("soon", &soon);
    let past = sale_starting(5, -7_200_000, 3_600_000);
    rig.create_sale("past", &past);
    rig.create_sale("two-each", &SaleSpec { per_user_limit: 2, ..SaleSpec::open(10) });
    rig.create_sale("spare", &SaleSpec::open(10));
    let origin_before = rig.origin_buys();

    // won (origin), then already_won (edge, same order id, nothing reaches the origin)
    let won = rig.buy("alice", "phone");
    expect(&won, 201, "won", "origin");
    let order_id = won.json()["order_id"].as_str().expect("order_id").to_owned();
    assert_eq!((won.json()["sku"].as_str(), won.json()["uid"].as_str()), (Some("phone"), Some("alice")));
    let again = rig.buy("alice", "phone");
    expect(&again, 200, "already_won", "edge");
    assert_eq!(again.json()["order_id"].as_str(), Some(order_id.as_str()));
    std::thread::sleep(Duration::from_millis(450)); // past the window: still deduped (winner_ttl_ms)
    let r = rig.buy("alice", "phone");
    expect(&r, 200, "already_won", "edge");
    assert_eq!(r.json()["order_id"].as_str(), Some(order_id.as_str()));
    assert_eq!(rig.origin_buys(), origin_before + 1);

    // sold_out: first from the origin, then from the edge (learned from that answer at once). The
    // origin says it for a buy the edge passed before its flags showed the sale sold out: here the
    // SRE switch, raised just before the buy (the feed shows it within ~100 ms). (The last unit
    // going to another buyer on the same worker does not do: the admission budget then holds the
    // next buy back with 429 until the feed shows the sale.) The feed may be quicker than the buy
    // on a loaded machine; then the attempt is repeated on a fresh sale.
    let mut from_origin = None;
    for attempt in 0..5 {
        let sku = format!("one-{attempt}");
        rig.create_sale(&sku, &SaleSpec::open(5));
        rig.wait_edge_knows(&sku);
        rig.sold_out_switch(&sku, true);
        let r = rig.buy("carol", &sku);
        assert_eq!((r.status, r.outcome().as_str()), (410, "sold_out"), "{r:?}");
        if r.by() == "origin" {
            expect(&r, 410, "sold_out", "origin");
            from_origin = Some(sku);
            break;
        }
    }
    let sku = from_origin.expect("an origin sold_out in 5 attempts");
    // Learned at once by the worker that saw the answer, by the other within its 10 ms flags
    // re-read (`seckill_edge::edge::FLAGS_RECHECK_MS`); this request may land on either.
    std::thread::sleep(Duration::from_millis(50));
    expect(&rig.buy("carl", &sku), 410, "sold_out", "edge");

    // not_started / ended with the window, from the edge's flags
    let r = rig.buy("dave", "later");
    expect(&r, 403, "not_started", "edge");
    assert_eq!((r.json()["starts_at"].as_u64(), r.json()["ends_at"].as_u64()), (Some(later.starts_at), Some(later.ends_at)));
    let r = rig.buy("dave", "past");
    expect(&r, 403, "ended", "edge");
    assert_eq!((r.json()["starts_at"].as_u64(), r.json()["ends_at"].as_u64()), (Some(past.starts_at), Some(past.ends_at)));
    // ... and from the origin inside the start grace
    let r = rig.buy("erin", "soon");
    expect(&r, 403, "not_started", "origin");
    assert_eq!(r.json()["starts_at"].as_u64(), Some(soon.starts_at));

    // throttled: erin's answer was not final, so her repeat inside the window is a 429
    let r = rig.buy("erin", "soon");
    expect(&r, 429, "throttled", "edge");
    let retry_ms = r.json()["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!((1..=400).contains(&retry_ms), "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"), "whole seconds, rounded up");

    // already_won from the origin: per_user_limit 2 (no edge dedup), one request per window
    expect(&rig.buy("frank", "two-each"), 201, "won", "origin");
    let replay = rig.buy("frank", "two-each");
    expect(&replay, 200, "already_won", "edge"); // inside the window: the win replayed
    std::thread::sleep(Duration::from_millis(450));
    expect(&rig.buy("frank", "two-each"), 201, "won", "origin");
    std::thread::sleep(Duration::from_millis(450));
    let r = rig.buy("frank", "two-each");
    expect(&r, 200, "already_won", "origin");
    assert!(r.json()["order_id"].as_str().is_some_and(|id| id.starts_with("two-each.")), "{r:?}");

    // unauthorized: missing, malformed, forged, expired, wrong scheme, uid outside the charset
    let now_s = seckill_tests::now_ms() / 1000;
    let forged = ticket_with("not-the-secret", "grace", now_s + 3600);
    let expired = ticket_with(demo::TICKET_SECRET, "grace", now_s - 1);
    let tampered = ticket("grace").replace(".grace.", ".mallory.");
    for auth in [None, Some("Bearer garbage"), Some("Bearer v1.grace.99999999999.AAAA"), Some(forged.as_str()), Some(expired.as_str()), Some(tampered.as_str()), Some("Basic Z3JhY2U6eA==")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let r = rig.call("POST", "/api/sales/spare/orders", &headers, "");
        expect(&r, 401, "unauthorized", "edge");
        assert!(r.json()["error"].as_str().is_some(), "{r:?}");
    }

    // unknown_sku and invalid (bad sku) from the edge; invalid (bad body) from the origin
    let r = rig.buy("grace", "no-such-sale");
    expect(&r, 404, "unknown_sku", "edge");
    let r = rig.buy("grace", "bad.sku");
    expect(&r, 400, "invalid", "edge");
    assert!(r.json()["error"].as_str().is_some());
    let t = ticket("heidi");
    let r = rig.call("POST", "/api/sales/spare/orders", &[("authorization", &t), ("content-type", "application/json")], "[1,2]");
    expect(&r, 400, "invalid", "origin");
    assert!(r.json()["error"].as_str().is_some());

    // busy from the origin: Redis cannot answer (paused); nothing committed
    let sold_before = rig.admin("GET", "/admin/sales/spare", None).json()["sold"].as_u64();
    rig.redis.pause();
    let r = rig.buy("ivan", "spare");
    rig.redis.resume();
    expect(&r, 503, "busy", "origin");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert_eq!(rig.admin("GET", "/admin/sales/spare", None).json()["sold"].as_u64(), sold_before, "busy committed nothing");

    // busy from the edge: the origin cannot be reached at all
    rig.shut_origin();
    let r = rig.buy("judy", "spare");
    expect(&r, 503, "busy", "edge");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["retry_after_ms"].as_u64(), Some(1000));
    rig.gate.open().expect("reopen the gate");
    assert!(!rig.envoy_log().contains("panicked"), "the filter panicked:\n{}", rig.envoy_log());
}

#[test]
fn client_seckill_headers_never_reach_the_origin() {
    let rig = rig("strip", &[]);
    rig.create_sale("tv", &SaleSpec::open(10));
    let alice = ticket("alice");
    // A valid ticket for alice, claiming to be mallory and to be the edge: the buy is alice's.
    let r = rig.call(
        "POST",
        "/api/sales/tv/orders",
        &[("authorization", &alice), ("x-seckill-uid", "mallory"), ("X-Seckill-Edge-Key", demo::EDGE_KEY), ("X-SECKILL-BY", "origin"), ("x-seckill-anything", "x")],
        "",
    );
    expect(&r, 201, "won", "origin");
    assert_eq!(r.json()["uid"].as_str(), Some("alice"));
    let orders = rig.admin("GET", "/admin/sales/tv", None).json();
    assert_eq!(orders["buyers"].as_u64(), Some(1));
    // Without a ticket, the uid and edge key headers get nowhere.
    let r = rig.call("POST", "/api/sales/tv/orders", &[("x-seckill-uid", "mallory"), ("x-seckill-edge-key", demo::EDGE_KEY)], "");
    expect(&r, 401, "unauthorized", "edge");
    let r = rig.call("GET", "/api/orders/mine", &[("x-seckill-uid", "mallory"), ("x-seckill-edge-key", demo::EDGE_KEY)], "");
    assert_eq!((r.status, r.by()), (401, "edge"), "{r:?}");
    // With a ticket, orders/mine shows the ticket's uid, not the header's.
    let r = rig.call("GET", "/api/orders/mine", &[("authorization", &alice), ("x-seckill-uid", "mallory")], "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["uid"].as_str(), Some("alice"));
    // Routes the edge passes without a uid (the demo login) lose the headers too.
    let r = rig.call("POST", "/api/session", &[("x-seckill-uid", "mallory"), ("x-seckill-edge-key", "guess")], r#"{"uid":"trent"}"#);
    assert_eq!(r.status, 200, "{r:?}");
    // The origin itself, asked directly with a valid ticket but no edge key, refuses to buy.
    let direct = http(rig.origin.addr, "POST", "/api/sales/tv/orders", &[("authorization", &alice), ("x-seckill-uid", "alice")], "").expect("origin");
    expect(&direct, 401, "unauthorized", "origin");

    // What Envoy sent upstream: no client value of any x-seckill-* header, ever.
    let up = rig.gate.upstream().to_ascii_lowercase();
    assert!(!up.contains("mallory"), "a client uid reached the origin:\n{up}");
    assert!(!up.contains("x-seckill-edge-key: guess") && !up.contains("x-seckill-anything") && !up.contains("x-seckill-by"), "{up}");
    assert_eq!(up.matches("x-seckill-uid: alice").count(), 2, "the edge's own uid header, once per ticketed request");
}

#[test]
fn a_burst_over_many_connections_reaches_the_origin_once_per_window() {
    let window_ms = 1_500;
    let rig = rig("burst", &[("window_ms", "1500")]);
    // Three units each, so no edge dedup: only the throttle stops the repeats.
    rig.create_sale("console", &SaleSpec { per_user_limit: 3, ..SaleSpec::open(100) });
    let workers_before = rig.worker_connections();
    for burst in 0..3 {
        let before = rig.origin_buys();
        let started = Instant::now();
        let handles: Vec<_> = (0..24)
            .map(|_| {
                let (edge, t) = (rig.edge(), ticket("olga"));
                std::thread::spawn(move || http(edge, "POST", "/api/sales/console/orders", &[("authorization", &t)], ""))
            })
            .collect();
        let answers: Vec<Resp> = handles.into_iter().map(|h| h.join().expect("thread").expect("answer")).collect();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(window_ms), "the burst took {took:?}, longer than the window: the test proves nothing");
        assert_eq!(rig.origin_buys() - before, 1, "burst {burst}: exactly one request of 24 reached the origin; answers {:?}", statuses(&answers));
        let mut by: BTreeMap<(u16, String), usize> = BTreeMap::new();
        for a in &answers {
            *by.entry((a.status, a.by().to_owned())).or_default() += 1;
        }
        assert_eq!(by.get(&(201, "origin".to_owned())), Some(&1), "{by:?}");
        for a in answers.iter().filter(|a| a.by() == "edge") {
            match a.status {
                429 => assert!(a.header("retry-after").is_some() && a.json()["retry_after_ms"].as_u64().is_some(), "{a:?}"),
                200 => assert_eq!(a.outcome(), "already_won", "{a:?}"),
                s => panic!("unexpected {s}: {a:?}"),
            }
        }
        std::thread::sleep(Duration::from_millis(window_ms + 100).saturating_sub(started.elapsed()));
    }
    let after = rig.worker_connections();
    assert!(after[0] > workers_before[0] && after[1] > workers_before[1], "both workers took part: {workers_before:?} -> {after:?}");
    assert_eq!(rig.admin("GET", "/admin/sales/console", None).json()["sold"].as_u64(), Some(3));
}

fn statuses(a: &[Resp]) -> BTreeMap<u16, usize> {
    let mut m = BTreeMap::new();
    for r in a {
        *m.entry(r.status).or_default() += 1;
    }
    m
}

/// Poll `GET /api/sales/{sku}` on 8 fresh connections at a time every ~10 ms until every one of
/// them answers from the edge with `state`; returns how long that took from `since`.
fn until_every_worker_says(rig: &EdgeRig, sku: &str, state: &str, since: Instant) -> Duration {
    loop {
        let probes: Vec<_> = (0..8)
            .map(|_| {
                let (edge, path) = (rig.edge(), format!("/api/sales/{sku}"));
                std::thread::spawn(move || http(edge, "GET", &path, &[], ""))
            })
            .collect();
        let answers: Vec<Resp> = probes.into_iter().map(|h| h.join().expect("thread").expect("answer")).collect();
        if answers.iter().all(|r| r.by() == "edge" && r.json()["state"].as_str() == Some(state)) {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(5), "the switch never reached every worker: {answers:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_sold_out_switch_reaches_every_worker_within_250_ms_both_ways() {
    let rig = rig("switch", &[]);
    rig.create_sale("radio", &SaleSpec::open(50));
    assert_eq!(rig.status("radio").json()["state"], "on_sale");
    let workers_before = rig.worker_connections();

    let t = Instant::now();
    rig.sold_out_switch("radio", true);
    let on = until_every_worker_says(&rig, "radio", "sold_out", t);
    let before = rig.origin_buys();
    for i in 0..8 {
        expect(&rig.buy(&format!("late{i}"), "radio"), 410, "sold_out", "edge");
    }
    assert_eq!(rig.origin_buys(), before, "sold-out buys never reach the origin");

    let t = Instant::now();
    rig.sold_out_switch("radio", false);
    let off = until_every_worker_says(&rig, "radio", "on_sale", t);
    expect(&rig.buy("early", "radio"), 201, "won", "origin");

    let after = rig.worker_connections();
    assert!(after[0] > workers_before[0] && after[1] > workers_before[1], "both workers answered the probes: {workers_before:?} -> {after:?}");
    eprintln!("sold-out switch reached every worker in {} ms (on) and {} ms (off)", on.as_millis(), off.as_millis());
    assert!(on <= Duration::from_millis(250) && off <= Duration::from_millis(250), "propagation on {on:?}, off {off:?} (bound 250 ms)");
}

#[test]
fn without_its_feed_the_edge_keeps_the_last_flags_and_passes_requests_on() {
    let rig = rig("feed-down", &[("flags_stale_ms", "500"), ("window_ms", "200")]);
    rig.create_sale("open-1", &SaleSpec::open(10));
    rig.create_sale("gone-1", &SaleSpec::open(10));
    rig.sold_out_switch("gone-1", true);
    let t = Instant::now();
    until_every_worker_says(&rig, "gone-1", "sold_out", t);
    expect(&rig.buy("u0", "no-such"), 404, "unknown_sku", "edge");

    rig.shut_origin();
    let errors_before = rig.envoy_stat("wasmcustom.seckill_edge_feed_errors").unwrap_or(0);
    // Fresh, then stale (flags_stale_ms 500), over about 1.5 s.
    for i in 0..6 {
        // The last flags stay in force: the sold-out sku is still answered at the edge...
        expect(&rig.buy(&format!("g{i}"), "gone-1"), 410, "sold_out", "edge");
        // ...and the open one is never turned into sold_out: it is passed on, and the unreachable
        // origin makes that Envoy's `busy`.
        expect(&rig.buy(&format!("o{i}"), "open-1"), 503, "busy", "edge");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Stale now: a sku missing from the last feed is passed on rather than called unknown.
    expect(&rig.buy("u1", "no-such"), 503, "busy", "edge");
    assert!(rig.envoy_stat("wasmcustom.seckill_edge_feed_errors").unwrap_or(0) > errors_before, "feed failures are counted");

    rig.gate.open().expect("reopen the gate");
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = rig.buy("back", "open-1");
        if r.status != 503 && r.status != 429 {
            break r;
        }
        assert!(Instant::now() < deadline, "the origin never came back: {r:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    expect(&r, 201, "won", "origin");
    expect(&rig.buy("g9", "gone-1"), 410, "sold_out", "edge");
}

#[test]
fn page_loads_never_reach_the_origin() {
    let rig = rig("page", &[]);
    for path in ["/", "/index.html", "/s/phone"] {
        let r = rig.call("GET", path, &[("accept-encoding", "identity")], "");
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(r.body.contains(PAGE_MARKER), "{path}: {r:?}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=5"), "{path}");
    }
    for path in ["/assets/app.nosuch.js", "/edge/flags", "/admin/sales", "/metrics", "/favicon.ico"] {
        let r = rig.call("GET", path, &[], "");
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(r.header("x-seckill-by").is_none(), "Envoy itself answers {path}");
    }
    let lines = rig.gate.request_lines();
    assert!(!lines.is_empty(), "the feed poll goes through the gate");
    for l in &lines {
        assert!(l.starts_with("GET /edge/flags "), "only the filter's feed poll reached the origin, not {l:?}");
    }
}

fn validate(bin: &std::path::Path, yaml: &str, dir: &std::path::Path, name: &str) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("write config");
    seckill_stack::envoy_proc::validate(bin, &path)
}

#[test]
fn envoy_validates_the_stack_config_and_refuses_a_bad_filter_config() {
    use seckill_stack::envoy_proc::{dev_filter_config, render, EdgeSettings};
    let (bin, wasm) = (envoy_bin().expect("envoy"), filter_wasm().expect("wasm"));
    let dir = seckill_tests::paths::scratch_dir("validate");
    std::fs::write(dir.join("index.html"), "<p>page</p>").expect("page");
    let settings = |filter_config: String| EdgeSettings {
        edge_port: seckill_tests::net::free_port(),
        admin_port: seckill_tests::net::free_port(),
        origins: vec![std::net::SocketAddr::from(([127, 0, 0, 1], seckill_tests::net::free_port()))],
        filter_wasm: wasm.clone(),
        filter_config,
        site_dir: dir.clone(),
    };
    let good = render(&settings(dev_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, &[]))).expect("render");
    validate(&bin, &good, &dir, "good.yaml").unwrap_or_else(|out| panic!("the stack config must validate:\n{out}"));
    for (field, value) in [("buckets", "\"many\""), ("window_ms", "7200000"), ("slots_per_bucket", "0"), ("edge_key", "\"\"")] {
        let bad = render(&settings(dev_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, &[(field, value)]))).expect("render");
        let Err(out) = validate(&bin, &bad, &dir, "bad.yaml") else { panic!("{field}={value} must be refused") };
        assert!(out.contains(&format!("field `{field}`")), "the refusal names `{field}`:\n{out}");
    }
    // The benchmark's config (every variant) is valid too.
    let bench = bench_envoy::render(&wasm, &dev_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, &[]), std::net::SocketAddr::from(([127, 0, 0, 1], 1))).expect("render bench");
    validate(&bin, &bench.yaml, &dir, "bench.yaml").unwrap_or_else(|out| panic!("envoy/bench.yaml.tmpl must validate:\n{out}"));
}

/// The edge benchmark's yardsticks: the reference filter (`edge-filter/reference`) and the native
/// reference module (`edge-filter/reference-native`) load in each of their modes and answer a buy
/// as the bench expects — `refuse_calls` with the seckill filter's
/// throttled reply, the other modes by letting it through to the listener's direct response.
#[test]
fn the_benchmark_reference_filter_answers_in_each_mode() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let feed = rt.block_on(FeedServer::start()).expect("feed");
    let config = seckill_stack::envoy_proc::dev_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, &[]);
    let envoy = BenchEnvoy::start(&envoy_bin().expect("envoy"), &filter_wasm().expect("wasm"), &config, feed.addr, "reference").expect("bench envoy");
    let answers_as_the_bench_expects = |mode: &str, addr: std::net::SocketAddr| {
        let r = http(addr, "POST", &format!("/api/sales/{}/orders", bench_envoy::SKU), &[("authorization", &ticket("ref1"))], "").expect("answer");
        if mode == "refuse_calls" {
            expect(&r, 429, "throttled", "edge");
            assert_eq!(r.header("retry-after"), Some("5"), "{r:?}");
        } else {
            assert_eq!((r.status, r.outcome().as_str()), (200, "passed"), "mode {mode}: {r:?}");
        }
    };
    for mode in bench_envoy::REFERENCE_MODES {
        answers_as_the_bench_expects(mode, envoy.reference(mode).expect("a listener per mode"));
    }
    assert!(envoy.reference("no_such_mode").is_none());
    // The native reference module (built by `cargo xtask build`) loads into the same Envoy.
    assert_eq!(envoy.native_references.len(), bench_envoy::NATIVE_REFERENCE_MODES.len(), "is edge-filter/reference-native built? (cargo xtask build)");
    for mode in bench_envoy::NATIVE_REFERENCE_MODES {
        answers_as_the_bench_expects(mode, envoy.native_reference(mode).expect("a listener per native mode"));
    }
}

/// The memory bound, CI-sized: 4,096 buckets × 16 slots hold 65,536 (uid, sku) pairs; 200,000
/// distinct uids overflow every bucket about three times. The filter takes its slots' memory when
/// it starts (every bucket value at full size), so Envoy's memory must not grow by more than the
/// stated bound while the buckets fill, and not at all once they are full.
#[test]
fn memory_stays_within_the_stated_bound_for_200k_distinct_uids() {
    let (buckets, slots) = (4_096u64, 16u64);
    let bound = slots_bound_bytes(buckets, slots);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let feed = rt.block_on(FeedServer::start()).expect("feed");
    let config = seckill_stack::envoy_proc::dev_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, &[("buckets", "4096")]);
    let envoy = BenchEnvoy::start(&envoy_bin().expect("envoy"), &filter_wasm().expect("wasm"), &config, feed.addr, "memory-200k").expect("bench envoy");
    assert!(envoy.wait_for_feed(Duration::from_secs(20)), "feed");
    let send = |prefix: &str, count: u64| {
        let r = rt.block_on(seckill_tests::bench::edge::fresh_uids(envoy.filter, prefix, 0, count, 32, Duration::from_secs(120)));
        assert_eq!(r.status(200), count, "every fresh uid passes: {:?}, {} connection errors", r.statuses, r.errors);
    };
    send("warm", 5_000);
    std::thread::sleep(Duration::from_millis(300));
    let m0 = envoy.memory();
    send("a", 100_000);
    std::thread::sleep(Duration::from_millis(300));
    let m1 = envoy.memory();
    send("b", 100_000);
    std::thread::sleep(Duration::from_millis(300));
    let m2 = envoy.memory();
    let evictions = envoy.stat("wasmcustom.seckill_edge_evictions").unwrap_or(0);
    let grew = |a: u64, b: u64| b.saturating_sub(a);
    eprintln!(
        "memory, {buckets} buckets x {slots} slots (bound {}): allocated {} -> {} -> {}, heap {} -> {}, RSS {} -> {} -> {}; evictions {evictions}",
        bench_envoy::mib(bound),
        bench_envoy::mib(m0.allocated),
        bench_envoy::mib(m1.allocated),
        bench_envoy::mib(m2.allocated),
        bench_envoy::mib(m0.heap_size),
        bench_envoy::mib(m2.heap_size),
        bench_envoy::mib(m0.rss),
        bench_envoy::mib(m1.rss),
        bench_envoy::mib(m2.rss)
    );
    assert!(evictions >= 200_000 - 65_536 - 5_000, "the buckets overflowed: {evictions} evictions");
    // Filling every bucket: the heap Envoy uses (tcmalloc `allocated`, where shared data lives)
    // and the process's RSS grow within the bound.
    assert!(grew(m0.allocated, m2.allocated) <= bound, "allocated grew {} > bound {}", grew(m0.allocated, m2.allocated), bound);
    assert!(grew(m0.rss, m2.rss) <= bound, "RSS grew {} > bound {}", grew(m0.rss, m2.rss), bound);
    // Full buckets: the second 100,000 uids add (almost) nothing, to the heap or to RSS.
    assert!(grew(m1.allocated, m2.allocated) <= bound / 4, "allocated kept growing: {} after the buckets were full", grew(m1.allocated, m2.allocated));
    assert!(grew(m1.rss, m2.rss) <= bound / 4, "RSS kept growing: {} after the buckets were full", grew(m1.rss, m2.rss));
    drop(envoy);
    drop(feed);
}

/// The admission budget through real Envoy and the real origin: with Redis paused (every buy the
/// origin takes stays in flight for its 300 ms Redis timeout), a burst of 30 distinct uids for 4
/// units reaches the origin at most with each worker's share of the 4; the rest are held at the
/// edge (`429 throttled`, nothing recorded), and buying works again once the answers are back.
#[test]
fn the_admission_budget_sends_the_origin_no_more_buys_than_units_left() {
    let rig = rig("budget", &[]);
    rig.create_sale("few", &SaleSpec::open(4));
    rig.wait_edge_knows("few");
    std::thread::sleep(Duration::from_millis(300)); // every worker's tick has read the worker count
    let origin_before = rig.origin_buys();
    let edge = rig.edge();
    rig.redis.pause();
    let answers: Vec<Resp> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|i| {
                s.spawn(move || {
                    let t = ticket(&format!("burst{i}"));
                    http(edge, "POST", "/api/sales/few/orders", &[("authorization", &t)], "").expect("edge answers")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    rig.redis.resume();
    let passed = answers.iter().filter(|r| r.by() == "origin").count() as u64;
    let held = answers.iter().filter(|r| r.status == 429 && r.by() == "edge").count() as u64;
    assert_eq!(passed + held, 30, "every answer is the origin's or an edge hold: {answers:?}");
    assert!((1..=4 + 2).contains(&passed), "{passed} buys reached the origin for 4 units (each worker's share rounds up)");
    assert!(answers.iter().filter(|r| r.by() == "edge").all(|r| r.outcome() == "throttled" && r.header("retry-after") == Some("1")));
    assert_eq!(rig.origin_buys() - origin_before, passed, "the origin counted exactly what the edge passed");
    // A held uid's window closes at its Retry-After (asking earlier is throttled, however the
    // budget opens meanwhile); at it, it buys at once.
    let held_uid = answers.iter().position(|r| r.by() == "edge").map(|i| format!("burst{i}")).expect("one was held");
    std::thread::sleep(Duration::from_millis(400));
    let early = rig.buy(&held_uid, "few");
    expect(&early, 429, "throttled", "edge");
    let left_ms = early.json()["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!((1..=600).contains(&left_ms), "the rest of its Retry-After: {early:?}");
    std::thread::sleep(Duration::from_millis(left_ms + 50));
    expect(&rig.buy(&held_uid, "few"), 201, "won", "origin");
    assert!(rig.envoy_stat("wasmcustom.seckill_edge_at_capacity").unwrap_or(0) >= held);
}

/// `n` buys of `sku` at once, one thread and one connection each, for uids `<prefix>0..n`: each
/// answer with the Unix ms it arrived at.
fn clicks_at_once(rig: &EdgeRig, sku: &str, prefix: &str, n: usize) -> Vec<(Resp, u64)> {
    let edge = rig.edge();
    let path = format!("/api/sales/{sku}/orders");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let path = path.as_str();
                s.spawn(move || {
                    let t = ticket(&format!("{prefix}{i}"));
                    let r = http(edge, "POST", path, &[("authorization", &t)], "").expect("edge answers");
                    (r, seckill_tests::now_ms())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

/// The start lottery through real Envoy: first clicks in the sale's first moments wait at the
/// edge (the request is paused) and are passed on at their drawn turn, within the admission
/// budget, so every one of them gets the origin's (or the sold-out flag's) final answer, none a
/// 429 or an error, and nothing is answered before the lottery ends. With 200 clicks drawn into a
/// 500 ms lottery for 3 units (500 ms, so that all 200 arrive inside it on a loaded machine: one
/// arriving after the draw finds the budget full and gets `429`, as it should), the turns are
/// served from the tick, and once the units are gone answered from it (sold out);
/// the VM must not fail (answering a whole crowd in one 100 ms tick once overflowed V8's stack in
/// the demo, each answer's callback running the next nested: the filter now answers at most 16 per
/// tick and ticks every 10 ms while it holds requests; the demo's log is checked for it too).
/// (Hammering while held gets 429: `seckill-edge`'s unit tests.)
#[test]
fn start_lottery_holds_first_clicks_at_the_edge_and_serves_them_at_their_turn() {
    const LOTTERY_MS: u64 = 500;
    let rig = rig("lottery", &[("start_lottery_ms", "500")]);
    let starts_at = seckill_tests::now_ms() + 2_000;
    rig.create_sale("draw", &SaleSpec { starts_at, ..SaleSpec::open(3) });
    rig.wait_edge_knows("draw");
    std::thread::sleep(Duration::from_millis(starts_at.saturating_sub(seckill_tests::now_ms()).saturating_sub(200)));
    // The clicks arrive in the last 200 ms before the start (the start grace) and the first
    // `LOTTERY_MS` (or the draw after it): all of them are held.
    let firsts = clicks_at_once(&rig, "draw", "draw", 200);
    let log = rig.envoy_log();
    assert!(!log.contains("panicked") && !log.contains("Maximum call stack") && !log.contains("failed: Uncaught"), "the VM failed:\n{log}");
    let won = firsts.iter().filter(|(r, _)| r.outcome() == "won").count();
    assert_eq!(won, 3, "{firsts:?}");
    for (r, at) in &firsts {
        assert!(matches!(r.outcome().as_str(), "won" | "sold_out"), "a held first click gets a final answer: {r:?}");
        assert!(*at >= starts_at + LOTTERY_MS, "answered {} ms after the start, inside the lottery", at - starts_at);
    }
    assert!(firsts.iter().all(|(r, _)| r.outcome() != "won" || r.by() == "origin"));
    std::thread::sleep(Duration::from_millis(300));
    let holds = rig.envoy_stat("wasmcustom.seckill_edge_lottery_holds").unwrap_or(0);
    assert!(holds >= 190, "{holds} of 200 clicks were held");
}

/// The proof-of-work challenge through real Envoy: from the start, a buy without the uid's
/// solution (none, forged, another uid's, or one for a lower difficulty) is answered `428
/// challenge` by the edge with the challenge to solve, and none of them reaches the origin or
/// uses the uid's window; the solution then wins at once. Raising the difficulty mid-sale (the
/// SRE API) asks again.
#[test]
fn a_sale_with_a_challenge_lets_only_solved_buys_through() {
    use seckill_core::challenge::{proof_value, solve_challenge, Challenge, ChallengeKey, PROOF_HEADER};
    let rig = rig("challenge", &[]);
    let s = SaleSpec::open(10);
    let r = rig.admin(
        "PUT",
        "/admin/sales/pow",
        Some(serde_json::json!({"stock": s.stock, "starts_at": s.starts_at, "ends_at": s.ends_at, "challenge_bits": 12})),
    );
    assert_eq!((r.status, r.json()["challenge_bits"].as_u64()), (200, Some(12)), "{}", r.body);
    rig.wait_edge_knows("pow");
    let key = ChallengeKey::new(seckill_core::demo::EDGE_KEY.as_bytes());
    let solve = |c: &Challenge| proof_value(c, solve_challenge(c).expect("solvable"));
    let buy_with = |uid: &str, proof: Option<&str>| {
        let t = ticket(uid);
        let mut h = vec![("authorization", t.as_str())];
        if let Some(p) = proof {
            h.push((PROOF_HEADER, p));
        }
        rig.call("POST", "/api/sales/pow/orders", &h, "")
    };
    let origin_before = rig.origin_buys();
    let unsolved = buy_with("alice", None);
    expect(&unsolved, 428, "challenge", "edge");
    let challenge: Challenge = serde_json::from_value(unsolved.json()["challenge"].clone()).expect("the challenge to solve");
    assert_eq!(challenge, key.issue("alice", "pow", s.starts_at, 12), "the edge issues what any edge or origin derives");
    let forged = format!("{}.0", challenge.seed);
    let bobs = solve(&key.issue("bob", "pow", s.starts_at, 12));
    for bad in [forged.as_str(), bobs.as_str(), "not-a-proof"] {
        let r = buy_with("alice", Some(bad));
        expect(&r, 428, "challenge", "edge");
        assert!(r.json()["error"].as_str().is_some_and(|e| !e.is_empty()), "{r:?}");
    }
    assert_eq!(rig.origin_buys(), origin_before, "nothing unsolved reached the origin");
    // Solved: a first buy at once (nothing was recorded against alice's window).
    expect(&buy_with("alice", Some(&solve(&challenge))), 201, "won", "origin");
    expect(&buy_with("bob", Some(&bobs)), 201, "won", "origin");
    // Raised mid-sale: carol's solution at 12 bits is stale once every edge worker knows.
    let carols = solve(&key.issue("carol", "pow", s.starts_at, 12));
    let r = rig.admin("PUT", "/admin/sales/pow/challenge", Some(serde_json::json!({"bits": 14})));
    assert_eq!((r.status, r.json()["challenge_bits"].as_u64()), (200, Some(14)), "{}", r.body);
    // A probe without a proof (it uses no window) shows when the edge has the new difficulty.
    let deadline = Instant::now() + Duration::from_secs(5);
    while buy_with("probe", None).json()["challenge"]["bits"].as_u64() != Some(14) {
        assert!(Instant::now() < deadline, "the raise never reached the edge");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50)); // every worker re-reads the flags within 10 ms
    let raised = buy_with("carol", Some(&carols));
    expect(&raised, 428, "challenge", "edge");
    assert!(raised.json()["error"].as_str().is_some_and(|e| e.contains("another challenge")), "{raised:?}");
    assert_eq!(raised.json()["challenge"]["bits"].as_u64(), Some(14));
    let hard: Challenge = serde_json::from_value(raised.json()["challenge"].clone()).expect("challenge");
    expect(&buy_with("carol", Some(&solve(&hard))), 201, "won", "origin");
    // Bad SRE input: a clear 400, nothing changed.
    let r = rig.admin("PUT", "/admin/sales/pow/challenge", Some(serde_json::json!({"bits": 99})));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("challenge_bits must be 0..=30"), "{}", r.body);
    assert_eq!(rig.admin("GET", "/admin/sales/pow", None).json()["challenge_bits"].as_u64(), Some(14));
}

/// A sale released in batches through real Envoy (the stack's lottery, 1 s): batch 1 sells its
/// units and no more; between the batches the edge answers `sold_out` itself (nothing reaches the
/// origin) and its public status names the next batch; batch 2 opens at its time from the edge's
/// own clock (no write anywhere at that moment), its first clicks held by the start lottery as at
/// a sale's start, and sells exactly its units.
#[test]
fn a_sale_in_batches_sells_each_batch_from_its_time_only() {
    let rig = rig("batches", &[("start_lottery_ms", "1000")]);
    let now = seckill_tests::now_ms();
    let (start, batch2) = (now - 1_500, now + 6_000);
    let sale = serde_json::json!({"stock": 5, "starts_at": start, "ends_at": now + 3_600_000,
        "batches": [{"at": start, "stock": 3}, {"at": batch2, "stock": 2}]});
    let r = rig.admin("PUT", "/admin/sales/batched", Some(sale));
    assert_eq!(r.status, 200, "{}", r.body);
    rig.wait_edge_knows("batched");
    // Batch 1: 3 units for 10 uids, one after another with a flags refresh between them (the
    // admission budget counts a win against the units left until the next feed shows it).
    let first: Vec<Resp> = (0..10)
        .map(|i| {
            let r = rig.buy(&format!("a{i}"), "batched");
            std::thread::sleep(Duration::from_millis(150));
            r
        })
        .collect();
    assert_eq!(first.iter().filter(|r| r.outcome() == "won").count(), 3, "{first:?}");
    assert!(first.iter().all(|r| matches!(r.outcome().as_str(), "won" | "sold_out")), "{first:?}");
    // Between the batches: the edge answers, and names the next batch.
    let origin_before = rig.origin_buys();
    for i in 0..20 {
        expect(&rig.buy(&format!("c{i}"), "batched"), 410, "sold_out", "edge");
    }
    assert_eq!(rig.origin_buys(), origin_before, "nothing reached the origin between the batches");
    let st = rig.status("batched");
    assert_eq!((st.by(), st.json()["state"].as_str(), st.json()["next_batch_at"].as_u64()), ("edge", Some("sold_out"), Some(batch2)), "{st:?}");
    // Batch 2: clicks at its start are held by the lottery, then 2 of them win.
    std::thread::sleep(Duration::from_millis(batch2.saturating_sub(seckill_tests::now_ms()) + 20));
    let st = rig.status("batched");
    assert_eq!((st.by(), st.json()["state"].as_str(), st.json().get("next_batch_at")), ("edge", Some("on_sale"), None), "{st:?}");
    let second = clicks_at_once(&rig, "batched", "b", 8);
    assert_eq!(second.iter().filter(|(r, _)| r.outcome() == "won").count(), 2, "{second:?}");
    for (r, at) in &second {
        assert!(matches!(r.outcome().as_str(), "won" | "sold_out"), "{r:?}");
        assert!(*at >= batch2 + 1_000, "answered {} ms after batch 2's start, inside its lottery", at - batch2);
    }
    let f = rig.admin("GET", "/admin/sales/batched", None).json();
    assert_eq!((f["sold"].as_u64(), f["released"].as_u64(), f["state"].as_str()), (Some(5), Some(5), Some("sold_out")), "{f}");
}
