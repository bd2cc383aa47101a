//! `seckill-edge-filter`: the Envoy (proxy-wasm) glue of the flash-sale edge filter.
//!
//! It exists only to connect Envoy to `seckill-edge`, where every decision lives: it implements
//! [`Host`] with proxy-wasm host calls, reads the few request/response headers the logic needs,
//! strips client `x-seckill-*` headers, sends the logic's local replies, and on the root
//! context's tick runs the feed poller and has the held-request scheduler
//! (`seckill_edge::scheduler`: turn order, how many per tick, the tick rate) act on held streams
//! through [`Streams`]. Nothing here decides anything.
//!
//! Panics are avoided on every path (a panic kills the Wasm VM of a whole worker; Envoy then
//! reloads it, `failure_policy: FAIL_RELOAD`): only the
//! `Result`-returning host calls are used, header values are read as bytes (the SDK's string
//! getters panic on non-UTF-8 values), and any failed call degrades to passing the request on
//! with the `seckill_edge_host_errors` counter. The one exception is the `test-fault` cargo
//! feature, never shipped: it panics on `seckill_edge::route::TEST_FAULT_PATH` so a test can kill
//! a VM on purpose.
//!
//! Cost matters here: every host call, and every call that hands data back (the host calls into
//! the VM to allocate it), costs about a microsecond in Envoy's V8, on every request. So the
//! request headers are fetched in one call and read in place ([`RequestHeaders`], no allocation
//! per header), and an origin answer's order id is read only for wins.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};

use seckill_core::headers;
use seckill_edge::poller::{claim_worker_id, init_keys};
use seckill_edge::{Config, Counter, Decision, Edge, HeldStreams, Host, HostError, Learn, Level, Poller, Request, SetError, Shared, Streams, TickRate};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> { Box::new(Root::new(context_id)) });
}}

/// The request headers as Envoy serialises them for `proxy_get_header_map_pairs`, read in place.
///
/// The SDK's `get_map_bytes` copies every name and value into its own `String` / `Vec` (two
/// allocations per header, per request) and panics on an unexpected status; this reads the one
/// buffer the host hands over, with every offset bounds-checked (a malformed buffer reads as no
/// headers).
struct RequestHeaders {
    buf: Vec<u8>,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: MapType, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> Status;
}

impl RequestHeaders {
    fn fetch() -> Result<RequestHeaders, Status> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: the host writes a pointer to `size` bytes it allocated through this module's
        // `proxy_on_memory_allocate` (the SDK's allocator: a boxed slice of exactly `size` bytes),
        // whose ownership passes to us; the SDK's own `get_map_bytes` takes it over the same way.
        let status = unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) };
        match status {
            Status::Ok if data.is_null() || size == 0 => Ok(RequestHeaders { buf: Vec::new() }),
            // SAFETY: see above; `size` is both the length and the capacity of that allocation.
            Status::Ok => Ok(RequestHeaders { buf: unsafe { Vec::from_raw_parts(data, size, size) } }),
            other => Err(other),
        }
    }

    /// `(name, value)` pairs: `count u32`, then `count × (name_len u32, value_len u32)`, then each
    /// name and value followed by a NUL.
    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let b = self.buf.as_slice();
        let u32_at = move |at: usize| -> Option<usize> { Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize) };
        let count = u32_at(0).unwrap_or(0);
        let mut data_at = count.checked_mul(8).and_then(|n| n.checked_add(4)).unwrap_or(usize::MAX);
        (0..count).map_while(move |i| {
            let (name_len, value_len) = (u32_at(4 + i * 8)?, u32_at(8 + i * 8)?);
            let name = b.get(data_at..data_at.checked_add(name_len)?)?;
            let value_at = data_at.checked_add(name_len)?.checked_add(1)?;
            let value = b.get(value_at..value_at.checked_add(value_len)?)?;
            data_at = value_at.checked_add(value_len)?.checked_add(1)?;
            Some((name, value))
        })
    }
}

/// [`Host`] over proxy-wasm host calls. Counters are the metric ids defined at configure time.
///
/// Counting is batched: a request adds to this worker's pending counts (no host call), and the
/// root context's tick hands them to Envoy (one `increment_metric` per counter that moved), so the
/// stats lag by at most one tick (`poll_interval_ms`, 100 ms by default). Without a tick (setting
/// its period failed) every count goes to Envoy at once.
struct EnvoyHost {
    metrics: Vec<Option<u32>>,
    pending: [Cell<u64>; Counter::ALL.len()],
    batched: Cell<bool>,
}

impl EnvoyHost {
    fn new() -> EnvoyHost {
        let metrics = Counter::ALL
            .iter()
            .map(|c| hostcalls::define_metric(MetricType::Counter, &c.metric_name()).ok())
            .collect();
        EnvoyHost { metrics, pending: std::array::from_fn(|_| Cell::new(0)), batched: Cell::new(false) }
    }

    fn increment(&self, index: usize, by: u64) {
        if let Some(Some(id)) = self.metrics.get(index) {
            let _ = hostcalls::increment_metric(*id, i64::try_from(by).unwrap_or(i64::MAX));
        }
    }

