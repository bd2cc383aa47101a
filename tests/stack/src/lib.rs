//! The stack's processes, started and stopped from Rust: used by `cargo xtask` (up, down, demo,
//! bench) and by the end-to-end tests, so the stack a test runs is the stack a newcomer runs.
//!
//! - [`paths`]: where the workspace, the project's tools and the build outputs are.
//! - [`net`]: free loopback ports, waiting for a port, a Redis PING, and the blocking HTTP/1.1
//!   client the harness and the tests share ([`net::Client`], on `ureq`).
//! - [`redis_proc`]: a `redis-server` of our own on its own port (never the machine's 6379), with AOF.
//! - [`redis_cluster`]: a Redis Cluster of such servers (3 masters + 3 replicas).
//! - [`origin_proc`]: the `seckill-origin` binary as a child process.
//! - [`edge_build`]: which build of the edge filter (proxy-wasm or native) Envoy loads.
//! - [`envoy_proc`]: Envoy with the edge filter, its config rendered from `envoy/edge.yaml.tmpl`,
//!   and the front tier of a fleet (`envoy/front.yaml.tmpl`).
//! - [`fleet`]: the whole stack as N edges behind a front, M origins and a Redis or a cluster.
//! - [`prometheus_proc`]: Debian's Prometheus scraping given Envoys and origins, with the sale rules.
//!
//! Std only on purpose, but for `ureq` (plain HTTP, no TLS: a handful of small crates), so
//! `cargo xtask` compiles in seconds on a fresh machine.

pub mod edge_build;
pub mod envoy_proc;
pub mod fleet;
pub mod net;
pub mod origin_proc;
pub mod paths;
pub mod prometheus_proc;
pub mod redis_cluster;
pub mod redis_proc;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
