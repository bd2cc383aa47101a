//! The held-request scheduler: what happens to a buy the start lottery holds at the edge
//! ([`Decision::Hold`]) until its turn, as plain data with `now_ms` inputs.
//!
//! - [`TurnQueue`]: streams waiting for their turn, served earliest turn first (equal turns in
//!   arrival order), at most a given number at a time. Both glues keep their held streams in one.
//! - [`HeldStreams`]: one proxy-wasm worker's held buys and, for the ones its tick passed on, what
//!   to learn from the origin's answer ("learn later": the tick cannot reach the stream's own
//!   context). [`HeldStreams::serve_turns`] decides each due buy again with [`Edge::on_turn`] and
//!   has the glue carry out the decision through [`Streams`].
//! - [`TickRate`]: the proxy-wasm root context's tick, fast ([`HOLD_TICK_MS`]) while anything is
//!   held, else every poll interval, with the per-interval work still done once per interval.
//!
//! The native build (`edge-filter/native`) keeps its waiting streams in a [`TurnQueue`] too and
//! wakes each due one through its own Envoy scheduler every [`HOLD_TICK_MS`], without the
//! [`MAX_TURNS_PER_TICK`] cap: there each wake-up is a separate event on the stream's worker, so
//! nothing nests.
//!
//! Nothing here panics, and no borrow of the scheduler's state is held while the glue acts on a
//! stream (an answer can re-enter the glue, e.g. the stream's response callback or its end).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;

use crate::edge::{Decision, Edge, Held, Learn};
use crate::host::{Counter, Host};
use crate::reply::Reply;

/// How many held streams one proxy-wasm tick resumes or answers. Envoy runs each of those actions
/// after the tick's VM call returns, and an answer calls back into the VM (the response callback),
/// which runs the next queued action before it returns: N actions nest N VM calls on the native
/// stack. V8 ran out of stack with a few hundred (a whole sold-out crowd answered in one tick,
/// seen in the demo); 16 stays far from that.
pub const MAX_TURNS_PER_TICK: usize = 16;

/// The tick period while requests are held: turns are served within about this long.
pub const HOLD_TICK_MS: u64 = 10;

/// Streams (keyed by the glue's id `K`) waiting for their turn, each with the glue's item `T`.
#[derive(Debug)]
pub struct TurnQueue<K, T> {
    waiting: Vec<(K, u64, T)>,
}

impl<K, T> Default for TurnQueue<K, T> {
    fn default() -> Self {
        TurnQueue { waiting: Vec::new() }
    }
}

impl<K: PartialEq, T> TurnQueue<K, T> {
    /// Wait for `turn_ms` (host clock, Unix ms).
    pub fn push(&mut self, key: K, turn_ms: u64, item: T) {
        self.waiting.push((key, turn_ms, item));
    }

    /// Take up to `max` streams whose turn has come (`turn_ms <= now`), earliest turn first,
    /// equal turns in the order they were pushed. The rest keep waiting.
    pub fn take_due(&mut self, now: u64, max: usize) -> Vec<(K, T)> {
        // Stable: equal turns keep their arrival order.
        self.waiting.sort_by_key(|(_, turn, _)| *turn);
        let n = self.waiting.iter().take_while(|(_, turn, _)| *turn <= now).count().min(max);
        self.waiting.drain(..n).map(|(key, _, item)| (key, item)).collect()
    }

    /// Stop waiting for `key` (the stream is over).
    pub fn forget(&mut self, key: &K) {
        self.waiting.retain(|(k, _, _)| k != key);
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }
}

