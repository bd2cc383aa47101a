//! `cargo xtask oci`: the built edge filter as an OCI image layout, the artifact Istio's
//! `WasmPlugin` and Envoy Gateway's `EnvoyExtensionPolicy` pull from a registry.
//!
//! Why this form: both pull with the same fetcher (Istio's `pkg/wasm/imagefetcher.go`, copied into
//! Envoy Gateway's `internal/wasm/imagefetcher.go`), which takes three forms. The *oci* variant
//! (`application/vnd.module.wasm.content.layer.v1+wasm`) must have exactly two layers; the Docker
//! variant needs a Docker manifest. The one-layer form they accept is the *compat* variant: an
//! OCI manifest with one `application/vnd.oci.image.layer.v1.tar+gzip` layer holding `plugin.wasm`.
//! That is what is written here, reproducibly (mtime 0, uid 0, a stored-deflate gzip), so the same
//! module always gives the same manifest digest, the digest the manifests in `envoy/k8s/` pin.
//!
//! Written with sha2 + serde_json only (no OCI library): tar header, gzip framing and CRC-32 are
//! a few dozen lines. `tests/tests/oci.rs` reads the layout back with `skopeo`.

use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The file name the compat variant requires inside the layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";

#[derive(clap::Args)]
pub struct OciArgs {
    /// The module to package (default: the edge filter `cargo xtask build` makes; given, nothing is built).
    #[arg(long)]
    pub module: Option<PathBuf>,
    /// Where the image layout goes (replaced).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The tag (`org.opencontainers.image.ref.name`) in the layout's index.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub tag: String,
    /// Also write the digest into the README's loading section and the manifests in `envoy/k8s/`.
    #[arg(long)]
    pub pin: bool,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A ustar archive with one regular file `name` (mode 0644, owner 0, mtime 0).
pub fn tar_one(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let mut put = |at: usize, s: &[u8]| h[at..at + s.len()].copy_from_slice(s);
    put(0, name.as_bytes());
    put(100, b"0000644\0");
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{:011o}\0", data.len()).as_bytes());
    put(136, b"00000000000\0");
    put(148, b"        ");
    put(156, b"0");
    put(257, b"ustar\0");
    put(263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// CRC-32 (IEEE), as gzip's trailer needs.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *slot = c;
    }
    !data.iter().fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

/// gzip of `data` with stored (uncompressed) deflate blocks: valid for every gzip reader, no
/// compressor needed, and byte-for-byte reproducible. (A Wasm module compresses little anyway.)
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Write `bytes` as a blob of the layout; returns its OCI descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Result<serde_json::Value, String> {
    let hex = sha256_hex(bytes);
    let path = dir.join("blobs/sha256").join(&hex);
    std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(json!({ "mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len() }))
}

/// Write the image layout of `module` into `dir` (replaced); returns the manifest's digest.
pub fn write_layout(module: &[u8], dir: &Path, tag: &str) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tar = tar_one(PLUGIN_FILE, module);
    let mut layer = blob(dir, LAYER_MEDIA_TYPE, &gzip_stored(&tar))?;
    layer["annotations"] = json!({ "org.opencontainers.image.title": PLUGIN_FILE });
    let config = json!({
        "architecture": "wasm",
        "os": "wasip1",
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&tar))] },
        "config": {},
    });
    let config = blob(dir, CONFIG_MEDIA_TYPE, &serde_json::to_vec(&config).map_err(|e| e.to_string())?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config,
        "layers": [layer],
        "annotations": { "org.opencontainers.image.title": "seckill-edge-filter", "org.opencontainers.image.version": tag },
    });
    let mut manifest_desc = blob(dir, MANIFEST_MEDIA_TYPE, &serde_json::to_vec(&manifest).map_err(|e| e.to_string())?)?;
    manifest_desc["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc] });
    let write = |name: &str, v: &serde_json::Value| {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_vec(v).map_err(|e| e.to_string())?).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write("oci-layout", &json!({ "imageLayoutVersion": "1.0.0" }))?;
    write("index.json", &index)?;
    Ok(manifest_desc["digest"].as_str().unwrap_or_default().to_owned())
}

/// Files whose digest on lines marked `seckill-filter-digest` is rewritten by `--pin`.
pub fn pinned_files() -> Vec<PathBuf> {
    let ws = seckill_stack::paths::workspace();
    vec![ws.join("README.md"), ws.join("envoy/k8s/istio-wasmplugin.yaml"), ws.join("envoy/k8s/envoy-gateway-extensionpolicy.yaml")]
}

