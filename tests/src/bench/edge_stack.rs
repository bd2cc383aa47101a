//! `seckill-bench edge-stack` (`cargo xtask bench edge-stack`): what each build of the filter costs
//! on the **stack's own Envoy config** (`envoy/edge.yaml.tmpl`: the page routes, the compressor and
//! buffer filters, the `origin` cluster with its health checks), not the bench's bare listeners.
//!
//! Three Envoys (2 workers each) rendered from the same template: without the filter, with the
//! proxy-wasm build, with the native build. Their origin is one fake ([`FeedServer`]: every request
//! answered 200 with the flags feed, so the filter has its feed and a passed buy gets an answer).
//! Four kinds of request, each measured 1 s at a time through a build and compared with the mean
//! of the no-filter readings taken just before and just after it (this shared machine drifts
//! within a minute), 6 rounds, medians:
//!
//! - `page`: `GET /`, the sale page from the edge's own files: the filter lets it through untouched;
//! - `fresh`: a buy by a uid never seen, passed to the origin by the filter (ticket checked, uid
//!   recorded): the same upstream answer with or without the filter;
//! - `repeat`: a buy by a uid that already passed: the filter answers `throttled` itself, where
//!   Envoy without the filter hands it to the origin;
//! - `status`: `GET /api/sales/{sku}`: the filter answers from its flags, where Envoy without it
//!   asks the origin.
//!
//! The last two are what the edge is for (an answer that costs the origin nothing), so their ratio
//! can exceed 1. Results go to `target/bench/edge-stack.json`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use seckill_stack::envoy_proc::{dev_filter_config, render_template, EdgeSettings, EnvoyProc};
use seckill_stack::net::free_port;
use seckill_stack::paths;

use crate::bench::edge::{cycle, drive, median, mint, once, over_bracket, CONNECTIONS, REPEAT_UIDS};
use crate::bench::envoy::{envoy_bin, filter_wasm, native_module, wait_for_feed_at, FeedServer, EDGE_KEY, SKU, TICKET_SECRET};
use crate::bench::load::{request_bytes, Source};

/// Rounds (each measures every kind through both builds, each reading between two no-filter ones).
pub const ROUNDS: usize = 6;
/// Seconds per reading.
pub const SECONDS: u64 = 1;

/// What is measured (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Page,
    Fresh,
    Repeat,
    Status,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Page, Kind::Fresh, Kind::Repeat, Kind::Status];

    fn name(self) -> &'static str {
        match self {
            Kind::Page => "page",
            Kind::Fresh => "fresh",
            Kind::Repeat => "repeat",
            Kind::Status => "status",
        }
    }
}

/// One Envoy on the stack's template.
struct StackEnvoy {
    name: &'static str,
    /// Held for the run: stopped when dropped.
    _process: EnvoyProc,
    addr: SocketAddr,
    /// Its config and `envoy.log`.
    dir: PathBuf,
}

/// Render the stack's template with `module` (or without any filter) and start it.
fn start(name: &'static str, module: Option<&Path>, origin: SocketAddr, site: &Path) -> anyhow::Result<StackEnvoy> {
    let template_path = paths::workspace().join("envoy/edge.yaml.tmpl");
    let template = std::fs::read_to_string(&template_path)?;
    // Without a filter: the template's filter line left empty (the chain is then compressor,
    // buffer, router: the stack's own minus the filter).
    let template = if module.is_none() { template.replace("{{EDGE_FILTER}}", "") } else { template };
    let settings = EdgeSettings {
        edge_port: free_port(),
        admin_port: free_port(),
        origins: vec![origin],
        filter_wasm: module.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("none.wasm")),
        filter_config: dev_filter_config(TICKET_SECRET, EDGE_KEY, &[("window_ms", "3600000")]),
        site_dir: site.to_path_buf(),
    };
    let dir = paths::scratch_dir(&format!("bench-edge-stack-{name}"));
    let yaml = dir.join("envoy.yaml");
    std::fs::write(&yaml, render_template(&template, &settings))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], settings.edge_port));
    let admin = SocketAddr::from(([127, 0, 0, 1], settings.admin_port));
    let envoy = EnvoyProc::start_config(&envoy_bin().map_err(anyhow::Error::msg)?, &yaml, addr, admin, &dir.join("envoy.log"), 2).map_err(anyhow::Error::msg)?;
    Ok(StackEnvoy { name, _process: envoy, addr, dir })
}

