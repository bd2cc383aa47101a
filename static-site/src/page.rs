//! The sale page's behaviour: a state machine fed with events, each carrying the local `now_ms`.
//!
//! This is the first of the stack's layers that stops the crowd (see the README): the button is
//! off until the start (on the server's clock, see [`ServerClock`]), off while a request is in
//! flight, sends at most one request per throttle window however often it is clicked (the very rule
//! the edge applies, [`seckill_core::throttle::decide`]), and after `throttled` or `busy` stays off
//! for `Retry-After`. Nothing here touches the DOM or the network: the shell (`app.js`, through
//! the wasm-bindgen layer in `web.rs`) performs the requests, reports their answers here, and
//! draws the [`View`]. So every rule is a plain function of its inputs, unit-tested natively.

use serde::Serialize;

use seckill_core::order::{MyOrders, OrderState, PayAnswer};
use seckill_core::sale::{sold_out_now, state_at, SaleState, SaleStatus};
use seckill_core::session::{SessionAnswer, SessionRequest};
use seckill_core::throttle::{self, ThrottleDecision, DEFAULT_WINDOW_MS};
use seckill_core::challenge::{proof_value, seed_from_hex, solve, Challenge, SEED_LEN};
use seckill_core::{is_valid_id, BuyAnswer, Outcome};

use crate::catalogue::Catalogue;
use crate::clock::ServerClock;
use crate::i18n::{self, Lang, Msg};
use crate::location::sku_from_url;

/// How long to wait before asking again when the shop could not be reached at all.
const UNREACHABLE_RETRY_MS: u64 = 3_000;
/// Status refresh while the sale is upcoming (re-syncs the clock; the countdown itself is local).
const UPCOMING_REFRESH_MS: u64 = 30_000;
/// Status refresh during the sale, so a sold-out sale greys the button before anyone clicks.
const ON_SALE_REFRESH_MS: u64 = 10_000;
/// Status refresh while sold out: an unpaid order that expires puts its unit back on sale.
const SOLD_OUT_REFRESH_MS: u64 = 30_000;
/// Wait after a `throttled` / `busy` answer that named no time.
const DEFAULT_RETRY_MS: u64 = 1_000;

/// Something the shell must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Fetch `GET /api/sales/{sku}` now and report it with [`Page::status_loaded`].
    LoadStatus,
    /// Fetch `GET /api/orders/mine` and report it with [`Page::orders_loaded`].
    LoadOrders,
    /// The ticket is no good any more: drop it from `sessionStorage`.
    ForgetTicket,
    /// Move keyboard focus to the pay button (it just appeared).
    FocusPay,
    /// The sale asked for its challenge: call [`Page::solve_some`] until it says solved (in
    /// slices, so the page stays responsive), then send the buy again.
    SolveChallenge,
}

/// Why an answer could not be used. Recorded in the view (`problem`) for the console; the shopper
/// sees plain words instead.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("{what}: answer is not the expected JSON (HTTP {status}): {source}")]
    Json { what: &'static str, status: u16, source: serde_json::Error },
    #[error("{what}: unexpected HTTP {status}")]
    Status { what: &'static str, status: u16 },
}

/// What the page knows of the sale from the status endpoint and buy answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SaleInfo {
    starts_at: u64,
    ends_at: u64,
    sold_out: bool,
    /// A sale released in batches: when the next batch goes on sale. A sold-out known while one is
    /// to come holds only until then (the page switches to `on_sale` from its own clock).
    next_batch_at: Option<u64>,
    /// An `ended` answer: the server says so even if our window says otherwise.
    ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Loading,
    Loaded,
    UnknownSku,
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Order {
    id: String,
    state: OrderState,
    /// Server time by which a pending order must be paid; known once `orders/mine` answered.
    pay_by: Option<u64>,
    paying: bool,
}

/// The last thing that happened, in words, for the `aria-live` result region.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Notice {
    Won(String),
    AlreadyWon(String),
    Plain(Msg),
}

/// A new demo session, what the shell keeps in `sessionStorage`: the sign-in answer as it came
/// (one wire type, `seckill_core::session`).
pub type Session = SessionAnswer;

