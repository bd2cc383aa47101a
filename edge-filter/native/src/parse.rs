//! Everything the native glue reads out of what Envoy hands it, as plain functions over bytes:
//! no ABI call and no `unsafe`, so each is unit-tested here and fuzzed
//! (`tests/fuzz/fuzz_targets/native_input.rs`, run by `cargo xtask fuzz`). The hooks only turn
//! Envoy's pointers into byte slices and call these:
//!
//! - the request headers → [`RequestHead`] (`:method`, `:path`, `authorization`, and the names of
//!   the client's `x-seckill-*` headers, which the filter removes);
//! - a response header's value → [`header_text`], and whether an outcome carries an order id
//!   worth reading ([`outcome_is_win`]);
//! - the filter's name and configuration bytes → [`filter_config`];
//! - a feed callout's answer → [`callout_status`] (its `:status`) and [`callout_body`];
//! - the running Envoy's executable → [`callback_symbols`] (the names of the dynamic-module
//!   callbacks it exports, for the ABI rule in `version.rs`).
//!
//! Header names and values are bytes from the network: none of this assumes UTF-8, ASCII or any
//! length, and nothing in it can panic.

use std::io::{Read, Seek, SeekFrom};

use seckill_core::headers;
use seckill_edge::Config;

/// The filter names this module answers to. The second is a test-only variant with one fault
/// (a panic on [`FAULT_PATH`]) used to prove that a bug answers `busy` instead of taking Envoy down.
pub const FILTER_NAME: &str = "seckill_edge";
pub const FAULT_FILTER_NAME: &str = "seckill_edge_test_fault";
pub const FAULT_PATH: &str = seckill_edge::route::TEST_FAULT_PATH;

/// What the filter reads from a request's headers. A value that is not UTF-8 reads as absent
/// (the logic then treats the request as having no such header); the first of repeated headers
/// counts, as in the proxy-wasm build.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub authorization: Option<&'a str>,
    /// The `seckill-proof` header (a solution to the sale's challenge).
    pub proof: Option<&'a str>,
    /// Names of the client's `x-seckill-*` headers (any case), copied: removing one changes the
    /// map the other names point into.
    pub reserved: Vec<Vec<u8>>,
}

/// Read the request headers, given as (name, value) byte pairs in Envoy's order.
pub fn request_head<'a>(list: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> RequestHead<'a> {
    let mut head = RequestHead::default();
    for (name, value) in list {
        // HTTP header names are tokens (ASCII); one that is not UTF-8 cannot be ours.
        let Ok(name) = std::str::from_utf8(name) else { continue };
        if headers::is_reserved(name) {
            head.reserved.push(name.as_bytes().to_vec());
            continue;
        }
        let slot = match name {
            ":method" => &mut head.method,
            ":path" => &mut head.path,
            "authorization" => &mut head.authorization,
            seckill_core::challenge::PROOF_HEADER => &mut head.proof,
            _ => continue,
        };
        if slot.is_none() {
            *slot = std::str::from_utf8(value).ok();
        }
    }
    head
}

/// A response header's value as text (`None` when it is not UTF-8).
pub fn header_text(value: &[u8]) -> Option<String> {
    std::str::from_utf8(value).ok().map(str::to_owned)
}

/// Whether an origin's `x-seckill-outcome` is a win, the only answer whose order id the filter
/// reads (one header read less on every other answer).
pub fn outcome_is_win(outcome: &str) -> bool {
    matches!(outcome.trim(), "won" | "already_won")
}

