//! One filter configuration of the native build: what Envoy's `on_http_filter_config_new` creates
//! and every stream of that configuration shares across worker threads.
//!
//! It owns the parsed [`Config`], the in-process shared data ([`Store`]), the counters, the feed
//! [`Poller`] and the *ticker*: a background thread of the module that replaces proxy-wasm's
//! `on_tick`, since the dynamic-module ABI has no timer. The ticker never touches Envoy state
//! itself; it only *commits* Envoy schedulers, which Envoy documents as callable from any thread:
//! - every `poll_interval_ms` the config's scheduler, so Envoy runs `on_http_filter_config_scheduled`
//!   on its **main thread**, where this module flushes the counters and, when the poller lease says
//!   so, fetches the flags feed with the ABI's config-level HTTP callout
//!   (`envoy_dynamic_module_callback_http_filter_config_http_callout`) to `origin_cluster`: the
//!   same Envoy cluster, timeout and headers as the proxy-wasm `dispatch_http_call`;
//! - every [`HOLD_TICK_MS`] the schedulers of streams held by the start lottery whose turn has
//!   come, so Envoy runs `on_http_filter_scheduled` on the stream's own **worker thread**. The
//!   waiting streams are `seckill-edge`'s [`TurnQueue`] (earliest turn first), the proxy-wasm
//!   build's scheduler, without its per-tick cap (each wake-up here is its own event).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use seckill_edge::poller::init_keys;
use seckill_edge::{Config, Counter, Host, Level, Poller, TurnQueue, HOLD_TICK_MS};

use crate::abi::{self, EnvoyPtr, ModuleBuffer, ModuleHttpHeader};
use crate::host::{self, Counts, NativeHost};
use crate::parse;
use crate::store::{lock, Store};

pub use crate::parse::{ConfigRefused, FAULT_PATH};

/// A raw Envoy pointer the module hands between threads (Envoy allows the calls made with it
/// from those threads: scheduler commits from anywhere, the rest on the thread noted at use).
#[derive(Debug, Clone, Copy)]
pub struct SendPtr(pub EnvoyPtr);
// SAFETY: see the type's doc; the pointer is only dereferenced by Envoy.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

static NEXT_CONFIG_ID: AtomicU64 = AtomicU64::new(1);

/// Event id of the config scheduler's periodic tick.
const EVENT_TICK: u64 = 1;

