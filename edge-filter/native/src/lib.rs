//! `seckill-edge-native`: the seckill edge filter as an Envoy dynamic module (a native shared
//! library loaded by `envoy.filters.http.dynamic_modules`), beside the proxy-wasm build.
//!
//! - [`parse`]: everything the glue reads out of what Envoy hands it (request and response
//!   headers, the filter configuration, the feed callout's answer, Envoy's own symbol table), as
//!   plain functions over bytes: unit-tested and fuzzed, always built.
//! - `hooks` and the rest (feature `envoy`, on by default): the `envoy_dynamic_module_on_*` event
//!   hooks of the v1.40.0 ABI and the glue behind them, which call into Envoy. Without the feature
//!   the crate is [`parse`] alone, which is what the fuzz targets link (a fuzz binary has no Envoy
//!   to resolve the ABI's callbacks against).

pub mod parse;

#[cfg(feature = "envoy")]
mod abi;
#[cfg(feature = "envoy")]
mod config;
#[cfg(feature = "envoy")]
mod filter;
#[cfg(feature = "envoy")]
mod hooks;
#[cfg(feature = "envoy")]
mod host;
#[cfg(feature = "envoy")]
mod store;
#[cfg(feature = "envoy")]
mod unused_hooks;
#[cfg(feature = "envoy")]
mod version;
