//! `seckill-bench edge` (`cargo xtask bench edge`): what the seckill filter costs Envoy, and how
//! much memory a million shoppers leave in it.
//!
//! 1. **Throughput**, from one Envoy process ([`crate::edge_bench::BenchEnvoy`], 2 workers): requests
//!    per second of a direct response with no filter (1.0), with Envoy's native per-uid
//!    `local_ratelimit` (fresh uids passed, repeats refused), and with our filter (fresh uids passed,
//!    repeats throttled). The variants alternate in rounds (order rotated each round) so drift on
//!    this shared 2-core machine hits them alike; each ratio is taken against the no-filter figure
//!    of the same round, and the median over rounds is reported. Requests are pre-built (tickets
//!    pre-minted) and the load generator runs on one thread, so it takes as little CPU as it can.
//! 2. **Memory**: 1,000,000 distinct uids through the filter with its default configuration (a
//!    fresh Envoy), Envoy's `VmRSS` and admin `/memory` before, half-way and after, against the
//!    filter's stated bound.
//!
//! Results go to `target/bench/edge.json`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use seckill_stack::envoy_proc::dev_filter_config;

use crate::edge_bench::{buy_request, envoy_bin, filter_wasm, mib, slots_bound_bytes, BenchEnvoy, FeedServer, Memory, EDGE_KEY, TICKET_SECRET};
use crate::load::{self, LoadReport, Source};

/// Connections of the load generator.
pub const CONNECTIONS: usize = 32;
/// Seconds per variant per round.
pub const SECONDS: u64 = 3;
/// Rounds (each runs every variant once).
pub const ROUNDS: usize = 4;
/// Distinct uids cycled by the "repeat" variants (each already passed once, so every measured
/// request is refused: 429).
pub const REPEAT_UIDS: usize = 1_000;
/// Uids of the memory run.
pub const MEMORY_UIDS: u64 = 1_000_000;

/// One load run on a thread of its own with a single-threaded runtime (the bench's own runtime
/// stays free; the generator uses at most one core).
pub async fn drive(addr: SocketAddr, connections: usize, limit: Duration, source: Source) -> LoadReport {
    tokio::task::spawn_blocking(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(_) => return LoadReport::default(),
        };
        rt.block_on(load::run(addr, connections, limit, source))
    })
    .await
    .unwrap_or_default()
}

fn cycle(reqs: Arc<Vec<Bytes>>) -> Source {
    Arc::new(move |n| reqs.get((n as usize) % reqs.len().max(1)).cloned())
}

fn once(reqs: Arc<Vec<Bytes>>) -> Source {
    Arc::new(move |n| reqs.get(n as usize).cloned())
}

