//! A whole stack of our own on free loopback ports: `redis-server`, the origin (its binary, or
//! in this process on a runtime of its own), and Envoy with the built edge filter.
//!
//! It exists for the accounting tests and the end-to-end benchmark, which must never touch the
//! default ports (other people run stacks on this machine) and must leave nothing behind: every
//! process is stopped when the [`Stack`] is dropped. It builds on `seckill-stack`, the same
//! process harness `cargo xtask up` uses, so what is measured is the stack a newcomer runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use seckill_core::demo;
use seckill_stack::envoy_proc::{stack_filter_config, EdgeSettings, EnvoyProc};
use seckill_stack::net::{free_port, http_get};
use seckill_stack::origin_proc::OriginProc;
use seckill_stack::paths;
use seckill_stack::redis_proc::{RedisProc, RedisProcError, STACK_FSYNC};

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Redis(#[from] RedisProcError),
    #[error("origin: {0}")]
    Origin(String),
    #[error("edge: {0}")]
    Edge(String),
}

/// How the origin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginKind {
    /// The `seckill-origin` release binary (what `cargo xtask up` runs).
    Binary,
    /// Inside this process, on a runtime and threads of its own (no prebuilt binary needed).
    InProcess,
    /// The binary when it is built, else in this process.
    Auto,
}

/// The origin inside this process: its own OS thread and tokio runtime, stopped on drop.
struct InProcOrigin {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcOrigin {
    fn start(listen: SocketAddr, redis_url: &str) -> Result<InProcOrigin, HarnessError> {
        let listener = std::net::TcpListener::bind(listen).map_err(|e| HarnessError::Origin(format!("cannot listen on {listen}: {e}")))?;
        listener.set_nonblocking(true).map_err(|e| HarnessError::Origin(e.to_string()))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let redis_url = redis_url.to_owned();
        let thread = std::thread::Builder::new()
            .name("sim-origin".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot build the origin's runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let app = match seckill_origin::App::new(seckill_origin::Settings::dev(&redis_url)) {
                        Ok(app) => app,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            seckill_origin::run(l, app, async move { let _ = rx.await; }, Duration::from_secs(2)).await
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("cannot adopt the origin's listener: {e}")));
                        }
                    }
                });
            })
            .map_err(|e| HarnessError::Origin(e.to_string()))?;
        let started = ready_rx.recv_timeout(Duration::from_secs(10)).map_err(|_| HarnessError::Origin("the in-process origin did not start".into()))?;
        let handle = InProcOrigin { stop: Some(tx), thread: Some(thread) };
        started.map_err(HarnessError::Origin)?;
        Ok(handle)
    }
}

impl Drop for InProcOrigin {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Held only so that dropping the [`Stack`] stops the origin.
#[expect(dead_code, reason = "the handles are held for their Drop")]
enum Origin {
    Proc(OriginProc),
    InProc(InProcOrigin),
}

/// Redis, the origin and (optionally) Envoy with the edge filter, on free ports.
pub struct Stack {
    // Field order is drop order: the edge first, then the origin, then Redis.
    envoy: Option<EnvoyProc>,
    _origin: Origin,
    redis: RedisProc,
    origin_addr: SocketAddr,
    dir: PathBuf,
}

/// The built edge filter; built now (like `cargo xtask build` does) when missing.
pub fn filter_wasm() -> Result<PathBuf, HarnessError> {
    let p = paths::filter_wasm();
    if p.is_file() {
        return Ok(p);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(paths::workspace())
        .args(["build", "--quiet", "-p", "seckill-edge-filter", "--target", "wasm32-wasip1", "--profile", "wasm"])
        .status()
        .map_err(|e| HarnessError::Edge(format!("cannot run cargo to build the filter: {e}")))?;
    if !status.success() || !p.is_file() {
        return Err(HarnessError::Edge(format!("the edge filter is not built ({}); run `cargo xtask build`", p.display())));
    }
    Ok(p)
}

fn wait_ready(origin: SocketAddr) -> bool {
    let auth = demo::ADMIN_AUTHORIZATION.to_owned();
    (0..200).any(|_| {
        let ok = matches!(http_get(origin, "/readyz", &[("authorization", &auth)], Duration::from_secs(1)), Some((200, _)));
        if !ok {
            std::thread::sleep(Duration::from_millis(25));
        }
        ok
    })
}

impl Stack {
    /// Start a stack named `name` (its logs and data go to a scratch folder under
    /// `target/seckill/tmp/`). `edge`: also start Envoy with the filter, configured exactly as the
    /// stack's (`seckill_stack::envoy_proc::stack_filter_config`: the demo secrets, the start
    /// lottery on), so the simulator measures the filter `cargo xtask up` runs.
    pub fn start(name: &str, origin: OriginKind, edge: bool) -> Result<Stack, HarnessError> {
        let dir = paths::scratch_dir(name);
        let redis = RedisProc::start(free_port(), &dir.join("redis"), STACK_FSYNC)?;
        let origin_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let bin = paths::native_bin("seckill-origin");
        let use_bin = match origin {
            OriginKind::Binary => true,
            OriginKind::InProcess => false,
            OriginKind::Auto => bin.is_file(),
        };
        let origin_handle = if use_bin {
            Origin::Proc(OriginProc::start(&bin, origin_addr, &redis.url(), &dir.join("origin.log")).map_err(HarnessError::Origin)?)
        } else {
            Origin::InProc(InProcOrigin::start(origin_addr, &redis.url())?)
        };
        if !wait_ready(origin_addr) {
            return Err(HarnessError::Origin(format!("not ready on {origin_addr} (logs in {})", dir.display())));
        }
        let envoy = if edge {
            let bin = paths::envoy_bin().ok_or_else(|| HarnessError::Edge("no Envoy: set ENVOY_BIN or run `cargo xtask setup`".into()))?;
            let settings = EdgeSettings {
                edge_port: free_port(),
                admin_port: free_port(),
                origins: vec![origin_addr],
                filter_wasm: filter_wasm()?,
                filter_config: stack_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, None),
                site_dir: paths::workspace().join("static-site/public"),
            };
            Some(EnvoyProc::start(&bin, &settings, &dir, 2).map_err(HarnessError::Edge)?)
        } else {
            None
        };
        Ok(Stack { envoy, _origin: origin_handle, redis, origin_addr, dir })
    }

    pub fn origin_url(&self) -> String {
        format!("http://{}", self.origin_addr)
    }

    pub fn edge_url(&self) -> Option<String> {
        self.envoy.as_ref().map(EnvoyProc::url)
    }

    pub fn envoy_admin_url(&self) -> Option<String> {
        self.envoy.as_ref().map(EnvoyProc::admin_url)
    }

    pub fn redis_url(&self) -> String {
        self.redis.url()
    }

    /// Where this stack's logs and data are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
