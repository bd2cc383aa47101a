//! The proof-of-work challenge's costs, measured side by side in one run (part of `cargo xtask
//! bench edge`): what checking a solution costs the edge per buy, next to the ticket check every
//! buy already pays (the same process, rounds alternated, medians); and what solving one costs a
//! client natively (a bot's price per uid) at several difficulties.

use std::hint::black_box;
use std::time::Instant;

use seckill_core::challenge::{proof_value, solve_challenge, ChallengeKey};
use seckill_core::ticket::{self, Verifier};

/// Calls per timed round, and rounds per variant.
const CALLS: u32 = 20_000;
const ROUNDS: usize = 7;
/// Challenges solved per difficulty.
const SOLVES: usize = 40;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() * 99 / 100).copied().unwrap_or(0.0)
}

/// ns per call of `f`, over one round.
fn round(mut f: impl FnMut(u32)) -> f64 {
    let started = Instant::now();
    for i in 0..CALLS {
        f(i);
    }
    started.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

/// Run it and print the figures; the JSON goes into `target/bench/edge.json`.
pub fn run() -> serde_json::Value {
    let starts_at = 1_800_000_000_000;
    let key = ChallengeKey::new(b"bench-edge-key");
    let verifier = Verifier::new(&["bench-ticket-secret"]);
    let tickets: Vec<String> = (0..64).map(|i| ticket::mint(b"bench-ticket-secret", &format!("u{i}"), 4_000_000_000).unwrap_or_default()).collect();
    let proofs: Vec<String> = (0..64)
        .map(|i| {
            let c = key.issue(&format!("u{i}"), "phone", starts_at, 16);
            solve_challenge(&c).map(|n| proof_value(&c, n)).unwrap_or_default()
        })
        .collect();
    let (mut ticket_ns, mut check_ns, mut issue_ns) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ticket_ns.push(round(|i| {
            let t = &tickets[(i % 64) as usize];
            black_box(verifier.verify(black_box(t), 1_800_000_000).is_ok());
        }));
        check_ns.push(round(|i| {
            let n = (i % 64) as usize;
            black_box(key.check(&format!("u{n}"), "phone", starts_at, 16, Some(&proofs[n])).is_ok());
        }));
        issue_ns.push(round(|i| {
            black_box(key.issue(&format!("u{}", i % 64), "phone", starts_at, 16));
        }));
    }
    let (t, c, iss) = (median(ticket_ns), median(check_ns), median(issue_ns));
    println!("challenge at the edge (in-process, medians of {ROUNDS} alternated rounds of {CALLS} calls):");
    println!("  ticket check (every buy)           {t:>8.0} ns");
    println!("  challenge check (a solved buy)     {c:>8.0} ns   = {:.2} x the ticket check", c / t);
    println!("  challenge issue (an unsolved buy)  {iss:>8.0} ns   = {:.2} x the ticket check", iss / t);
    let mut solve = serde_json::Map::new();
    println!("solving natively (a bot's cost per uid), {SOLVES} fresh challenges per difficulty:");
    for bits in [12u32, 16, 18] {
        let times: Vec<f64> = (0..SOLVES)
            .map(|i| {
                let c = key.issue(&format!("solver{i}"), "phone", starts_at, bits);
                let started = Instant::now();
                black_box(solve_challenge(&c));
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let (m, p) = (median(times.clone()), p99(times));
        println!("  {bits} bits: median {m:.2} ms, p99 {p:.2} ms");
        solve.insert(format!("bits_{bits}"), serde_json::json!({"median_ms": m, "p99_ms": p}));
    }
    serde_json::json!({
        "ticket_check_ns": t,
        "challenge_check_ns": c,
        "challenge_issue_ns": iss,
        "check_to_ticket": c / t,
        "native_solve": solve,
    })
}
