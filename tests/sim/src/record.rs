//! What the crowd saw: every answer counted by population, route, who decided it and outcome, its
//! latency in an HDR histogram, and a timeline in 100 ms buckets.
//!
//! It exists apart from the crowd so the report is computed from one place: the crowd only calls
//! [`Recorder::record`], and the report (and the tests comparing it with the stack's own figures)
//! only reads the finished [`Tally`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use seckill_core::Outcome;

/// Width of one timeline bucket.
pub const BUCKET_MS: u64 = 100;
/// Latencies are recorded in microseconds, up to a minute.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Which route a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `GET /api/sales/{sku}`.
    Status,
    /// `POST /api/sales/{sku}/orders`.
    Buy,
}

/// Who answered, by the answer's `x-seckill-by` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Edge,
    Origin,
    /// No `x-seckill-by`: Envoy itself (an overflow or timeout reply) or no answer at all.
    Other,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Edge => "edge",
            By::Origin => "origin",
            By::Other => "other",
        }
    }
}

/// The answer's label: a buy's outcome (`won`, `throttled`, ...), a status answer's `ok`, any
/// other HTTP status as `http_<code>`, and `error` for a request that got no answer (refused,
/// reset, timed out).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Label(pub String);

impl Label {
    pub fn outcome(o: Outcome) -> Label {
        Label(o.as_str().to_owned())
    }
    pub fn ok() -> Label {
        Label("ok".into())
    }
    pub fn http(status: u16) -> Label {
        Label(format!("http_{status}"))
    }
    pub fn error() -> Label {
        Label("error".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One answered (or failed) request.
#[derive(Debug, Clone)]
pub struct Record {
    pub population: usize,
    pub uid: u32,
    pub kind: Kind,
    pub by: By,
    pub label: Label,
    /// When it was sent.
    pub sent: Instant,
    pub latency: Duration,
}

/// One 100 ms slice of the run.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub requests: u64,
    pub by_edge: u64,
    pub by_origin: u64,
    pub errors: u64,
    pub latency: Histogram<u64>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket { requests: 0, by_edge: 0, by_origin: 0, errors: 0, latency: new_histogram(2) }
    }
}

fn new_histogram(sigfig: u8) -> Histogram<u64> {
    // Bounds and precision are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, sigfig).unwrap_or_else(|e| panic!("histogram bounds: {e}"))
}

/// Everything counted during a run.
#[derive(Debug, Clone)]
pub struct Tally {
    pub started: Instant,
    /// (population, route, who, label) → answers.
    pub counts: BTreeMap<(usize, Kind, By, Label), u64>,
    /// Per population: uid → `won` answers received.
    pub wins: Vec<HashMap<u32, u32>>,
    /// (route, label) → latency histogram (µs).
    pub latency: BTreeMap<(Kind, Label), Histogram<u64>>,
    pub timeline: Vec<Bucket>,
    /// First `won` and last `won`, and the first `sold_out`, as offsets from `started`.
    pub first_won: Option<Duration>,
    pub last_won: Option<Duration>,
    pub first_sold_out: Option<Duration>,
}

impl Tally {
    pub fn new(populations: usize, started: Instant) -> Tally {
        Tally {
            started,
            counts: BTreeMap::new(),
            wins: vec![HashMap::new(); populations],
            latency: BTreeMap::new(),
            timeline: Vec::new(),
            first_won: None,
            last_won: None,
            first_sold_out: None,
        }
    }

