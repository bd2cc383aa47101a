//! The origin of the flash-sale stack.
//!
//! Only requests that can succeed should get here: the edge filter answers bad tickets, closed or
//! sold-out sales, winners and repeats itself. What arrives is committed in Redis by one Lua script
//! per attempt (see [`store`]).
//!
//! Layout (after tokio-rs/mini-redis: thin binaries over this library):
//! - [`settings`]: what the origin is configured with.
//! - [`store`]: every Redis operation, each an atomic Lua script.
//! - [`redis_conn`]: the connection under the store: one Redis, or a Redis Cluster.
//! - [`edges`]: how many edges of a fleet share the sales (for their admission budget).
//! - [`flags`]: the in-memory snapshot behind the edge's flags feed and the public sale status.
//! - [`server`]: HTTP routing (`match (method, path)`), the shopper, edge and SRE endpoints, one
//!   module per concern.
//! - [`metrics`]: Prometheus metrics.
//! - [`client`]: a small HTTP client used by `seckillctl`, the tests and the tools.
//! - [`watch`]: `seckillctl watch`, the SRE's live view of one sale.
//! - [`run`]: serve a listener until a shutdown future resolves, finishing in-flight requests.
//!
//! Binaries: `seckill-origin` (the service) and `seckillctl` (the SRE command line).

pub mod client;
pub mod edges;
pub mod flags;
pub mod metrics;
pub mod redis_conn;
pub mod server;
pub mod settings;
pub mod store;
pub mod watch;

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use server::App;
pub use settings::Settings;

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Serve `listener` with `app` until `shutdown` resolves, then stop accepting, let in-flight
/// requests finish (at most `drain` long) and stop the background tasks.
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>, drain: std::time::Duration) {
    let tasks = app.spawn_background();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).max_buf_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = hyper::service::service_fn(move |req| server::handle(app.clone(), req));
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(?drain, "some connections were still open after the drain period");
    }
    for t in tasks {
        t.abort();
    }
}
