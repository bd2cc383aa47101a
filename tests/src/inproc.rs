//! The origin inside the test process, on a free port: fast, and its state is inspectable.
//! (The `seckill-origin` binary as a child process is `seckill_stack::origin_proc`.)

use std::net::SocketAddr;
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

