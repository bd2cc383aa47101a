//! Which build of the edge filter an Envoy loads: the proxy-wasm module (the default: what Istio
//! and Envoy Gateway load) or the native Envoy dynamic module (`edge-filter/native`, plain Envoy
//! 1.40.0 only). One logic, two glues; see `edge-filter/README.md`.
//!
//! The stack's template has one placeholder for it, `{{EDGE_FILTER}}`: the whole `http_filters`
//! entry of the seckill filter, rendered here by [`EdgeBuild::filter_entry`] for the module a
//! caller passes (`EdgeSettings::filter_wasm`, which names either build's file: a `.so` is the
//! native build). Tests pick the build with `SECKILL_EDGE_BUILD=wasm|native`, `cargo xtask up` with
//! `--edge-build wasm|native`.

use std::path::{Path, PathBuf};

/// The environment variable the test rigs read ([`EdgeBuild::from_env`]).
pub const ENV: &str = "SECKILL_EDGE_BUILD";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EdgeBuild {
    /// `seckill_edge_filter.wasm`, `envoy.filters.http.wasm` (V8).
    #[default]
    Wasm,
    /// `libseckill_edge_native.so`, `envoy.filters.http.dynamic_modules`.
    Native,
}

impl EdgeBuild {
    pub fn parse(s: &str) -> Result<EdgeBuild, String> {
        match s.trim() {
            "wasm" => Ok(EdgeBuild::Wasm),
            "native" => Ok(EdgeBuild::Native),
            other => Err(format!("unknown edge build `{other}` (wasm or native)")),
        }
    }

    /// `SECKILL_EDGE_BUILD`, wasm when unset.
    pub fn from_env() -> Result<EdgeBuild, String> {
        match std::env::var(ENV) {
            Ok(v) if !v.trim().is_empty() => EdgeBuild::parse(&v),
            _ => Ok(EdgeBuild::Wasm),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeBuild::Wasm => "wasm",
            EdgeBuild::Native => "native",
        }
    }

    /// The build a module file is (`.so` → native).
    pub fn of_module(path: &Path) -> EdgeBuild {
        match path.extension().and_then(|e| e.to_str()) {
            Some("so") => EdgeBuild::Native,
            _ => EdgeBuild::Wasm,
        }
    }

    /// Where `cargo xtask build` leaves this build's module.
    pub fn module(self) -> PathBuf {
        match self {
            EdgeBuild::Wasm => crate::paths::filter_wasm(),
            EdgeBuild::Native => crate::paths::native_module(),
        }
    }

    /// The seckill filter's `http_filters` entry (a YAML list item, unindented) loading `module`
    /// with `config` (one line of JSON). The native build uses the stat namespace `wasmcustom`,
    /// so both builds publish the same stat names (`wasmcustom.seckill_edge_*`).
    pub fn filter_entry(self, module: &Path, config: &str) -> String {
        let module = module.display();
        match self {
            EdgeBuild::Wasm => format!(
                r#"- name: envoy.filters.http.wasm
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: seckill_edge
      root_id: seckill_edge
      # If the VM ever fails, reload it rather than serving without the filter.
      failure_policy: FAIL_RELOAD
      vm_config:
        vm_id: seckill_edge
        runtime: envoy.wasm.runtime.v8
        allow_precompiled: true
        code:
          local:
            filename: "{module}"
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: |
          {config}
"#
            ),
            EdgeBuild::Native => format!(
                r#"- name: envoy.filters.http.dynamic_modules
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
    dynamic_module_config:
      module: {{ local: {{ filename: "{module}" }} }}
      # The module runs a thread of its own and thread-local state: never unload it.
      do_not_close: true
      metrics_namespace: wasmcustom
    filter_name: seckill_edge
    filter_config:
      "@type": type.googleapis.com/google.protobuf.StringValue
      value: |
        {config}
"#
            ),
        }
    }
}

/// Replace each line `{{EDGE_FILTER}}` of `template` by `entry`, indented to that line's column.
pub fn place_filter(template: &str, entry: &str) -> String {
    place(template, "{{EDGE_FILTER}}", entry)
}

/// Replace each line that is exactly `placeholder` (after its indentation) by `entry`, indented
/// to that line's column.
pub fn place(template: &str, placeholder: &str, entry: &str) -> String {
    template
        .split_inclusive('\n')
        .map(|line| {
            if line.trim() != placeholder {
                return line.to_owned();
            }
            let indent = &line[..line.len() - line.trim_start().len()];
            entry.lines().map(|l| if l.is_empty() { "\n".to_owned() } else { format!("{indent}{l}\n") }).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_default() {
        assert_eq!(EdgeBuild::parse("native"), Ok(EdgeBuild::Native));
        assert_eq!(EdgeBuild::parse("wasm"), Ok(EdgeBuild::Wasm));
        assert!(EdgeBuild::parse("lua").is_err());
        assert_eq!(EdgeBuild::default(), EdgeBuild::Wasm);
        assert_eq!(EdgeBuild::of_module(Path::new("/t/libseckill_edge_native.so")), EdgeBuild::Native);
        assert_eq!(EdgeBuild::of_module(Path::new("/t/seckill_edge_filter.wasm")), EdgeBuild::Wasm);
    }

    #[test]
    fn entry_is_indented_in_place() {
        let t = "a:\n  http_filters:\n  {{EDGE_FILTER}}\n  - name: router\n";
        let out = place_filter(t, &EdgeBuild::Native.filter_entry(Path::new("/m.so"), "{\"x\":1}"));
        assert!(out.contains("\n  - name: envoy.filters.http.dynamic_modules\n    typed_config:\n"), "{out}");
        assert!(out.contains("\n          {\"x\":1}\n"), "{out}");
        assert!(out.ends_with("  - name: router\n"));
    }
}
