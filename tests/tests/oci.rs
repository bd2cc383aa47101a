//! `cargo xtask oci` read back with a real OCI tool: `skopeo` (Debian's, installed by
//! `cargo xtask setup`) inspects the image layout `xtask` writes and copies it out; the one layer's
//! `plugin.wasm`, unpacked by GNU tar, must be byte-identical to the built filter, and the printed
//! digest must be the sha256 of the manifest skopeo reads (the digest the manifests pin).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

/// Run a command; its stdout, or a panic with everything it said.
fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(out.status.success(), "{shown} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cargo xtask oci --module M --out DIR`: the `key=value` lines it printed.
fn xtask_oci(module: &Path, out: &Path) -> Vec<(String, String)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let stdout = run(Command::new(cargo)
        .current_dir(seckill_tests::paths::workspace())
        .args(["run", "--quiet", "-p", "xtask", "--", "oci", "--tag", "test", "--module"])
        .arg(module)
        .arg("--out")
        .arg(out));
    stdout.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn value<'a>(kv: &'a [(String, String)], key: &str) -> &'a str {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("xtask oci printed no {key}=: {kv:?}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn built_filter() -> PathBuf {
    let p = seckill_tests::paths::filter_wasm();
    assert!(p.is_file(), "{} is missing: run `cargo xtask build`", p.display());
    p
}

#[test]
fn skopeo_reads_back_the_module_byte_for_byte() {
    let module_path = built_filter();
    let module = std::fs::read(&module_path).unwrap();
    let dir = seckill_tests::paths::scratch_dir("oci");
    let layout = dir.join("layout");
    let kv = xtask_oci(&module_path, &layout);
    let digest = value(&kv, "digest").to_owned();

    // The manifest skopeo reads is the one whose digest was printed.
    let raw = run(Command::new("skopeo").arg("inspect").arg("--raw").arg(format!("oci:{}:test", layout.display())));
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer: {manifest}");
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");

    // skopeo copies it out (checking every blob against its digest); the layer holds plugin.wasm.
    let copied = dir.join("copied");
    run(Command::new("skopeo").arg("copy").arg("--quiet").arg(format!("oci:{}:test", layout.display())).arg(format!("dir:{}", copied.display())));
    let layer_hex = layers[0]["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let unpacked = dir.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let listing = run(Command::new("tar").arg("-xzvf").arg(copied.join(layer_hex)).arg("-C").arg(&unpacked));
    assert_eq!(listing.trim(), "plugin.wasm", "the layer holds exactly plugin.wasm");
    let plugin = std::fs::read(unpacked.join("plugin.wasm")).unwrap();
    assert!(plugin == module, "plugin.wasm ({} bytes) differs from {} ({} bytes)", plugin.len(), module_path.display(), module.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same module gives the same digest (so a digest pinned in the manifests names one module),
/// and a module differing by one byte gives another.
#[test]
fn the_digest_is_reproducible_and_follows_the_module() {
    let module_path = built_filter();
    let dir = seckill_tests::paths::scratch_dir("oci-repro");
    let a = xtask_oci(&module_path, &dir.join("a"));
    let b = xtask_oci(&module_path, &dir.join("b"));
    assert_eq!(value(&a, "digest"), value(&b, "digest"));
    let mut changed = std::fs::read(&module_path).unwrap();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(dir.join("changed.wasm"), &changed).unwrap();
    let c = xtask_oci(&dir.join("changed.wasm"), &dir.join("c"));
    assert_ne!(value(&a, "digest"), value(&c, "digest"));
    let _ = std::fs::remove_dir_all(&dir);
}
