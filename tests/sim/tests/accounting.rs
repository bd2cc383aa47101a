//! The simulator's accounting against the stack's own figures, on small runs.
//!
//! Each test starts a stack of its own on free ports (Redis, the origin in this process, and Envoy
//! with the built edge filter), plays a small crowd with every population against it, and checks
//! the report figure by figure against Envoy's stats, the origin's metrics, the sale's admin
//! figures and Redis itself, so the demo's report cannot drift from the truth.
//!
//! Needs Envoy (`ENVOY_BIN`, or `cargo xtask setup`) and builds the filter if it is missing.
//! Run with `cargo test --release -p seckill-sim` (or `cargo xtask test`).

use std::collections::HashMap;

use seckill_sim::crowd::{Mode, Stop};
use seckill_sim::harness::{OriginKind, Stack};
use seckill_sim::probe::{Probe, Snapshot};
use seckill_sim::scenario::Scenario;
use seckill_sim::{simulate, Addresses, Options, Report, Secrets};

/// Every population, small: 240 shoppers for 30 units, start 2.5 s after the sale is created.
const SMALL: &str = r#"
name = "small"
[sale]
sku = "acct-phone"
stock = 30
starts_in_ms = 2500
open_for_ms = 600000
[limits]
max_requests = 8000
max_duration_ms = 20000
max_in_flight = 256
request_timeout_ms = 5000

[[population]]
name = "honest"
uids = 150
arrive_before_start_ms = 2000
[population.behaviour]
kind = "honest"
poll_every_ms = 700
reaction = { median_ms = 300, sigma = 0.5 }
give_up_after_ms = 8000
max_attempts = 4

[[population]]
name = "impatient"
uids = 50
arrive_before_start_ms = 2000
[population.behaviour]
kind = "impatient"
poll_every_ms = 500
reaction = { median_ms = 200, sigma = 0.5 }
clicks_per_s = 6.0
click_for_ms = 1500

[[population]]
name = "scripted"
uids = 10
arrive_before_start_ms = 1500
[population.behaviour]
kind = "scripted_bot"
connections = 3
lead_ms = 600
pause_ms = 20
loop_for_ms = 2500

[[population]]
name = "farm"
uids = 30
arrive_before_start_ms = 1500
[population.behaviour]
kind = "bot_farm"
connections = 8
offset_ms = 0
retry_for_ms = 3000
"#;

fn small() -> Scenario {
    Scenario::from_toml(SMALL, "SMALL").expect("valid scenario")
}

/// Orders of the sku straight from Redis (the origin's `sk:{sku}:orders` hash): order id → uid.
fn orders_in_redis(stack: &Stack, sku: &str) -> HashMap<String, String> {
    let mut c = redis::Client::open(stack.redis_url()).and_then(|c| c.get_connection()).expect("redis");
    let raw: HashMap<String, String> = redis::cmd("HGETALL").arg(format!("sk:{{{sku}}}:orders")).query(&mut c).expect("HGETALL");
    raw.into_iter().map(|(id, rec)| (id, rec.split(' ').next().unwrap_or_default().to_owned())).collect()
}

async fn start(name: &'static str, edge: bool) -> Stack {
    tokio::task::spawn_blocking(move || Stack::start(name, OriginKind::InProcess, edge)).await.expect("join").expect("stack starts")
}

async fn run(stack: &Stack, mode: Mode, scenario: Scenario) -> Report {
    let addresses = Addresses { edge: stack.edge_url(), origin: stack.origin_url(), envoy_admin: stack.envoy_admin_url() };
    simulate(Options { scenario, mode, addresses, secrets: Secrets::default(), create_sale: true, progress: false }).await.expect("simulation runs")
}

