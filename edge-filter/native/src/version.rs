//! `envoy_dynamic_module_on_program_init`: the ABI version this module was written against.

/// NUL-terminated [`crate::abi::ABI_VERSION`].
static ABI_VERSION_C: &str = "v0.2.0\0";

pub fn on_program_init() -> *const u8 {
    ABI_VERSION_C.as_ptr()
}
