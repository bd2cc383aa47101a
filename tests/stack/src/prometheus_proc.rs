//! A real Prometheus (Debian's `prometheus`, installed by `cargo xtask setup`) as a child process,
//! scraping the stack: every Envoy's `/stats/prometheus` (job `edge`) and every origin's `/metrics`
//! (job `origin`), with the rules in `envoy/monitoring/rules/`. Used by `cargo xtask up
//! --monitoring` and by the dashboard test, so the Prometheus an SRE runs locally is the one tested.
//!
//! It takes a plain list of scrape targets, so a stack of any shape (one Envoy, a fleet) can use it.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::http_get;

/// Debian's Prometheus server binary (`PROMETHEUS_BIN` overrides it).
pub fn prometheus_bin() -> PathBuf {
    std::env::var_os("PROMETHEUS_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"))
}

/// What Prometheus scrapes.
#[derive(Debug, Clone)]
pub struct ScrapeTargets {
    /// Every Envoy's admin address (`/stats/prometheus`).
    pub edges: Vec<SocketAddr>,
    /// Every origin's address (`/metrics`).
    pub origins: Vec<SocketAddr>,
    /// The admin token the origins' `/metrics` need.
    pub origin_token: String,
    /// Scrape and rule-evaluation interval, whole seconds (at least 1).
    pub interval_s: u32,
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
}

/// Fill `envoy/monitoring/prometheus.yml.tmpl`'s placeholders.
pub fn render_config(template: &str, targets: &ScrapeTargets, token_file: &Path) -> String {
    let rules = crate::paths::workspace().join("envoy/monitoring/rules");
    template
        .replace("{{SCRAPE_INTERVAL}}", &format!("{}s", targets.interval_s.max(1)))
        .replace("{{RULES_DIR}}", &rules.display().to_string())
        .replace("{{EDGE_TARGETS}}", &list(&targets.edges))
        .replace("{{ORIGIN_TARGETS}}", &list(&targets.origins))
        .replace("{{ORIGIN_TOKEN_FILE}}", &token_file.display().to_string())
}

pub struct PrometheusProc {
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl PrometheusProc {
    /// Render the config into `dir`, start Prometheus listening on `listen` with its data in
    /// `dir/data`, and wait until `/-/ready` answers 200.
    pub fn start(listen: SocketAddr, targets: &ScrapeTargets, dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let template_path = crate::paths::workspace().join("envoy/monitoring/prometheus.yml.tmpl");
        let template = std::fs::read_to_string(&template_path).map_err(|e| format!("cannot read {}: {e}", template_path.display()))?;
        let token_file = dir.join("origin-token");
        write_private(&token_file, &targets.origin_token)?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, render_config(&template, targets, &token_file)).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let bin = prometheus_bin();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--storage.tsdb.retention.time=2d")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e} (`cargo xtask setup` installs Debian's prometheus)", bin.display()))?;
        let mut p = PrometheusProc { addr: listen, child: Some(child) };
        if !p.wait_ready(Duration::from_secs(30)) {
            p.kill();
            return Err(format!("Prometheus did not become ready on {listen}; see {}", log.display()));
        }
        Ok(p)
    }

    fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            if let Some((200, _)) = http_get(self.addr, "/-/ready", &[], Duration::from_millis(500)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Give up ownership: the process keeps running after this handle is gone (`xtask up`).
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrometheusProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// For `cargo xtask up --monitoring`: start Prometheus on `port` scraping `edges` (Envoy admin
/// addresses) and `origins` every 5 s, detached, with its files in `dir`. Returns the `key=value`
/// entries `up` records: `prometheus=URL` and `prometheus_pid=PID`.
pub fn start_detached(port: u16, edges: &[SocketAddr], origins: &[SocketAddr], origin_token: &str, dir: &Path) -> Result<Vec<(String, String)>, String> {
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    if std::net::TcpListener::bind(listen).is_err() {
        return Err(format!("port {port} for Prometheus is taken; stop what uses it or set SECKILL_PROMETHEUS_PORT"));
    }
    let targets = ScrapeTargets { edges: edges.to_vec(), origins: origins.to_vec(), origin_token: origin_token.to_owned(), interval_s: 5 };
    let p = PrometheusProc::start(listen, &targets, dir)?;
    let url = p.url();
    Ok(vec![("prometheus".to_owned(), url), ("prometheus_pid".to_owned(), p.detach().unwrap_or(0).to_string())])
}

/// Write a secret readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let template = std::fs::read_to_string(crate::paths::workspace().join("envoy/monitoring/prometheus.yml.tmpl")).unwrap();
        let targets = ScrapeTargets {
            edges: vec!["127.0.0.1:9901".parse().unwrap(), "127.0.0.1:9902".parse().unwrap()],
            origins: vec!["127.0.0.1:8080".parse().unwrap()],
            origin_token: "t".into(),
            interval_s: 2,
        };
        let out = render_config(&template, &targets, Path::new("/x/token"));
        let body: String = out.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
        assert!(!body.contains("{{"), "a placeholder is left:\n{body}");
        assert!(body.contains("targets: ['127.0.0.1:9901', '127.0.0.1:9902']"), "{body}");
        assert!(body.contains("targets: ['127.0.0.1:8080']"), "{body}");
        assert!(body.contains("credentials_file: /x/token"), "{body}");
        assert!(body.contains("scrape_interval: 2s"), "{body}");
    }
}
