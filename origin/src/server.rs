//! HTTP routing and handlers: `match (method, path)` in the style of hyper's examples.
//!
//! Three audiences share the port:
//! - shoppers, through the edge (`/api/...`): the buy, `orders/mine` and pay routes believe the uid
//!   only from `x-seckill-uid` next to the edge's secret `x-seckill-edge-key` (constant-time check);
//!   a request sent straight here cannot buy as anyone;
//! - the edge itself (`/edge/flags`, the flags feed), with the same secret;
//! - SREs (`/admin/...`, `/metrics`, `/healthz`, `/readyz`), with the admin token.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::task::JoinHandle;

use seckill_core::challenge::{ChallengeKey, PROOF_HEADER};
use seckill_core::feed::SaleFlags;
use seckill_core::{headers, is_valid_id, ticket, BuyAnswer, Outcome, SaleStatus};

use crate::flags::FlagsSnapshot;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::{BuyResult, PayResult, SaleConfig, Store, StoreError};

pub type Body = Full<Bytes>;

/// Everything a request handler needs. One per origin process.
pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub flags: Arc<FlagsSnapshot>,
    pub metrics: Metrics,
    /// Status of skus not (yet) in the snapshot, `None` = no such sale; single-flight loads and
    /// negative caching, so a flood of unknown skus costs Redis one lookup per sku per TTL.
    status_cache: moka::future::Cache<String, Option<SaleFlags>>,
    /// The sales' proof-of-work challenges, derived from `edge_key` exactly as every edge does.
    challenges: ChallengeKey,
}

impl App {
    /// An app on a standalone Redis (no I/O: it connects when Redis is up). For a cluster, see
    /// [`App::connect`].
    pub fn new(settings: Settings) -> Result<Arc<App>, StoreError> {
        let url = match &settings.redis {
            crate::redis_conn::RedisTarget::Standalone(url) => url.clone(),
            other => return Err(StoreError::Protocol(format!("{} needs App::connect", other.describe()))),
        };
        let store = Store::new(&url, settings.redis_timeout, settings.reply_grace, settings.admin_timeout)?;
        Ok(Self::with_store(settings, store))
    }

    /// An app on `settings.redis`, standalone or cluster; a cluster is reached now (a node list
    /// that reaches none is an error here).
    pub async fn connect(settings: Settings) -> Result<Arc<App>, StoreError> {
        let store = Store::connect(&settings.redis, settings.durability, settings.redis_timeout, settings.reply_grace, settings.admin_timeout).await?;
        Ok(Self::with_store(settings, store))
    }

    fn with_store(settings: Settings, store: Store) -> Arc<App> {
        let status_cache = moka::future::Cache::builder().max_capacity(100_000).time_to_live(settings.status_cache_ttl).build();
        let challenges = ChallengeKey::new(settings.edge_key.as_bytes());
        Arc::new(App { settings, store, flags: Arc::new(FlagsSnapshot::new()), metrics: Metrics::new(), status_cache, challenges })
    }

