//! [`Host`] for the native build: the logic's host services over the process's own memory and
//! Envoy's dynamic-module callbacks.
//!
//! - shared data: [`Store`] (in-process map with CAS tokens, shared by every worker thread);
//! - clock: the system clock (what Envoy's `get_current_time` returns to proxy-wasm);
//! - counters: one atomic per [`Counter`] per writer (each worker thread, and the main thread),
//!   added to without calling Envoy, and summed into Envoy's counters (defined at configure
//!   time) on the main thread by the flush that runs every `poll_interval_ms` (as the
//!   proxy-wasm build batches them per tick);
//! - logs: `envoy_dynamic_module_callback_log` (thread-safe).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use seckill_edge::{Counter, Host, HostError, Level, SetError, Shared};

use crate::abi::{self, EnvoyPtr, ModuleBuffer};
use crate::store::{lock, Store};

/// One writer's counters not yet handed to Envoy, on cache lines of their own (so that two
/// workers counting never contend for a line; only the flush, every `poll_interval_ms`, reads
/// them from another thread).
#[derive(Debug)]
#[repr(align(64))]
pub struct Pending([AtomicU64; Counter::ALL.len()]);

impl Pending {
    fn new() -> Pending {
        Pending(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    pub fn add(&self, c: Counter) {
        if let Some(p) = self.0.get(c.index()) {
            p.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Envoy's ids for the counters, and every writer's [`Pending`] counts.
#[derive(Debug)]
pub struct Counts {
    ids: [Option<usize>; Counter::ALL.len()],
    writers: Mutex<Vec<Arc<Pending>>>,
}

impl Counts {
    /// Define every counter on the filter config (only possible while Envoy creates it).
    pub fn define(config_envoy: EnvoyPtr) -> Counts {
        let mut ids = [None; Counter::ALL.len()];
        for (slot, c) in ids.iter_mut().zip(Counter::ALL) {
            let name = c.metric_name();
            let mut id: usize = 0;
            // SAFETY: `config_envoy` is the config Envoy is creating in this call; `name` outlives
            // the call and no labels are passed.
            let r = unsafe {
                abi::envoy_dynamic_module_callback_http_filter_config_define_counter(config_envoy, ModuleBuffer::of(name.as_bytes()), std::ptr::null_mut(), 0, &mut id)
            };
            *slot = (r == abi::METRICS_SUCCESS).then_some(id);
        }
        Counts { ids, writers: Mutex::new(Vec::new()) }
    }

    /// Counts for one more writer (a worker thread, or the main thread's config events).
    pub fn writer(&self) -> Arc<Pending> {
        let pending = Arc::new(Pending::new());
        lock(&self.writers).push(Arc::clone(&pending));
        pending
    }

    /// Hand every writer's pending counts to Envoy (main thread, with the live config).
    pub fn flush(&self, config_envoy: EnvoyPtr) {
        let writers = lock(&self.writers);
        for (i, id) in self.ids.iter().enumerate() {
            let Some(id) = id else { continue };
            let n: u64 = writers.iter().filter_map(|w| w.0.get(i)).map(|p| p.swap(0, Ordering::Relaxed)).sum();
            if n > 0 {
                // SAFETY: called on the main thread from an Envoy event of this live config.
                unsafe {
                    abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(config_envoy, *id, std::ptr::null_mut(), 0, n);
                }
            }
        }
    }
}

/// The host handed to the logic by one writer (cheap to clone: two `Arc`s).
#[derive(Debug, Clone)]
pub struct NativeHost {
    pub store: Arc<Store>,
    pub counts: Arc<Pending>,
}

pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Debug => abi::LOG_DEBUG,
        Level::Info => abi::LOG_INFO,
        Level::Warn => abi::LOG_WARN,
        Level::Error => abi::LOG_ERROR,
    };
    // SAFETY: the message outlives the call; Envoy copies it.
    unsafe { abi::envoy_dynamic_module_callback_log(level, ModuleBuffer::of(message.as_bytes())) }
}

pub fn now_ms() -> Result<u64, HostError> {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| HostError("clock before 1970"))?;
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Host for NativeHost {
    fn now_ms(&self) -> Result<u64, HostError> {
        now_ms()
    }

    fn get_shared(&self, key: &str) -> Result<Shared, HostError> {
        self.store.get(key)
    }

    fn set_shared(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        self.store.set(key, value, cas)
    }

    fn count(&self, counter: Counter) {
        self.counts.add(counter);
    }

    fn log(&self, level: Level, message: &str) {
        log(level, message);
    }
}
