//! One HTTP stream of the native build, and each worker thread's [`Edge`].
//!
//! Like the proxy-wasm glue, this only moves bytes: it reads `:method`, `:path` and
//! `authorization` from the request headers Envoy hands over (in place, no copy), strips every
//! client `x-seckill-*` header, asks [`Edge`] what to do and does it (answer, pass on with headers
//! set, or hold until the start lottery's turn), and on the origin's answer hands
//! `x-seckill-outcome` / `x-seckill-order-id` back to the logic.
//!
//! Per-worker state (the verified-ticket cache, the recent slot copies, the admission budget, the
//! parsed flags) lives in a thread-local [`Worker`] per configuration, exactly as each proxy-wasm
//! VM keeps its own; what is shared between workers goes through the [`crate::store::Store`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use seckill_core::headers;
use seckill_edge::poller::claim_worker_id;
use seckill_edge::{Counter, Decision, Edge, Held, Host, Learn, Reply, Request};

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader, EnvoyPtr, ModuleBuffer, ModuleHttpHeader};
use crate::config::{self, SendPtr, Shared};
use crate::host::{now_ms, NativeHost};
use crate::parse;

/// One worker thread's edge for one configuration.
pub struct Worker {
    shared: Arc<Shared>,
    /// The shared store, with this worker's own counters.
    host: NativeHost,
    edge: Edge,
    /// When the per-interval work (`Edge::on_tick`: the worker count) last ran.
    ticked_at: Cell<u64>,
}

thread_local! {
    static WORKERS: RefCell<Vec<Rc<Worker>>> = const { RefCell::new(Vec::new()) };
}

/// This thread's worker for `shared` (created, and counted as a worker, on first use; the
/// workers of configurations Envoy has destroyed are dropped then).
fn worker_for(shared: &Shared) -> Option<Rc<Worker>> {
    WORKERS
        .try_with(|w| {
            let mut workers = w.try_borrow_mut().ok()?;
            if let Some(found) = workers.iter().find(|x| x.shared.id == shared.id) {
                return Some(Rc::clone(found));
            }
            workers.retain(|x| !x.shared.destroyed());
            let shared = shared.arc()?;
            let host = shared.worker_host();
            if let Err(c) = claim_worker_id(&host, shared.cfg.cas_retries) {
                host.count(c);
            }
            let worker = Rc::new(Worker { edge: Edge::new(shared.cfg.clone()), shared, host, ticked_at: Cell::new(0) });
            workers.push(Rc::clone(&worker));
            Some(worker)
        })
        .ok()
        .flatten()
}

/// Ids of streams held by the start lottery (only those need one).
static NEXT_HELD_STREAM: AtomicU64 = AtomicU64::new(1);

/// The module's side of one stream.
pub struct Filter {
    /// `None` only when this thread could not make its worker (then the filter lets all pass).
    worker: Option<Rc<Worker>>,
    /// Set when a buy was passed to the origin: learn from its answer's headers.
    learn: Option<Learn>,
    /// The start lottery's hold, decided again when the scheduler fires.
    held: Option<Held>,
    /// The stream's id and scheduler, once held.
    scheduler: Option<(u64, SendPtr)>,
}

/// The request headers as Envoy lists them (pointers into Envoy's map, valid during the call
/// and until the map is changed).
fn request_headers(envoy: EnvoyPtr) -> Vec<EnvoyHttpHeader> {
    // SAFETY: `envoy` is the live filter of the current call.
    let n = unsafe { abi::envoy_dynamic_module_callback_http_get_headers_size(envoy, abi::HEADER_REQUEST) };
    let empty = EnvoyHttpHeader { key_ptr: std::ptr::null(), key_length: 0, value_ptr: std::ptr::null(), value_length: 0 };
    let mut v = vec![empty; n];
    // SAFETY: `v` has room for the `n` headers Envoy reported for this same map.
    if n == 0 || !unsafe { abi::envoy_dynamic_module_callback_http_get_headers(envoy, abi::HEADER_REQUEST, v.as_mut_ptr()) } {
        v.clear();
    }
    v
}

fn set_request_header(envoy: EnvoyPtr, name: &[u8], value: Option<&[u8]>) -> bool {
    let value = value.map_or(ModuleBuffer { ptr: std::ptr::null(), length: 0 }, ModuleBuffer::of);
    // SAFETY: live filter; Envoy copies both buffers (a null value removes the header).
    unsafe { abi::envoy_dynamic_module_callback_http_set_header(envoy, abi::HEADER_REQUEST, ModuleBuffer::of(name), value) }
}

/// Send one of the logic's replies.
pub fn send_reply(envoy: EnvoyPtr, reply: &Reply) {
    let mut headers: Vec<ModuleHttpHeader> = reply.headers.iter().map(|(k, v)| ModuleHttpHeader::of(k.as_bytes(), v.as_bytes())).collect();
    // SAFETY: live filter; every buffer outlives the call (Envoy copies them).
    unsafe {
        abi::envoy_dynamic_module_callback_http_send_response(
            envoy,
            u32::from(reply.status),
            headers.as_mut_ptr(),
            headers.len(),
            ModuleBuffer::of(reply.body.as_bytes()),
            ModuleBuffer::of(b"seckill_edge"),
        );
    }
}

