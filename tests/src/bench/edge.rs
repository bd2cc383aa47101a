//! `seckill-bench edge` (`cargo xtask bench edge`): what the seckill filter costs Envoy, and how
//! much memory a million shoppers leave in it.
//!
//! 1. **Throughput**, from one Envoy process ([`crate::bench::envoy::BenchEnvoy`], 2 workers): requests
//!    per second of a direct response with no filter (1.0), with Envoy's native per-uid
//!    `local_ratelimit` (fresh uids passed, repeats refused), with our filter's proxy-wasm build
//!    and its native build (the Envoy dynamic module; fresh uids passed, repeats throttled), and with the reference filter (`edge-filter/reference`) in each of its
//!    modes: setting one header; reading `Authorization` and setting one header; making exactly
//!    the host calls our filter makes to pass a fresh uid, or to refuse a repeat, without its
//!    logic. The last two are the floor of our filter's two paths on this Envoy and machine; the
//!    bench prints our filter's rate over each, round by round. The variants alternate in rounds
//!    (order rotated each round), one second each, and every reading of a variant sits between two
//!    no-filter readings: its ratio is taken against their mean, since this shared 2-core
//!    machine's speed drifts by tens of percent within a minute (a round of 3 s readings took
//!    42 s, and its single no-filter reading was no yardstick for the others). The median over
//!    rounds is reported; "X over Y" figures are medians of the per-round ratio of ratios. Requests are pre-built (tickets
//!    pre-minted) and the load generator runs on one thread, so it takes as little CPU as it can.
//!    Each reading also takes Envoy's CPU time per request (every thread's `schedstat`, which
//!    leaves out the time the hypervisor gave the CPU to someone else), and the `cpu` column is
//!    the no-filter readings' CPU per request over the variant's: the same scale as the
//!    throughput ratio (1.0 = free), and less moved by the host's neighbours.
//! 2. **Memory**: 1,000,000 distinct uids through the filter with its default configuration (a
//!    fresh Envoy), Envoy's `VmRSS` and admin `/memory` before, half-way and after, against the
//!    filter's stated bound. `edge-memory-10m` runs the same with 10,000,000 uids (ten times the
//!    slots the default configuration has, so most of the run evicts) and a reading every million.
//!
//! Results go to `target/bench/edge.json` (`edge-memory-10m`: `target/bench/edge-memory-10m.json`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use seckill_stack::edge_build::{self, EdgeBuild};
use seckill_stack::envoy_proc::dev_filter_config;

use crate::bench::envoy::{buy_request, cpu_ns, envoy_bin, filter_wasm, mib, native_module, slots_bound_bytes, BenchEnvoy, FeedServer, Memory, EDGE_KEY, TICKET_SECRET};
use crate::bench::load::{self, LoadReport, Source};

/// Connections of the load generator.
pub const CONNECTIONS: usize = 32;
/// Seconds per variant per round.
pub const SECONDS: u64 = 1;
/// Rounds (each runs every variant once, each between two no-filter readings).
pub const ROUNDS: usize = 8;
/// Distinct uids cycled by the "repeat" variants (each already passed once, so every measured
/// request is refused: 429).
pub const REPEAT_UIDS: usize = 1_000;
/// Uids of the memory run of `cargo xtask bench edge` (checkpoints every [`MEMORY_CHECKPOINT_EVERY`]).
pub const MEMORY_UIDS: u64 = 1_000_000;
pub const MEMORY_CHECKPOINT_EVERY: u64 = 500_000;
/// Uids of `cargo xtask bench edge-memory-10m` (checkpoints every [`MEMORY_10M_CHECKPOINT_EVERY`]).
pub const MEMORY_10M_UIDS: u64 = 10_000_000;
pub const MEMORY_10M_CHECKPOINT_EVERY: u64 = 1_000_000;

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

pub(crate) fn cycle(reqs: Arc<Vec<Bytes>>) -> Source {
    Arc::new(move |n| reqs.get((n as usize) % reqs.len().max(1)).cloned())
}

pub(crate) fn once(reqs: Arc<Vec<Bytes>>) -> Source {
    Arc::new(move |n| reqs.get(n as usize).cloned())
}

