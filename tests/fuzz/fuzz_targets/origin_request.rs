//! The origin's request parsing: routing, buy bodies, sale configs, order ids. Any input gives a
//! route or a clear error, never a panic; whatever a route extracts is a slice of the path.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seckill_origin::server::{check_buy_body, route, Route};
use seckill_origin::store::{sku_of_order, SaleConfig};

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else { return };
    let method: hyper::Method = METHODS[usize::from(m) % METHODS.len()].parse().expect("known method");
    let path = String::from_utf8_lossy(rest);
    match route(&method, &path) {
        Route::Buy { sku } | Route::SaleStatus { sku } | Route::AdminPutSale { sku } | Route::AdminShow { sku } | Route::AdminSoldOut { sku } => {
            assert!(path.contains(sku) && !sku.contains('/'));
        }
        Route::Pay { order_id } => {
            assert!(!order_id.contains('/'));
            if let Some(sku) = sku_of_order(order_id) {
                assert!(seckill_core::is_valid_id(sku));
            }
        }
        _ => {}
    }
    let _ = Route::is_sre(&path);
    let _ = check_buy_body(rest);
    if let Ok(cfg) = serde_json::from_slice::<SaleConfig>(rest) {
        if cfg.validate().is_ok() {
            assert!(cfg.ends_at > cfg.starts_at && cfg.per_user_limit >= 1);
        }
    }
});
