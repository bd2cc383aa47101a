//! [`EdgeRig`]: the stack as a shopper meets it, for the Envoy integration tests — a Redis of its
//! own, the real origin (in-process, so its metrics can be read directly), and Envoy with the built
//! filter (`--concurrency 2`, the stack's `envoy/edge.yaml.tmpl`), every one on a free port.
//!
//! Between Envoy and the origin sits a [`Gate`]: a TCP relay that records every byte Envoy sends
//! upstream (so a test can prove what reached the origin, e.g. that no page load and no client
//! `x-seckill-*` header ever did) and that can be shut (the origin becomes unreachable for Envoy,
//! buys and the flags feed alike: connections refused) and opened again on the same port.
//!
//! Tests talk to the edge with [`http`], the harness's blocking HTTP/1.1 client
//! (`seckill_stack::net::Client`) opening a fresh connection per request (`connection: close`),
//! so a handful of requests land on both Envoy workers.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use seckill_core::demo;
use seckill_origin::Settings;
use seckill_stack::envoy_proc::{dev_filter_config, EdgeSettings, EnvoyProc};
use seckill_stack::net::{http_get, Answer, Client};
use seckill_stack::paths;
use seckill_stack::redis_proc::RedisProc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::AbortHandle;

use crate::inproc::InProcOrigin;
use crate::rig::SaleSpec;

/// Why a rig could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    #[error("redis: {0}")]
    Redis(#[from] seckill_stack::redis_proc::RedisProcError),
    #[error("origin: {0}")]
    Origin(String),
    #[error("envoy: {0}")]
    Envoy(String),
    #[error("the filter module: {0}")]
    Wasm(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

// ---------------------------------------------------------------------------------------------
// The blocking HTTP/1.1 client, one connection per request: `seckill_stack::net::Client`.

/// An answer as the client saw it (header names lower-cased, in order; body de-chunked).
pub type Resp = Answer;

/// What the tests read from an answer beyond its status, headers and body.
pub trait RespExt {
    fn json(&self) -> serde_json::Value;
    /// `outcome` of a JSON body ("" when none).
    fn outcome(&self) -> String;
    /// `x-seckill-by` ("" when none).
    fn by(&self) -> &str;
}

impl RespExt for Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn outcome(&self) -> String {
        self.json()["outcome"].as_str().unwrap_or("").to_owned()
    }

    fn by(&self) -> &str {
        self.header("x-seckill-by").unwrap_or("")
    }
}

/// One request on a fresh connection (`connection: close`, [`Client::new`]). `Err` when the
/// connection could not be made or the answer was unreadable.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> std::io::Result<Resp> {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| Client::new(Duration::from_secs(10))).request(addr, method, path, headers, body)
}

/// `Authorization` value with a ticket for `uid` signed by the demo secret, valid for an hour.
pub fn ticket(uid: &str) -> String {
    ticket_with(demo::TICKET_SECRET, uid, crate::now_ms() / 1000 + 3600)
}

