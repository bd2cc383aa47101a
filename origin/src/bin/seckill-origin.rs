//! `seckill-origin`: the origin service. Configuration by flags or environment; see `--help`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use seckill_origin::redis_conn::RedisTarget;
use seckill_origin::store::Durability;
use seckill_core::demo;
use seckill_origin::settings::Settings;

#[derive(Parser, Debug)]
#[command(name = "seckill-origin", about = "Flash-sale origin: commits stock in Redis, serves the admin API and the edge's flags feed")]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SECKILL_ORIGIN_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Redis URL (the stack's own Redis, not the machine's 6379).
    #[arg(long, env = "SECKILL_REDIS_URL", default_value = "redis://127.0.0.1:6390")]
    redis: String,
    /// A Redis Cluster instead: seed nodes, comma-separated `host:port` (the rest is discovered).
    #[arg(long, env = "SECKILL_REDIS_CLUSTER", conflicts_with = "redis")]
    redis_cluster: Option<String>,
    /// Replicas that must confirm a commit before `won` is answered (a cluster's default: 1;
    /// standalone: 0). Unconfirmed within `--won-wait-ms`: the order is withdrawn, `busy` answered.
    #[arg(long, env = "SECKILL_WON_REPLICAS")]
    won_replicas: Option<u32>,
    /// How long a `won` waits for its replicas, ms (at most the reply grace).
    #[arg(long, env = "SECKILL_WON_WAIT_MS", default_value_t = 150)]
    won_wait_ms: u64,
    /// Ticket secrets, comma-separated; the first mints demo-login tickets.
    #[arg(long, env = "SECKILL_TICKET_SECRET", value_delimiter = ',')]
    ticket_secret: Vec<String>,
    /// Bearer token for the SRE API, /metrics and the health checks.
    #[arg(long, env = "SECKILL_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Shared secret the edge sends in `x-seckill-edge-key`.
    #[arg(long, env = "SECKILL_EDGE_KEY")]
    edge_key: Option<String>,
    /// Demo stack: use the well-known dev secrets for any secret not given.
    #[arg(long, env = "SECKILL_DEV")]
    dev: bool,
    /// Turn off the demo login `POST /api/session` (production sites mint tickets themselves).
    #[arg(long, env = "SECKILL_NO_DEMO_LOGIN")]
    no_demo_login: bool,
    /// Lifetime of demo-login tickets, seconds.
    #[arg(long, default_value_t = 3600)]
    ticket_ttl_s: u64,
    /// Bound on every Redis call, ms. A buy not started by Redis within it commits nothing.
    #[arg(long, env = "SECKILL_REDIS_TIMEOUT_MS", default_value_t = 300)]
    redis_timeout_ms: u64,
    /// Extra wait for the reply of a buy that started in time, ms.
    #[arg(long, default_value_t = 200)]
    reply_grace_ms: u64,
    /// Bound on SRE and background Redis calls (sold-out switch, figures, flags refresh), ms.
    #[arg(long, default_value_t = 2000)]
    admin_timeout_ms: u64,
    /// Flags snapshot refresh period, ms.
    #[arg(long, default_value_t = 50)]
    flags_refresh_ms: u64,
    /// Expiry sweep period, ms.
    #[arg(long, default_value_t = 500)]
    expiry_interval_ms: u64,
    /// How long in-flight requests may take to finish at shutdown, ms.
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

fn secret(given: Option<String>, dev: bool, dev_value: &str, name: &str) -> anyhow::Result<String> {
    match given {
        Some(s) if !s.is_empty() => Ok(s),
        _ if dev => Ok(dev_value.to_owned()),
        _ => bail!("{name} is required (flag or environment), or pass --dev for the demo stack's dev secrets"),
    }
}

fn settings(cli: Cli) -> anyhow::Result<Settings> {
    let mut s = Settings::dev(&cli.redis);
    if let Some(list) = &cli.redis_cluster {
        s.redis = RedisTarget::cluster_from_list(list).context("--redis-cluster / SECKILL_REDIS_CLUSTER")?;
    }
    let cluster = matches!(s.redis, RedisTarget::Cluster(_));
    let replicas = cli.won_replicas.unwrap_or(if cluster { 1 } else { 0 });
    s.durability = Durability { replicas, wait: Duration::from_millis(cli.won_wait_ms) };
    s.ticket_secrets = cli.ticket_secret.into_iter().filter(|x| !x.is_empty()).collect();
    if s.ticket_secrets.is_empty() {
        s.ticket_secrets = vec![secret(None, cli.dev, demo::TICKET_SECRET, "SECKILL_TICKET_SECRET")?];
    }
    s.admin_token = secret(cli.admin_token, cli.dev, demo::ADMIN_TOKEN, "SECKILL_ADMIN_TOKEN")?;
    s.edge_key = secret(cli.edge_key, cli.dev, demo::EDGE_KEY, "SECKILL_EDGE_KEY")?;
    s.demo_login = !cli.no_demo_login;
    s.ticket_ttl_s = cli.ticket_ttl_s;
    s.redis_timeout = Duration::from_millis(cli.redis_timeout_ms.max(1));
    s.reply_grace = Duration::from_millis(cli.reply_grace_ms);
    s.admin_timeout = Duration::from_millis(cli.admin_timeout_ms.max(1));
    s.flags_refresh = Duration::from_millis(cli.flags_refresh_ms.max(1));
    s.expiry_interval = Duration::from_millis(cli.expiry_interval_ms.max(1));
    Ok(s)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let listen = cli.listen;
    let drain = Duration::from_millis(cli.drain_ms);
    let settings = settings(cli)?;
    let redis = settings.redis.describe();
    let app = seckill_origin::App::connect(settings).await.with_context(|| format!("cannot use Redis at {redis}"))?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, redis, durability = ?app.store.durability(), "seckill-origin listening");
    seckill_origin::run(listener, app, shutdown_signal(), drain).await;
    tracing::info!("seckill-origin stopped");
    Ok(())
}
