//! A fleet for tests: [`seckill_stack::fleet::Fleet`] (N edges behind a front, M origins, a Redis
//! Cluster) on free ports, with the calls the fleet tests make: the SRE API on any origin, orders
//! read from the cluster (each sku's keys from the master that serves its slot now), every
//! origin's buy counters added up, and the edges' own entrances for per-edge probes.

use std::collections::HashMap;
use std::time::Duration;

use seckill_core::demo;
use seckill_origin::client::{Answer, HttpClient};
use seckill_stack::envoy_proc::stack_filter_config;
use seckill_stack::fleet::{EdgeInputs, Fleet, FleetSpec, PublicPorts};
use seckill_stack::paths;

pub struct FleetRig {
    pub fleet: Fleet,
    pub http: HttpClient,
}

fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl FleetRig {
    /// Start a fleet of `spec`'s shape in a scratch folder (the stack's filter config on every edge).
    pub fn start(name: &str, spec: FleetSpec) -> anyhow::Result<FleetRig> {
        let dir = paths::scratch_dir(name);
        let site = dir.join("site");
        std::fs::create_dir_all(&site)?;
        std::fs::write(site.join("index.html"), "<!doctype html><title>sale</title>")?;
        let envoy = paths::envoy_bin().ok_or_else(|| anyhow::anyhow!("Envoy: run through `cargo xtask test`, or set ENVOY_BIN"))?;
        let config = |_: usize, edge_id: Option<&str>| stack_filter_config(demo::TICKET_SECRET, demo::EDGE_KEY, edge_id);
        let inputs = EdgeInputs { envoy_bin: &envoy, filter_wasm: paths::filter_wasm(), filter_config: &config, site_dir: site };
        let fleet = block(|| Fleet::start(spec, PublicPorts::default(), &dir, &paths::native_bin("seckill-origin"), demo::ADMIN_TOKEN, &inputs))
            .map_err(anyhow::Error::msg)?;
        Ok(FleetRig { fleet, http: HttpClient::new(Duration::from_secs(8)) })
    }

    /// The one public entrance (the front).
    pub fn entrance_url(&self) -> String {
        self.fleet.entrance().map(|e| e.url()).unwrap_or_default()
    }

    /// The SRE API on the first live origin.
    pub async fn admin(&self, method: hyper::Method, path: &str, body: Option<serde_json::Value>) -> anyhow::Result<Answer> {
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?.unwrap_or_default();
        let mut last = None;
        for o in &self.fleet.origins {
            if o.pid().is_none() {
                continue;
            }
            match self.http.send(method.clone(), &format!("{}{path}", o.url()), &[("authorization", demo::ADMIN_AUTHORIZATION)], body.clone()).await {
                Ok(a) => return Ok(a),
                Err(e) => last = Some(e),
            }
        }
        Err(anyhow::anyhow!("no origin answered {path}: {last:?}"))
    }

    /// Create a sale open since 5 s ago (past the start lottery), an hour long.
    pub async fn open_sale(&self, sku: &str, stock: u64, per_user_limit: u32) -> anyhow::Result<()> {
        let now = crate::now_ms();
        let body = serde_json::json!({"stock": stock, "starts_at": now - 5_000, "ends_at": now + 3_600_000, "per_user_limit": per_user_limit});
        let a = self.admin(hyper::Method::PUT, &format!("/admin/sales/{sku}"), Some(body)).await?;
        anyhow::ensure!(a.status == 200, "create sale: {}", a.text());
        Ok(())
    }

    /// The SRE switch, retried for up to 5 s as an SRE would while the store answers 503 (e.g.
    /// while a cluster slot has no master).
    pub async fn set_sold_out(&self, sku: &str, on: bool) -> anyhow::Result<()> {
        let t0 = std::time::Instant::now();
        loop {
            let a = self.admin(hyper::Method::PUT, &format!("/admin/sales/{sku}/sold-out"), Some(serde_json::json!({"sold_out": on}))).await?;
            if a.status == 200 {
                return Ok(());
            }
            anyhow::ensure!(a.status == 503 && t0.elapsed() < Duration::from_secs(5), "sold-out switch: {} {}", a.status, a.text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn figures(&self, sku: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.admin(hyper::Method::GET, &format!("/admin/sales/{sku}"), None).await?.json_value())
    }

    /// Orders of `sku` as the store holds them now: order id → (uid, state). In a cluster they are
    /// read from the master serving the sku's slot (after a failover: the promoted replica).
    pub fn orders_in_redis(&self, sku: &str) -> anyhow::Result<HashMap<String, (String, String)>> {
        let key = format!("sk:{{{sku}}}:orders");
        let raw: HashMap<String, String> = match &self.fleet.cluster {
            Some(c) => {
                let nodes: Vec<String> = c.ports().iter().map(|p| format!("redis://127.0.0.1:{p}")).collect();
                let client = redis::cluster::ClusterClientBuilder::new(nodes).connection_timeout(Duration::from_secs(2)).build()?;
                let mut conn = client.get_connection()?;
                redis::cmd("HGETALL").arg(&key).query(&mut conn)?
            }
            None => {
                let mut c = redis::Client::open(self.fleet.redis_url())?.get_connection_with_timeout(Duration::from_secs(5))?;
                redis::cmd("HGETALL").arg(&key).query(&mut c)?
            }
        };
        Ok(crate::crowd::owners_and_states(raw))
    }

    /// Buy attempts every live origin has answered so far (`seckill_origin_requests{route="buy"}`
    /// added up over the origins: the SRE figure of a fleet is the sum).
    pub async fn origin_buys(&self) -> u64 {
        let mut total = 0;
        for o in self.fleet.origins.iter().filter(|o| o.pid().is_some()) {
            let Ok(a) = self.http.get(&format!("{}/metrics", o.url()), &[("authorization", demo::ADMIN_AUTHORIZATION)]).await else { continue };
            total += a
                .text()
                .lines()
                .filter(|l| l.starts_with("seckill_origin_requests_total{") && l.contains("route=\"buy\""))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64;
        }
        total
    }
}

/// Requests edge `i`'s filter has decided so far (`seckill_edge_decisions` over every reason).
pub fn edge_decisions(fleet: &Fleet, i: usize) -> u64 {
    let Some(e) = fleet.edges.get(i) else { return 0 };
    block(|| e.prometheus())
        .lines()
        .filter(|l| l.starts_with("seckill_edge_decisions{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
