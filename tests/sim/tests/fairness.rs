//! Fair to people, costly for bots (issue 12): every population's win share per uid is at most
//! the honest shoppers', pooled over several runs of the same crowd through the real edge (the
//! stack's filter configuration: start lottery, admission budget), with the sale's proof-of-work
//! challenge on (every shopper and bot solves it).
//!
//! One stack, `RUNS` sales one after the other (each run's uids are new). Each run's own ratios
//! are printed; the assertion is on the pooled figures, since a population of a few dozen uids
//! wins a handful of units per run. A population that wins exactly like honest shoppers measures
//! above them in about half of all runs, so the assertion is that no population's share is above
//! the honest one by more than sampling noise (`report::excess_z` ≤ `report::noise_z` of the
//! populations judged: one-sided 5 % for them all together, 2.13 for the three bot populations);
//! before the fix of issue 12 the impatient clickers measured 1.60x here, z = 4.6. Run with
//! `cargo test --release -p seckill-sim --test fairness -- --nocapture`.

use seckill_sim::crowd::Mode;
use seckill_sim::harness::{OriginKind, Stack};
use seckill_sim::report::{excess_z, noise_z};
use seckill_sim::scenario::Scenario;
use seckill_sim::{simulate, Addresses, Options, Secrets};

const RUNS: usize = 3;

/// The demo's populations, at a third of its size: 1,700 uids for 170 units.
const CROWD: &str = r#"
name = "fairness"
[sale]
sku = "fair-phone"
stock = 170
starts_in_ms = 3000
open_for_ms = 600000
challenge_bits = 10
[limits]
max_requests = 30000
max_duration_ms = 25000
max_in_flight = 4096
request_timeout_ms = 10000

[[population]]
name = "honest"
uids = 1200
arrive_before_start_ms = 2500
[population.behaviour]
kind = "honest"
poll_every_ms = 1000
reaction = { median_ms = 450, sigma = 0.5 }
give_up_after_ms = 15000
max_attempts = 5

[[population]]
name = "impatient"
uids = 380
arrive_before_start_ms = 2500
[population.behaviour]
kind = "impatient"
poll_every_ms = 1000
reaction = { median_ms = 300, sigma = 0.5 }
clicks_per_s = 5.0
click_for_ms = 4000

[[population]]
name = "scripted"
uids = 40
arrive_before_start_ms = 2000
[population.behaviour]
kind = "scripted_bot"
connections = 4
lead_ms = 1500
pause_ms = 50
loop_for_ms = 5000

[[population]]
name = "farm"
uids = 80
arrive_before_start_ms = 1500
[population.behaviour]
kind = "bot_farm"
connections = 16
offset_ms = 0
retry_for_ms = 5000
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_population_wins_more_per_uid_than_honest_shoppers() {
    let stack = tokio::task::spawn_blocking(|| Stack::start("sim-fairness", OriginKind::InProcess, true))
        .await
        .expect("join")
        .expect("stack starts");
    let addresses = Addresses { edge: stack.edge_url(), origin: stack.origin_url(), envoy_admin: stack.envoy_admin_url() };
    let scenario = Scenario::from_toml(CROWD, "CROWD").expect("valid scenario");
    // Per population: (winners, uids), pooled over the runs.
    let mut pooled: Vec<(String, u64, u64)> = scenario.populations.iter().map(|p| (p.name.clone(), 0, 0)).collect();
    for run in 1..=RUNS {
        let r = simulate(Options { scenario: scenario.clone(), mode: Mode::Edge, addresses: addresses.clone(), secrets: Secrets::default(), create_sale: true, progress: false })
            .await
            .expect("simulation runs");
        assert_eq!(r.funnel.oversold, 0, "run {run}");
        if !r.consistent() {
            eprintln!("{}", r.to_terminal());
        }
        assert!(r.consistent(), "run {run}: a cross-check failed (the report above)");
        let solved: u64 = r.populations.iter().map(|p| p.solves).sum();
        assert!(solved >= r.funnel.stock_total, "run {run}: every winner solved the challenge ({solved} solves)");
        let line: Vec<String> = r.populations.iter().map(|p| format!("{} {}/{} ({})", p.name, p.winners, p.uids, p.to_honest.map_or("n/a".into(), |x| format!("{x:.2}x")))).collect();
        println!("run {run}: {}", line.join(", "));
        for (acc, p) in pooled.iter_mut().zip(&r.populations) {
            acc.1 += p.winners;
            acc.2 += p.uids;
        }
    }
    let honest = pooled.iter().find(|p| p.0 == "honest").map(|p| (p.1, p.2)).expect("honest population");
    assert!(honest.0 > 0, "honest shoppers won nothing: {pooled:?}");
    let honest_share = honest.0 as f64 / honest.1 as f64;
    let bound = noise_z(pooled.len() - 1);
    println!("pooled over {RUNS} runs: honest {}/{}", honest.0, honest.1);
    for (name, winners, uids) in pooled.iter().filter(|p| p.0 != "honest") {
        let ratio = *winners as f64 / (*uids).max(1) as f64 / honest_share;
        let z = excess_z((*winners, *uids), honest).unwrap_or(0.0);
        println!("pooled over {RUNS} runs: {name} {winners}/{uids} = {ratio:.2}x the honest win share per uid (z {z:.2})");
        assert!(ratio <= 1.0 || z <= bound, "{name} won {ratio:.2}x the honest shoppers' share per uid, {z:.2} standard errors above (noise: up to {bound:.2}): {pooled:?}");
    }
}
