//! `seckill-reference-native`: the yardstick of the native build in `cargo xtask bench edge`, not
//! part of the product (the dynamic-module twin of `edge-filter/reference`).
//!
//! The native build's goal is a ratio of Envoy with no filter. How much of the gap any dynamic
//! module pays just for being one (Envoy's per-stream filter object, the module's hooks, each ABI
//! call) and how much is the seckill filter's own work is only visible next to a module that does
//! almost nothing, loaded by the same Envoy in the same run. This module is that filter, in three
//! modes chosen by its filter configuration (a plain string):
//!
//! - `noop`: every hook continues at once. What any HTTP dynamic module costs Envoy 1.40.
//! - `pass_calls`: the ABI calls the native build makes to pass a fresh uid, with none of its
//!   logic: the request headers (size, then the list), the two request headers it sets, and on the
//!   answer the `x-seckill-outcome` read.
//! - `refuse_calls`: the ABI calls it makes to refuse a repeat: the request headers and the same
//!   `429` local reply (five headers, a JSON body).
//!
//! What the native build does beyond these (HMAC, hashing, the in-process shared map, decisions)
//! is its own work. It declares the ABI with the filter's own `abi.rs` and exports the same unused
//! hooks (`unused_hooks.rs`), both included from `edge-filter/native/src`, so the two modules
//! differ only in what their hooks do.

use std::ffi::c_void;

#[path = "../../native/src/abi.rs"]
#[allow(dead_code)]
mod abi;
#[path = "../../native/src/unused_hooks.rs"]
mod unused_hooks;

use abi::{EnvoyBuffer, EnvoyHttpHeader, EnvoyPtr, ModuleBuffer, ModuleHttpHeader};

/// What each request costs (the configuration string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Noop,
    PassCalls,
    RefuseCalls,
}

impl Mode {
    /// The mode named by the configuration, as a `'static` (promoted constant): the pointer this
    /// module hands Envoy for the config and each of its streams, with nothing to allocate or free.
    fn parse(config: &[u8]) -> Option<&'static Mode> {
        match std::str::from_utf8(config).ok()?.trim() {
            "noop" => Some(&Mode::Noop),
            "pass_calls" => Some(&Mode::PassCalls),
            "refuse_calls" => Some(&Mode::RefuseCalls),
            _ => None,
        }
    }
}

/// The mode behind a config or filter pointer (both are a `&'static Mode`: nothing to free).
fn mode(ptr: *const c_void) -> Option<Mode> {
    // SAFETY: every non-null pointer this module hands Envoy comes from `Mode::parse`.
    unsafe { (ptr as *const Mode).as_ref() }.copied()
}