fn mint(prefix: &str, from: u64, count: u64) -> Arc<Vec<Bytes>> {
    Arc::new((from..from + count).map(|i| buy_request(&format!("{prefix}{i}"))).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Plain,
    NativeFresh,
    NativeRepeat,
    FilterFresh,
    FilterRepeat,
}

impl Variant {
    const ALL: [Variant; 5] = [Variant::Plain, Variant::NativeFresh, Variant::NativeRepeat, Variant::FilterFresh, Variant::FilterRepeat];

    fn key(self) -> &'static str {
        match self {
            Variant::Plain => "no_filter",
            Variant::NativeFresh => "native_local_ratelimit_fresh_uids",
            Variant::NativeRepeat => "native_local_ratelimit_repeats",
            Variant::FilterFresh => "seckill_filter_fresh_uids",
            Variant::FilterRepeat => "seckill_filter_throttled_repeats",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "no filter (direct response)",
            Variant::NativeFresh => "native local_ratelimit, per-uid descriptor, fresh uids (200)",
            Variant::NativeRepeat => "native local_ratelimit, per-uid descriptor, repeats (429)",
            Variant::FilterFresh => "seckill filter, fresh uids passed (a)",
            Variant::FilterRepeat => "seckill filter, throttled repeats (b)",
        }
    }

    /// The status every measured answer must have.
    fn expected(self) -> u16 {
        match self {
            Variant::Plain | Variant::NativeFresh | Variant::FilterFresh => 200,
            Variant::NativeRepeat | Variant::FilterRepeat => 429,
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The throughput part. Returns the JSON for `edge.json`.
pub async fn throughput() -> anyhow::Result<serde_json::Value> {
    let (bin, wasm) = (envoy_bin().map_err(anyhow::Error::msg)?, filter_wasm().map_err(anyhow::Error::msg)?);
    let feed = FeedServer::start().await?;
    // A window longer than the run: every repeat is throttled, every fresh uid passes. The fresh
    // variant sends over a million uids in all, more than the default 65,536 × 16 slots hold, and
    // a full bucket evicts its oldest entry: the primed repeats. So the bench uses 4× the buckets
    // (about a third full at the end) and checks below that nothing was evicted.
    let config = dev_filter_config(TICKET_SECRET, EDGE_KEY, &[("window_ms", "3600000"), ("buckets", "262144")]);
    let envoy = BenchEnvoy::start(&bin, &wasm, &config, feed.addr, "bench-edge").map_err(anyhow::Error::msg)?;
    anyhow::ensure!(envoy.wait_for_feed(Duration::from_secs(20)), "the filter never loaded the bench feed; see {}", envoy.dir.display());
    println!("edge benchmark: one Envoy (2 workers), {CONNECTIONS} keep-alive connections, {SECONDS} s per variant, {ROUNDS} rounds, variants alternate");

    // The repeat variants' uids pass once first, so every measured request of theirs is refused.
    let repeats = mint("r", 0, REPEAT_UIDS as u64);
    for addr in [envoy.native, envoy.filter] {
        let r = drive(addr, 8, Duration::from_secs(30), once(repeats.clone())).await;
        anyhow::ensure!(r.status(200) == REPEAT_UIDS as u64, "priming the repeat uids: {:?}", r.statuses);
    }
    // Warm-up (also sizes the fresh-uid batches): one short run of each.
    let warm = drive(envoy.plain, CONNECTIONS, Duration::from_secs(1), cycle(repeats.clone())).await;
    let batch = ((warm.per_second() * SECONDS as f64 * 1.5) as u64).max(20_000);
    let _ = drive(envoy.filter, CONNECTIONS, Duration::from_secs(1), cycle(repeats.clone())).await;

    let mut rates: BTreeMap<Variant, Vec<f64>> = BTreeMap::new();
    let mut ratios: BTreeMap<Variant, Vec<f64>> = BTreeMap::new();
    let mut fresh_from = 0u64;
    for round in 0..ROUNDS {
        let mut order = Variant::ALL.to_vec();
        let n = order.len();
        order.rotate_left(round % n);
        let mut this_round: BTreeMap<Variant, f64> = BTreeMap::new();
        for v in order {
            let (addr, source) = match v {
                Variant::Plain => (envoy.plain, cycle(repeats.clone())),
                Variant::NativeRepeat => (envoy.native, cycle(repeats.clone())),
                Variant::FilterRepeat => (envoy.filter, cycle(repeats.clone())),
                Variant::NativeFresh | Variant::FilterFresh => {
                    // Minted before the clock starts; uids never seen by either listener.
                    let reqs = mint(if v == Variant::NativeFresh { "n" } else { "f" }, fresh_from, batch);
                    (if v == Variant::NativeFresh { envoy.native } else { envoy.filter }, once(reqs))
                }
            };
            let r = drive(addr, CONNECTIONS, Duration::from_secs(SECONDS), source).await;
            let wrong = r.answered - r.status(v.expected());
            anyhow::ensure!(wrong == 0 && r.errors == 0, "{}: {wrong} answers other than {} and {} errors: {:?}", v.label(), v.expected(), r.errors, r.statuses);
            this_round.insert(v, r.per_second());
        }
        fresh_from += batch;
        let plain = this_round.get(&Variant::Plain).copied().unwrap_or(0.0);
        for (v, rate) in &this_round {
            rates.entry(*v).or_default().push(*rate);
            ratios.entry(*v).or_default().push(rate / plain.max(1e-9));
        }
        let line: Vec<String> = Variant::ALL.iter().map(|v| format!("{:.0}", this_round.get(v).copied().unwrap_or(0.0))).collect();
        println!("  round {}: req/s {}", round + 1, line.join(" / "));
    }

    // The filter hands its counts to Envoy on each worker's tick (100 ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = |name: &str| envoy.stat(name).unwrap_or(0);
    let local = stats("wasmcustom.seckill_edge_local_refusals");
    let passed = stats("wasmcustom.seckill_edge_decisions.reason.passed");
    let throttled = stats("wasmcustom.seckill_edge_decisions.reason.throttled");
    let host_errors = stats("wasmcustom.seckill_edge_host_errors");
    let evictions = stats("wasmcustom.seckill_edge_evictions");
    let cas_exhausted = stats("wasmcustom.seckill_edge_cas_exhausted");

    println!("  {:<62} {:>10} {:>7}   rounds (req/s)", "variant", "req/s", "ratio");
    let mut out = serde_json::Map::new();
    for v in Variant::ALL {
        let mut r = rates.get(&v).cloned().unwrap_or_default();
        let mut q = ratios.get(&v).cloned().unwrap_or_default();
        let rounds: Vec<String> = r.iter().map(|x| format!("{x:.0}")).collect();
        let (rate, ratio) = (median(&mut r), median(&mut q));
        let target = match v {
            Variant::FilterFresh | Variant::FilterRepeat => if ratio >= 0.70 { "  (target >= 0.70: met)" } else { "  (target >= 0.70: MISSED)" },
            _ => "",
        };
        println!("  {:<62} {:>10.0} {:>7.2}   [{}]{target}", v.label(), rate, ratio, rounds.join(", "));
        out.insert(v.key().into(), serde_json::json!({"req_per_s": rate, "ratio_to_no_filter": ratio, "rounds_req_per_s": rates.get(&v), "rounds_ratio": ratios.get(&v)}));
    }
    println!("  filter counters: passed {passed}, throttled {throttled} (of which {local} from the worker's own copy, no shared-data read), host errors {host_errors}, CAS exhausted {cas_exhausted}");
    anyhow::ensure!(host_errors == 0 && cas_exhausted == 0, "the filter degraded during the benchmark (host errors {host_errors}, CAS exhausted {cas_exhausted})");
    anyhow::ensure!(evictions == 0, "{evictions} slot entries were evicted: the repeat variant may have measured passes");
    Ok(serde_json::json!({
        "connections": CONNECTIONS, "seconds_per_variant": SECONDS, "rounds": ROUNDS, "envoy_concurrency": 2,
        "variants": out,
        "filter_counters": {"passed": passed, "throttled": throttled, "local_refusals": local, "host_errors": host_errors, "cas_exhausted": cas_exhausted},
    }))
}

/// Send `count` fresh uids (`prefix0`, `prefix1`, ...) through `addr`; tickets are minted as they go.
pub async fn fresh_uids(addr: SocketAddr, prefix: &str, from: u64, count: u64, connections: usize, limit: Duration) -> LoadReport {
    let prefix = prefix.to_owned();
    let end = from + count;
    let source: Source = Arc::new(move |n| {
        let i = from + n;
        (i < end).then(|| buy_request(&format!("{prefix}{i}")))
    });
    drive(addr, connections, limit, source).await
}

fn mem_json(m: &Memory) -> serde_json::Value {
    serde_json::json!({"rss_bytes": m.rss, "allocated_bytes": m.allocated, "heap_size_bytes": m.heap_size})
}

/// The memory part: 1,000,000 distinct uids through the filter's default configuration.
pub async fn memory() -> anyhow::Result<serde_json::Value> {
    let (bin, wasm) = (envoy_bin().map_err(anyhow::Error::msg)?, filter_wasm().map_err(anyhow::Error::msg)?);
    let feed = FeedServer::start().await?;
    let config = dev_filter_config(TICKET_SECRET, EDGE_KEY, &[]);
    let (buckets, slots) = (65_536u64, 16u64);
    let bound = slots_bound_bytes(buckets, slots);
    let envoy = BenchEnvoy::start(&bin, &wasm, &config, feed.addr, "bench-edge-memory").map_err(anyhow::Error::msg)?;
    anyhow::ensure!(envoy.wait_for_feed(Duration::from_secs(20)), "the filter never loaded the bench feed; see {}", envoy.dir.display());
    println!("edge memory: {MEMORY_UIDS} distinct uids through the filter (default config: {buckets} buckets x {slots} slots), fresh Envoy");
    // Warm the connections and code paths with a few uids first, so "before" is Envoy at work.
    let warm = fresh_uids(envoy.filter, "w", 0, 5_000, CONNECTIONS, Duration::from_secs(60)).await;
    anyhow::ensure!(warm.status(200) == 5_000, "warm-up: {:?}", warm.statuses);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = envoy.memory();
    let started = Instant::now();
    let half = MEMORY_UIDS / 2;
    let a = fresh_uids(envoy.filter, "m", 0, half, CONNECTIONS, Duration::from_secs(240)).await;
    let mid = envoy.memory();
    let b = fresh_uids(envoy.filter, "m", half, MEMORY_UIDS - half, CONNECTIONS, Duration::from_secs(240)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = envoy.memory();
    let secs = started.elapsed().as_secs_f64();
    let passed = a.status(200) + b.status(200);
    anyhow::ensure!(passed == MEMORY_UIDS, "only {passed} of {MEMORY_UIDS} uids went through (statuses {:?} / {:?}, errors {})", a.statuses, b.statuses, a.errors + b.errors);
    let evictions = envoy.stat("wasmcustom.seckill_edge_evictions").unwrap_or(0);
    let grew = |x: u64, y: u64| y.saturating_sub(x);
    println!("  sent {MEMORY_UIDS} uids in {secs:.0} s ({:.0}/s); slot evictions: {evictions}", MEMORY_UIDS as f64 / secs);
    println!("  stated bound (slots, whole process): {buckets} x (4 + 25 x {slots} + {}) = {} ({bound} B)", crate::edge_bench::KEY_OVERHEAD_BYTES, mib(bound));
    println!("  {:<28} {:>12} {:>12} {:>12}", "", "before", "500k uids", "1M uids");
    println!("  {:<28} {:>12} {:>12} {:>12}", "VmRSS", mib(before.rss), mib(mid.rss), mib(after.rss));
    println!("  {:<28} {:>12} {:>12} {:>12}", "admin /memory allocated", mib(before.allocated), mib(mid.allocated), mib(after.allocated));
    println!("  {:<28} {:>12} {:>12} {:>12}", "admin /memory heap_size", mib(before.heap_size), mib(mid.heap_size), mib(after.heap_size));
    println!(
        "  growth over 1M uids: RSS +{}, allocated +{} (bound {}); second 500k: RSS +{}, allocated +{}",
        mib(grew(before.rss, after.rss)),
        mib(grew(before.allocated, after.allocated)),
        mib(bound),
        mib(grew(mid.rss, after.rss)),
        mib(grew(mid.allocated, after.allocated))
    );
    let within = grew(before.rss, after.rss) <= bound && grew(before.allocated, after.allocated) <= bound;
    println!("  within the bound: {}", if within { "yes" } else { "NO" });
    Ok(serde_json::json!({
        "uids": MEMORY_UIDS, "buckets": buckets, "slots_per_bucket": slots, "bound_bytes": bound,
        "before": mem_json(&before), "after_500k": mem_json(&mid), "after_1m": mem_json(&after),
        "rss_growth_bytes": grew(before.rss, after.rss), "allocated_growth_bytes": grew(before.allocated, after.allocated),
        "within_bound": within, "evictions": evictions, "seconds": secs,
    }))
}
