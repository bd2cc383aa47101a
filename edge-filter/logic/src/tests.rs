//! Behaviour tests of the whole decision logic against the in-memory host: the contract's edge
//! rules, learning, shared state across workers, CAS conflicts, host failures and the memory bound.

use std::rc::Rc;

use seckill_core::feed::{FlagsFeed, SaleFlags};
use seckill_core::ticket;
use seckill_core::{BuyAnswer, Outcome};

use crate::config::Config;
use crate::edge::{parse_order_seq, Decision, Edge, Request};
use crate::flags::{store_feed, Stored};
use crate::host::{Counter, MemHost, MemStore, Reason};
use crate::keys;
use crate::poller::{claim_worker_id, init_keys, Poller};
use crate::slots::{bucket_key, Bucket};

const SECRET: &str = seckill_core::demo::TICKET_SECRET;
const T0: u64 = 1_800_000_000_000; // a Unix ms "now"
const START: u64 = T0 + 10_000;
const END: u64 = T0 + 3_600_000;

fn cfg_json(extra: &str) -> String {
    format!(r#"{{"ticket_secrets":["{SECRET}","old-secret"],"edge_key":"ek"{extra}}}"#)
}

fn cfg(extra: &str) -> Config {
    Config::from_json(cfg_json(extra).as_bytes()).unwrap()
}

fn tk(uid: &str) -> String {
    format!("Bearer {}", ticket::mint(SECRET.as_bytes(), uid, T0 / 1000 + 7200).unwrap())
}

fn sale(sku: &str, sold_out: bool, limit: u32) -> SaleFlags {
    SaleFlags { sku: sku.into(), starts_at: START, ends_at: END, sold_out, per_user_limit: limit, ..SaleFlags::default() }
}

fn feed(version: u64, sales: Vec<SaleFlags>) -> Vec<u8> {
    serde_json::to_vec(&FlagsFeed { version, server_time: T0, sales, edges: None }).unwrap()
}

struct World {
    store: Rc<MemStore>,
    host: MemHost,
    edge: Edge,
}

impl World {
    fn new(extra: &str) -> World {
        let store = MemStore::new();
        let host = MemHost::new(store.clone(), T0);
        let c = cfg(extra);
        init_keys(&host, c.buckets, c.slots_per_bucket).unwrap();
        World { store, host, edge: Edge::new(c) }
    }

    fn with_feed(extra: &str, sales: Vec<SaleFlags>) -> World {
        let w = World::new(extra);
        assert!(matches!(store_feed(&w.host, &feed(1, sales), w.host.now.get(), 8), Ok(Stored::Updated { .. })));
        w
    }

    fn worker(&self) -> MemHost {
        MemHost::new(self.store.clone(), self.host.now.get())
    }

    fn at(&self, t: u64) -> &Self {
        self.host.now.set(t);
        self
    }

    fn buy(&self, uid: &str, sku: &str) -> Decision {
        self.buy_on(&self.host, uid, sku)
    }

    fn buy_on(&self, host: &MemHost, uid: &str, sku: &str) -> Decision {
        let auth = tk(uid);
        let path = format!("/api/sales/{sku}/orders");
        self.edge.on_request(host, &Request { method: "POST", path: &path, authorization: Some(&auth), proof: None })
    }

    /// Buy, expect a pass, then answer as the origin would.
    fn buy_and_answer(&self, uid: &str, sku: &str, outcome: &str, order_id: Option<&str>) {
        let d = self.buy(uid, sku);
        let Decision::Forward(f) = d else { panic!("expected a pass, got {d:?}") };
        let learn = f.learn.expect("a buy learns");
        self.edge.on_response(&self.host, &learn, Some(outcome), order_id);
    }
}

fn reply_of(d: &Decision) -> (u16, BuyAnswer) {
    let r = d.reply().unwrap_or_else(|| panic!("expected an edge reply, got {d:?}"));
    assert_eq!(r.header("x-seckill-by"), Some("edge"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    (r.status, r.answer().expect("JSON body"))
}

fn is_pass(d: &Decision) -> bool {
    matches!(d, Decision::Forward(f) if f.learn.is_some())
}

#[test]
fn tickets_are_checked_first() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START);
    for auth in [None, Some("Bearer nope"), Some("Basic abc")] {
        let d = w.edge.on_request(&w.host, &Request { method: "POST", path: "/api/sales/phone/orders", authorization: auth, proof: None });
        let (status, a) = reply_of(&d);
        assert_eq!((status, a.outcome), (401, Outcome::Unauthorized));
        assert!(a.error.is_some());
    }
    // forged: signed with an unknown secret
    let forged = format!("Bearer {}", ticket::mint(b"evil", "alice", T0 / 1000 + 60).unwrap());
    let d = w.edge.on_request(&w.host, &Request { method: "POST", path: "/api/sales/phone/orders", authorization: Some(&forged), proof: None });
    assert_eq!(reply_of(&d).0, 401);
    // expired
    let expired = format!("Bearer {}", ticket::mint(SECRET.as_bytes(), "alice", START / 1000).unwrap());
    let d = w.edge.on_request(&w.host, &Request { method: "POST", path: "/api/sales/phone/orders", authorization: Some(&expired), proof: None });
    assert_eq!(reply_of(&d).0, 401);
    // a rotated (second) secret still works
    let old = format!("Bearer {}", ticket::mint(b"old-secret", "olduser", T0 / 1000 + 3600).unwrap());
    let d = w.edge.on_request(&w.host, &Request { method: "POST", path: "/api/sales/phone/orders", authorization: Some(&old), proof: None });
    assert!(is_pass(&d));
    assert_eq!(w.host.decisions(Reason::Unauthorized), 5);
    // a bad ticket beats a malformed sku
    let d = w.edge.on_request(&w.host, &Request { method: "POST", path: "/api/sales/a.b/orders", authorization: None, proof: None });
    assert_eq!(reply_of(&d).0, 401);
}

#[test]
fn malformed_sku_is_invalid() {
    let w = World::with_feed("", vec![]);
    let (status, a) = reply_of(&w.buy("alice", "a.b"));
    assert_eq!((status, a.outcome), (400, Outcome::Invalid));
    assert!(a.error.unwrap().contains("sku"));
    assert_eq!(reply_of(&w.buy("alice", &"x".repeat(65))).0, 400);
}

#[test]
fn pass_sets_uid_and_edge_key() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START);
    let Decision::Forward(f) = w.buy("alice", "phone") else { panic!() };
    assert_eq!(f.set_headers, vec![("x-seckill-uid", "alice".to_owned()), ("x-seckill-edge-key", "ek".to_owned())]);
    let learn = f.learn.unwrap();
    assert_eq!((learn.sku.as_str(), learn.uid.as_str(), learn.passed_at_ms), ("phone", "alice", START));
    assert_eq!(w.host.decisions(Reason::Passed), 1);
}

