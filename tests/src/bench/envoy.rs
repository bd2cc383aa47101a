//! The edge benchmark's Envoy (`envoy/bench.yaml.tmpl`): the same Envoy process serving eight
//! listeners — no filter, Envoy's native per-uid `local_ratelimit`, the seckill filter (proxy-wasm),
//! its native build (the Envoy dynamic module, when built), and the
//! reference filter (`edge-filter/reference`) in each of its [`REFERENCE_MODES`] — each answering
//! what it lets through with a direct response, plus a tiny flags feed for the seckill filter.
//!
//! Shared by `seckill-bench edge` (throughput ratios, and the 1,000,000-uid memory run) and the
//! memory-bound test in `tests/tests/edge.rs`: a buy the filter passes costs no origin or Redis
//! round trip, so hundreds of thousands of distinct uids go through in seconds and what is
//! measured is the filter. Also: Envoy's memory as the OS (`VmRSS`) and tcmalloc (admin
//! `/memory`) see it, and the filter's stated memory bound.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use seckill_stack::envoy_proc::EnvoyProc;
use seckill_stack::net::{free_port, http_get};
use seckill_stack::paths;

use crate::bench::load::request_bytes;

pub use seckill_core::demo::{EDGE_KEY, TICKET_SECRET};
/// The sku every benchmark buy is for.
pub const SKU: &str = "bench";

/// Envoy's cost per shared-data key beyond its value bytes, measured on Envoy 1.40.0 (see
/// `edge-filter/README.md`, "Memory bound").
pub const KEY_OVERHEAD_BYTES: u64 = 135;

/// The filter's stated memory bound for its slots: `buckets × (4 + 25 × slots + K)`.
pub fn slots_bound_bytes(buckets: u64, slots_per_bucket: u64) -> u64 {
    buckets * (4 + 25 * slots_per_bucket + KEY_OVERHEAD_BYTES)
}