    /// Start the flags refresher and the expiry sweeper. The caller aborts them at shutdown.
    pub fn spawn_background(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let refresher = {
            let app = self.clone();
            tokio::spawn(async move {
                let flags = app.flags.clone();
                flags
                    .run_refresher(app.store.clone(), app.settings.flags_refresh, |e| {
                        app.metrics.redis_errors.inc();
                        tracing::debug!(error = %e, "flags refresh failed");
                    })
                    .await
            })
        };
        let sweeper = {
            let app = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(app.settings.expiry_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    app.expire_once().await;
                }
            })
        };
        vec![refresher, sweeper]
    }

    /// Expire every overdue unpaid order of every sale. Returns how many expired.
    pub async fn expire_once(&self) -> u64 {
        const BATCH: u32 = 200;
        let skus: Vec<String> = self.flags.get().feed.sales.iter().map(|s| s.sku.clone()).collect();
        let mut total = 0;
        for sku in skus {
            loop {
                match self.store.expire_due(&sku, BATCH).await {
                    Ok((expired, examined)) => {
                        total += expired;
                        self.metrics.orders_expired.inc_by(expired);
                        if expired > 0 {
                            tracing::info!(sku, expired, "unpaid orders expired, units back on sale");
                            self.flags.poke();
                        }
                        if examined < BATCH as u64 {
                            break;
                        }
                    }
                    Err(e) => {
                        self.metrics.redis_errors.inc();
                        tracing::debug!(error = %e, "expiry sweep failed");
                        break;
                    }
                }
            }
        }
        total
    }

    /// The flags of `sku`: from the snapshot, else from Redis through the status cache.
    /// From the sale's start, a sale with a challenge needs the uid's solution to it (`Err`: the
    /// `challenge` answer, with the challenge to solve).
    fn check_proof(&self, flags: &SaleFlags, uid: &str, proof: Option<&str>) -> Result<(), BuyAnswer> {
        let Some(bits) = flags.challenge().filter(|_| crate::now_ms() >= flags.starts_at) else { return Ok(()) };
        self.challenges.check(uid, &flags.sku, flags.starts_at, bits, proof).map_err(|why| {
            let issued = self.challenges.issue(uid, &flags.sku, flags.starts_at, bits);
            BuyAnswer { sku: Some(flags.sku.clone()), ..BuyAnswer::challenge(issued, &why) }
        })
    }

    async fn sale_flags(&self, sku: &str) -> Result<Option<SaleFlags>, StoreError> {
        if let Some(f) = self.flags.get().by_sku.get(sku) {
            return Ok(Some(f.clone()));
        }
        let store = self.store.clone();
        let key = sku.to_owned();
        self.status_cache
            .try_get_with(key.clone(), async move { Ok::<_, StoreError>(store.sale_records(&[key]).await?.pop().map(|r| r.flags)) })
            .await
            .map_err(|e: Arc<StoreError>| StoreError::Protocol(e.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
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

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    json_response(status, &ErrorBody { error: msg })
}

/// A buy answer decided here: the body, the contract status, `x-seckill-by: origin`, and the
/// `x-seckill-outcome` / `x-seckill-order-id` headers the edge learns from.
fn buy_response(answer: &BuyAnswer) -> Response<Body> {
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

fn busy_answer() -> BuyAnswer {
    BuyAnswer { retry_after_ms: Some(1000), ..BuyAnswer::with_error(Outcome::Busy, "the stock store cannot answer now; nothing was committed") }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = json_response(StatusCode::METHOD_NOT_ALLOWED, &BuyAnswer::with_error(Outcome::Invalid, "method not allowed"));
    r.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    r
}

// ---------------------------------------------------------------------------------------------
// Request helpers

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The uid the edge vouches for, or why the request is not believed.
fn edge_uid(app: &App, req: &Request<Incoming>) -> Result<String, &'static str> {
    let key = header(req, headers::EDGE_KEY).ok_or("requests must come through the edge")?;
    if !ct_eq(key, &app.settings.edge_key) {
        return Err("requests must come through the edge");
    }
    let uid = header(req, headers::UID).ok_or("no verified uid from the edge")?;
    if !is_valid_id(uid) {
        return Err("no verified uid from the edge");
    }
    Ok(uid.to_owned())
}

fn is_admin(app: &App, req: &Request<Incoming>) -> bool {
    match ticket::from_authorization(header(req, AUTHORIZATION.as_str())) {
        Ok(token) => ct_eq(token, &app.settings.admin_token),
        Err(_) => false,
    }
}

enum BodyError {
    TooLarge,
    Broken,
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

/// Read and parse a JSON body, or the `400` (or `413`) answer explaining why not.
async fn json_body<T: for<'de> Deserialize<'de>>(req: Request<Incoming>, limit: usize) -> Result<T, Response<Body>> {
    let bytes = match read_body(req, limit).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Err(error(StatusCode::PAYLOAD_TOO_LARGE, &format!("body larger than {limit} bytes"))),
        Err(BodyError::Broken) => return Err(error(StatusCode::BAD_REQUEST, "request body could not be read")),
    };
    serde_json::from_slice(&bytes).map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Routing

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

/// Entry point for every request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if Route::is_sre(&path) && !is_admin(&app, &req) {
        app.metrics.count("admin", "unauthorized");
        return Ok(error(StatusCode::UNAUTHORIZED, "admin token required: Authorization: Bearer <admin token>"));
    }
    let response = match route(req.method(), &path) {
        Route::Buy { sku } => buy(&app, req, sku).await,
        Route::SaleStatus { sku } => sale_status(&app, sku).await,
        Route::MyOrders => my_orders(&app, req).await,
        Route::Pay { order_id } => pay(&app, req, order_id).await,
        Route::Session if app.settings.demo_login => demo_login(&app, req).await,
        Route::FlagsFeed => flags_feed(&app, &req),
        Route::AdminList => admin_list(&app).await,
        Route::AdminPutSale { sku } => admin_put_sale(&app, req, sku).await,
        Route::AdminShow { sku } => admin_show(&app, sku).await,
        Route::AdminSoldOut { sku } => admin_sold_out(&app, req, sku).await,
        Route::AdminChallenge { sku } => admin_challenge(&app, req, sku).await,
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

// ---------------------------------------------------------------------------------------------
// Shopper routes

async fn buy(app: &App, req: Request<Incoming>, sku: &str) -> Response<Body> {
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
        return BuyAnswer::with_error(Outcome::Invalid, "sku must be 1..64 chars of [A-Za-z0-9_-]");
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
            // The edge checked it already; this covers a buy passed on without flags.
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
    let started = Instant::now();
    let result = app.store.buy(sku, &uid).await;
    app.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
    match result {
        Ok(BuyResult::Won { order_id }) => BuyAnswer::won(Outcome::Won, &order_id, sku, &uid),
        Ok(BuyResult::AlreadyWon { order_id }) => BuyAnswer::won(Outcome::AlreadyWon, &order_id, sku, &uid),
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

async fn sale_status(app: &App, sku: &str) -> Response<Body> {
    if !is_valid_id(sku) {
        app.metrics.count("status", "invalid");
        return json_response(StatusCode::BAD_REQUEST, &BuyAnswer::with_error(Outcome::Invalid, "sku must be 1..64 chars of [A-Za-z0-9_-]"));
    }
    match app.sale_flags(sku).await {
        Ok(Some(f)) => {
            app.metrics.count("status", "ok");
            let now = crate::now_ms();
            let status = SaleStatus { sku: f.sku.clone(), state: f.state_at(now), starts_at: f.starts_at, ends_at: f.ends_at, server_time: now };
            let mut r = json_response(StatusCode::OK, &status);
            r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=1"));
            r
        }
        Ok(None) => {
            app.metrics.count("status", "unknown_sku");
            json_response(StatusCode::NOT_FOUND, &BuyAnswer::new(Outcome::UnknownSku))
        }
        Err(_) => {
            app.metrics.count("status", "busy");
            app.metrics.redis_errors.inc();
            let mut r = json_response(StatusCode::SERVICE_UNAVAILABLE, &busy_answer());
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
            r
        }
    }
}

#[derive(Serialize)]
struct MyOrders {
    uid: String,
    orders: Vec<crate::store::OrderView>,
}

async fn my_orders(app: &App, req: Request<Incoming>) -> Response<Body> {
    let uid = match edge_uid(app, &req) {
        Ok(u) => u,
        Err(why) => {
            app.metrics.count("mine", "unauthorized");
            return json_response(StatusCode::UNAUTHORIZED, &BuyAnswer::with_error(Outcome::Unauthorized, why));
        }
    };
    let skus: Vec<String> = app.flags.get().feed.sales.iter().map(|s| s.sku.clone()).collect();
    match app.store.orders_of(&uid, &skus).await {
        Ok(orders) => {
            app.metrics.count("mine", "ok");
            json_response(StatusCode::OK, &MyOrders { uid, orders })
        }
        Err(e) => {
            app.metrics.count("mine", "busy");
            app.metrics.redis_errors.inc();
            tracing::debug!(error = %e, "orders lookup failed");
            let mut r = json_response(StatusCode::SERVICE_UNAVAILABLE, &busy_answer());
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
            r
        }
    }
}

#[derive(Serialize)]
struct PayAnswer<'a> {
    order_id: &'a str,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

async fn pay(app: &App, req: Request<Incoming>, order_id: &str) -> Response<Body> {
    let uid = match edge_uid(app, &req) {
        Ok(u) => u,
        Err(why) => {
            app.metrics.count("pay", "unauthorized");
            return json_response(StatusCode::UNAUTHORIZED, &BuyAnswer::with_error(Outcome::Unauthorized, why));
        }
    };
    match app.store.pay(order_id, &uid).await {
        Ok(PayResult::Paid) => {
            app.metrics.count("pay", "paid");
            json_response(StatusCode::OK, &PayAnswer { order_id, state: "paid", error: None })
        }
        Ok(PayResult::Expired) => {
            app.metrics.count("pay", "expired");
            json_response(StatusCode::CONFLICT, &PayAnswer { order_id, state: "expired", error: Some("the payment window closed; the unit went back on sale") })
        }
        Ok(PayResult::NotFound) => {
            app.metrics.count("pay", "not_found");
            error(StatusCode::NOT_FOUND, "no such order for this uid")
        }
        Err(e) => {
            app.metrics.count("pay", "busy");
            app.metrics.redis_errors.inc();
            tracing::debug!(error = %e, "pay failed");
            let mut r = json_response(StatusCode::SERVICE_UNAVAILABLE, &busy_answer());
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
            r
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    uid: String,
}

#[derive(Serialize)]
struct SessionAnswer {
    uid: String,
    ticket: String,
    /// Unix ms.
    expires_at: u64,
}

async fn demo_login(app: &App, req: Request<Incoming>) -> Response<Body> {
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

// ---------------------------------------------------------------------------------------------
// Edge feed

fn flags_feed(app: &App, req: &Request<Incoming>) -> Response<Body> {
    match header(req, headers::EDGE_KEY) {
        Some(k) if ct_eq(k, &app.settings.edge_key) => {}
        _ => {
            app.metrics.count("flags", "unauthorized");
            return error(StatusCode::UNAUTHORIZED, "the flags feed is for the edge: x-seckill-edge-key required");
        }
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

// ---------------------------------------------------------------------------------------------
// SRE routes (admin token already checked by the router)

fn redis_unavailable(app: &App, e: StoreError) -> Response<Body> {
    app.metrics.redis_errors.inc();
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, &format!("redis unavailable: {e}"));
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
    r
}

async fn admin_show(app: &App, sku: &str) -> Response<Body> {
    app.metrics.count("admin", "show");
    match app.store.figures(sku).await {
        Ok(Some(f)) => json_response(StatusCode::OK, &f),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such sale"),
        Err(e) => redis_unavailable(app, e),
    }
}

async fn admin_list(app: &App) -> Response<Body> {
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

async fn admin_put_sale(app: &App, req: Request<Incoming>, sku: &str) -> Response<Body> {
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
    admin_show(app, sku).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoldOutRequest {
    sold_out: bool,
}

async fn admin_sold_out(app: &App, req: Request<Incoming>, sku: &str) -> Response<Body> {
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
            admin_show(app, sku).await
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

/// `PUT /admin/sales/{sku}/challenge {"bits":N}`: set the difficulty of the sale's challenge
/// (0: none), also while it runs; the feed carries it to every edge.
async fn admin_challenge(app: &App, req: Request<Incoming>, sku: &str) -> Response<Body> {
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
            admin_show(app, sku).await
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "no such sale"),
        Err(e) => redis_unavailable(app, e),
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
        assert_eq!(route(&Method::GET, "/admin/sales"), Route::AdminList);
        assert_eq!(route(&Method::GET, "/api/sales/p-1/orders/x"), Route::NotFound);
        assert_eq!(route(&Method::GET, "//api/sales/p-1"), Route::NotFound);
        assert_eq!(route(&Method::GET, ""), Route::NotFound);
        assert!(Route::is_sre("/admin/anything") && Route::is_sre("/metrics") && !Route::is_sre("/api/sales/x"));
    }

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
