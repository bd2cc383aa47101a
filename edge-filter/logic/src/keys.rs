//! Names of every shared-data key the filter uses, in one place.
//!
//! Envoy keeps shared data per VM id for the life of the process and never frees a key, so the
//! set of names must be fixed and small: a handful of control keys plus `buckets` slot keys.
//! The `sk1/` prefix carries the layout version; a future incompatible layout uses `sk2/`.

/// Prefix of every key (layout version 1).
pub const PREFIX: &str = "sk1/";
/// Feed metadata: version, fetch time, sold-out override generation (see `flags::Meta`).
pub const META: &str = "sk1/meta";
/// The last good flags feed, as compact JSON.
pub const FEED: &str = "sk1/feed";
/// Skus learned sold out from origin answers, per feed version (see `flags::Overrides`).
pub const SOLD: &str = "sk1/sold";
/// The feed poller's lease: owner worker id + expiry.
pub const LEASE: &str = "sk1/lease";
/// Counter handing out worker ids.
pub const WORKERS: &str = "sk1/workers";
/// Largest `buckets` whose keys have all been created.
pub const INIT: &str = "sk1/init";
