//! Envoy with the edge filter, as a child process: the config rendered from `envoy/edge.yaml.tmpl`.
//!
//! Placeholders in the template: `{{EDGE_ADDR}}` `{{EDGE_PORT}}` `{{ADMIN_PORT}}`
//! `{{EDGE_FILTER}}` (the seckill filter's entry for either build: `edge_build`) `{{SITE_DIR}}`, and
//! two whole lines, each a comment so the bare template still loads: `# {{SITE_ROUTES}}` becomes
//! `SITE_DIR/routes.yaml`, the sale page's generated asset routes (`cargo xtask build` writes it),
//! and `# {{ORIGIN_ENDPOINTS}}` one endpoint per origin; both indented to the placeholder's column.
//!
//! A fleet's front tier (no filter: it routes `/api/` by the ticket's uid to one edge) is rendered
//! from `envoy/front.yaml.tmpl` by [`render_front`].

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
    /// Every origin behind this edge (Envoy balances them and ejects a dead one).
    pub origins: Vec<SocketAddr>,
    /// The filter module: the proxy-wasm `.wasm` or the native `.so` (`edge_build::EdgeBuild`).
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

/// The filter config the stack runs (`cargo xtask up`, the demo, the fleet tests): the demo
/// secrets given, the start lottery on (clicks in a sale's first two seconds are served in drawn
/// order over the next two, not by reaction time; edge-filter/README.md), and in a fleet the edge's
/// name, so the origins count the edges and each budgets its share.
pub fn stack_filter_config(ticket_secret: &str, edge_key: &str, edge_id: Option<&str>) -> String {
    let id = edge_id.map(|id| format!("\"{id}\""));
    let mut extra = vec![("start_lottery_ms", "2000")];
    if let Some(id) = &id {
        extra.push(("edge_id", id.as_str()));
    }
    dev_filter_config(ticket_secret, edge_key, &extra)
}

/// Render the stack's Envoy config from the template in `envoy/`.
pub fn render(settings: &EdgeSettings) -> Result<String, String> {
    let template_path = crate::paths::workspace().join("envoy/edge.yaml.tmpl");
    let template = std::fs::read_to_string(&template_path).map_err(|e| format!("cannot read {}: {e}", template_path.display()))?;
    Ok(render_template(&template, settings))
}

/// The file, inside the site folder, holding the page's asset routes (written by `build_site`).
pub const SITE_ROUTES_FILE: &str = "routes.yaml";

/// Fill the placeholders of `template`. The line `# {{SITE_ROUTES}}` becomes the asset routes read
/// from `site_dir/routes.yaml`; without that file (a site that has only `index.html`) it stays a
/// comment.
pub fn render_template(template: &str, s: &EdgeSettings) -> String {
    let routes = std::fs::read_to_string(s.site_dir.join(SITE_ROUTES_FILE)).ok();
    let template = replace_line(template, "# {{SITE_ROUTES}}", routes.as_deref());
    let template = replace_line(&template, "# {{ORIGIN_ENDPOINTS}}", Some(&endpoints_yaml(&s.origins)));
    let entry = crate::edge_build::EdgeBuild::of_module(&s.filter_wasm).filter_entry(&s.filter_wasm, &s.filter_config);
    let template = crate::edge_build::place_filter(&template, &entry);
    // Routes first: they name files as `{{SITE_DIR}}/assets/...`.
    template
        .replace("{{EDGE_ADDR}}", "127.0.0.1")
        .replace("{{EDGE_PORT}}", &s.edge_port.to_string())
        .replace("{{ADMIN_PORT}}", &s.admin_port.to_string())
        .replace("{{FILTER_WASM}}", &s.filter_wasm.display().to_string())
        .replace("{{FILTER_CONFIG}}", &s.filter_config)
        .replace("{{SITE_DIR}}", &s.site_dir.display().to_string())
}

/// Replace every line whose trimmed text is `placeholder` by `lines` (each indented to the
/// placeholder's column); with `None` the line stays as it is.
fn replace_line(template: &str, placeholder: &str, lines: Option<&str>) -> String {
    template
        .split_inclusive('\n')
        .map(|line| match (line.trim() == placeholder, lines) {
            (true, Some(lines)) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                lines.lines().map(|r| if r.is_empty() { "\n".to_owned() } else { format!("{indent}{r}\n") }).collect()
            }
            _ => line.to_owned(),
        })
        .collect()
}

/// One `lb_endpoints` entry per address.
fn endpoints_yaml(addrs: &[SocketAddr]) -> String {
    addrs.iter().map(|a| format!("- endpoint:\n    address:\n      socket_address: {{ address: {}, port_value: {} }}\n", a.ip(), a.port())).collect()
}

/// What a fleet's front Envoy is rendered with.
#[derive(Debug, Clone)]
pub struct FrontSettings {
    pub front_port: u16,
    pub admin_port: u16,
    /// The edges (Envoys with the filter) it spreads the shoppers over.
    pub edges: Vec<SocketAddr>,
}

