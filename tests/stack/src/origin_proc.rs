//! The `seckill-origin` binary as a child process: for `cargo xtask up` and the fault tests that
//! kill and restart it.

use std::net::SocketAddr;
use std::path::Path;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

    pub fn start(bin: &Path, listen: SocketAddr, redis_url: &str, log: &Path) -> Result<Self, String> {
        Self::start_on(bin, listen, &["--redis", redis_url], log)
    }

    /// Start with the given Redis flags (`--redis URL` or `--redis-cluster NODES`), dev secrets.
    pub fn start_on(bin: &Path, listen: SocketAddr, redis_flags: &[&str], log: &Path) -> Result<Self, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("--dev").arg("--listen").arg(listen.to_string()).args(redis_flags);
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e} (build it with `cargo build --release -p seckill-origin`)", bin.display()))?;
        let p = OriginProc { addr: listen, child: Some(child) };
        if !crate::net::wait_for_port(listen, Duration::from_secs(15)) {
            return Err(format!("seckill-origin did not listen on {listen}; see {}", log.display()));
        }
        Ok(p)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Give up ownership: the process keeps running after this handle is gone (`xtask up`).
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
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