/// `Authorization` value with a ticket signed by `secret`, expiring at `exp` (Unix seconds).
pub fn ticket_with(secret: &str, uid: &str, exp: u64) -> String {
    format!("Bearer {}", seckill_core::ticket::mint(secret.as_bytes(), uid, exp).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// The gate between Envoy and the origin.

struct GateInner {
    listen: SocketAddr,
    target: SocketAddr,
    /// Everything Envoy sent upstream (capped at 16 MiB).
    upstream: Mutex<Vec<u8>>,
    accept: Mutex<Option<AbortHandle>>,
    conns: Mutex<Vec<AbortHandle>>,
}

/// A recording TCP relay in front of the origin that can be shut and reopened.
pub struct Gate {
    inner: Arc<GateInner>,
    rt: tokio::runtime::Handle,
}

const UPSTREAM_CAP: usize = 16 << 20;

impl Gate {
    fn start(rt: &tokio::runtime::Handle, target: SocketAddr) -> std::io::Result<Gate> {
        let listen = SocketAddr::from(([127, 0, 0, 1], seckill_stack::net::free_port()));
        let inner = Arc::new(GateInner { listen, target, upstream: Mutex::new(Vec::new()), accept: Mutex::new(None), conns: Mutex::new(Vec::new()) });
        let gate = Gate { inner, rt: rt.clone() };
        gate.open()?;
        Ok(gate)
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.listen
    }

    /// Listen again (on the same port).
    pub fn open(&self) -> std::io::Result<()> {
        let inner = self.inner.clone();
        let _guard = self.rt.enter();
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(inner.listen)?;
        let listener = socket.listen(1024)?;
        let task = self.rt.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let inner2 = inner.clone();
                let conn = tokio::spawn(async move {
                    let Ok(origin) = tokio::net::TcpStream::connect(inner2.target).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = origin.set_nodelay(true);
                    let (mut cr, mut cw) = client.into_split();
                    let (mut or, mut ow) = origin.into_split();
                    let rec = inner2.clone();
                    let up = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if let Ok(mut u) = rec.upstream.lock() {
                                if u.len() + n <= UPSTREAM_CAP {
                                    u.extend_from_slice(&buf[..n]);
                                }
                            }
                            if ow.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = ow.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut or, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
                if let Ok(mut c) = inner.conns.lock() {
                    c.retain(|h| !h.is_finished());
                    c.push(conn.abort_handle());
                }
            }
        });
        if let Ok(mut a) = self.inner.accept.lock() {
            *a = Some(task.abort_handle());
        }
        Ok(())
    }

    /// Stop listening and cut every relayed connection: Envoy can no longer reach the origin.
    pub fn shut(&self) {
        if let Some(a) = self.inner.accept.lock().ok().and_then(|mut a| a.take()) {
            a.abort();
        }
        if let Ok(mut c) = self.inner.conns.lock() {
            for h in c.drain(..) {
                h.abort();
            }
        }
        // Wait until the port refuses connections (the listener is dropped on the runtime).
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && TcpStream::connect_timeout(&self.inner.listen, Duration::from_millis(100)).is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything Envoy sent to the origin so far, as text.
    pub fn upstream(&self) -> String {
        self.inner.upstream.lock().map(|u| String::from_utf8_lossy(&u).into_owned()).unwrap_or_default()
    }

    /// The request lines (`GET /path HTTP/1.1`) Envoy sent to the origin so far.
    pub fn request_lines(&self) -> Vec<String> {
        self.upstream()
            .split("\r\n")
            .filter(|l| {
                let mut p = l.split(' ');
                matches!((p.next(), p.next(), p.next(), p.next()), (Some(m), Some(path), Some(v), None)
                    if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) && path.starts_with('/') && v.starts_with("HTTP/1."))
            })
            .map(str::to_owned)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The filter module, built once per test process.

/// The filter's module for the build `SECKILL_EDGE_BUILD` selects (`wasm`, the default, or
/// `native`: `seckill_stack::edge_build`): `SECKILL_FILTER_WASM` (wasm) or
/// `SECKILL_NATIVE_MODULE` (native) when set, else built now (once per process) with
/// `cargo build -p seckill-edge-filter --target wasm32-wasip1 --profile wasm` or
/// `cargo build --release -p seckill-edge-native`.
pub fn filter_wasm() -> Result<PathBuf, RigError> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let build = seckill_stack::edge_build::EdgeBuild::from_env()?;
            let (var, args): (&str, &[&str]) = match build {
                seckill_stack::edge_build::EdgeBuild::Wasm => ("SECKILL_FILTER_WASM", &["build", "--quiet", "-p", "seckill-edge-filter", "--target", "wasm32-wasip1", "--profile", "wasm"]),
                seckill_stack::edge_build::EdgeBuild::Native => ("SECKILL_NATIVE_MODULE", &["build", "--quiet", "--release", "-p", "seckill-edge-native"]),
            };
            if let Some(p) = std::env::var_os(var) {
                return Ok(PathBuf::from(p));
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = std::process::Command::new(cargo)
                .current_dir(paths::workspace())
                .args(args)
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            let p = build.module();
            if status.success() && p.is_file() { Ok(p) } else { Err(format!("building the {} filter failed ({status}); {} missing", build.as_str(), p.display())) }
        })
        .clone()
        .map_err(RigError::Wasm)
}

/// The proxy-wasm filter with its test-only fault (`--features test-fault`: a panic on
/// `seckill_edge::route::TEST_FAULT_PATH`), built once into `target/test-fault/` (never over the
/// shipped module); `SECKILL_FAULT_FILTER_WASM` names a built one instead.
pub fn fault_filter_wasm() -> Result<PathBuf, RigError> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("SECKILL_FAULT_FILTER_WASM") {
                return Ok(PathBuf::from(p));
            }
            let p = paths::fault_filter_wasm();
            let dir = paths::target_dir().join("test-fault");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = std::process::Command::new(cargo)
                .current_dir(paths::workspace())
                .args(["build", "--quiet", "-p", "seckill-edge-filter", "--features", "test-fault", "--target", "wasm32-wasip1", "--profile", "wasm", "--target-dir"])
                .arg(&dir)
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if status.success() && p.is_file() { Ok(p) } else { Err(format!("building the test-fault filter failed ({status}); {} missing", p.display())) }
        })
        .clone()
        .map_err(RigError::Wasm)
}

