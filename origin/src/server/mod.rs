//! The origin's HTTP surface, one file per concern, in the style of hyper's examples
//! (`match (method, path)`) and tokio-rs/mini-redis (one module per kind of command):
//!
//! - [`app`]: [`App`], everything a handler needs (settings, store, flags snapshot, metrics) and
//!   the background tasks (flags refresher, expiry sweeper).
//! - [`routes`]: [`route`], which endpoint a request is for, from its method and path alone (pure;
//!   fuzzed).
//! - [`request`]: reading a request: headers, the edge's vouched-for uid, the admin token, bodies.
//! - [`responses`]: building answers: JSON, errors, the buy answer's headers, the one `busy` 503.
//! - [`shopper`]: the shopper routes the edge forwards (`/api/...`): buy, sale status, my orders,
//!   pay, demo login.
//! - [`edge_feed`]: the edge's flags feed (`/edge/flags`).
//! - [`admin`]: the SRE routes (`/admin/...`; `/metrics`, `/healthz`, `/readyz` are answered by
//!   [`handle`] itself).
//!
//! Three audiences share the port:
//! - shoppers, through the edge (`/api/...`): the buy, `orders/mine` and pay routes believe the uid
//!   only from `x-seckill-uid` next to the edge's secret `x-seckill-edge-key` (constant-time check);
//!   a request sent straight here cannot buy as anyone;
//! - the edge itself (`/edge/flags`, the flags feed), with the same secret;
//! - SREs (`/admin/...`, `/metrics`, `/healthz`, `/readyz`), with the admin token, checked in
//!   [`handle`] before routing.

mod admin;
mod app;
mod edge_feed;
mod request;
mod responses;
mod routes;
mod shopper;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

pub use app::App;
pub use request::check_buy_body;
pub use routes::{route, Route};

use responses::{error, json_response, method_not_allowed};

/// The body of every answer: the origin answers from memory, never streams.
pub type Body = Full<Bytes>;

/// Entry point for every request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if Route::is_sre(&path) && !request::is_admin(&app, &req) {
        app.metrics.count("admin", "unauthorized");
        return Ok(error(StatusCode::UNAUTHORIZED, "admin token required: Authorization: Bearer <admin token>"));
    }
    let response = match route(req.method(), &path) {
        Route::Buy { sku } => shopper::buy(&app, req, sku).await,
        Route::SaleStatus { sku } => shopper::sale_status(&app, sku).await,
        Route::MyOrders => shopper::my_orders(&app, req).await,
        Route::Pay { order_id } => shopper::pay(&app, req, order_id).await,
        Route::Session if app.settings.demo_login => shopper::demo_login(&app, req).await,
        Route::FlagsFeed => edge_feed::flags_feed(&app, &req),
        Route::AdminList => admin::list(&app).await,
        Route::AdminPutSale { sku } => admin::put_sale(&app, req, sku).await,
        Route::AdminShow { sku } => admin::show(&app, sku).await,
        Route::AdminSoldOut { sku } => admin::sold_out(&app, req, sku).await,
        Route::AdminChallenge { sku } => admin::challenge(&app, req, sku).await,
        Route::Metrics => {
            let mut r = Response::new(Full::new(Bytes::from(app.metrics.encode())));
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"));
            r
        }
        Route::Healthz => json_response(StatusCode::OK, &serde_json::json!({"status": "alive"})),
        Route::Readyz => match app.store.ping().await {
            Ok(()) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("redis not reachable: {e}")),
        },
        Route::MethodNotAllowed { allow } => method_not_allowed(allow),
        Route::Session | Route::NotFound => error(StatusCode::NOT_FOUND, "no such route"),
    };
    Ok(response)
}
