//! The whole stack for fault tests: a Redis, the origin *binary* (so it can be killed and
//! restarted), Envoy with the filter (2 workers), all on free ports; optionally a gate in front of
//! the origin that can cut the flags feed alone while buys still get through.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use seckill_core::demo;
use seckill_origin::client::{Answer, HttpClient};
use seckill_stack::envoy_proc::{dev_filter_config, render, EdgeSettings, EnvoyProc};
use seckill_stack::net::free_port;
use seckill_stack::origin_proc::OriginProc;
use seckill_stack::paths;
use seckill_stack::redis_proc::{RedisProc, STACK_FSYNC};

/// How to build the stack.
#[derive(Clone)]
pub struct StackOptions {
    /// The filter's throttle window.
    pub window_ms: u64,
    /// Put a [`FeedGate`] between Envoy and the origin.
    pub feed_gate: bool,
    /// Extra filter config fields (`name`, JSON value).
    pub filter_extra: Vec<(String, String)>,
    /// Edit the rendered Envoy config (e.g. tighter circuit breakers); must change it.
    pub tweak_envoy: Option<fn(&str) -> String>,
    /// Load this filter module instead of the build `SECKILL_EDGE_BUILD` selects (e.g. the
    /// test-fault build, `edge_rig::fault_filter_wasm`).
    pub filter_module: Option<PathBuf>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions { window_ms: 300, feed_gate: false, filter_extra: Vec::new(), tweak_envoy: None, filter_module: None }
    }
}

pub struct StackRig {
    pub redis: RedisProc,
    pub origin: Option<OriginProc>,
    pub envoy: Option<EnvoyProc>,
    pub gate: Option<FeedGate>,
    pub http: HttpClient,
    pub origin_addr: SocketAddr,
    dir: PathBuf,
    envoy_config: PathBuf,
    edge: SocketAddr,
    admin: SocketAddr,
    restarts: u32,
    /// The log of Envoy's current run.
    envoy_log: PathBuf,
}

fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl StackRig {
    pub async fn start(name: &str, opts: StackOptions) -> anyhow::Result<Self> {
        let dir = paths::scratch_dir(name);
        let redis = RedisProc::start(free_port(), &dir.join("redis"), STACK_FSYNC)?;
        let origin_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let origin = block(|| OriginProc::start(&paths::native_bin("seckill-origin"), origin_addr, &redis.url(), &dir.join("origin-0.log")))
            .map_err(anyhow::Error::msg)?;
        let gate = if opts.feed_gate { Some(FeedGate::start(origin_addr).await?) } else { None };
        let upstream = gate.as_ref().map(|g| g.addr).unwrap_or(origin_addr);
        let window = opts.window_ms.to_string();
        let mut extra: Vec<(&str, &str)> = vec![("window_ms", window.as_str())];
        extra.extend(opts.filter_extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let settings = EdgeSettings {
            edge_port: free_port(),
            admin_port: free_port(),
            origins: vec![upstream],
            // The build `SECKILL_EDGE_BUILD` selects (wasm by default), built if missing.
            filter_wasm: match &opts.filter_module {
                Some(m) => m.clone(),
                None => crate::edge_rig::filter_wasm().map_err(|e| anyhow::anyhow!("{e}"))?,
            },
            filter_config: dev_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, &extra),
            site_dir: dir.join("site"),
        };
        std::fs::create_dir_all(&settings.site_dir)?;
        std::fs::write(settings.site_dir.join("index.html"), "<!doctype html><title>sale</title>")?;
        let mut yaml = render(&settings).map_err(anyhow::Error::msg)?;
        if let Some(tweak) = opts.tweak_envoy {
            let tweaked = tweak(&yaml);
            anyhow::ensure!(tweaked != yaml, "tweak_envoy changed nothing: the template moved on");
            yaml = tweaked;
        }
        let envoy_config = dir.join("envoy.yaml");
        std::fs::write(&envoy_config, yaml)?;
        let edge = SocketAddr::from(([127, 0, 0, 1], settings.edge_port));
        let admin = SocketAddr::from(([127, 0, 0, 1], settings.admin_port));
        let mut rig = StackRig {
            redis,
            origin: Some(origin),
            envoy: None,
            gate,
            http: HttpClient::new(Duration::from_secs(8)),
            origin_addr,
            dir,
            envoy_config,
            edge,
            admin,
            restarts: 0,
            envoy_log: PathBuf::new(),
        };
        rig.start_envoy()?;
        Ok(rig)
    }

    fn envoy_bin() -> PathBuf {
        paths::envoy_bin().expect("Envoy: run through `cargo xtask test`, or set ENVOY_BIN")
    }

    /// Start Envoy (again) on the same ports and config: its shared state starts empty.
    pub fn start_envoy(&mut self) -> anyhow::Result<()> {
        self.restarts += 1;
        let log = self.dir.join(format!("envoy-{}.log", self.restarts));
        self.envoy_log = log.clone();
        let p = block(|| EnvoyProc::start_config(&Self::envoy_bin(), &self.envoy_config, self.edge, self.admin, &log, 2)).map_err(anyhow::Error::msg)?;
        self.envoy = Some(p);
        Ok(())
    }

    pub fn kill_envoy(&mut self) {
        if let Some(mut e) = self.envoy.take() {
            e.kill();
        }
    }

    pub fn kill_origin(&mut self) {
        if let Some(mut o) = self.origin.take() {
            o.kill9();
        }
    }

    /// Start the origin binary again on the same address and Redis.
    pub fn start_origin(&mut self) -> anyhow::Result<()> {
        self.restarts += 1;
        let log = self.dir.join(format!("origin-{}.log", self.restarts));
        let o = block(|| OriginProc::start(&paths::native_bin("seckill-origin"), self.origin_addr, &self.redis.url(), &log)).map_err(anyhow::Error::msg)?;
        self.origin = Some(o);
        Ok(())
    }

    /// SIGSTOP / SIGCONT the origin process (hung or overloaded origin).
    pub fn signal_origin(&self, sig: &str) {
        if let Some(pid) = self.origin.as_ref().and_then(|o| o.pid()) {
            let _ = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
        }
    }

    /// This rig's Envoy admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Envoy's log of its current run.
    pub fn envoy_log(&self) -> &std::path::Path {
        &self.envoy_log
    }

    pub fn edge_addr(&self) -> SocketAddr {
        self.edge
    }

    pub fn edge_url(&self) -> String {
        format!("http://{}", self.edge)
    }

    pub fn origin_url(&self) -> String {
        format!("http://{}", self.origin_addr)
    }

    pub async fn admin(&self, method: hyper::Method, path: &str, body: Option<serde_json::Value>) -> anyhow::Result<Answer> {
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?.unwrap_or_default();
        Ok(self.http.send(method, &format!("{}{path}", self.origin_url()), &[("authorization", demo::ADMIN_AUTHORIZATION)], body).await?)
    }

    /// Create an open sale (started a second ago, an hour long).
    pub async fn open_sale(&self, sku: &str, stock: u64) -> anyhow::Result<()> {
        let now = crate::now_ms();
        let body = serde_json::json!({"stock": stock, "starts_at": now - 1000, "ends_at": now + 3_600_000});
        let a = self.admin(hyper::Method::PUT, &format!("/admin/sales/{sku}"), Some(body)).await?;
        anyhow::ensure!(a.status == 200, "create sale: {}", a.text());
        Ok(())
    }

    pub async fn set_sold_out(&self, sku: &str, on: bool) -> anyhow::Result<()> {
        let a = self.admin(hyper::Method::PUT, &format!("/admin/sales/{sku}/sold-out"), Some(serde_json::json!({"sold_out": on}))).await?;
        anyhow::ensure!(a.status == 200, "sold-out switch: {}", a.text());
        Ok(())
    }

    pub async fn figures(&self, sku: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.admin(hyper::Method::GET, &format!("/admin/sales/{sku}"), None).await?.json_value())
    }

    /// Orders of `sku` straight from Redis: order id → (uid, state).
    pub fn orders_in_redis(&self, sku: &str) -> anyhow::Result<HashMap<String, (String, String)>> {
        let mut c = redis::Client::open(self.redis.url())?.get_connection_with_timeout(Duration::from_secs(5))?;
        let raw: HashMap<String, String> = redis::cmd("HGETALL").arg(format!("sk:{{{sku}}}:orders")).query(&mut c)?;
        Ok(crate::crowd::owners_and_states(raw))
    }

    /// Order id → created_at (Unix ms).
    pub fn order_times(&self, sku: &str) -> anyhow::Result<HashMap<String, u64>> {
        let mut c = redis::Client::open(self.redis.url())?.get_connection_with_timeout(Duration::from_secs(5))?;
        let raw: HashMap<String, String> = redis::cmd("HGETALL").arg(format!("sk:{{{sku}}}:orders")).query(&mut c)?;
        Ok(raw.into_iter().map(|(id, rec)| (id, rec.split(' ').nth(2).and_then(|t| t.parse().ok()).unwrap_or(0))).collect())
    }
}

/// A reverse proxy between Envoy and the origin that can refuse the flags feed (`/edge/flags`)
/// with 503 while every other request goes through: "the feed is unreachable, the origin is not".
pub struct FeedGate {
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FeedGate {
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let down = Arc::new(AtomicBool::new(false));
        let http = HttpClient::new(Duration::from_secs(8));
        let task = {
            let down = down.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (down, http) = (down.clone(), http.clone());
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (down, http) = (down.clone(), http.clone());
                        async move { Ok::<_, Infallible>(forward(req, target, &http, down.load(Ordering::Relaxed)).await) }
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
            })
        };
        Ok(FeedGate { addr, down, task })
    }

    pub fn set_feed_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }
}

impl Drop for FeedGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(req: hyper::Request<hyper::body::Incoming>, target: SocketAddr, http: &HttpClient, feed_down: bool) -> hyper::Response<Full<Bytes>> {
    let reply = |status: u16, body: Bytes| {
        let mut r = hyper::Response::new(Full::new(body));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
        r
    };
    if feed_down && req.uri().path().starts_with("/edge/flags") {
        return reply(503, Bytes::from_static(b"feed cut by the test"));
    }
    let method = req.method().clone();
    let path = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "host" | "connection" | "content-length" | "transfer-encoding"))
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(400, Bytes::new()),
    };
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match http.send(method, &format!("http://{target}{path}"), &h, body).await {
        Ok(a) => {
            let mut r = reply(a.status.as_u16(), a.body.clone());
            for (k, v) in a.headers.iter() {
                if !matches!(k.as_str(), "connection" | "content-length" | "transfer-encoding") {
                    r.headers_mut().append(k.clone(), v.clone());
                }
            }
            r
        }
        Err(_) => reply(502, Bytes::new()),
    }
}
