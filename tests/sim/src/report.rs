//! The funnel report: what the crowd sent and saw, beside what the stack says happened.
//!
//! It exists to answer, from both sides at once, the questions a flash sale raises: how many
//! requests the edge stopped and why, how many reached the origin, how many units were committed,
//! whether anything was oversold or left unsold, whether bots did better per uid than people, and
//! how long answers took. Every figure the crowd can also see in the stack's own counters is
//! cross-checked ([`Check`]), so a wrong count in either shows up as a failed check, not a
//! plausible number. Rendered as terminal tables, Markdown, JSON and (see [`crate::chart`]) SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use serde::Serialize;

use crate::crowd::{CrowdResult, Mode, Stop};
use crate::probe::{EdgeStats, OriginStats, Snapshot};
use crate::record::{By, Kind, Tally, BUCKET_MS};
use crate::scenario::Scenario;

/// Origin requests per unit sold that the demo promises not to exceed (see the README).
pub const ORIGIN_PER_UNIT_TARGET: f64 = 3.0;
/// Share of requests the edge must answer itself in the default scenario.
pub const EDGE_SHARE_TARGET: f64 = 0.99;

/// Edge reasons of buys (everything `seckill_edge_decisions` counts for a buy except `passed`).
const EDGE_BUY_REASONS: [&str; 10] = ["unauthorized", "invalid", "unknown_sku", "not_started", "ended", "sold_out", "already_won", "throttled", "replayed", "challenge"];
/// Outcomes the edge may answer with, including replays of a uid's last final answer.
const REPLAYABLE: [&str; 4] = ["already_won", "sold_out", "ended", "unknown_sku"];

#[derive(Debug, Clone, Serialize)]
pub struct Funnel {
    /// Requests the crowd sent (answered or not).
    pub requests: u64,
    pub status_requests: u64,
    pub buy_requests: u64,
    /// Answers with `x-seckill-by: edge`.
    pub answered_at_edge: u64,
    pub edge_share: f64,
    /// Answers the origin decided, as the crowd saw them.
    pub reached_origin: u64,
    /// Shopper requests the origin counted (buy + status + mine + pay + session routes).
    pub origin_counted: u64,
    /// Answers from neither (Envoy's own replies: overflow, timeout).
    pub other: u64,
    /// Requests that got no answer at all.
    pub errors: u64,
    /// `won` answers the origin counted: commits in Redis.
    pub commits: u64,
    /// Orders the admin figures show for the sku (sold after - sold before).
    pub orders: u64,
    pub buyers: u64,
    pub stock_total: u64,
    pub stock_left: u64,
    pub oversold: u64,
    pub unsold: u64,
    pub origin_per_unit_sold: Option<f64>,
}

/// One edge reason: the crowd's count beside Envoy's.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonRow {
    pub reason: String,
    pub simulator: Option<u64>,
    pub envoy: Option<u64>,
}

/// One figure seen from both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub simulator: u64,
    pub stack: u64,
    /// Requests that got no answer may have been counted by the stack without the crowd knowing
    /// their outcome: the two sides may differ by at most this much.
    pub tolerance: u64,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PopulationRow {
    pub name: String,
    pub kind: String,
    pub bot: bool,
    pub uids: u64,
    pub requests: u64,
    pub buys: u64,
    pub buys_reached_origin: u64,
    /// `won` answers, and the distinct uids that got one.
    pub wins: u64,
    pub winners: u64,
    /// Winners per uid of this population.
    pub win_share_per_uid: f64,
    /// This population's part of all units won.
    pub share_of_units: f64,
    /// Its buy answers: `<who>:<answer>` → count (e.g. `edge:throttled`).
    pub buy_answers: BTreeMap<String, u64>,
    /// Its win share per uid over the honest shoppers' (1.0: no advantage; `None` when honest
    /// shoppers won nothing).
    pub to_honest: Option<f64>,
    /// How far its win share per uid is above the honest shoppers', in standard errors of the
    /// difference ([`excess_z`]; `None` without winners or uids on either side).
    pub to_honest_z: Option<f64>,
    /// Challenges it solved, and the mean time one took (ms, native).
    pub solves: u64,
    pub solve_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    pub route: Kind,
    pub answer: String,
    pub by: String,
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// A target of the demo (README: "The demo") and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    pub name: String,
    pub value: String,
    pub goal: String,
    pub met: bool,
}

