//! A real Redis Cluster of the project's own: 3 masters + 3 replicas, each a [`RedisProc`] in
//! cluster mode (AOF as the single Redis), on free loopback ports, joined by
//! `redis-cli --cluster create`. Tests kill a master and watch its replica take over.
//!
//! Cluster administration goes through `redis-cli` (Debian's `redis-tools`, installed by
//! `cargo xtask setup`), which keeps this crate std-only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_proc::{Fsync, RedisProc, RedisProcError};

/// Masters in the stack's cluster (each with one replica).
pub const MASTERS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Node(#[from] RedisProcError),
    #[error("`redis-cli --cluster create` failed: {0}")]
    Create(String),
    #[error("the cluster did not reach cluster_state:ok within {0:?}")]
    NotOk(Duration),
    #[error("cannot run redis-cli: {0} (`cargo xtask setup` installs redis-tools)")]
    Cli(std::io::Error),
}

/// One node as `CLUSTER NODES` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub port: u16,
    pub master: bool,
    /// Healthy (not flagged `fail`/`fail?`, connected).
    pub ok: bool,
    /// Slot ranges served (masters only), as `start-end` or `slot`.
    pub slots: Vec<String>,
}

pub struct RedisCluster {
    nodes: Vec<RedisProc>,
    dir: PathBuf,
}

/// `redis-server` arguments that put a node in cluster mode (fast failover for tests and demos).
fn cluster_args(dir: &Path) -> Vec<String> {
    vec![
        "--cluster-enabled".into(),
        "yes".into(),
        "--cluster-config-file".into(),
        dir.join("nodes.conf").display().to_string(),
        // A master unreachable for this long is failed over to its replica.
        "--cluster-node-timeout".into(),
        "1000".into(),
        // Keep serving the slots that still have a master while one slot range has none.
        "--cluster-require-full-coverage".into(),
        "no".into(),
        "--cluster-allow-reads-when-down".into(),
        "no".into(),
        // A replica may always take over, however long since it last heard its master (Redis
        // measured that age oddly under load here and refused). Safe with the origin's rule:
        // every `won` is on the replica already, and `wait_ok` lets nothing start before every
        // replica has synced once.
        "--cluster-replica-validity-factor".into(),
        "0".into(),
    ]
}

/// A free port whose cluster bus port (port + 10000) is free too and below the ephemeral range
/// (where a client's outgoing connection could take it before the node binds it).
pub fn free_node_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    // 20000..22767: node ports whose bus ports (30000..32767) stay below the ephemeral range.
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 2_767;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, std::process::id().wrapping_mul(7919) % SPAN, Ordering::Relaxed, Ordering::Relaxed);
    let free = |p: u32| std::net::TcpListener::bind(("127.0.0.1", p as u16)).is_ok();
    for _ in 0..SPAN {
        let p = FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        if free(p) && free(p + 10_000) {
            return p as u16;
        }
    }
    crate::net::free_port()
}

/// Run `redis-cli` with `args`; its standard output.
pub fn redis_cli(args: &[&str]) -> Result<String, ClusterError> {
    let out = Command::new(crate::paths::redis_cli())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(ClusterError::Cli)?;
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), if out.status.success() { String::new() } else { String::from_utf8_lossy(&out.stderr).into_owned() }))
}

impl RedisCluster {
    /// Start `2 * MASTERS` nodes on the given ports (or free ones when `ports` is empty) with
    /// their data under `dir`, create the cluster and wait until every slot is served.
    pub fn start(dir: &Path, ports: &[u16], fsync: Fsync) -> Result<Self, ClusterError> {
        let ports: Vec<u16> = if ports.is_empty() { (0..2 * MASTERS).map(|_| free_node_port()).collect() } else { ports.to_vec() };
        let mut nodes = Vec::new();
        for port in &ports {
            let node_dir = dir.join(format!("node-{port}"));
            let extra = cluster_args(&node_dir);
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            nodes.push(RedisProc::start_with(*port, &node_dir, fsync, &extra)?);
        }
        let cluster = RedisCluster { nodes, dir: dir.to_path_buf() };
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut args: Vec<&str> = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = redis_cli(&args)?;
        if !out.contains("All 16384 slots covered") {
            return Err(ClusterError::Create(out.lines().rev().take(5).collect::<Vec<_>>().join(" | ")));
        }
        cluster.wait_ok(Duration::from_secs(20))?;
        Ok(cluster)
    }

