//! The decisions: for each request, answer at the edge or pass it on (and what to learn from the
//! origin's answer). This is the filter's whole behaviour; the proxy-wasm glue only moves headers.
//!
//! A buy (`POST /api/sales/{sku}/orders`) is decided in this order:
//! 1. ticket (`401 unauthorized`), then sku syntax (`400 invalid`);
//! 2. sale state from the flags (`404 unknown_sku`, `403 not_started` / `ended`, `410 sold_out`),
//!    passing on when there is no feed, when the sku is absent from a stale feed, or within
//!    `start_grace_ms` before the start;
//!    Then, from the sale's start, the challenge (when the sale asks for one): a buy without a
//!    valid solution gets `428 challenge` with the challenge to solve, recording nothing;
//! 3. dedup: a uid the edge saw win gets `already_won` (only where `per_user_limit == 1`);
//! 4. throttle: one request per (uid, sku) per window reaches the origin; repeats get the last
//!    final answer replayed, else `429 throttled`;
//! 5. the start lottery (when configured): a first buy in the sale's first `start_lottery_ms` is
//!    held at the edge until its drawn moment in the next `start_lottery_ms` and then decided
//!    again (`hold_at_edge`, the default), or told to come back then (`429 throttled`); a first
//!    buy while the drawn turns are served waits until they all were; either way recorded in its
//!    slot (held at the edge: until its give-up, so no repeat passes ahead of it);
//! 6. the admission budget: enough buys in flight for the units left → `429 throttled`, with the
//!    uid's window recorded so that it closes at the `Retry-After` (a uid that ignores it is
//!    throttled until then, however often the budget opens meanwhile);
//! 7. otherwise pass on with `x-seckill-uid` and `x-seckill-edge-key`.
//!
//! Steps 2 to 7 are one function each in `buy.rs`.
//!
//! Any failing host call or exhausted CAS loop degrades to step 7 (with a counter): the origin
//! enforces every rule itself, the edge only saves it work.

use std::cell::RefCell;

use seckill_core::challenge::ChallengeKey;
use seckill_core::ticket::{self, TicketError, Verifier};
use seckill_core::{headers, is_valid_id, BuyAnswer, Outcome};

use crate::admission::Admission;
use crate::config::Config;
use crate::flags::{mark_sold_out, FlagsCache, Lookup};
use crate::host::{update, Counter, Host, Reason};
use crate::recent::RecentPairs;
use crate::reply::{self, Reply};
use crate::route::{route, Route};
use crate::slots::{bucket_key, Bucket, Entry, Slot, SlotHasher, Upsert};
use crate::tickets::TicketCache;

/// The parts of a request the logic reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub authorization: Option<&'a str>,
    /// The `seckill-proof` header: a solution to the sale's challenge, when it asks for one.
    pub proof: Option<&'a str>,
}

/// What to learn from the origin's answer to a buy that was passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learn {
    pub slot: Slot,
    pub sku: String,
    pub uid: String,
    pub passed_at_ms: u64,
    /// The sale's start, when the flags knew it (a `not_started` answer ends the window there).
    pub starts_at: Option<u64>,
    /// The start of the sale's batch open when it passed (0 without batches or flags): a
    /// `sold_out` answer is learned for that batch.
    pub batch_opened_at: u64,
}

/// Let the request through to the origin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Forward {
    /// Request headers to set (after every client `x-seckill-*` header was removed).
    pub set_headers: Vec<(&'static str, String)>,
    /// Set for a buy: learn from the answer's `x-seckill-outcome` / `x-seckill-order-id`.
    pub learn: Option<Learn>,
}

/// The filter's decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reply(Reply),
    Forward(Forward),
    /// Keep the request waiting at the edge (paused) and call [`Edge::on_turn`] for it at
    /// `turn_ms` (only with `hold_at_edge`).
    Hold(Held),
}