/// One 100 ms slice of the run, for the chart.
#[derive(Debug, Clone, Serialize)]
pub struct Slice {
    /// Milliseconds from the sale's start (negative before it).
    pub t_ms: i64,
    pub requests: u64,
    pub by_edge: u64,
    pub by_origin: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub mode: Mode,
    pub run_id: String,
    pub sku: String,
    pub shoppers: u64,
    pub wall_s: f64,
    pub stop: Stop,
    pub funnel: Funnel,
    pub edge_reasons: Vec<ReasonRow>,
    pub origin_outcomes: BTreeMap<String, u64>,
    pub checks: Vec<Check>,
    pub populations: Vec<PopulationRow>,
    /// Per-uid win share of bot uids over honest shoppers' (1.0 = no advantage).
    pub bot_to_honest_ratio: Option<f64>,
    /// The same against every human uid (honest and impatient).
    pub bot_to_human_ratio: Option<f64>,
    /// From the sale's start: first `won`, last `won`, first `sold_out` answer (ms).
    pub first_won_ms: Option<i64>,
    pub last_won_ms: Option<i64>,
    pub first_sold_out_ms: Option<i64>,
    pub latency: Vec<LatencyRow>,
    /// Every buy answer together.
    pub buy_p50_ms: f64,
    pub buy_p99_ms: f64,
    pub buy_p999_ms: f64,
    pub targets: Vec<TargetRow>,
    pub timeline: Vec<Slice>,
    pub edge_delta: Option<EdgeStats>,
    pub origin_delta: OriginStats,
    /// Requests the simulator itself held back over 20 ms for want of a connection of its own
    /// (`limits.max_in_flight`), and the longest such wait: a real crowd has no shared budget, so
    /// anything here skews who reaches the edge first (the report says so).
    pub sim_queued: u64,
    pub sim_queued_max_ms: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    if b > 0.0 { Some(a / b) } else { None }
}

