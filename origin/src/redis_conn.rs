//! The origin's connection to Redis: one standalone server or a Redis Cluster, behind one type.
//!
//! [`RedisConn`] is what every [`crate::store::Store`] call runs on. Standalone (the default) is
//! one multiplexed [`ConnectionManager`] that reconnects by itself; a cluster is redis-rs's
//! [`ClusterConnection`], which routes each command to the master of its key's slot and follows
//! `MOVED`/`ASK` redirections itself. Both are cheap to clone (a handle on shared connections).
//!
//! In a cluster no call may name keys of two slots: every script touches the keys of one sku
//! (all tagged `{sku}`), and reads that cover many skus (the flags refresh, `orders/mine`) are
//! sent as one call per sku, concurrently ([`RedisConn::per_key`]), instead of one pipeline.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Where the origin's Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis://host:port`).
    Standalone(String),
    /// A Redis Cluster, given by seed nodes (`host:port`); the rest is discovered from them.
    Cluster(Vec<String>),
}

/// A node list that cannot name a cluster.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeListError {
    #[error("the Redis Cluster node list is empty")]
    Empty,
    #[error("Redis Cluster node `{0}` is not host:port (e.g. 127.0.0.1:7001)")]
    Malformed(String),
}

impl RedisTarget {
    /// Parse a comma-separated `host:port` list of cluster seed nodes.
    pub fn cluster_from_list(list: &str) -> Result<RedisTarget, NodeListError> {
        let mut nodes = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let node = raw.strip_prefix("redis://").unwrap_or(raw);
            let ok = node.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(NodeListError::Malformed(raw.to_owned()));
            }
            nodes.push(format!("redis://{node}"));
        }
        if nodes.is_empty() { Err(NodeListError::Empty) } else { Ok(RedisTarget::Cluster(nodes)) }
    }

    /// How the target is shown in logs and `/readyz`.
    pub fn describe(&self) -> String {
        match self {
            RedisTarget::Standalone(url) => url.clone(),
            RedisTarget::Cluster(nodes) => format!("cluster {}", nodes.join(",")),
        }
    }
}

/// Timeouts of the connection itself (each call is also bounded by the store).
#[derive(Debug, Clone, Copy)]
pub struct ConnTimeouts {
    pub connect: Duration,
    pub response: Duration,
}

/// A standalone or cluster connection; see the module doc.
#[derive(Clone)]
pub enum RedisConn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Standalone: does not wait for Redis (the origin starts, answers `busy` and connects when
    /// Redis comes up). Cluster: connects to the seed nodes now and reads the slot map, so a wrong
    /// node list is a start-up error, not a sale-day surprise.
    pub async fn connect(target: &RedisTarget, t: ConnTimeouts) -> redis::RedisResult<RedisConn> {
        match target {
            RedisTarget::Standalone(url) => Self::standalone(url, t),
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(t.connect)
                    .response_timeout(t.response)
                    .retries(2)
                    .min_retry_wait(20)
                    .max_retry_wait(200)
                    .build()?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// The lazy standalone connection (no I/O here).
    pub fn standalone(url: &str, t: ConnTimeouts) -> redis::RedisResult<RedisConn> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(t.connect))
            .set_response_timeout(Some(t.response))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500))
            .set_pipeline_buffer_size(4096);
        Ok(RedisConn::Standalone(ConnectionManager::new_lazy_with_config(client, config)?))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }

    /// Run one read per key: one pipeline on a standalone server, one call per key (concurrently,
    /// each routed to its own slot's master) in a cluster. Results come back in `keys` order.
    pub async fn per_key<T: redis::FromRedisValue>(&self, cmds: Vec<Cmd>) -> redis::RedisResult<Vec<T>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            RedisConn::Standalone(_) => {
                let mut pipe = redis::pipe();
                for c in cmds {
                    pipe.add_command(c);
                }
                pipe.query_async(&mut self.clone()).await
            }
            RedisConn::Cluster(_) => {
                let calls = cmds.into_iter().map(|c| {
                    let mut conn = self.clone();
                    async move { c.query_async::<T>(&mut conn).await }
                });
                futures_util::future::try_join_all(calls).await
            }
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Standalone(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Standalone(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists() {
        assert_eq!(
            RedisTarget::cluster_from_list("127.0.0.1:7001, redis://127.0.0.1:7002,"),
            Ok(RedisTarget::Cluster(vec!["redis://127.0.0.1:7001".into(), "redis://127.0.0.1:7002".into()]))
        );
        assert_eq!(RedisTarget::cluster_from_list(" , "), Err(NodeListError::Empty));
        assert_eq!(RedisTarget::cluster_from_list("127.0.0.1"), Err(NodeListError::Malformed("127.0.0.1".into())));
        assert_eq!(RedisTarget::cluster_from_list("h:0"), Err(NodeListError::Malformed("h:0".into())));
        assert_eq!(RedisTarget::cluster_from_list("h:99999"), Err(NodeListError::Malformed("h:99999".into())));
        assert_eq!(RedisTarget::cluster_from_list(":7001"), Err(NodeListError::Malformed(":7001".into())));
    }
}
