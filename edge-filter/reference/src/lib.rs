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
//!
//! It is built and trimmed like the real filter (`cargo xtask build`: profile `wasm`, unused
//! callbacks removed from the exports), so the comparison isolates the work, not the packaging.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { mode: Mode::SetHeader }) });
}}

/// What each request costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    SetHeader,
    ReadAuthorization,
}

impl Mode {
    fn parse(config: &[u8]) -> Option<Mode> {
        match std::str::from_utf8(config).ok()?.trim() {
            "" | "set_header" => Some(Mode::SetHeader),
            "read_authorization" => Some(Mode::ReadAuthorization),
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
                let _ = hostcalls::log(LogLevel::Critical, "reference filter: configuration must be `set_header` or `read_authorization`");
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

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let value: &[u8] = match self.mode {
            Mode::SetHeader => b"1",
            Mode::ReadAuthorization => match hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "authorization") {
                Ok(Some(v)) if !v.is_empty() => b"1",
                _ => b"0",
            },
        };
        let _ = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, "x-reference", Some(value));
        Action::Continue
    }
}
