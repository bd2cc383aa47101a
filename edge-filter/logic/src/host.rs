//! What the decision logic needs from its host (Envoy), as a trait.
//!
//! The real implementation lives in the `seckill-edge-filter` glue and calls proxy-wasm; tests use
//! `MemHost` (compiled for tests only, so never shipped in the Wasm module), an in-memory stand-in with Envoy's shared-data semantics (values with a CAS
//! token; a write with a stale token fails) that can also inject CAS conflicts and host failures.
//! Keeping the logic behind this trait is what lets every rule be unit-tested natively.

#[cfg(test)]
use std::cell::{Cell, RefCell};
#[cfg(test)]
use std::collections::HashMap;
#[cfg(test)]
use std::rc::Rc;

/// A value read from shared data and its compare-and-swap token (`None` when the key is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shared {
    pub value: Option<Vec<u8>>,
    pub cas: Option<u32>,
}

/// A host call that failed (for Envoy: an unexpected status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("host call failed: {0}")]
pub struct HostError(pub &'static str);

/// Why a shared-data write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("another writer changed the value since it was read (CAS mismatch)")]
    CasMismatch,
    #[error(transparent)]
    Host(#[from] HostError),
}

/// Log levels the logic uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Why a request got the answer it got (one counter each, labelled `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Unauthorized,
    Invalid,
    UnknownSku,
    NotStarted,
    Ended,
    SoldOut,
    AlreadyWon,
    Throttled,
    Replayed,
    Passed,
    SaleStatus,
    /// A buy without a valid solution to its sale's challenge (`428 challenge`).
    Challenge,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Unauthorized,
        Reason::Invalid,
        Reason::UnknownSku,
        Reason::NotStarted,
        Reason::Ended,
        Reason::SoldOut,
        Reason::AlreadyWon,
        Reason::Throttled,
        Reason::Replayed,
        Reason::Passed,
        Reason::SaleStatus,
        Reason::Challenge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unauthorized => "unauthorized",
            Reason::Invalid => "invalid",
            Reason::UnknownSku => "unknown_sku",
            Reason::NotStarted => "not_started",
            Reason::Ended => "ended",
            Reason::SoldOut => "sold_out",
            Reason::AlreadyWon => "already_won",
            Reason::Throttled => "throttled",
            Reason::Replayed => "replayed",
            Reason::Passed => "passed",
            Reason::SaleStatus => "sale_status",
            Reason::Challenge => "challenge",
        }
    }
}

/// Every counter the filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// A buy (or sale-status / ticket check) decided, by reason.
    Decision(Reason),
    /// A CAS update gave up after `cas_retries` conflicts (the request was passed on).
    CasExhausted,
    /// A host call failed (the request was passed on).
    HostErrors,
    /// Feed responses received (any status).
    FeedPolls,
    /// Feed polls that failed (dispatch error, timeout, non-200, unparsable body).
    FeedErrors,
    /// Feed polls that brought a new version.
    FeedUpdates,
    /// Slot entries evicted to make room.
    Evictions,
    /// Origin answers learned into a slot.
    Learned,
    /// Skus marked sold out from an origin answer before the feed said so.
    SoldOutLearned,
    /// Repeats refused from the worker's own copy of their entry, without reading shared data
    /// (also counted under their decision's reason).
    LocalRefusals,
    /// First buys inside the start lottery, told when their turn comes (also counted as throttled).
    LotteryHolds,
    /// Buys held back by the admission budget: enough buys in flight for the units left (also
    /// counted as throttled).
    AtCapacity,
}

impl Counter {
    pub const ALL: [Counter; 23] = [
        Counter::Decision(Reason::Unauthorized),
        Counter::Decision(Reason::Invalid),
        Counter::Decision(Reason::UnknownSku),
        Counter::Decision(Reason::NotStarted),
        Counter::Decision(Reason::Ended),
        Counter::Decision(Reason::SoldOut),
        Counter::Decision(Reason::AlreadyWon),
        Counter::Decision(Reason::Throttled),
        Counter::Decision(Reason::Replayed),
        Counter::Decision(Reason::Passed),
        Counter::Decision(Reason::SaleStatus),
        Counter::Decision(Reason::Challenge),
        Counter::CasExhausted,
        Counter::HostErrors,
        Counter::FeedPolls,
        Counter::FeedErrors,
        Counter::FeedUpdates,
        Counter::Evictions,
        Counter::Learned,
        Counter::SoldOutLearned,
        Counter::LocalRefusals,
        Counter::LotteryHolds,
        Counter::AtCapacity,
    ];