/// Envoy: `ENVOY_BIN`, else the project's pinned one (`cargo xtask setup`).
pub fn envoy_bin() -> Result<PathBuf, RigError> {
    paths::envoy_bin().ok_or_else(|| RigError::Envoy("no Envoy: set ENVOY_BIN or run `cargo xtask setup`".into()))
}

// ---------------------------------------------------------------------------------------------
// The rig.

/// Redis + origin + gate + Envoy (2 workers), all on free ports.
pub struct EdgeRig {
    pub envoy: EnvoyProc,
    pub gate: Gate,
    pub origin: InProcOrigin,
    pub redis: RedisProc,
    pub dir: PathBuf,
    rt: Option<tokio::runtime::Runtime>,
    stopped: AtomicBool,
}

/// Text of the test page Envoy serves (so a test can recognise it).
pub const PAGE_MARKER: &str = "seckill edge rig page";

impl EdgeRig {
    /// Start everything; `extra` adds or overrides filter configuration fields (JSON values), e.g.
    /// `&[("window_ms", "500")]`. Returns once Envoy holds a flags feed from the origin.
    pub fn start(name: &str, extra: &[(&str, &str)]) -> Result<EdgeRig, RigError> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let redis = RedisProc::start_scratch(name)?;
        let origin = rt.block_on(InProcOrigin::start(Settings::dev(&redis.url()))).map_err(|e| RigError::Origin(e.to_string()))?;
        let gate = Gate::start(rt.handle(), origin.addr)?;
        let dir = paths::scratch_dir(&format!("edge-{name}"));
        let site = dir.join("site");
        std::fs::create_dir_all(&site)?;
        std::fs::write(site.join("index.html"), format!("<!doctype html><title>sale</title><p>{PAGE_MARKER}</p>\n"))?;
        let settings = EdgeSettings {
            edge_port: seckill_stack::net::free_port(),
            admin_port: seckill_stack::net::free_port(),
            origins: vec![gate.addr()],
            filter_wasm: filter_wasm()?,
            filter_config: dev_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, extra),
            site_dir: site,
        };
        let envoy = EnvoyProc::start(&envoy_bin()?, &settings, &dir, 2).map_err(RigError::Envoy)?;
        let rig = EdgeRig { envoy, gate, origin, redis, dir, rt: Some(rt), stopped: AtomicBool::new(false) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while rig.envoy_stat("wasmcustom.seckill_edge_feed_updates").unwrap_or(0) == 0 {
            if Instant::now() > deadline {
                return Err(RigError::Envoy(format!("the filter never got a flags feed; see {}", rig.dir.join("envoy.log").display())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(rig)
    }

    pub fn edge(&self) -> SocketAddr {
        self.envoy.edge
    }

    /// A request to the edge on a fresh connection (panics if the edge cannot be reached: tests).
    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        http(self.edge(), method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path} at the edge: {e}"))
    }

    /// `POST /api/sales/{sku}/orders` through the edge with a valid ticket for `uid`.
    pub fn buy(&self, uid: &str, sku: &str) -> Resp {
        let t = ticket(uid);
        self.call("POST", &format!("/api/sales/{sku}/orders"), &[("authorization", &t)], "")
    }

    /// `GET /api/sales/{sku}` through the edge.
    pub fn status(&self, sku: &str) -> Resp {
        self.call("GET", &format!("/api/sales/{sku}"), &[], "")
    }

    /// A request to the origin's SRE API (not through the edge).
    pub fn admin(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Resp {
        let auth = demo::ADMIN_AUTHORIZATION.to_owned();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        http(self.origin.addr, method, path, &[("authorization", &auth), ("content-type", "application/json")], &body)
            .unwrap_or_else(|e| panic!("{method} {path} at the origin: {e}"))
    }

    /// Create (or reset) a sale at the origin and wait until the edge answers its status from
    /// its flags (the feed reached every worker's view).
    pub fn create_sale(&self, sku: &str, s: &SaleSpec) {
        let r = self.admin(
            "PUT",
            &format!("/admin/sales/{sku}"),
            Some(serde_json::json!({"stock": s.stock, "starts_at": s.starts_at, "ends_at": s.ends_at, "per_user_limit": s.per_user_limit, "pay_within_s": s.pay_within_s})),
        );
        assert_eq!(r.status, 200, "create sale {sku}: {}", r.body);
        self.wait_edge_knows(sku);
    }

    /// Wait (≤ 5 s) until the edge answers `GET /api/sales/{sku}` itself.
    pub fn wait_edge_knows(&self, sku: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = self.status(sku);
            if r.by() == "edge" {
                return;
            }
            assert!(Instant::now() < deadline, "the edge never learned sale {sku}: {r:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The SRE sold-out switch (origin admin API).
    pub fn sold_out_switch(&self, sku: &str, on: bool) {
        let r = self.admin("PUT", &format!("/admin/sales/{sku}/sold-out"), Some(serde_json::json!({"sold_out": on})));
        assert_eq!(r.status, 200, "sold-out switch: {}", r.body);
    }

    /// Buy requests the origin has answered so far (its `seckill_origin_requests_total{route="buy"}`,
    /// all outcomes).
    pub fn origin_buys(&self) -> u64 {
        self.origin_metric("route=\"buy\"")
    }

    /// Sum of the origin's `seckill_origin_requests_total` series whose labels contain `labels`.
    pub fn origin_metric(&self, labels: &str) -> u64 {
        self.origin
            .app
            .metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("seckill_origin_requests_total{") && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// A stat from Envoy's admin `/stats` (exact name), e.g. `wasmcustom.seckill_edge_feed_errors`.
    pub fn envoy_stat(&self, name: &str) -> Option<u64> {
        self.envoy.stat(name)
    }

    /// Makes the origin unreachable: shuts the gate, then waits (at most 5 s) until Envoy has
    /// noticed every pooled upstream connection close. Until it has, a request can still be written
    /// to a half-closed pooled connection and come back as Envoy's plain "connection termination"
    /// 503, which is rightly not mapped to `busy` (the origin might have committed).
    pub fn shut_origin(&self) {
        self.gate.shut();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.envoy_stat("cluster.origin.upstream_cx_active").unwrap_or(0) > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Connections each Envoy worker accepted on the edge listener so far: `[worker_0, worker_1]`.
    pub fn worker_connections(&self) -> [u64; 2] {
        let (_, body) = http_get(self.envoy.admin, "/stats?filter=downstream_cx_total", &[], Duration::from_secs(5)).unwrap_or_default();
        let port = format!("_{}.worker_", self.edge().port());
        let mut out = [0u64; 2];
        for line in body.lines().filter(|l| l.starts_with("listener.") && l.contains(&port)) {
            let Some((name, v)) = line.split_once(": ") else { continue };
            let v = v.trim().parse().unwrap_or(0);
            if name.ends_with("worker_0.downstream_cx_total") {
                out[0] = v;
            } else if name.ends_with("worker_1.downstream_cx_total") {
                out[1] = v;
            }
        }
        out
    }

    /// The Envoy log so far (for failure messages).
    pub fn envoy_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }
}

impl Drop for EdgeRig {
    fn drop(&mut self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.envoy.kill();
        self.gate.shut();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
