//! The edge's flags feed (`GET /edge/flags`): the in-memory snapshot of every sale's flags, for
//! requests carrying the edge's secret; each edge's id is heard for the fleet's roster.

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use seckill_core::{headers, is_valid_id};

use super::request::{from_edge, header};
use super::responses::error;
use super::Body;
use crate::App;

/// `GET /edge/flags`.
pub(super) fn flags_feed(app: &App, req: &Request<Incoming>) -> Response<Body> {
    if !from_edge(app, req) {
        app.metrics.count("flags", "unauthorized");
        return error(StatusCode::UNAUTHORIZED, "the flags feed is for the edge: x-seckill-edge-key required");
    }
    if let Some(id) = header(req, headers::EDGE_ID).filter(|id| is_valid_id(id)) {
        app.flags.roster.heard(id);
    }
    let snap = app.flags.get();
    if !snap.loaded {
        // Never hand the edge an empty feed it could mistake for "no sales": it keeps its last one.
        app.metrics.count("flags", "busy");
        return error(StatusCode::SERVICE_UNAVAILABLE, "flags not loaded from redis yet");
    }
    app.metrics.count("flags", "ok");
    let mut r = Response::new(Full::new(snap.json.clone()));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert("x-seckill-feed-version", HeaderValue::from(snap.feed.version));
    r
}
