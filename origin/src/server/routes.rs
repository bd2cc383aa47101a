//! Routing: which endpoint a request is for, decided from its method and path alone with one
//! `match (method, path segments)` (pure; fuzzed by `tests/fuzz`'s `origin_request`).

use hyper::Method;

/// Which endpoint a request is for, decided from its method and path alone (pure; fuzzed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Buy { sku: &'a str },
    SaleStatus { sku: &'a str },
    MyOrders,
    Pay { order_id: &'a str },
    Session,
    FlagsFeed,
    AdminList,
    AdminPutSale { sku: &'a str },
    AdminShow { sku: &'a str },
    AdminSoldOut { sku: &'a str },
    AdminChallenge { sku: &'a str },
    Metrics,
    Healthz,
    Readyz,
    /// A known path with another method; the `Allow` header value.
    MethodNotAllowed { allow: &'static str },
    NotFound,
}

impl Route<'_> {
    /// SRE endpoints: the admin token is checked before anything else, so without it even a wrong
    /// method or an unknown admin path answers 401 and reveals nothing.
    pub fn is_sre(path: &str) -> bool {
        let first = path.strip_prefix('/').unwrap_or(path).split('/').next().unwrap_or("");
        matches!(first, "admin" | "metrics" | "healthz" | "readyz")
    }
}

/// Route `method` + `path` (the path without the query string).
pub fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let segments: Vec<&'a str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["api", "sales", sku, "orders"]) => Route::Buy { sku },
        (_, ["api", "sales", _, "orders"]) => Route::MethodNotAllowed { allow: "POST" },
        (&Method::GET, ["api", "sales", sku]) => Route::SaleStatus { sku },
        (_, ["api", "sales", _]) => Route::MethodNotAllowed { allow: "GET" },
        (&Method::GET, ["api", "orders", "mine"]) => Route::MyOrders,
        (_, ["api", "orders", "mine"]) => Route::MethodNotAllowed { allow: "GET" },
        (&Method::POST, ["api", "orders", order_id, "pay"]) => Route::Pay { order_id },
        (_, ["api", "orders", _, "pay"]) => Route::MethodNotAllowed { allow: "POST" },
        (&Method::POST, ["api", "session"]) => Route::Session,
        (_, ["api", "session"]) => Route::MethodNotAllowed { allow: "POST" },
        (&Method::GET, ["edge", "flags"]) => Route::FlagsFeed,
        (&Method::GET, ["admin", "sales"]) => Route::AdminList,
        (&Method::PUT, ["admin", "sales", sku]) => Route::AdminPutSale { sku },
        (&Method::GET, ["admin", "sales", sku]) => Route::AdminShow { sku },
        (&Method::PUT, ["admin", "sales", sku, "sold-out"]) => Route::AdminSoldOut { sku },
        (&Method::PUT, ["admin", "sales", sku, "challenge"]) => Route::AdminChallenge { sku },
        (_, ["admin", "sales"]) => Route::MethodNotAllowed { allow: "GET" },
        (_, ["admin", "sales", _]) => Route::MethodNotAllowed { allow: "GET, PUT" },
        (_, ["admin", "sales", _, "sold-out" | "challenge"]) => Route::MethodNotAllowed { allow: "PUT" },
        (&Method::GET, ["metrics"]) => Route::Metrics,
        (&Method::GET, ["healthz"]) => Route::Healthz,
        (&Method::GET, ["readyz"]) => Route::Readyz,
        (_, ["metrics" | "healthz" | "readyz"]) => Route::MethodNotAllowed { allow: "GET" },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::POST, "/api/sales/p-1/orders"), Route::Buy { sku: "p-1" });
        assert_eq!(route(&Method::GET, "/api/sales/p-1/orders"), Route::MethodNotAllowed { allow: "POST" });
        assert_eq!(route(&Method::GET, "/api/sales/p-1"), Route::SaleStatus { sku: "p-1" });
        assert_eq!(route(&Method::DELETE, "/api/sales/p-1"), Route::MethodNotAllowed { allow: "GET" });
        assert_eq!(route(&Method::POST, "/api/orders/p-1.3/pay"), Route::Pay { order_id: "p-1.3" });
        assert_eq!(route(&Method::PUT, "/admin/sales/p-1/sold-out"), Route::AdminSoldOut { sku: "p-1" });
        assert_eq!(route(&Method::PUT, "/admin/sales/p-1/challenge"), Route::AdminChallenge { sku: "p-1" });
        assert_eq!(route(&Method::GET, "/admin/sales/p-1/challenge"), Route::MethodNotAllowed { allow: "PUT" });
        assert_eq!(route(&Method::GET, "/admin/sales"), Route::AdminList);
        assert_eq!(route(&Method::GET, "/api/sales/p-1/orders/x"), Route::NotFound);
        assert_eq!(route(&Method::GET, "//api/sales/p-1"), Route::NotFound);
        assert_eq!(route(&Method::GET, ""), Route::NotFound);
        assert!(Route::is_sre("/admin/anything") && Route::is_sre("/metrics") && !Route::is_sre("/api/sales/x"));
    }
}
