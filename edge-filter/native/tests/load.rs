//! Step one of the native build, through the real pinned Envoy: the module loads (Envoy logs that
//! its ABI version matched), answers a request itself and passes the others on.

mod common;

use common::*;

#[test]
fn module_loads_and_answers_in_pinned_envoy() {
    let dir = module_dir();
    let (port, admin) = (free_port(), free_port());
    let route = r#"direct_response: {status: 200, body: {inline_string: "origin\n"}}"#;
    let yaml = config(port, admin, &native_filter("seckill_edge", "{}"), "", route);
    let envoy = start("load", &dir, &yaml, port, admin).unwrap_or_else(|log| panic!("Envoy refused the module:\n{log}"));
    let ping = http(port, "GET", "/__seckill_native/ping", &[]);
    assert_eq!((ping.status, ping.body.as_str(), ping.header("x-seckill-native")), (200, "pong\n", Some("1")));
    let other = http(port, "GET", "/anything", &[]);
    assert_eq!((other.status, other.body.as_str()), (200, "origin\n"), "other requests pass through to the route");
    assert!(envoy.log_text().contains("Dynamic module ABI version v0.2.0 matched"), "{}", envoy.log_text());
}
