//! One whole simulation against a running stack: (re)create the sale, read the stack's figures,
//! run the crowd, read them again, build the report.
//!
//! It exists so the binary (`seckill-sim run`, used by `cargo xtask demo`), the end-to-end
//! benchmark and the accounting tests all do exactly the same steps in the same order.

use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString as _};

use crate::crowd::{self, CrowdError, CrowdPlan, Mode, Target};
use crate::probe::{Probe, ProbeError};
use crate::report::Report;
use crate::scenario::Scenario;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Crowd(#[from] CrowdError),
    #[error("{0}")]
    Setup(String),
}

/// Where the stack is.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// The public edge; required for [`Mode::Edge`].
    pub edge: Option<String>,
    pub origin: String,
    /// Envoy's admin (its stats); without it the edge side of the report stays empty.
    pub envoy_admin: Option<String>,
}

/// Secrets of the stack (the demo stack's by default).
#[derive(Debug, Clone)]
pub struct Secrets {
    pub ticket_secret: String,
    pub admin_token: String,
    pub edge_key: String,
}

impl Default for Secrets {
    fn default() -> Self {
        use seckill_core::demo;
        Secrets { ticket_secret: demo::TICKET_SECRET.into(), admin_token: demo::ADMIN_TOKEN.into(), edge_key: demo::EDGE_KEY.into() }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: Scenario,
    pub mode: Mode,
    pub addresses: Addresses,
    pub secrets: Secrets,
    /// Create (or reset) the sale from the scenario first; otherwise use the sale as it is.
    pub create_sale: bool,
    pub progress: bool,
}

/// A fresh run id: the prefix of this run's uids.
pub fn run_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 6).to_lowercase()
}

/// The crowd only ever targets this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn ensure_loopback(url: &str) -> Result<(), SimError> {
    let uri: hyper::Uri = url.parse().map_err(|e| SimError::Setup(format!("`{url}` is not a URL: {e}")))?;
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(SimError::Setup(format!("`{url}` is not on this machine: the simulator only sends load to loopback addresses")));
    }
    Ok(())
}

/// Run the scenario against the stack and report: one report for a sale released at once (a
/// scenario with batches is an error here: see [`simulate_batches`]).
pub async fn simulate(opts: Options) -> Result<Report, SimError> {
    if !opts.scenario.sale.batches.is_empty() {
        return Err(SimError::Setup("this scenario releases its stock in batches: run it with simulate_batches".into()));
    }
    let mut reports = simulate_batches(opts).await?;
    reports.pop().ok_or_else(|| SimError::Setup("the run made no report".into()))
}

/// Run the scenario against the stack, the crowd once per batch of the sale (once for a sale
/// without batches), and report each run: one funnel per batch. The same uids come back for every
/// batch (a winner is told `already_won`), each batch's crowd arriving before its start and cut
/// at the next batch's start, so every report counts one batch.
pub async fn simulate_batches(opts: Options) -> Result<Vec<Report>, SimError> {
    let s = &opts.scenario;
    let a = &opts.addresses;
    // `origin` and `envoy_admin` may list a fleet's, comma-separated: every one is checked.
    for list in a.edge.iter().chain(std::iter::once(&a.origin)).chain(a.envoy_admin.iter()) {
        for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            ensure_loopback(url)?;
        }
    }
    let edge_admin = if opts.mode == Mode::Edge { opts.addresses.envoy_admin.clone() } else { None };
    let probe = Probe::new(edge_admin, &opts.addresses.origin, &opts.secrets.admin_token, &s.sale.sku);
    let base_url = match opts.mode {
        Mode::Edge => opts.addresses.edge.clone().ok_or_else(|| SimError::Setup("an edge address is needed to go through the edge".into()))?,
        Mode::Direct => opts.addresses.origin.split(',').next().unwrap_or_default().trim().to_owned(),
    };
    let starts_at = if opts.create_sale {
        let starts_at = seckill_stack::now_ms() + s.sale.starts_in_ms;
        probe.create_sale(s.sale.stock, starts_at, starts_at + s.sale.open_for_ms, s.sale.challenge_bits, &s.sale.batches_at(starts_at)).await?;
        starts_at
    } else {
        probe.figures().await?.starts_at
    };
    if opts.mode == Mode::Edge && !probe.wait_edge_knows(&base_url, starts_at, Duration::from_secs(5)).await {
        return Err(SimError::Setup(format!("the edge at {base_url} does not answer the status of `{}` itself after 5 s: is its flags feed working?", s.sale.sku)));
    }
    let run_id = run_id();
    let batch_starts: Vec<u64> = match s.sale.batches_at(starts_at) {
        b if b.is_empty() => vec![starts_at],
        b => b.iter().map(|b| b.at).collect(),
    };
    let mut reports = Vec::with_capacity(batch_starts.len());
    for (i, at) in batch_starts.iter().enumerate() {
        let next = batch_starts.get(i + 1).copied();
        let target = Target { mode: opts.mode, base_url: base_url.clone(), ticket_secret: opts.secrets.ticket_secret.clone(), edge_key: opts.secrets.edge_key.clone() };
        reports.push(crowd_run(&opts, &probe, target, &run_id, *at, next).await?);
    }
    Ok(reports)
}

/// One crowd against the sale open from `opens_at` (its start or a batch's), stopped before
/// `until` (the next batch's start), between two snapshots of the stack.
async fn crowd_run(opts: &Options, probe: &Probe, target: Target, run_id: &str, opens_at: u64, until: Option<u64>) -> Result<Report, SimError> {
    let mut scenario = opts.scenario.clone();
    if let Some(until) = until {
        // This batch's crowd ends before the next batch's crowd gathers (each population arrives
        // up to its `arrive_before_start_ms` before a start): each report counts one batch.
        let left = until.saturating_sub(seckill_stack::now_ms()).saturating_sub(scenario.gather_ms()).max(1);
        scenario.limits.max_duration_ms = scenario.limits.max_duration_ms.min(left);
    }
    // The edge's counts of the status checks before (and the last batch's answers) reach Envoy
    // on its next tick: let them land before the baseline is taken.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = probe.snapshot().await?;
    tracing::info!(run_id, sku = %scenario.sale.sku, mode = ?opts.mode, opens_at, "crowd starting");
    let crowd = crowd::run(CrowdPlan { scenario: scenario.clone(), target, starts_at_ms: opens_at, run_id: run_id.to_owned(), progress: opts.progress }).await?;
    // Requests that timed out on our side may still be finishing in the stack, and the edge
    // filter hands its counts to Envoy on each worker's tick (every poll interval, 100 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = probe.snapshot().await?;
    Ok(Report::build(&scenario, opts.mode, run_id, &crowd, &before, &after))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_targets() {
        for ok in ["http://127.0.0.1:10000", "http://localhost:8080", "http://127.3.4.5:1", "http://[::1]:9901"] {
            assert!(super::ensure_loopback(ok).is_ok(), "{ok}");
        }
        for bad in ["http://10.0.0.1:10000", "http://example.com", "http://192.168.1.2:80", "not a url"] {
            assert!(super::ensure_loopback(bad).is_err(), "{bad}");
        }
    }
}