/// What the glue does to a held stream at its turn (proxy-wasm: host calls on that stream).
pub trait Streams<K> {
    /// Make `key` the stream the next calls act on; `false` when it is gone (client closed).
    fn select(&mut self, key: &K) -> bool;
    /// Set these request headers (the glue counts its own failures).
    fn set_headers(&mut self, headers: &[(&'static str, String)]);
    /// Let the paused request continue to the origin; `false` when that failed.
    fn resume(&mut self) -> bool;
    /// Answer the paused request; `false` when that failed.
    fn reply(&mut self, reply: &Reply) -> bool;
}

/// One proxy-wasm worker's held buys, and what to learn from the answers to those its tick passed.
#[derive(Debug)]
pub struct HeldStreams<K> {
    queue: RefCell<TurnQueue<K, Held>>,
    learn_later: RefCell<HashMap<K, Learn>>,
}

impl<K> Default for HeldStreams<K> {
    fn default() -> Self {
        HeldStreams { queue: RefCell::new(TurnQueue::default()), learn_later: RefCell::new(HashMap::new()) }
    }
}

impl<K: Copy + Eq + Hash> HeldStreams<K> {
    /// Hold stream `key` until `held.turn_ms`. `false` (and a host error counted) when it cannot
    /// be queued (never expected): the glue then lets the origin decide.
    pub fn hold<H: Host + ?Sized>(&self, host: &H, key: K, held: Held) -> bool {
        match self.queue.try_borrow_mut() {
            Ok(mut q) => {
                q.push(key, held.turn_ms, held);
                true
            }
            Err(_) => {
                host.count(Counter::HostErrors);
                false
            }
        }
    }

    /// Whether any stream is held (the tick then runs fast).
    pub fn holding(&self) -> bool {
        self.queue.try_borrow().map(|q| !q.is_empty()).unwrap_or(false)
    }

    /// Decide up to [`MAX_TURNS_PER_TICK`] held buys whose turn has come, in turn order, and have
    /// `streams` resume or answer each; one whose turn is put off (the admission budget is full)
    /// is held again. A stream that is gone is skipped without deciding it.
    pub fn serve_turns<H: Host + ?Sized, S: Streams<K>>(&self, edge: &Edge, host: &H, streams: &mut S, now: u64) {
        let due = match self.queue.try_borrow_mut() {
            Ok(mut q) => q.take_due(now, MAX_TURNS_PER_TICK),
            Err(_) => return,
        };
        for (key, held) in due {
            if !streams.select(&key) {
                continue;
            }
            match edge.on_turn(host, &held, now) {
                Decision::Hold(again) => {
                    if let Ok(mut q) = self.queue.try_borrow_mut() {
                        q.push(key, again.turn_ms, again);
                    }
                }
                Decision::Forward(fwd) => {
                    streams.set_headers(&fwd.set_headers);
                    if let (Some(learn), Ok(mut later)) = (fwd.learn, self.learn_later.try_borrow_mut()) {
                        later.insert(key, learn);
                    }
                    if !streams.resume() {
                        host.count(Counter::HostErrors);
                    }
                }
                Decision::Reply(reply) => {
                    if !streams.reply(&reply) {
                        host.count(Counter::HostErrors);
                        let _ = streams.resume();
                    }
                }
            }
        }
    }

    /// What to learn from the answer to stream `key`, if its turn passed it on (taken once).
    pub fn take_learn(&self, key: &K) -> Option<Learn> {
        self.learn_later.try_borrow_mut().ok().and_then(|mut m| m.remove(key))
    }

    /// The stream is over (answered, or the client went away while held): forget it.
    pub fn forget(&self, key: &K) {
        if let Ok(mut q) = self.queue.try_borrow_mut() {
            q.forget(key);
        }
        if let Ok(mut later) = self.learn_later.try_borrow_mut() {
            later.remove(key);
        }
    }
}

/// The proxy-wasm root context's tick period and when its per-interval work is due.
#[derive(Debug, Clone)]
pub struct TickRate {
    interval_ms: u64,
    /// Ticking every [`HOLD_TICK_MS`] (requests are held) rather than every interval.
    fast: bool,
    /// When the per-interval work last ran.
    slow_work_at: Option<u64>,
}

impl TickRate {
    /// Ticking every `interval_ms` (the poll interval), the host's period when configured.
    pub fn new(interval_ms: u64) -> TickRate {
        TickRate { interval_ms, fast: false, slow_work_at: None }
    }

    /// The period to ask the host for now, when it must change: [`HOLD_TICK_MS`] while `holding`,
    /// else the interval. Call [`TickRate::period_set`] once the host took it.
    pub fn wanted_period(&self, holding: bool) -> Option<u64> {
        (holding != self.fast).then_some(if holding { HOLD_TICK_MS } else { self.interval_ms })
    }

    /// The host now ticks at the period [`TickRate::wanted_period`] gave for `holding`.
    pub fn period_set(&mut self, holding: bool) {
        self.fast = holding;
    }

    /// Whether this tick does the per-interval work (counters, worker count, flags, feed poll):
    /// every tick at the slow rate; at the fast rate once per interval (and at once if the clock
    /// went back). Records `now` when it says yes.
    pub fn slow_work_due(&mut self, now: u64) -> bool {
        let recent = self.slow_work_at.is_some_and(|t| now >= t && now - t < self.interval_ms);
        if self.fast && recent {
            return false;
        }
        self.slow_work_at = Some(now);
        true
    }
}

#[cfg(test)]
mod tests;
