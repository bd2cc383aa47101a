//! The shopper routes the edge forwards (`/api/...`): the buy, the public sale status, my orders,
//! pay, and the demo login. Every Redis failure answers the one `busy` 503 (nothing committed).

use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL};
use hyper::{Request, Response, StatusCode};
use seckill_core::challenge::PROOF_HEADER;
use seckill_core::order::{MyOrders, OrderState, PayAnswer};
use seckill_core::session::{SessionAnswer, SessionRequest};
use seckill_core::{is_valid_id, ticket, BuyAnswer, Outcome};

use super::request::{edge_uid, json_body, read_body, BodyError};
use super::responses::{busy, busy_answer, buy_response, error, json_response};
use super::{check_buy_body, Body};
use crate::store::{BuyResult, PayResult};
use crate::App;

const BAD_SKU: &str = "sku must be 1..64 chars of [A-Za-z0-9_-]";

/// `POST /api/sales/{sku}/orders`.
pub(super) async fn buy(app: &App, req: Request<Incoming>, sku: &str) -> Response<Body> {
    let answer = buy_answer(app, req, sku).await;
    app.metrics.count("buy", answer.outcome.as_str());
    buy_response(&answer)
}

async fn buy_answer(app: &App, req: Request<Incoming>, sku: &str) -> BuyAnswer {
    let uid = match edge_uid(app, &req) {
        Ok(u) => u,
        Err(why) => return BuyAnswer::with_error(Outcome::Unauthorized, why),
    };
    if !is_valid_id(sku) {
        return BuyAnswer::with_error(Outcome::Invalid, BAD_SKU);
    }
    let proof = req.headers().get(PROOF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    match read_body(req, app.settings.max_body).await {
        Ok(b) => {
            if let Err(why) = check_buy_body(&b) {
                return BuyAnswer::with_error(Outcome::Invalid, why);
            }
        }
        Err(BodyError::TooLarge) => return BuyAnswer::with_error(Outcome::Invalid, "request body too large"),
        Err(BodyError::Broken) => return BuyAnswer::with_error(Outcome::Invalid, "request body could not be read"),
    }
    // Unknown skus are answered from memory (negative cache) without a commit attempt.
    match app.sale_flags(sku).await {
        Ok(None) => return BuyAnswer::new(Outcome::UnknownSku),
        Ok(Some(flags)) => {
            if let Err(answer) = app.check_proof(&flags, &uid, proof.as_deref()) {
                return answer;
            }
        }
        Err(e) => {
            app.metrics.redis_errors.inc();
            tracing::debug!(error = %e, "sale lookup failed");
            return busy_answer();
        }
    }
    commit(app, sku, &uid).await
}

/// The commit attempt (one Lua script) and its answer.
async fn commit(app: &App, sku: &str, uid: &str) -> BuyAnswer {
    let started = Instant::now();
    let result = app.store.buy(sku, uid).await;
    app.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
    match result {
        Ok(BuyResult::Won { order_id }) => BuyAnswer::won(Outcome::Won, &order_id, sku, uid),
        Ok(BuyResult::AlreadyWon { order_id }) => BuyAnswer::won(Outcome::AlreadyWon, &order_id, sku, uid),
        Ok(BuyResult::SoldOut) => {
            app.flags.poke();
            BuyAnswer::new(Outcome::SoldOut)
        }
        Ok(BuyResult::NotStarted { starts_at, ends_at }) => {
            BuyAnswer { starts_at: Some(starts_at), ends_at: Some(ends_at), ..BuyAnswer::new(Outcome::NotStarted) }
        }
        Ok(BuyResult::Ended { starts_at, ends_at }) => {
            BuyAnswer { starts_at: Some(starts_at), ends_at: Some(ends_at), ..BuyAnswer::new(Outcome::Ended) }
        }
        Ok(BuyResult::UnknownSku) => BuyAnswer::new(Outcome::UnknownSku),
        Ok(BuyResult::Late) => {
            app.metrics.redis_errors.inc();
            busy_answer()
        }
        Err(e) => {
            app.metrics.redis_errors.inc();
            tracing::warn!(error = %e, sku, "buy failed: answering busy");
            busy_answer()
        }
    }
}

/// `GET /api/sales/{sku}`: the public status, cacheable for a second.
pub(super) async fn sale_status(app: &App, sku: &str) -> Response<Body> {
    if !is_valid_id(sku) {
        app.metrics.count("status", "invalid");
        return json_response(StatusCode::BAD_REQUEST, &BuyAnswer::with_error(Outcome::Invalid, BAD_SKU));
    }
    match app.sale_flags(sku).await {
        Ok(Some(f)) => {
            app.metrics.count("status", "ok");
            let now = crate::now_ms();
            let mut r = json_response(StatusCode::OK, &f.status(now));
            r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=1"));
            r
        }
        Ok(None) => {
            app.metrics.count("status", "unknown_sku");
            json_response(StatusCode::NOT_FOUND, &BuyAnswer::new(Outcome::UnknownSku))
        }
        Err(_) => {
            app.metrics.count("status", "busy");
            busy(app)
        }
    }
}

/// The answer to `route` from a request whose uid the edge does not vouch for.
fn unauthorized(app: &App, route: &'static str, why: &str) -> Response<Body> {
    app.metrics.count(route, "unauthorized");
    json_response(StatusCode::UNAUTHORIZED, &BuyAnswer::with_error(Outcome::Unauthorized, why))
}

/// `GET /api/orders/mine`.
pub(super) async fn my_orders(app: &App, req: Request<Incoming>) -> Response<Body> {
    let uid = match edge_uid(app, &req) {
        Ok(u) => u,
        Err(why) => return unauthorized(app, "mine", why),
    };
    let skus: Vec<String> = app.flags.get().feed.sales.iter().map(|s| s.sku.clone()).collect();
    match app.store.orders_of(&uid, &skus).await {
        Ok(orders) => {
            app.metrics.count("mine", "ok");
            json_response(StatusCode::OK, &MyOrders { uid, orders })
        }
        Err(e) => {
            app.metrics.count("mine", "busy");
            tracing::debug!(error = %e, "orders lookup failed");
            busy(app)
        }
    }
}

/// `POST /api/orders/{order_id}/pay`.
pub(super) async fn pay(app: &App, req: Request<Incoming>, order_id: &str) -> Response<Body> {
    let uid = match edge_uid(app, &req) {
        Ok(u) => u,
        Err(why) => return unauthorized(app, "pay", why),
    };
    match app.store.pay(order_id, &uid).await {
        Ok(PayResult::Paid) => {
            app.metrics.count("pay", "paid");
            json_response(StatusCode::OK, &PayAnswer { order_id: order_id.to_owned(), state: OrderState::Paid, error: None })
        }
        Ok(PayResult::Expired) => {
            app.metrics.count("pay", "expired");
            let why = "the payment window closed; the unit went back on sale";
            json_response(StatusCode::CONFLICT, &PayAnswer { order_id: order_id.to_owned(), state: OrderState::Expired, error: Some(why.into()) })
        }
        Ok(PayResult::NotFound) => {
            app.metrics.count("pay", "not_found");
            error(StatusCode::NOT_FOUND, "no such order for this uid")
        }
        Err(e) => {
            app.metrics.count("pay", "busy");
            tracing::debug!(error = %e, "pay failed");
            busy(app)
        }
    }
}

/// `POST /api/session` (demo login only): a ticket for any valid uid.
pub(super) async fn demo_login(app: &App, req: Request<Incoming>) -> Response<Body> {
    let body: SessionRequest = match json_body(req, 1024).await {
        Ok(b) => b,
        Err(r) => {
            app.metrics.count("session", "invalid");
            return r;
        }
    };
    let expires_s = crate::now_ms() / 1000 + app.settings.ticket_ttl_s;
    let secret = app.settings.ticket_secrets.first().map(String::as_bytes).unwrap_or_default();
    match ticket::mint(secret, &body.uid, expires_s) {
        Ok(t) => {
            app.metrics.count("session", "ok");
            json_response(StatusCode::OK, &SessionAnswer { uid: body.uid, ticket: t, expires_at: expires_s * 1000 })
        }
        Err(e) => {
            app.metrics.count("session", "invalid");
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}
