//! A buy's steps 2 to 7 (see [`crate::edge`]'s module doc), one function per step, for a verified
//! uid and a well-formed sku: [`Edge::decide_buy`] reads top to bottom as the list.
//!
//! Steps 3 to 6 share one read-modify-write of the (uid, sku) bucket in shared data (so two
//! workers cannot both let the same uid through); [`Edge::refusal`] (3 + 4), the lottery's hold
//! (5, its turn drawn before) and the budget (6) are decided inside it.

use std::cell::OnceCell;

use seckill_core::feed::SaleFlags;
use seckill_core::order::order_id;
use seckill_core::throttle::{decide, ThrottleDecision};
use seckill_core::{BuyAnswer, Outcome, SaleState};

use crate::admission::AT_CAPACITY_RETRY_MS;
use crate::edge::{Decision, Edge, Held, Learn, HOLD_FOR_BUDGET_MS};
use crate::flags::Lookup;
use crate::host::{update, Counter, Host, Reason};
use crate::slots::{bucket_key, Bucket, Entry, Slot, Upsert};

/// What the slot steps (3 to 6) decided.
pub(crate) enum Verdict {
    Pass(Upsert),
    /// Start lottery: come back at this time (recorded in the slot).
    Hold(u64),
    /// Admission budget full (the window recorded up to the `Retry-After`).
    AtCapacity,
    Dedup(u64),
    Replay(Outcome, u64),
    Throttle(u64),
}

/// Step 5's turn for a buy of the sale's first `2 × start_lottery_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Turn {
    /// A first buy in the first `start_lottery_ms`: a moment drawn from the pair's fingerprint in
    /// the next `start_lottery_ms`.
    Drawn(u64),
    /// A first buy while the drawn turns are being served: after all of them (at the end of the
    /// draw, `at`), unless the pair already had a drawn turn (its window ends at or after
    /// `lottery_end`).
    AfterDraw { at: u64, lottery_end: u64 },
}

impl Turn {
    /// When the buy is held until, given the pair's entry (if any).
    fn hold_until(self, entry: Option<&Entry>, window_ms: u64) -> Option<u64> {
        match self {
            Turn::Drawn(at) => Some(at),
            Turn::AfterDraw { at, lottery_end } => match entry {
                Some(e) if e.last_pass_ms.saturating_add(window_ms) >= lottery_end => None,
                _ => Some(at),
            },
        }
    }
}

/// One buy being decided: what the steps read.
struct Buy<'a> {
    sku: &'a str,
    uid: String,
    now: u64,
    /// The sale's flags, when the feed knows the sale.
    known: Option<SaleFlags>,
    slot: Slot,
    /// Step 3 applies (`per_user_limit == 1` and winners are remembered).
    dedup: bool,
    /// Step 5: when the start lottery holds a first buy until (see [`Turn`]).
    lottery: Option<Turn>,
    /// A held buy at its turn: the window end its hold recorded (see [`Edge::hold_mark`]), so that
    /// its own hold is not taken for a repeat.
    own_mark: Option<u64>,
    /// The feed version the budget was counted against.
    feed_version: u64,
    /// The start of the batch open now, for a sale released in batches (0 otherwise): windows
    /// opened before it do not count, and a `sold_out` answer is learned for it.
    batch_opened_at: u64,
    /// A held buy at its turn, before its give-up: over the budget it is held again (nothing
    /// recorded), not refused.
    waits_on_capacity: bool,
}