/// Everything the shell draws, for one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    pub lang: Lang,
    pub sku: Option<String>,
    /// Product name (the sku when the catalogue does not know it).
    pub title: String,
    pub price: Option<String>,
    /// `upcoming|on_sale|sold_out|ended|unknown`, for styling.
    pub state_kind: &'static str,
    /// The coarse state in words (never a count).
    pub state: String,
    /// "Starts in 00:12" / "Ends in …" / empty.
    pub countdown: String,
    pub button: String,
    pub button_enabled: bool,
    /// A request is in flight: grey, with a progress indicator, `aria-busy`.
    pub button_busy: bool,
    /// The last result in plain words (`aria-live`), empty when there is none.
    pub result: String,
    /// `good|bad|info|""`, for styling.
    pub result_kind: &'static str,
    /// The signed-in uid, if any.
    pub uid: Option<String>,
    /// "Signed in as alice" / "已登录：alice".
    pub signed_in_as: Option<String>,
    pub signin_error: Option<String>,
    pub order_id: Option<String>,
    /// `pending|paid|expired`, when there is an order.
    pub order_state: Option<&'static str>,
    pub pay_visible: bool,
    pub pay_enabled: bool,
    pub pay_busy: bool,
    pub pay_label: String,
    /// "Pay within 14:59" / "The time to pay has passed." / "Paid. Thank you!"
    pub pay_deadline: String,
    /// Why the last answer could not be used (for the console), if it could not.
    pub problem: Option<String>,
}

/// The page for one sku.
#[derive(Debug, Clone)]
pub struct Page {
    sku: Option<String>,
    lang: Lang,
    catalogue: Catalogue,
    window_ms: u64,
    clock: ServerClock,
    load: Load,
    info: Option<SaleInfo>,
    /// Set by a `not_started` answer: our idea of the start was wrong, ask again at once.
    resync: bool,
    uid: Option<String>,
    buying: bool,
    /// Local time the last buy request was sent: the page's own throttle window.
    last_buy_ms: Option<u64>,
    /// Local time before which no buy is sent (`Retry-After`).
    wait_until_ms: u64,
    notice: Option<Notice>,
    order: Option<Order>,
    signin_error: Option<Msg>,
    problem: Option<String>,
    /// A challenge being solved: it, its seed, the next nonce to try.
    solving: Option<(Challenge, [u8; SEED_LEN], u64)>,
    /// This uid's solution for this sale, sent with every buy as the `seckill-proof` header.
    proof: Option<String>,
}

impl Page {
    /// The page at `path` + `query` (`location.pathname`, `location.search`), with the shipped
    /// catalogue (JSON text) and the browser's preferred languages; `chosen` is a language the
    /// shopper picked with the switch earlier (it wins).
    pub fn new(path: &str, query: &str, catalogue_json: &str, preferred: &[String], chosen: Option<&str>) -> Page {
        let (catalogue, problem) = match Catalogue::parse(catalogue_json) {
            Ok(c) => (c, None),
            Err(e) => (Catalogue::default(), Some(e.to_string())),
        };
        let lang = chosen.and_then(Lang::from_tag).unwrap_or_else(|| Lang::from_preferences(preferred));
        Page {
            sku: sku_from_url(path, query),
            lang,
            catalogue,
            window_ms: DEFAULT_WINDOW_MS,
            clock: ServerClock::default(),
            load: Load::Loading,
            info: None,
            resync: false,
            uid: None,
            buying: false,
            last_buy_ms: None,
            wait_until_ms: 0,
            notice: None,
            order: None,
            signin_error: None,
            problem,
            solving: None,
            proof: None,
        }
    }

    /// The throttle window (default: the edge's default, [`DEFAULT_WINDOW_MS`]).
    pub fn with_window_ms(mut self, window_ms: u64) -> Page {
        self.window_ms = window_ms;
        self
    }