#[test]
fn without_a_feed_everything_valid_goes_to_the_origin() {
    let w = World::new("");
    let d = w.buy("alice", "phone");
    assert!(is_pass(&d), "no feed: origin decides, never an invented answer");
    // ... but the throttle still protects the origin
    let (status, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((status, a.outcome), (429, Outcome::Throttled));
    assert!(is_pass(&w.buy("bob", "phone")));
}

#[test]
fn sale_state_from_flags() {
    let w = World::with_feed("", vec![sale("phone", false, 1), sale("tv", true, 1)]);
    // upcoming
    w.at(START - 1_000);
    let (status, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((status, a.outcome, a.starts_at), (403, Outcome::NotStarted, Some(START)));
    // within the start grace: passed on for the origin to decide
    w.at(START - 250);
    assert!(is_pass(&w.buy("alice", "phone")));
    w.at(START - 251);
    assert_eq!(reply_of(&w.buy("bob", "phone")).1.outcome, Outcome::NotStarted);
    // sold out (flag) during the window; before the window a sold-out sale still reads upcoming
    w.at(START - 5_000);
    assert_eq!(reply_of(&w.buy("carol", "tv")).1.outcome, Outcome::NotStarted);
    w.at(START + 1);
    let (status, a) = reply_of(&w.buy("carol", "tv"));
    assert_eq!((status, a.outcome), (410, Outcome::SoldOut));
    // ended
    w.at(END);
    let (status, a) = reply_of(&w.buy("dave", "phone"));
    assert_eq!((status, a.outcome, a.ends_at), (403, Outcome::Ended, Some(END)));
    // unknown sku in a fresh feed
    w.at(T0 + 1_000);
    let (status, a) = reply_of(&w.buy("erin", "radio"));
    assert_eq!((status, a.outcome), (404, Outcome::UnknownSku));
    for r in [Reason::NotStarted, Reason::SoldOut, Reason::Ended, Reason::UnknownSku] {
        assert!(w.host.decisions(r) >= 1, "{r:?}");
    }
}

#[test]
fn stale_feed_passes_unknown_skus_but_keeps_known_flags() {
    let w = World::with_feed("", vec![sale("tv", true, 1)]);
    w.at(T0 + 3_000); // flags_stale_ms = 3000 since the last good poll at T0
    assert!(is_pass(&w.buy("alice", "radio")), "absent from a stale feed: origin decides");
    w.at(START + 1);
    assert_eq!(reply_of(&w.buy("alice", "tv")).1.outcome, Outcome::SoldOut, "last known flags stay in force");
}

#[test]
fn throttle_one_per_window_then_replay_or_429() {
    let w = World::with_feed("", vec![sale("phone", false, 2)]);
    w.at(START);
    assert!(is_pass(&w.buy("alice", "phone")));
    w.at(START + 100);
    let d = w.buy("alice", "phone");
    let (status, a) = reply_of(&d);
    assert_eq!((status, a.outcome, a.retry_after_ms), (429, Outcome::Throttled, Some(4_900)));
    assert_eq!(d.reply().unwrap().header("retry-after"), Some("5"));
    // another uid, or another sku, is not throttled
    assert!(is_pass(&w.buy("bob", "phone")));
    w.at(START + 5_000);
    assert!(is_pass(&w.buy("alice", "phone")), "a new window opens");
    assert_eq!(w.host.decisions(Reason::Throttled), 1);
}

#[test]
fn final_answers_are_replayed_inside_the_window() {
    let w = World::with_feed("", vec![sale("phone", false, 2)]);
    w.at(START);
    // limit 2: no dedup, but a repeat inside the window replays the win as already_won
    w.buy_and_answer("alice", "phone", "won", Some("phone.41"));
    w.at(START + 10);
    let (status, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((status, a.outcome), (200, Outcome::AlreadyWon));
    assert_eq!((a.order_id.as_deref(), a.sku.as_deref(), a.uid.as_deref()), (Some("phone.41"), Some("phone"), Some("alice")));
    assert_eq!(w.host.decisions(Reason::Replayed), 1);
    // after the window (limit 2) it goes to the origin again
    w.at(START + 5_000);
    assert!(is_pass(&w.buy("alice", "phone")));

    // busy is not final: a repeat is throttled, not replayed
    w.at(START);
    w.buy_and_answer("bob", "phone", "busy", None);
    assert_eq!(reply_of(&w.buy("bob", "phone")).1.outcome, Outcome::Throttled);
    // sold_out, ended and unknown_sku are replayed
    w.buy_and_answer("carol", "phone", "ended", None);
    let (status, a) = reply_of(&w.buy("carol", "phone"));
    assert_eq!((status, a.outcome, a.ends_at), (403, Outcome::Ended, Some(END)));
}

#[test]
fn winners_are_deduped_when_limit_is_one() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START);
    w.buy_and_answer("alice", "phone", "won", Some("phone.7"));
    for dt in [1, 5_000, 59_999] {
        w.at(START + dt);
        let (status, a) = reply_of(&w.buy("alice", "phone"));
        assert_eq!((status, a.outcome, a.order_id.as_deref()), (200, Outcome::AlreadyWon, Some("phone.7")), "dt {dt}");
    }
    assert_eq!(w.host.decisions(Reason::AlreadyWon), 3);
    // After winner_ttl_ms (default 60 s) one request per window reaches the origin again, so an
    // order that expired unpaid lets the uid try again.
    w.at(START + 60_000);
    assert!(is_pass(&w.buy("alice", "phone")));
    // the origin's already_won is learned too
    w.edge.on_response(&w.host, &learn_of(&w, "bob", START + 60_000), Some("already_won"), Some("phone.3"));
    w.at(START + 60_001);
    assert_eq!(reply_of(&w.buy("bob", "phone")).1.order_id.as_deref(), Some("phone.3"));
}

fn learn_of(w: &World, uid: &str, at: u64) -> crate::edge::Learn {
    w.at(at);
    let Decision::Forward(f) = w.buy(uid, "phone") else { panic!() };
    f.learn.unwrap()
}

#[test]
fn unparsable_order_ids_are_not_deduped() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START);
    w.buy_and_answer("alice", "phone", "won", Some("other.7"));
    w.at(START + 10);
    assert_eq!(reply_of(&w.buy("alice", "phone")).1.outcome, Outcome::Throttled);
    w.at(START + 5_000);
    assert!(is_pass(&w.buy("alice", "phone")));
    w.buy_and_answer("bob", "phone", "won", None);
    w.buy_and_answer("carol", "phone", "bogus-outcome", Some("phone.1"));
    w.at(START + 5_010);
    assert_eq!(reply_of(&w.buy("bob", "phone")).1.outcome, Outcome::Throttled);
    assert_eq!(reply_of(&w.buy("carol", "phone")).1.outcome, Outcome::Throttled);
}

