//! The SRE routes (`/admin/sales...`): list, show, create or reset a sale, the sold-out switch,
//! the challenge's difficulty.
//! The admin token was already checked by [`super::handle`]; a Redis failure answers
//! [`redis_unavailable`].

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;

use seckill_core::is_valid_id;

use super::request::json_body;
use super::responses::{error, json_response, redis_unavailable};
use super::Body;
use crate::store::SaleConfig;
use crate::App;

/// `GET /admin/sales/{sku}`: the exact figures.
pub(super) async fn show(app: &App, sku: &str) -> Response<Body> {
    app.metrics.count("admin", "show");
    match app.store.figures(sku).await {
        Ok(Some(f)) => json_response(StatusCode::OK, &f),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such sale"),
        Err(e) => redis_unavailable(app, e),
    }
}

/// `GET /admin/sales`: every sale's figures.
pub(super) async fn list(app: &App) -> Response<Body> {
    app.metrics.count("admin", "list");
    let skus = match app.store.skus().await {
        Ok(s) => s,
        Err(e) => return redis_unavailable(app, e),
    };
    let mut sales = Vec::with_capacity(skus.len());
    for sku in skus {
        match app.store.figures(&sku).await {
            Ok(Some(f)) => sales.push(f),
            Ok(None) => {}
            Err(e) => return redis_unavailable(app, e),
        }
    }
    json_response(StatusCode::OK, &serde_json::json!({ "sales": sales }))
}

/// `PUT /admin/sales/{sku}`: create or reset a sale.
pub(super) async fn put_sale(app: &App, req: Request<Incoming>, sku: &str) -> Response<Body> {
    app.metrics.count("admin", "put_sale");
    if !is_valid_id(sku) {
        return error(StatusCode::BAD_REQUEST, "sku must be 1..64 chars of [A-Za-z0-9_-]");
    }
    let cfg: SaleConfig = match json_body(req, app.settings.max_body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(why) = cfg.validate() {
        return error(StatusCode::BAD_REQUEST, &why);
    }
    if let Err(e) = app.store.put_sale(sku, &cfg).await {
        return redis_unavailable(app, e);
    }
    app.status_cache.invalidate(sku).await;
    app.flags.poke();
    tracing::info!(sku, stock = cfg.stock, starts_at = cfg.starts_at, ends_at = cfg.ends_at, "sale created or reset");
    show(app, sku).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoldOutRequest {
    sold_out: bool,
}

/// `PUT /admin/sales/{sku}/sold-out`: the SRE switch.
pub(super) async fn sold_out(app: &App, req: Request<Incoming>, sku: &str) -> Response<Body> {
    app.metrics.count("admin", "sold_out");
    let body: SoldOutRequest = match json_body(req, 1024).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match app.store.set_sold_out(sku, body.sold_out).await {
        Ok(true) => {
            app.status_cache.invalidate(sku).await;
            app.flags.poke();
            tracing::info!(sku, sold_out = body.sold_out, "SRE sold-out switch");
            show(app, sku).await
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "no such sale"),
        Err(e) => redis_unavailable(app, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    bits: u32,
}

/// `PUT /admin/sales/{sku}/challenge {"bits":N}`: the difficulty of the sale's proof-of-work
/// challenge (0: none), also while it runs; the feed carries it to every edge.
pub(super) async fn challenge(app: &App, req: Request<Incoming>, sku: &str) -> Response<Body> {
    app.metrics.count("admin", "challenge");
    let body: ChallengeRequest = match json_body(req, 1024).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(why) = crate::store::check_challenge_bits(body.bits) {
        return error(StatusCode::BAD_REQUEST, &why);
    }
    match app.store.set_challenge(sku, body.bits).await {
        Ok(true) => {
            app.status_cache.invalidate(sku).await;
            app.flags.poke();
            tracing::info!(sku, bits = body.bits, "SRE set the sale's challenge");
            show(app, sku).await
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "no such sale"),
        Err(e) => redis_unavailable(app, e),
    }
}