/// The byte range of the first run of exactly 64 hex digits in `line`.
fn hex64(line: &str) -> Option<std::ops::Range<usize>> {
    let b = line.as_bytes();
    let mut start = None;
    for i in 0..=b.len() {
        let hex = i < b.len() && b[i].is_ascii_hexdigit();
        match (start, hex) {
            (None, true) => start = Some(i),
            (Some(s), false) if i - s == 64 => return Some(s..i),
            (Some(_), false) => start = None,
            _ => {}
        }
    }
    None
}

/// On every line of `text` containing `marker`, replace the 64-hex digest (bare or after
/// `sha256:`) with the hex of `digest` (`sha256:<hex>`). Returns the text and the lines changed.
pub fn pin_text(text: &str, marker: &str, digest: &str) -> (String, usize) {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let mut changed = 0;
    let out = text
        .split_inclusive('\n')
        .map(|line| match hex64(line) {
            Some(r) if line.contains(marker) => {
                changed += 1;
                format!("{}{hex}{}", &line[..r.start], &line[r.end..])
            }
            _ => line.to_owned(),
        })
        .collect();
    (out, changed)
}

fn pin(digest: &str) -> Result<(), String> {
    for file in pinned_files() {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let (out, n) = pin_text(&text, "seckill-filter-digest", digest);
        if n == 0 {
            return Err(format!("{} has no line marked `seckill-filter-digest` with a sha256 to replace", file.display()));
        }
        std::fs::write(&file, out).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        eprintln!("xtask: pinned {digest} in {} ({n} lines)", file.display());
    }
    Ok(())
}

/// `cargo xtask oci`: (build,) write the layout, print `digest=` and `layout=`, optionally pin.
pub fn oci(args: &OciArgs) -> Result<(), String> {
    let module_path = match &args.module {
        Some(p) => p.clone(),
        None => {
            crate::setup::setup()?;
            crate::build()?;
            seckill_stack::paths::filter_wasm()
        }
    };
    let module = std::fs::read(&module_path).map_err(|e| format!("cannot read {}: {e}", module_path.display()))?;
    let out = args.out.clone().unwrap_or_else(|| seckill_stack::paths::target_dir().join("oci/seckill-edge-filter"));
    let digest = write_layout(&module, &out, &args.tag)?;
    eprintln!("xtask: OCI image layout of {} ({} bytes, sha256:{}) in {}", module_path.display(), module.len(), sha256_hex(&module), out.display());
    eprintln!("xtask: push it with: skopeo copy oci:{}:{} docker://REGISTRY/seckill-edge-filter:{}", out.display(), args.tag, args.tag);
    println!("layout={}", out.display());
    println!("tag={}", args.tag);
    println!("digest={digest}");
    if args.pin {
        pin(&digest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_the_check_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn tar_header_checksum_and_padding() {
        let t = tar_one("plugin.wasm", b"abc");
        assert_eq!(t.len(), 512 + 512 + 1024);
        let stored = u32::from_str_radix(std::str::from_utf8(&t[148..154]).unwrap(), 8).unwrap();
        let mut h = t[..512].to_vec();
        h[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, h.iter().map(|&b| u32::from(b)).sum::<u32>());
    }

    #[test]
    fn gzip_splits_into_stored_blocks() {
        let data = vec![7u8; 70_000];
        let gz = gzip_stored(&data);
        assert_eq!(gz.len(), 10 + 5 + 65_535 + 5 + (70_000 - 65_535) + 8);
        assert_eq!(gz[10], 0, "first block not final");
        assert_eq!(gz[10 + 5 + 65_535], 1, "last block final");
    }

    #[test]
    fn pin_replaces_only_marked_digests() {
        let old = format!("sha256:{}", "a".repeat(64));
        let new = format!("sha256:{}", "b".repeat(64));
        let text = format!("url: x@{old} # seckill-filter-digest\nsha256: {} # seckill-filter-digest\nother: {old}\nshort: {} # seckill-filter-digest\n", "a".repeat(64), "a".repeat(63));
        let (out, n) = pin_text(&text, "seckill-filter-digest", &new);
        assert_eq!(n, 2);
        assert_eq!(out, format!("url: x@{new} # seckill-filter-digest\nsha256: {} # seckill-filter-digest\nother: {old}\nshort: {} # seckill-filter-digest\n", "b".repeat(64), "a".repeat(63)));
    }
}
