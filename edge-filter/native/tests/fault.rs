//! A bug in the native module must cost one request, not Envoy: every hook runs under
//! `catch_unwind`. The test-only filter name `seckill_edge_test_fault` panics on
//! `/__seckill_test/panic`; through the real Envoy that request gets the contract's `busy` 503 and
//! Envoy goes on answering (the next requests are decided as usual).

mod common;

use common::*;

const CONFIG: &str = r#"{"ticket_secrets":["s"],"edge_key":"k","origin_cluster":"origin"}"#;

#[test]
fn a_panic_answers_busy_and_envoy_keeps_serving() {
    let dir = module_dir();
    let (port, admin) = (free_port(), free_port());
    let route = r#"direct_response: {status: 200, body: {inline_string: "origin\n"}}"#;
    let yaml = config(port, admin, &native_filter("seckill_edge_test_fault", CONFIG), "", route);
    let envoy = start("fault", &dir, &yaml, port, admin).unwrap_or_else(|log| panic!("Envoy refused the module:\n{log}"));
    for _ in 0..3 {
        let r = http(port, "GET", "/__seckill_test/panic", &[]);
        assert_eq!((r.status, r.header("x-seckill-by"), r.header("x-seckill-outcome"), r.header("retry-after")), (503, Some("edge"), Some("busy"), Some("1")), "{r:?}");
        assert!(r.body.contains(r#""outcome":"busy""#) && r.body.contains(r#""retry_after_ms":1000"#), "{r:?}");
        let buy = http(port, "POST", "/api/sales/s1/orders", &[]);
        assert_eq!((buy.status, buy.header("x-seckill-outcome")), (401, Some("unauthorized")), "Envoy still serves and decides: {buy:?}");
    }
    assert!(envoy.log_text().contains("panic in on_http_filter_request_headers caught"), "{}", envoy.log_text());
}
