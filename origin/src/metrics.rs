//! Prometheus metrics of the origin (`GET /metrics`).
//!
//! Requests by route and outcome, the latency of the commit path (the buy script round trip), and
//! Redis errors. The funnel report and the tests read these to count what reached the origin.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub commit_seconds: Histogram,
    pub redis_errors: Counter,
    pub orders_expired: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("seckill_origin_requests", "Requests by route and outcome", requests.clone());
        let commit_seconds = Histogram::new([0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0]);
        registry.register("seckill_origin_commit_seconds", "Latency of the buy script round trip to Redis", commit_seconds.clone());
        let redis_errors = Counter::default();
        registry.register("seckill_origin_redis_errors", "Redis calls that failed or timed out", redis_errors.clone());
        let orders_expired = Counter::default();
        registry.register("seckill_origin_orders_expired", "Unpaid orders expired, their units returned to stock", orders_expired.clone());
        Metrics { registry, requests, commit_seconds, redis_errors, orders_expired }
    }

    pub fn count(&self, route: &'static str, outcome: &'static str) {
        self.requests.get_or_create(&RequestLabels { route, outcome }).inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