impl Report {
    /// Build the report of `crowd` on `scenario`, with the stack's figures before and after.
    pub fn build(scenario: &Scenario, mode: Mode, run_id: &str, crowd: &CrowdResult, before: &Snapshot, after: &Snapshot) -> Report {
        let t = &crowd.tally;
        let edge = match (&after.edge, &before.edge) {
            (Some(a), Some(b)) => Some(a.delta(b)),
            _ => None,
        };
        let origin = after.origin.delta(&before.origin);
        let errors = t.sum(|_, _, _, l| l == "error");
        let requests = t.total();
        let answered_at_edge = t.sum(|_, _, b, _| b == By::Edge);
        let reached_origin = t.sum(|_, _, b, _| b == By::Origin);
        let other = t.sum(|_, _, b, l| b == By::Other && l != "error");
        let shopper_routes = ["buy", "status", "mine", "pay", "session"];
        let origin_counted: u64 = shopper_routes.iter().map(|r| origin.route(r)).sum();
        let orders = after.sale.sold.saturating_sub(before.sale.sold);
        let released = if after.sale.batches.is_empty() { after.sale.stock_total } else { after.sale.released };
        let unreleased = after.sale.stock_total.saturating_sub(released);
        let buyers = after.sale.buyers.saturating_sub(before.sale.buyers);
        let funnel = Funnel {
            requests,
            status_requests: t.sum(|_, k, _, _| k == Kind::Status),
            buy_requests: t.sum(|_, k, _, _| k == Kind::Buy),
            answered_at_edge,
            edge_share: ratio(answered_at_edge as f64, requests as f64).unwrap_or(0.0),
            reached_origin,
            origin_counted,
            other,
            errors,
            commits: origin.get("buy", "won"),
            orders,
            buyers,
            // A sale released in batches: the units out by the end of this run (later batches
            // are neither sold nor unsold yet).
            stock_total: released,
            stock_left: after.sale.stock_left.saturating_sub(unreleased),
            oversold: after.sale.sold.saturating_sub(released),
            unsold: after.sale.stock_left.saturating_sub(unreleased),
            origin_per_unit_sold: ratio(origin_counted as f64, orders as f64),
        };

        // Answered at the edge, by reason: the crowd's outcomes beside Envoy's decisions.
        let sim_edge = |label: &str| t.sum(|_, k, b, l| k == Kind::Buy && b == By::Edge && l == label);
        let mut edge_reasons = Vec::new();
        if let Some(e) = &edge {
            for r in EDGE_BUY_REASONS {
                let sim = if r == "replayed" { None } else { Some(sim_edge(r)) };
                if sim.unwrap_or(0) > 0 || e.reason(r) > 0 {
                    edge_reasons.push(ReasonRow { reason: r.to_owned(), simulator: sim, envoy: Some(e.reason(r)) });
                }
            }
            edge_reasons.push(ReasonRow {
                reason: "sale_status".into(),
                simulator: Some(t.sum(|_, k, b, _| k == Kind::Status && b == By::Edge)),
                envoy: Some(e.reason("sale_status")),
            });
            edge_reasons.push(ReasonRow { reason: "passed (to the origin)".into(), simulator: Some(t.sum(|_, k, b, _| k == Kind::Buy && b == By::Origin)), envoy: Some(e.reason("passed")) });
        }

        let mut origin_outcomes = BTreeMap::new();
        for ((_, k, b, l), n) in &t.counts {
            if *k == Kind::Buy && *b == By::Origin {
                *origin_outcomes.entry(l.as_str().to_owned()).or_insert(0) += n;
            }
        }

        // Cross-checks.
        let mut checks = Vec::new();
        let mut check = |name: &str, sim: u64, stack: u64| {
            let ok = sim.abs_diff(stack) <= errors;
            checks.push(Check { name: name.to_owned(), simulator: sim, stack, tolerance: errors, ok });
        };
        let sim_buy_origin = t.sum(|_, k, b, _| k == Kind::Buy && b == By::Origin);
        if let Some(e) = &edge {
            check("requests at the edge (Envoy downstream_rq_total)", requests, e.downstream_rq);
            check("buys answered at the edge (Σ edge reasons)", t.sum(|_, k, b, _| k == Kind::Buy && b == By::Edge), EDGE_BUY_REASONS.iter().map(|r| e.reason(r)).sum());
            check("throttled at the edge", sim_edge("throttled"), e.reason("throttled"));
            check("not_started at the edge", sim_edge("not_started"), e.reason("not_started"));
            check(
                "final answers at the edge (sold_out, already_won, ended, unknown_sku; + replayed)",
                REPLAYABLE.iter().map(|r| sim_edge(r)).sum(),
                REPLAYABLE.iter().map(|r| e.reason(r)).sum::<u64>() + e.reason("replayed"),
            );
            check("status answered at the edge", t.sum(|_, k, b, _| k == Kind::Status && b == By::Edge), e.reason("sale_status"));
            check("buys passed to the origin (edge `passed`)", sim_buy_origin, e.reason("passed"));
        }
        check("buys at the origin (origin metrics)", sim_buy_origin, origin.route("buy"));
        let outcomes: std::collections::BTreeSet<String> = origin_outcomes.keys().cloned().chain(origin.requests.keys().filter_map(|k| k.strip_prefix("buy/").map(str::to_owned))).collect();
        for o in outcomes {
            check(&format!("origin answered {o}"), origin_outcomes.get(&o).copied().unwrap_or(0), origin.get("buy", &o));
        }
        check("status at the origin (origin metrics)", t.sum(|_, k, b, _| k == Kind::Status && b == By::Origin), origin.route("status"));
        check("won answers = orders in the admin figures", t.won(), orders);
        let winners: u64 = t.wins.iter().map(|m| m.len() as u64).sum();
        check("winning uids = buyers in the admin figures", winners, buyers);
        checks.push(Check { name: "uids with two wins (per_user_limit 1)".into(), simulator: t.double_winners(), stack: 0, tolerance: 0, ok: t.double_winners() == 0 });
        checks.push(Check { name: "oversold units".into(), simulator: funnel.oversold, stack: 0, tolerance: 0, ok: funnel.oversold == 0 });

        // Populations and the bot/honest ratio.
        let total_wins = t.won().max(1) as f64;
        let mut populations = Vec::new();
        for (i, p) in scenario.populations.iter().enumerate() {
            let wins: u64 = t.wins[i].values().map(|n| u64::from(*n)).sum();
            let winners = t.wins[i].len() as u64;
            populations.push(PopulationRow {
                name: p.name.clone(),
                kind: p.behaviour.kind().to_owned(),
                bot: p.behaviour.is_bot(),
                uids: u64::from(p.uids),
                requests: t.sum(|pi, _, _, _| pi == i),
                buys: t.sum(|pi, k, _, _| pi == i && k == Kind::Buy),
                buys_reached_origin: t.sum(|pi, k, b, _| pi == i && k == Kind::Buy && b == By::Origin),
                wins,
                winners,
                win_share_per_uid: winners as f64 / f64::from(p.uids.max(1)),
                share_of_units: wins as f64 / total_wins,
                buy_answers: t
                    .counts
                    .iter()
                    .filter(|((pi, k, _, _), _)| *pi == i && *k == Kind::Buy)
                    .map(|((_, _, b, l), n)| (format!("{}:{}", b.as_str(), l.as_str()), *n))
                    .collect(),
                to_honest: None,
                to_honest_z: None,
                solves: crowd.solves.get(i).map_or(0, |(n, _)| *n),
                solve_ms: crowd.solves.get(i).filter(|(n, _)| *n > 0).map(|(n, d)| d.as_secs_f64() * 1000.0 / *n as f64),
            });
        }
        // (winners, uids) of the populations `f` picks, and their win share per uid.
        let totals = |f: &dyn Fn(&PopulationRow) -> bool| populations.iter().filter(|p| f(p)).fold((0u64, 0u64), |(w, u), p| (w + p.winners, u + p.uids));
        let share = |(w, u): (u64, u64)| if u == 0 { None } else { Some(w as f64 / u as f64) };
        let honest_totals = totals(&|p| p.kind == "honest");
        let bots = share(totals(&|p| p.bot));
        let honest = share(honest_totals);
        let humans = share(totals(&|p| !p.bot));
        let bot_to_honest_ratio = bots.zip(honest).and_then(|(b, h)| ratio(b, h));
        let bot_to_human_ratio = bots.zip(humans).and_then(|(b, h)| ratio(b, h));
        for p in &mut populations {
            p.to_honest = honest.and_then(|h| ratio(p.win_share_per_uid, h));
            p.to_honest_z = excess_z((p.winners, p.uids), honest_totals);
        }

        // Latency per answer.
        let mut latency = Vec::new();
        for ((kind, label), h) in &t.latency {
            let by = t.counts.iter().filter(|((_, k, _, l), _)| k == kind && l == label).max_by_key(|(_, n)| **n).map(|((_, _, b, _), _)| b.as_str()).unwrap_or("other");
            latency.push(LatencyRow {
                route: *kind,
                answer: label.as_str().to_owned(),
                by: by.to_owned(),
                count: h.len(),
                p50_ms: ms(h.value_at_quantile(0.50)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                p999_ms: ms(h.value_at_quantile(0.999)),
                max_ms: ms(h.max()),
            });
        }

        let mut all_buys: Option<hdrhistogram::Histogram<u64>> = None;
        for ((kind, _), h) in &t.latency {
            if *kind == Kind::Buy {
                match all_buys.as_mut() {
                    Some(acc) => {
                        let _ = acc.add(h);
                    }
                    None => all_buys = Some(h.clone()),
                }
            }
        }
        let bq = |q: f64| all_buys.as_ref().map_or(0.0, |h| ms(h.value_at_quantile(q)));

        let from_start = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as i64 - crowd.start_offset.as_millis() as i64);
        let start_ms = crowd.start_offset.as_millis() as i64;
        let timeline = t
            .timeline
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let q = |x: f64| if b.latency.is_empty() { None } else { Some(ms(b.latency.value_at_quantile(x))) };
                Slice { t_ms: (i as u64 * BUCKET_MS) as i64 - start_ms, requests: b.requests, by_edge: b.by_edge, by_origin: b.by_origin, errors: b.errors, p50_ms: q(0.5), p99_ms: q(0.99) }
            })
            .collect();

        let mut report = Report {
            scenario: scenario.name.clone(),
            mode,
            run_id: run_id.to_owned(),
            sku: scenario.sale.sku.clone(),
            shoppers: scenario.shoppers(),
            wall_s: crowd.wall.as_secs_f64(),
            stop: crowd.stop,
            funnel,
            edge_reasons,
            origin_outcomes,
            checks,
            populations,
            bot_to_honest_ratio,
            bot_to_human_ratio,
            first_won_ms: from_start(t.first_won),
            last_won_ms: from_start(t.last_won),
            first_sold_out_ms: from_start(t.first_sold_out),
            latency,
            buy_p50_ms: bq(0.5),
            buy_p99_ms: bq(0.99),
            buy_p999_ms: bq(0.999),
            targets: Vec::new(),
            timeline,
            edge_delta: edge,
            sim_queued: crowd.queued.0,
            sim_queued_max_ms: crowd.queued.1.as_secs_f64() * 1000.0,
            origin_delta: origin,
        };
        report.targets = report.compute_targets();
        report
    }

    fn compute_targets(&self) -> Vec<TargetRow> {
        let f = &self.funnel;
        let mut v = vec![
            TargetRow { name: "oversold".into(), value: f.oversold.to_string(), goal: "0".into(), met: f.oversold == 0 },
            TargetRow { name: "unsold units".into(), value: f.unsold.to_string(), goal: "0 (all units sold)".into(), met: f.unsold == 0 },
        ];
        if self.mode == Mode::Edge {
            v.push(TargetRow { name: "answered at the edge".into(), value: format!("{:.2}%", 100.0 * f.edge_share), goal: format!(">= {:.0}%", 100.0 * EDGE_SHARE_TARGET), met: f.edge_share >= EDGE_SHARE_TARGET });
        }
        v.push(TargetRow {
            name: "origin requests per unit sold".into(),
            value: f.origin_per_unit_sold.map_or("n/a".into(), |r| format!("{r:.2}")),
            goal: format!("<= {ORIGIN_PER_UNIT_TARGET:.1}"),
            met: f.origin_per_unit_sold.is_some_and(|r| r <= ORIGIN_PER_UNIT_TARGET),
        });
        v.push(TargetRow {
            name: "bot / honest win share per uid".into(),
            value: self.bot_to_honest_ratio.map_or_else(|| self.unbounded_ratio(), |r| format!("{r:.2}")),
            goal: "<= 1.00".into(),
            met: self.bot_to_honest_ratio.is_some_and(|r| r <= 1.0) || (self.bot_to_honest_ratio.is_none() && self.populations.iter().all(|p| !p.bot || p.winners == 0)),
        });
        let judged = self.populations.iter().filter(|p| p.kind != "honest").count();
        let bound = noise_z(judged);
        for p in self.populations.iter().filter(|p| p.kind != "honest") {
            v.push(TargetRow {
                name: format!("{} / honest win share per uid", p.name),
                value: p.to_honest.map_or_else(|| if p.winners > 0 { "inf (honest won none)".into() } else { "n/a".into() }, |r| match p.to_honest_z {
                    Some(z) if r > 1.0 => format!("{r:.2} (z {z:.2})"),
                    _ => format!("{r:.2}"),
                }),
                goal: format!("<= 1.00, or above by noise only (z <= {bound:.2}: 5 % over {judged} populations)"),
                met: p.to_honest.map_or(p.winners == 0, |r| r <= 1.0 || p.to_honest_z.is_some_and(|z| z <= bound)),
            });
        }
        v.push(TargetRow { name: "cross-checks with the stack".into(), value: format!("{}/{}", self.checks.iter().filter(|c| c.ok).count(), self.checks.len()), goal: "all agree".into(), met: self.checks.iter().all(|c| c.ok) });
        v
    }

    /// The ratio when honest shoppers won nothing: infinite if bots won anything.
    fn unbounded_ratio(&self) -> String {
        if self.populations.iter().any(|p| p.bot && p.winners > 0) { "inf (honest won none)".into() } else { "n/a".into() }
    }

    /// True when every cross-check agrees.
    pub fn consistent(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The tables of the report, as (title, header, rows).
    fn tables(&self) -> Vec<(String, Vec<String>, Vec<Vec<String>>)> {
        let f = &self.funnel;
        let pct = |n: u64| if f.requests > 0 { format!("{:.2}%", 100.0 * n as f64 / f.requests as f64) } else { "-".into() };
        let opt = |v: Option<u64>| v.map_or("-".into(), |n| n.to_string());
        let mut out = Vec::new();
        let mut funnel = vec![
            vec!["requests at the edge".into(), f.requests.to_string(), "100%".into(), format!("{} status, {} buys", f.status_requests, f.buy_requests)],
            vec!["answered at the edge".into(), f.answered_at_edge.to_string(), pct(f.answered_at_edge), "x-seckill-by: edge".into()],
            vec!["reached the origin".into(), f.origin_counted.to_string(), pct(f.origin_counted), format!("origin metrics (crowd saw {} answers by the origin)", f.reached_origin)],
            vec!["committed in Redis (won)".into(), f.commits.to_string(), pct(f.commits), "origin metrics buy/won".into()],
            vec!["orders (admin figures)".into(), f.orders.to_string(), pct(f.orders), format!("{} buyers", f.buyers)],
            vec!["oversold".into(), f.oversold.to_string(), String::new(), "must be 0".into()],
            vec!["unsold units".into(), f.unsold.to_string(), String::new(), format!("of {}", f.stock_total)],
        ];
        if f.other + f.errors > 0 {
            funnel.insert(3, vec!["no answer / Envoy's own reply".into(), (f.errors + f.other).to_string(), pct(f.errors + f.other), format!("{} errors, {} other", f.errors, f.other)]);
        }
        if let Some(r) = f.origin_per_unit_sold {
            funnel.push(vec!["origin requests per unit sold".into(), format!("{r:.2}"), String::new(), String::new()]);
        }
        out.push(("Funnel".into(), vec!["stage".into(), "requests".into(), "share".into(), "source".into()], funnel));
        if !self.edge_reasons.is_empty() {
            let rows = self.edge_reasons.iter().map(|r| vec![r.reason.clone(), opt(r.simulator), opt(r.envoy)]).collect();
            out.push(("Answered at the edge, by reason".into(), vec!["reason".into(), "crowd saw".into(), "Envoy stats".into()], rows));
        }
        let rows = self
            .populations
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.kind.clone(),
                    p.uids.to_string(),
                    p.requests.to_string(),
                    p.buys.to_string(),
                    p.buys_reached_origin.to_string(),
                    p.winners.to_string(),
                    format!("{:.2}%", 100.0 * p.win_share_per_uid),
                    format!("{:.1}%", 100.0 * p.share_of_units),
                ]
            })
            .collect();
        out.push((
            "Populations".into(),
            ["population", "kind", "uids", "requests", "buys", "buys at origin", "winners", "win share per uid", "share of units"].map(String::from).to_vec(),
            rows,
        ));
        let rows = self.latency.iter().map(|l| vec![format!("{:?}", l.route).to_lowercase(), l.answer.clone(), l.by.clone(), l.count.to_string(), format!("{:.2}", l.p50_ms), format!("{:.2}", l.p99_ms), format!("{:.2}", l.p999_ms), format!("{:.2}", l.max_ms)]).collect();
        out.push(("Latency (ms) per answer".into(), ["route", "answer", "by", "count", "p50", "p99", "p99.9", "max"].map(String::from).to_vec(), rows));
        let rows = self.checks.iter().map(|c| vec![c.name.clone(), c.simulator.to_string(), c.stack.to_string(), if c.ok { "ok".into() } else { "MISMATCH".into() }]).collect();
        out.push(("Cross-checks: crowd vs the stack's own figures".into(), ["figure", "crowd", "stack", ""].map(String::from).to_vec(), rows));
        let rows = self.targets.iter().map(|t| vec![t.name.clone(), t.value.clone(), t.goal.clone(), if t.met { "met".into() } else { "MISSED".into() }]).collect();
        out.push(("Targets".into(), ["target", "this run", "goal", ""].map(String::from).to_vec(), rows));
        out
    }

    fn headline(&self) -> Vec<String> {
        let f = &self.funnel;
        let mut v = vec![format!(
            "scenario `{}` ({:?} mode), sku `{}`: {} shoppers, {} units, {} requests in {:.1} s (stopped: {:?})",
            self.scenario, self.mode, self.sku, self.shoppers, f.stock_total, f.requests, self.wall_s, self.stop
        )];
        let at = |v: Option<i64>| v.map_or("-".into(), |ms| format!("{:+.3} s", ms as f64 / 1000.0));
        v.push(format!("first won {}, last won {}, first sold_out {} (from the sale's start)", at(self.first_won_ms), at(self.last_won_ms), at(self.first_sold_out_ms)));
        if let (Some(b), Some(h)) = (self.bot_to_honest_ratio, self.bot_to_human_ratio) {
            v.push(format!("bot uids won {b:.2}x the share per uid of honest shoppers ({h:.2}x that of all human uids)"));
        }
        let per: Vec<String> = self
            .populations
            .iter()
            .filter(|p| p.kind != "honest")
            .map(|p| format!("{} {}", p.name, p.to_honest.map_or_else(|| "n/a".into(), |r| format!("{r:.2}x"))))
            .collect();
        if !per.is_empty() {
            v.push(format!("win share per uid against honest shoppers', per population: {}", per.join(", ")));
        }
        if self.sim_queued > 0 {
            v.push(format!(
                "the simulator's own connection budget (limits.max_in_flight) held back {} requests, up to {:.0} ms: a real crowd has none, so raise it",
                self.sim_queued, self.sim_queued_max_ms
            ));
        }
        let solved: Vec<String> = self.populations.iter().filter(|p| p.solves > 0).map(|p| format!("{} {} ({:.1} ms each)", p.name, p.solves, p.solve_ms.unwrap_or(0.0))).collect();
        if !solved.is_empty() {
            v.push(format!("challenges solved: {}", solved.join(", ")));
        }
        v
    }

    /// The report as terminal tables.
    pub fn to_terminal(&self) -> String {
        let mut s = String::new();
        for l in self.headline() {
            let _ = writeln!(s, "{l}");
        }
        for (title, header, rows) in self.tables() {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header(header.iter().map(Cell::new));
            for r in rows {
                t.add_row(r.iter().enumerate().map(|(i, c)| {
                    let cell = Cell::new(c);
                    if i > 0 && c.chars().next().is_some_and(|ch| ch.is_ascii_digit()) { cell.set_alignment(CellAlignment::Right) } else { cell }
                }));
            }
            let _ = writeln!(s, "\n{title}\n{t}");
        }
        s
    }

    /// The report as Markdown (GitHub tables); `chart` is the SVG's file name, linked if given.
    pub fn to_markdown(&self, chart: Option<&str>) -> String {
        let mut s = format!("# Flash-sale simulation: `{}`\n\n", self.scenario);
        for l in self.headline() {
            let _ = writeln!(s, "- {l}");
        }
        if let Some(c) = chart {
            let _ = writeln!(s, "\n![funnel and latency over time]({c})");
        }
        for (title, header, rows) in self.tables() {
            let _ = writeln!(s, "\n## {title}\n");
            let _ = writeln!(s, "| {} |", header.join(" | "));
            let _ = writeln!(s, "|{}|", header.iter().enumerate().map(|(i, _)| if i == 0 { "---" } else { "---:" }).collect::<Vec<_>>().join("|"));
            for r in rows {
                let _ = writeln!(s, "| {} |", r.join(" | "));
            }
        }
        s
    }

    /// Write `report.md`, `report.json` and `chart.svg` into `dir`; the paths written.
    pub fn write(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let svg = dir.join("chart.svg");
        std::fs::write(&svg, crate::chart::render(self))?;
        let md = dir.join("report.md");
        std::fs::write(&md, self.to_markdown(Some("chart.svg")))?;
        let json = dir.join("report.json");
        std::fs::write(&json, serde_json::to_string_pretty(self).map_err(std::io::Error::other)?)?;
        Ok(vec![md, svg, json])
    }
}

