//! The scheduler against the in-memory host and a recording stand-in for the glue's streams.

use std::collections::HashSet;

use seckill_core::feed::{FlagsFeed, SaleFlags};
use seckill_core::ticket;

use super::*;
use crate::config::Config;
use crate::edge::Request;
use crate::flags::{store_feed, Stored};
use crate::host::{MemHost, MemStore, Reason};
use crate::poller::init_keys;

const SECRET: &str = "dev-ticket-secret";
const T0: u64 = 1_800_000_000_000;
const START: u64 = T0 + 10_000;

fn sale(sold_out: bool, stock_left: Option<u64>) -> SaleFlags {
    SaleFlags { sku: "phone".into(), starts_at: START, ends_at: T0 + 3_600_000, sold_out, per_user_limit: 1, stock_left, ..SaleFlags::default() }
}

fn put_feed(host: &MemHost, version: u64, s: SaleFlags) {
    let feed = serde_json::to_vec(&FlagsFeed { version, server_time: host.now.get(), sales: vec![s], edges: None }).unwrap();
    assert!(matches!(store_feed(host, &feed, host.now.get(), 8), Ok(Stored::Updated { .. })));
}

/// An edge running the start lottery (held at the edge), a sale starting at `START`.
fn world(s: SaleFlags) -> (MemHost, Edge) {
    let host = MemHost::new(MemStore::new(), T0);
    let json = format!(r#"{{"ticket_secrets":["{SECRET}"],"edge_key":"ek","start_lottery_ms":1000}}"#);
    let cfg = Config::from_json(json.as_bytes()).unwrap();
    init_keys(&host, cfg.buckets, cfg.slots_per_bucket).unwrap();
    put_feed(&host, 1, s);
    (host, Edge::new(cfg))
}

/// `n` first clicks in the lottery's window, held as streams 0..n.
fn hold_n(host: &MemHost, edge: &Edge, held: &HeldStreams<u32>, n: u32) -> Vec<Held> {
    host.now.set(START + 10);
    (0..n)
        .map(|i| {
            let auth = format!("Bearer {}", ticket::mint(SECRET.as_bytes(), &format!("u{i}"), T0 / 1000 + 7200).unwrap());
            let req = Request { method: "POST", path: "/api/sales/phone/orders", authorization: Some(&auth), proof: None };
            let Decision::Hold(h) = edge.on_request(host, &req) else { panic!("u{i} not held") };
            assert!(held.hold(host, i, h.clone()));
            h
        })
        .collect()
}

/// Records what the scheduler asked of each stream.
#[derive(Default)]
struct Recorder {
    gone: HashSet<u32>,
    fail_replies: bool,
    current: Option<u32>,
    selected: Vec<u32>,
    resumed: Vec<u32>,
    replied: Vec<(u32, u16)>,
    headers: Vec<(u32, Vec<(&'static str, String)>)>,
}

impl Streams<u32> for Recorder {
    fn select(&mut self, key: &u32) -> bool {
        self.current = (!self.gone.contains(key)).then_some(*key);
        self.selected.push(*key);
        self.current.is_some()
    }
    fn set_headers(&mut self, headers: &[(&'static str, String)]) {
        self.headers.push((self.current.unwrap(), headers.to_vec()));
    }
    fn resume(&mut self) -> bool {
        self.resumed.push(self.current.unwrap());
        true
    }
    fn reply(&mut self, reply: &Reply) -> bool {
        self.replied.push((self.current.unwrap(), reply.status));
        !self.fail_replies
    }
}

#[test]
fn the_queue_serves_earliest_turn_first_in_arrival_order_and_at_most_max() {
    let mut q = TurnQueue::default();
    for (key, turn) in [(1, 30), (2, 10), (3, 20), (4, 10), (5, 99)] {
        q.push(key, turn, format!("item{key}"));
    }
    assert!(q.take_due(9, 10).is_empty(), "nothing due before the first turn");
    let due = q.take_due(30, 3);
    assert_eq!(due, vec![(2, "item2".to_owned()), (4, "item4".to_owned()), (3, "item3".to_owned())]);
    assert_eq!(q.len(), 2);
    q.forget(&5);
    assert_eq!(q.take_due(1_000, 10), vec![(1, "item1".to_owned())]);
    assert!(q.is_empty());
}

#[test]
fn a_tick_serves_at_most_max_turns_in_turn_order_then_the_rest() {
    let (host, edge) = world(sale(false, None));
    let held = HeldStreams::default();
    let holds = hold_n(&host, &edge, &held, 20);
    host.now.set(START + 2_000);
    let mut s = Recorder::default();
    held.serve_turns(&edge, &host, &mut s, START + 2_000);
    assert_eq!(s.resumed.len(), MAX_TURNS_PER_TICK, "one tick serves at most {MAX_TURNS_PER_TICK}");
    let turns: Vec<u64> = s.resumed.iter().map(|k| holds[*k as usize].turn_ms).collect();
    assert!(turns.windows(2).all(|w| w[0] <= w[1]), "served in turn order: {turns:?}");
    assert!(held.holding(), "the rest still held");
    // Every one served was passed with its own uid, and its answer is learned later.
    for k in &s.resumed {
        let (_, headers) = s.headers.iter().find(|(h, _)| h == k).unwrap();
        assert!(headers.contains(&("x-seckill-uid", format!("u{k}"))), "{headers:?}");
        assert_eq!(held.take_learn(k).map(|l| l.uid), Some(format!("u{k}")));
        assert_eq!(held.take_learn(k), None, "taken once");
    }
    held.serve_turns(&edge, &host, &mut s, START + 2_010);
    assert_eq!(s.resumed.len(), 20);
    assert!(!held.holding());
    assert_eq!(host.decisions(Reason::Passed), 20);
}

#[test]
fn nothing_is_served_before_its_turn() {
    let (host, edge) = world(sale(false, None));
    let held = HeldStreams::default();
    let holds = hold_n(&host, &edge, &held, 3);
    let first = holds.iter().map(|h| h.turn_ms).min().unwrap();
    let mut s = Recorder::default();
    held.serve_turns(&edge, &host, &mut s, first - 1);
    assert!(s.selected.is_empty());
    held.serve_turns(&edge, &host, &mut s, first);
    assert_eq!(s.resumed.len(), 1);
}

#[test]
fn a_stream_that_is_gone_is_skipped_without_deciding_it() {
    let (host, edge) = world(sale(false, None));
    let held = HeldStreams::default();
    hold_n(&host, &edge, &held, 3);
    let mut s = Recorder { gone: HashSet::from([1]), ..Recorder::default() };
    held.serve_turns(&edge, &host, &mut s, START + 2_000);
    assert_eq!(s.selected.len(), 3);
    assert_eq!(s.resumed.len(), 2);
    assert!(!s.resumed.contains(&1));
    assert_eq!(host.decisions(Reason::Passed), 2, "the gone stream was not decided");
    assert!(!held.holding(), "and not held again");
}

#[test]
fn a_full_budget_holds_the_buy_again_and_a_sold_out_sale_answers_it() {
    let (host, edge) = world(sale(false, Some(1)));
    let held = HeldStreams::default();
    hold_n(&host, &edge, &held, 2);
    let now = START + 2_000;
    host.now.set(now);
    let mut s = Recorder::default();
    held.serve_turns(&edge, &host, &mut s, now);
    assert_eq!((s.resumed.len(), s.replied.len()), (1, 0), "one unit: one passes, the other waits");
    assert!(held.holding());
    // Looked at again on the next tick, still ahead of a turn that came after it.
    held.serve_turns(&edge, &host, &mut s, now + 10);
    assert_eq!(s.selected.len(), 3, "looked at again at the next tick");
    assert_eq!((s.resumed.len(), s.replied.len()), (1, 0), "still waiting for the budget");
    // The sale sells out meanwhile; the waiting buy is told so, and a failed reply lets it through.
    put_feed(&host, 2, sale(true, Some(0)));
    host.now.set(now + 20);
    s.fail_replies = true;
    held.serve_turns(&edge, &host, &mut s, now + 20);
    let last = *s.selected.last().unwrap();
    assert_eq!(s.replied, vec![(last, 410)]);
    assert_eq!(s.resumed.last(), Some(&last), "resumed after the reply failed");
    assert_eq!(host.counter(Counter::HostErrors), 1);
    assert!(!held.holding());
}

#[test]
fn forgetting_a_stream_drops_its_turn_and_what_it_would_learn() {
    let (host, edge) = world(sale(false, None));
    let held = HeldStreams::default();
    hold_n(&host, &edge, &held, 2);
    held.forget(&0);
    let mut s = Recorder::default();
    held.serve_turns(&edge, &host, &mut s, START + 2_000);
    assert_eq!(s.selected, vec![1]);
    held.forget(&1);
    assert_eq!(held.take_learn(&1), None);
}

#[test]
fn the_tick_is_fast_while_holding_and_does_the_slow_work_once_per_interval() {
    let mut t = TickRate::new(100);
    assert_eq!(t.wanted_period(false), None, "already at the interval");
    assert!(t.slow_work_due(1_000) && t.slow_work_due(1_001), "at the slow rate every tick does it");
    assert_eq!(t.wanted_period(true), Some(HOLD_TICK_MS));
    t.period_set(true);
    assert_eq!(t.wanted_period(true), None);
    assert!(!t.slow_work_due(1_050), "fast ticks in between skip it");
    assert!(t.slow_work_due(1_101), "once the interval is over");
    assert!(!t.slow_work_due(1_150));
    assert!(t.slow_work_due(900), "the clock went back: do it now");
    assert_eq!(t.wanted_period(false), Some(100));
    t.period_set(false);
    assert!(t.slow_work_due(901));
}
