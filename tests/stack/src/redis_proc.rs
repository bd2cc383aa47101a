//! A `redis-server` of the project's own: its own port and folder, AOF on, nothing shared with
//! the machine's Redis on 6379. Tests kill it (SIGKILL), pause it (SIGSTOP) and restart it on the
//! same port and data to check what survives.

use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::{ping, wait_for_port};

/// The AOF fsync policy. See the README's "Durability" section for the measured trade-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    EverySec,
}

impl Fsync {
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
        }
    }
}

/// The stack's chosen setting: `always`, so a `won` answer is on disk before it is sent.
pub const STACK_FSYNC: Fsync = Fsync::Always;

#[derive(Debug, thiserror::Error)]
pub enum RedisProcError {
    #[error("cannot start {bin}: {source} (is redis-server installed? `cargo xtask setup` installs it)")]
    Spawn { bin: String, source: std::io::Error },
    #[error("redis-server on port {port} did not become ready; see {log}")]
    NotReady { port: u16, log: String },
}

pub struct RedisProc {
    port: u16,
    dir: PathBuf,
    fsync: Fsync,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisProc {
    /// Start a Redis on `port` keeping its data (AOF) in `dir`.
    pub fn start(port: u16, dir: &Path, fsync: Fsync) -> Result<Self, RedisProcError> {
        Self::start_with(port, dir, fsync, &[])
    }

    /// Start with extra `redis-server` arguments (e.g. `--cluster-enabled yes`).
    pub fn start_with(port: u16, dir: &Path, fsync: Fsync, extra: &[&str]) -> Result<Self, RedisProcError> {
        let mut r = RedisProc { port, dir: dir.to_path_buf(), fsync, extra: extra.iter().map(|s| s.to_string()).collect(), child: None };
        r.spawn()?;
        Ok(r)
    }

    /// Start on a free port in a fresh scratch folder.
    pub fn start_scratch(name: &str) -> Result<Self, RedisProcError> {
        Self::start(crate::net::free_port(), &crate::paths::scratch_dir(name), STACK_FSYNC)
    }

    /// The `redis-server` command line for this instance (also used by `cargo xtask up`).
    pub fn command(port: u16, dir: &Path, fsync: Fsync) -> Command {
        let mut c = Command::new(crate::paths::redis_server());
        c.arg("--port").arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "yes", "--save", "", "--appendonly", "yes"])
            .arg("--appendfsync").arg(fsync.as_str())
            .arg("--dir").arg(dir)
            .arg("--logfile").arg(dir.join("redis.log"))
            .args(["--daemonize", "no"]);
        c
    }

    fn spawn(&mut self) -> Result<(), RedisProcError> {
        let _ = std::fs::create_dir_all(&self.dir);
        let mut cmd = Self::command(self.port, &self.dir, self.fsync);
        cmd.args(&self.extra).process_group(0).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().map_err(|source| RedisProcError::Spawn { bin: crate::paths::redis_server().display().to_string(), source })?;
        self.child = Some(child);
        if !wait_for_port(self.addr(), Duration::from_secs(10)) || !self.ping_ok(Duration::from_secs(10)) {
            return Err(RedisProcError::NotReady { port: self.port, log: self.dir.join("redis.log").display().to_string() });
        }
        Ok(())
    }

    fn ping_ok(&self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            // Loading the AOF after a restart answers -LOADING; wait for a real PONG.
            if ping(self.addr()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
        }
    }

    /// Give up ownership: the process keeps running after this handle is gone (`xtask up`).
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }

    /// SIGKILL: a crash, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port and data folder (replays the AOF).
    pub fn restart(&mut self) -> Result<(), RedisProcError> {
        self.kill9();
        self.spawn()
    }

    /// SIGSTOP: Redis stops answering but keeps its connections (a hung or very slow server).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`RedisProc::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.resume();
        self.kill9();
    }
}
