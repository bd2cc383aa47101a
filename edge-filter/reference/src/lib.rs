//! `seckill-reference-filter`: the yardstick of `cargo xtask bench edge`, not part of the product.
//!
//! The edge benchmark reports the seckill filter's throughput as a ratio of Envoy with no filter.
//! What part of the gap any proxy-wasm filter pays just for being one (the VM entries per stream,
//! each host call) and what part is the seckill filter's own work is only visible next to a filter
//! that does almost nothing, run by the same Envoy in the same run. This module is that filter, in
//! two modes chosen by its plugin configuration (a plain string, read once at configure time):
//!
//! - `set_header`: sets one request header (`x-reference: 1`) and continues — the "trivial
//!   one-header Rust filter" of the edge filter's issue;
//! - `read_authorization`: reads the request's `Authorization` header (one host call, whose value
//!   Envoy hands back by calling into the VM to allocate it), then sets one header saying whether
//!   it was there. Any filter that checks a ticket pays at least this.
//! - `pass_calls`: the host calls the seckill filter makes to pass a fresh uid, with none of its
//!   logic: the request headers (one call), the clock, a 404-byte shared-data value read and
//!   written back with its CAS (one of 65,536 keys picked by a hash of the ticket), the two
//!   request headers it sets, and on the answer the `x-seckill-outcome` read.
//! - `refuse_calls`: the host calls it makes to refuse a repeat from the worker's own copy: the
//!   request headers, the clock, and the same `429` local reply (five headers, a JSON body).
//!
//! The last two are the floor for the seckill filter's two paths: what is left between them and
//! it is its own work (HMAC, hashing, decisions).
//!
//! It is built and trimmed like the real filter (`cargo xtask build`: profile `wasm`, unused
//! callbacks removed from the exports), so the comparison isolates the work, not the packaging.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { mode: Mode::SetHeader }) });
}}

/// What each request costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    SetHeader,
    ReadAuthorization,
    PassCalls,
    RefuseCalls,
}

impl Mode {
    fn parse(config: &[u8]) -> Option<Mode> {
        match std::str::from_utf8(config).ok()?.trim() {
            "" | "set_header" => Some(Mode::SetHeader),
            "read_authorization" => Some(Mode::ReadAuthorization),
            "pass_calls" => Some(Mode::PassCalls),
            "refuse_calls" => Some(Mode::RefuseCalls),
            _ => None,
        }
    }
}

struct Root {
    mode: Mode,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten().unwrap_or_default();
        match Mode::parse(&raw) {
            Some(mode) => {
                self.mode = mode;
                true
            }
            None => {
                let _ = hostcalls::log(LogLevel::Critical, "reference filter: configuration must be `set_header`, `read_authorization`, `pass_calls` or `refuse_calls`");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { mode: self.mode }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    mode: Mode,
}

impl Context for Stream {}

/// Shared-data keys of `pass_calls` (as many as the seckill filter's default buckets).
const KEYS: u64 = 65_536;
/// A bucket value of the seckill filter's default configuration: 4 + 25 × 16 bytes.
const VALUE_BYTES: usize = 404;

/// FNV-1a: a cheap spread of requests (their tickets differ) over the keys (not the point of the
/// measurement).
fn spread(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)) % KEYS
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: MapType, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> Status;
}

/// The request headers in one call, as the host serialises them (the seckill filter reads them
/// the same way, in place; parsing them into strings would add work the floor should not have).
fn request_headers() -> Vec<u8> {
    let (mut data, mut size): (*mut u8, usize) = (std::ptr::null_mut(), 0);
    // SAFETY: on `Ok` the host hands over `size` bytes it allocated through this module's
    // `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes), as the SDK's own getters
    // take them.
    match unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) } {
        Status::Ok if !data.is_null() && size > 0 => unsafe { Vec::from_raw_parts(data, size, size) },
        _ => Vec::new(),
    }
}

/// The header `set_header` and `read_authorization` set.
fn set_reference_header(value: &[u8]) -> Action {
    let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, "x-reference", Some(value));
    Action::Continue
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match self.mode {
            Mode::SetHeader => set_reference_header(b"1"),
            Mode::ReadAuthorization => match hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "authorization") {
                Ok(Some(v)) if !v.is_empty() => set_reference_header(b"1"),
                _ => set_reference_header(b"0"),
            },
            Mode::PassCalls => {
                let headers = request_headers();
                let _ = hostcalls::get_current_time();
                let key = format!("ref/b/{}", spread(&headers));
                if let Ok((value, cas)) = hostcalls::get_shared_data(&key) {
                    let value = value.filter(|v| v.len() == VALUE_BYTES).unwrap_or_else(|| vec![0; VALUE_BYTES]);
                    let _ = hostcalls::set_shared_data(&key, Some(&value), cas);
                }
                let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, "x-seckill-uid", Some(b"reference"));
                let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, "x-seckill-edge-key", Some(b"reference"));
                Action::Continue
            }
            Mode::RefuseCalls => {
                let _ = request_headers();
                let _ = hostcalls::get_current_time();
                let headers = vec![
                    ("content-type", "application/json"),
                    ("cache-control", "no-store"),
                    ("x-seckill-by", "edge"),
                    ("x-seckill-outcome", "throttled"),
                    ("retry-after", "5"),
                ];
                match hostcalls::send_http_response(429, headers, Some(br#"{"outcome":"throttled","retry_after_ms":5000}"#)) {
                    Ok(()) => Action::Pause,
                    Err(_) => Action::Continue,
                }
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.mode == Mode::PassCalls {
            let _ = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, "x-seckill-outcome");
        }
        Action::Continue
    }
}