pub(crate) fn mint(prefix: &str, from: u64, count: u64) -> Arc<Vec<Bytes>> {
    Arc::new((from..from + count).map(|i| buy_request(&format!("{prefix}{i}"))).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Plain,
    NativeFresh,
    NativeRepeat,
    FilterFresh,
    FilterRepeat,
    ModuleFresh,
    ModuleRepeat,
    ReferenceSet,
    ReferenceRead,
    ReferencePass,
    ReferenceRefuse,
    NativeReferenceNoop,
    NativeReferencePass,
    NativeReferenceRefuse,
}

impl Variant {
    const ALL: [Variant; 14] = [
        Variant::Plain,
        Variant::NativeFresh,
        Variant::NativeRepeat,
        Variant::FilterFresh,
        Variant::FilterRepeat,
        Variant::ModuleFresh,
        Variant::ModuleRepeat,
        Variant::ReferenceSet,
        Variant::ReferenceRead,
        Variant::ReferencePass,
        Variant::ReferenceRefuse,
        Variant::NativeReferenceNoop,
        Variant::NativeReferencePass,
        Variant::NativeReferenceRefuse,
    ];

    fn key(self) -> &'static str {
        match self {
            Variant::Plain => "no_filter",
            Variant::NativeFresh => "native_local_ratelimit_fresh_uids",
            Variant::NativeRepeat => "native_local_ratelimit_repeats",
            Variant::FilterFresh => "seckill_filter_fresh_uids",
            Variant::FilterRepeat => "seckill_filter_throttled_repeats",
            Variant::ModuleFresh => "seckill_native_module_fresh_uids",
            Variant::ModuleRepeat => "seckill_native_module_throttled_repeats",
            Variant::ReferenceSet => "reference_filter_sets_one_header",
            Variant::ReferenceRead => "reference_filter_reads_authorization",
            Variant::ReferencePass => "reference_filter_host_calls_of_a_pass",
            Variant::ReferenceRefuse => "reference_filter_host_calls_of_a_refusal",
            Variant::NativeReferenceNoop => "native_reference_module_does_nothing",
            Variant::NativeReferencePass => "native_reference_module_abi_calls_of_a_pass",
            Variant::NativeReferenceRefuse => "native_reference_module_abi_calls_of_a_refusal",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "no filter (direct response)",
            Variant::NativeFresh => "native local_ratelimit, per-uid descriptor, fresh uids (200)",
            Variant::NativeRepeat => "native local_ratelimit, per-uid descriptor, repeats (429)",
            Variant::FilterFresh => "seckill filter, fresh uids passed (a)",
            Variant::FilterRepeat => "seckill filter, throttled repeats (b)",
            Variant::ModuleFresh => "seckill native module, fresh uids passed (c)",
            Variant::ModuleRepeat => "seckill native module, throttled repeats (d)",
            Variant::ReferenceSet => "reference filter: sets one header",
            Variant::ReferenceRead => "reference filter: reads Authorization, sets one header",
            Variant::ReferencePass => "reference filter: the host calls of a pass, no logic",
            Variant::ReferenceRefuse => "reference filter: the host calls of a refusal (429)",
            Variant::NativeReferenceNoop => "native reference module: does nothing",
            Variant::NativeReferencePass => "native reference module: the ABI calls of a pass, no logic",
            Variant::NativeReferenceRefuse => "native reference module: the ABI calls of a refusal (429)",
        }
    }

    /// The reference filter's mode (one of `REFERENCE_MODES`) for its variants.
    fn reference_mode(self) -> Option<&'static str> {
        match self {
            Variant::ReferenceSet => Some("set_header"),
            Variant::ReferenceRead => Some("read_authorization"),
            Variant::ReferencePass => Some("pass_calls"),
            Variant::ReferenceRefuse => Some("refuse_calls"),
            _ => None,
        }
    }

    /// The native reference module's mode (one of `NATIVE_REFERENCE_MODES`) for its variants.
    fn native_reference_mode(self) -> Option<&'static str> {
        match self {
            Variant::NativeReferenceNoop => Some("noop"),
            Variant::NativeReferencePass => Some("pass_calls"),
            Variant::NativeReferenceRefuse => Some("refuse_calls"),
            _ => None,
        }
    }

    /// The status every measured answer must have.
    fn expected(self) -> u16 {
        match self {
            Variant::Plain | Variant::NativeFresh | Variant::FilterFresh | Variant::ModuleFresh | Variant::ReferenceSet | Variant::ReferenceRead | Variant::ReferencePass | Variant::NativeReferenceNoop | Variant::NativeReferencePass => 200,
            Variant::NativeRepeat | Variant::FilterRepeat | Variant::ModuleRepeat | Variant::ReferenceRefuse | Variant::NativeReferenceRefuse => 429,
        }
    }
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One reading of a variant.
#[derive(Debug, Clone, Copy)]
struct Reading {
    per_second: f64,
    /// Envoy's CPU time per answer, every thread (`None` if `/proc` could not be read).
    cpu_ns_per_request: Option<f64>,
}

/// `x` over the mean of the two readings either side of it: how this bench and `edge-stack`
/// compare a reading with the drifting machine's speed around it.
pub(crate) fn over_bracket(x: f64, before: f64, after: f64) -> f64 {
    x / ((before + after) / 2.0).max(1e-9)
}

