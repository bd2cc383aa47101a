//! The stack's own figures: Envoy's stats, the origin's metrics and the admin figures of the sale,
//! read before and after a run so the report can show (and check) the deltas.
//!
//! It exists because the simulator's counts are only half of the funnel: what reached the origin
//! and what Redis committed must come from the stack itself, and the accounting tests compare the
//! two sides so the report cannot drift from the truth.
//!
//! A fleet has many edges and many origins: `envoy_admin` and `origin` may each be a
//! comma-separated list, and the figures are the sums over all of them (every counter is per
//! process; the fleet's figure is the sum, as Prometheus' `sum()` gives it). The sale's figures
//! come from the first origin that answers (they are the store's, the same from every origin).

use std::collections::BTreeMap;
use std::time::Duration;

use seckill_origin::client::{ClientError, HttpClient};
use seckill_core::sale::Batch;
use seckill_origin::store::SaleFigures;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Http(#[from] ClientError),
    #[error("{what} answered {status}: {body}")]
    Status { what: String, status: u16, body: String },
    #[error("cannot read {what}: {reason}")]
    Parse { what: String, reason: String },
}

/// Where the stack's figures are read.
#[derive(Clone)]
pub struct Probe {
    http: HttpClient,
    /// Every edge's Envoy admin (`http://127.0.0.1:9901`); empty when there is no edge (direct runs).
    pub envoy_admins: Vec<String>,
    /// Every origin (`http://127.0.0.1:8080`), for `/metrics` and `/admin/`.
    pub origins: Vec<String>,
    pub admin_token: String,
    pub sku: String,
}

/// Envoy's counters that matter to the funnel.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct EdgeStats {
    /// `seckill_edge_decisions{reason}`.
    pub decisions: BTreeMap<String, u64>,
    /// `envoy_http_downstream_rq_total` of the public listener (`edge` connection manager).
    pub downstream_rq: u64,
    /// Requests the filter passed on after a failed host call or an exhausted CAS loop.
    pub host_errors: u64,
    pub cas_exhausted: u64,
}

/// The origin's request counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OriginStats {
    /// `seckill_origin_requests_total{route,outcome}`, keyed `route/outcome`.
    pub requests: BTreeMap<String, u64>,
    pub redis_errors: u64,
}

impl OriginStats {
    /// Requests of a route (all outcomes).
    pub fn route(&self, route: &str) -> u64 {
        self.requests.iter().filter(|(k, _)| k.split('/').next() == Some(route)).map(|(_, v)| *v).sum()
    }

    pub fn get(&self, route: &str, outcome: &str) -> u64 {
        self.requests.get(&format!("{route}/{outcome}")).copied().unwrap_or(0)
    }
}

/// Everything read at one moment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub edge: Option<EdgeStats>,
    pub origin: OriginStats,
    pub sale: SaleFigures,
}

fn scrape(text: &str, what: &str) -> Result<prometheus_parse::Scrape, ProbeError> {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).map_err(|e| ProbeError::Parse { what: what.to_owned(), reason: e.to_string() })
}

fn value(v: &prometheus_parse::Value) -> Option<u64> {
    match v {
        prometheus_parse::Value::Counter(f) | prometheus_parse::Value::Gauge(f) | prometheus_parse::Value::Untyped(f) if f.is_finite() && *f >= 0.0 => Some(*f as u64),
        _ => None,
    }
}

/// Envoy's `/stats/prometheus` text → [`EdgeStats`].
pub fn parse_edge_stats(text: &str) -> Result<EdgeStats, ProbeError> {
    let s = scrape(text, "Envoy's /stats/prometheus")?;
    let mut out = EdgeStats::default();
    for sample in &s.samples {
        let Some(v) = value(&sample.value) else { continue };
        match sample.metric.as_str() {
            "seckill_edge_decisions" => {
                if let Some(reason) = sample.labels.get("reason") {
                    *out.decisions.entry(reason.to_owned()).or_default() += v;
                }
            }
            "envoy_http_downstream_rq_total" if sample.labels.get("envoy_http_conn_manager_prefix") == Some("edge") => out.downstream_rq += v,
            "seckill_edge_host_errors" => out.host_errors += v,
            "seckill_edge_cas_exhausted" => out.cas_exhausted += v,
            _ => {}
        }
    }
    if out.decisions.is_empty() {
        return Err(ProbeError::Parse { what: "Envoy's /stats/prometheus".into(), reason: "no seckill_edge_decisions: is the edge filter loaded?".into() });
    }
    Ok(out)
}