/// A flags feed on a free port: answers every request with one fixed feed (sku [`SKU`], on sale
/// for an hour) and counts the polls. Served by hyper on the caller's tokio runtime.
pub struct FeedServer {
    pub addr: SocketAddr,
    pub polls: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FeedServer {
    pub async fn start() -> std::io::Result<FeedServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let now = crate::now_ms();
        let feed = Bytes::from(
            serde_json::json!({"version": 1, "server_time": now, "sales": [
                {"sku": SKU, "starts_at": now - 60_000, "ends_at": now + 3_600_000, "sold_out": false, "per_user_limit": 1}
            ]})
            .to_string(),
        );
        let polls = Arc::new(AtomicU64::new(0));
        let counter = polls.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (feed, counter) = (feed.clone(), counter.clone());
                // Every request is a poll (the filter's is a GET without a body): the feed.
                let service = hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let mut r = hyper::Response::new(Full::new(feed.clone()));
                    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
                    async move { Ok::<_, Infallible>(r) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(FeedServer { addr, polls, task })
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The benchmark Envoy: one process, `--concurrency 2`, a listener per variant.
pub struct BenchEnvoy {
    pub envoy: EnvoyProc,
    /// No filter.
    pub plain: SocketAddr,
    /// Native per-uid `local_ratelimit`.
    pub native: SocketAddr,
    /// The seckill filter.
    pub filter: SocketAddr,
    /// The seckill filter's native build (the Envoy dynamic module), when built.
    pub module: Option<SocketAddr>,
    /// The reference filter, one listener per mode, in the order of [`REFERENCE_MODES`].
    pub references: Vec<SocketAddr>,
    /// The native reference module, one listener per mode of [`NATIVE_REFERENCE_MODES`] (none
    /// when that module is not built).
    pub native_references: Vec<SocketAddr>,
    pub admin: SocketAddr,
    pub dir: PathBuf,
}

/// Ports and files of one rendering of `envoy/bench.yaml.tmpl`.
pub struct BenchConfig {
    pub plain: SocketAddr,
    pub native: SocketAddr,
    pub filter: SocketAddr,
    pub module: Option<SocketAddr>,
    pub references: Vec<SocketAddr>,
    pub native_references: Vec<SocketAddr>,
    pub admin: SocketAddr,
    pub yaml: String,
}

/// The reference filter's modes (its plugin configuration), one bench listener each.
pub const REFERENCE_MODES: [&str; 4] = ["set_header", "read_authorization", "pass_calls", "refuse_calls"];

const MODULE_BEGIN: &str = "  # native module listener begin\n";
const MODULE_END: &str = "  # native module listener end\n";
/// The native reference module's modes (its filter configuration), one bench listener each.
pub const NATIVE_REFERENCE_MODES: [&str; 3] = ["noop", "pass_calls", "refuse_calls"];

const REFERENCE_BEGIN: &str = "  # reference listener begin\n";
const REFERENCE_END: &str = "  # reference listener end\n";
const NATIVE_REFERENCE_BEGIN: &str = "  # native reference listener begin\n";
const NATIVE_REFERENCE_END: &str = "  # native reference listener end\n";

/// Replace the block between `begin` and `end` of `yaml` by one copy per mode (none when
/// `modes` is empty), each on a free port with `{{REFERENCE_MODE}}` / `{{REFERENCE_PORT}}` filled
/// in and then passed through `fill`; returns the new yaml and the ports in the order of `modes`.
fn repeat_block(yaml: &str, (begin, end): (&str, &str), modes: &[&str], fill: impl Fn(String, &str) -> String) -> Result<(String, Vec<SocketAddr>), String> {
    let (Some(b), Some(e)) = (yaml.find(begin), yaml.find(end)) else {
        return Err(format!("envoy/bench.yaml.tmpl has no `{}` / `{}` block", begin.trim(), end.trim()));
    };
    let block = yaml.get(b + begin.len()..e).unwrap_or_default();
    let addrs: Vec<SocketAddr> = modes.iter().map(|_| loopback(free_port())).collect();
    let listeners: String = modes.iter().zip(&addrs).map(|(mode, addr)| fill(block.replace("{{REFERENCE_MODE}}", mode).replace("{{REFERENCE_PORT}}", &addr.port().to_string()), mode)).collect();
    Ok((format!("{}{listeners}{}", &yaml[..b], &yaml[e + end.len()..]), addrs))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Render the bench template on free ports with `filter_config` (one line of JSON); the reference
/// filter is the built one ([`paths::reference_wasm`]); the native module's listener is there when
/// that module is built ([`paths::native_module`]).
pub fn render(wasm: &Path, filter_config: &str, feed: SocketAddr) -> Result<BenchConfig, String> {
    use seckill_stack::edge_build::{place, place_filter, EdgeBuild};
    let path = paths::workspace().join("envoy/bench.yaml.tmpl");
    let template = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (plain, native, filter, admin, module) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let (Some(mb), Some(me)) = (template.find(MODULE_BEGIN), template.find(MODULE_END)) else {
        return Err(format!("{} has no `native module listener begin` / `end` block", path.display()));
    };
    let native_module = paths::native_module();
    let (template, module) = if native_module.is_file() {
        (place(&template, "{{NATIVE_EDGE_FILTER}}", &EdgeBuild::Native.filter_entry(&native_module, filter_config)), Some(loopback(module)))
    } else {
        (format!("{}{}", &template[..mb], &template[me + MODULE_END.len()..]), None)
    };
    let entry = EdgeBuild::of_module(wasm).filter_entry(wasm, filter_config);
    let yaml = place_filter(&template, &entry)
        .replace("{{MODULE_PORT}}", &module.map(|m| m.port()).unwrap_or(0).to_string())
        .replace("{{PLAIN_PORT}}", &plain.to_string())
        .replace("{{NATIVE_PORT}}", &native.to_string())
        .replace("{{FILTER_PORT}}", &filter.to_string())
        .replace("{{ADMIN_PORT}}", &admin.to_string())
        .replace("{{FEED_HOST}}", &feed.ip().to_string())
        .replace("{{FEED_PORT}}", &feed.port().to_string())
        .replace("{{REFERENCE_WASM}}", &paths::reference_wasm().display().to_string());
    // The reference listener blocks, once per mode (the native one only when its module is built).
    let (yaml, references) = repeat_block(&yaml, (REFERENCE_BEGIN, REFERENCE_END), &REFERENCE_MODES, |block, _| block)?;
    let reference_native = paths::reference_native();
    let native_modes: &[&str] = if reference_native.is_file() { &NATIVE_REFERENCE_MODES } else { &[] };
    let (yaml, native_references) = repeat_block(&yaml, (NATIVE_REFERENCE_BEGIN, NATIVE_REFERENCE_END), native_modes, |block, mode| {
        place(&block, "{{NATIVE_REFERENCE_FILTER}}", &EdgeBuild::Native.filter_entry(&reference_native, mode))
    })?;
    Ok(BenchConfig { plain: loopback(plain), native: loopback(native), filter: loopback(filter), module, references, native_references, admin: loopback(admin), yaml })
}

/// Wait until every Envoy filter at `edges` has its flags feed: each answers the bench sku's sale
/// status itself (`on_sale`).
pub fn wait_for_feed_at(edges: &[SocketAddr], within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    let has_feed = |addr: &SocketAddr| matches!(http_get(*addr, &format!("/api/sales/{SKU}"), &[], Duration::from_secs(1)), Some((200, body)) if body.contains("on_sale"));
    while std::time::Instant::now() < deadline {
        if edges.iter().all(has_feed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl BenchEnvoy {
    /// Render and start; waits until every listener accepts connections.
    pub fn start(envoy_bin: &Path, wasm: &Path, filter_config: &str, feed: SocketAddr, name: &str) -> Result<BenchEnvoy, String> {
        reference_wasm()?;
        let cfg = render(wasm, filter_config, feed)?;
        let dir = paths::scratch_dir(name);
        let yaml = dir.join("bench.yaml");
        std::fs::write(&yaml, &cfg.yaml).map_err(|e| format!("cannot write {}: {e}", yaml.display()))?;
        let envoy = EnvoyProc::start_config(envoy_bin, &yaml, cfg.filter, cfg.admin, &dir.join("envoy.log"), 2)?;
        for addr in [cfg.plain, cfg.native].iter().chain(&cfg.module).chain(&cfg.references).chain(&cfg.native_references) {
            if !seckill_stack::net::wait_for_port(*addr, Duration::from_secs(10)) {
                return Err(format!("bench listener {addr} did not open; see {}", dir.join("envoy.log").display()));
            }
        }
        Ok(BenchEnvoy { envoy, plain: cfg.plain, native: cfg.native, filter: cfg.filter, module: cfg.module, references: cfg.references, native_references: cfg.native_references, admin: cfg.admin, dir })
    }

    /// The listener of the reference filter in `mode` (one of [`REFERENCE_MODES`]).
    pub fn reference(&self, mode: &str) -> Option<SocketAddr> {
        REFERENCE_MODES.iter().position(|m| *m == mode).and_then(|i| self.references.get(i)).copied()
    }

    /// The listener of the native reference module in `mode` (one of [`NATIVE_REFERENCE_MODES`]),
    /// when that module is built.
    pub fn native_reference(&self, mode: &str) -> Option<SocketAddr> {
        NATIVE_REFERENCE_MODES.iter().position(|m| *m == mode).and_then(|i| self.native_references.get(i)).copied()
    }

    /// Wait until the filter has the feed (the sale status is answered at the edge).
    pub fn wait_for_feed(&self, within: Duration) -> bool {
        let edges: Vec<SocketAddr> = std::iter::once(self.filter).chain(self.module).collect();
        wait_for_feed_at(&edges, within)
    }

    pub fn memory(&self) -> Memory {
        Memory::of(self.envoy.pid(), self.admin)
    }

    /// A counter or gauge from the admin's `/stats` (plain text `name: value`).
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.envoy.stat(name)
    }
}

/// Envoy's memory at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS` of the process (bytes).
    pub rss: u64,
    /// tcmalloc's bytes in use by the application (admin `/memory` `allocated`).
    pub allocated: u64,
    /// tcmalloc's heap size (admin `/memory` `heap_size`).
    pub heap_size: u64,
}

impl Memory {
    pub fn of(pid: Option<u32>, admin: SocketAddr) -> Memory {
        let rss = pid.map(rss_bytes).unwrap_or(0);
        let (allocated, heap_size) = match http_get(admin, "/memory", &[], Duration::from_secs(5)) {
            Some((200, body)) => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let num = |k: &str| v[k].as_str().and_then(|s| s.parse().ok()).or_else(|| v[k].as_u64()).unwrap_or(0);
                (num("allocated"), num("heap_size"))
            }
            _ => (0, 0),
        };
        Memory { rss, allocated, heap_size }
    }
}

/// CPU time `pid` has used so far, all its threads summed, in nanoseconds: each thread's time on
/// a CPU from `/proc/<pid>/task/<tid>/schedstat`, which leaves out the time the hypervisor ran
/// someone else on that CPU (steal). `None` if the process is unreadable.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    // A thread that ended between the listing and its read adds nothing.
    let on_cpu = |t: std::fs::DirEntry| -> Option<u64> { std::fs::read_to_string(t.path().join("schedstat")).ok()?.split_whitespace().next()?.parse().ok() };
    Some(threads.flatten().filter_map(on_cpu).sum())
}

/// `VmRSS` of `pid` in bytes (0 if unreadable).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())).flatten())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// A buy for `uid` with a fresh ticket, as raw request bytes (with `x-uid` for the native limiter).
pub fn buy_request(uid: &str) -> Bytes {
    let exp = crate::now_ms() / 1000 + 3600;
    let ticket = seckill_core::ticket::mint(TICKET_SECRET.as_bytes(), uid, exp).unwrap_or_default();
    request_bytes("POST", &format!("/api/sales/{SKU}/orders"), &[("authorization", &format!("Bearer {ticket}")), ("x-uid", uid)])
}

/// `1_234_567` → `"1.18 MiB"`.
pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `path` when the file is there, else how to build it.
fn built(path: PathBuf, how: &str) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} is missing: build it with {how}", path.display()))
    }
}

/// The filter's built module (`cargo xtask build` or `cargo build -p seckill-edge-filter --target
/// wasm32-wasip1 --profile wasm`).
pub fn filter_wasm() -> Result<PathBuf, String> {
    built(paths::filter_wasm(), "`cargo build -p seckill-edge-filter --target wasm32-wasip1 --profile wasm` (or `cargo xtask build`)")
}

/// The native build of the filter (`cargo xtask build` or `cargo build --release -p seckill-edge-native`).
pub fn native_module() -> Result<PathBuf, String> {
    built(paths::native_module(), "`cargo build --release -p seckill-edge-native` (or `cargo xtask build`)")
}

/// The reference filter's built module (`cargo xtask build`).
pub fn reference_wasm() -> Result<PathBuf, String> {
    built(paths::reference_wasm(), "`cargo xtask build`")
}

/// Envoy: `ENVOY_BIN`, else the project's pinned one.
pub fn envoy_bin() -> Result<PathBuf, String> {
    paths::envoy_bin().ok_or_else(|| "no Envoy: set ENVOY_BIN or run `cargo xtask setup`".to_owned())
}
