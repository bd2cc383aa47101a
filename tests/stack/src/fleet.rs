//! The stack as a fleet on one machine: N edges (Envoys with the filter) behind one front Envoy,
//! M origins, and one Redis or a Redis Cluster (3 masters + 3 replicas). `cargo xtask up --edges N
//! --origins M --redis-cluster` and the fleet tests start it through [`Fleet::start`].
//!
//! Wiring: the front routes `/api/` by the ticket's uid (Maglev) to one edge; every edge balances
//! all origins (health-checked, a dead one ejected); every origin talks to the same Redis or
//! cluster. In a fleet each edge names itself in its flags polls (`edge_id`), so the origins count
//! the edges and each edge budgets only its share of the units left.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::envoy_proc::{EdgeSettings, EnvoyProc, FrontSettings};
use crate::net::{free_port, http_get};
use crate::origin_proc::OriginProc;
use crate::redis_cluster::RedisCluster;
use crate::redis_proc::{RedisProc, STACK_FSYNC};

/// The shape of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetSpec {
    /// Envoys with the filter (at least 1).
    pub edges: usize,
    /// A front Envoy before the edges (a fleet; without it the one edge is the entrance).
    pub front: bool,
    /// Origin processes (at least 1).
    pub origins: usize,
    /// A Redis Cluster instead of one Redis.
    pub cluster: bool,
    /// Worker threads of each Envoy.
    pub concurrency: u32,
}

impl FleetSpec {
    /// The single-box stack: one edge, one origin, one Redis.
    pub const SINGLE: FleetSpec = FleetSpec { edges: 1, front: false, origins: 1, cluster: false, concurrency: 2 };
}

/// The public ports (0: a free one). Inner parts (edges behind a front, more origins, cluster
/// nodes) always take free ports.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicPorts {
    /// The entrance: the front in a fleet, else the edge.
    pub entrance: u16,
    /// Admin of the entrance Envoy.
    pub entrance_admin: u16,
    /// The first origin.
    pub origin: u16,
    /// The single Redis (unused with a cluster).
    pub redis: u16,
}

/// What every edge is started with.
pub struct EdgeInputs<'a> {
    pub envoy_bin: &'a Path,
    pub filter_wasm: PathBuf,
    /// The filter config of edge `i` (1-based) given its `edge_id` (`None` outside a fleet).
    pub filter_config: &'a dyn Fn(usize, Option<&str>) -> String,
    pub site_dir: PathBuf,
}

pub struct Fleet {
    pub spec: FleetSpec,
    pub redis: Option<RedisProc>,
    pub cluster: Option<RedisCluster>,
    pub origins: Vec<OriginProc>,
    pub edges: Vec<EnvoyProc>,
    pub front: Option<EnvoyProc>,
    pub dir: PathBuf,
}

fn port_or_free(p: u16) -> u16 {
    if p == 0 { free_port() } else { p }
}