const ABI_VERSION_C: &str = "v0.2.0\0";

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    // The filter's `version.rs` checks the whole callback surface; a yardstick only needs the
    // version string to load into the pinned Envoy.
    if ABI_VERSION_C.strip_suffix('\0') == Some(abi::ABI_VERSION) {
        ABI_VERSION_C.as_ptr()
    } else {
        std::ptr::null()
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(_config_envoy: EnvoyPtr, _name: EnvoyBuffer, config: EnvoyBuffer) -> *const c_void {
    // SAFETY: Envoy's buffer, valid during this call.
    let config = unsafe { abi::envoy_bytes(config.ptr, config.length) };
    match Mode::parse(config) {
        Some(m) => m as *const Mode as *const c_void,
        None => {
            let msg = b"reference module: configuration must be `noop`, `pass_calls` or `refuse_calls`";
            // SAFETY: the message outlives the call.
            unsafe { abi::envoy_dynamic_module_callback_log(abi::LOG_ERROR, ModuleBuffer::of(msg)) };
            std::ptr::null()
        }
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(_config: *const c_void) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(config: *const c_void, _filter_envoy: EnvoyPtr) -> *const c_void {
    config
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(_filter: *const c_void) {}

/// The request headers as the native build reads them: their count, then the list.
fn request_headers(envoy: EnvoyPtr) -> Vec<EnvoyHttpHeader> {
    // SAFETY: the live filter of the current call.
    let n = unsafe { abi::envoy_dynamic_module_callback_http_get_headers_size(envoy, abi::HEADER_REQUEST) };
    let mut v = vec![EnvoyHttpHeader { key_ptr: std::ptr::null(), key_length: 0, value_ptr: std::ptr::null(), value_length: 0 }; n];
    // SAFETY: `v` has room for the `n` headers of this map.
    if n == 0 || !unsafe { abi::envoy_dynamic_module_callback_http_get_headers(envoy, abi::HEADER_REQUEST, v.as_mut_ptr()) } {
        v.clear();
    }
    v
}

fn set_request_header(envoy: EnvoyPtr, name: &[u8], value: &[u8]) {
    // SAFETY: live filter; Envoy copies both buffers.
    unsafe { abi::envoy_dynamic_module_callback_http_set_header(envoy, abi::HEADER_REQUEST, ModuleBuffer::of(name), ModuleBuffer::of(value)) };
}

/// The request headers hook of `mode` (the ABI status).
fn on_request(envoy: EnvoyPtr, mode: Option<Mode>) -> u32 {
    match mode {
        Some(Mode::PassCalls) => {
            let _ = request_headers(envoy);
            set_request_header(envoy, b"x-seckill-uid", b"reference");
            set_request_header(envoy, b"x-seckill-edge-key", b"reference");
            abi::STATUS_CONTINUE
        }
        Some(Mode::RefuseCalls) => {
            let _ = request_headers(envoy);
            let mut headers = [
                ModuleHttpHeader::of(b"content-type", b"application/json"),
                ModuleHttpHeader::of(b"cache-control", b"no-store"),
                ModuleHttpHeader::of(b"x-seckill-by", b"edge"),
                ModuleHttpHeader::of(b"x-seckill-outcome", b"throttled"),
                ModuleHttpHeader::of(b"retry-after", b"5"),
            ];
            let body = br#"{"outcome":"throttled","retry_after_ms":5000}"#;
            // SAFETY: live filter; every buffer outlives the call (Envoy copies them).
            unsafe {
                abi::envoy_dynamic_module_callback_http_send_response(envoy, 429, headers.as_mut_ptr(), headers.len(), ModuleBuffer::of(body), ModuleBuffer::of(b"reference"));
            }
            abi::STATUS_STOP_ITERATION
        }
        Some(Mode::Noop) | None => abi::STATUS_CONTINUE,
    }
}

/// `pass_calls` reads the answer's outcome, as the native build does on a buy it passed.
fn read_outcome(envoy: EnvoyPtr) {
    let mut value = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
    // SAFETY: live filter; `value` is writable.
    unsafe { abi::envoy_dynamic_module_callback_http_get_header(envoy, abi::HEADER_RESPONSE, ModuleBuffer::of(b"x-seckill-outcome"), &mut value, 0, std::ptr::null_mut()) };
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(envoy: EnvoyPtr, filter: *const c_void, _end_of_stream: bool) -> u32 {
    on_request(envoy, mode(filter))
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(envoy: EnvoyPtr, filter: *const c_void, _end_of_stream: bool) -> u32 {
    if mode(filter) == Some(Mode::PassCalls) {
        read_outcome(envoy);
    }
    abi::STATUS_CONTINUE
}

// The filter's own hooks that a yardstick has no use for (no scheduler, no feed callout).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(_envoy: EnvoyPtr, _filter: *const c_void, _event_id: u64) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(_config_envoy: EnvoyPtr, _config: *const c_void, _event_id: u64) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _config_envoy: EnvoyPtr,
    _config: *const c_void,
    _callout_id: u64,
    _result: u32,
    _headers: *const EnvoyHttpHeader,
    _headers_size: usize,
    _chunks: *const EnvoyBuffer,
    _chunks_size: usize,
) {
}