#[test]
fn order_seq_parsing() {
    assert_eq!(parse_order_seq("phone.7", "phone"), Some(7));
    assert_eq!(parse_order_seq("phone.0", "phone"), Some(0));
    assert_eq!(parse_order_seq("phone.18446744073709551615", "phone"), Some(u64::MAX));
    for bad in ["phone.18446744073709551616", "phone.07", "phone.", "phone", "phone.+7", "phone.7a", "phon.7", "phone-2.7", "phone.-1"] {
        assert_eq!(parse_order_seq(bad, "phone"), None, "{bad}");
    }
}

#[test]
fn sold_out_answer_reaches_every_worker_at_once() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    let other = w.worker();
    w.at(START);
    other.now.set(START);
    // Worker 2 has already parsed the feed (sale on).
    assert!(is_pass(&w.buy_on(&other, "zed", "phone")));
    w.buy_and_answer("alice", "phone", "sold_out", None);
    assert_eq!(w.host.counter(Counter::SoldOutLearned), 1);
    // alice gets her answer replayed, everyone else 410 from the edge, on every worker
    assert_eq!(reply_of(&w.buy("alice", "phone")).1.outcome, Outcome::SoldOut);
    let (status, _) = reply_of(&w.buy_on(&other, "bob", "phone"));
    assert_eq!(status, 410);
    // until the next feed version says otherwise (e.g. an unpaid order expired)
    store_feed(&w.host, &feed(2, vec![sale("phone", false, 1)]), START, 8).unwrap();
    other.now.set(START + 100);
    assert!(is_pass(&w.buy_on(&other, "carol", "phone")));
}

#[test]
fn feed_sold_out_switch_applies_within_the_recheck_interval() {
    use crate::edge::FLAGS_RECHECK_MS;
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START);
    assert!(is_pass(&w.buy("alice", "phone")));
    store_feed(&w.host, &feed(2, vec![sale("phone", true, 1)]), START, 8).unwrap();
    w.at(START + FLAGS_RECHECK_MS);
    assert_eq!(reply_of(&w.buy("bob", "phone")).0, 410);
    store_feed(&w.host, &feed(3, vec![sale("phone", false, 1)]), START, 8).unwrap();
    w.at(START + 2 * FLAGS_RECHECK_MS);
    assert!(is_pass(&w.buy("carol", "phone")), "reversible");
}

#[test]
fn requests_inside_the_recheck_interval_read_no_flags() {
    use crate::edge::FLAGS_RECHECK_MS;
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START);
    assert!(is_pass(&w.buy("alice", "phone")));
    // Within the interval: one shared-data read per buy (its bucket), none for the flags.
    let (gets, _) = w.host.calls.get();
    w.at(START + FLAGS_RECHECK_MS - 1);
    assert!(is_pass(&w.buy("bob", "phone")));
    assert_eq!(w.host.calls.get().0, gets + 1);
    // A change stored meanwhile shows once the interval is over.
    store_feed(&w.host, &feed(2, vec![sale("phone", true, 1)]), START, 8).unwrap();
    assert!(is_pass(&w.buy("carol", "phone")), "not re-read yet");
    w.at(START + FLAGS_RECHECK_MS);
    assert_eq!(reply_of(&w.buy("dave", "phone")).0, 410);
}

/// A buy on another worker: its own `Edge` (own flags copy, ticket cache and recent pairs) over
/// the same shared data.
fn buy_with(edge: &Edge, host: &MemHost, uid: &str, sku: &str) -> Decision {
    let auth = tk(uid);
    let path = format!("/api/sales/{sku}/orders");
    edge.on_request(host, &Request { method: "POST", path: &path, authorization: Some(&auth), proof: None })
}

#[test]
fn burst_across_workers_passes_exactly_once() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    let workers: Vec<(Edge, MemHost)> = (0..4).map(|_| (Edge::new(cfg("")), w.worker())).collect();
    let mut passes = 0;
    for round in 0..2u64 {
        for i in 0..20u64 {
            let (edge, h) = &workers[(i % 4) as usize];
            h.now.set(START + round * 5_000 + i * 3);
            // Another writer touches the bucket between read and write now and then.
            h.conflicts.set((i % 3) as u32);
            if is_pass(&buy_with(edge, h, "alice", "phone")) {
                passes += 1;
            }
        }
    }
    assert_eq!(passes, 2, "one per window, whichever worker each request lands on");
}

#[test]
fn repeats_on_the_same_worker_are_refused_without_reading_shared_data() {
    let w = World::with_feed("", vec![sale("phone", false, 2)]);
    w.at(START);
    let Decision::Forward(f) = w.buy("alice", "phone") else { panic!("passes") };
    let (gets, sets) = w.host.calls.get();
    for dt in 1..10 {
        w.at(START + dt); // inside the 10 ms flags re-read, so no flags read either
        assert_eq!(reply_of(&w.buy("alice", "phone")).1.outcome, Outcome::Throttled);
    }
    assert_eq!(w.host.calls.get(), (gets, sets), "no shared-data call for a repeat");
    assert_eq!(w.host.counter(Counter::LocalRefusals), 9);
    assert_eq!(w.host.decisions(Reason::Throttled), 9);
    // Its answer, learned on this worker, is replayed from the same copy.
    w.edge.on_response(&w.host, &f.learn.expect("learn"), Some("won"), Some("phone.5"));
    let (gets, _) = w.host.calls.get();
    w.at(START + 9);
    let (_, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((a.outcome, a.order_id.as_deref()), (Outcome::AlreadyWon, Some("phone.5")));
    assert_eq!(w.host.calls.get().0, gets);
    // After the window the pair goes to shared data again, and passes.
    w.at(START + 5_000);
    assert!(is_pass(&w.buy("alice", "phone")));
    assert!(w.host.calls.get().0 > gets);
}

#[test]
fn another_workers_answer_is_replayed_within_the_recheck() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    let (b, bh) = (Edge::new(cfg("")), w.worker());
    // Worker A passes alice; worker B sees the pending entry and refuses with 429.
    w.at(START);
    let Decision::Forward(f) = w.buy("alice", "phone") else { panic!("A passes") };
    bh.now.set(START + 1);
    assert_eq!(reply_of(&buy_with(&b, &bh, "alice", "phone")).1.outcome, Outcome::Throttled);
    // A learns the win. B trusts its pending copy for PENDING_RECHECK_MS at most...
    w.edge.on_response(&w.host, &f.learn.expect("learn"), Some("won"), Some("phone.9"));
    bh.now.set(START + 1 + crate::recent::PENDING_RECHECK_MS - 1);
    assert_eq!(reply_of(&buy_with(&b, &bh, "alice", "phone")).1.outcome, Outcome::Throttled);
    // ...then reads shared data again and has the answer, which it keeps without re-reading.
    bh.now.set(START + 1 + crate::recent::PENDING_RECHECK_MS);
    let (_, a) = reply_of(&buy_with(&b, &bh, "alice", "phone"));
    assert_eq!((a.outcome, a.order_id.as_deref()), (Outcome::AlreadyWon, Some("phone.9")));
    let gets = bh.calls.get().0;
    bh.now.set(START + 1 + crate::recent::PENDING_RECHECK_MS + 5);
    assert_eq!(reply_of(&buy_with(&b, &bh, "alice", "phone")).1.outcome, Outcome::AlreadyWon);
    assert_eq!(bh.calls.get().0, gets, "an answered copy is trusted");
}