/// The origin's `/metrics` text → [`OriginStats`].
pub fn parse_origin_metrics(text: &str) -> Result<OriginStats, ProbeError> {
    let s = scrape(text, "the origin's /metrics")?;
    let mut out = OriginStats::default();
    for sample in &s.samples {
        let Some(v) = value(&sample.value) else { continue };
        match sample.metric.as_str() {
            "seckill_origin_requests_total" => {
                let key = format!("{}/{}", sample.labels.get("route").unwrap_or("?"), sample.labels.get("outcome").unwrap_or("?"));
                *out.requests.entry(key).or_default() += v;
            }
            "seckill_origin_redis_errors_total" => out.redis_errors += v,
            _ => {}
        }
    }
    Ok(out)
}

fn sub_map(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    a.iter().map(|(k, v)| (k.clone(), v.saturating_sub(b.get(k).copied().unwrap_or(0)))).filter(|(_, v)| *v > 0).collect()
}

impl EdgeStats {
    /// `self - before`, counter by counter.
    pub fn delta(&self, before: &EdgeStats) -> EdgeStats {
        EdgeStats {
            decisions: sub_map(&self.decisions, &before.decisions),
            downstream_rq: self.downstream_rq.saturating_sub(before.downstream_rq),
            host_errors: self.host_errors.saturating_sub(before.host_errors),
            cas_exhausted: self.cas_exhausted.saturating_sub(before.cas_exhausted),
        }
    }

    pub fn reason(&self, r: &str) -> u64 {
        self.decisions.get(r).copied().unwrap_or(0)
    }
}