fn response_header(envoy: EnvoyPtr, name: &str) -> Option<String> {
    let mut value = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
    // SAFETY: live filter; `value` is writable.
    let found = unsafe { abi::envoy_dynamic_module_callback_http_get_header(envoy, abi::HEADER_RESPONSE, ModuleBuffer::of(name.as_bytes()), &mut value, 0, std::ptr::null_mut()) };
    // SAFETY: filled by Envoy during this call.
    found.then(|| parse::header_text(unsafe { abi::envoy_bytes(value.ptr, value.length) })).flatten()
}

impl Filter {
    pub fn new(shared: &Shared) -> Filter {
        Filter { worker: worker_for(shared), learn: None, held: None, scheduler: None }
    }

    /// `on_http_filter_request_headers`: returns the ABI status.
    pub fn on_request_headers(&mut self, envoy: EnvoyPtr) -> u32 {
        let Some(worker) = self.worker.clone() else { return abi::STATUS_CONTINUE };
        worker.tick();
        let (decision, reserved) = worker.decide(envoy);
        for name in &reserved {
            // A client never speaks for the edge: drop every x-seckill-* header it sent.
            if !set_request_header(envoy, name, None) {
                worker.host.count(Counter::HostErrors);
            }
        }
        self.act(envoy, &worker, decision)
    }

    /// Carry out a decision; the ABI status for a headers callback.
    fn act(&mut self, envoy: EnvoyPtr, worker: &Worker, decision: Decision) -> u32 {
        match decision {
            Decision::Reply(reply) => {
                send_reply(envoy, &reply);
                abi::STATUS_STOP_ITERATION
            }
            Decision::Forward(fwd) => {
                for (name, value) in &fwd.set_headers {
                    if !set_request_header(envoy, name.as_bytes(), Some(value.as_bytes())) {
                        worker.host.count(Counter::HostErrors);
                    }
                }
                self.learn = fwd.learn;
                abi::STATUS_CONTINUE
            }
            Decision::Hold(held) => {
                if self.scheduler.is_none() {
                    // SAFETY: live filter of the current call.
                    let s = unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_new(envoy) };
                    self.scheduler = (!s.is_null()).then(|| (NEXT_HELD_STREAM.fetch_add(1, Ordering::Relaxed), SendPtr(s)));
                }
                let Some((stream, scheduler)) = self.scheduler else {
                    // Cannot wait (never expected): let the origin decide.
                    worker.host.count(Counter::HostErrors);
                    return abi::STATUS_CONTINUE;
                };
                worker.shared.wait(stream, held.turn_ms, scheduler);
                self.held = Some(held);
                abi::STATUS_STOP_ITERATION
            }
        }
    }

    /// `on_http_filter_scheduled`: a held request's turn (on its worker thread).
    pub fn on_scheduled(&mut self, envoy: EnvoyPtr) {
        let (Some(worker), Some(held)) = (self.worker.clone(), self.held.take()) else { return };
        let now = now_ms().unwrap_or(held.turn_ms);
        let decision = worker.edge.on_turn(&worker.host, &held, now);
        let forward = matches!(decision, Decision::Forward(_));
        let status = self.act(envoy, &worker, decision);
        if forward && status == abi::STATUS_CONTINUE {
            // SAFETY: live filter; its request was stopped in the headers callback.
            unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(envoy) };
        }
    }

    /// `on_http_filter_response_headers`: learn from the origin's answer to a buy passed on.
    pub fn on_response_headers(&mut self, envoy: EnvoyPtr) {
        let (Some(worker), Some(learn)) = (self.worker.as_ref(), self.learn.take()) else { return };
        let outcome = response_header(envoy, headers::OUTCOME);
        // Only a win carries an order id worth a second call.
        let order_id = outcome.as_deref().filter(|o| parse::outcome_is_win(o)).and_then(|_| response_header(envoy, headers::ORDER_ID));
        worker.edge.on_response(&worker.host, &learn, outcome.as_deref(), order_id.as_deref());
    }
}

impl Worker {
    /// Decide the request from its headers, without changing them (the borrowed values point
    /// into Envoy's map). Returns the decision and the client's reserved header names.
    fn decide(&self, envoy: EnvoyPtr) -> (Decision, Vec<Vec<u8>>) {
        let list = request_headers(envoy);
        // SAFETY: Envoy's header pointers, valid until the map changes (not before we return).
        let head = parse::request_head(list.iter().map(|h| unsafe { h.pair() }));
        if self.shared.fault && head.path == Some(config::FAULT_PATH) {
            panic!("test-only fault: {} requested", config::FAULT_PATH);
        }
        let req = Request { method: head.method.unwrap_or(""), path: head.path.unwrap_or(""), authorization: head.authorization, proof: head.proof };
        (self.edge.on_request(&self.host, &req), head.reserved)
    }

    /// Once per poll interval per worker: what the proxy-wasm build does on each worker's tick.
    fn tick(&self) {
        let Ok(now) = now_ms() else { return };
        if now.saturating_sub(self.ticked_at.get()) >= self.shared.cfg.poll_interval_ms {
            self.ticked_at.set(now);
            self.edge.on_tick(&self.host);
        }
    }
}

impl Drop for Filter {
    /// The stream is over: stop waiting for its turn, then release its scheduler.
    fn drop(&mut self) {
        if let Some((stream, s)) = self.scheduler.take() {
            if let Some(worker) = &self.worker {
                worker.shared.forget(stream);
            }
            // SAFETY: no longer in the ticker's list (a scheduler is only made with a worker),
            // so nothing else uses it.
            unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_delete(s.0) };
        }
    }
}