impl Edge {
    /// Steps 2 to 7 for a verified uid and a well-formed sku, with the request's `seckill-proof`.
    /// `turn`: a held buy decided again at its turn.
    pub(crate) fn decide_buy<H: Host + ?Sized>(&self, host: &H, sku: &str, uid: String, now: u64, turn: Option<&Held>, proof: Option<&str>) -> Decision {
        let known = match self.sale_state(host, sku, now) {
            Ok(known) => known,
            Err(answered) => return answered,
        };
        let slot = self.hasher.slot(&uid, sku, self.cfg.buckets);
        if let Some(flags) = known.as_ref() {
            if let Err(answered) = self.challenge(host, flags, &uid, proof, now) {
                if let Some(h) = turn {
                    self.release_hold(host, slot, self.hold_mark(h.give_up_ms), now);
                }
                return answered;
            }
        }
        let buy = Buy {
            dedup: known.as_ref().is_some_and(|f| f.per_user_limit == 1) && self.cfg.winner_ttl_ms > 0,
            // A held buy at its turn is not drawn again.
            lottery: if turn.is_some() { None } else { self.lottery_turn(known.as_ref(), slot, now) },
            own_mark: turn.map(|h| self.hold_mark(h.give_up_ms)),
            feed_version: self.flags.try_borrow().ok().and_then(|f| f.version()).unwrap_or(0),
            batch_opened_at: known.as_ref().filter(|f| !f.batches.is_empty()).map_or(0, |f| f.opened_at(now)),
            waits_on_capacity: turn.is_some_and(|h| now < h.give_up_ms),
            sku,
            uid,
            now,
            known,
            slot,
        };
        let verdict = self.slot_verdict(host, &buy);
        self.answer(host, buy, verdict, turn, proof)
    }

    /// Step 2, the sale state from the flags: `Err` is the edge's answer (unknown sku, not
    /// started, ended, sold out); `Ok(None)` passes on without flags (no feed, or the sku absent
    /// from a stale feed).
    fn sale_state<H: Host + ?Sized>(&self, host: &H, sku: &str, now: u64) -> Result<Option<SaleFlags>, Decision> {
        let flags = match self.lookup(host, sku, now) {
            Lookup::NoFeed | Lookup::Absent { fresh: false } => return Ok(None),
            Lookup::Absent { fresh: true } => {
                let a = BuyAnswer { sku: Some(sku.to_owned()), ..BuyAnswer::new(Outcome::UnknownSku) };
                return Err(self.edge_answer(host, Reason::UnknownSku, &a));
            }
            Lookup::Known { flags, .. } => flags,
        };
        let window = |o| BuyAnswer { sku: Some(sku.to_owned()), starts_at: Some(flags.starts_at), ends_at: Some(flags.ends_at), ..BuyAnswer::new(o) };
        match flags.state_at(now) {
            SaleState::Upcoming if now.saturating_add(self.cfg.start_grace_ms) < flags.starts_at => {
                Err(self.edge_answer(host, Reason::NotStarted, &window(Outcome::NotStarted)))
            }
            SaleState::Ended => Err(self.edge_answer(host, Reason::Ended, &window(Outcome::Ended))),
            SaleState::SoldOut => {
                let a = BuyAnswer { sku: Some(sku.to_owned()), ..BuyAnswer::new(Outcome::SoldOut) };
                Err(self.edge_answer(host, Reason::SoldOut, &a))
            }
            SaleState::Upcoming | SaleState::OnSale => Ok(Some(flags)),
        }
    }

    /// Step 2's second half, from the sale's start: when the sale asks for a challenge, the
    /// uid's solution to it (`Err`: `428 challenge` with the challenge to solve; nothing is
    /// recorded, so solving it and asking again is a first buy). A buy held by the start lottery
    /// from the start grace is asked at its turn (its window ends there, so the solved buy that
    /// follows passes at once).
    fn challenge<H: Host + ?Sized>(&self, host: &H, flags: &SaleFlags, uid: &str, proof: Option<&str>, now: u64) -> Result<(), Decision> {
        let Some(bits) = flags.challenge().filter(|_| now >= flags.starts_at) else { return Ok(()) };
        match self.challenges.check(uid, &flags.sku, flags.starts_at, bits, proof) {
            Ok(()) => Ok(()),
            Err(why) => {
                let issued = self.challenges.issue(uid, &flags.sku, flags.starts_at, bits);
                let a = BuyAnswer { sku: Some(flags.sku.clone()), ..BuyAnswer::challenge(issued, &why) };
                Err(self.edge_answer(host, Reason::Challenge, &a))
            }
        }
    }