/// A first buy held by the start lottery until its turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// When to decide it again (Envoy clock, Unix ms).
    pub turn_ms: u64,
    /// Past this ([`HOLD_FOR_BUDGET_MS`] after the turn), a buy still held back by the admission
    /// budget is answered `429 throttled`.
    pub give_up_ms: u64,
    pub sku: String,
    pub uid: String,
    /// The request's `seckill-proof`, checked again at its turn (a buy held in the start grace,
    /// before the sale's challenge was asked, is asked for it then).
    pub proof: Option<String>,
}

/// How long past its turn a buy held at the edge waits for the admission budget (keeping its
/// place: it is looked at again on every tick, in turn order) before it is answered `429
/// throttled`. Long enough for the answers in flight to come back under a crowd, so that held
/// buys are served in turn order rather than raced for by retries.
pub const HOLD_FOR_BUDGET_MS: u64 = 3_000;

impl Decision {
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Decision::Reply(r) => Some(r),
            Decision::Forward(_) | Decision::Hold(_) => None,
        }
    }
}

/// How often, at most, a worker re-reads the flags' metadata from shared data on the request
/// path (its tick re-reads them too). A change stored by the poller, or a `sold_out` learned by
/// another worker, is seen by every worker within this long; in between, requests use the
/// worker's parsed copy without a host call.
pub const FLAGS_RECHECK_MS: u64 = 10;

/// One worker's edge: the configuration, the keyed ticket verifier and its cache of verified
/// tickets, the slot hasher and this worker's copy of the flags.
#[derive(Debug)]
pub struct Edge {
    pub(crate) cfg: Config,
    pub(crate) verifier: Verifier,
    pub(crate) tickets: TicketCache,
    pub(crate) hasher: SlotHasher,
    pub(crate) recent: RecentPairs,
    pub(crate) admission: Admission,
    pub(crate) flags: RefCell<FlagsCache>,
    /// Derives each (uid, sku)'s proof-of-work challenge (from `edge_key`: every edge of a fleet
    /// and every origin derive the same ones).
    pub(crate) challenges: ChallengeKey,
    /// When this worker last read the flags' metadata (Envoy clock, Unix ms).
    flags_read_at: std::cell::Cell<Option<u64>>,
}

/// `n` of an order id `<sku>.<n>` of this `sku` (see [`seckill_core::order::parse_order_id`]).
pub fn parse_order_seq(order_id: &str, sku: &str) -> Option<u64> {
    seckill_core::order::parse_order_id(order_id).filter(|(s, _)| *s == sku).map(|(_, n)| n)
}

