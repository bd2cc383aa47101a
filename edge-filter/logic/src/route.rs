//! Which of the shopper API's routes a request is, from its method and path.
//!
//! The Envoy listener sends every `/api/` request through the filter; only a few routes get
//! decisions at the edge, the rest are passed on with client `x-seckill-*` headers stripped.

/// The path on which the test-only builds panic on purpose (the proxy-wasm filter built with its
/// `test-fault` feature, the native module's `seckill_edge_test_fault` filter), to prove a dead VM
/// comes back and a native panic answers `busy`. No shipped build acts on it.
pub const TEST_FAULT_PATH: &str = "/__seckill_test/panic";

/// A request as the filter classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /api/sales/{sku}/orders`: a buy (the sku is not validated yet).
    Buy(&'a str),
    /// `GET /api/sales/{sku}`: public sale status.
    SaleStatus(&'a str),
    /// Anything under `/api/orders/` (`GET /api/orders/mine`, `POST /api/orders/{id}/pay`): needs a ticket.
    Ticketed,
    /// `POST /api/session` (demo login): no ticket.
    Session,
    /// Any other `/api/` request.
    OtherApi,
    /// Not under `/api/` (the static page): the filter leaves it alone.
    NotApi,
}

/// Classify `method` + `path` (query string and fragment ignored).
pub fn route<'a>(method: &str, path: &'a str) -> Route<'a> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let Some(rest) = path.strip_prefix("/api/") else { return Route::NotApi };
    let mut parts = rest.split('/');
    let (a, b, c, d) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (a, b, c, d) {
        (Some("sales"), Some(sku), Some("orders"), None) if method == "POST" => Route::Buy(sku),
        (Some("sales"), Some(sku), None, None) if method == "GET" && !sku.is_empty() => Route::SaleStatus(sku),
        (Some("orders"), _, _, _) => Route::Ticketed,
        (Some("session"), None, None, None) => Route::Session,
        _ => Route::OtherApi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("POST", "/api/sales/phone-1/orders"), Route::Buy("phone-1"));
        assert_eq!(route("POST", "/api/sales/phone-1/orders?x=1"), Route::Buy("phone-1"));
        assert_eq!(route("POST", "/api/sales/a.b/orders"), Route::Buy("a.b"));
        assert_eq!(route("GET", "/api/sales/phone-1/orders"), Route::OtherApi);
        assert_eq!(route("POST", "/api/sales/phone-1/orders/"), Route::OtherApi);
        assert_eq!(route("GET", "/api/sales/phone-1"), Route::SaleStatus("phone-1"));
        assert_eq!(route("GET", "/api/sales/phone-1?t=5"), Route::SaleStatus("phone-1"));
        assert_eq!(route("POST", "/api/sales/phone-1"), Route::OtherApi);
        assert_eq!(route("GET", "/api/sales/"), Route::OtherApi);
        assert_eq!(route("GET", "/api/orders/mine"), Route::Ticketed);
        assert_eq!(route("POST", "/api/orders/phone-1.7/pay"), Route::Ticketed);
        assert_eq!(route("DELETE", "/api/orders/x"), Route::Ticketed);
        assert_eq!(route("POST", "/api/session"), Route::Session);
        assert_eq!(route("GET", "/api/other"), Route::OtherApi);
        assert_eq!(route("GET", "/"), Route::NotApi);
        assert_eq!(route("GET", "/assets/app.js"), Route::NotApi);
        assert_eq!(route("GET", "/apix/sales/a"), Route::NotApi);
        assert_eq!(route("GET", ""), Route::NotApi);
    }
}
