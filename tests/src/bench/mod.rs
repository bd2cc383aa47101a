//! The benchmarks and the soak run, behind `seckill-bench` (`cargo xtask bench ...`, `cargo xtask
//! soak`), one file each, plus what they share:
//!
//! - [`load`]: a fast HTTP/1.1 load loop (many keep-alive connections, raw request bytes).
//! - [`envoy`]: the benchmark Envoy (`envoy/bench.yaml.tmpl`), a fake flags feed, memory readings.
//! - [`edge`]: `seckill-bench edge` (throughput ratios and the 1,000,000-uid memory run).
//! - [`edge_stack`]: `seckill-bench edge-stack` (each build's cost on the stack's own Envoy config).
//! - [`challenge`]: the proof-of-work challenge's check cost at the edge and solve times (part of
//!   `seckill-bench edge`; `edge-challenge` alone).
//! - [`cluster`]: `seckill-bench cluster` (standalone vs cluster vs the `won` rule; one hot sku).
//! - [`soak`]: `seckill-bench soak` (the whole stack's memory under a steady crowd for N minutes).
//!
//! The end-to-end benchmark (`cargo xtask bench e2e`) is the simulator's (`seckill-sim e2e`).

pub mod challenge;
pub mod cluster;
pub mod edge;
pub mod edge_stack;
pub mod envoy;
pub mod load;
pub mod soak;
