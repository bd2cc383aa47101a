//! `envoy_dynamic_module_on_program_init`: load only into the Envoy whose ABI this module was
//! written against.
//!
//! Envoy 1.40 asks a module for the ABI version it was built with (`v0.2.0` here) but, when the
//! string differs from its own, only logs a warning and loads it anyway; and the dynamic linker
//! binds the module's callbacks lazily, so a callback missing from another Envoy would only fail
//! at its first call, mid-request, taking Envoy down. So the module checks for itself, before
//! anything else runs, that the Envoy loading it exports *exactly* the callback surface of the
//! Envoy it was built for: it reads the `envoy_dynamic_module_callback_*` symbols from the
//! running Envoy's dynamic symbol table (`/proc/self/exe`), and compares their count and an
//! FNV-1a hash of their sorted names with the values recorded for Envoy v1.40.0 (781 callbacks),
//! and checks that every callback it calls is among them. Any difference (an older or newer
//! Envoy, whose `abi.h` necessarily differs) makes it return null: Envoy then refuses the
//! configuration with `Failed to initialize dynamic module: <path>`, after this module's own
//! log line saying why.
//!
//! `SECKILL_NATIVE_BUILT_FOR` (at build time, `<count>:<hash hex>`) overrides the recorded
//! surface: the test uses it to build a module "for another Envoy" and watch the pinned Envoy
//! refuse it.

use std::fs::File;

/// NUL-terminated [`crate::abi::ABI_VERSION`] (checked equal by `check`).
static ABI_VERSION_C: &str = "v0.2.0\0";

/// The Envoy this module was built for.
pub const BUILT_FOR_ENVOY: &str = "1.40.0";
/// Its callback surface: `<count>:<FNV-1a 64 of the sorted names, each followed by \n>`.
const ENVOY_1_40_0_SURFACE: &str = "781:833c4c3f2b6df218";

/// Why the module refuses to load.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("cannot read the running Envoy's symbol table: {0}")]
    Unreadable(String),
    #[error("this Envoy exports the dynamic-module callback surface {found}, but this module was built for Envoy {BUILT_FOR_ENVOY} (ABI {abi}, surface {expected}); rebuild seckill-edge-native against this Envoy's abi.h", abi = crate::abi::ABI_VERSION)]
    Mismatch { found: String, expected: String },
    #[error("this Envoy lacks the callback {0} the module calls")]
    Missing(&'static str),
}

pub fn on_program_init() -> *const u8 {
    match check() {
        Ok(()) => ABI_VERSION_C.as_ptr(),
        Err(e) => {
            let msg = format!("seckill-edge-native refuses to load: {e}");
            eprintln!("{msg}");
            crate::host::log(seckill_edge::Level::Error, &msg);
            std::ptr::null()
        }
    }
}

fn expected_surface() -> &'static str {
    option_env!("SECKILL_NATIVE_BUILT_FOR").unwrap_or(ENVOY_1_40_0_SURFACE)
}

fn check() -> Result<(), Refusal> {
    if ABI_VERSION_C.strip_suffix('\0') != Some(crate::abi::ABI_VERSION) {
        return Err(Refusal::Unreadable("the module's own ABI version string is malformed".into()));
    }
    let mut names = callback_symbols().map_err(|e| Refusal::Unreadable(e.to_string()))?;
    names.sort_unstable();
    names.dedup();
    let found = format!("{}:{:016x}", names.len(), fnv1a(&names));
    if found != expected_surface() {
        return Err(Refusal::Mismatch { found, expected: expected_surface().to_owned() });
    }
    for cb in crate::abi::CALLBACKS {
        if names.binary_search_by(|n| n.as_slice().cmp(cb.as_bytes())).is_err() {
            return Err(Refusal::Missing(cb));
        }
    }
    Ok(())
}

fn fnv1a(names: &[Vec<u8>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in names.iter().flat_map(|n| n.iter().chain(b"\n")) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Names of the defined `envoy_dynamic_module_callback_*` symbols of the running executable.
fn callback_symbols() -> std::io::Result<Vec<Vec<u8>>> {
    crate::parse::callback_symbols(&mut File::open("/proc/self/exe")?)
}