#[test]
fn an_overdue_answer_stops_the_rechecks() {
    let w = World::with_feed(r#","window_ms":10000,"answer_timeout_ms":1000"#, vec![sale("phone", false, 2)]);
    let (b, bh) = (Edge::new(cfg(r#","window_ms":10000,"answer_timeout_ms":1000"#)), w.worker());
    w.at(START);
    assert!(is_pass(&w.buy("alice", "phone"))); // its answer never comes (e.g. the stream was reset)
    bh.now.set(START + 500);
    assert_eq!(reply_of(&buy_with(&b, &bh, "alice", "phone")).1.outcome, Outcome::Throttled);
    // Not overdue yet: the pending copy is trusted for PENDING_RECHECK_MS only.
    bh.now.set(START + 500 + crate::recent::PENDING_RECHECK_MS);
    assert_eq!(reply_of(&buy_with(&b, &bh, "alice", "phone")).1.outcome, Outcome::Throttled);
    assert_eq!(bh.counter(Counter::LocalRefusals), 0);
    // Overdue (answer_timeout_ms after the pass): no answer will come, so the copy is trusted to
    // the window's end.
    for t in [1_500, 1_600, 5_000, 9_999] {
        bh.now.set(START + t);
        assert_eq!(reply_of(&buy_with(&b, &bh, "alice", "phone")).1.outcome, Outcome::Throttled);
    }
    assert_eq!(bh.counter(Counter::LocalRefusals), 4);
    // The window still ends on time: the next request goes to shared data and passes.
    bh.now.set(START + 10_000);
    assert!(is_pass(&buy_with(&b, &bh, "alice", "phone")));
}

#[test]
fn cas_exhaustion_and_host_failures_degrade_to_pass() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START);
    w.host.conflicts.set(8); // = cas_retries
    assert!(is_pass(&w.buy("alice", "phone")));
    assert_eq!(w.host.counter(Counter::CasExhausted), 1);
    w.host.conflicts.set(7);
    assert!(is_pass(&w.buy("bob", "phone")));
    assert_eq!(reply_of(&w.buy("bob", "phone")).1.outcome, Outcome::Throttled, "7 conflicts < 8 retries: recorded");

    w.host.broken.set(true);
    let d = w.buy("carol", "phone");
    assert!(matches!(&d, Decision::Forward(f) if f.set_headers.is_empty() && f.learn.is_none()), "no clock: pass on without a uid");
    assert!(w.host.counter(Counter::HostErrors) >= 1);
    w.host.broken.set(false);

    // get/set failing but clock fine: a worker whose shared data is broken still passes (with uid)
    struct HalfBroken<'a>(&'a MemHost);
    impl crate::host::Host for HalfBroken<'_> {
        fn now_ms(&self) -> Result<u64, crate::host::HostError> {
            Ok(self.0.now.get())
        }
        fn get_shared(&self, _: &str) -> Result<crate::host::Shared, crate::host::HostError> {
            Err(crate::host::HostError("get"))
        }
        fn set_shared(&self, _: &str, _: &[u8], _: Option<u32>) -> Result<(), crate::host::SetError> {
            Err(crate::host::SetError::Host(crate::host::HostError("set")))
        }
        fn count(&self, c: Counter) {
            self.0.count(c)
        }
        fn log(&self, l: crate::host::Level, m: &str) {
            self.0.log(l, m)
        }
    }
    let fresh = Edge::new(cfg(""));
    let auth = tk("dave");
    let d = fresh.on_request(&HalfBroken(&w.host), &Request { method: "POST", path: "/api/sales/phone/orders", authorization: Some(&auth), proof: None });
    assert!(is_pass(&d));
}

