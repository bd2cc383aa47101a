//! Building answers: JSON bodies, `{"error": ...}` answers, the buy answer with the headers the
//! edge learns from, and the one `busy` 503 every shopper route gives when Redis cannot answer.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::Serialize;

use seckill_core::{headers, BuyAnswer, Outcome};

use super::Body;
use crate::store::StoreError;
use crate::App;

/// `body` as JSON with `status`, never cached.
pub(super) fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// `{"error": msg}` with `status`.
pub(super) fn error(status: StatusCode, msg: &str) -> Response<Body> {
    json_response(status, &ErrorBody { error: msg })
}

/// A buy answer decided here: the body, the contract status, `x-seckill-by: origin`, and the
/// `x-seckill-outcome` / `x-seckill-order-id` headers the edge learns from.
pub(super) fn buy_response(answer: &BuyAnswer) -> Response<Body> {
    let status = StatusCode::from_u16(answer.outcome.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(status, answer);
    let h = r.headers_mut();
    h.insert(headers::BY, HeaderValue::from_static("origin"));
    h.insert(headers::OUTCOME, HeaderValue::from_static(answer.outcome.as_str()));
    if let Some(id) = answer.order_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
        h.insert(headers::ORDER_ID, id);
    }
    if let Some(ms) = answer.retry_after_ms {
        h.insert(RETRY_AFTER, HeaderValue::from(BuyAnswer::retry_after_header(ms)));
    }
    r
}

/// The `busy` outcome: the stock store cannot answer now, nothing was committed, retry in 1 s.
pub(super) fn busy_answer() -> BuyAnswer {
    BuyAnswer { retry_after_ms: Some(1000), ..BuyAnswer::with_error(Outcome::Busy, "the stock store cannot answer now; nothing was committed") }
}

/// The `busy` 503 of the shopper routes other than the buy (which answers [`busy_answer`] through
/// [`buy_response`]): counts the Redis error, `Retry-After: 1`.
pub(super) fn busy(app: &App) -> Response<Body> {
    app.metrics.redis_errors.inc();
    let mut r = json_response(StatusCode::SERVICE_UNAVAILABLE, &busy_answer());
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
    r
}

/// The SRE routes' 503 when Redis cannot answer: counts the Redis error, names it, `Retry-After: 1`.
pub(super) fn redis_unavailable(app: &App, e: StoreError) -> Response<Body> {
    app.metrics.redis_errors.inc();
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, &format!("redis unavailable: {e}"));
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
    r
}

/// A known path with another method: 405 with `Allow`.
pub(super) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = json_response(StatusCode::METHOD_NOT_ALLOWED, &BuyAnswer::with_error(Outcome::Invalid, "method not allowed"));
    r.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    r
}