    pub fn add(&mut self, r: &Record) {
        *self.counts.entry((r.population, r.kind, r.by, r.label.clone())).or_default() += 1;
        let us = (r.latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let since = r.sent.saturating_duration_since(self.started);
        let answered = since + r.latency;
        if r.label != Label::error() {
            let _ = self.latency.entry((r.kind, r.label.clone())).or_insert_with(|| new_histogram(3)).record(us);
        }
        let i = (since.as_millis() as u64 / BUCKET_MS) as usize;
        if self.timeline.len() <= i {
            self.timeline.resize_with(i + 1, Bucket::new);
        }
        let b = &mut self.timeline[i];
        b.requests += 1;
        match r.by {
            By::Edge => b.by_edge += 1,
            By::Origin => b.by_origin += 1,
            By::Other => {}
        }
        if r.label == Label::error() {
            b.errors += 1;
        } else {
            let _ = b.latency.record(us);
        }
        if r.kind == Kind::Buy && r.label == Label::outcome(Outcome::Won) {
            if let Some(w) = self.wins.get_mut(r.population) {
                *w.entry(r.uid).or_default() += 1;
            }
            self.first_won = Some(self.first_won.map_or(answered, |f| f.min(answered)));
            self.last_won = Some(self.last_won.map_or(answered, |l| l.max(answered)));
        }
        if r.kind == Kind::Buy && r.label == Label::outcome(Outcome::SoldOut) {
            self.first_sold_out = Some(self.first_sold_out.map_or(answered, |f| f.min(answered)));
        }
    }

    /// Sum of the counts matching a predicate.
    pub fn sum(&self, f: impl Fn(usize, Kind, By, &str) -> bool) -> u64 {
        self.counts.iter().filter(|((p, k, b, l), _)| f(*p, *k, *b, l.as_str())).map(|(_, n)| *n).sum()
    }

    pub fn total(&self) -> u64 {
        self.sum(|_, _, _, _| true)
    }

    /// `won` answers received over the whole crowd.
    pub fn won(&self) -> u64 {
        self.wins.iter().flat_map(|m| m.values()).map(|n| u64::from(*n)).sum()
    }

    /// Uids that received more than one `won` for the sku (must be none with `per_user_limit = 1`).
    pub fn double_winners(&self) -> u64 {
        self.wins.iter().flat_map(|m| m.values()).filter(|n| **n > 1).count() as u64
    }
}

/// The handle the crowd records through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tally: Arc<Mutex<Tally>>,
}

impl Recorder {
    pub fn new(populations: usize, started: Instant) -> Recorder {
        Recorder { tally: Arc::new(Mutex::new(Tally::new(populations, started))) }
    }

    fn lock(&self) -> MutexGuard<'_, Tally> {
        // A panic while holding the lock leaves counts that are still valid numbers.
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, r: &Record) {
        self.lock().add(r);
    }

    /// (requests, answered by the edge, `won` answers) so far, for the progress bar.
    pub fn progress(&self) -> (u64, u64, u64) {
        let t = self.lock();
        let edge = t.timeline.iter().map(|b| b.by_edge).sum();
        let total = t.timeline.iter().map(|b| b.requests).sum();
        (total, edge, t.won())
    }

    pub fn snapshot(&self) -> Tally {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t0: Instant, pop: usize, uid: u32, kind: Kind, by: By, label: Label, at_ms: u64, lat_ms: u64) -> Record {
        Record { population: pop, uid, kind, by, label, sent: t0 + Duration::from_millis(at_ms), latency: Duration::from_millis(lat_ms) }
    }

    #[test]
    fn counts_wins_and_timeline() {
        let t0 = Instant::now();
        let mut t = Tally::new(2, t0);
        t.add(&rec(t0, 0, 1, Kind::Buy, By::Origin, Label::outcome(Outcome::Won), 50, 2));
        t.add(&rec(t0, 0, 1, Kind::Buy, By::Edge, Label::outcome(Outcome::AlreadyWon), 120, 1));
        t.add(&rec(t0, 1, 7, Kind::Buy, By::Origin, Label::outcome(Outcome::SoldOut), 130, 3));
        t.add(&rec(t0, 1, 8, Kind::Status, By::Edge, Label::ok(), 250, 1));
        t.add(&rec(t0, 1, 9, Kind::Buy, By::Other, Label::error(), 260, 5000));
        assert_eq!(t.total(), 5);
        assert_eq!(t.won(), 1);
        assert_eq!(t.double_winners(), 0);
        assert_eq!(t.sum(|_, k, b, _| k == Kind::Buy && b == By::Edge), 1);
        assert_eq!(t.timeline.len(), 3);
        assert_eq!((t.timeline[0].requests, t.timeline[1].requests, t.timeline[2].requests), (1, 2, 2));
        assert_eq!(t.timeline[2].errors, 1);
        assert_eq!(t.first_won, Some(Duration::from_millis(52)));
        assert_eq!(t.first_sold_out, Some(Duration::from_millis(133)));
        // Errors have no latency (they never got an answer).
        assert!(!t.latency.contains_key(&(Kind::Buy, Label::error())));
        assert_eq!(t.latency[&(Kind::Buy, Label::outcome(Outcome::Won))].len(), 1);
    }
}
