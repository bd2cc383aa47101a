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
//! Bounds: at most `stock_left + workers` buys in flight (each worker rounds its share up), plus
//! the wins not yet visible in the feed (one feed period's worth). A buy whose answer never comes
//! (the client went away) stops counting after `answer_timeout_ms`. Without `stock_left` in the
//! feed (an older origin) there is no budget.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// What an over-budget buy is told to wait: long enough for answers in flight to come back.
pub const AT_CAPACITY_RETRY_MS: u64 = 1_000;

/// One worker's buys in flight, per sku.
#[derive(Debug)]
pub struct Admission {
    in_flight: RefCell<HashMap<String, Vec<u64>>>,
    workers: Cell<u64>,
}

impl Default for Admission {
    fn default() -> Self {
        Admission { in_flight: RefCell::new(HashMap::new()), workers: Cell::new(1) }
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

    /// May another buy of `sku` be passed at `now_ms`? (`stock_left: None`: no budget.)
    pub fn allows(&self, sku: &str, stock_left: Option<u64>, now_ms: u64, answer_timeout_ms: u64) -> bool {
        let Some(left) = stock_left else { return true };
        let Ok(mut map) = self.in_flight.try_borrow_mut() else { return true };
        let Some(passes) = map.get_mut(sku) else { return left > 0 };
        passes.retain(|&at| now_ms.saturating_sub(at) < answer_timeout_ms && at <= now_ms.saturating_add(answer_timeout_ms));
        (passes.len() as u64) < self.share(left)
    }

    /// A buy of `sku` was passed at `now_ms`.
    pub fn passed(&self, sku: &str, now_ms: u64) {
        if let Ok(mut map) = self.in_flight.try_borrow_mut() {
            match map.get_mut(sku) {
                Some(v) => v.push(now_ms),
                None => {
                    map.insert(sku.to_owned(), vec![now_ms]);
                }
            }
        }
    }

    /// The answer to the buy of `sku` passed at `passed_at_ms` came back.
    pub fn answered(&self, sku: &str, passed_at_ms: u64) {
        if let Ok(mut map) = self.in_flight.try_borrow_mut() {
            if let Some(v) = map.get_mut(sku) {
                if let Some(i) = v.iter().position(|&at| at == passed_at_ms) {
                    v.swap_remove(i);
                }
                if v.is_empty() {
                    map.remove(sku);
                }
            }
        }
    }

    /// Buys of `sku` in flight (tests, diagnostics).
    pub fn in_flight(&self, sku: &str) -> usize {
        self.in_flight.borrow().get(sku).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_stock_figure_no_budget() {
        let a = Admission::default();
        for t in 0..1000 {
            assert!(a.allows("x", None, t, 5_000));
            a.passed("x", t);
        }
    }

    #[test]
    fn passes_up_to_the_workers_share_then_frees_as_answers_return() {
        let a = Admission::default();
        a.set_workers(2);
        assert_eq!(a.share(5), 3);
        for t in 0..3 {
            assert!(a.allows("x", Some(5), t, 5_000));
            a.passed("x", t);
        }
        assert!(!a.allows("x", Some(5), 3, 5_000), "3 in flight = this worker's share of 5");
        assert!(a.allows("y", Some(5), 3, 5_000), "per sku");
        a.answered("x", 1);
        assert_eq!(a.in_flight("x"), 2);
        assert!(a.allows("x", Some(5), 4, 5_000));
        // The feed says fewer units are left: the share shrinks with them.
        assert!(!a.allows("x", Some(3), 4, 5_000));
        assert!(!a.allows("x", Some(0), 4, 5_000));
        assert!(!a.allows("z", Some(0), 4, 5_000), "nothing left, nothing passed");
    }

    #[test]
    fn unanswered_buys_stop_counting_after_the_answer_timeout() {
        let a = Admission::default();
        a.passed("x", 1_000);
        assert!(!a.allows("x", Some(1), 1_500, 5_000));
        assert!(a.allows("x", Some(1), 6_000, 5_000));
        assert_eq!(a.in_flight("x"), 0);
    }

    #[test]
    fn unknown_answers_change_nothing() {
        let a = Admission::default();
        a.answered("x", 7);
        a.passed("x", 1);
        a.answered("x", 2);
        assert_eq!(a.in_flight("x"), 1);
    }
}
