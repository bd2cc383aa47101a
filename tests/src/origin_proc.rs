//! The origin for tests: in this process on a free port (fast, and its state is inspectable), or
//! the real `seckill-origin` binary as a child process (for kill/restart faults and `xtask up`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use seckill_origin::{App, Settings};
use tokio::sync::oneshot;

/// An origin running inside the test process. Dropping it shuts it down.
pub struct InProcOrigin {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl InProcOrigin {
    /// Start with `settings` on a free port. Needs a running tokio runtime.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = App::new(settings)?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(seckill_origin::run(listener, app.clone(), async move { let _ = rx.await; }, Duration::from_secs(5)));
        Ok(InProcOrigin { addr, app, stop: Some(tx), task: Some(task) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shut down gracefully and wait for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for InProcOrigin {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The `seckill-origin` binary as a child process.
pub struct OriginProc {
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl OriginProc {
    /// The command line `xtask up` and the fault tests use: dev secrets, given Redis and address.
    pub fn command(bin: &Path, listen: SocketAddr, redis_url: &str) -> Command {
        let mut c = Command::new(bin);
        c.arg("--dev").arg("--listen").arg(listen.to_string()).arg("--redis").arg(redis_url);
        c
    }

    pub fn start(bin: &Path, listen: SocketAddr, redis_url: &str, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = Self::command(bin, listen, redis_url).stdin(Stdio::null()).stdout(out).stderr(err).spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e} (build it with `cargo build -p seckill-origin`)", bin.display()))?;
        let p = OriginProc { addr: listen, child: Some(child) };
        if !crate::net::wait_for_port(listen, Duration::from_secs(15)) {
            anyhow::bail!("seckill-origin did not listen on {listen}; see {}", log.display());
        }
        Ok(p)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait up to `grace` before SIGKILL.
    pub fn terminate(&mut self, grace: Duration) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = std::time::Instant::now() + grace;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OriginProc {
    fn drop(&mut self) {
        self.kill9();
    }
}