    pub fn sku(&self) -> Option<&str> {
        self.sku.as_deref()
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    pub fn set_lang(&mut self, lang: Lang) {
        self.lang = lang;
    }

    // -----------------------------------------------------------------------------------------
    // Sale status

    /// `GET /api/sales/{sku}` sent at local `sent_ms` answered at local `received_ms`.
    pub fn status_loaded(&mut self, sent_ms: u64, received_ms: u64, http_status: u16, body: &str) -> Vec<Effect> {
        self.resync = false;
        match http_status {
            200 => match serde_json::from_str::<SaleStatus>(body) {
                Ok(s) => {
                    self.clock.sync(s.server_time, sent_ms, received_ms);
                    self.info = Some(SaleInfo {
                        starts_at: s.starts_at,
                        ends_at: s.ends_at,
                        sold_out: s.state == SaleState::SoldOut,
                        next_batch_at: s.next_batch_at,
                        ended: s.state == SaleState::Ended,
                    });
                    self.load = Load::Loaded;
                }
                Err(source) => self.unreachable(AnswerError::Json { what: "sale status", status: http_status, source }),
            },
            404 => {
                self.load = Load::UnknownSku;
                self.info = None;
            }
            status => self.unreachable(AnswerError::Status { what: "sale status", status }),
        }
        Vec::new()
    }

    /// The status request failed without an answer.
    pub fn status_failed(&mut self, why: &str) {
        self.resync = false;
        self.problem = Some(format!("sale status: {why}"));
        if self.info.is_none() {
            self.load = Load::Unreachable;
        }
    }

    fn unreachable(&mut self, e: AnswerError) {
        self.problem = Some(e.to_string());
        // A refresh that fails mid-sale keeps what we knew; only a page with nothing says so.
        if self.info.is_none() {
            self.load = Load::Unreachable;
        }
    }

    /// In how many ms to refresh the status (`None`: never). Before the start the countdown runs
    /// on the local clock plus offset, so the page polls rarely; the edge answers these anyway.
    pub fn next_status_in(&self, now_ms: u64) -> Option<u64> {
        self.sku.as_ref()?;
        if self.resync {
            return Some(0);
        }
        match self.load {
            Load::Loading => return None,
            Load::Unreachable => return Some(UNREACHABLE_RETRY_MS),
            Load::UnknownSku => return Some(UPCOMING_REFRESH_MS),
            Load::Loaded => {}
        }
        let info = self.info?;
        let server_now = self.clock.server_now(now_ms);
        match self.state(now_ms)? {
            // Just after the start as well, to confirm the state the local clock switched to.
            SaleState::Upcoming => Some(UPCOMING_REFRESH_MS.min(info.starts_at.saturating_sub(server_now) + 1_500)),
            SaleState::OnSale => Some(ON_SALE_REFRESH_MS),
            // Until the next batch, if one is to come: just after its start, to confirm it.
            SaleState::SoldOut => Some(match info.next_batch_at {
                Some(at) => SOLD_OUT_REFRESH_MS.min(at.saturating_sub(server_now) + 1_500),
                None => SOLD_OUT_REFRESH_MS,
            }),
            SaleState::Ended => None,
        }
    }

    /// The coarse state at local `now_ms`, derived like the edge and origin do ([`state_at`]).
    pub fn state(&self, now_ms: u64) -> Option<SaleState> {
        let info = self.info?;
        if self.load != Load::Loaded {
            return None;
        }
        if info.ended {
            return Some(SaleState::Ended);
        }
        let server_now = self.clock.server_now(now_ms);
        Some(state_at(server_now, info.starts_at, info.ends_at, sold_out_now(info.sold_out, info.next_batch_at, server_now)))
    }

    /// When the next batch of a sale released in batches goes on sale (server clock), if one is
    /// still to come at local `now_ms`.
    fn next_batch_at(&self, now_ms: u64) -> Option<u64> {
        self.info?.next_batch_at.filter(|at| *at > self.clock.server_now(now_ms))
    }

    // -----------------------------------------------------------------------------------------
    // Sign-in (the demo login)

    /// The body for `POST /api/session`, or `None` (and a message on the page) for a bad uid.
    pub fn sign_in_body(&mut self, uid_input: &str) -> Option<String> {
        let uid = uid_input.trim();
        if !is_valid_id(uid) {
            self.signin_error = Some(Msg::BadUid);
            return None;
        }
        self.signin_error = None;
        serde_json::to_string(&SessionRequest { uid: uid.to_owned() }).ok()
    }

    /// The demo login answered: the session to keep, if it worked.
    pub fn signed_in(&mut self, http_status: u16, body: &str) -> (Option<Session>, Vec<Effect>) {
        let parsed = match http_status {
            200 | 201 => serde_json::from_str::<SessionAnswer>(body).map_err(|source| AnswerError::Json { what: "sign-in", status: http_status, source }),
            status => Err(AnswerError::Status { what: "sign-in", status }),
        };
        match parsed {
            Ok(s) if is_valid_id(&s.uid) && !s.ticket.is_empty() => {
                self.signin_error = None;
                self.set_uid(s.uid.clone());
                (Some(s), vec![Effect::LoadOrders])
            }
            Ok(_) => {
                self.signin_error = Some(Msg::SignInFailed);
                (None, Vec::new())
            }
            Err(e) => {
                self.problem = Some(e.to_string());
                self.signin_error = Some(Msg::SignInFailed);
                (None, Vec::new())
            }
        }
    }

    /// The sign-in request failed without an answer.
    pub fn sign_in_failed(&mut self, why: &str) {
        self.problem = Some(format!("sign-in: {why}"));
        self.signin_error = Some(Msg::SignInFailed);
    }

    /// A session kept in `sessionStorage` from before a reload. False (forget it) when expired.
    pub fn restore_session(&mut self, uid: &str, expires_at: u64, now_ms: u64) -> bool {
        if !is_valid_id(uid) || expires_at <= self.clock.server_now(now_ms) {
            return false;
        }
        self.set_uid(uid.to_owned());
        true
    }

    fn set_uid(&mut self, uid: String) {
        if self.uid.as_deref() != Some(uid.as_str()) {
            // Someone else's order and window are not this uid's.
            self.order = None;
            self.notice = None;
            self.last_buy_ms = None;
            self.wait_until_ms = 0;
            self.solving = None;
            self.proof = None;
        }
        self.uid = Some(uid);
    }

    pub fn sign_out(&mut self) {
        self.uid = None;
        self.order = None;
        self.notice = None;
        self.signin_error = None;
        self.last_buy_ms = None;
        self.wait_until_ms = 0;
        self.solving = None;
        self.proof = None;
    }

    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    // -----------------------------------------------------------------------------------------
    // Buying

    /// Wait in ms before the next buy may be sent (0: now): the longer of the throttle window
    /// and a `Retry-After`.
    fn wait_ms(&self, now_ms: u64) -> u64 {
        let window = match throttle::decide(self.last_buy_ms, now_ms, self.window_ms) {
            ThrottleDecision::Pass => 0,
            ThrottleDecision::Wait { retry_after_ms } => retry_after_ms,
        };
        window.max(self.wait_until_ms.saturating_sub(now_ms))
    }

    fn holds_order(&self) -> bool {
        matches!(&self.order, Some(o) if o.state != OrderState::Expired)
    }

    fn can_buy(&self, now_ms: u64) -> bool {
        self.sku.is_some()
            && self.uid.is_some()
            && !self.buying
            && !self.holds_order()
            && self.state(now_ms) == Some(SaleState::OnSale)
            && self.wait_ms(now_ms) == 0
    }

    /// The buy button was clicked (or tapped, or pressed with the keyboard). True: send the one
    /// request now. False: nothing to send (not on sale, in flight, or inside the window).
    pub fn click(&mut self, now_ms: u64) -> bool {
        if !self.can_buy(now_ms) {
            return false;
        }
        match throttle::decide(self.last_buy_ms, now_ms, self.window_ms) {
            ThrottleDecision::Pass => {
                self.last_buy_ms = Some(now_ms);
                self.buying = true;
                self.notice = None;
                true
            }
            ThrottleDecision::Wait { .. } => false,
        }
    }

    /// The buy request answered with `http_status`, its `Retry-After` header and body.
    pub fn buy_answered(&mut self, now_ms: u64, http_status: u16, retry_after: Option<&str>, body: &str) -> Vec<Effect> {
        self.buying = false;
        let header_ms = retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(|s| s.saturating_mul(1000));
        let answer = match serde_json::from_str::<BuyAnswer>(body) {
            Ok(a) => a,
            Err(source) => {
                // Not one of ours (a proxy's error page...): nothing is known to be bought.
                self.problem = Some(AnswerError::Json { what: "buy", status: http_status, source }.to_string());
                if let Some(ms) = header_ms {
                    self.wait_until_ms = now_ms + ms;
                }
                self.notice = Some(Notice::Plain(if http_status == 429 { Msg::Throttled } else { Msg::Busy }));
                return Vec::new();
            }
        };
        if http_status != answer.outcome.http_status() {
            self.problem = Some(format!("buy: outcome {} came with HTTP {http_status}", answer.outcome));
        }
        match answer.outcome {
            Outcome::Won | Outcome::AlreadyWon => {
                let id = answer.order_id.unwrap_or_default();
                self.order = Some(Order { id: id.clone(), state: OrderState::Pending, pay_by: None, paying: false });
                self.notice = Some(if answer.outcome == Outcome::Won { Notice::Won(id) } else { Notice::AlreadyWon(id) });
                vec![Effect::LoadOrders, Effect::FocusPay]
            }
            Outcome::SoldOut => {
                if let Some(i) = self.info.as_mut() {
                    i.sold_out = true;
                }
                let more_to_come = self.next_batch_at(now_ms).is_some();
                self.notice = Some(Notice::Plain(if more_to_come { Msg::StateBatchSoldOut } else { Msg::SoldOut }));
                Vec::new()
            }
            Outcome::NotStarted => {
                if let (Some(i), Some(starts_at)) = (self.info.as_mut(), answer.starts_at) {
                    i.starts_at = starts_at;
                }
                self.notice = Some(Notice::Plain(Msg::NotStarted));
                self.resync = true;
                vec![Effect::LoadStatus]
            }
            Outcome::Ended => {
                if let Some(i) = self.info.as_mut() {
                    i.ended = true;
                }
                self.notice = Some(Notice::Plain(Msg::Ended));
                Vec::new()
            }
            Outcome::Throttled | Outcome::Busy => {
                let ms = header_ms.or(answer.retry_after_ms).unwrap_or(DEFAULT_RETRY_MS);
                self.wait_until_ms = now_ms + ms;
                self.notice = Some(Notice::Plain(if answer.outcome == Outcome::Busy { Msg::Busy } else { Msg::Throttled }));
                Vec::new()
            }
            Outcome::Unauthorized => {
                self.sign_out();
                self.notice = Some(Notice::Plain(Msg::SignInAgain));
                vec![Effect::ForgetTicket]
            }
            Outcome::UnknownSku => {
                self.load = Load::UnknownSku;
                self.info = None;
                self.notice = Some(Notice::Plain(Msg::UnknownSku));
                Vec::new()
            }
            Outcome::Invalid => {
                self.problem = answer.error.map(|e| format!("buy: invalid: {e}"));
                self.notice = Some(Notice::Plain(Msg::Invalid));
                Vec::new()
            }
            Outcome::Challenge => self.challenged(answer),
        }
    }

    /// `challenge`: nothing was recorded against the uid, so once solved the buy goes again at
    /// once; until then the button stays busy.
    fn challenged(&mut self, answer: BuyAnswer) -> Vec<Effect> {
        self.proof = None;
        let Some((c, seed)) = answer.challenge.and_then(|c| seed_from_hex(&c.seed).map(|s| (c, s))) else {
            self.problem = Some("buy: a challenge answer without a readable challenge".into());
            self.notice = Some(Notice::Plain(Msg::Invalid));
            return Vec::new();
        };
        self.solving = Some((c, seed, 0));
        self.buying = true;
        self.last_buy_ms = None;
        self.notice = Some(Notice::Plain(Msg::Solving));
        vec![Effect::SolveChallenge]
    }

    /// Try the next `tries` nonces of the challenge being solved. True when solved (or when
    /// there is nothing to solve): the shell then sends the buy again, with [`Page::proof`].
    pub fn solve_some(&mut self, tries: u64) -> bool {
        let Some((c, seed, next)) = self.solving.as_mut() else { return true };
        match solve(seed, c.bits, *next, tries) {
            Some(nonce) => {
                self.proof = Some(proof_value(c, nonce));
                self.solving = None;
                self.buying = false;
                self.notice = None;
                true
            }
            None => {
                *next = next.saturating_add(tries);
                false
            }
        }
    }

    /// The `seckill-proof` header to send with a buy, once a challenge was solved.
    pub fn proof(&self) -> Option<&str> {
        self.proof.as_deref()
    }

    /// The buy request failed without an answer (network). The window still applies: the request
    /// may have arrived.
    pub fn buy_failed(&mut self, why: &str) -> Vec<Effect> {
        self.buying = false;
        self.problem = Some(format!("buy: {why}"));
        self.notice = Some(Notice::Plain(Msg::NetworkError));
        // It may have been committed without us hearing: ask.
        if self.uid.is_some() { vec![Effect::LoadOrders] } else { Vec::new() }
    }

    // -----------------------------------------------------------------------------------------
    // Orders and paying

    /// `GET /api/orders/mine` answered.
    pub fn orders_loaded(&mut self, http_status: u16, body: &str) -> Vec<Effect> {
        if http_status == 401 {
            self.sign_out();
            self.notice = Some(Notice::Plain(Msg::SignInAgain));
            return vec![Effect::ForgetTicket];
        }
        if http_status != 200 {
            self.problem = Some(AnswerError::Status { what: "orders", status: http_status }.to_string());
            return Vec::new();
        }
        let mine = match serde_json::from_str::<MyOrders>(body) {
            Ok(m) => m,
            Err(source) => {
                self.problem = Some(AnswerError::Json { what: "orders", status: http_status, source }.to_string());
                return Vec::new();
            }
        };
        let Some(sku) = self.sku.as_deref() else { return Vec::new() };
        // The live order for this sku if any (pending or paid), else the newest expired one.
        let best = mine
            .orders
            .into_iter()
            .filter(|o| o.sku == sku)
            .max_by_key(|o| (o.state != OrderState::Expired, o.created_at));
        match best {
            Some(o) if o.state != OrderState::Expired => {
                let paying = matches!(&self.order, Some(cur) if cur.id == o.order_id && cur.paying);
                if self.notice.is_none() {
                    self.notice = Some(Notice::AlreadyWon(o.order_id.clone()));
                }
                self.order = Some(Order { id: o.order_id, state: o.state, pay_by: o.pay_by, paying });
            }
            Some(o) => {
                // Expired: the unit went back on sale and this uid may try again.
                if matches!(&self.order, Some(cur) if cur.id == o.order_id) {
                    self.order = Some(Order { id: o.order_id, state: OrderState::Expired, pay_by: o.pay_by, paying: false });
                }
            }
            None => {}
        }
        Vec::new()
    }

    /// The pay button: the order id to pay, or `None` when there is nothing to pay now.
    pub fn pay_click(&mut self, now_ms: u64) -> Option<String> {
        let server_now = self.clock.server_now(now_ms);
        let order = self.order.as_mut()?;
        let late = order.pay_by.is_some_and(|by| server_now >= by);
        if order.state != OrderState::Pending || order.paying || late {
            return None;
        }
        order.paying = true;
        Some(order.id.clone())
    }

    /// `POST /api/orders/{id}/pay` answered.
    pub fn pay_answered(&mut self, http_status: u16, body: &str) -> Vec<Effect> {
        let Some(order) = self.order.as_mut() else { return Vec::new() };
        order.paying = false;
        match http_status {
            200 => match serde_json::from_str::<PayAnswer>(body) {
                Ok(p) => {
                    order.state = p.state;
                    self.notice = Some(Notice::Plain(if p.state == OrderState::Paid { Msg::Paid } else { Msg::PayExpired }));
                    Vec::new()
                }
                Err(source) => {
                    self.problem = Some(AnswerError::Json { what: "pay", status: http_status, source }.to_string());
                    self.notice = Some(Notice::Plain(Msg::PayFailed));
                    vec![Effect::LoadOrders]
                }
            },
            409 => {
                order.state = OrderState::Expired;
                self.notice = Some(Notice::Plain(Msg::PayExpired));
                // The unit is back: the sold-out flag may have been lowered.
                vec![Effect::LoadStatus]
            }
            401 => {
                self.sign_out();
                self.notice = Some(Notice::Plain(Msg::SignInAgain));
                vec![Effect::ForgetTicket]
            }
            404 => {
                self.notice = Some(Notice::Plain(Msg::PayNotFound));
                Vec::new()
            }
            status => {
                self.problem = Some(AnswerError::Status { what: "pay", status }.to_string());
                self.notice = Some(Notice::Plain(Msg::PayFailed));
                Vec::new()
            }
        }
    }

    /// The pay request failed without an answer.
    pub fn pay_failed(&mut self, why: &str) -> Vec<Effect> {
        if let Some(o) = self.order.as_mut() {
            o.paying = false;
        }
        self.problem = Some(format!("pay: {why}"));
        self.notice = Some(Notice::Plain(Msg::PayFailed));
        vec![Effect::LoadOrders]
    }

    // -----------------------------------------------------------------------------------------
    // The view

    /// What to draw at local `now_ms`.
    pub fn view(&self, now_ms: u64) -> View {
        let lang = self.lang;
        let server_now = self.clock.server_now(now_ms);
        let state = self.state(now_ms);
        let item = self.sku.as_deref().and_then(|s| self.catalogue.item(s));
        let title = match (item, self.sku.as_deref()) {
            (Some(i), _) => i.name(lang).to_owned(),
            (None, Some(sku)) => sku.to_owned(),
            (None, None) => Msg::StateNoSku.text(lang).to_owned(),
        };
        let (state_kind, state_msg) = match (self.sku.is_some(), self.load, state) {
            (false, _, _) => ("unknown", Msg::StateNoSku),
            (_, Load::UnknownSku, _) => ("unknown", Msg::StateUnknownSku),
            (_, Load::Unreachable, _) => ("unknown", Msg::StateUnreachable),
            (_, _, None) => ("unknown", Msg::StateLoading),
            (_, _, Some(SaleState::Upcoming)) => ("upcoming", Msg::StateUpcoming),
            (_, _, Some(SaleState::OnSale)) => ("on_sale", Msg::StateOnSale),
            (_, _, Some(SaleState::SoldOut)) if self.next_batch_at(now_ms).is_some() => ("sold_out", Msg::StateBatchSoldOut),
            (_, _, Some(SaleState::SoldOut)) => ("sold_out", Msg::StateSoldOut),
            (_, _, Some(SaleState::Ended)) => ("ended", Msg::StateEnded),
        };
        let countdown = match (state, self.info, self.next_batch_at(now_ms)) {
            (Some(SaleState::Upcoming), Some(i), _) => i18n::starts_in(i.starts_at.saturating_sub(server_now), lang),
            (Some(SaleState::SoldOut), Some(_), Some(at)) => i18n::next_batch_in(at.saturating_sub(server_now), lang),
            (Some(SaleState::OnSale), Some(i), _) => i18n::ends_in(i.ends_at.saturating_sub(server_now), lang),
            _ => String::new(),
        };
        let (button, button_enabled) = self.button(now_ms, state);
        let (result, result_kind) = match &self.notice {
            None => (String::new(), ""),
            Some(Notice::Won(id)) => (format!("{} {id}", Msg::Won.text(lang)), "good"),
            Some(Notice::AlreadyWon(id)) => (format!("{} {id}", Msg::AlreadyWon.text(lang)), "good"),
            Some(Notice::Plain(m)) => (m.text(lang).to_owned(), notice_kind(*m)),
        };
        let order = self.order.as_ref();
        let pay_late = order.and_then(|o| o.pay_by).is_some_and(|by| server_now >= by);
        let pay_deadline = match order {
            None => String::new(),
            Some(o) => match (o.state, o.pay_by) {
                (OrderState::Paid, _) => Msg::Paid.text(lang).to_owned(),
                (OrderState::Expired, _) => Msg::PayExpired.text(lang).to_owned(),
                (OrderState::Pending, _) if pay_late => Msg::PayDeadlinePassed.text(lang).to_owned(),
                (OrderState::Pending, Some(by)) => i18n::pay_within(by - server_now, lang),
                (OrderState::Pending, None) => String::new(),
            },
        };
        let paying = order.is_some_and(|o| o.paying);
        View {
            lang,
            sku: self.sku.clone(),
            title,
            price: item.map(|i| self.catalogue.price(i.price)),
            state_kind,
            state: state_msg.text(lang).to_owned(),
            countdown,
            button,
            button_enabled,
            button_busy: self.buying,
            result,
            result_kind,
            uid: self.uid.clone(),
            signed_in_as: self.uid.as_ref().map(|u| format!("{} {u}", Msg::SignedInAs.text(lang))),
            signin_error: self.signin_error.map(|m| m.text(lang).to_owned()),
            order_id: order.map(|o| o.id.clone()),
            order_state: order.map(|o| match o.state {
                OrderState::Pending => "pending",
                OrderState::Paid => "paid",
                OrderState::Expired => "expired",
            }),
            pay_visible: order.is_some_and(|o| o.state == OrderState::Pending),
            pay_enabled: order.is_some_and(|o| o.state == OrderState::Pending && !o.paying) && !pay_late,
            pay_busy: paying,
            pay_label: if paying { Msg::Paying } else { Msg::PayButton }.text(lang).to_owned(),
            pay_deadline,
            problem: self.problem.clone(),
        }
    }

    fn button(&self, now_ms: u64, state: Option<SaleState>) -> (String, bool) {
        let lang = self.lang;
        let msg = |m: Msg| (m.text(lang).to_owned(), false);
        if self.sku.is_none() || matches!(self.load, Load::UnknownSku) {
            return msg(Msg::ButtonUnavailable);
        }
        if self.buying {
            return msg(Msg::ButtonSending);
        }
        if self.holds_order() {
            return msg(Msg::ButtonGotIt);
        }
        match state {
            None => msg(Msg::ButtonLoading),
            Some(SaleState::Upcoming) => msg(Msg::ButtonNotYet),
            Some(SaleState::SoldOut) => msg(Msg::ButtonSoldOut),
            Some(SaleState::Ended) => msg(Msg::ButtonEnded),
            Some(SaleState::OnSale) if self.uid.is_none() => msg(Msg::ButtonSignInFirst),
            Some(SaleState::OnSale) => match self.wait_ms(now_ms) {
                0 => (Msg::ButtonBuy.text(lang).to_owned(), true),
                wait => (i18n::try_again_in(wait, lang), false),
            },
        }
    }

    /// In how many ms the view changes by itself, so the shell redraws exactly then: the next
    /// change of a countdown's whole seconds (the start's, the end's, the payment deadline's, the
    /// button's "try again in"), at most a second away. At the start itself that is the start, so
    /// the button turns on within a timer's precision of it.
    pub fn next_tick_in(&self, now_ms: u64) -> u64 {
        let server_now = self.clock.server_now(now_ms);
        let mut deadlines = Vec::with_capacity(4);
        if let Some(i) = self.info {
            deadlines.extend([i.starts_at, i.ends_at]);
        }
        if let Some(by) = self.order.as_ref().and_then(|o| o.pay_by) {
            deadlines.push(by);
        }
        let wait = self.wait_ms(now_ms);
        if wait > 0 {
            deadlines.push(server_now + wait);
        }
        deadlines
            .into_iter()
            .filter(|d| *d > server_now)
            .map(|d| (d - server_now - 1) % 1000 + 1)
            .min()
            .unwrap_or(1000)
    }
}

fn notice_kind(m: Msg) -> &'static str {
    match m {
        Msg::Paid => "good",
        Msg::SoldOut | Msg::Ended | Msg::PayExpired | Msg::UnknownSku | Msg::PayNotFound => "bad",
        _ => "info",
    }
}

#[cfg(test)]
mod tests;
