//! `cargo xtask up` / `down` / `demo`: the stack as background processes.
//!
//! `up` starts Redis (its own port and folder under `target/seckill/stack/`), the origin and Envoy
//! with the filter, waits until each is ready, records their pids in `target/seckill/stack/state`
//! and prints the addresses as `key=value` lines. `down` stops exactly the pids `up` recorded.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use seckill_stack::envoy_proc::{dev_filter_config, EdgeSettings, EnvoyProc};
use seckill_stack::net::http_get;
use seckill_stack::origin_proc::OriginProc;
use seckill_stack::paths;
use seckill_stack::redis_proc::{RedisProc, STACK_FSYNC};

#[derive(clap::Args, Clone)]
pub struct UpArgs {
    /// The public edge (Envoy listener).
    #[arg(long, env = "SECKILL_EDGE_PORT", default_value_t = 10000)]
    pub edge_port: u16,
    /// Envoy's admin.
    #[arg(long, env = "SECKILL_ENVOY_ADMIN_PORT", default_value_t = 9901)]
    pub admin_port: u16,
    #[arg(long, env = "SECKILL_ORIGIN_PORT", default_value_t = 8080)]
    pub origin_port: u16,
    /// The stack's own Redis (never the machine's 6379).
    #[arg(long, env = "SECKILL_REDIS_PORT", default_value_t = 6390)]
    pub redis_port: u16,
    /// Envoy worker threads.
    #[arg(long, default_value_t = 2)]
    pub concurrency: u32,
}

fn state_file() -> PathBuf {
    paths::stack_dir().join("stack").join("state")
}