    /// Dense index (for a metric-id table in the glue).
    pub const fn index(self) -> usize {
        match self {
            // `Reason`'s declaration order is `Reason::ALL`'s (checked by a test).
            Counter::Decision(r) => r as usize,
            Counter::CasExhausted => 12,
            Counter::HostErrors => 13,
            Counter::FeedPolls => 14,
            Counter::FeedErrors => 15,
            Counter::FeedUpdates => 16,
            Counter::Evictions => 17,
            Counter::Learned => 18,
            Counter::SoldOutLearned => 19,
            Counter::LocalRefusals => 20,
            Counter::LotteryHolds => 21,
            Counter::AtCapacity => 22,
        }
    }

    /// The Envoy stat name (Envoy prefixes it with `wasmcustom.`). Decisions carry their reason as
    /// a `.reason.<value>` suffix, which the bootstrap `stats_tags` rule in `envoy/edge.yaml.tmpl`
    /// turns into the Prometheus label `reason` (see `edge-filter/README.md`, "Stats").
    pub fn metric_name(self) -> String {
        match self {
            Counter::Decision(r) => format!("seckill_edge_decisions.reason.{}", r.as_str()),
            Counter::CasExhausted => "seckill_edge_cas_exhausted".into(),
            Counter::HostErrors => "seckill_edge_host_errors".into(),
            Counter::FeedPolls => "seckill_edge_feed_polls".into(),
            Counter::FeedErrors => "seckill_edge_feed_errors".into(),
            Counter::FeedUpdates => "seckill_edge_feed_updates".into(),
            Counter::Evictions => "seckill_edge_evictions".into(),
            Counter::Learned => "seckill_edge_learned".into(),
            Counter::SoldOutLearned => "seckill_edge_sold_out_learned".into(),
            Counter::LocalRefusals => "seckill_edge_local_refusals".into(),
            Counter::LotteryHolds => "seckill_edge_lottery_holds".into(),
            Counter::AtCapacity => "seckill_edge_at_capacity".into(),
        }
    }
}

/// The host services the logic uses. Every method is infallible from the caller's point of view
/// except where it returns a `Result`; the logic turns any error into "pass the request on".
pub trait Host {
    /// The host's wall clock, Unix milliseconds.
    fn now_ms(&self) -> Result<u64, HostError>;
    /// Read a shared-data key (absent key: `Shared { value: None, cas: None }`).
    fn get_shared(&self, key: &str) -> Result<Shared, HostError>;
    /// Write a shared-data key; with `cas: Some(t)` the write fails with `CasMismatch` unless the
    /// key still has token `t`. (Envoy: a write to an absent key always succeeds.)
    fn set_shared(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError>;
    /// Add one to a counter.
    fn count(&self, counter: Counter);
    /// Log a line.
    fn log(&self, level: Level, message: &str);
}

/// One shared-data store (Envoy keeps one per VM id, shared by every worker). Tests only.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemStore {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
}

#[cfg(test)]
impl MemStore {
    pub fn new() -> Rc<MemStore> {
        Rc::new(MemStore::default())
    }
    pub fn keys(&self) -> usize {
        self.data.borrow().len()
    }
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.data.borrow().get(key).map(|(v, _)| v.clone())
    }
    /// Overwrite a key as another writer would (bumps the CAS token).
    pub fn put(&self, key: &str, value: &[u8]) {
        let cas = self.bump();
        self.data.borrow_mut().insert(key.to_owned(), (value.to_vec(), cas));
    }
    fn bump(&self) -> u32 {
        let next = self.next_cas.get().wrapping_add(1).max(1);
        self.next_cas.set(next);
        next
    }
}

/// A test host: a shared [`MemStore`] (several `MemHost`s on one store = several workers), a
/// settable clock, counters and logs, and fault injection. Tests only.
#[cfg(test)]
#[derive(Debug)]
pub struct MemHost {
    pub store: Rc<MemStore>,
    pub now: Cell<u64>,
    pub counters: RefCell<HashMap<Counter, u64>>,
    pub logs: RefCell<Vec<(Level, String)>>,
    /// The next N `set_shared` calls with a CAS token fail with `CasMismatch` after another
    /// writer "touched" the key (its token is bumped, its value kept).
    pub conflicts: Cell<u32>,
    /// While set, every host call fails.
    pub broken: Cell<bool>,
    /// Counts of host calls: (gets, sets).
    pub calls: Cell<(u64, u64)>,
}