    /// Hand the pending counts to Envoy.
    fn flush_counts(&self) {
        for (index, pending) in self.pending.iter().enumerate() {
            let n = pending.replace(0);
            if n > 0 {
                self.increment(index, n);
            }
        }
    }
}

impl Host for EnvoyHost {
    fn now_ms(&self) -> Result<u64, HostError> {
        let t = hostcalls::get_current_time().map_err(|_| HostError("get_current_time"))?;
        let d = t.duration_since(UNIX_EPOCH).map_err(|_| HostError("clock before 1970"))?;
        Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn get_shared(&self, key: &str) -> Result<Shared, HostError> {
        hostcalls::get_shared_data(key).map(|(value, cas)| Shared { value, cas }).map_err(|_| HostError("get_shared_data"))
    }

    fn set_shared(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SetError::CasMismatch),
            Err(_) => Err(SetError::Host(HostError("set_shared_data"))),
        }
    }

    fn count(&self, counter: Counter) {
        if self.batched.get() {
            if let Some(p) = self.pending.get(counter.index()) {
                p.set(p.get().saturating_add(1));
            }
        } else {
            self.increment(counter.index(), 1);
        }
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let _ = hostcalls::log(level, message);
    }
}

/// What a configured worker shares between its root context and its HTTP contexts.
struct Worker {
    edge: Edge,
    host: EnvoyHost,
    /// Buys paused on [`Decision::Hold`], by HTTP context id (`seckill_edge::scheduler`).
    held: HeldStreams<u32>,
}

/// The held streams as the scheduler acts on them: proxy-wasm calls on the effective context.
struct EnvoyStreams<'a> {
    host: &'a EnvoyHost,
}

impl Streams<u32> for EnvoyStreams<'_> {
    fn select(&mut self, context_id: &u32) -> bool {
        hostcalls::set_effective_context(*context_id).is_ok()
    }

    fn set_headers(&mut self, headers: &[(&'static str, String)]) {
        set_request_headers(self.host, headers);
    }

    fn resume(&mut self) -> bool {
        hostcalls::resume_http_request().is_ok()
    }

    fn reply(&mut self, reply: &seckill_edge::Reply) -> bool {
        send_reply(reply).is_ok()
    }
}

fn set_request_headers(host: &EnvoyHost, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value.as_bytes())).is_err() {
            host.count(Counter::HostErrors);
        }
    }
}

fn send_reply(reply: &seckill_edge::Reply) -> Result<(), Status> {
    let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    hostcalls::send_http_response(u32::from(reply.status), headers, Some(reply.body.as_bytes()))
}

/// The root context: configuration, metrics, the tick that refreshes flags and polls the feed.
struct Root {
    context_id: u32,
    worker: Option<Rc<Worker>>,
    poller: Option<Poller>,
    /// The tick's period and when its per-poll-interval work (counts, worker count, flags, feed
    /// poll) is due.
    tick: TickRate,
}