/// (route, answer) pairs of a tally, for tests.
pub fn answers(t: &Tally) -> BTreeMap<(Kind, By, String), u64> {
    let mut m = BTreeMap::new();
    for ((_, k, b, l), n) in &t.counts {
        *m.entry((*k, *b, l.as_str().to_owned())).or_insert(0) += n;
    }
    m
}

/// The funnel of a sale released in batches, one row per batch's report (see
/// [`crate::simulate::simulate_batches`]): what each batch's crowd sent, what the edges answered,
/// the units out and sold by the end of the batch, and whether any was oversold.
pub fn batches_summary(reports: &[Report]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["batch", "requests", "buys", "answered at the edges", "origin requests", "orders", "units out", "sold by its end", "oversold"].iter().map(Cell::new));
    for (i, r) in reports.iter().enumerate() {
        let f = &r.funnel;
        let sold = f.stock_total.saturating_sub(f.stock_left);
        t.add_row(
            [
                (i + 1).to_string(),
                f.requests.to_string(),
                f.buy_requests.to_string(),
                format!("{:.2}%", f.edge_share * 100.0),
                f.origin_counted.to_string(),
                f.orders.to_string(),
                f.stock_total.to_string(),
                sold.to_string(),
                f.oversold.to_string(),
            ]
            .iter()
            .map(|c| Cell::new(c).set_alignment(CellAlignment::Right)),
        );
    }
    format!("\nThe sale, batch by batch (each batch's units on sale from its start only)\n{t}")
}