/// How a variant's reading compares with the no-filter readings either side of it: throughput
/// over their mean, and their mean CPU per request over the variant's (both 1.0 = costs nothing,
/// 0.9 = a tenth less).
fn against_plain(v: Reading, before: Reading, after: Reading) -> (f64, Option<f64>) {
    let rate = over_bracket(v.per_second, before.per_second, after.per_second);
    let cpu = match (v.cpu_ns_per_request, before.cpu_ns_per_request, after.cpu_ns_per_request) {
        (Some(v), Some(b), Some(a)) if v > 0.0 => Some(1.0 / over_bracket(v, b, a)),
        _ => None,
    };
    (rate, cpu)
}

/// One reading of variant `v`: requests per second over [`SECONDS`], every answer checked, and
/// Envoy's CPU time per request over the same seconds.
async fn measure(envoy: &BenchEnvoy, module: SocketAddr, v: Variant, repeats: &Arc<Vec<Bytes>>, fresh_from: u64, batch: u64) -> anyhow::Result<Reading> {
    let (addr, source) = match v {
        Variant::Plain => (envoy.plain, cycle(repeats.clone())),
        Variant::NativeRepeat => (envoy.native, cycle(repeats.clone())),
        Variant::FilterRepeat => (envoy.filter, cycle(repeats.clone())),
        Variant::ModuleRepeat => (module, cycle(repeats.clone())),
        Variant::ReferenceSet | Variant::ReferenceRead | Variant::ReferencePass | Variant::ReferenceRefuse | Variant::NativeReferenceNoop | Variant::NativeReferencePass | Variant::NativeReferenceRefuse => {
            let listener = v.reference_mode().and_then(|mode| envoy.reference(mode)).or_else(|| v.native_reference_mode().and_then(|mode| envoy.native_reference(mode)));
            (listener.ok_or_else(|| anyhow::anyhow!("no reference listener for {} (is edge-filter/reference-native built? cargo xtask build)", v.label()))?, cycle(repeats.clone()))
        }
        Variant::NativeFresh | Variant::FilterFresh | Variant::ModuleFresh => {
            // Minted before the clock starts; uids never seen by any listener.
            let (prefix, addr) = match v {
                Variant::NativeFresh => ("n", envoy.native),
                Variant::FilterFresh => ("f", envoy.filter),
                _ => ("m", module),
            };
            (addr, once(mint(prefix, fresh_from, batch)))
        }
    };
    let pid = envoy.envoy.pid();
    let cpu_before = pid.and_then(cpu_ns);
    let r = drive(addr, CONNECTIONS, Duration::from_secs(SECONDS), source).await;
    let cpu_after = pid.and_then(cpu_ns);
    let wrong = r.answered - r.status(v.expected());
    anyhow::ensure!(wrong == 0 && r.errors == 0, "{}: {wrong} answers other than {} and {} errors: {:?}", v.label(), v.expected(), r.errors, r.statuses);
    let cpu_ns_per_request = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) if r.answered > 0 => Some(a.saturating_sub(b) as f64 / r.answered as f64),
        _ => None,
    };
    Ok(Reading { per_second: r.per_second(), cpu_ns_per_request })
}

