//! `seckill-sim`: the flash-sale simulator.
//!
//! It plays a flash sale against the stack from outside, through the public edge only, with
//! tickets minted as a login system would: honest shoppers, impatient clickers, scripted bots and
//! bot farms, mixed by a [`scenario`] file; then it reports the funnel from both sides, the
//! crowd's and the stack's own counters, and checks that they agree.
//!
//! - [`scenario`]: the crowd as data (TOML or JSON), validated up front.
//! - [`crowd`]: one task per shopper, the run's bounds, every request recorded.
//! - [`record`]: counts, HDR latency histograms and the timeline.
//! - [`probe`]: Envoy's stats, the origin's metrics, the sale's admin figures.
//! - [`report`]: the funnel report and its cross-checks; [`chart`]: its SVG; [`progress`]: the bar.
//! - [`simulate`]: one whole run against a running stack (what `cargo xtask demo` does), one
//!   crowd per batch for a sale released in batches.
//! - [`harness`]: a stack of our own on free ports (tests, benchmark); [`e2e`]: the benchmark.

pub mod chart;
pub mod crowd;
pub mod e2e;
pub mod harness;
pub mod probe;
pub mod progress;
pub mod record;
pub mod report;
pub mod scenario;
pub mod simulate;

pub use crowd::Mode;
pub use report::Report;
pub use scenario::Scenario;
pub use simulate::{simulate, simulate_batches, Addresses, Options, Secrets, SimError};
