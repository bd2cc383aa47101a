//! `seckill-edge-native`: the seckill edge filter as an Envoy dynamic module (a native shared
//! library loaded by `envoy.filters.http.dynamic_modules`), beside the proxy-wasm build.
//!
//! Step one of issue 11: the minimal module that proves the pinned Envoy (1.40.0) loads it and
//! lets it answer a request. It answers `GET /__seckill_native/ping` itself and passes every other
//! request on.

#[allow(dead_code)] // declared for the steps that follow
mod abi;

use std::ffi::c_void;

use abi::{EnvoyBuffer, EnvoyPtr, ModuleBuffer, ModuleHttpHeader};

/// NUL-terminated [`abi::ABI_VERSION`] for `envoy_dynamic_module_on_program_init`.
static ABI_VERSION_C: &str = "v0.2.0\0";

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    ABI_VERSION_C.as_ptr()
}

/// The configuration object Envoy keeps for us (one per filter config).
struct FilterConfig;

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(_config_envoy: EnvoyPtr, _name: EnvoyBuffer, _config: EnvoyBuffer) -> *const c_void {
    Box::into_raw(Box::new(FilterConfig)) as *const c_void
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    if !config.is_null() {
        // SAFETY: `config` came from `Box::into_raw` in `..._config_new`; Envoy destroys it once.
        drop(unsafe { Box::from_raw(config as *mut FilterConfig) });
    }
}

struct Filter;

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(_config: *const c_void, _filter_envoy: EnvoyPtr) -> *const c_void {
    Box::into_raw(Box::new(Filter)) as *const c_void
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    if !filter.is_null() {
        // SAFETY: `filter` came from `Box::into_raw` in `..._filter_new`; Envoy destroys it once.
        drop(unsafe { Box::from_raw(filter as *mut Filter) });
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(filter_envoy: EnvoyPtr, _filter: *const c_void, _end_of_stream: bool) -> u32 {
    let mut value = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
    // SAFETY: `filter_envoy` is the live filter Envoy passed to this call; `value` is writable.
    let found = unsafe {
        abi::envoy_dynamic_module_callback_http_get_header(filter_envoy, abi::HEADER_REQUEST, ModuleBuffer::of(b":path"), &mut value, 0, std::ptr::null_mut())
    };
    // SAFETY: `value` was filled by Envoy during this call.
    if !found || unsafe { abi::envoy_bytes(value.ptr, value.length) } != b"/__seckill_native/ping" {
        return abi::STATUS_CONTINUE;
    }
    let mut headers = [ModuleHttpHeader::of(b"content-type", b"text/plain"), ModuleHttpHeader::of(b"x-seckill-native", b"1")];
    // SAFETY: live filter; `headers` and both buffers outlive the call (Envoy copies them).
    unsafe {
        abi::envoy_dynamic_module_callback_http_send_response(filter_envoy, 200, headers.as_mut_ptr(), headers.len(), ModuleBuffer::of(b"pong\n"), ModuleBuffer::of(b"seckill_native_ping"));
    }
    abi::STATUS_STOP_ITERATION
}

macro_rules! pass_through {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub extern "C" fn $name($(_: $ty),*) -> u32 { abi::STATUS_CONTINUE }
    )*};
}

pass_through! {
    envoy_dynamic_module_on_http_filter_request_body(f: EnvoyPtr, m: *const c_void, e: bool);
    envoy_dynamic_module_on_http_filter_request_trailers(f: EnvoyPtr, m: *const c_void);
    envoy_dynamic_module_on_http_filter_response_headers(f: EnvoyPtr, m: *const c_void, e: bool);
    envoy_dynamic_module_on_http_filter_response_body(f: EnvoyPtr, m: *const c_void, e: bool);
    envoy_dynamic_module_on_http_filter_response_trailers(f: EnvoyPtr, m: *const c_void);
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(_filter_envoy: EnvoyPtr, _filter: *const c_void) {}

/// Hooks Envoy 1.40 resolves for every HTTP filter module; this step does not use them.
macro_rules! ignore {
    ($($name:ident($($ty:ty),*);)*) => {$(
        #[no_mangle]
        pub extern "C" fn $name($(_: $ty),*) {}
    )*};
}

ignore! {
    envoy_dynamic_module_on_http_filter_scheduled(EnvoyPtr, *const c_void, u64);
    envoy_dynamic_module_on_http_filter_http_callout_done(EnvoyPtr, *const c_void, u64, u32, *const abi::EnvoyHttpHeader, usize, *const EnvoyBuffer, usize);
    envoy_dynamic_module_on_http_filter_http_stream_headers(EnvoyPtr, *const c_void, u64, *const abi::EnvoyHttpHeader, usize, bool);
    envoy_dynamic_module_on_http_filter_http_stream_data(EnvoyPtr, *const c_void, u64, *const EnvoyBuffer, usize, bool);
    envoy_dynamic_module_on_http_filter_http_stream_trailers(EnvoyPtr, *const c_void, u64, *const abi::EnvoyHttpHeader, usize);
    envoy_dynamic_module_on_http_filter_http_stream_complete(EnvoyPtr, *const c_void, u64);
    envoy_dynamic_module_on_http_filter_http_stream_reset(EnvoyPtr, *const c_void, u64, u32);
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(EnvoyPtr, *const c_void);
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(EnvoyPtr, *const c_void);
    envoy_dynamic_module_on_http_filter_config_scheduled(EnvoyPtr, *const c_void, u64);
    envoy_dynamic_module_on_http_filter_config_http_callout_done(EnvoyPtr, *const c_void, u64, u32, *const abi::EnvoyHttpHeader, usize, *const EnvoyBuffer, usize);
    envoy_dynamic_module_on_http_filter_config_http_stream_headers(EnvoyPtr, *const c_void, u64, *const abi::EnvoyHttpHeader, usize, bool);
    envoy_dynamic_module_on_http_filter_config_http_stream_data(EnvoyPtr, *const c_void, u64, *const EnvoyBuffer, usize, bool);
    envoy_dynamic_module_on_http_filter_config_http_stream_trailers(EnvoyPtr, *const c_void, u64, *const abi::EnvoyHttpHeader, usize);
    envoy_dynamic_module_on_http_filter_config_http_stream_complete(EnvoyPtr, *const c_void, u64);
    envoy_dynamic_module_on_http_filter_config_http_stream_reset(EnvoyPtr, *const c_void, u64, u32);
}
