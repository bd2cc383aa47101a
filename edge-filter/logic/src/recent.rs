//! A worker's own copy of the (uid, sku) entries it touched recently, so that a repeat inside the
//! window is refused without reading shared data.
//!
//! Why: a flash crowd is mostly repeats (impatient clicks, bots in a loop), and each shared-data
//! read costs a host call plus a call back into the VM to allocate the value: the largest cost of
//! a refused repeat. Shared data stays the only authority for *letting a request through* (every
//! pass is a compare-and-swap there, so one request per window reaches the origin whichever worker
//! it lands on); this copy is only ever used to *refuse*, and only while what it says cannot have
//! changed:
//! - an entry this worker passed itself: the origin's answer comes back to this worker (and is
//!   recorded here as well as in shared data), and no other worker can pass the pair before the
//!   window ends;
//! - an entry read from shared data that already carries the origin's answer: nothing changes it
//!   before the window ends (a winner: before `winner_ttl_ms`);
//! - an entry read from shared data still waiting for the answer (another worker passed it): the
//!   answer may land there at any moment, so the copy is trusted for [`PENDING_RECHECK_MS`] only,
//!   unless the answer is overdue (`answer_timeout_ms` after the pass: Envoy's route timeout has
//!   answered for the origin, and nothing will ever be learned).
//!
//! A copy that cannot refuse (its window is over) sends the request to shared data as before. The
//! cache is a fixed array of [`RecentPairs::SLOTS`] entries per worker,
//! placed by the pair's slot (already a keyed SipHash); a collision just replaces the older copy.
//! At 64 bytes an entry that is 512 KiB per worker, allocated when the worker is configured.

use std::cell::RefCell;

use crate::slots::{Entry, Slot};

/// How long a copy of an entry still waiting for the origin's answer is trusted.
pub const PENDING_RECHECK_MS: u64 = 20;

#[derive(Debug, Clone, Copy)]
struct Copy {
    slot: Slot,
    entry: Entry,
    /// When it was read from shared data (or written there by this worker).
    read_at_ms: u64,
    /// This worker passed the request: the answer comes back here.
    mine: bool,
}

/// One worker's recent (uid, sku) entries.
#[derive(Debug)]
pub struct RecentPairs {
    slots: RefCell<Vec<Option<Copy>>>,
}

impl Default for RecentPairs {
    fn default() -> Self {
        RecentPairs { slots: RefCell::new(vec![None; Self::SLOTS]) }
    }
}

impl RecentPairs {
    /// Entries per worker.
    pub const SLOTS: usize = 8192;

    fn index(slot: Slot) -> usize {
        ((slot.fp ^ u64::from(slot.bucket)) % Self::SLOTS as u64) as usize
    }

    /// The entry of `slot` if this worker's copy can be trusted at `now_ms` (see the module doc).
    pub fn get(&self, slot: Slot, now_ms: u64, answer_timeout_ms: u64) -> Option<Entry> {
        let slots = self.slots.try_borrow().ok()?;
        let c = slots.get(Self::index(slot))?.as_ref()?;
        if c.slot != slot || now_ms < c.entry.last_pass_ms || now_ms < c.read_at_ms {
            return None;
        }
        let settled = c.mine || c.entry.outcome.is_some() || now_ms - c.entry.last_pass_ms >= answer_timeout_ms;
        (settled || now_ms - c.read_at_ms < PENDING_RECHECK_MS).then_some(c.entry)
    }

    /// Remember `entry` of `slot` as read from (or written to) shared data at `now_ms`.
    pub fn put(&self, slot: Slot, entry: Entry, now_ms: u64, mine: bool) {
        if let Ok(mut slots) = self.slots.try_borrow_mut() {
            if let Some(s) = slots.get_mut(Self::index(slot)) {
                *s = Some(Copy { slot, entry, read_at_ms: now_ms, mine });
            }
        }
    }

    /// Record the origin's answer to the request this worker passed at `passed_at_ms`.
    pub fn learn(&self, slot: Slot, passed_at_ms: u64, answered: Entry) {
        if let Ok(mut slots) = self.slots.try_borrow_mut() {
            if let Some(Some(c)) = slots.get_mut(Self::index(slot)) {
                if c.slot == slot && c.entry.last_pass_ms == passed_at_ms {
                    c.entry = answered;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seckill_core::Outcome;

    const SLOT: Slot = Slot { bucket: 7, fp: 0xfeed };
    const TIMEOUT: u64 = 5_000;

    #[test]
    fn own_passes_are_trusted_until_replaced() {
        let r = RecentPairs::default();
        assert_eq!(r.get(SLOT, 1_000, TIMEOUT), None);
        r.put(SLOT, Entry::new(SLOT.fp, 1_000), 1_000, true);
        assert_eq!(r.get(SLOT, 4_000, TIMEOUT).map(|e| e.last_pass_ms), Some(1_000));
        // Another pair in the same array slot replaces it; the old one is then unknown.
        let other = Slot { bucket: SLOT.bucket, fp: SLOT.fp + RecentPairs::SLOTS as u64 };
        r.put(other, Entry::new(other.fp, 2_000), 2_000, true);
        assert_eq!(r.get(SLOT, 4_000, TIMEOUT), None);
        assert!(r.get(other, 4_000, TIMEOUT).is_some());
    }

    #[test]
    fn a_pending_copy_from_shared_data_is_rechecked_soon_unless_overdue() {
        let r = RecentPairs::default();
        r.put(SLOT, Entry::new(SLOT.fp, 1_000), 1_010, false);
        assert!(r.get(SLOT, 1_010 + PENDING_RECHECK_MS - 1, TIMEOUT).is_some());
        assert_eq!(r.get(SLOT, 1_010 + PENDING_RECHECK_MS, TIMEOUT), None, "the answer may have landed elsewhere");
        // Read again long after the pass: no answer will come any more.
        r.put(SLOT, Entry::new(SLOT.fp, 1_000), 1_000 + TIMEOUT, false);
        assert!(r.get(SLOT, 1_000 + TIMEOUT + 3_000, TIMEOUT).is_some());
    }

    #[test]
    fn an_answered_copy_is_trusted_and_answers_are_learned_into_own_passes() {
        let r = RecentPairs::default();
        let answered = Entry { outcome: Some(Outcome::SoldOut), ..Entry::new(SLOT.fp, 1_000) };
        r.put(SLOT, answered, 1_050, false);
        assert_eq!(r.get(SLOT, 3_000, TIMEOUT), Some(answered));

        r.put(SLOT, Entry::new(SLOT.fp, 5_000), 5_000, true);
        let won = Entry { outcome: Some(Outcome::Won), seq: 42, ..Entry::new(SLOT.fp, 5_000) };
        r.learn(SLOT, 4_999, won); // an older pass's answer: ignored
        assert_eq!(r.get(SLOT, 5_001, TIMEOUT).and_then(|e| e.outcome), None);
        r.learn(SLOT, 5_000, won);
        assert_eq!(r.get(SLOT, 5_001, TIMEOUT), Some(won));
    }

    #[test]
    fn the_stated_size_holds() {
        assert!(std::mem::size_of::<Option<Copy>>() <= 64, "{}", std::mem::size_of::<Option<Copy>>());
    }

    #[test]
    fn a_clock_that_went_back_trusts_nothing() {
        let r = RecentPairs::default();
        r.put(SLOT, Entry::new(SLOT.fp, 1_000), 1_000, true);
        assert_eq!(r.get(SLOT, 999, TIMEOUT), None);
    }
}
