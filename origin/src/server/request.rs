//! Reading a request: headers, the uid the edge vouches for (constant-time check of its secret),
//! the admin token, and bodies (bounded, JSON-checked).

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use seckill_core::{headers, is_valid_id, ticket};

use super::responses::error;
use super::Body;
use crate::App;

/// The value of header `name`, if present and ASCII.
pub(super) fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Constant-time string equality, for secrets.
pub(super) fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether the request carries the edge's secret.
pub(super) fn from_edge(app: &App, req: &Request<Incoming>) -> bool {
    header(req, headers::EDGE_KEY).is_some_and(|k| ct_eq(k, &app.settings.edge_key))
}

/// The uid the edge vouches for, or why the request is not believed.
pub(super) fn edge_uid(app: &App, req: &Request<Incoming>) -> Result<String, &'static str> {
    if !from_edge(app, req) {
        return Err("requests must come through the edge");
    }
    let uid = header(req, headers::UID).ok_or("no verified uid from the edge")?;
    if !is_valid_id(uid) {
        return Err("no verified uid from the edge");
    }
    Ok(uid.to_owned())
}

/// Whether the request carries the admin token as `Authorization: Bearer <token>`.
pub(super) fn is_admin(app: &App, req: &Request<Incoming>) -> bool {
    match ticket::from_authorization(header(req, AUTHORIZATION.as_str())) {
        Ok(token) => ct_eq(token, &app.settings.admin_token),
        Err(_) => false,
    }
}

/// Why a body could not be read.
pub(super) enum BodyError {
    TooLarge,
    Broken,
}

/// The whole body, at most `limit` bytes.
pub(super) async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

/// Read and parse a JSON body, or the `400` (or `413`) answer explaining why not.
pub(super) async fn json_body<T: for<'de> Deserialize<'de>>(req: Request<Incoming>, limit: usize) -> Result<T, Response<Body>> {
    let bytes = match read_body(req, limit).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Err(error(StatusCode::PAYLOAD_TOO_LARGE, &format!("body larger than {limit} bytes"))),
        Err(BodyError::Broken) => return Err(error(StatusCode::BAD_REQUEST, "request body could not be read")),
    };
    serde_json::from_slice(&bytes).map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
}

/// Check the optional body of a buy: empty, or a JSON object (its fields are ignored). Parsed for
/// real, not skipped, so serde_json's depth limit refuses hostile nesting.
pub fn check_buy_body(body: &[u8]) -> Result<(), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err("body must be a JSON object (or empty)".into()),
        Err(e) => Err(format!("invalid JSON body: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buy_bodies() {
        assert!(check_buy_body(b"").is_ok());
        assert!(check_buy_body(b" \n").is_ok());
        assert!(check_buy_body(b"{\"qty\":1}").is_ok());
        assert!(check_buy_body(b"[]").unwrap_err().contains("object"));
        assert!(check_buy_body(b"{").unwrap_err().contains("invalid JSON"));
        let deep = format!("{}{}", "[".repeat(3000), "]".repeat(3000));
        assert!(check_buy_body(deep.as_bytes()).is_err());
    }
}