#[derive(Debug)]
pub struct Shared {
    pub id: u64,
    /// This config's own `Arc`, for the workers that keep it.
    me: Weak<Shared>,
    pub cfg: Config,
    /// The host of the main thread's events (feed polls, counter flushes).
    pub host: NativeHost,
    counts: Counts,
    pub fault: bool,
    envoy: SendPtr,
    scheduler: SendPtr,
    poller: Mutex<Poller>,
    /// Streams held by the start lottery (stream id → its scheduler), committed at their turn.
    held: Mutex<TurnQueue<u64, SendPtr>>,
    stop: AtomicBool,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// Parse and set up a configuration (main thread, inside `on_http_filter_config_new`).
    pub fn create(config_envoy: EnvoyPtr, name: &[u8], json: &[u8]) -> Result<Arc<Shared>, ConfigRefused> {
        let parse::FilterConfig { cfg, fault } = parse::filter_config(name, json)?;
        let counts = Counts::define(config_envoy);
        let host = NativeHost { store: Arc::new(Store::new(cfg.buckets)), counts: counts.writer() };
        if let Err(c) = init_keys(&host, cfg.buckets, cfg.slots_per_bucket) {
            host.count(c);
            host::log(Level::Warn, "seckill edge filter (native): could not create every shared-data key up front; continuing");
        }
        let id = NEXT_CONFIG_ID.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the config Envoy is creating in this call.
        let scheduler = SendPtr(unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(config_envoy) });
        // The poller's lease owner id: distinct from the worker ids the workers claim (which count
        // the workers sharing the admission budget), so the main thread is not counted as one.
        let poller = Poller::new((1 << 63) | id);
        let shared = Arc::new_cyclic(|me| Shared {
            id,
            me: Weak::clone(me),
            cfg,
            host,
            counts,
            fault,
            envoy: SendPtr(config_envoy),
            scheduler,
            poller: Mutex::new(poller),
            held: Mutex::new(TurnQueue::default()),
            stop: AtomicBool::new(false),
            ticker: Mutex::new(None),
        });
        shared.start_ticker();
        let c = &shared.cfg;
        host::log(
            Level::Info,
            &format!(
                "seckill edge filter (native) configured: buckets={} slots_per_bucket={} window_ms={} poll_interval_ms={} origin_cluster={}",
                c.buckets, c.slots_per_bucket, c.window_ms, c.poll_interval_ms, c.origin_cluster
            ),
        );
        Ok(shared)
    }

    fn start_ticker(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("seckill-ticker".into()).spawn(move || me.tick_loop());
        match spawned {
            Ok(handle) => *lock(&self.ticker) = Some(handle),
            Err(e) => host::log(Level::Error, &format!("seckill edge filter (native): cannot start the ticker thread ({e}); the flags feed will not be polled")),
        }
    }

    fn tick_loop(&self) {
        let interval = self.cfg.poll_interval_ms.max(1);
        let mut last_tick: u64 = 0;
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(HOLD_TICK_MS));
            let Ok(now) = host::now_ms() else { continue };
            self.commit_due(now);
            if now.saturating_sub(last_tick) >= interval {
                last_tick = now;
                // SAFETY: commits are thread-safe; the scheduler lives until `destroy` joined us.
                unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.scheduler.0, EVENT_TICK) };
            }
        }
    }

    /// Commit the schedulers of held streams whose turn has come (under the lock that
    /// [`Shared::forget`] takes before a stream deletes its scheduler).
    fn commit_due(&self, now: u64) {
        let mut held = lock(&self.held);
        for (stream, scheduler) in held.take_due(now, usize::MAX) {
            // SAFETY: the scheduler is alive while it is queued, and we still hold the lock
            // `forget` takes before a stream deletes its scheduler.
            unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_commit(scheduler.0, stream) };
        }
    }

    /// A host for one more worker thread: the shared store, counters of its own.
    pub fn worker_host(&self) -> NativeHost {
        NativeHost { store: Arc::clone(&self.host.store), counts: self.counts.writer() }
    }

    /// A reference of one's own to this config (`None` once it is being dropped).
    pub fn arc(&self) -> Option<Arc<Shared>> {
        self.me.upgrade()
    }

    /// Whether Envoy has destroyed this configuration (its workers are then dropped).
    pub fn destroyed(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Wake `stream` through `scheduler` at `turn_ms`.
    pub fn wait(&self, stream: u64, turn_ms: u64, scheduler: SendPtr) {
        lock(&self.held).push(stream, turn_ms, scheduler);
    }

    /// Forget a stream's waiting entry (before its scheduler is deleted).
    pub fn forget(&self, stream: u64) {
        lock(&self.held).forget(&stream);
    }

    /// The config scheduler's event (main thread): flush counters, poll the feed when due.
    pub fn on_scheduled(&self) {
        self.counts.flush(self.envoy.0);
        let Ok(now) = host::now_ms() else {
            self.host.count(Counter::HostErrors);
            return;
        };
        let mut poller = lock(&self.poller);
        let Some(req) = poller.on_tick(&self.host, &self.cfg, now) else { return };
        let mut headers: Vec<ModuleHttpHeader> = req.headers.iter().map(|(k, v)| ModuleHttpHeader::of(k.as_bytes(), v.as_bytes())).collect();
        let mut id: u64 = 0;
        // SAFETY: main thread, live config; every buffer outlives the call (Envoy copies them).
        let r = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.envoy.0,
                &mut id,
                ModuleBuffer::of(req.cluster.as_bytes()),
                headers.as_mut_ptr(),
                headers.len(),
                ModuleBuffer::of(b""),
                req.timeout_ms,
            )
        };
        if r == abi::CALLOUT_INIT_SUCCESS {
            poller.dispatched(token(id), now);
        } else {
            poller.dispatch_failed(&self.host, now, &format!("cluster `{}`: callout init result {r}", req.cluster));
        }
    }

    /// The feed answer (main thread).
    /// `status` is `None` when Envoy reports a failure (reset, timeout, too large).
    pub fn on_callout_done(&self, id: u64, status: Option<u16>, body: &[u8]) {
        let now = host::now_ms().unwrap_or(0);
        lock(&self.poller).on_response(&self.host, &self.cfg, token(id), status, Some(body), now);
        self.counts.flush(self.envoy.0);
    }

    /// Stop the ticker and release the config scheduler (main thread, config destroyed).
    pub fn destroy(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = lock(&self.ticker).take() {
            let _ = h.join();
        }
        // SAFETY: the ticker, the only other user of the scheduler, has ended.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.scheduler.0) };
    }
}

/// The poller's token for a callout id (it keeps 32 bits; only used to match the answer).
fn token(id: u64) -> u32 {
    (id & u64::from(u32::MAX)) as u32
}

/// Config pointer handed to Envoy.
pub fn into_envoy(shared: Arc<Shared>) -> *const c_void {
    Arc::into_raw(shared) as *const c_void
}

/// The config behind Envoy's pointer, borrowed for the current call (no reference taken: Envoy
/// keeps the config alive while any of its filters lives, and calls `..._config_destroy` last).
///
/// # Safety
/// `ptr` must come from [`into_envoy`] and not yet be released by [`release`].
pub unsafe fn borrow<'a>(ptr: *const c_void) -> Option<&'a Shared> {
    // SAFETY: per the contract, `ptr` is null or a live `Arc<Shared>` raw pointer.
    unsafe { (ptr as *const Shared).as_ref() }
}

/// Release Envoy's reference.
///
/// # Safety
/// As [`borrow`]; called once.
pub unsafe fn release(ptr: *const c_void) {
    if !ptr.is_null() {
        // SAFETY: per the contract.
        drop(unsafe { Arc::from_raw(ptr as *const Shared) });
    }
}