/// The chance a run may call a fair population unfair: 5 %. A population that wins exactly like
/// honest shoppers measures above them in half of all runs, by about one standard error, so "above
/// 1.00" alone would fail half of all fair runs.
pub const NOISE_LEVEL: f64 = 0.05;

/// How many standard errors above the honest shoppers' a population's win share per uid may be and
/// still be sampling noise, when `judged` populations are judged at once. Each is judged at
/// `NOISE_LEVEL / judged` (Bonferroni, one-sided), so that a run in which every population wins
/// exactly like honest shoppers calls one of them unfair in at most 5 % of runs, however many
/// there are: 1.645 for one population, 2.128 for the demo's three. (Judging three at 1.645 each
/// calls a fair crowd unfair in up to 14 % of runs.)
pub fn noise_z(judged: usize) -> f64 {
    let tail = NOISE_LEVEL / judged.max(1) as f64;
    // The normal upper tail falls from 0.5 at z = 0 to nothing: halve [0, 10] until it is exact.
    let (mut below, mut above) = (0.0_f64, 10.0_f64);
    for _ in 0..64 {
        let mid = (below + above) / 2.0;
        if upper_tail(mid) > tail {
            below = mid;
        } else {
            above = mid;
        }
    }
    above
}

/// P(Z > z) for a standard normal Z.
fn upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// How many standard errors the win share per uid of `(winners, uids)` is above the honest
/// shoppers' `(winners, uids)`: the two-proportion z statistic with the pooled share (negative:
/// below). `None` when either side has no uids or nobody and everybody won (no variance).
pub fn excess_z(population: (u64, u64), honest: (u64, u64)) -> Option<f64> {
    let ((w, n), (hw, hn)) = (population, honest);
    if n == 0 || hn == 0 {
        return None;
    }
    let pooled = (w + hw) as f64 / (n + hn) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n as f64 + 1.0 / hn as f64)).sqrt();
    (se > 0.0).then(|| (w as f64 / n as f64 - hw as f64 / hn as f64) / se)
}