fn read_state() -> Vec<(String, String)> {
    std::fs::read_to_string(state_file())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn alive(pid: &str) -> bool {
    Command::new("kill").args(["-0", pid]).stderr(std::process::Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

fn secret(var: &str, dev: &str) -> String {
    std::env::var(var).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| dev.to_owned())
}

fn admin_token() -> String {
    secret("SECKILL_ADMIN_TOKEN", "dev-admin-token")
}

fn check_free(port: u16, what: &str, var: &str) -> Result<(), String> {
    TcpListener::bind(("127.0.0.1", port))
        .map(|_| ())
        .map_err(|_| format!("port {port} for the {what} is taken; stop what uses it or set {var}"))
}

/// Copy the sale page into the folder Envoy serves (`target/seckill/site`).
pub fn build_site() -> Result<(), String> {
    let from = paths::workspace().join("static-site/public");
    let to = site_dir();
    std::fs::create_dir_all(&to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    for entry in std::fs::read_dir(&from).map_err(|e| format!("cannot read {}: {e}", from.display()))?.flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).map_err(|e| format!("cannot copy {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub fn site_dir() -> PathBuf {
    paths::stack_dir().join("site")
}

fn print_addresses(state: &[(String, String)]) {
    for key in ["edge", "origin", "envoy_admin", "redis", "page"] {
        if let Some((_, v)) = state.iter().find(|(k, _)| k == key) {
            println!("{key}={v}");
        }
    }
}

pub fn up(args: &UpArgs) -> Result<(), String> {
    let state = read_state();
    if state.iter().any(|(k, v)| k.ends_with("_pid") && alive(v)) {
        eprintln!("xtask: the stack is already up (`cargo xtask down` stops it)");
        print_addresses(&state);
        return Ok(());
    }
    check_free(args.redis_port, "stack's Redis", "SECKILL_REDIS_PORT")?;
    check_free(args.origin_port, "origin", "SECKILL_ORIGIN_PORT")?;
    check_free(args.edge_port, "edge", "SECKILL_EDGE_PORT")?;
    check_free(args.admin_port, "Envoy admin", "SECKILL_ENVOY_ADMIN_PORT")?;
    let dir = paths::stack_dir().join("stack");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    let redis = RedisProc::start(args.redis_port, &dir.join("redis"), STACK_FSYNC).map_err(|e| e.to_string())?;
    let origin_addr = SocketAddr::from(([127, 0, 0, 1], args.origin_port));
    let origin = OriginProc::start(&paths::native_bin("seckill-origin"), origin_addr, &redis.url(), &dir.join("origin.log"))?;
    let auth = format!("Bearer {}", admin_token());
    let ready = (0..100).any(|_| {
        let ok = matches!(http_get(origin_addr, "/readyz", &[("authorization", &auth)], Duration::from_secs(1)), Some((200, _)));
        if !ok {
            std::thread::sleep(Duration::from_millis(50));
        }
        ok
    });
    if !ready {
        return Err(format!("the origin did not become ready; see {}", dir.join("origin.log").display()));
    }
    let envoy_bin = crate::setup::envoy_path()?;
    let settings = EdgeSettings {
        edge_port: args.edge_port,
        admin_port: args.admin_port,
        origin: origin_addr,
        filter_wasm: paths::filter_wasm(),
        filter_config: dev_filter_config(&secret("SECKILL_TICKET_SECRET", "dev-ticket-secret"), &secret("SECKILL_EDGE_KEY", "dev-edge-key"), &[]),
        site_dir: site_dir(),
    };
    let envoy = EnvoyProc::start(&envoy_bin, &settings, &dir, args.concurrency)?;

    let state = vec![
        ("edge".to_owned(), envoy.url()),
        ("origin".to_owned(), origin.url()),
        ("envoy_admin".to_owned(), envoy.admin_url()),
        ("redis".to_owned(), redis.url()),
        ("page".to_owned(), format!("{}/", envoy.url())),
        ("envoy_pid".to_owned(), envoy.detach().unwrap_or(0).to_string()),
        ("origin_pid".to_owned(), origin.detach().unwrap_or(0).to_string()),
        ("redis_pid".to_owned(), redis.detach().unwrap_or(0).to_string()),
    ];
    let text: String = state.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(state_file(), text).map_err(|e| e.to_string())?;
    eprintln!("xtask: stack up (logs in {}; `cargo xtask down` stops it)", dir.display());
    print_addresses(&state);
    Ok(())
}

pub fn down() -> Result<(), String> {
    let state = read_state();
    if state.is_empty() {
        eprintln!("xtask: no stack recorded as up");
        return Ok(());
    }
    // Edge first, so no new requests arrive while the origin drains.
    for key in ["envoy_pid", "origin_pid", "redis_pid"] {
        let Some((_, pid)) = state.iter().find(|(k, _)| k == key) else { continue };
        if !alive(pid) {
            continue;
        }
        let _ = Command::new("kill").args(["-TERM", pid]).status();
        let stopped = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            !alive(pid)
        });
        if !stopped {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = std::fs::remove_file(state_file());
    eprintln!("xtask: stack stopped");
    Ok(())
}

/// `cargo xtask demo`: setup, build, up, then the flash-sale simulator (`seckill-sim run --create`
/// with the default scenario, `tests/sim/scenarios/default.toml`): it creates the demo sale, plays
/// the crowd through the edge, prints the funnel report and writes it to `target/sim/`. It stops
/// the stack afterwards unless `--keep`, or unless the stack was already up when it began.
pub fn demo(keep: bool, args: &UpArgs) -> Result<(), String> {
    crate::setup::setup()?;
    crate::build()?;
    // A stack that is already up (someone's `cargo xtask up`) is used as it is and left running:
    // the demo stops only what it started.
    let was_up = read_state().iter().any(|(k, v)| k.ends_with("_pid") && alive(v));
    up(args)?;
    let state = read_state();
    let addr = |key: &str, port: u16| state.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
    let edge = addr("edge", args.edge_port);
    let origin = addr("origin", args.origin_port);
    let envoy_admin = addr("envoy_admin", args.admin_port);
    let scenario = paths::workspace().join("tests/sim/scenarios/default.toml");
    let result = crate::run(
        Command::new(paths::native_bin("seckill-sim"))
            .args(["run", "--create", "--scenario"])
            .arg(&scenario)
            .args(["--edge", &edge, "--origin", &origin, "--envoy-admin", &envoy_admin]),
    );
    println!("page={edge}/?sku=demo-phone");
    if was_up {
        eprintln!("xtask: the stack was already up before the demo; left running (`cargo xtask down` stops it)");
    } else if keep {
        eprintln!("xtask: the stack keeps running (`cargo xtask down` stops it)");
    } else {
        down()?;
    }
    result
}