/// The throughput part. Returns the JSON for `edge.json`.
pub async fn throughput() -> anyhow::Result<serde_json::Value> {
    let (bin, wasm) = (envoy_bin().map_err(anyhow::Error::msg)?, filter_wasm().map_err(anyhow::Error::msg)?);
    native_module().map_err(anyhow::Error::msg)?;
    let feed = FeedServer::start().await?;
    // A window longer than the run: every repeat is throttled, every fresh uid passes. The fresh
    // variant sends over a million uids in all, more than the default 65,536 × 16 slots hold, and
    // a full bucket evicts its oldest entry: the primed repeats. So the bench uses 4× the buckets
    // (about a third full at the end) and checks below that nothing was evicted.
    let config = dev_filter_config(TICKET_SECRET, EDGE_KEY, &[("window_ms", "3600000"), ("buckets", "262144")]);
    let envoy = BenchEnvoy::start(&bin, &wasm, &config, feed.addr, "bench-edge").map_err(anyhow::Error::msg)?;
    anyhow::ensure!(envoy.wait_for_feed(Duration::from_secs(20)), "the filter never loaded the bench feed; see {}", envoy.dir.display());
    let module = envoy.module.ok_or_else(|| anyhow::anyhow!("the bench Envoy has no native module listener"))?;
    println!("edge benchmark: one Envoy (2 workers), {CONNECTIONS} keep-alive connections, {SECONDS} s per variant, {ROUNDS} rounds, variants alternate, each between two no-filter readings");

    // The repeat variants' uids pass once first, so every measured request of theirs is refused.
    let repeats = mint("r", 0, REPEAT_UIDS as u64);
    for addr in [envoy.native, envoy.filter, module] {
        let r = drive(addr, 8, Duration::from_secs(30), once(repeats.clone())).await;
        anyhow::ensure!(r.status(200) == REPEAT_UIDS as u64, "priming the repeat uids: {:?}", r.statuses);
    }
    // Warm-up (also sizes the fresh-uid batches): one short run of each.
    let warm = drive(envoy.plain, CONNECTIONS, Duration::from_secs(1), cycle(repeats.clone())).await;
    let batch = ((warm.per_second() * SECONDS as f64 * 1.5) as u64).max(20_000);
    let _ = drive(envoy.filter, CONNECTIONS, Duration::from_secs(1), cycle(repeats.clone())).await;
    let _ = drive(module, CONNECTIONS, Duration::from_secs(1), cycle(repeats.clone())).await;

    let mut rates: BTreeMap<Variant, Vec<f64>> = BTreeMap::new();
    let mut ratios: BTreeMap<Variant, Vec<f64>> = BTreeMap::new();
    let mut cpu_ratios: BTreeMap<Variant, Vec<f64>> = BTreeMap::new();
    let mut fresh_from = 0u64;
    // `SECKILL_BENCH_ONLY=key,key`: only these variants (and no filter), e.g. to profile one path.
    let only = std::env::var("SECKILL_BENCH_ONLY").ok();
    let mut plain_before = measure(&envoy, module, Variant::Plain, &repeats, fresh_from, batch).await?;
    for round in 0..ROUNDS {
        let mut order: Vec<Variant> = Variant::ALL.into_iter().filter(|v| *v != Variant::Plain && only.as_ref().is_none_or(|o| o.split(',').any(|k| k == v.key()))).collect();
        let n = order.len();
        order.rotate_left(round % n);
        let mut this_round: BTreeMap<Variant, f64> = BTreeMap::new();
        for v in order {
            // Each variant between two no-filter readings: this shared machine's speed drifts by
            // tens of percent within a minute, so a variant is compared with the seconds around it.
            let reading = measure(&envoy, module, v, &repeats, fresh_from, batch).await?;
            let plain_after = measure(&envoy, module, Variant::Plain, &repeats, fresh_from, batch).await?;
            let (ratio, cpu_ratio) = against_plain(reading, plain_before, plain_after);
            rates.entry(Variant::Plain).or_default().push(plain_after.per_second);
            ratios.entry(v).or_default().push(ratio);
            cpu_ratios.entry(v).or_default().extend(cpu_ratio);
            rates.entry(v).or_default().push(reading.per_second);
            this_round.insert(v, reading.per_second);
            plain_before = plain_after;
        }
        fresh_from += batch;
        let line: Vec<String> = Variant::ALL.iter().filter(|v| **v != Variant::Plain).map(|v| format!("{:.0}", this_round.get(v).copied().unwrap_or(0.0))).collect();
        println!("  round {}: req/s {} (no filter between them: {:.0} on the last)", round + 1, line.join(" / "), plain_before.per_second);
    }
    ratios.insert(Variant::Plain, vec![1.0]);
    cpu_ratios.insert(Variant::Plain, vec![1.0]);

    // The filter hands its counts to Envoy on each worker's tick (100 ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = |name: &str| envoy.stat(name).unwrap_or(0);
    let local = stats("wasmcustom.seckill_edge_local_refusals");
    let passed = stats("wasmcustom.seckill_edge_decisions.reason.passed");
    let throttled = stats("wasmcustom.seckill_edge_decisions.reason.throttled");
    let host_errors = stats("wasmcustom.seckill_edge_host_errors");
    let evictions = stats("wasmcustom.seckill_edge_evictions");
    let cas_exhausted = stats("wasmcustom.seckill_edge_cas_exhausted");

    println!("  {:<62} {:>10} {:>7} {:>7}   rounds (req/s)", "variant", "req/s", "ratio", "cpu");
    let mut out = serde_json::Map::new();
    for v in Variant::ALL {
        let mut r = rates.get(&v).cloned().unwrap_or_default();
        if r.is_empty() {
            continue; // left out by SECKILL_BENCH_ONLY
        }
        let mut q = ratios.get(&v).cloned().unwrap_or_default();
        let rounds: Vec<String> = if v == Variant::Plain { vec![format!("{} readings, {:.0}..{:.0}", r.len(), r.iter().copied().fold(f64::INFINITY, f64::min), r.iter().copied().fold(0.0, f64::max))] } else { r.iter().map(|x| format!("{x:.0}")).collect() };
        let (rate, ratio) = (median(&mut r), median(&mut q));
        let cpu = median(&mut cpu_ratios.get(&v).cloned().unwrap_or_default());
        let target = match v {
            Variant::FilterFresh | Variant::FilterRepeat => if ratio >= 0.70 { "  (target >= 0.70: met)" } else { "  (target >= 0.70: MISSED)" },
            Variant::ModuleFresh | Variant::ModuleRepeat => if ratio >= 0.90 { "  (target >= 0.90: met)" } else { "  (target >= 0.90: MISSED)" },
            _ => "",
        };
        println!("  {:<62} {:>10.0} {:>7.2} {:>7.2}   [{}]{target}", v.label(), rate, ratio, cpu, rounds.join(", "));
        out.insert(
            v.key().into(),
            serde_json::json!({"req_per_s": rate, "ratio_to_no_filter": ratio, "cpu_ratio_to_no_filter": cpu, "rounds_req_per_s": rates.get(&v), "rounds_ratio": ratios.get(&v), "rounds_cpu_ratio": cpu_ratios.get(&v)}),
        );
    }
    // The seckill filter against the reference making the same host calls, round by round.
    let against_in = |by: &BTreeMap<Variant, Vec<f64>>, v: Variant, floor: Variant| -> f64 {
        let (ours, floor) = (by.get(&v).cloned().unwrap_or_default(), by.get(&floor).cloned().unwrap_or_default());
        median(&mut ours.iter().zip(&floor).map(|(o, f)| o / f.max(1e-9)).collect::<Vec<f64>>())
    };
    let against = |v: Variant, floor: Variant| against_in(&ratios, v, floor);
    let (fresh_vs_floor, repeats_vs_floor) = (against(Variant::FilterFresh, Variant::ReferencePass), against(Variant::FilterRepeat, Variant::ReferenceRefuse));
    println!("  seckill filter / reference filter making the same host calls (same rounds): fresh uids {fresh_vs_floor:.2}, throttled repeats {repeats_vs_floor:.2}");
    let (module_vs_wasm_fresh, module_vs_wasm_repeats) = (against(Variant::ModuleFresh, Variant::FilterFresh), against(Variant::ModuleRepeat, Variant::FilterRepeat));
    let module_vs_limiter = against(Variant::ModuleRepeat, Variant::NativeRepeat);
    let (module_vs_floor_fresh, module_vs_floor_repeats) = (against(Variant::ModuleFresh, Variant::NativeReferencePass), against(Variant::ModuleRepeat, Variant::NativeReferenceRefuse));
    println!("  native module / native reference module making the same ABI calls (same rounds): fresh uids {module_vs_floor_fresh:.2}, throttled repeats {module_vs_floor_repeats:.2}");
    let (cpu_floor_fresh, cpu_floor_repeats) = (against_in(&cpu_ratios, Variant::ModuleFresh, Variant::NativeReferencePass), against_in(&cpu_ratios, Variant::ModuleRepeat, Variant::NativeReferenceRefuse));
    let cpu_vs_limiter = against_in(&cpu_ratios, Variant::ModuleRepeat, Variant::NativeRepeat);
    println!("  the same in Envoy CPU per request: native module / its reference: fresh uids {cpu_floor_fresh:.2}, throttled repeats {cpu_floor_repeats:.2}; native module repeats / local_ratelimit repeats {cpu_vs_limiter:.2}");
    println!(
        "  native module / proxy-wasm build (same rounds): fresh uids {module_vs_wasm_fresh:.2}, repeats {module_vs_wasm_repeats:.2}; native module repeats / local_ratelimit repeats {module_vs_limiter:.2}{}",
        if module_vs_limiter > 1.0 { " (target > 1: met)" } else { " (target > 1: MISSED)" }
    );
    println!("  filter counters: passed {passed}, throttled {throttled} (of which {local} from the worker's own copy, no shared-data read), host errors {host_errors}, CAS exhausted {cas_exhausted}");
    anyhow::ensure!(host_errors == 0 && cas_exhausted == 0, "the filter degraded during the benchmark (host errors {host_errors}, CAS exhausted {cas_exhausted})");
    anyhow::ensure!(evictions == 0, "{evictions} slot entries were evicted: the repeat variant may have measured passes");
    Ok(serde_json::json!({
        "connections": CONNECTIONS, "seconds_per_variant": SECONDS, "rounds": ROUNDS, "envoy_concurrency": 2,
        "variants": out,
        "seckill_filter_vs_reference_same_host_calls": {"fresh_uids": fresh_vs_floor, "throttled_repeats": repeats_vs_floor},
        "native_module_vs_proxy_wasm": {"fresh_uids": module_vs_wasm_fresh, "throttled_repeats": module_vs_wasm_repeats},
        "native_module_repeats_vs_local_ratelimit_repeats": module_vs_limiter,
        "native_module_vs_native_reference_same_abi_calls": {"fresh_uids": module_vs_floor_fresh, "throttled_repeats": module_vs_floor_repeats},
        "cpu_per_request": {
            "native_module_vs_native_reference_same_abi_calls": {"fresh_uids": cpu_floor_fresh, "throttled_repeats": cpu_floor_repeats},
            "native_module_repeats_vs_local_ratelimit_repeats": cpu_vs_limiter,
        },
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

/// `500_000` → `"500k"`, `1_000_000` → `"1m"`, `10_000_000` → `"10m"`, `1_234` → `"1234"`.
pub fn uid_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// Envoy's memory after some number of distinct uids.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    /// Distinct uids sent so far (after the warm-up).
    pub uids: u64,
    pub memory: Memory,
    /// Seconds since the first measured uid.
    pub seconds: f64,
}

/// The time allowed for each chunk of uids between two checkpoints (the run fails past it).
pub const CHUNK_LIMIT: Duration = Duration::from_secs(240);
/// Largest chunk [`CHUNK_LIMIT`] is meant for: more uids between two checkpoints are refused.
pub const MAX_CHUNK_UIDS: u64 = 1_000_000;

/// The memory part: `uids` distinct uids through `build` of the filter (on the bench's `filter`
/// listener) in its default configuration (a fresh Envoy), Envoy's memory read before and every
/// `checkpoint_every` uids. Growth from "before" to every checkpoint must stay within the filter's
/// stated slots bound for `within_bound` to be true. `cargo xtask bench edge` runs 1,000,000 uids
/// (checkpoints at 500k and 1M); `edge-memory-10m` runs 10,000,000 (a checkpoint every 1M) for
/// each of [`memory_builds`].
pub async fn memory(build: EdgeBuild, uids: u64, checkpoint_every: u64) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(uids > 0 && checkpoint_every > 0, "uids ({uids}) and checkpoint_every ({checkpoint_every}) must be positive");
    anyhow::ensure!(checkpoint_every <= MAX_CHUNK_UIDS, "checkpoints at most every {MAX_CHUNK_UIDS} uids (each chunk has {CHUNK_LIMIT:?})");
    let module = match build {
        EdgeBuild::Wasm => filter_wasm(),
        EdgeBuild::Native => native_module(),
    };
    let (bin, wasm) = (envoy_bin().map_err(anyhow::Error::msg)?, module.map_err(anyhow::Error::msg)?);
    let feed = FeedServer::start().await?;
    let config = dev_filter_config(TICKET_SECRET, EDGE_KEY, &[]);
    let (buckets, slots) = (65_536u64, 16u64);
    let bound = slots_bound_bytes(buckets, slots);
    let envoy = BenchEnvoy::start(&bin, &wasm, &config, feed.addr, "bench-edge-memory").map_err(anyhow::Error::msg)?;
    anyhow::ensure!(envoy.wait_for_feed(Duration::from_secs(20)), "the filter never loaded the bench feed; see {}", envoy.dir.display());
    println!(
        "edge memory ({} build): {uids} distinct uids through the filter (default config: {buckets} buckets x {slots} slots), fresh Envoy, checkpoint every {checkpoint_every} uids ({CHUNK_LIMIT:?} allowed per chunk)",
        build.as_str()
    );
    // Warm the connections and code paths with a few uids first, so "before" is Envoy at work.
    let warm = fresh_uids(envoy.filter, "w", 0, 5_000, CONNECTIONS, Duration::from_secs(60)).await;
    anyhow::ensure!(warm.status(200) == 5_000, "warm-up: {:?}", warm.statuses);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = envoy.memory();
    let started = Instant::now();
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut sent = 0u64;
    while sent < uids {
        let chunk = checkpoint_every.min(uids - sent);
        let chunk_started = Instant::now();
        let r = fresh_uids(envoy.filter, "m", sent, chunk, CONNECTIONS, CHUNK_LIMIT).await;
        anyhow::ensure!(
            r.status(200) == chunk,
            "uids {sent}..{}: only {} of {chunk} went through in {:.0} s (statuses {:?}, connection errors {})",
            sent + chunk,
            r.status(200),
            chunk_started.elapsed().as_secs_f64(),
            r.statuses,
            r.errors
        );
        sent += chunk;
        if sent == uids {
            // Let the last requests' buffers go back before the final reading, as "before" had.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let c = Checkpoint { uids: sent, memory: envoy.memory(), seconds: started.elapsed().as_secs_f64() };
        println!(
            "  {:>6} uids after {:>4.0} s: VmRSS {} ({:+.2} MiB), allocated {} ({:+.2} MiB)",
            uid_label(sent),
            c.seconds,
            mib(c.memory.rss),
            signed_mib(before.rss, c.memory.rss),
            mib(c.memory.allocated),
            signed_mib(before.allocated, c.memory.allocated)
        );
        checkpoints.push(c);
    }
    let secs = started.elapsed().as_secs_f64();
    let evictions = envoy.stat("wasmcustom.seckill_edge_evictions").unwrap_or(0);
    let grew = |x: u64, y: u64| y.saturating_sub(x);
    let after = checkpoints.last().map(|c| c.memory).unwrap_or(before);
    println!("  sent {uids} uids in {secs:.0} s ({:.0}/s); slot evictions: {evictions}", uids as f64 / secs);
    println!("  stated bound (slots, whole process): {buckets} x (4 + 25 x {slots} + {}) = {} ({bound} B)", crate::bench::envoy::KEY_OVERHEAD_BYTES, mib(bound));
    println!("  {:<12} {:>12} {:>12} {:>12} {:>14} {:>14}", "uids", "VmRSS", "allocated", "heap_size", "RSS growth", "alloc. growth");
    println!("  {:<12} {:>12} {:>12} {:>12} {:>14} {:>14}", "before", mib(before.rss), mib(before.allocated), mib(before.heap_size), "", "");
    for c in &checkpoints {
        println!(
            "  {:<12} {:>12} {:>12} {:>12} {:>14} {:>14}",
            uid_label(c.uids),
            mib(c.memory.rss),
            mib(c.memory.allocated),
            mib(c.memory.heap_size),
            format!("{:+.2} MiB", signed_mib(before.rss, c.memory.rss)),
            format!("{:+.2} MiB", signed_mib(before.allocated, c.memory.allocated))
        );
    }
    // The largest growth seen at any checkpoint, not only the last one, must be within the bound.
    let peak_rss_growth = checkpoints.iter().map(|c| grew(before.rss, c.memory.rss)).max().unwrap_or(0);
    let peak_allocated_growth = checkpoints.iter().map(|c| grew(before.allocated, c.memory.allocated)).max().unwrap_or(0);
    let first = checkpoints.first().map(|c| c.memory).unwrap_or(before);
    println!(
        "  growth over {} uids: RSS +{}, allocated +{} (bound {}); largest at any checkpoint: RSS +{}, allocated +{}; from the first checkpoint ({}) to the last: RSS {:+.2} MiB, allocated {:+.2} MiB",
        uid_label(uids),
        mib(grew(before.rss, after.rss)),
        mib(grew(before.allocated, after.allocated)),
        mib(bound),
        mib(peak_rss_growth),
        mib(peak_allocated_growth),
        uid_label(checkpoints.first().map(|c| c.uids).unwrap_or(0)),
        signed_mib(first.rss, after.rss),
        signed_mib(first.allocated, after.allocated)
    );
    let within = peak_rss_growth <= bound && peak_allocated_growth <= bound;
    println!("  within the bound at every checkpoint: {}", if within { "yes" } else { "NO" });
    let mut out = serde_json::json!({
        "edge_build": build.as_str(), "uids": uids, "checkpoint_every": checkpoint_every, "buckets": buckets, "slots_per_bucket": slots, "bound_bytes": bound,
        "before": mem_json(&before),
        "checkpoints": checkpoints.iter().map(|c| {
            let mut m = mem_json(&c.memory);
            m["uids"] = c.uids.into();
            m["seconds"] = c.seconds.into();
            m["rss_growth_bytes"] = (c.memory.rss as i64 - before.rss as i64).into();
            m["allocated_growth_bytes"] = (c.memory.allocated as i64 - before.allocated as i64).into();
            m
        }).collect::<Vec<_>>(),
        "rss_growth_bytes": grew(before.rss, after.rss), "allocated_growth_bytes": grew(before.allocated, after.allocated),
        "peak_rss_growth_bytes": peak_rss_growth, "peak_allocated_growth_bytes": peak_allocated_growth,
        "within_bound": within, "evictions": evictions, "seconds": secs,
    });
    // The keys earlier runs wrote (`after_500k`, `after_1m`, ...), one per checkpoint.
    for c in &checkpoints {
        out[format!("after_{}", uid_label(c.uids))] = mem_json(&c.memory);
    }
    Ok(out)
}

/// The builds `edge-memory-10m` measures, one fresh Envoy each: the one `SECKILL_EDGE_BUILD`
/// names, else both (the native build first, then the proxy-wasm build it is compared with),
/// printed side by side ([`side_by_side`]).
pub fn memory_builds() -> Result<Vec<EdgeBuild>, String> {
    match std::env::var(edge_build::ENV) {
        Ok(v) if !v.trim().is_empty() => Ok(vec![EdgeBuild::parse(&v)?]),
        _ => Ok(vec![EdgeBuild::Native, EdgeBuild::Wasm]),
    }
}

/// The results of [`memory`] runs (same uids and checkpoints) as one table, a column pair per
/// build: Envoy's memory before, its growth at every checkpoint, the largest growth against the
/// stated bound, evictions and rate.
pub fn side_by_side(runs: &[serde_json::Value]) -> String {
    let mib_of = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
    let growth = |v: &serde_json::Value| format!("{:+.2} MiB", mib_of(v));
    let mut out = format!("  {:<10}", "uids");
    for r in runs {
        let b = r["edge_build"].as_str().unwrap_or("?");
        out += &format!(" {:>16} {:>16}", format!("{b} VmRSS"), format!("{b} allocated"));
    }
    let mut row = |label: &str, cells: &dyn Fn(&serde_json::Value) -> (String, String)| {
        out += &format!("\n  {label:<10}");
        for r in runs {
            let (a, b) = cells(r);
            out += &format!(" {a:>16} {b:>16}");
        }
    };
    row("before", &|r| (format!("{:.2} MiB", mib_of(&r["before"]["rss_bytes"])), format!("{:.2} MiB", mib_of(&r["before"]["allocated_bytes"]))));
    let checkpoints = runs.first().and_then(|r| r["checkpoints"].as_array()).map_or(0, Vec::len);
    for i in 0..checkpoints {
        let label = runs.first().and_then(|r| r["checkpoints"][i]["uids"].as_u64()).map(uid_label).unwrap_or_default();
        row(&label, &|r| (growth(&r["checkpoints"][i]["rss_growth_bytes"]), growth(&r["checkpoints"][i]["allocated_growth_bytes"])));
    }
    row("largest", &|r| (growth(&r["peak_rss_growth_bytes"]), growth(&r["peak_allocated_growth_bytes"])));
    row("bound", &|r| (format!("{:.2} MiB", mib_of(&r["bound_bytes"])), String::new()));
    let verdict = |r: &serde_json::Value| if r["within_bound"].as_bool() == Some(true) { "yes" } else { "NO" };
    row("within", &|r| (verdict(r).to_owned(), String::new()));
    row("evictions", &|r| (r["evictions"].as_u64().unwrap_or(0).to_string(), String::new()));
    let rate = |r: &serde_json::Value| r["uids"].as_f64().unwrap_or(0.0) / r["seconds"].as_f64().unwrap_or(0.0).max(1e-9);
    row("uids/s", &|r| (format!("{:.0}", rate(r)), String::new()));
    out
}

/// `after - before` in MiB, negative when memory went back.
fn signed_mib(before: u64, after: u64) -> f64 {
    (after as f64 - before as f64) / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_labels() {
        assert_eq!(uid_label(500_000), "500k");
        assert_eq!(uid_label(1_000_000), "1m");
        assert_eq!(uid_label(10_000_000), "10m");
        assert_eq!(uid_label(1_500_000), "1500k");
        assert_eq!(uid_label(1_234), "1234");
        assert_eq!(uid_label(0), "0");
    }

    #[test]
    fn side_by_side_puts_each_build_in_its_columns() {
        let mib = 1024 * 1024;
        let run = |build: &str, rss: i64, within: bool| {
            serde_json::json!({
                "edge_build": build, "uids": 2_000_000u64, "seconds": 100.0, "bound_bytes": 33 * mib, "within_bound": within, "evictions": 7,
                "before": {"rss_bytes": 100 * mib, "allocated_bytes": 40 * mib},
                "checkpoints": [
                    {"uids": 1_000_000u64, "rss_growth_bytes": rss * mib / 2, "allocated_growth_bytes": 0},
                    {"uids": 2_000_000u64, "rss_growth_bytes": rss * mib, "allocated_growth_bytes": -mib},
                ],
                "peak_rss_growth_bytes": rss * mib, "peak_allocated_growth_bytes": 0,
            })
        };
        let t = side_by_side(&[run("wasm", 2, true), run("native", 40, false)]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("wasm VmRSS") && lines[0].contains("native allocated"), "{t}");
        assert!(lines[1].starts_with("  before") && lines[1].contains("100.00 MiB"), "{t}");
        let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(words(lines[2]), ["1m", "+1.00", "MiB", "+0.00", "MiB", "+20.00", "MiB", "+0.00", "MiB"], "{t}");
        assert_eq!(words(lines[3]), ["2m", "+2.00", "MiB", "-1.00", "MiB", "+40.00", "MiB", "-1.00", "MiB"], "{t}");
        assert!(lines[4].starts_with("  largest") && lines[4].contains("+40.00 MiB"), "{t}");
        assert_eq!(words(lines[6]), ["within", "yes", "NO"], "{t}");
        assert_eq!(words(lines[8]), ["uids/s", "20000", "20000"], "{t}");
    }

    #[test]
    fn signed_growth() {
        assert_eq!(signed_mib(1 << 20, 3 << 20), 2.0);
        assert_eq!(signed_mib(3 << 20, 1 << 20), -2.0);
    }
}