#[cfg(test)]
impl MemHost {
    pub fn new(store: Rc<MemStore>, now: u64) -> MemHost {
        MemHost {
            store,
            now: Cell::new(now),
            counters: RefCell::new(HashMap::new()),
            logs: RefCell::new(Vec::new()),
            conflicts: Cell::new(0),
            broken: Cell::new(false),
            calls: Cell::new((0, 0)),
        }
    }
    pub fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }
    pub fn counter(&self, c: Counter) -> u64 {
        self.counters.borrow().get(&c).copied().unwrap_or(0)
    }
    pub fn decisions(&self, r: Reason) -> u64 {
        self.counter(Counter::Decision(r))
    }
}

#[cfg(test)]
impl Host for MemHost {
    fn now_ms(&self) -> Result<u64, HostError> {
        if self.broken.get() {
            return Err(HostError("clock"));
        }
        Ok(self.now.get())
    }

    fn get_shared(&self, key: &str) -> Result<Shared, HostError> {
        let (g, s) = self.calls.get();
        self.calls.set((g + 1, s));
        if self.broken.get() {
            return Err(HostError("get_shared_data"));
        }
        Ok(match self.store.data.borrow().get(key) {
            Some((v, cas)) => Shared { value: Some(v.clone()), cas: Some(*cas) },
            None => Shared::default(),
        })
    }

    fn set_shared(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        let (g, s) = self.calls.get();
        self.calls.set((g, s + 1));
        if self.broken.get() {
            return Err(SetError::Host(HostError("set_shared_data")));
        }
        if cas.is_some() && self.conflicts.get() > 0 {
            self.conflicts.set(self.conflicts.get() - 1);
            let bumped = self.store.bump();
            if let Some(entry) = self.store.data.borrow_mut().get_mut(key) {
                entry.1 = bumped;
            }
        }
        let next = self.store.bump();
        let mut data = self.store.data.borrow_mut();
        match data.get_mut(key) {
            Some(entry) => {
                if let Some(c) = cas {
                    if c != entry.1 {
                        return Err(SetError::CasMismatch);
                    }
                }
                *entry = (value.to_vec(), next);
            }
            None => {
                data.insert(key.to_owned(), (value.to_vec(), next));
            }
        }
        Ok(())
    }

    fn count(&self, counter: Counter) {
        *self.counters.borrow_mut().entry(counter).or_insert(0) += 1;
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
}

/// Read-modify-write of one shared-data key with bounded CAS retries.
///
/// `f` gets the current value (`None` when absent) and returns the new value, or `None` to stop
/// without writing; its `T` is returned. `Err` carries the counter to bump: `CasExhausted` after
/// `retries` conflicts, `HostErrors` on a failed host call.
pub fn update<H: Host + ?Sized, T>(
    host: &H,
    key: &str,
    retries: u32,
    mut f: impl FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
) -> Result<T, Counter> {
    for _ in 0..retries.max(1) {
        let cur = host.get_shared(key).map_err(|_| Counter::HostErrors)?;
        let (new, out) = f(cur.value.as_deref());
        let Some(new) = new else { return Ok(out) };
        match host.set_shared(key, &new, cur.cas) {
            Ok(()) => return Ok(out),
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Host(_)) => return Err(Counter::HostErrors),
        }
    }
    Err(Counter::CasExhausted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_semantics() {
        let h = MemHost::new(MemStore::new(), 0);
        assert_eq!(h.get_shared("k").unwrap(), Shared::default());
        h.set_shared("k", b"a", None).unwrap();
        let r = h.get_shared("k").unwrap();
        assert_eq!(r.value.as_deref(), Some(&b"a"[..]));
        h.set_shared("k", b"b", r.cas).unwrap();
        assert_eq!(h.set_shared("k", b"c", r.cas), Err(SetError::CasMismatch));
        h.conflicts.set(1);
        let r = h.get_shared("k").unwrap();
        assert_eq!(h.set_shared("k", b"d", r.cas), Err(SetError::CasMismatch));
        assert_eq!(h.store.raw("k").unwrap(), b"b");
    }

    #[test]
    fn update_retries_then_gives_up() {
        let h = MemHost::new(MemStore::new(), 0);
        h.set_shared("k", b"0", None).unwrap();
        h.conflicts.set(2);
        let n = update(&h, "k", 3, |_| (Some(b"1".to_vec()), 7)).unwrap();
        assert_eq!(n, 7);
        assert_eq!(h.store.raw("k").unwrap(), b"1");
        h.conflicts.set(3);
        assert_eq!(update(&h, "k", 3, |_| (Some(b"2".to_vec()), ())), Err(Counter::CasExhausted));
        h.broken.set(true);
        assert_eq!(update(&h, "k", 3, |_| (Some(b"2".to_vec()), ())), Err(Counter::HostErrors));
    }

    #[test]
    fn counters_have_distinct_names() {
        let mut names: Vec<String> = Counter::ALL.iter().map(|c| c.metric_name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