impl Root {
    fn new(context_id: u32) -> Root {
        Root { context_id, worker: None, poller: None, tick: TickRate::new(0) }
    }
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

fn bytes_to_string(b: Option<Vec<u8>>) -> Option<String> {
    b.and_then(|v| String::from_utf8(v).ok())
}

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let (Some(worker), Some(poller)) = (self.worker.as_ref(), self.poller.as_mut()) else { return };
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.trim().parse::<u16>().ok()));
        let body = if body_size > 0 {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size).ok().flatten()
        } else {
            None
        };
        let now = worker.host.now_ms().unwrap_or(0);
        poller.on_response(&worker.host, worker.edge.config(), token_id, status, body.as_deref(), now);
        worker.edge.refresh_flags(&worker.host);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten().unwrap_or_default();
        let cfg = match Config::from_json(&raw) {
            Ok(cfg) => cfg,
            Err(e) => {
                log(LogLevel::Critical, &format!("seckill edge filter: refusing configuration: {e}"));
                return false;
            }
        };
        let host = EnvoyHost::new();
        if let Err(c) = init_keys(&host, cfg.buckets, cfg.slots_per_bucket) {
            host.count(c);
            log(LogLevel::Warn, "seckill edge filter: could not create every shared-data key up front; continuing");
        }
        // Distinct per VM; on the (theoretical) failure fall back to something unlikely to clash.
        let worker_id = claim_worker_id(&host, cfg.cas_retries).unwrap_or((1 << 63) | u64::from(self.context_id));
        let ticking = hostcalls::set_tick_period(Duration::from_millis(cfg.poll_interval_ms)).is_ok();
        if !ticking {
            log(LogLevel::Error, "seckill edge filter: cannot set the tick period; the flags feed will not be polled");
        }
        host.batched.set(ticking);
        log(
            LogLevel::Info,
            &format!(
                "seckill edge filter configured (worker {worker_id}): buckets={} slots_per_bucket={} window_ms={} poll_interval_ms={} origin_cluster={}",
                cfg.buckets, cfg.slots_per_bucket, cfg.window_ms, cfg.poll_interval_ms, cfg.origin_cluster
            ),
        );
        self.tick = TickRate::new(cfg.poll_interval_ms);
        self.worker = Some(Rc::new(Worker { edge: Edge::new(cfg), host, held: HeldStreams::default() }));
        self.poller = Some(Poller::new(worker_id));
        true
    }

    fn on_tick(&mut self) {
        let (Some(worker), Some(poller)) = (self.worker.as_ref(), self.poller.as_mut()) else { return };
        let Ok(now) = worker.host.now_ms() else {
            worker.host.count(Counter::HostErrors);
            return;
        };
        worker.held.serve_turns(&worker.edge, &worker.host, &mut EnvoyStreams { host: &worker.host }, now);
        // Back to the root context: what follows belongs to it, not to a served stream.
        let _ = hostcalls::set_effective_context(self.context_id);
        let holding = worker.held.holding();
        if let Some(period) = self.tick.wanted_period(holding) {
            if hostcalls::set_tick_period(Duration::from_millis(period)).is_ok() {
                self.tick.period_set(holding);
            }
        }
        if !self.tick.slow_work_due(now) {
            return;
        }
        worker.host.flush_counts();
        worker.edge.on_tick(&worker.host);
        worker.edge.refresh_flags(&worker.host);
        let Some(req) = poller.on_tick(&worker.host, worker.edge.config(), now) else { return };
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match hostcalls::dispatch_http_call(&req.cluster, headers, None, vec![], Duration::from_millis(req.timeout_ms)) {
            Ok(token) => poller.dispatched(token, now),
            Err(status) => poller.dispatch_failed(&worker.host, now, &format!("cluster `{}`: {status:?}", req.cluster)),
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http { context_id, worker: self.worker.clone(), learn: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream.
struct Http {
    context_id: u32,
    worker: Option<Rc<Worker>>,
    /// Set when a buy was passed to the origin: learn from its answer's headers.
    learn: Option<Learn>,
}

impl Context for Http {}

impl Drop for Http {
    /// The stream is over (answered, or the client went away while held): forget it.
    fn drop(&mut self) {
        if let Some(w) = &self.worker {
            w.held.forget(&self.context_id);
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = RequestHeaders::fetch().unwrap_or_else(|_| {
            if let Some(w) = &self.worker {
                w.host.count(Counter::HostErrors);
            }
            RequestHeaders { buf: Vec::new() }
        });
        let (mut method, mut path, mut authorization, mut proof) = (None, None, None, None);
        for (name, value) in headers.pairs() {
            let Ok(name) = std::str::from_utf8(name) else { continue };
            if headers::is_reserved(name) {
                // A client never speaks for the edge: drop every x-seckill-* header it sent.
                if hostcalls::remove_map_value(MapType::HttpRequestHeaders, name).is_err() {
                    if let Some(w) = &self.worker {
                        w.host.count(Counter::HostErrors);
                    }
                }
                continue;
            }
            match name {
                ":method" if method.is_none() => method = std::str::from_utf8(value).ok(),
                ":path" if path.is_none() => path = std::str::from_utf8(value).ok(),
                "authorization" if authorization.is_none() => authorization = std::str::from_utf8(value).ok(),
                seckill_core::challenge::PROOF_HEADER if proof.is_none() => proof = std::str::from_utf8(value).ok(),
                _ => {}
            }
        }
        #[cfg(feature = "test-fault")]
        if path == Some(seckill_edge::route::TEST_FAULT_PATH) {
            panic!("test-only fault: {} requested", seckill_edge::route::TEST_FAULT_PATH);
        }
        let Some(worker) = self.worker.clone() else { return Action::Continue };
        let req = Request { method: method.unwrap_or(""), path: path.unwrap_or(""), authorization, proof };
        match worker.edge.on_request(&worker.host, &req) {
            Decision::Reply(reply) => match send_reply(&reply) {
                Ok(()) => Action::Pause,
                Err(_) => {
                    worker.host.count(Counter::HostErrors);
                    Action::Continue
                }
            },
            Decision::Forward(fwd) => {
                set_request_headers(&worker.host, &fwd.set_headers);
                self.learn = fwd.learn;
                Action::Continue
            }
            // Cannot queue it (never expected, counted): let the origin decide.
            Decision::Hold(held) => {
                if worker.held.hold(&worker.host, self.context_id, held) {
                    Action::Pause
                } else {
                    Action::Continue
                }
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Only answers to buys this filter passed on are learned from (never its own replies).
        let Some(worker) = self.worker.as_ref() else { return Action::Continue };
        let later = || worker.held.take_learn(&self.context_id);
        let Some(learn) = self.learn.take().or_else(later) else { return Action::Continue };
        let read = |name: &str| bytes_to_string(hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name).ok().flatten());
        let outcome = read(headers::OUTCOME);
        // Only a win carries an order id worth a second host call.
        let order_id = match outcome.as_deref().map(str::trim) {
            Some("won" | "already_won") => read(headers::ORDER_ID),
            _ => None,
        };
        worker.edge.on_response(&worker.host, &learn, outcome.as_deref(), order_id.as_deref());
        Action::Continue
    }
}
