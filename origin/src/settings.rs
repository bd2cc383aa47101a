//! The origin's settings, and how the command line and environment fill them.
//!
//! Secrets have no silent default: `seckill-origin` refuses to start without a ticket secret, an
//! admin token and an edge key, unless `--dev` asks for the demo stack's well-known values.

use std::time::Duration;

use seckill_core::demo;

use crate::redis_conn::RedisTarget;
use crate::store::Durability;

#[derive(Debug, Clone)]
pub struct Settings {
    /// One Redis (`redis://…`, the default) or a Redis Cluster's seed nodes.
    pub redis: RedisTarget,
    /// What a `won` waits for (replicas confirming the commit, in a cluster).
    pub durability: Durability,
    /// Secrets that sign tickets; the first mints demo-login tickets. (The origin does not verify
    /// tickets itself: it believes the uid the edge verified, see `edge_key`.)
    pub ticket_secrets: Vec<String>,
    pub admin_token: String,
    /// Shared secret the edge sends in `x-seckill-edge-key`; proves the uid header came from the edge.
    pub edge_key: String,
    /// Serve the demo login `POST /api/session`.
    pub demo_login: bool,
    pub ticket_ttl_s: u64,
    /// Bound on every Redis call; a buy the script could not start within it commits nothing.
    pub redis_timeout: Duration,
    /// Extra wait for the reply of a buy script that started within `redis_timeout`.
    pub reply_grace: Duration,
    /// Bound on SRE and background Redis calls (sold-out switch, figures, flags refresh, expiry).
    pub admin_timeout: Duration,
    pub flags_refresh: Duration,
    pub expiry_interval: Duration,
    /// How long a status lookup of a sku missing from the snapshot is cached (negative caching too).
    pub status_cache_ttl: Duration,
    /// Largest request body accepted (bytes).
    pub max_body: usize,
}

impl Settings {
    /// The demo stack's settings against `redis_url`.
    pub fn dev(redis_url: &str) -> Self {
        Settings {
            redis: RedisTarget::Standalone(redis_url.to_owned()),
            durability: Durability::MASTER_ONLY,
            ticket_secrets: vec![demo::TICKET_SECRET.to_owned()],
            admin_token: demo::ADMIN_TOKEN.to_owned(),
            edge_key: demo::EDGE_KEY.to_owned(),
            demo_login: true,
            ticket_ttl_s: 3600,
            redis_timeout: Duration::from_millis(300),
            reply_grace: Duration::from_millis(200),
            admin_timeout: Duration::from_secs(2),
            flags_refresh: Duration::from_millis(50),
            expiry_interval: Duration::from_millis(500),
            status_cache_ttl: Duration::from_millis(500),
            max_body: 16 * 1024,
        }
    }
}