#[cfg(test)]
mod excess_tests {
    use super::*;

    #[test]
    fn equal_shares_are_zero_and_a_clear_excess_is_far_above_noise() {
        assert_eq!(excess_z((10, 100), (30, 300)), Some(0.0));
        // The first fairness runs of issue 12: the impatient won 167 of 1,140 uids, honest 330 of 3,600.
        assert!(excess_z((167, 1140), (330, 3600)).is_some_and(|z| z > 4.0));
        // After the fix: 122 of 1,140 against 379 of 3,600 (1.02x) is noise.
        assert!(excess_z((122, 1140), (379, 3600)).is_some_and(|z| z < noise_z(1)));
        assert!(excess_z((0, 100), (0, 300)).is_none(), "no variance");
        assert!(excess_z((1, 0), (3, 300)).is_none());
        assert!(excess_z((1, 100), (30, 300)).is_some_and(|z| z < 0.0));
    }

    #[test]
    fn the_noise_bound_is_the_normal_quantile_at_five_percent_over_the_populations_judged() {
        for (judged, z) in [(1, 1.6449), (2, 1.9600), (3, 2.1280), (0, 1.6449)] {
            assert!((noise_z(judged) - z).abs() < 1e-3, "{judged} judged: {} against {z}", noise_z(judged));
        }
        // The fresh-clone demo of stop 19: 12 of 70 scripted uids won against the honest shoppers
        // 376 of 3,600 (1.64x, z 1.81): beyond one population's bound, within three's. Pooled with
        // three more runs the scripted bots measured 0.80x.
        let z = excess_z((12, 70), (376, 3600)).unwrap_or(0.0);
        assert!(z > noise_z(1) && z < noise_z(3), "z {z}");
    }
}
