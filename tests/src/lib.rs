//! The stack harness: real processes on loopback, started and stopped from Rust.
//!
//! Integration tests and `cargo xtask` share it, so the stack a test runs is the stack a newcomer runs.
//! - [`paths`]: where the workspace, the tools and the build outputs are.
//! - [`redis_proc`]: a `redis-server` of our own on a free port (never the machine's 6379), with AOF.
//! - [`origin_proc`]: the origin, in this process (fast, for tests) or as the `seckill-origin` binary.
//! - [`net`]: free ports and waiting for a port to answer.
//! - [`rig`]: a Redis plus an in-process origin, with the calls tests make most.

pub mod net;
pub mod origin_proc;
pub mod paths;
pub mod redis_proc;
pub mod rig;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    seckill_origin::now_ms()
}