    /// Wait until every live node says `cluster_state:ok`, they agree on `MASTERS` healthy
    /// masters, and every live replica has finished syncing from its master (a replica promoted
    /// before its first sync would bring an empty slot range: Redis refuses to, and so do we).
    pub fn wait_ok(&self, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let all_ok = self.live_ports().iter().all(|p| redis_cli(&["-p", &p.to_string(), "cluster", "info"]).is_ok_and(|s| s.contains("cluster_state:ok")));
            let info = self.nodes_info();
            let masters = info.iter().filter(|n| n.master && n.ok && !n.slots.is_empty()).count();
            let live = self.live_ports();
            let synced = info.iter().filter(|n| !n.master && live.contains(&n.port)).all(|n| {
                redis_cli(&["-p", &n.port.to_string(), "info", "replication"])
                    .is_ok_and(|s| s.contains("master_link_status:up") && s.contains("master_sync_in_progress:0"))
            });
            if all_ok && masters == MASTERS && synced {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(ClusterError::NotOk(within))
    }

    /// Ports of the nodes whose process is running.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes.iter().filter(|n| n.pid().is_some()).map(RedisProc::port).collect()
    }

    /// Every node's port.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisProc::port).collect()
    }

    /// `host:port` of every node, comma-separated (the origin's `--redis-cluster`).
    pub fn node_list(&self) -> String {
        self.ports().iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    /// `CLUSTER NODES` as a live node sees it.
    pub fn nodes_info(&self) -> Vec<NodeInfo> {
        let Some(port) = self.live_ports().first().copied() else { return Vec::new() };
        let text = redis_cli(&["-p", &port.to_string(), "cluster", "nodes"]).unwrap_or_default();
        parse_cluster_nodes(&text)
    }

    /// Ports of the healthy masters serving slots.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes_info().into_iter().filter(|n| n.master && n.ok && !n.slots.is_empty()).map(|n| n.port).collect()
    }

    /// The port of the master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> Option<u16> {
        let port = self.live_ports().first().copied()?;
        let slot: u16 = redis_cli(&["-p", &port.to_string(), "cluster", "keyslot", key]).ok()?.trim().parse().ok()?;
        self.nodes_info().into_iter().find(|n| n.master && n.ok && n.slots.iter().any(|r| slot_in(r, slot))).map(|n| n.port)
    }

    fn node_mut(&mut self, port: u16) -> Option<&mut RedisProc> {
        self.nodes.iter_mut().find(|n| n.port() == port)
    }

    /// SIGKILL the node on `port` (a crash).
    pub fn kill9(&mut self, port: u16) {
        if let Some(n) = self.node_mut(port) {
            n.kill9();
        }
    }

    /// Start the node on `port` again on its data (it rejoins; a failed-over master as a replica).
    pub fn restart(&mut self, port: u16) -> Result<(), ClusterError> {
        if let Some(n) = self.node_mut(port) {
            n.restart()?;
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Give up ownership of every process (`xtask up`): their pids.
    pub fn detach(self) -> Vec<u32> {
        self.nodes.into_iter().filter_map(RedisProc::detach).collect()
    }
}

fn slot_in(range: &str, slot: u16) -> bool {
    match range.split_once('-') {
        Some((a, b)) => matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b),
        None => range.parse::<u16>() == Ok(slot),
    }
}

/// Parse `CLUSTER NODES`: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`.
pub fn parse_cluster_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = f.get(1)?.split('@').next()?.rsplit_once(':')?.1.parse().ok()?;
            let flags = f.get(2)?;
            let link = f.get(7)?;
            let ok = !flags.contains("fail") && !flags.contains("noaddr") && (*link == "connected");
            let slots = f.iter().skip(8).filter(|s| !s.starts_with('[')).map(|s| s.to_string()).collect();
            Some(NodeInfo { port, master: flags.contains("master"), ok, slots })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines() {
        let text = "a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n\
                    b2 127.0.0.1:7004@17004 slave a1 0 1 4 connected\n\
                    c3 127.0.0.1:7002@17002 master,fail - 0 1 2 disconnected 5461-10922 [5461->-x]\n";
        let n = parse_cluster_nodes(text);
        assert_eq!(n[0], NodeInfo { port: 7001, master: true, ok: true, slots: vec!["0-5460".into()] });
        assert_eq!(n[1], NodeInfo { port: 7004, master: false, ok: true, slots: vec![] });
        assert_eq!(n[2], NodeInfo { port: 7002, master: true, ok: false, slots: vec!["5461-10922".into()] });
        assert!(slot_in("0-5460", 5460) && !slot_in("0-5460", 5461) && slot_in("7", 7));
    }
}
