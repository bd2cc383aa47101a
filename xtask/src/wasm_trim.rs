//! Trimming the edge filter's exports: the proxy-wasm callbacks it does not implement.
//!
//! The `proxy-wasm` SDK exports every callback of the ABI (`proxy_on_log`, `proxy_on_done`,
//! `proxy_on_response_body`, …) whether the filter overrides it or not, and Envoy calls each
//! exported one on every request: a VM entry of a microsecond or more, to run the SDK's default
//! (do nothing, continue). Envoy skips a callback the module does not export (proxy-wasm-cpp-host
//! checks each function pointer before calling), so removing those exports changes nothing but
//! the cost. [`trim_exports`] rewrites only the export section; code and data are copied as they
//! are.

use wasm_encoder::{ExportKind, ExportSection, Module, RawSection};
use wasmparser::{ExternalKind, Parser, Payload};

/// Callbacks the filter leaves to the SDK's defaults (every one returns "continue" / does
/// nothing), so Envoy need not enter the VM for them. `proxy_on_delete` stays: the SDK frees the
/// stream's context there. `proxy_on_done` goes: its default is "done", which is what Envoy assumes
/// when it is absent.
pub const UNUSED_CALLBACKS: &[&str] = &[
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_log",
    "proxy_on_done",
    "proxy_on_new_connection",
    "proxy_on_downstream_data",
    "proxy_on_downstream_connection_close",
    "proxy_on_upstream_data",
    "proxy_on_upstream_connection_close",
    "proxy_on_queue_ready",
    "proxy_on_grpc_receive_initial_metadata",
    "proxy_on_grpc_receive",
    "proxy_on_grpc_receive_trailing_metadata",
    "proxy_on_grpc_close",
    "proxy_on_foreign_function",
];

/// What [`trim_exports`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub removed: Vec<String>,
    pub kept: usize,
}

/// `module` without the exports named in `drop` (idempotent: trimming again removes nothing).
pub fn trim_exports(module: &[u8], drop: &[&str]) -> Result<(Vec<u8>, Trimmed), String> {
    let mut out = Module::new();
    let mut trimmed = Trimmed::default();
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| format!("not a valid Wasm module: {e}"))?;
        match payload {
            Payload::Version { .. } | Payload::End(_) => {}
            Payload::ExportSection(reader) => {
                let mut exports = ExportSection::new();
                for export in reader {
                    let export = export.map_err(|e| format!("bad export section: {e}"))?;
                    if drop.contains(&export.name) {
                        trimmed.removed.push(export.name.to_owned());
                        continue;
                    }
                    let kind = match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
                        ExternalKind::Table => ExportKind::Table,
                        ExternalKind::Memory => ExportKind::Memory,
                        ExternalKind::Global => ExportKind::Global,
                        ExternalKind::Tag => ExportKind::Tag,
                    };
                    exports.export(export.name, kind, export.index);
                    trimmed.kept += 1;
                }
                out.section(&exports);
            }
            // Code comes as one section, but the parser reports its entries one by one: copy the
            // section whole when it starts and skip the entries.
            Payload::CodeSectionStart { range, .. } => {
                out.section(&RawSection { id: wasm_encoder::SectionId::Code as u8, data: bytes(module, range)? });
            }
            Payload::CodeSectionEntry(_) => {}
            other => {
                if let Some((id, range)) = other.as_section() {
                    out.section(&RawSection { id, data: bytes(module, range)? });
                } else {
                    return Err(format!("unexpected part of a core Wasm module: {other:?}"));
                }
            }
        }
    }
    Ok((out.finish(), trimmed))
}

fn bytes(module: &[u8], range: std::ops::Range<usize>) -> Result<&[u8], String> {
    module.get(range.clone()).ok_or_else(|| format!("truncated Wasm module: section at {range:?} of {} bytes", module.len()))
}

/// Trim the built filter (replacing the file); prints what was removed.
pub fn trim_filter(path: &std::path::Path) -> Result<(), String> {
    let module = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (trimmed, what) = trim_exports(&module, UNUSED_CALLBACKS)?;
    if !what.removed.is_empty() {
        // Through a new file: cargo hard-links the module to its copy under `deps/`, which must
        // stay as cargo built it.
        let tmp = path.with_extension("wasm.trimmed");
        std::fs::write(&tmp, trimmed).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
        eprintln!("xtask: removed {} unused proxy-wasm callbacks from {} (Envoy skips what a module does not export)", what.removed.len(), path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{CodeSection, Function, FunctionSection, Instruction, TypeSection, ValType};

    fn module_with(exports: &[&str]) -> Vec<u8> {
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], [ValType::I32]);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        m.section(&funcs);
        let mut ex = ExportSection::new();
        for name in exports {
            ex.export(name, ExportKind::Func, 0);
        }
        m.section(&ex);
        let mut code = CodeSection::new();
        let mut f = Function::new([]);
        f.instruction(&Instruction::LocalGet(0));
        f.instruction(&Instruction::End);
        code.function(&f);
        m.section(&code);
        m.finish()
    }

    fn export_names(module: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for p in Parser::new(0).parse_all(module) {
            if let Ok(Payload::ExportSection(r)) = p {
                names.extend(r.into_iter().map(|e| e.map(|e| e.name.to_owned()).unwrap_or_default()));
            }
        }
        names
    }

    #[test]
    fn removes_only_the_named_exports_and_keeps_the_module_valid() {
        let before = module_with(&["proxy_on_log", "proxy_on_request_headers", "proxy_on_delete", "proxy_on_response_body"]);
        let (after, what) = trim_exports(&before, UNUSED_CALLBACKS).expect("trim");
        assert_eq!(what.removed, vec!["proxy_on_log", "proxy_on_response_body"]);
        assert_eq!(what.kept, 2);
        assert_eq!(export_names(&after), vec!["proxy_on_request_headers", "proxy_on_delete"]);
        wasmparser::validate(&after).expect("still a valid module");
        // Idempotent.
        let (again, what) = trim_exports(&after, UNUSED_CALLBACKS).expect("trim again");
        assert!(what.removed.is_empty());
        assert_eq!(again, after);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(trim_exports(b"not wasm at all", UNUSED_CALLBACKS).is_err());
        let good = module_with(&["proxy_on_log"]);
        assert!(trim_exports(&good[..good.len() - 3], UNUSED_CALLBACKS).is_err());
    }
}