/// Why a configuration was refused (logged by Envoy's side as a failed filter config).
#[derive(Debug, thiserror::Error)]
pub enum ConfigRefused {
    #[error("unknown filter_name `{0}` (this module implements `seckill_edge`)")]
    UnknownName(String),
    #[error(transparent)]
    Invalid(#[from] seckill_edge::ConfigError),
}

/// A filter configuration as Envoy hands it over: the filter's name and its configuration bytes.
#[derive(Debug)]
pub struct FilterConfig {
    pub cfg: Config,
    /// The test-only variant with a fault ([`FAULT_FILTER_NAME`]).
    pub fault: bool,
}

/// Parse `filter_name` and the configuration JSON (the same JSON as the proxy-wasm build's).
pub fn filter_config(name: &[u8], json: &[u8]) -> Result<FilterConfig, ConfigRefused> {
    let fault = match name {
        n if n == FILTER_NAME.as_bytes() => false,
        n if n == FAULT_FILTER_NAME.as_bytes() => true,
        n => return Err(ConfigRefused::UnknownName(String::from_utf8_lossy(n).into_owned())),
    };
    Ok(FilterConfig { cfg: Config::from_json(json)?, fault })
}

/// `:status` of a callout's answer, from its (name, value) header pairs: the first `:status`
/// that is a number (surrounding whitespace allowed).
pub fn callout_status<'a>(list: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Option<u16> {
    list.into_iter().find_map(|(k, v)| (k == b":status").then(|| std::str::from_utf8(v).ok()?.trim().parse().ok()).flatten())
}

/// A callout's body, from the chunks Envoy hands over, in one buffer.
pub fn callout_body<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for c in chunks {
        body.extend_from_slice(c);
    }
    body
}

/// The prefix of every callback Envoy exports to dynamic modules.
pub const CALLBACK_PREFIX: &[u8] = b"envoy_dynamic_module_callback_";

/// Largest section [`callback_symbols`] reads (Envoy 1.40's `.dynstr` is a few MB).
const MAX_SECTION: u64 = 64 << 20;

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::other(format!("malformed ELF: {what}"))
}

/// `len` bytes at `offset`, refused when they are not all inside the file (`size` bytes).
fn read_at(f: &mut (impl Read + Seek), size: u64, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    if len > MAX_SECTION || offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(bad("section outside the file or too large"));
    }
    let len = usize::try_from(len).map_err(|_| bad("section too large"))?;
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// A section header: (type, file offset, size, link).
fn section_header(sh: &[u8], entsize: u64, i: u64) -> Option<(u32, u64, u64, u32)> {
    let at = usize::try_from(i.checked_mul(entsize)?).ok()?;
    let field = |off: usize| at.checked_add(off);
    Some((u32_at(sh, field(4)?)?, u64_at(sh, field(0x18)?)?, u64_at(sh, field(0x20)?)?, u32_at(sh, field(0x28)?)?))
}

/// Names of the defined `envoy_dynamic_module_callback_*` symbols in an executable's `.dynsym`
/// (ELF64 little-endian, as Envoy's Linux builds are), in table order.
pub fn callback_symbols(f: &mut (impl Read + Seek)) -> std::io::Result<Vec<Vec<u8>>> {
    let size = f.seek(SeekFrom::End(0))?;
    let eh = read_at(f, size, 0, 64)?;
    if eh.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err(bad("not ELF64 little-endian"));
    }
    let shoff = u64_at(&eh, 0x28).ok_or_else(|| bad("e_shoff"))?;
    let shentsize = u64::from(u16_at(&eh, 0x3a).ok_or_else(|| bad("e_shentsize"))?);
    let shnum = u64::from(u16_at(&eh, 0x3c).ok_or_else(|| bad("e_shnum"))?);
    let sh = read_at(f, size, shoff, shentsize.saturating_mul(shnum))?;
    const SHT_DYNSYM: u32 = 11;
    let (_, sym_off, sym_size, link) =
        (0..shnum).filter_map(|i| section_header(&sh, shentsize, i)).find(|s| s.0 == SHT_DYNSYM).ok_or_else(|| bad("no .dynsym"))?;
    let (_, str_off, str_size, _) = section_header(&sh, shentsize, u64::from(link)).ok_or_else(|| bad(".dynsym link"))?;
    let syms = read_at(f, size, sym_off, sym_size)?;
    let strs = read_at(f, size, str_off, str_size)?;
    let mut names = Vec::new();
    for sym in syms.chunks_exact(24) {
        let (Some(name_at), Some(shndx)) = (u32_at(sym, 0), u16_at(sym, 6)) else { continue };
        let Some(rest) = usize::try_from(name_at).ok().and_then(|at| strs.get(at..)) else { continue };
        let name = rest.split(|b| *b == 0).next().unwrap_or_default();
        if shndx != 0 && name.starts_with(CALLBACK_PREFIX) {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests;
