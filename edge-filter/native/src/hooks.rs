//! The module's whole surface towards Envoy: the `envoy_dynamic_module_on_*` event hooks of the
//! v1.40.0 ABI (`abi.rs`). Each one only converts pointers (into byte slices for
//! [`crate::parse`]) and hands over to [`config::Shared`] (one filter configuration) or
//! [`filter::Filter`] (one stream); every decision is `seckill-edge`'s, as in the proxy-wasm build.
//!
//! A panic in a native module would unwind into Envoy's C++ (undefined behaviour, in practice the
//! whole Envoy down, not one VM), so every hook runs inside [`guard`] (`catch_unwind`): a bug
//! answers that one request with the contract's `busy` 503 and Envoy keeps serving. The release
//! profile keeps `panic = "unwind"` for this (the Wasm profile aborts instead).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use seckill_edge::Level;

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader, EnvoyPtr};
use crate::{config, filter, host, parse, version};

/// Run `f`; if it panics, log it and return `fallback()` instead of unwinding into Envoy.
fn guard<T>(hook: &str, fallback: impl FnOnce() -> T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            let _ = catch_unwind(|| host::log(Level::Error, &format!("seckill edge filter (native): panic in {hook} caught; answered as a failure")));
            fallback()
        }
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    guard("on_program_init", std::ptr::null, version::on_program_init)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(config_envoy: EnvoyPtr, name: EnvoyBuffer, config: EnvoyBuffer) -> *const c_void {
    guard("on_http_filter_config_new", std::ptr::null, || {
        // SAFETY: both buffers are Envoy's, valid during this call.
        let (name, json) = unsafe { (abi::envoy_bytes(name.ptr, name.length), abi::envoy_bytes(config.ptr, config.length)) };
        match config::Shared::create(config_envoy, name, json) {
            Ok(shared) => config::into_envoy(shared),
            Err(e) => {
                host::log(Level::Error, &format!("seckill edge filter (native): refusing configuration: {e}"));
                std::ptr::null()
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    guard("on_http_filter_config_destroy", || (), || {
        // SAFETY: Envoy passes back the pointer `..._config_new` returned, once.
        if let Some(shared) = unsafe { config::borrow(config) } {
            shared.destroy();
        }
        // SAFETY: as above; this releases Envoy's reference.
        unsafe { config::release(config) }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(config: *const c_void, _filter_envoy: EnvoyPtr) -> *const c_void {
    guard("on_http_filter_new", std::ptr::null, || {
        // SAFETY: Envoy passes the live config pointer `..._config_new` returned.
        match unsafe { config::borrow(config) } {
            Some(shared) => Box::into_raw(Box::new(filter::Filter::new(shared))) as *const c_void,
            None => std::ptr::null(),
        }
    })
}

/// The stream behind Envoy's filter pointer.
///
/// # Safety
/// `ptr` must come from `on_http_filter_new` and not be destroyed; Envoy calls a stream's hooks
/// on one thread, one at a time.
unsafe fn stream<'a>(ptr: *const c_void) -> Option<&'a mut filter::Filter> {
    // SAFETY: per the contract above.
    unsafe { (ptr as *mut filter::Filter).as_mut() }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    guard("on_http_filter_destroy", || (), || {
        if !filter.is_null() {
            // SAFETY: the pointer `on_http_filter_new` returned; Envoy destroys it once.
            drop(unsafe { Box::from_raw(filter as *mut filter::Filter) });
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(filter_envoy: EnvoyPtr, filter: *const c_void, _end_of_stream: bool) -> u32 {
    let busy = || {
        filter::send_reply(filter_envoy, &seckill_edge::reply::busy());
        abi::STATUS_STOP_ITERATION
    };
    guard("on_http_filter_request_headers", busy, || {
        // SAFETY: see `stream`.
        match unsafe { stream(filter) } {
            Some(f) => f.on_request_headers(filter_envoy),
            None => abi::STATUS_CONTINUE,
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(filter_envoy: EnvoyPtr, filter: *const c_void, _end_of_stream: bool) -> u32 {
    guard("on_http_filter_response_headers", || abi::STATUS_CONTINUE, || {
        // SAFETY: see `stream`.
        if let Some(f) = unsafe { stream(filter) } {
            f.on_response_headers(filter_envoy);
        }
        abi::STATUS_CONTINUE
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(filter_envoy: EnvoyPtr, filter: *const c_void, _event_id: u64) {
    let busy = || filter::send_reply(filter_envoy, &seckill_edge::reply::busy());
    guard("on_http_filter_scheduled", busy, || {
        // SAFETY: see `stream`.
        if let Some(f) = unsafe { stream(filter) } {
            f.on_scheduled(filter_envoy);
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(_config_envoy: EnvoyPtr, config: *const c_void, _event_id: u64) {
    guard("on_http_filter_config_scheduled", || (), || {
        // SAFETY: the live config pointer.
        if let Some(shared) = unsafe { config::borrow(config) } {
            shared.on_scheduled();
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _config_envoy: EnvoyPtr,
    config: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHttpHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) {
    guard("on_http_filter_config_http_callout_done", || (), || {
        // SAFETY: the live config pointer.
        let Some(shared) = (unsafe { config::borrow(config) }) else { return };
        // SAFETY: Envoy's arrays of the given sizes (either may be null when empty) and the
        // buffers they point to, all valid during this call.
        let (headers, chunks) = unsafe { (abi::envoy_slice(headers, headers_size), abi::envoy_slice(chunks, chunks_size)) };
        let status = if result == abi::CALLOUT_SUCCESS {
            // SAFETY: as above.
            parse::callout_status(headers.iter().map(|h| unsafe { h.pair() }))
        } else {
            None
        };
        // SAFETY: as above.
        let body = parse::callout_body(chunks.iter().map(|c| unsafe { abi::envoy_bytes(c.ptr, c.length) }));
        shared.on_callout_done(callout_id, status, &body);
    })
}