impl Edge {
    pub fn new(cfg: Config) -> Edge {
        let hasher = SlotHasher::new(cfg.edge_key.as_bytes());
        let verifier = Verifier::new(&cfg.ticket_secrets);
        let tickets = TicketCache::new(cfg.edge_key.as_bytes());
        let challenges = ChallengeKey::new(cfg.edge_key.as_bytes());
        Edge { cfg, verifier, tickets, hasher, challenges, recent: RecentPairs::default(), admission: Admission::default(), flags: RefCell::new(FlagsCache::default()), flags_read_at: std::cell::Cell::new(None) }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Refresh this worker's flags from shared data (called on every tick, and from requests at
    /// most every [`FLAGS_RECHECK_MS`]).
    pub fn refresh_flags<H: Host + ?Sized>(&self, host: &H) {
        if let Ok(mut cache) = self.flags.try_borrow_mut() {
            if cache.refresh(host).is_err() {
                host.count(Counter::HostErrors);
            }
        }
    }

    /// Work done on every tick: learn how many workers share the admission budget.
    pub fn on_tick<H: Host + ?Sized>(&self, host: &H) {
        match crate::poller::claimed_workers(host) {
            Ok(Some(n)) => self.admission.set_workers(n),
            Ok(None) => {}
            Err(c) => host.count(c),
        }
    }

    /// The admission budget (tests, diagnostics).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Forget when the flags were last read, so the next request re-reads them (after this
    /// worker itself changed them, e.g. learned a `sold_out`).
    fn flags_changed_here(&self) {
        self.flags_read_at.set(None);
    }

    pub(crate) fn lookup<H: Host + ?Sized>(&self, host: &H, sku: &str, now: u64) -> Lookup {
        let due = self.flags_read_at.get().is_none_or(|at| now.saturating_sub(at) >= FLAGS_RECHECK_MS || now < at);
        if due {
            self.refresh_flags(host);
            self.flags_read_at.set(Some(now));
        }
        match self.flags.try_borrow() {
            Ok(cache) => cache.lookup(sku, now, self.cfg.flags_stale_ms),
            Err(_) => Lookup::NoFeed,
        }
    }

    pub(crate) fn forward_as(&self, uid: &str, learn: Option<Learn>) -> Forward {
        Forward {
            set_headers: vec![(headers::UID, uid.to_owned()), (headers::EDGE_KEY, self.cfg.edge_key.clone())],
            learn,
        }
    }

    pub(crate) fn edge_answer<H: Host + ?Sized>(&self, host: &H, reason: Reason, answer: &BuyAnswer) -> Decision {
        host.count(Counter::Decision(reason));
        Decision::Reply(reply::buy(answer))
    }

    /// Verify the ticket at `now`; `Err` is the 401 reply (already counted).
    fn verify<H: Host + ?Sized>(&self, host: &H, authorization: Option<&str>, now: u64) -> Result<String, Decision> {
        let checked = ticket::from_authorization(authorization).and_then(|t| self.tickets.verify(&self.verifier, t, now / 1000));
        match checked {
            Ok(v) => Ok(v.uid),
            Err(e) => Err(self.edge_answer(host, Reason::Unauthorized, &BuyAnswer::with_error(Outcome::Unauthorized, unauthorized_text(e)))),
        }
    }

    /// Decide one request.
    pub fn on_request<H: Host + ?Sized>(&self, host: &H, req: &Request<'_>) -> Decision {
        let r = route(req.method, req.path);
        if matches!(r, Route::NotApi | Route::Session | Route::OtherApi) {
            return Decision::Forward(Forward::default());
        }
        let now = match host.now_ms() {
            Ok(n) => n,
            Err(_) => {
                // Without a clock no ticket can be checked: pass on *without* a uid (the origin
                // then refuses what needs one) rather than trusting anything.
                host.count(Counter::HostErrors);
                return Decision::Forward(Forward::default());
            }
        };
        match r {
            Route::Ticketed => match self.verify(host, req.authorization, now) {
                Ok(uid) => Decision::Forward(self.forward_as(&uid, None)),
                Err(d) => d,
            },
            Route::SaleStatus(sku) => self.sale_status(host, sku, now),
            Route::Buy(sku) => self.buy(host, sku, req.authorization, req.proof, now),
            Route::NotApi | Route::Session | Route::OtherApi => Decision::Forward(Forward::default()),
        }
    }

    fn sale_status<H: Host + ?Sized>(&self, host: &H, sku: &str, now: u64) -> Decision {
        if !is_valid_id(sku) {
            return Decision::Forward(Forward::default());
        }
        match self.lookup(host, sku, now) {
            Lookup::Known { flags, fresh: true } => {
                host.count(Counter::Decision(Reason::SaleStatus));
                Decision::Reply(reply::sale_status(&flags.status(now)))
            }
            _ => Decision::Forward(Forward::default()),
        }
    }

    fn buy<H: Host + ?Sized>(&self, host: &H, sku: &str, authorization: Option<&str>, proof: Option<&str>, now: u64) -> Decision {
        // 1. ticket, then sku syntax
        let uid = match self.verify(host, authorization, now) {
            Ok(uid) => uid,
            Err(d) => return d,
        };
        if !is_valid_id(sku) {
            return self.edge_answer(host, Reason::Invalid, &BuyAnswer::with_error(Outcome::Invalid, "sku must be 1..64 characters of [A-Za-z0-9_-]"));
        }
        self.decide_buy(host, sku, uid, now, None, proof)
    }

    /// A held buy's turn has come (the glue calls this from the tick for each request it paused
    /// on [`Decision::Hold`]): decided again as a buy at `now`, with the sale's current flags and
    /// budget. Still at capacity before `give_up_ms`: held again, keeping its turn (its place).
    pub fn on_turn<H: Host + ?Sized>(&self, host: &H, held: &Held, now: u64) -> Decision {
        self.decide_buy(host, &held.sku, held.uid.clone(), now, Some(held), held.proof.as_deref())
    }

    /// Learn from the origin's answer to a buy that was passed on: the `x-seckill-outcome` and
    /// `x-seckill-order-id` response headers (absent or unknown outcome: nothing is learned).
    pub fn on_response<H: Host + ?Sized>(&self, host: &H, learn: &Learn, outcome: Option<&str>, order_id: Option<&str>) {
        let outcome = outcome.map(str::trim).and_then(Outcome::parse);
        self.admission.answered(&learn.sku, learn.passed_at_ms, outcome == Some(Outcome::Won));
        let Some(outcome) = outcome else { return };
        let (recorded, seq) = match outcome {
            Outcome::Won | Outcome::AlreadyWon => match order_id.map(str::trim).and_then(|id| parse_order_seq(id, &learn.sku)) {
                Some(n) => (Some(outcome), n),
                // An order id we cannot rebuild: remember nothing that would be replayed.
                None => (None, 0),
            },
            o => (Some(o), 0),
        };
        let cfg = &self.cfg;
        // `not_started` (a buy passed inside the start grace): the uid's window ends at the start
        // instead of `window_ms` after this buy, so it is not kept waiting into the sale.
        let window_from = match (outcome, learn.starts_at) {
            (Outcome::NotStarted, Some(starts_at)) if starts_at > learn.passed_at_ms => starts_at.saturating_sub(cfg.window_ms).min(learn.passed_at_ms),
            _ => learn.passed_at_ms,
        };
        let answered = Entry { fp: learn.slot.fp, last_pass_ms: window_from, outcome: recorded, seq };
        self.recent.learn(learn.slot, learn.passed_at_ms, answered);
        let key = bucket_key(learn.slot.bucket);
        let res = update(host, &key, cfg.cas_retries, |cur| {
            let mut bucket = Bucket::decode(cur);
            let entry = match bucket.find(learn.slot.fp) {
                // A newer request of this pair passed since: its answer will be learned instead.
                Some(e) if e.last_pass_ms > learn.passed_at_ms => return (None, Upsert::Updated),
                Some(_) | None => answered,
            };
            let now = host.now_ms().unwrap_or(learn.passed_at_ms);
            let up = bucket.upsert(entry, cfg.slots_per_bucket as usize, now, cfg.window_ms, cfg.winner_ttl_ms);
            (Some(bucket.encode_fixed(cfg.slots_per_bucket as usize)), up)
        });
        match res {
            Ok(up) => {
                host.count(Counter::Learned);
                if up == Upsert::Evicted {
                    host.count(Counter::Evictions);
                }
            }
            Err(c) => host.count(c),
        }
        if outcome == Outcome::SoldOut {
            match mark_sold_out(host, &learn.sku, learn.passed_at_ms, learn.batch_opened_at, cfg.cas_retries) {
                Ok(true) => {
                    self.flags_changed_here();
                    host.count(Counter::SoldOutLearned);
                    host.log(crate::host::Level::Info, &format!("sku {} learned sold out from the origin", learn.sku));
                }
                Ok(false) => {}
                Err(c) => host.count(c),
            }
        }
    }
}

fn unauthorized_text(e: TicketError) -> String {
    e.to_string()
}