    /// A held buy answered at its turn without being passed (asked for the challenge, when it was
    /// held from the start grace): its pair's window, closed by the hold until its give-up, ends
    /// now, so the solved buy that follows passes at once. Only the hold's own entry is changed.
    fn release_hold<H: Host + ?Sized>(&self, host: &H, slot: Slot, mark: u64, now: u64) {
        let cfg = &self.cfg;
        let released = Entry::new(slot.fp, now.saturating_sub(cfg.window_ms));
        let res = update(host, &bucket_key(slot.bucket), cfg.cas_retries, |cur| {
            let mut bucket = Bucket::decode(cur);
            if !bucket.find(slot.fp).is_some_and(|e| is_hold_mark(e, mark)) {
                return (None, ());
            }
            bucket.upsert(released, cfg.slots_per_bucket as usize, now, cfg.window_ms, cfg.winner_ttl_ms);
            (Some(bucket.encode_fixed(cfg.slots_per_bucket as usize)), ())
        });
        match res {
            Ok(()) => self.recent.put(slot, released, now, true),
            Err(c) => host.count(c),
        }
    }

    /// Steps 3 + 4 against one entry of the pair: dedup (a live winner), then throttle (inside
    /// the window: replay the last final answer, else `throttled`). `None`: neither refuses. A
    /// window opened before the current batch of a sale released in batches does not count: each
    /// batch starts like the sale, with nobody's window open.
    fn refusal(&self, buy: &Buy<'_>, e: &Entry) -> Option<Verdict> {
        if buy.dedup && e.is_winner() && buy.now.saturating_sub(e.last_pass_ms) < self.cfg.winner_ttl_ms {
            return Some(Verdict::Dedup(e.seq));
        }
        if e.last_pass_ms < buy.batch_opened_at || buy.own_mark.is_some_and(|mark| is_hold_mark(e, mark)) {
            return None;
        }
        match decide(Some(e.last_pass_ms), buy.now, self.cfg.window_ms) {
            ThrottleDecision::Wait { retry_after_ms } => Some(match e.outcome {
                Some(o) if o.is_final() => Verdict::Replay(o, e.seq),
                _ => Verdict::Throttle(retry_after_ms),
            }),
            ThrottleDecision::Pass => None,
        }
    }

    /// Step 5, the start lottery: a first buy in the sale's first `start_lottery_ms` (or its
    /// batch's, for a sale released in batches) waits until a moment drawn from its slot's
    /// fingerprint in the next `start_lottery_ms`; a first buy in that next `start_lottery_ms`
    /// waits until its end, behind every drawn turn (else a click just after the draw would
    /// pass ahead of the clicks it drew turns for).
    fn lottery_turn(&self, known: Option<&SaleFlags>, slot: Slot, now: u64) -> Option<Turn> {
        let lottery_ms = self.cfg.start_lottery_ms;
        let flags = known.filter(|_| lottery_ms > 0)?;
        let lottery_end = flags.opened_at(now).saturating_add(lottery_ms);
        let draw_end = lottery_end.saturating_add(lottery_ms);
        if now < lottery_end {
            Some(Turn::Drawn(lottery_end + slot.fp % lottery_ms))
        } else {
            (now < draw_end).then_some(Turn::AfterDraw { at: draw_end, lottery_end })
        }
    }

    /// The window end a buy held at the edge records for its pair: its give-up, so that the
    /// pair's repeats are refused for as long as it may wait (for its turn, then for the budget),
    /// and none of them takes an opening of the budget ahead of it. (Told to come back instead,
    /// without `hold_at_edge`, the window ends at the turn.)
    fn hold_mark(&self, give_up_ms: u64) -> u64 {
        give_up_ms.saturating_sub(self.cfg.window_ms)
    }

