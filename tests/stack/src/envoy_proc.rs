//! Envoy with the edge filter, as a child process: the config rendered from `envoy/edge.yaml.tmpl`.
//!
//! Placeholders in the template: `{{EDGE_ADDR}}` `{{EDGE_PORT}}` `{{ADMIN_PORT}}` `{{ORIGIN_HOST}}`
//! `{{ORIGIN_PORT}}` `{{FILTER_WASM}}` `{{FILTER_CONFIG}}` (the filter's JSON config) `{{SITE_DIR}}`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::{http_get, wait_for_port};

/// What the stack's Envoy is rendered with.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub edge_port: u16,
    pub admin_port: u16,
    pub origin: SocketAddr,
    pub filter_wasm: PathBuf,
    /// The filter's plugin configuration, as JSON text.
    pub filter_config: String,
    pub site_dir: PathBuf,
}

/// The filter config of the demo stack with the given secrets; `extra` adds or overrides fields
/// (e.g. `"window_ms": 1000`).
pub fn dev_filter_config(ticket_secret: &str, edge_key: &str, extra: &[(&str, &str)]) -> String {
    let mut fields = vec![
        ("ticket_secrets".to_owned(), format!("[\"{ticket_secret}\"]")),
        ("edge_key".to_owned(), format!("\"{edge_key}\"")),
    ];
    for (k, v) in extra {
        fields.retain(|(name, _)| name != k);
        fields.push(((*k).to_owned(), (*v).to_owned()));
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

/// Render the stack's Envoy config from the template in `envoy/`.
pub fn render(settings: &EdgeSettings) -> Result<String, String> {
    let template_path = crate::paths::workspace().join("envoy/edge.yaml.tmpl");
    let template = std::fs::read_to_string(&template_path).map_err(|e| format!("cannot read {}: {e}", template_path.display()))?;
    Ok(render_template(&template, settings))
}

/// Fill the placeholders of `template`.
pub fn render_template(template: &str, s: &EdgeSettings) -> String {
    template
        .replace("{{EDGE_ADDR}}", "127.0.0.1")
        .replace("{{EDGE_PORT}}", &s.edge_port.to_string())
        .replace("{{ADMIN_PORT}}", &s.admin_port.to_string())
        .replace("{{ORIGIN_HOST}}", &s.origin.ip().to_string())
        .replace("{{ORIGIN_PORT}}", &s.origin.port().to_string())
        .replace("{{FILTER_WASM}}", &s.filter_wasm.display().to_string())
        .replace("{{FILTER_CONFIG}}", &s.filter_config)
        .replace("{{SITE_DIR}}", &s.site_dir.display().to_string())
}

pub struct EnvoyProc {
    pub edge: SocketAddr,
    pub admin: SocketAddr,
    child: Option<Child>,
}

impl EnvoyProc {
    /// The command line: `--concurrency` workers and a `--base-id` of its own so several Envoys
    /// (a test's and a user's) can run on one machine.
    pub fn command(bin: &Path, config: &Path, concurrency: u32, base_id: u32) -> Command {
        let mut c = Command::new(bin);
        c.arg("-c").arg(config)
            .arg("--concurrency").arg(concurrency.to_string())
            .arg("--base-id").arg(base_id.to_string())
            .args(["--log-level", "warn", "--component-log-level", "wasm:info"])
            .args(["--disable-hot-restart"]);
        c
    }

    /// Render the config into `dir`, start Envoy, wait until its admin says LIVE and the edge listens.
    pub fn start(bin: &Path, settings: &EdgeSettings, dir: &Path, concurrency: u32) -> Result<Self, String> {
        let config = dir.join("envoy.yaml");
        std::fs::write(&config, render(settings)?).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log = dir.join("envoy.log");
        let out = std::fs::File::create(&log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let base_id = settings.edge_port as u32;
        let child = Self::command(bin, &config, concurrency, base_id)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start Envoy {}: {e} (`cargo xtask setup` installs it)", bin.display()))?;
        let mut p = EnvoyProc {
            edge: SocketAddr::from(([127, 0, 0, 1], settings.edge_port)),
            admin: SocketAddr::from(([127, 0, 0, 1], settings.admin_port)),
            child: Some(child),
        };
        if !p.wait_ready(Duration::from_secs(30)) {
            p.kill();
            return Err(format!("Envoy did not become ready; see {}", log.display()));
        }
        Ok(p)
    }

    /// Wait until the admin `/ready` answers 200 and the edge port accepts connections.
    pub fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    return false;
                }
            }
            if let Some((200, _)) = http_get(self.admin, "/ready", &[], Duration::from_millis(500)) {
                return wait_for_port(self.edge, Duration::from_secs(5));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.edge)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// A stat's value from the admin `/stats?format=json&filter=...` is left to callers; this reads
    /// the Prometheus text.
    pub fn prometheus(&self) -> String {
        http_get(self.admin, "/stats/prometheus", &[], Duration::from_secs(5)).map(|(_, b)| b).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Give up ownership: the process keeps running after this handle is gone (`xtask up`).
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }
}

impl Drop for EnvoyProc {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_config_overrides() {
        let c = dev_filter_config("s", "k", &[("window_ms", "1000"), ("edge_key", "\"other\"")]);
        assert_eq!(c, r#"{"ticket_secrets":["s"],"window_ms":1000,"edge_key":"other"}"#);
    }
}