/// Render a fleet's front Envoy config from `envoy/front.yaml.tmpl`.
pub fn render_front(s: &FrontSettings) -> Result<String, String> {
    let path = crate::paths::workspace().join("envoy/front.yaml.tmpl");
    let template = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let template = replace_line(&template, "# {{EDGE_ENDPOINTS}}", Some(&endpoints_yaml(&s.edges)));
    Ok(template.replace("{{FRONT_PORT}}", &s.front_port.to_string()).replace("{{ADMIN_PORT}}", &s.admin_port.to_string()))
}

/// `envoy --mode validate` on a config file: `Err` with Envoy's output when it refuses it.
pub fn validate(bin: &Path, config: &Path) -> Result<(), String> {
    let base_id = crate::net::free_port();
    let out = Command::new(bin)
        .args(["--mode", "validate", "--base-id"])
        .arg(base_id.to_string())
        .arg("-c")
        .arg(config)
        .output()
        .map_err(|e| format!("cannot run Envoy {}: {e}", bin.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(()) } else { Err(text) }
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
        let edge = SocketAddr::from(([127, 0, 0, 1], settings.edge_port));
        let admin = SocketAddr::from(([127, 0, 0, 1], settings.admin_port));
        Self::start_config(bin, &config, edge, admin, &dir.join("envoy.log"), concurrency)
    }

    /// Render a fleet's front config into `dir` as `front.yaml` and start it.
    pub fn start_front(bin: &Path, settings: &FrontSettings, dir: &Path, concurrency: u32) -> Result<Self, String> {
        let config = dir.join("front.yaml");
        std::fs::write(&config, render_front(settings)?).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let front = SocketAddr::from(([127, 0, 0, 1], settings.front_port));
        let admin = SocketAddr::from(([127, 0, 0, 1], settings.admin_port));
        Self::start_config(bin, &config, front, admin, &dir.join("front.log"), concurrency)
    }

    /// Start Envoy on a config file of the caller's (e.g. `envoy/bench.yaml.tmpl` rendered), whose
    /// listener `edge` is waited for, with its admin on `admin`; output goes to `log`.
    pub fn start_config(bin: &Path, config: &Path, edge: SocketAddr, admin: SocketAddr, log: &Path, concurrency: u32) -> Result<Self, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let base_id = u32::from(edge.port());
        let child = Self::command(bin, config, concurrency, base_id)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start Envoy {}: {e} (`cargo xtask setup` installs it)", bin.display()))?;
        let mut p = EnvoyProc { edge, admin, child: Some(child) };
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

    /// A counter or gauge from the admin's `/stats` (exact name, plain text `name: value`), e.g.
    /// `wasmcustom.seckill_edge_feed_updates`.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let (_, body) = http_get(self.admin, &format!("/stats?filter=^{}$", name.replace('.', "\\.")), &[], Duration::from_secs(5))?;
        body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")?.trim().parse().ok())
    }

    /// The admin's stats as Prometheus text.
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

    fn settings(site_dir: PathBuf) -> EdgeSettings {
        EdgeSettings {
            edge_port: 1,
            admin_port: 2,
            origins: vec![SocketAddr::from(([127, 0, 0, 1], 3)), SocketAddr::from(([127, 0, 0, 2], 4))],
            filter_wasm: PathBuf::from("/f.wasm"),
            filter_config: "{}".into(),
            site_dir,
        }
    }

    #[test]
    fn site_routes_replace_their_line_indented() {
        let dir = crate::paths::scratch_dir("render-routes");
        std::fs::write(dir.join(SITE_ROUTES_FILE), "# generated\n- match: { path: \"/assets/a.js\" }\n  direct_response:\n    body: { filename: \"{{SITE_DIR}}/assets/a.js\" }\n").unwrap();
        let template = "# {{SITE_ROUTES}} is replaced below, not here\nroutes:\n  # {{SITE_ROUTES}}\n  - match: { prefix: \"/\" }\n";
        let out = render_template(template, &settings(dir.clone()));
        let expected = format!(
            "# {{{{SITE_ROUTES}}}} is replaced below, not here\nroutes:\n  # generated\n  - match: {{ path: \"/assets/a.js\" }}\n    direct_response:\n      body: {{ filename: \"{}/assets/a.js\" }}\n  - match: {{ prefix: \"/\" }}\n",
            dir.display()
        );
        assert_eq!(out, expected);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_endpoint_per_origin() {
        let template = "      - lb_endpoints:\n        # {{ORIGIN_ENDPOINTS}}\n";
        let out = render_template(template, &settings(PathBuf::from("/nonexistent-site")));
        assert_eq!(
            out,
            "      - lb_endpoints:\n        - endpoint:\n            address:\n              socket_address: { address: 127.0.0.1, port_value: 3 }\n        - endpoint:\n            address:\n              socket_address: { address: 127.0.0.2, port_value: 4 }\n"
        );
    }

    #[test]
    fn without_a_routes_file_the_placeholder_stays_a_comment() {
        let template = "routes:\n  # {{SITE_ROUTES}}\n";
        let out = render_template(template, &settings(PathBuf::from("/nonexistent-site")));
        assert_eq!(out, template);
    }

    #[test]
    fn filter_config_overrides() {
        let c = dev_filter_config("s", "k", &[("window_ms", "1000"), ("edge_key", "\"other\"")]);
        assert_eq!(c, r#"{"ticket_secrets":["s"],"window_ms":1000,"edge_key":"other"}"#);
    }
}