    /// Steps 3 to 6: from this worker's own copy of the entry where it can only refuse, else in
    /// one read-modify-write of the pair's bucket in shared data (`Err`: that failed, with its
    /// counter; the buy is passed on).
    fn slot_verdict<H: Host + ?Sized>(&self, host: &H, buy: &Buy<'_>) -> Result<Verdict, Counter> {
        let cfg = &self.cfg;
        if let Some(v) = self.recent.get(buy.slot, buy.now, cfg.answer_timeout_ms).and_then(|e| self.refusal(buy, &e)) {
            host.count(Counter::LocalRefusals);
            return Ok(v);
        }
        // Step 6, asked once and only for a buy that would otherwise pass. A lottery hold is not in
        // flight; a buy refused here has its window closed until its `Retry-After`.
        let admitted = OnceCell::new();
        let admitted = || {
            *admitted.get_or_init(|| {
                let stock_left = buy.known.as_ref().and_then(|f| f.stock_left);
                self.admission.allows(buy.sku, stock_left, buy.feed_version, buy.now, cfg.answer_timeout_ms)
            })
        };
        let shared = update(host, &bucket_key(buy.slot.bucket), cfg.cas_retries, |cur| {
            let mut bucket = Bucket::decode(cur);
            let found = bucket.find(buy.slot.fp).copied();
            if let Some(e) = found {
                if let Some(v) = self.refusal(buy, &e) {
                    return (None, (v, e));
                }
            }
            let hold_until = buy.lottery.and_then(|t| t.hold_until(found.as_ref(), cfg.window_ms));
            if hold_until.is_none() && !admitted() {
                if buy.waits_on_capacity {
                    // A held buy before its give-up: held again, its window untouched.
                    return (None, (Verdict::AtCapacity, Entry::new(buy.slot.fp, 0)));
                }
                // Refused with `Retry-After`: the uid's window stays closed until then, so a uid
                // that ignores it catches no opening of the budget before one who waits as told.
                let retry_at = buy.now.saturating_add(self.at_capacity_retry_ms());
                let entry = Entry::new(buy.slot.fp, retry_at.saturating_sub(cfg.window_ms));
                bucket.upsert(entry, cfg.slots_per_bucket as usize, buy.now, cfg.window_ms, cfg.winner_ttl_ms);
                return (Some(bucket.encode_fixed(cfg.slots_per_bucket as usize)), (Verdict::AtCapacity, entry));
            }
            // A held uid's window is opened so that it ends at its give-up (held at the edge) or
            // at its turn (told to come back then).
            let (entry, verdict) = match hold_until {
                Some(at) if cfg.hold_at_edge => (Entry::new(buy.slot.fp, self.hold_mark(give_up_at(at))), Some(at)),
                Some(at) => (Entry::new(buy.slot.fp, at.saturating_sub(cfg.window_ms)), Some(at)),
                None => (Entry::new(buy.slot.fp, buy.now), None),
            };
            let up = bucket.upsert(entry, cfg.slots_per_bucket as usize, buy.now, cfg.window_ms, cfg.winner_ttl_ms);
            let v = verdict.map_or(Verdict::Pass(up), Verdict::Hold);
            (Some(bucket.encode_fixed(cfg.slots_per_bucket as usize)), (v, entry))
        });
        match shared {
            Ok((Verdict::AtCapacity, _)) if buy.waits_on_capacity => Ok(Verdict::AtCapacity),
            Ok((v, entry)) => {
                // Written by this worker (a pass, a hold, a budget refusal): settled here.
                let written = matches!(v, Verdict::Pass(_) | Verdict::Hold(_) | Verdict::AtCapacity);
                self.recent.put(buy.slot, entry, buy.now, written);
                Ok(v)
            }
            Err(c) => {
                // Passed on without a shared entry: this worker still refuses its repeats.
                self.recent.put(buy.slot, Entry::new(buy.slot.fp, buy.now), buy.now, true);
                Err(c)
            }
        }
    }

