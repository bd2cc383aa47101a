//! The end-to-end benchmark (`seckill-sim e2e`, run by `cargo xtask bench e2e|all`): the same
//! crowd played twice in one run, through the edge and straight at the origin (no edge), each on a
//! fresh stack of its own on free ports, figures side by side.
//!
//! It exists to measure what the edge is for with everything else equal: how many requests reach
//! the origin per unit sold, how long the sale takes to sell out, and how answers' latency and the
//! bots' advantage change. Only ratios within one run mean anything on a shared 2-core machine.

use std::path::Path;

use serde::Serialize;

use crate::crowd::Mode;
use crate::harness::{HarnessError, OriginKind, Stack};
use crate::report::Report;
use crate::scenario::Scenario;
use crate::simulate::{simulate, Addresses, Options, Secrets, SimError};

/// The benchmark's scenario (`tests/sim/scenarios/e2e.toml`): a smaller crowd than the demo's so
/// two runs fit in well under a minute.
pub const E2E_TOML: &str = include_str!("../scenarios/e2e.toml");

#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("the {0} run's accounting does not match the stack's figures (see its report)")]
    Inconsistent(&'static str),
    #[error("cannot write the results: {0}")]
    Io(#[from] std::io::Error),
    #[error("a stack task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// One side of the benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub mode: Mode,
    pub requests: u64,
    pub answered_at_edge: u64,
    pub origin_requests: u64,
    pub origin_buy_requests: u64,
    pub orders: u64,
    pub oversold: u64,
    pub unsold: u64,
    pub origin_per_unit_sold: Option<f64>,
    pub wall_s: f64,
    pub last_won_ms: Option<i64>,
    pub buy_p50_ms: f64,
    pub buy_p99_ms: f64,
    pub bot_to_honest_ratio: Option<f64>,
}

impl Side {
    fn of(r: &Report) -> Side {
        Side {
            mode: r.mode,
            requests: r.funnel.requests,
            answered_at_edge: r.funnel.answered_at_edge,
            origin_requests: r.funnel.origin_counted,
            origin_buy_requests: r.origin_delta.route("buy"),
            orders: r.funnel.orders,
            oversold: r.funnel.oversold,
            unsold: r.funnel.unsold,
            origin_per_unit_sold: r.funnel.origin_per_unit_sold,
            wall_s: r.wall_s,
            last_won_ms: r.last_won_ms,
            buy_p50_ms: r.buy_p50_ms,
            buy_p99_ms: r.buy_p99_ms,
            bot_to_honest_ratio: r.bot_to_honest_ratio,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct E2eResult {
    pub scenario: String,
    pub edge: Side,
    pub direct: Side,
    /// direct / edge.
    pub origin_requests_ratio: Option<f64>,
    pub wall_ratio: f64,
    pub buy_p99_ratio: Option<f64>,
}

async fn one(scenario: &Scenario, mode: Mode, origin: OriginKind, out: &Path, progress: bool) -> Result<Report, E2eError> {
    let name = match mode {
        Mode::Edge => "e2e-edge",
        Mode::Direct => "e2e-direct",
    };
    let stack = tokio::task::spawn_blocking(move || Stack::start(name, origin, mode == Mode::Edge)).await??;
    let addresses = Addresses { edge: stack.edge_url(), origin: stack.origin_url(), envoy_admin: stack.envoy_admin_url() };
    let report = simulate(Options { scenario: scenario.clone(), mode, addresses, secrets: Secrets::default(), create_sale: true, progress }).await;
    tokio::task::spawn_blocking(move || drop(stack)).await?;
    let report = report?;
    report.write(&out.join(name))?;
    if !report.consistent() {
        return Err(E2eError::Inconsistent(name));
    }
    Ok(report)
}

/// Run the benchmark and write `e2e.json` (and both runs' reports) into `out`.
pub async fn run(scenario: &Scenario, origin: OriginKind, out: &Path, progress: bool) -> Result<E2eResult, E2eError> {
    let edge = one(scenario, Mode::Edge, origin, out, progress).await?;
    let direct = one(scenario, Mode::Direct, origin, out, progress).await?;
    let (e, d) = (Side::of(&edge), Side::of(&direct));
    let div = |a: f64, b: f64| if b > 0.0 { Some(a / b) } else { None };
    let result = E2eResult {
        scenario: scenario.name.clone(),
        origin_requests_ratio: div(d.origin_requests as f64, e.origin_requests as f64),
        wall_ratio: d.wall_s / e.wall_s.max(1e-9),
        buy_p99_ratio: div(d.buy_p99_ms, e.buy_p99_ms),
        edge: e,
        direct: d,
    };
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("e2e.json"), serde_json::to_string_pretty(&result).map_err(std::io::Error::other)?)?;
    Ok(result)
}

/// The side-by-side table.
pub fn render(r: &E2eResult) -> String {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["", "through the edge", "straight at the origin", "origin / edge"]);
    let opt = |v: Option<f64>, p: usize| v.map_or("-".to_owned(), |x| format!("{x:.p$}"));
    let ms = |v: Option<i64>| v.map_or("-".to_owned(), |x| format!("{x} ms"));
    let (e, d) = (&r.edge, &r.direct);
    let div = |a: f64, b: f64| if b > 0.0 { format!("{:.2}", a / b) } else { "-".into() };
    t.add_row(vec!["requests sent".into(), e.requests.to_string(), d.requests.to_string(), div(d.requests as f64, e.requests as f64)]);
    t.add_row(vec!["answered at the edge".into(), e.answered_at_edge.to_string(), d.answered_at_edge.to_string(), String::new()]);
    t.add_row(vec!["requests reaching the origin".into(), e.origin_requests.to_string(), d.origin_requests.to_string(), opt(r.origin_requests_ratio, 1)]);
    t.add_row(vec!["  of which buys".into(), e.origin_buy_requests.to_string(), d.origin_buy_requests.to_string(), div(d.origin_buy_requests as f64, e.origin_buy_requests as f64)]);
    t.add_row(vec!["orders (units sold)".into(), e.orders.to_string(), d.orders.to_string(), String::new()]);
    t.add_row(vec!["origin requests per unit sold".into(), opt(e.origin_per_unit_sold, 2), opt(d.origin_per_unit_sold, 2), String::new()]);
    t.add_row(vec!["oversold / unsold".into(), format!("{} / {}", e.oversold, e.unsold), format!("{} / {}", d.oversold, d.unsold), String::new()]);
    t.add_row(vec!["last unit won (from the start)".into(), ms(e.last_won_ms), ms(d.last_won_ms), String::new()]);
    t.add_row(vec!["buy latency p50 (ms)".into(), format!("{:.2}", e.buy_p50_ms), format!("{:.2}", d.buy_p50_ms), div(d.buy_p50_ms, e.buy_p50_ms)]);
    t.add_row(vec!["buy latency p99 (ms)".into(), format!("{:.2}", e.buy_p99_ms), format!("{:.2}", d.buy_p99_ms), opt(r.buy_p99_ratio, 2)]);
    t.add_row(vec!["bot / honest win share per uid".into(), opt(e.bot_to_honest_ratio, 2), opt(d.bot_to_honest_ratio, 2), String::new()]);
    t.add_row(vec!["wall time of the run (s)".into(), format!("{:.1}", e.wall_s), format!("{:.1}", d.wall_s), format!("{:.2}", r.wall_ratio)]);
    format!("end-to-end benchmark, scenario `{}`: the same crowd through the edge and straight at the origin\n{t}", r.scenario)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_scenario_is_valid_and_has_every_population() {
        let s = Scenario::from_toml(E2E_TOML, "e2e.toml").unwrap();
        let kinds: std::collections::BTreeSet<&str> = s.populations.iter().map(|p| p.behaviour.kind()).collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert_eq!(s.shoppers(), 2_000);
        assert_eq!(s.sale.stock, 200);
    }
}
