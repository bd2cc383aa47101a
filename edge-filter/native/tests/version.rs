//! The ABI rule: the module loads only into the Envoy whose dynamic-module ABI it was built for.
//! Envoy 1.40 itself only *warns* when a module reports another ABI version, so the module checks
//! the running Envoy's callback surface in `envoy_dynamic_module_on_program_init` (`version.rs`).
//! Here a module built "for another Envoy" (`SECKILL_NATIVE_BUILT_FOR` at build time, in a target
//! directory of its own) is refused by the pinned Envoy with a message naming both.

mod common;

use common::*;

#[test]
fn a_module_built_for_another_envoy_refuses_to_load() {
    let other = target_dir().join("native-abi-test");
    let dir = build_module(&[("SECKILL_NATIVE_BUILT_FOR", "780:0123456789abcdef")], &other);
    let (port, admin) = (free_port(), free_port());
    let route = r#"direct_response: {status: 200, body: {inline_string: "origin\n"}}"#;
    let cfg = r#"{"ticket_secrets":["s"],"edge_key":"k"}"#;
    let yaml = config(port, admin, &native_filter("seckill_edge", cfg), "", route);
    let log = match start("abi", &dir, &yaml, port, admin) {
        Ok(envoy) => panic!("Envoy loaded a module built for another ABI:\n{}", envoy.log_text()),
        Err(log) => log,
    };
    assert!(log.contains("seckill-edge-native refuses to load"), "{log}");
    assert!(log.contains("this module was built for Envoy 1.40.0 (ABI v0.2.0, surface 780:0123456789abcdef)"), "{log}");
    assert!(log.contains("this Envoy exports the dynamic-module callback surface 781:833c4c3f2b6df218"), "{log}");
    assert!(log.contains("Failed to initialize dynamic module"), "Envoy refuses the configuration: {log}");
}