fn print_checks(r: &Report) {
    for c in &r.checks {
        eprintln!("{:<80} crowd {:>6} stack {:>6} {}", c.name, c.simulator, c.stack, if c.ok { "ok" } else { "MISMATCH" });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowd_through_the_edge_agrees_with_envoy_origin_admin_and_redis() {
    let stack = start("sim-acct-edge", true).await;
    let s = small();
    let sku = s.sale.sku.clone();
    let stock = s.sale.stock;
    let shoppers = s.shoppers();
    let r = run(&stack, Mode::Edge, s).await;
    eprintln!("{}", r.to_terminal());
    print_checks(&r);

    // The run was whole: bounded by its shoppers, not cut short; every request answered.
    assert_eq!(r.stop, Stop::Finished);
    assert_eq!(r.funnel.errors, 0, "requests without an answer");
    assert_eq!(r.funnel.other, 0, "answers from neither the edge nor the origin");
    assert!(r.consistent(), "a cross-check failed");

    // Figure by figure, independently of the report's own checks.
    let probe = Probe::new(stack.envoy_admin_url(), &stack.origin_url(), seckill_core::demo::ADMIN_TOKEN, &sku);
    let now: Snapshot = probe.snapshot().await.expect("snapshot");
    let edge = r.edge_delta.as_ref().expect("edge stats");
    let f = &r.funnel;
    assert_eq!(f.requests, f.status_requests + f.buy_requests);
    assert_eq!(f.requests, f.answered_at_edge + f.reached_origin, "every request answered by exactly one side");
    assert_eq!(edge.downstream_rq, f.requests, "Envoy counted exactly the crowd's requests");
    let edge_buy_reasons: u64 = edge.decisions.iter().filter(|(k, _)| !matches!(k.as_str(), "passed" | "sale_status")).map(|(_, v)| *v).sum();
    let passed = edge.reason("passed");
    assert_eq!(edge_buy_reasons + passed, f.buy_requests, "every buy got exactly one edge decision");
    assert_eq!(edge.reason("sale_status"), f.status_requests - r.origin_delta.route("status"));
    assert_eq!(passed, r.origin_delta.route("buy"), "what the edge passed is what the origin counted");
    assert_eq!(f.reached_origin, r.origin_delta.route("buy") + r.origin_delta.route("status"));
    let throttled_seen: u64 = r.edge_reasons.iter().find(|x| x.reason == "throttled").and_then(|x| x.simulator).unwrap_or(0);
    assert_eq!(throttled_seen, edge.reason("throttled"));

    // Units: all sold, none oversold; the crowd's wins are exactly Redis's orders, one per uid.
    assert_eq!(now.sale.stock_total, stock);
    assert_eq!(now.sale.stock_left, 0, "demand far above stock: everything sells");
    assert_eq!(now.sale.sold, stock);
    assert_eq!(f.oversold, 0);
    assert_eq!(f.commits, stock);
    assert_eq!(f.orders, stock);
    let in_redis = orders_in_redis(&stack, &sku);
    assert_eq!(in_redis.len() as u64, stock, "orders in Redis");
    let won_by_pop: u64 = r.populations.iter().map(|p| p.wins).sum();
    assert_eq!(won_by_pop, stock, "the crowd saw exactly one `won` per order");
    let distinct: std::collections::HashSet<&String> = in_redis.values().collect();
    assert_eq!(distinct.len() as u64, stock, "one order per uid");
    let winners: u64 = r.populations.iter().map(|p| p.winners).sum();
    assert_eq!(winners, stock);
    assert!(in_redis.values().all(|uid| uid.starts_with(&r.run_id)), "every order belongs to this run's crowd");
    for p in &r.populations {
        let in_pop = in_redis.values().filter(|u| u.starts_with(&format!("{}-{}-", r.run_id, p.name))).count() as u64;
        assert_eq!(in_pop, p.winners, "winners of {} per Redis", p.name);
    }

    // The edge did its job on this crowd: throttled repeats, answered the status, stopped most.
    // (Loose on purpose: how many uids pass between the last unit and the edge learning `sold_out`
    // depends on the machine's load; at most every uid once, 240 of about 1,900 requests.)
    assert!(edge.reason("throttled") > 0 && edge.reason("sale_status") > 0);
    assert!(f.edge_share > 0.8, "edge share {}", f.edge_share);
    assert!(passed <= shoppers + 10, "more passes ({passed}) than uids: the throttle let repeats through");
    assert_eq!(r.populations.iter().map(|p| p.uids).sum::<u64>(), shoppers);

    // The report's files exist and carry the figures.
    let dir = stack.dir().join("report");
    let files = r.write(&dir).expect("write report");
    let md = std::fs::read_to_string(&files[0]).expect("report.md");
    assert!(md.contains("## Funnel") && md.contains(&format!("| orders (admin figures) | {stock} |")), "{md}");
    let svg = std::fs::read_to_string(&files[1]).expect("chart.svg");
    assert!(svg.starts_with("<svg") && svg.contains("<polyline") && svg.trim_end().ends_with("</svg>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowd_straight_at_the_origin_agrees_with_origin_metrics_and_admin() {
    let stack = start("sim-acct-direct", false).await;
    let mut s = small();
    // Without an edge the bots' loops all reach the origin: keep them short.
    s.limits.max_requests = 6000;
    let stock = s.sale.stock;
    let r = run(&stack, Mode::Direct, s).await;
    print_checks(&r);
    assert_eq!(r.funnel.errors, 0);
    assert!(r.consistent(), "a cross-check failed");
    assert!(r.edge_delta.is_none());
    let f = &r.funnel;
    assert_eq!(f.answered_at_edge, 0);
    assert_eq!(f.reached_origin, f.requests, "no edge: everything reaches the origin");
    assert_eq!(f.origin_counted, f.requests);
    assert_eq!(r.origin_delta.route("buy"), f.buy_requests);
    assert_eq!(f.orders, stock);
    assert_eq!(f.oversold, 0);
    assert_eq!(f.unsold, 0);
}

/// A sale released in two batches (15 units at the start, 15 nine seconds later), the small crowd
/// coming back for each: one report per batch, each agreeing with the stack, every unit sold
/// within its own batch (Redis's order times against the batch's start), none oversold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_in_two_batches_is_accounted_batch_by_batch() {
    use seckill_sim::scenario::BatchSpec;
    let stack = start("sim-acct-batches", true).await;
    let mut s = small();
    s.sale.sku = "acct-batches".into();
    s.sale.batches = vec![BatchSpec { after_ms: 0, stock: 15 }, BatchSpec { after_ms: 9_000, stock: 15 }];
    s.validate().expect("a valid two-batch scenario");
    let addresses = Addresses { edge: stack.edge_url(), origin: stack.origin_url(), envoy_admin: stack.envoy_admin_url() };
    let opts = Options { scenario: s, mode: Mode::Edge, addresses, secrets: Secrets::default(), create_sale: true, progress: false };
    let reports = seckill_sim::simulate_batches(opts).await.expect("simulation runs");
    assert_eq!(reports.len(), 2, "one report per batch");
    eprintln!("{}", seckill_sim::report::batches_summary(&reports));
    for (i, r) in reports.iter().enumerate() {
        print_checks(r);
        assert!(r.consistent(), "batch {}: a cross-check failed", i + 1);
        assert_eq!((r.funnel.errors, r.funnel.oversold), (0, 0), "batch {}", i + 1);
        assert_eq!(r.funnel.orders, 15, "batch {}: its 15 units sold to its crowd", i + 1);
        assert!(r.funnel.edge_share > 0.8, "batch {}: edge share {}", i + 1, r.funnel.edge_share);
    }
    assert_eq!((reports[0].funnel.stock_total, reports[0].funnel.unsold), (15, 0), "batch 1: 15 units out, all sold");
    assert_eq!((reports[1].funnel.stock_total, reports[1].funnel.unsold), (30, 0), "batch 2: 30 out in all, all sold");
    // Every order in Redis was made within its batch.
    let mut c = redis::Client::open(stack.redis_url()).and_then(|c| c.get_connection()).expect("redis");
    let raw: HashMap<String, String> = redis::cmd("HGETALL").arg("sk:{acct-batches}:orders").query(&mut c).expect("HGETALL");
    let figures = Probe::new(None, &stack.origin_url(), seckill_core::demo::ADMIN_TOKEN, "acct-batches").figures().await.expect("figures");
    let batch2 = figures.batches[1].at;
    let created: Vec<u64> = raw.values().map(|r| r.split(' ').nth(2).and_then(|t| t.parse().ok()).expect("created ms")).collect();
    assert_eq!(created.len(), 30);
    assert_eq!(created.iter().filter(|t| **t < batch2).count(), 15, "batch 1's orders before batch 2's start");
    let distinct: std::collections::HashSet<String> = raw.values().map(|r| r.split(' ').next().unwrap_or_default().to_owned()).collect();
    assert_eq!(distinct.len(), 30, "one order per uid over both batches");
}