/// `a,b,c` → the addresses, each without a trailing `/`.
fn split_list(list: &str) -> Vec<String> {
    list.split(',').map(|s| s.trim().trim_end_matches('/')).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn add_maps(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut out = a.clone();
    for (k, v) in b {
        *out.entry(k.clone()).or_default() += v;
    }
    out
}

impl EdgeStats {
    /// Two edges' stats added up.
    pub fn plus(&self, o: &EdgeStats) -> EdgeStats {
        EdgeStats {
            decisions: add_maps(&self.decisions, &o.decisions),
            downstream_rq: self.downstream_rq + o.downstream_rq,
            host_errors: self.host_errors + o.host_errors,
            cas_exhausted: self.cas_exhausted + o.cas_exhausted,
        }
    }
}

impl OriginStats {
    /// Two origins' metrics added up.
    pub fn plus(&self, o: &OriginStats) -> OriginStats {
        OriginStats { requests: add_maps(&self.requests, &o.requests), redis_errors: self.redis_errors + o.redis_errors }
    }

    pub fn delta(&self, before: &OriginStats) -> OriginStats {
        OriginStats { requests: sub_map(&self.requests, &before.requests), redis_errors: self.redis_errors.saturating_sub(before.redis_errors) }
    }
}

impl Probe {
    /// `envoy_admin` and `origin`: one address or a comma-separated list (a fleet).
    pub fn new(envoy_admin: Option<String>, origin: &str, admin_token: &str, sku: &str) -> Probe {
        Probe {
            http: HttpClient::new(Duration::from_secs(10)),
            envoy_admins: envoy_admin.as_deref().map(split_list).unwrap_or_default(),
            origins: split_list(origin),
            admin_token: admin_token.to_owned(),
            sku: sku.to_owned(),
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.admin_token)
    }

    async fn get_ok(&self, url: &str, what: &str, admin: bool) -> Result<String, ProbeError> {
        let auth = self.auth();
        let headers: Vec<(&str, &str)> = if admin { vec![("authorization", auth.as_str())] } else { vec![] };
        let a = self.http.get(url, &headers).await?;
        if a.status != 200 {
            return Err(ProbeError::Status { what: what.to_owned(), status: a.status.as_u16(), body: a.text() });
        }
        Ok(a.text())
    }

    /// The first origin (SRE calls go there).
    fn origin(&self) -> &str {
        self.origins.first().map(String::as_str).unwrap_or("http://127.0.0.1:8080")
    }

    /// Every edge's stats added up; `None` without an edge.
    pub async fn edge_stats(&self) -> Result<Option<EdgeStats>, ProbeError> {
        let mut total: Option<EdgeStats> = None;
        for admin in &self.envoy_admins {
            let text = self.get_ok(&format!("{admin}/stats/prometheus"), "Envoy's admin /stats/prometheus", false).await?;
            let one = parse_edge_stats(&text)?;
            total = Some(match total {
                Some(t) => t.plus(&one),
                None => one,
            });
        }
        Ok(total)
    }

    /// Every origin's metrics added up.
    pub async fn origin_stats(&self) -> Result<OriginStats, ProbeError> {
        let mut total = OriginStats::default();
        for origin in &self.origins {
            let text = self.get_ok(&format!("{origin}/metrics"), "the origin's /metrics", true).await?;
            total = total.plus(&parse_origin_metrics(&text)?);
        }
        Ok(total)
    }

    pub async fn figures(&self) -> Result<SaleFigures, ProbeError> {
        let text = self.get_ok(&format!("{}/admin/sales/{}", self.origin(), self.sku), "GET /admin/sales", true).await?;
        serde_json::from_str(&text).map_err(|e| ProbeError::Parse { what: "the sale's admin figures".into(), reason: e.to_string() })
    }

    /// Create (or reset) the sale: `stock` units from `starts_at` to `ends_at` (Unix ms);
    /// `challenge_bits` > 0: every buy from the start needs a solved challenge.
    pub async fn create_sale(&self, stock: u64, starts_at: u64, ends_at: u64, challenge_bits: u32, batches: &[Batch]) -> Result<SaleFigures, ProbeError> {
        let auth = self.auth();
        let mut body = serde_json::json!({"stock": stock, "starts_at": starts_at, "ends_at": ends_at, "per_user_limit": 1, "pay_within_s": 900});
        if challenge_bits > 0 {
            body["challenge_bits"] = challenge_bits.into();
        }
        if !batches.is_empty() {
            body["batches"] = serde_json::to_value(batches).map_err(|e| ProbeError::Parse { what: "the batches".into(), reason: e.to_string() })?;
        }
        let a = self.http.put_json(&format!("{}/admin/sales/{}", self.origin(), self.sku), &[("authorization", &auth)], &body).await?;
        if a.status != 200 {
            return Err(ProbeError::Status { what: "PUT /admin/sales".into(), status: a.status.as_u16(), body: a.text() });
        }
        a.json().map_err(|e| ProbeError::Parse { what: "the created sale's figures".into(), reason: e.to_string() })
    }

    /// Wait until the edge knows the sale as it is now (its status answered by the edge itself,
    /// with this `starts_at`), so the crowd meets the edge's real behaviour from the first request.
    pub async fn wait_edge_knows(&self, edge: &str, starts_at: u64, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let url = format!("{}/api/sales/{}", edge.trim_end_matches('/'), self.sku);
        while tokio::time::Instant::now() < deadline {
            if let Ok(a) = self.http.get(&url, &[]).await {
                let known = a.json::<seckill_core::SaleStatus>().is_ok_and(|st| st.starts_at == starts_at);
                if a.status == 200 && a.header(seckill_core::headers::BY) == Some("edge") && known {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub async fn snapshot(&self) -> Result<Snapshot, ProbeError> {
        Ok(Snapshot { edge: self.edge_stats().await?, origin: self.origin_stats().await?, sale: self.figures().await? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envoy_and_origin_text() {
        let envoy = "# TYPE envoy_http_downstream_rq_total counter\n\
            envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"admin\"} 7\n\
            envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix=\"edge\"} 120\n\
            # TYPE seckill_edge_decisions counter\n\
            seckill_edge_decisions{reason=\"passed\"} 20\n\
            seckill_edge_decisions{reason=\"throttled\"} 90\n\
            # TYPE seckill_edge_host_errors counter\nseckill_edge_host_errors{} 0\n";
        let e = parse_edge_stats(envoy).unwrap();
        assert_eq!(e.downstream_rq, 120);
        assert_eq!(e.reason("passed"), 20);
        assert_eq!(e.reason("throttled"), 90);
        let origin = "# HELP seckill_origin_requests Requests by route and outcome.\n\
            # TYPE seckill_origin_requests counter\n\
            seckill_origin_requests_total{route=\"buy\",outcome=\"won\"} 5\n\
            seckill_origin_requests_total{route=\"buy\",outcome=\"sold_out\"} 3\n\
            seckill_origin_requests_total{route=\"status\",outcome=\"ok\"} 2\n\
            # EOF\n";
        let o = parse_origin_metrics(origin).unwrap();
        assert_eq!(o.route("buy"), 8);
        assert_eq!(o.get("buy", "won"), 5);
        let before = OriginStats { requests: [("buy/won".to_owned(), 2)].into_iter().collect(), redis_errors: 0 };
        assert_eq!(o.delta(&before).get("buy", "won"), 3);
        let fleet = o.plus(&before);
        assert_eq!((fleet.get("buy", "won"), fleet.get("buy", "sold_out")), (7, 3));
        let two_edges = e.plus(&e);
        assert_eq!((two_edges.reason("passed"), two_edges.downstream_rq), (40, 240));
        assert_eq!(split_list("http://a:1/, http://b:2,,"), vec!["http://a:1".to_owned(), "http://b:2".to_owned()]);
    }
}