/// Wait until an origin's `/readyz` says Redis is reachable.
pub fn wait_origin_ready(addr: SocketAddr, admin_token: &str, within: Duration) -> bool {
    let auth = format!("Bearer {admin_token}");
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if matches!(http_get(addr, "/readyz", &[("authorization", &auth)], Duration::from_secs(1)), Some((200, _))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Fleet {
    /// Start the store, the origins, the edges and (in a fleet) the front, each waited for.
    pub fn start(spec: FleetSpec, ports: PublicPorts, dir: &Path, origin_bin: &Path, admin_token: &str, edge: &EdgeInputs) -> Result<Fleet, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut fleet = Fleet { spec, redis: None, cluster: None, origins: Vec::new(), edges: Vec::new(), front: None, dir: dir.to_path_buf() };
        let redis_flags = fleet.start_store(ports.redis)?;
        for i in 0..spec.origins.max(1) {
            let port = if i == 0 { port_or_free(ports.origin) } else { free_port() };
            fleet.start_origin(SocketAddr::from(([127, 0, 0, 1], port)), &redis_flags, admin_token, &format!("origin-{}.log", i + 1), origin_bin)?;
        }
        fleet.start_edges(ports, edge)?;
        Ok(fleet)
    }

    /// The single Redis or the cluster; the origin's flags to reach it.
    fn start_store(&mut self, redis_port: u16) -> Result<Vec<String>, String> {
        if self.spec.cluster {
            let c = RedisCluster::start(&self.dir.join("redis-cluster"), &[], STACK_FSYNC).map_err(|e| e.to_string())?;
            let flags = vec!["--redis-cluster".to_owned(), c.node_list()];
            self.cluster = Some(c);
            Ok(flags)
        } else {
            let r = RedisProc::start(port_or_free(redis_port), &self.dir.join("redis"), STACK_FSYNC).map_err(|e| e.to_string())?;
            let flags = vec!["--redis".to_owned(), r.url()];
            self.redis = Some(r);
            Ok(flags)
        }
    }

    fn start_origin(&mut self, addr: SocketAddr, redis_flags: &[String], admin_token: &str, log: &str, bin: &Path) -> Result<(), String> {
        let flags: Vec<&str> = redis_flags.iter().map(String::as_str).collect();
        let log = self.dir.join(log);
        let o = OriginProc::start_on(bin, addr, &flags, &log)?;
        if !wait_origin_ready(addr, admin_token, Duration::from_secs(15)) {
            return Err(format!("the origin on {addr} did not become ready; see {}", log.display()));
        }
        self.origins.push(o);
        Ok(())
    }

    fn start_edges(&mut self, ports: PublicPorts, edge: &EdgeInputs) -> Result<(), String> {
        let origins: Vec<SocketAddr> = self.origins.iter().map(|o| o.addr).collect();
        for i in 1..=self.spec.edges.max(1) {
            let public = !self.spec.front && i == 1;
            let edge_id = self.spec.front.then(|| format!("edge-{i}"));
            let settings = EdgeSettings {
                edge_port: if public { port_or_free(ports.entrance) } else { free_port() },
                admin_port: if public { port_or_free(ports.entrance_admin) } else { free_port() },
                origins: origins.clone(),
                filter_wasm: edge.filter_wasm.clone(),
                filter_config: (edge.filter_config)(i, edge_id.as_deref()),
                site_dir: edge.site_dir.clone(),
            };
            let dir = self.dir.join(format!("edge-{i}"));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            self.edges.push(EnvoyProc::start(edge.envoy_bin, &settings, &dir, self.spec.concurrency)?);
        }
        if self.spec.front {
            let settings = FrontSettings {
                front_port: port_or_free(ports.entrance),
                admin_port: port_or_free(ports.entrance_admin),
                edges: self.edges.iter().map(|e| e.edge).collect(),
            };
            self.front = Some(EnvoyProc::start_front(edge.envoy_bin, &settings, &self.dir, self.spec.concurrency)?);
        }
        Ok(())
    }

    /// The one public entrance: the front in a fleet, else the edge.
    pub fn entrance(&self) -> Option<&EnvoyProc> {
        self.front.as_ref().or(self.edges.first())
    }

    /// A seed node (`redis://…`): the single Redis or the cluster's first node.
    pub fn redis_url(&self) -> String {
        match (&self.redis, &self.cluster) {
            (Some(r), _) => r.url(),
            (None, Some(c)) => c.ports().first().map(|p| format!("redis://127.0.0.1:{p}")).unwrap_or_default(),
            (None, None) => String::new(),
        }
    }

    /// `host:port` of every Redis node, comma-separated.
    pub fn redis_nodes(&self) -> String {
        match (&self.redis, &self.cluster) {
            (Some(r), _) => format!("127.0.0.1:{}", r.port()),
            (None, Some(c)) => c.node_list(),
            (None, None) => String::new(),
        }
    }

    /// The fleet's addresses as `key=value` pairs (CONTRACT.md): `edge` (the entrance),
    /// `envoy_admin`, `origin`, `redis`, `redis_nodes`, `page`; in a fleet also `edge_1`…,
    /// `envoy_admin_1`…, `front_admin`; with several origins `origin_1`….
    pub fn addresses(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(e) = self.entrance() {
            out.push(("edge".to_owned(), e.url()));
            out.push(("envoy_admin".to_owned(), e.admin_url()));
        }
        if let Some(o) = self.origins.first() {
            out.push(("origin".to_owned(), o.url()));
        }
        out.push(("redis".to_owned(), self.redis_url()));
        out.push(("redis_nodes".to_owned(), self.redis_nodes()));
        if let Some(e) = self.entrance() {
            out.push(("page".to_owned(), format!("{}/", e.url())));
        }
        if self.front.is_some() {
            for (i, e) in self.edges.iter().enumerate() {
                out.push((format!("edge_{}", i + 1), e.url()));
                out.push((format!("envoy_admin_{}", i + 1), e.admin_url()));
            }
        }
        if self.origins.len() > 1 || self.front.is_some() {
            for (i, o) in self.origins.iter().enumerate() {
                out.push((format!("origin_{}", i + 1), o.url()));
            }
        }
        out
    }

    /// Give up ownership of every process (`xtask up`): `(name, pid)` in stopping order (front,
    /// edges, origins, Redis).
    pub fn detach(self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        if let Some(pid) = self.front.and_then(EnvoyProc::detach) {
            out.push(("front".to_owned(), pid));
        }
        for (i, e) in self.edges.into_iter().enumerate() {
            out.extend(e.detach().map(|pid| (format!("envoy_{}", i + 1), pid)));
        }
        for (i, o) in self.origins.into_iter().enumerate() {
            out.extend(o.detach().map(|pid| (format!("origin_{}", i + 1), pid)));
        }
        out.extend(self.redis.and_then(RedisProc::detach).map(|pid| ("redis".to_owned(), pid)));
        for (i, pid) in self.cluster.map(RedisCluster::detach).unwrap_or_default().into_iter().enumerate() {
            out.push((format!("redis_{}", i + 1), pid));
        }
        out
    }
}
