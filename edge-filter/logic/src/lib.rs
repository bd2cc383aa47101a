//! `seckill-edge`: every decision of the flash-sale Envoy edge filter, as plain Rust.
//!
//! This crate never imports proxy-wasm. Everything it needs from Envoy (shared data with CAS,
//! the clock, counters, logs) goes through the [`host::Host`] trait, so all of it runs and is
//! tested natively with [`host::MemHost`]; the `seckill-edge-filter` crate is only the glue that
//! implements `Host` with proxy-wasm calls and moves headers in and out. (Same split as
//! Kuadrant's wasm-shim.)
//!
//! Layout:
//! - [`config`]: the plugin configuration and its validation.
//! - [`route`]: which API route a request is.
//! - [`edge`]: the decisions (ticket → sale state → dedup → throttle → lottery → budget → pass)
//!   and learning from the origin's answers; `buy` holds a buy's steps, one function each.
//! - [`slots`]: the bounded throttle/dedup memory in shared data; [`siphash`] places pairs in it.
//! - [`tickets`]: each worker's bounded cache of tickets it verified (repeats skip the HMAC).
//! - [`admission`]: each worker's count of buys in flight against its share of the units left.
//! - [`recent`]: each worker's bounded copy of the slot entries it touched (repeats are refused
//!   without reading shared data, where that copy cannot be out of date).
//! - [`flags`]: the sale flags shared by all workers; [`poller`]: the one worker that fetches them.
//! - [`scheduler`]: buys held at the edge until their lottery turn (turn order, how many a tick
//!   serves, the tick rate), shared by both glues.
//! - [`reply`]: the answers the edge gives itself; [`keys`]: every shared-data key name.
//! - [`host`]: the host trait, counters, and the in-memory test host.
//!
//! Nothing here panics on request data: lookups use `get`, decoding treats anything unexpected
//! as empty, and host failures degrade to passing the request on.

pub mod admission;
mod buy;
pub mod config;
pub mod edge;
pub mod flags;
pub mod host;
pub mod keys;
pub mod poller;
pub mod recent;
pub mod reply;
pub mod route;
pub mod scheduler;
pub mod siphash;
pub mod slots;
pub mod tickets;

pub use config::{Config, ConfigError};
pub use edge::{Decision, Edge, Forward, Held, Learn, Request};
pub use host::{Counter, Host, HostError, Level, Reason, SetError, Shared};
pub use poller::{PollRequest, Poller};
pub use reply::Reply;
pub use scheduler::{HeldStreams, Streams, TickRate, TurnQueue, HOLD_TICK_MS, MAX_TURNS_PER_TICK};

#[cfg(test)]
mod tests;
