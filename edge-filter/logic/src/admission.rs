//! The admission budget: a worker passes no more buys of a sku at once than its share of the
//! units left, so the origin is not sent hundreds of buys for the last few units.
//!
//! Why: when a flash crowd arrives, thousands of first clicks are valid (each uid's first request
//! in its window), and the origin answers in tens to hundreds of milliseconds under that load. A
//! filter that passes every valid first click fills the origin's queue with far more buys than
//! there are units; all but a few end as `sold_out`, and that queue, not the stock, is what the
//! origin spends its time on. The origin's flags feed carries `stock_left` (units left when the
//! feed was taken, refreshed every ~100 ms); each worker counts the buys it passed whose answer has
//! not come back yet, and passes another only while that count is below
//! `ceil(stock_left / workers)`. Over it, the buy gets `429 throttled` with a short Retry-After and
//! nothing is recorded in the uid's slot (it has not used its window). When answers come back the
//! budget frees again; when a unit comes back (a buy that failed, an order that expired) the next
//! feed shows it.
//!
//! A win answered since the feed was taken keeps its place in the count until a new feed version
//! arrives (the feed's `stock_left` does not show it yet), so between feed updates a worker does
//! not re-grant units that are already sold.
//!
//! Bounds: at most `stock_left + workers` buys in flight (each worker rounds its share up), plus
//! the wins committed between the feed's snapshot and the edge receiving it. A buy whose answer never comes
//! (the client went away) stops counting after `answer_timeout_ms`. Without `stock_left` in the
//! feed (an older origin) there is no budget.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// What an over-budget buy is told to wait: long enough for answers in flight to come back.
pub const AT_CAPACITY_RETRY_MS: u64 = 1_000;

/// One sku's count on one worker.
#[derive(Debug, Default)]
struct SkuCount {
    /// When each buy still awaiting its answer was passed.
    in_flight: Vec<u64>,
    /// Wins answered since the feed version below was read.
    unseen_wins: u64,
    feed_version: u64,
}

/// One worker's buys in flight, per sku.
#[derive(Debug)]
pub struct Admission {
    counts: RefCell<HashMap<String, SkuCount>>,
    workers: Cell<u64>,
}

impl Default for Admission {
    fn default() -> Self {
        Admission { counts: RefCell::new(HashMap::new()), workers: Cell::new(1) }
    }
}

impl Admission {
    /// How many workers share the stock (from the shared worker-id counter; at least 1).
    pub fn set_workers(&self, n: u64) {
        self.workers.set(n.max(1));
    }

    pub fn workers(&self) -> u64 {
        self.workers.get()
    }

    /// This worker's share of `stock_left`.
    pub fn share(&self, stock_left: u64) -> u64 {
        stock_left.div_ceil(self.workers.get())
    }

    /// May another buy of `sku` be passed at `now_ms`, given the feed (`feed_version`) says
    /// `stock_left`? (`stock_left: None`: no budget.)
    pub fn allows(&self, sku: &str, stock_left: Option<u64>, feed_version: u64, now_ms: u64, answer_timeout_ms: u64) -> bool {
        let Some(left) = stock_left else { return true };
        let Ok(mut map) = self.counts.try_borrow_mut() else { return true };
        let Some(c) = map.get_mut(sku) else { return left > 0 };
        if c.feed_version != feed_version {
            c.feed_version = feed_version;
            c.unseen_wins = 0;
        }
        c.in_flight.retain(|&at| now_ms.saturating_sub(at) < answer_timeout_ms && at <= now_ms.saturating_add(answer_timeout_ms));
        (c.in_flight.len() as u64).saturating_add(c.unseen_wins) < self.share(left)
    }

    /// A buy of `sku` was passed at `now_ms` (under feed version `feed_version`).
    pub fn passed(&self, sku: &str, feed_version: u64, now_ms: u64) {
        if let Ok(mut map) = self.counts.try_borrow_mut() {
            let c = map.entry(sku.to_owned()).or_insert_with(|| SkuCount { feed_version, ..SkuCount::default() });
            c.in_flight.push(now_ms);
        }
    }

    /// The answer to the buy of `sku` passed at `passed_at_ms` came back (`won`: it took a unit).
    pub fn answered(&self, sku: &str, passed_at_ms: u64, won: bool) {
        if let Ok(mut map) = self.counts.try_borrow_mut() {
            if let Some(c) = map.get_mut(sku) {
                if let Some(i) = c.in_flight.iter().position(|&at| at == passed_at_ms) {
                    c.in_flight.swap_remove(i);
                    if won {
                        c.unseen_wins += 1;
                    }
                }
            }
        }
    }

    /// Buys of `sku` in flight (tests, diagnostics).
    pub fn in_flight(&self, sku: &str) -> usize {
        self.counts.borrow().get(sku).map_or(0, |c| c.in_flight.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_stock_figure_no_budget() {
        let a = Admission::default();
        for t in 0..1000 {
            assert!(a.allows("x", None, 1, t, 5_000));
            a.passed("x", 1, t);
        }
    }

    #[test]
    fn passes_up_to_the_workers_share_then_frees_as_answers_return() {
        let a = Admission::default();
        a.set_workers(2);
        assert_eq!(a.share(5), 3);
        for t in 0..3 {
            assert!(a.allows("x", Some(5), 1, t, 5_000));
            a.passed("x", 1, t);
        }
        assert!(!a.allows("x", Some(5), 1, 3, 5_000), "3 in flight = this worker's share of 5");
        assert!(a.allows("y", Some(5), 1, 3, 5_000), "per sku");
        a.answered("x", 1, false);
        assert_eq!(a.in_flight("x"), 2);
        assert!(a.allows("x", Some(5), 1, 4, 5_000));
        // The feed says fewer units are left: the share shrinks with them.
        assert!(!a.allows("x", Some(3), 2, 4, 5_000));
        assert!(!a.allows("x", Some(0), 2, 4, 5_000));
        assert!(!a.allows("z", Some(0), 2, 4, 5_000), "nothing left, nothing passed");
    }

    #[test]
    fn unanswered_buys_stop_counting_after_the_answer_timeout() {
        let a = Admission::default();
        a.passed("x", 1, 1_000);
        assert!(!a.allows("x", Some(1), 1, 1_500, 5_000));
        assert!(a.allows("x", Some(1), 1, 6_000, 5_000));
        assert_eq!(a.in_flight("x"), 0);
    }

    #[test]
    fn unknown_answers_change_nothing() {
        let a = Admission::default();
        a.answered("x", 7, true);
        a.passed("x", 1, 1);
        a.answered("x", 2, true);
        assert_eq!(a.in_flight("x"), 1);
        assert!(a.allows("x", Some(2), 1, 3, 5_000), "no unseen win was counted");
    }

    #[test]
    fn a_win_keeps_its_unit_until_the_feed_shows_it() {
        let a = Admission::default();
        a.passed("x", 7, 1);
        a.passed("x", 7, 2);
        assert!(!a.allows("x", Some(2), 7, 3, 5_000));
        a.answered("x", 1, true); // sold: the feed (version 7) still says 2 left
        a.answered("x", 2, false); // failed: its unit is free again
        assert!(a.allows("x", Some(2), 7, 4, 5_000));
        a.passed("x", 7, 4);
        assert!(!a.allows("x", Some(2), 7, 5, 5_000), "1 in flight + 1 unseen win = 2 units");
        // The next feed shows the sale: 1 left, 1 in flight.
        assert!(!a.allows("x", Some(1), 8, 6, 5_000));
        a.answered("x", 4, false);
        assert!(a.allows("x", Some(1), 8, 7, 5_000));
    }
}