    /// Step 7: turn the verdict into the edge's answer, a hold, or the pass to the origin.
    fn answer<H: Host + ?Sized>(&self, host: &H, buy: Buy<'_>, verdict: Result<Verdict, Counter>, turn: Option<&Held>, proof: Option<&str>) -> Decision {
        let sku = buy.sku;
        match verdict {
            Ok(Verdict::Dedup(seq)) => {
                let a = BuyAnswer::won(Outcome::AlreadyWon, &order_id(sku, seq), sku, &buy.uid);
                self.edge_answer(host, Reason::AlreadyWon, &a)
            }
            Ok(Verdict::Replay(outcome, seq)) => self.edge_answer(host, Reason::Replayed, &replayed(&buy, outcome, seq)),
            Ok(Verdict::Throttle(ms)) => self.edge_answer(host, Reason::Throttled, &BuyAnswer::throttled(ms)),
            Ok(Verdict::Hold(at)) => {
                host.count(Counter::LotteryHolds);
                if self.cfg.hold_at_edge {
                    // The request waits at the edge for its turn (no reaction time involved).
                    return Decision::Hold(Held { turn_ms: at, give_up_ms: give_up_at(at), sku: sku.to_owned(), uid: buy.uid, proof: proof.map(str::to_owned) });
                }
                self.edge_answer(host, Reason::Throttled, &BuyAnswer::throttled(at.saturating_sub(buy.now).max(1)))
            }
            Ok(Verdict::AtCapacity) => match turn {
                // A held buy whose turn came while enough buys are in flight: it keeps waiting, in
                // its turn's place (looked at again on the next tick, before later turns).
                Some(h) if buy.now < h.give_up_ms => Decision::Hold(h.clone()),
                _ => {
                    host.count(Counter::AtCapacity);
                    self.edge_answer(host, Reason::Throttled, &BuyAnswer::throttled(self.at_capacity_retry_ms()))
                }
            },
            // Passed: with the entry written, or (with the failure's counter) without it.
            Ok(Verdict::Pass(up)) => {
                if up == Upsert::Evicted {
                    host.count(Counter::Evictions);
                }
                self.pass(host, buy)
            }
            Err(counter) => {
                host.count(counter);
                self.pass(host, buy)
            }
        }
    }

    /// The `Retry-After` of a buy refused by the admission budget (never past the window).
    fn at_capacity_retry_ms(&self) -> u64 {
        AT_CAPACITY_RETRY_MS.min(self.cfg.window_ms.max(1))
    }

    /// Pass the buy on to the origin, counted against the budget, learning from its answer.
    fn pass<H: Host + ?Sized>(&self, host: &H, buy: Buy<'_>) -> Decision {
        host.count(Counter::Decision(Reason::Passed));
        self.admission.passed(buy.sku, buy.feed_version, buy.now);
        let learn = Learn {
            slot: buy.slot,
            sku: buy.sku.to_owned(),
            uid: buy.uid.clone(),
            passed_at_ms: buy.now,
            starts_at: buy.known.as_ref().map(|f| f.starts_at),
            batch_opened_at: buy.batch_opened_at,
        };
        Decision::Forward(self.forward_as(&buy.uid, Some(learn)))
    }
}

/// Whether `e` is still the entry a hold recorded with `mark` ([`Edge::hold_mark`]): no answer
/// learned, its window where the hold put it.
fn is_hold_mark(e: &Entry, mark: u64) -> bool {
    e.outcome.is_none() && e.last_pass_ms == mark
}

/// Until when a buy held at the edge until `turn_ms` waits for the budget.
fn give_up_at(turn_ms: u64) -> u64 {
    turn_ms.saturating_add(HOLD_FOR_BUDGET_MS)
}

/// The answer replayed to a repeat inside the window: a win is, by then, "already won" (same
/// order id); `ended` keeps the sale's window.
fn replayed(buy: &Buy<'_>, outcome: Outcome, seq: u64) -> BuyAnswer {
    let sku = buy.sku;
    match outcome {
        Outcome::Won | Outcome::AlreadyWon => BuyAnswer::won(Outcome::AlreadyWon, &order_id(sku, seq), sku, &buy.uid),
        Outcome::Ended => BuyAnswer {
            sku: Some(sku.to_owned()),
            starts_at: buy.known.as_ref().map(|f| f.starts_at),
            ends_at: buy.known.as_ref().map(|f| f.ends_at),
            ..BuyAnswer::new(Outcome::Ended)
        },
        o => BuyAnswer { sku: Some(sku.to_owned()), ..BuyAnswer::new(o) },
    }
}
