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
//! - [`load`]: a fast HTTP/1.1 load loop (many keep-alive connections, raw request bytes).
//! - [`edge_bench`]: the benchmark Envoy (`envoy/bench.yaml.tmpl`), a fake flags feed, memory readings.
//! - [`bench_edge`]: `seckill-bench edge` (throughput ratios and the 1,000,000-uid memory run).
//! - [`bench_cluster`]: `seckill-bench cluster` (standalone vs cluster vs the `won` rule; one hot sku).

pub mod bench_challenge;
pub mod bench_cluster;
pub mod bench_edge;
pub mod crowd;
pub mod edge_bench;
pub mod edge_rig;
pub mod fleet_rig;
pub mod inproc;
pub mod load;
pub mod raw_http;
pub mod rig;
pub mod soak;
pub mod stack_rig;

pub use seckill_stack::{net, now_ms, origin_proc, paths, redis_proc};
