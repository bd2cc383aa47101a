//! The hooks Envoy 1.40 resolves for every HTTP filter module that a filter of ours does not need:
//! the body and trailer callbacks continue, the rest do nothing. Shared by the filter
//! (`seckill-edge-native`) and the benchmark's native reference filter
//! (`edge-filter/reference-native`, which includes this file), so both export the same surface.

use std::ffi::c_void;

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader, EnvoyPtr};

macro_rules! pass_through {
    ($($name:ident($($ty:ty),*);)*) => {$(
        #[no_mangle]
        pub extern "C" fn $name($(_: $ty),*) -> u32 { abi::STATUS_CONTINUE }
    )*};
}

pass_through! {
    envoy_dynamic_module_on_http_filter_request_body(EnvoyPtr, *const c_void, bool);
    envoy_dynamic_module_on_http_filter_request_trailers(EnvoyPtr, *const c_void);
    envoy_dynamic_module_on_http_filter_response_body(EnvoyPtr, *const c_void, bool);
    envoy_dynamic_module_on_http_filter_response_trailers(EnvoyPtr, *const c_void);
}

macro_rules! ignore {
    ($($name:ident($($ty:ty),*);)*) => {$(
        #[no_mangle]
        pub extern "C" fn $name($(_: $ty),*) {}
    )*};
}

ignore! {
    envoy_dynamic_module_on_http_filter_stream_complete(EnvoyPtr, *const c_void);
    envoy_dynamic_module_on_http_filter_http_callout_done(EnvoyPtr, *const c_void, u64, u32, *const EnvoyHttpHeader, usize, *const EnvoyBuffer, usize);
    envoy_dynamic_module_on_http_filter_http_stream_headers(EnvoyPtr, *const c_void, u64, *const EnvoyHttpHeader, usize, bool);
    envoy_dynamic_module_on_http_filter_http_stream_data(EnvoyPtr, *const c_void, u64, *const EnvoyBuffer, usize, bool);
    envoy_dynamic_module_on_http_filter_http_stream_trailers(EnvoyPtr, *const c_void, u64, *const EnvoyHttpHeader, usize);
    envoy_dynamic_module_on_http_filter_http_stream_complete(EnvoyPtr, *const c_void, u64);
    envoy_dynamic_module_on_http_filter_http_stream_reset(EnvoyPtr, *const c_void, u64, u32);
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(EnvoyPtr, *const c_void);
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(EnvoyPtr, *const c_void);
    envoy_dynamic_module_on_http_filter_config_http_stream_headers(EnvoyPtr, *const c_void, u64, *const EnvoyHttpHeader, usize, bool);
    envoy_dynamic_module_on_http_filter_config_http_stream_data(EnvoyPtr, *const c_void, u64, *const EnvoyBuffer, usize, bool);
    envoy_dynamic_module_on_http_filter_config_http_stream_trailers(EnvoyPtr, *const c_void, u64, *const EnvoyHttpHeader, usize);
    envoy_dynamic_module_on_http_filter_config_http_stream_complete(EnvoyPtr, *const c_void, u64);
    envoy_dynamic_module_on_http_filter_config_http_stream_reset(EnvoyPtr, *const c_void, u64, u32);
}