#[test]
fn garbage_in_shared_data_is_treated_as_empty() {
    let w = World::with_feed(r#","buckets":1"#, vec![sale("phone", false, 1)]);
    w.at(START);
    w.store.put(&bucket_key(0), b"\xff\xfe garbage");
    assert!(is_pass(&w.buy("alice", "phone")));
    assert_eq!(reply_of(&w.buy("alice", "phone")).1.outcome, Outcome::Throttled);
    w.store.put(keys::META, b"junk");
    w.store.put(keys::SOLD, b"junk");
    // meta unreadable = no feed: the sku passes on (never an invented answer)
    let fresh_edge = Edge::new(cfg(r#","buckets":1"#));
    assert!(is_pass(&fresh_edge.on_request(&w.host, &Request { method: "POST", path: "/api/sales/phone/orders", authorization: Some(&tk("bob")), proof: None })));
}

#[test]
fn memory_stays_bounded_whatever_the_number_of_uids() {
    let w = World::with_feed(r#","buckets":64,"slots_per_bucket":4"#, vec![sale("phone", false, 1)]);
    let keys_before = w.store.keys();
    assert_eq!(keys_before, 64 + 6, "buckets + control keys, all created up front");
    w.at(START);
    for i in 0..5_000 {
        w.host.now.set(START + i);
        assert!(is_pass(&w.buy(&format!("u{i}"), "phone")));
    }
    assert_eq!(w.store.keys(), keys_before);
    for b in 0..64 {
        let v = w.store.raw(&bucket_key(b)).unwrap();
        assert!(v.len() <= 4 + 4 * 25, "bucket {b}: {} bytes", v.len());
        assert!(Bucket::decode(Some(&v)).entries.len() <= 4);
    }
    assert!(w.host.counter(Counter::Evictions) >= 5_000 - 64 * 4);
}

#[test]
fn winners_survive_eviction_pressure() {
    let w = World::with_feed(r#","buckets":1,"slots_per_bucket":4"#, vec![sale("phone", false, 1)]);
    w.at(START);
    w.buy_and_answer("alice", "phone", "won", Some("phone.1"));
    for i in 0..50 {
        w.host.now.set(START + 10 + i);
        assert!(is_pass(&w.buy(&format!("u{i}"), "phone")));
    }
    w.at(START + 100);
    assert_eq!(reply_of(&w.buy("alice", "phone")).1.outcome, Outcome::AlreadyWon);
}

#[test]
fn sale_status_from_the_edge() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START - 5);
    // a poll just renewed the feed (same version)
    assert_eq!(store_feed(&w.host, &feed(1, vec![sale("phone", false, 1)]), START - 10, 8), Ok(Stored::Unchanged));
    let d = w.edge.on_request(&w.host, &Request { method: "GET", path: "/api/sales/phone", authorization: None, proof: None });
    let r = d.reply().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("max-age=1"));
    assert_eq!(r.header("x-seckill-by"), Some("edge"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["state"], "upcoming");
    assert_eq!(v["server_time"], START - 5);
    assert_eq!(v["starts_at"], START);
    assert_eq!(w.host.decisions(Reason::SaleStatus), 1);
    // unknown sku, bad sku, stale feed: origin decides
    for path in ["/api/sales/radio", "/api/sales/a.b"] {
        assert_eq!(w.edge.on_request(&w.host, &Request { method: "GET", path, authorization: None, proof: None }), Decision::Forward(Default::default()));
    }
    w.at(START - 10 + 3_000);
    assert!(matches!(w.edge.on_request(&w.host, &Request { method: "GET", path: "/api/sales/phone", authorization: None, proof: None }), Decision::Forward(_)));
}

#[test]
fn other_routes() {
    let w = World::with_feed("", vec![]);
    // orders need a ticket, checked at the edge
    for (m, p) in [("GET", "/api/orders/mine"), ("POST", "/api/orders/phone.1/pay")] {
        let d = w.edge.on_request(&w.host, &Request { method: m, path: p, authorization: None, proof: None });
        let (status, a) = reply_of(&d);
        assert_eq!((status, a.outcome), (401, Outcome::Unauthorized));
        let auth = tk("alice");
        let Decision::Forward(f) = w.edge.on_request(&w.host, &Request { method: m, path: p, authorization: Some(&auth), proof: None }) else { panic!() };
        assert_eq!(f.set_headers[0], ("x-seckill-uid", "alice".to_owned()));
        assert!(f.learn.is_none());
    }
    // session, other api, static: untouched (headers only stripped by the glue)
    for (m, p) in [("POST", "/api/session"), ("GET", "/api/whatever"), ("GET", "/"), ("GET", "/assets/x.js")] {
        assert_eq!(w.edge.on_request(&w.host, &Request { method: m, path: p, authorization: None, proof: None }), Decision::Forward(Default::default()));
    }
}

#[test]
fn poller_lease_one_at_a_time() {
    let store = MemStore::new();
    let a = MemHost::new(store.clone(), T0);
    let b = MemHost::new(store.clone(), T0);
    let c = cfg("");
    init_keys(&a, c.buckets, c.slots_per_bucket).unwrap();
    assert_eq!(init_keys(&b, c.buckets, c.slots_per_bucket), Ok(0), "second worker finds keys created");
    let (ida, idb) = (claim_worker_id(&a, 8).unwrap(), claim_worker_id(&b, 8).unwrap());
    assert_ne!(ida, idb);
    let mut pa = Poller::new(ida);
    let mut pb = Poller::new(idb);
    let req = pa.on_tick(&a, &c, T0).expect("first ticker polls");
    assert_eq!(req.cluster, "origin");
    assert!(req.headers.contains(&(":path", "/edge/flags".to_owned())));
    assert!(req.headers.contains(&("x-seckill-edge-key", "ek".to_owned())));
    assert!(pb.on_tick(&b, &c, T0 + 1).is_none(), "the other worker does not");
    pa.dispatched(1, T0);
    assert!(pa.on_tick(&a, &c, T0 + 100).is_none(), "one poll in flight at a time");
    let stored = pa.on_response(&a, &c, 1, Some(200), Some(&feed(4, vec![sale("phone", false, 1)])), T0 + 120);
    assert_eq!(stored, Some(Stored::Updated { version: 4 }));
    assert!(pa.on_tick(&a, &c, T0 + 200).is_some());
    pa.dispatched(2, T0 + 200);
    // a failed poll keeps the flags
    assert_eq!(pa.on_response(&a, &c, 2, None, None, T0 + 300), None);
    assert_eq!(pa.on_response(&a, &c, 3, Some(503), Some(b"x"), T0 + 300), None);
    assert_eq!(a.counter(Counter::FeedErrors), 2);
    let warns = |h: &MemHost| h.logs.borrow().iter().filter(|(l, _)| *l == crate::host::Level::Warn).count();
    assert_eq!(warns(&a), 1, "a run of failures is logged once");
    let edge = Edge::new(c.clone());
    b.now.set(T0 + 500);
    let auth = tk("alice");
    let d = edge.on_request(&b, &Request { method: "GET", path: "/api/sales/phone", authorization: Some(&auth), proof: None });
    assert!(d.reply().is_some(), "feed stored by the poller is visible to other workers");
    // worker a stops ticking: b takes over after the lease
    assert!(pb.on_tick(&b, &c, T0 + 200 + c.lease_ms() - 1).is_none());
    assert!(pb.on_tick(&b, &c, T0 + 200 + c.lease_ms()).is_some());
    assert!(pb.is_holder());
    assert!(pa.on_tick(&a, &c, T0 + 200 + c.lease_ms() + 1).is_none());
    assert!(!pa.is_holder());
}

#[test]
fn every_reply_is_well_formed() {
    // Every answer the edge gives is a JSON BuyAnswer with the contract status for its outcome.
    let w = World::with_feed("", vec![sale("phone", false, 1), sale("tv", true, 1)]);
    let mut seen = std::collections::HashSet::new();
    let mut check = |d: Decision| {
        if let Some(r) = d.reply() {
            let a = r.answer().unwrap();
            assert_eq!(r.status, a.outcome.http_status());
            assert_eq!(r.header("cache-control"), Some("no-store"));
            assert_eq!(r.header("x-seckill-outcome"), Some(a.outcome.as_str()));
            seen.insert(a.outcome);
        }
    };
    w.at(START - 1_000);
    check(w.buy("a", "phone"));
    w.at(START);
    store_feed(&w.host, &feed(1, vec![sale("phone", false, 1), sale("tv", true, 1)]), START, 8).unwrap();
    check(w.buy("a", "tv"));
    check(w.buy("a", "radio"));
    check(w.buy("a", "a.b"));
    check(w.buy("a", "phone"));
    check(w.buy("a", "phone"));
    w.at(END);
    check(w.buy("a", "phone"));
    check(w.edge.on_request(&w.host, &Request { method: "POST", path: "/api/sales/phone/orders", authorization: None, proof: None }));
    assert_eq!(seen.len(), 7, "{seen:?}");
}

#[test]
fn the_start_lottery_serves_early_clicks_in_drawn_order() {
    let extra = r#","start_lottery_ms":1000,"hold_at_edge":false"#;
    let w = World::with_feed(extra, vec![sale("phone", false, 1)]);
    // A click at the start is not passed: it is told when its turn comes, inside [start+1 s, start+2 s).
    w.at(START + 10);
    let (status, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((status, a.outcome), (429, Outcome::Throttled));
    let turn = START + 10 + a.retry_after_ms.expect("retry_after_ms");
    assert!((START + 1_000..START + 2_000).contains(&turn), "turn at +{}", turn - START);
    // Hammering does not move it: every repeat is told the same moment.
    w.at(START + 500);
    assert_eq!(reply_of(&w.buy("alice", "phone")).1.retry_after_ms, Some(turn - (START + 500)));
    w.at(turn - 1);
    assert_eq!(reply_of(&w.buy("alice", "phone")).1.outcome, Outcome::Throttled);
    w.at(turn);
    assert!(is_pass(&w.buy("alice", "phone")), "served at its turn");
    // A click inside the start grace is held too (instead of passed for a not_started).
    w.at(START - 100);
    let (_, b) = reply_of(&w.buy("bob", "phone"));
    assert_eq!(b.outcome, Outcome::Throttled);
    let bobs_turn = START - 100 + b.retry_after_ms.expect("retry_after_ms");
    // Turns are spread over the second: 300 uids get many different moments.
    w.at(START + 20);
    let mut turns: Vec<u64> = (0..300).map(|i| START + 20 + reply_of(&w.buy(&format!("u{i}"), "phone")).1.retry_after_ms.unwrap()).collect();
    assert!(turns.iter().all(|t| (START + 1_000..START + 2_000).contains(t)));
    turns.sort();
    turns.dedup();
    assert!(turns.len() > 200, "only {} distinct turns", turns.len());
    assert_eq!(w.host.counter(Counter::LotteryHolds), 302);
    // A first click while the drawn turns are served comes after all of them, not ahead.
    w.at(START + 1_050);
    let (_, c) = reply_of(&w.buy("carol", "phone"));
    assert_eq!((c.outcome, c.retry_after_ms), (Outcome::Throttled, Some(950)), "told to come back at +2 s");
    // bob, back at his turn inside the draw, is not sent behind it.
    w.at(bobs_turn.max(START + 1_050));
    assert!(is_pass(&w.buy("bob", "phone")), "a drawn turn is not drawn again");
    // After the draw, a first click passes at once.
    w.at(START + 2_000);
    assert!(is_pass(&w.buy("carol", "phone")));
    assert!(is_pass(&w.buy("dave", "phone")));
}

#[test]
fn the_admission_budget_passes_no_more_buys_than_units_left() {
    let mut s = sale("phone", false, 1);
    s.stock_left = Some(3);
    let w = World::with_feed("", vec![s]);
    w.at(START);
    let mut passed = Vec::new();
    for i in 0..3 {
        let Decision::Forward(f) = w.buy(&format!("u{i}"), "phone") else { panic!("u{i} passes") };
        passed.push(f.learn.expect("learn"));
    }
    let (status, a) = reply_of(&w.buy("late", "phone"));
    assert_eq!((status, a.outcome, a.retry_after_ms), (429, Outcome::Throttled, Some(1_000)));
    assert_eq!(w.host.counter(Counter::AtCapacity), 1);
    // `late`'s window is closed until its Retry-After, even once the budget opens: asking again
    // early (on any worker) is throttled for the time left, and still records nothing new.
    w.at(START + 30);
    w.edge.on_response(&w.host, &passed[0], Some("busy"), None);
    let (status, a) = reply_of(&w.buy("late", "phone"));
    assert_eq!((status, a.outcome, a.retry_after_ms), (429, Outcome::Throttled, Some(970)));
    let (_, a) = reply_of(&w.buy_on(&w.worker(), "late", "phone"));
    assert_eq!((a.outcome, a.retry_after_ms), (Outcome::Throttled, Some(970)));
    assert_eq!(w.host.counter(Counter::AtCapacity), 1, "a refusal by the window, not the budget");
    // Whoever waited as told passes: first come at the opening, first served.
    assert!(is_pass(&w.buy("patient", "phone")));
    w.edge.on_response(&w.host, &passed[1], Some("busy"), None);
    w.at(START + 1_000);
    assert!(is_pass(&w.buy("late", "phone")), "at its Retry-After, `late` passes");
    // Two workers share the units: each passes its half, rounded up.
    let other = w.worker();
    crate::poller::claim_worker_id(&other, 8).unwrap();
    crate::poller::claim_worker_id(&other, 8).unwrap();
    w.edge.on_tick(&w.host);
    assert_eq!(w.edge.admission().workers(), 2);
    assert_eq!(w.edge.admission().share(3), 2);
    assert_eq!(reply_of(&w.buy("later", "phone")).1.outcome, Outcome::Throttled);
}

#[test]
fn a_not_started_answer_in_the_grace_ends_the_window_at_the_start() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START - 100);
    let Decision::Forward(f) = w.buy("alice", "phone") else { panic!("passed inside the grace") };
    w.edge.on_response(&w.host, &f.learn.expect("learn"), Some("not_started"), None);
    w.at(START - 50);
    let (_, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((a.outcome, a.retry_after_ms), (Outcome::Throttled, Some(50)), "told to come back at the start");
    w.at(START);
    assert!(is_pass(&w.buy("alice", "phone")), "not kept waiting into the sale");
}

#[test]
fn held_buys_wait_at_the_edge_for_their_turn_then_pass_within_the_budget() {
    let mut s = sale("phone", false, 1);
    s.stock_left = Some(2);
    let w = World::with_feed(r#","start_lottery_ms":1000"#, vec![s]);
    let hold = |uid: &str, at: u64| -> crate::edge::Held {
        w.at(at);
        match w.buy(uid, "phone") {
            Decision::Hold(h) => h,
            d => panic!("{uid}: expected a hold, got {d:?}"),
        }
    };
    let (a, b, c) = (hold("alice", START + 10), hold("bob", START + 20), hold("carol", START + 30));
    for h in [&a, &b, &c] {
        assert!((START + 1_000..START + 2_000).contains(&h.turn_ms), "turn +{}", h.turn_ms - START);
        assert_eq!(h.give_up_ms, h.turn_ms + crate::edge::HOLD_FOR_BUDGET_MS);
    }
    // A first click while the drawn turns are served is held until they all were.
    let late = hold("dave", START + 1_000);
    assert_eq!((late.turn_ms, late.give_up_ms), (START + 2_000, START + 2_000 + crate::edge::HOLD_FOR_BUDGET_MS));
    assert_eq!(w.host.counter(Counter::LotteryHolds), 4);
    // Hammering while held, on any worker, before or after the turn: the repeats are refused
    // until the give-up (the held request keeps its place; no repeat takes an opening before it).
    for at in [START + 40, a.turn_ms, a.give_up_ms - 1] {
        w.at(at);
        let (_, r) = reply_of(&w.buy_on(&w.worker(), "alice", "phone"));
        assert_eq!((r.outcome, r.retry_after_ms), (Outcome::Throttled, Some(a.give_up_ms - at)));
    }
    // Turns in order; the budget of 2 units lets two through, the third waits and finally gives up.
    let mut held = [a, b, c];
    held.sort_by_key(|h| h.turn_ms);
    let mut passed = 0;
    for h in &held[..2] {
        w.at(h.turn_ms);
        assert!(is_pass(&w.edge.on_turn(&w.host, h, h.turn_ms)), "{} passes at its turn", h.uid);
        passed += 1;
    }
    let last = &held[2];
    w.at(last.turn_ms.max(held[1].turn_ms));
    let again = match w.edge.on_turn(&w.host, last, w.host.now.get()) {
        Decision::Hold(h) => h,
        d => panic!("expected to wait for the budget, got {d:?}"),
    };
    assert_eq!(again, *last, "held again in its turn's place");
    // Rechecked while still over the budget: held again, not refused by a window of its own.
    w.at(last.give_up_ms - 1);
    let again = match w.edge.on_turn(&w.host, &again, last.give_up_ms - 1) {
        Decision::Hold(h) => h,
        d => panic!("a held buy rechecked before its give-up waits again, got {d:?}"),
    };
    w.at(last.give_up_ms);
    let (status, ans) = reply_of(&w.edge.on_turn(&w.host, &again, last.give_up_ms));
    assert_eq!((status, ans.outcome, passed), (429, Outcome::Throttled, 2));
    assert_eq!(w.host.decisions(Reason::Passed), 2);
}

#[test]
fn a_held_buy_whose_sale_sold_out_meanwhile_is_told_so() {
    let w = World::with_feed(r#","start_lottery_ms":1000"#, vec![sale("phone", false, 1)]);
    w.at(START + 10);
    let Decision::Hold(h) = w.buy("alice", "phone") else { panic!("held") };
    assert!(matches!(store_feed(&w.host, &feed(2, vec![sale("phone", true, 1)]), START + 500, 8), Ok(Stored::Updated { .. })));
    w.at(h.turn_ms);
    let (status, a) = reply_of(&w.edge.on_turn(&w.host, &h, h.turn_ms));
    assert_eq!((status, a.outcome), (410, Outcome::SoldOut));
}

fn buy_with_proof(w: &World, uid: &str, sku: &str, proof: Option<&str>) -> Decision {
    let auth = tk(uid);
    let path = format!("/api/sales/{sku}/orders");
    w.edge.on_request(&w.host, &Request { method: "POST", path: &path, authorization: Some(&auth), proof })
}

fn solve_for(edge_key: &str, uid: &str, sku: &str, bits: u32) -> String {
    use seckill_core::challenge::{proof_value, solve_challenge, ChallengeKey};
    let c = ChallengeKey::new(edge_key.as_bytes()).issue(uid, sku, START, bits);
    proof_value(&c, solve_challenge(&c).expect("solvable"))
}

#[test]
fn a_sale_with_a_challenge_asks_for_a_solution_from_its_start_and_records_nothing_without_one() {
    let mut s = sale("phone", false, 1);
    s.challenge_bits = Some(10);
    let w = World::with_feed("", vec![s.clone()]);
    // Before the start: no challenge (nothing can be prepared), the usual `not_started`.
    w.at(START - 5_000);
    assert_eq!(reply_of(&buy_with_proof(&w, "alice", "phone", None)).1.outcome, Outcome::NotStarted);
    w.at(START);
    let (status, a) = reply_of(&buy_with_proof(&w, "alice", "phone", None));
    assert_eq!((status, a.outcome, a.sku.as_deref()), (428, Outcome::Challenge, Some("phone")));
    let issued = a.challenge.expect("the challenge to solve");
    assert_eq!(issued.bits, 10);
    assert!(a.error.unwrap().contains("seckill-proof"));
    assert_eq!(w.host.counter(Counter::Decision(Reason::Challenge)), 1);
    // Nothing recorded: a forged, malformed or another uid's solution is refused the same way...
    let bobs = solve_for("ek", "bob", "phone", 10);
    for bad in [bobs.as_str(), "nonsense", &format!("{}.0", issued.seed)] {
        let (status, a) = reply_of(&buy_with_proof(&w, "alice", "phone", Some(bad)));
        assert_eq!((status, a.challenge.as_ref().map(|c| &c.seed)), (428, Some(&issued.seed)), "{bad}");
    }
    let right = solve_for("ek", "alice", "phone", 10);
    assert!(right.starts_with(&issued.seed));
    // ...and solving it then passes at once: no window was used by the refusals.
    assert!(is_pass(&buy_with_proof(&w, "alice", "phone", Some(&right))));
    // Its repeat inside the window is the throttle's (the solution is not what refuses it).
    assert_eq!(reply_of(&buy_with_proof(&w, "alice", "phone", Some(&right))).1.outcome, Outcome::Throttled);
    assert_eq!(w.host.counter(Counter::Decision(Reason::Challenge)), 4);
    // Bob's own solution is his.
    assert!(is_pass(&buy_with_proof(&w, "bob", "phone", Some(&bobs))));
}

#[test]
fn raising_the_difficulty_mid_sale_asks_again() {
    let mut s = sale("phone", false, 2);
    s.challenge_bits = Some(8);
    let w = World::with_feed(r#","window_ms":100"#, vec![s.clone()]);
    w.at(START + 10);
    let easy = solve_for("ek", "alice", "phone", 8);
    assert!(is_pass(&buy_with_proof(&w, "alice", "phone", Some(&easy))));
    s.challenge_bits = Some(12);
    assert!(matches!(store_feed(&w.host, &feed(2, vec![s]), START + 20, 8), Ok(Stored::Updated { .. })));
    w.at(START + 1_000);
    let (status, a) = reply_of(&buy_with_proof(&w, "alice", "phone", Some(&easy)));
    assert_eq!((status, a.challenge.map(|c| c.bits)), (428, Some(12)), "the easier solution is stale");
    assert!(a.error.unwrap().contains("another challenge"));
    let hard = solve_for("ek", "alice", "phone", 12);
    assert!(is_pass(&buy_with_proof(&w, "alice", "phone", Some(&hard))));
}

#[test]
fn a_sale_without_a_challenge_ignores_proofs() {
    let w = World::with_feed("", vec![sale("phone", false, 1)]);
    w.at(START);
    assert!(is_pass(&buy_with_proof(&w, "alice", "phone", Some("garbage"))));
    let mut zero = sale("tv", false, 1);
    zero.challenge_bits = Some(0);
    let w = World::with_feed("", vec![zero]);
    w.at(START);
    assert!(is_pass(&buy_with_proof(&w, "alice", "tv", None)), "0 bits: no challenge");
}

#[test]
fn a_buy_held_from_the_start_grace_is_asked_for_the_challenge_at_its_turn() {
    let mut s = sale("phone", false, 1);
    s.challenge_bits = Some(8);
    let w = World::with_feed(r#","start_lottery_ms":1000,"start_grace_ms":500"#, vec![s]);
    // A click 100 ms before the start, inside the grace: no challenge yet (nothing can be solved
    // before the start), held by the lottery.
    w.at(START - 100);
    let Decision::Hold(h) = buy_with_proof(&w, "alice", "phone", None) else { panic!("held") };
    assert_eq!(h.proof, None);
    // At its turn: asked for the challenge, nothing passed.
    let (status, a) = reply_of(&w.edge.on_turn(&w.host, &h, h.turn_ms));
    assert_eq!((status, a.outcome), (428, Outcome::Challenge));
    // Its window ended at its turn: the solved buy passes at once.
    w.at(h.turn_ms + 5);
    assert!(is_pass(&buy_with_proof(&w, "alice", "phone", Some(&solve_for("ek", "alice", "phone", 8)))));
    // A held buy that brought its proof keeps it to its turn.
    w.at(START + 10);
    let bobs = solve_for("ek", "bob", "phone", 8);
    let Decision::Hold(h) = buy_with_proof(&w, "bob", "phone", Some(&bobs)) else { panic!("held") };
    assert_eq!(h.proof.as_deref(), Some(bobs.as_str()));
    assert!(is_pass(&w.edge.on_turn(&w.host, &h, h.turn_ms)));
}

#[test]
fn each_batch_of_a_sale_starts_like_the_sale_lottery_budget_flags_and_windows() {
    use seckill_core::sale::Batch;
    const BATCH2: u64 = START + 60_000;
    let mut s = sale("phone", false, 1);
    // Batch 1 (2 units) has one unit left; batch 2 (3 units) opens a minute after the start.
    s.batches = vec![Batch { at: START, stock: 2 }, Batch { at: BATCH2, stock: 3 }];
    s.stock_left = Some(4);
    let w = World::with_feed(r#","start_lottery_ms":1000,"hold_at_edge":false"#, vec![s.clone()]);
    // bob's buy goes on for batch 1's last unit just before batch 2 (and loses it): his window
    // is open across batch 2's start, and the edge learns batch 1 is sold out.
    w.at(BATCH2 - 500);
    w.buy_and_answer("bob", "phone", "sold_out", None);
    w.at(BATCH2 - 450);
    let (status, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((status, a.outcome), (410, Outcome::SoldOut), "learned from the origin's answer");
    // The feed then says so too, until batch 2.
    s.stock_left = Some(3);
    s.sold_out = true;
    s.sold_out_until = Some(BATCH2);
    w.at(BATCH2 - 400);
    store_feed(&w.host, &feed(2, vec![s]), BATCH2 - 400, 8).expect("feed 2");
    // Between the batches: sold out from the edge, and its status names the next batch.
    let (status, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((status, a.outcome), (410, Outcome::SoldOut));
    let st = w.edge.on_request(&w.host, &Request { method: "GET", path: "/api/sales/phone", authorization: None, proof: None });
    let body: serde_json::Value = serde_json::from_str(&st.reply().expect("status from the edge").body).unwrap();
    assert_eq!((body["state"].as_str(), body["next_batch_at"].as_u64()), (Some("sold_out"), Some(BATCH2)));
    // Batch 2 opens from the edge's own clock (no new feed): its first second is a lottery.
    w.at(BATCH2 + 10);
    let (status, a) = reply_of(&w.buy("alice", "phone"));
    assert_eq!((status, a.outcome), (429, Outcome::Throttled));
    let turn = BATCH2 + 10 + a.retry_after_ms.expect("retry_after_ms");
    assert!((BATCH2 + 1_000..BATCH2 + 2_000).contains(&turn), "turn at +{}", turn - BATCH2);
    // bob's window from batch 1 does not count: he is drawn a turn like everyone, not replayed sold_out.
    let (_, b) = reply_of(&w.buy("bob", "phone"));
    assert_eq!(b.outcome, Outcome::Throttled, "a turn, not a replay");
    assert!(b.retry_after_ms.is_some_and(|ms| (1_000..2_000).contains(&(BATCH2 + 10 + ms - BATCH2))));
    // After the lottery: the budget is batch 2's 3 units.
    w.at(BATCH2 + 2_000);
    for i in 0..3 {
        assert!(is_pass(&w.buy(&format!("u{i}"), "phone")), "u{i} passes");
    }
    assert_eq!(reply_of(&w.buy("u3", "phone")).1.outcome, Outcome::Throttled);
    assert_eq!(w.host.counter(Counter::AtCapacity), 1);
}
