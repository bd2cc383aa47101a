//! Step one of the native build, through the real pinned Envoy: the module loads (Envoy logs that
//! its ABI version matched and the filter logs its configuration), answers a request itself (a buy
//! without a ticket: `401 unauthorized` from the edge) and passes the others on.

mod common;

use common::*;

pub const CONFIG: &str = r#"{"ticket_secrets":["s"],"edge_key":"k","origin_cluster":"origin"}"#;

#[test]
fn module_loads_and_answers_in_pinned_envoy() {
    let dir = module_dir();
    let (port, admin) = (free_port(), free_port());
    let route = r#"direct_response: {status: 200, body: {inline_string: "origin\n"}}"#;
    let yaml = config(port, admin, &native_filter("seckill_edge", CONFIG), "", route);
    let envoy = start("load", &dir, &yaml, port, admin).unwrap_or_else(|log| panic!("Envoy refused the module:\n{log}"));
    let buy = http(port, "POST", "/api/sales/s1/orders", &[]);
    assert_eq!((buy.status, buy.header("x-seckill-by"), buy.header("x-seckill-outcome")), (401, Some("edge"), Some("unauthorized")), "{buy:?}");
    let other = http(port, "GET", "/anything", &[]);
    assert_eq!((other.status, other.body.as_str()), (200, "origin\n"), "other requests pass through to the route");
    let log = envoy.log_text();
    assert!(log.contains("Dynamic module ABI version v0.2.0 matched"), "{log}");
    assert!(log.contains("seckill edge filter (native) configured"), "{log}");
}
