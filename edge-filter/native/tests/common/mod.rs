//! What the native module's Envoy tests share: finding Envoy, building the module, starting
//! Envoy on free loopback ports with a config around the module, and a tiny HTTP/1.1 client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// `ENVOY_BIN`, else the project's `target/tools/envoy-venv` (`cargo xtask setup`).
pub fn envoy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        return PathBuf::from(p);
    }
    let lib = target_dir().join("tools/envoy-venv/lib");
    std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no Envoy binary: set ENVOY_BIN, or run `cargo xtask setup`"))
}

/// Build the module (release, host target) with extra environment, into `target_dir`; returns the
/// directory holding `libseckill_edge_native.so` (for `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`).
pub fn build_module(envs: &[(&str, &str)], target_dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace()).args(["build", "--quiet", "--release", "-p", "seckill-edge-native"]).env("CARGO_TARGET_DIR", target_dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    assert!(cmd.status().expect("run cargo").success(), "building seckill-edge-native failed");
    let dir = target_dir.join("release");
    assert!(dir.join("libseckill_edge_native.so").is_file());
    dir
}

/// The module as `cargo xtask build` leaves it, or built now (`SECKILL_NATIVE_MODULE_DIR` names a
/// directory with a built module).
pub fn module_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SECKILL_NATIVE_MODULE_DIR") {
        return PathBuf::from(p);
    }
    build_module(&[], &target_dir())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A running Envoy (killed on drop) and its log.
pub struct Envoy {
    child: Child,
    pub port: u16,
    pub admin: u16,
    pub log: PathBuf,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Envoy {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Render a listener on `port` whose HTTP filters are `filters` (YAML list items indented by 10
/// spaces) followed by the router; routes `/` to a direct 200 `origin` answer unless `cluster`.
pub fn config(port: u16, admin: u16, filters: &str, clusters: &str, route: &str) -> String {
    format!(
        r#"admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
static_resources:
  listeners:
  - name: l
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          route_config: {{virtual_hosts: [{{name: v, domains: ["*"], routes: [{{match: {{prefix: "/"}}, {route}}}]}}]}}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters: [{clusters}]
"#
    )
}

/// The dynamic-modules filter entry for this module.
pub fn native_filter(filter_name: &str, json: &str) -> String {
    format!(
        r#"          - name: envoy.filters.http.dynamic_modules
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
              dynamic_module_config: {{name: seckill_edge_native, do_not_close: true, metrics_namespace: wasmcustom}}
              filter_name: {filter_name}
              filter_config:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '{json}'"#
    )
}

/// Start Envoy (2 workers) with `yaml`, the module found in `module_dir`; `Err(log)` when it
/// exits or does not listen within 10 s.
pub fn start(name: &str, module_dir: &Path, yaml: &str, port: u16, admin: u16) -> Result<Envoy, String> {
    let dir = std::env::temp_dir().join(format!("seckill-native-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = dir.join("envoy.yaml");
    std::fs::write(&cfg, yaml).expect("write config");
    let log = dir.join("envoy.log");
    let out = std::fs::File::create(&log).expect("log file");
    let child = Command::new(envoy_bin())
        .env("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", module_dir)
        .args(["-c", cfg.to_str().unwrap_or_default(), "--concurrency", "2", "--disable-hot-restart", "-l", "info"])
        .stdout(Stdio::from(out.try_clone().expect("dup")))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("spawn envoy");
    let mut envoy = Envoy { child, port, admin, log };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = envoy.child.try_wait() {
            return Err(envoy.log_text());
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(envoy);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("Envoy did not listen within 10 s:\n{}", envoy.log_text()))
}

/// One HTTP/1.1 answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`).
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: edge\r\nconnection: close\r\ncontent-length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let mut body = String::new();
    let _ = r.read_to_string(&mut body);
    Resp { status, headers, body }
}
