//! End-to-end test support over the real stack.
//!
//! Process management lives in [`seckill_stack`] (re-exported here); this crate adds what only tests
//! need:
//! - [`inproc`]: the origin inside the test process.
//! - [`raw_http`]: raw HTTP/1.1 bytes for hostile inputs (smuggling, non-UTF-8, slow clients).
//! - [`rig`]: a Redis plus an in-process origin, with the calls tests make most.
//! - [`stack_rig`]: the whole stack with the origin as a process, for fault tests; [`crowd`]: shoppers
//!   through the edge and the contract's invariants checked against Redis.
//! - [`edge_rig`]: Redis + origin + Envoy with the filter (2 workers) for the Envoy integration tests.
//! - [`fleet_rig`]: a fleet (edges behind a front, several origins, a Redis Cluster) for the fleet tests.
//! - [`bench`]: the benchmarks and the soak run behind `seckill-bench` (the load loop, the
//!   benchmark Envoy, `edge`, `cluster`, `soak`).

pub mod bench;
pub mod crowd;
pub mod edge_rig;
pub mod fleet_rig;
pub mod inproc;
pub mod raw_http;
pub mod rig;
pub mod stack_rig;

pub use seckill_stack::{net, now_ms, origin_proc, paths, redis_proc};