/// The requests of `kind` for round `round` (fresh uids are new in every round and every Envoy).
fn requests(kind: Kind, envoy: &str, round: u64, batch: u64, repeats: &Arc<Vec<Bytes>>) -> Source {
    match kind {
        Kind::Page => cycle(Arc::new(vec![request_bytes("GET", "/", &[])])),
        Kind::Status => cycle(Arc::new(vec![request_bytes("GET", &format!("/api/sales/{SKU}"), &[])])),
        Kind::Fresh => once(mint(&format!("s{envoy}{round}-"), 0, batch)),
        Kind::Repeat => cycle(repeats.clone()),
    }
}

/// One reading of `kind` through `e`: requests per second, every answer checked.
async fn measure(e: &StackEnvoy, kind: Kind, round: u64, batch: u64, repeats: &Arc<Vec<Bytes>>) -> anyhow::Result<f64> {
    let r = drive(e.addr, CONNECTIONS, Duration::from_secs(SECONDS), requests(kind, e.name, round, batch, repeats)).await;
    // A repeat is refused by the filter (429) and answered by the origin without it (200).
    let expected = if kind == Kind::Repeat && e.name != "none" { 429 } else { 200 };
    let wrong = r.answered - r.status(expected);
    anyhow::ensure!(wrong == 0 && r.errors == 0 && r.answered > 0, "{} / {}: {wrong} answers other than {expected}, {} errors: {:?}", e.name, kind.name(), r.errors, r.statuses);
    Ok(r.per_second())
}

/// The whole run; returns the JSON for `edge-stack.json`.
pub async fn run() -> anyhow::Result<serde_json::Value> {
    let site = paths::stack_dir().join("site");
    anyhow::ensure!(site.join("index.html").is_file(), "no sale page in {} (cargo xtask build)", site.display());
    let origin = FeedServer::start().await?;
    let none = start("none", None, origin.addr, &site)?;
    let wasm = start("wasm", Some(&filter_wasm().map_err(anyhow::Error::msg)?), origin.addr, &site)?;
    let native = start("native", Some(&native_module().map_err(anyhow::Error::msg)?), origin.addr, &site)?;
    anyhow::ensure!(wait_for_feed_at(&[wasm.addr, native.addr], Duration::from_secs(20)), "a build never answered the sale status at the edge; see envoy.log in {} and {}", wasm.dir.display(), native.dir.display());
    println!("edge benchmark on the stack's own Envoy config: 3 Envoys (none / proxy-wasm / native, 2 workers each), {CONNECTIONS} connections, {SECONDS} s readings, {ROUNDS} rounds, each reading between two no-filter readings");
    let repeats = mint("sr", 0, REPEAT_UIDS as u64);
    for e in [&wasm, &native] {
        let r = drive(e.addr, 8, Duration::from_secs(30), once(repeats.clone())).await;
        anyhow::ensure!(r.status(200) == REPEAT_UIDS as u64, "priming the repeat uids through {}: {:?}", e.name, r.statuses);
    }
    let warm = drive(none.addr, CONNECTIONS, Duration::from_secs(1), cycle(repeats.clone())).await;
    let batch = ((warm.per_second() * SECONDS as f64 * 2.0) as u64).max(20_000);

    let mut ratios: BTreeMap<(&str, Kind), Vec<f64>> = BTreeMap::new();
    for round in 0..ROUNDS as u64 {
        for kind in Kind::ALL {
            let mut before = measure(&none, kind, round, batch, &repeats).await?;
            for e in [&wasm, &native] {
                let rate = measure(e, kind, round, batch, &repeats).await?;
                let after = measure(&none, kind, round, batch, &repeats).await?;
                ratios.entry((e.name, kind)).or_default().push(over_bracket(rate, before, after));
                before = after;
            }
        }
    }
    report(&ratios)
}

/// Print the medians and build the JSON.
fn report(ratios: &BTreeMap<(&str, Kind), Vec<f64>>) -> anyhow::Result<serde_json::Value> {
    let mut out = serde_json::Map::new();
    println!("  {:<10} {:>10} {:>10}   (ratio to the same config without the filter; medians of {ROUNDS})", "request", "proxy-wasm", "native");
    for kind in Kind::ALL {
        let get = |build: &str| median(&mut ratios.get(&(build, kind)).cloned().unwrap_or_default());
        let (w, n) = (get("wasm"), get("native"));
        println!("  {:<10} {w:>10.2} {n:>10.2}", kind.name());
        out.insert(kind.name().into(), serde_json::json!({"proxy_wasm": w, "native": n, "rounds_proxy_wasm": ratios.get(&("wasm", kind)), "rounds_native": ratios.get(&("native", kind))}));
    }
    Ok(serde_json::json!({"connections": CONNECTIONS, "seconds_per_reading": SECONDS, "rounds": ROUNDS, "ratio_to_no_filter": out}))
}
