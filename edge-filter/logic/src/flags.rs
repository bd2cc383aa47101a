//! The sale flags as the edge knows them: stored once in shared data by the feed poller, parsed
//! once per worker per version, plus the skus learned sold out from origin answers.
//!
//! Why: every worker must answer from the same flags without each polling the origin. The poller
//! (see `poller`) writes the feed JSON to [`keys::FEED`] and a small [`Meta`] to [`keys::META`];
//! a worker reads only `Meta` per request (28 bytes) and re-parses the feed only when its version
//! changed. A `sold_out` answer from the origin is recorded in [`keys::SOLD`] for the current feed
//! version and bumps `Meta::sold_gen`, so every worker sees it on its next request; the next feed
//! version supersedes it. When the feed cannot be fetched, the last flags stay in force (they are
//! never replaced by guesses) and only their freshness runs out.

use std::collections::HashMap;

use seckill_core::feed::{FlagsFeed, SaleFlags};

use crate::host::{update, Counter, Host, HostError};
use crate::keys;

/// Largest feed body accepted (the feed lists every sale; this is far above any real sale count).
pub const MAX_FEED_BYTES: usize = 4 << 20;
/// Most sold-out overrides kept at once (oldest dropped first).
pub const MAX_OVERRIDES: usize = 255;

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Feed metadata in [`keys::META`]: `"SM"`, version 1, has_feed u8, then u64 LE
/// feed version, fetched_at_ms, sold_gen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// A feed has been stored at least once.
    pub has_feed: bool,
    /// `FlagsFeed::version` of the stored feed.
    pub version: u64,
    /// Envoy time of the last successful poll (even one that brought no change).
    pub fetched_at_ms: u64,
    /// Grows whenever [`keys::SOLD`] changes.
    pub sold_gen: u64,
    /// Envoy time since which every poll has brought a version older than the stored one (0:
    /// none did). See [`store_feed`]: with many origins, one a refresh behind must not move the
    /// edge back; a store that really went back (Redis rebuilt) is believed after [`REGRESS_AFTER_MS`].
    pub older_since_ms: u64,
}

/// How long every poll must bring an older feed version before the edge believes it.
pub const REGRESS_AFTER_MS: u64 = 1_000;

impl Meta {
    pub const LEN: usize = 36;

    pub fn decode(value: Option<&[u8]>) -> Meta {
        let Some(b) = value else { return Meta::default() };
        if b.len() != Self::LEN || b.get(0..3) != Some(&b"SM\x02"[..]) {
            return Meta::default();
        }
        let (Some(version), Some(fetched_at_ms), Some(sold_gen), Some(older_since_ms)) = (read_u64(b, 4), read_u64(b, 12), read_u64(b, 20), read_u64(b, 28)) else {
            return Meta::default();
        };
        Meta { has_feed: b.get(3) == Some(&1), version, fetched_at_ms, sold_gen, older_since_ms }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(b"SM\x02");
        out.push(u8::from(self.has_feed));
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.fetched_at_ms.to_le_bytes());
        out.extend_from_slice(&self.sold_gen.to_le_bytes());
        out.extend_from_slice(&self.older_since_ms.to_le_bytes());
        out
    }
}

/// Skus learned sold out, each tagged with the feed version it was learned under and when.
/// Encoding: `"SO"`, version 2, count u8, then per entry: feed version u64 LE, learned-at ms u64
/// LE, sku length u8, sku.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub entries: Vec<Learned>,
}

/// One sku learned sold out from an origin's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    pub sku: String,
    /// The feed version it was learned under (the next version supersedes it).
    pub version: u64,
    /// When the buy that learned it was passed (Envoy time): for a sale released in batches it
    /// holds until the next batch after this.
    pub at_ms: u64,
}

impl Overrides {
    pub fn decode(value: Option<&[u8]>) -> Overrides {
        value.and_then(Self::try_decode).unwrap_or_default()
    }

    fn try_decode(b: &[u8]) -> Option<Overrides> {
        if b.get(0..3)? != b"SO\x02" {
            return None;
        }
        let n = usize::from(*b.get(3)?);
        let mut at = 4;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let version = read_u64(b, at)?;
            let at_ms = read_u64(b, at + 8)?;
            let len = usize::from(*b.get(at + 16)?);
            let sku = std::str::from_utf8(b.get(at + 17..at + 17 + len)?).ok()?;
            if !seckill_core::is_valid_id(sku) {
                return None;
            }
            entries.push(Learned { sku: sku.to_owned(), version, at_ms });
            at += 17 + len;
        }
        (at == b.len()).then_some(Overrides { entries })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"SO\x02".to_vec();
        let kept: Vec<&Learned> = self.entries.iter().filter(|e| e.sku.len() <= 255).take(MAX_OVERRIDES).collect();
        out.push(kept.len() as u8);
        for e in kept {
            out.extend_from_slice(&e.version.to_le_bytes());
            out.extend_from_slice(&e.at_ms.to_le_bytes());
            out.push(e.sku.len() as u8);
            out.extend_from_slice(e.sku.as_bytes());
        }
        out
    }
}

/// What the edge knows about one sku right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No feed was ever received: the origin decides.
    NoFeed,
    /// The sku is not in the feed; `fresh` tells whether the feed is recent enough to trust that.
    Absent { fresh: bool },
    /// The sku's flags at the time looked up: `sold_out` already includes a learned sold-out, and
    /// `stock_left` is this edge's admission budget (its share, in a fleet, of the units open now:
    /// a sale's later batches hold theirs back until their time).
    Known { flags: SaleFlags, fresh: bool },
}

/// A feed as a worker keeps it: its sales by sku and what [`FlagsCache::lookup`] needs besides.
#[derive(Debug)]
struct Parsed {
    version: u64,
    sales: HashMap<String, SaleFlags>,
    /// The fleet's edge count (see [`FlagsFeed::share_of`]).
    edges: Option<u64>,
}

/// One worker's parsed copy of the shared flags.
#[derive(Debug, Default)]
pub struct FlagsCache {
    meta: Meta,
    /// The parsed feed (its version may lag `meta.version` until the feed key is consistent).
    feed: Option<Parsed>,
    sold_gen: Option<u64>,
    sold: Vec<Learned>,
}

impl FlagsCache {
    /// Bring the cache up to date with shared data: one small read, plus the feed and/or the
    /// overrides when they changed.
    pub fn refresh<H: Host + ?Sized>(&mut self, host: &H) -> Result<(), HostError> {
        let meta = Meta::decode(host.get_shared(keys::META)?.value.as_deref());
        self.meta = meta;
        if !meta.has_feed {
            return Ok(());
        }
        if self.version() != Some(meta.version) {
            let raw = host.get_shared(keys::FEED)?.value;
            match raw.as_deref().map(serde_json::from_slice::<FlagsFeed>) {
                Some(Ok(feed)) if feed.version == meta.version => {
                    let sales = feed.sales.into_iter().map(|s| (s.sku.clone(), s)).collect();
                    self.feed = Some(Parsed { version: feed.version, sales, edges: feed.edges });
                }
                // Feed key not (yet) consistent with meta, or unreadable: keep the previous flags.
                _ => {}
            }
        }
        if self.sold_gen != Some(meta.sold_gen) {
            self.sold = Overrides::decode(host.get_shared(keys::SOLD)?.value.as_deref()).entries;
            self.sold_gen = Some(meta.sold_gen);
        }
        Ok(())
    }

    /// Forget what was read so the next [`refresh`](Self::refresh) re-reads everything that changed.
    pub fn invalidate_sold(&mut self) {
        self.sold_gen = None;
    }

    /// The version of the parsed feed, if any.
    pub fn version(&self) -> Option<u64> {
        self.feed.as_ref().map(|p| p.version)
    }

    pub fn lookup(&self, sku: &str, now_ms: u64, stale_ms: u64) -> Lookup {
        let Some(feed) = &self.feed else { return Lookup::NoFeed };
        let fresh = now_ms.saturating_sub(self.meta.fetched_at_ms) < stale_ms;
        match feed.sales.get(sku) {
            None => Lookup::Absent { fresh },
            Some(f) => {
                let mut flags = f.clone();
                // In a fleet this edge budgets only its share of the units open now.
                flags.stock_left = f.units_open(now_ms).map(|l| FlagsFeed::share_of(feed.edges, l));
                let learned = self.sold.iter().find(|e| e.sku == sku && e.version == feed.version);
                if let Some(e) = learned.filter(|_| !flags.sold_out) {
                    // Learned from an origin's answer: it holds until the next batch after it was
                    // learned, as the origin's own flag does.
                    flags.sold_out = true;
                    flags.sold_out_until = seckill_core::sale::next_batch_after(&f.batches, e.at_ms);
                }
                Lookup::Known { flags, fresh }
            }
        }
    }
}

/// Why a fetched feed was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("feed body is larger than {MAX_FEED_BYTES} bytes")]
    TooLarge,
    #[error("feed body is not a flags feed: {0}")]
    Parse(String),
    #[error("shared data: {0:?}")]
    Store(Counter),
}

/// What storing a good feed did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Same version as before: only the freshness was renewed.
    Unchanged,
    /// A new version was stored.
    Updated { version: u64 },
}

/// Store a feed body fetched from the origin (poller side).
pub fn store_feed<H: Host + ?Sized>(host: &H, body: &[u8], now_ms: u64, retries: u32) -> Result<Stored, FeedError> {
    if body.len() > MAX_FEED_BYTES {
        return Err(FeedError::TooLarge);
    }
    let feed: FlagsFeed = serde_json::from_slice(body).map_err(|e| FeedError::Parse(e.to_string()))?;
    let before = Meta::decode(host.get_shared(keys::META).map_err(|_| FeedError::Store(Counter::HostErrors))?.value.as_deref());
    let step = FeedStep::of(&before, feed.version, now_ms);
    if step == FeedStep::Newer {
        let json = serde_json::to_vec(&feed).map_err(|e| FeedError::Parse(e.to_string()))?;
        host.set_shared(keys::FEED, &json, None).map_err(|_| FeedError::Store(Counter::HostErrors))?;
    }
    update(host, keys::META, retries, |cur| {
        let mut m = Meta::decode(cur);
        m.has_feed = true;
        m.fetched_at_ms = now_ms;
        match step {
            FeedStep::Newer => (m.version, m.older_since_ms) = (feed.version, 0),
            FeedStep::Same => m.older_since_ms = 0,
            FeedStep::Older => m.older_since_ms = if m.older_since_ms == 0 { now_ms.max(1) } else { m.older_since_ms },
        }
        (Some(m.encode()), ())
    })
    .map_err(FeedError::Store)?;
    Ok(if step == FeedStep::Newer { Stored::Updated { version: feed.version } } else { Stored::Unchanged })
}

/// Where a polled feed stands against the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedStep {
    /// Store it: the first feed, a newer version, or an older one that every poll has brought for
    /// [`REGRESS_AFTER_MS`] (the store really went back, e.g. Redis was rebuilt).
    Newer,
    /// The stored version again: only freshness is renewed.
    Same,
    /// Older than the stored one (an origin a refresh behind another): kept out, freshness renewed
    /// (that origin is alive, and at most a refresh behind).
    Older,
}

impl FeedStep {
    fn of(before: &Meta, version: u64, now_ms: u64) -> FeedStep {
        if !before.has_feed || version > before.version {
            FeedStep::Newer
        } else if version == before.version {
            FeedStep::Same
        } else if before.older_since_ms != 0 && now_ms.saturating_sub(before.older_since_ms) >= REGRESS_AFTER_MS {
            FeedStep::Newer
        } else {
            FeedStep::Older
        }
    }
}

/// Record that the origin answered `sold_out` for `sku` (under the current feed version) to a buy
/// passed at `at_ms`, in the batch opened at `batch_opened_at` (0: a sale without batches, or
/// flags unknown). Returns `Ok(true)` when this was news. Without a feed there is nothing to override.
pub fn mark_sold_out<H: Host + ?Sized>(host: &H, sku: &str, at_ms: u64, batch_opened_at: u64, retries: u32) -> Result<bool, Counter> {
    let meta = Meta::decode(host.get_shared(keys::META).map_err(|_| Counter::HostErrors)?.value.as_deref());
    if !meta.has_feed || !seckill_core::is_valid_id(sku) {
        return Ok(false);
    }
    let news = update(host, keys::SOLD, retries, |cur| {
        let mut o = Overrides::decode(cur);
        o.entries.retain(|e| e.version == meta.version);
        // Known already, in this batch (one learned in an earlier batch is replaced).
        if o.entries.iter().any(|e| e.sku == sku && e.at_ms >= batch_opened_at) {
            return (None, false);
        }
        o.entries.retain(|e| e.sku != sku);
        if o.entries.len() >= MAX_OVERRIDES {
            o.entries.remove(0);
        }
        o.entries.push(Learned { sku: sku.to_owned(), version: meta.version, at_ms });
        (Some(o.encode()), true)
    })?;
    if news {
        update(host, keys::META, retries, |cur| {
            let mut m = Meta::decode(cur);
            m.sold_gen = m.sold_gen.wrapping_add(1);
            (Some(m.encode()), ())
        })?;
    }
    Ok(news)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{MemHost, MemStore};
    use seckill_core::sale::SaleState;

    fn feed_json(version: u64, sold_out: bool) -> Vec<u8> {
        serde_json::to_vec(&FlagsFeed {
            version,
            server_time: 1,
            sales: vec![SaleFlags { sku: "phone".into(), starts_at: 1_000, ends_at: 9_000, sold_out, per_user_limit: 1, ..SaleFlags::default() }],
            edges: None,
        })
        .unwrap()
    }

    fn sold_out_now(worker: &MemHost, cache: &mut FlagsCache) -> bool {
        cache.refresh(worker).unwrap();
        matches!(cache.lookup("phone", 600, 3_000), Lookup::Known { flags, .. } if flags.sold_out)
    }

    #[test]
    fn an_origin_a_refresh_behind_does_not_move_the_edge_back() {
        let store = MemStore::new();
        let poller = MemHost::new(store.clone(), 500);
        let worker = MemHost::new(store, 500);
        let mut cache = FlagsCache::default();
        assert_eq!(store_feed(&poller, &feed_json(5, true), 100, 8), Ok(Stored::Updated { version: 5 }));
        // Another origin, one refresh behind (version 4: not sold out yet), then the first again.
        assert_eq!(store_feed(&poller, &feed_json(4, false), 150, 8), Ok(Stored::Unchanged));
        assert!(sold_out_now(&worker, &mut cache), "the older snapshot was kept out");
        assert_eq!(Meta::decode(poller.get_shared(keys::META).unwrap().value.as_deref()).fetched_at_ms, 150, "it still proves the origins alive");
        assert_eq!(store_feed(&poller, &feed_json(5, true), 200, 8), Ok(Stored::Unchanged));
        assert_eq!(store_feed(&poller, &feed_json(4, false), 250 + REGRESS_AFTER_MS, 8), Ok(Stored::Unchanged), "the clock restarted at the same version");
        assert!(sold_out_now(&worker, &mut cache));
    }

    #[test]
    fn a_store_that_really_went_back_is_believed_after_a_second() {
        let store = MemStore::new();
        let poller = MemHost::new(store.clone(), 500);
        let worker = MemHost::new(store, 500);
        let mut cache = FlagsCache::default();
        store_feed(&poller, &feed_json(9, true), 100, 8).unwrap();
        assert_eq!(store_feed(&poller, &feed_json(2, false), 200, 8), Ok(Stored::Unchanged));
        assert_eq!(store_feed(&poller, &feed_json(2, false), 199 + REGRESS_AFTER_MS, 8), Ok(Stored::Unchanged));
        assert!(sold_out_now(&worker, &mut cache));
        assert_eq!(store_feed(&poller, &feed_json(2, false), 200 + REGRESS_AFTER_MS, 8), Ok(Stored::Updated { version: 2 }));
        assert!(!sold_out_now(&worker, &mut cache));
    }

    #[test]
    fn a_fleet_feed_budgets_this_edges_share() {
        let store = MemStore::new();
        let poller = MemHost::new(store.clone(), 500);
        let worker = MemHost::new(store, 500);
        let sale = SaleFlags { sku: "phone".into(), starts_at: 1_000, ends_at: 9_000, sold_out: false, per_user_limit: 1, stock_left: Some(10), ..SaleFlags::default() };
        let body = serde_json::to_vec(&FlagsFeed { version: 1, server_time: 1, sales: vec![sale], edges: Some(3) }).unwrap();
        store_feed(&poller, &body, 100, 8).unwrap();
        let mut cache = FlagsCache::default();
        cache.refresh(&worker).unwrap();
        let Lookup::Known { flags, .. } = cache.lookup("phone", 600, 3_000) else { panic!("phone is in the feed") };
        assert_eq!(flags.stock_left, Some(4), "ceil(10 / 3 edges)");
    }

    #[test]
    fn a_sale_in_batches_budgets_the_units_open_and_learns_sold_out_per_batch() {
        use seckill_core::sale::Batch;
        let store = MemStore::new();
        let poller = MemHost::new(store.clone(), 500);
        let worker = MemHost::new(store, 500);
        // 4 units left of 10: batch 1 (6 units, from 1,000) sold 6; batch 2 (4, from 5,000) to come.
        let batches = vec![Batch { at: 1_000, stock: 6 }, Batch { at: 5_000, stock: 4 }];
        let sale = SaleFlags { sku: "phone".into(), starts_at: 1_000, ends_at: 9_000, per_user_limit: 1, stock_left: Some(4), batches, ..SaleFlags::default() };
        let body = serde_json::to_vec(&FlagsFeed { version: 1, server_time: 2_000, sales: vec![sale], edges: Some(3) }).unwrap();
        store_feed(&poller, &body, 2_000, 8).unwrap();
        mark_sold_out(&poller, "phone", 2_000, 1_000, 8).unwrap();
        let mut cache = FlagsCache::default();
        cache.refresh(&worker).unwrap();
        let Lookup::Known { flags, .. } = cache.lookup("phone", 2_100, 60_000) else { panic!("phone is in the feed") };
        assert_eq!((flags.stock_left, flags.state_at(2_100)), (Some(0), SaleState::SoldOut), "batch 2's units are held back; learned sold out");
        let Lookup::Known { flags, .. } = cache.lookup("phone", 5_000, 60_000) else { panic!() };
        assert_eq!((flags.stock_left, flags.state_at(5_000)), (Some(2), SaleState::OnSale), "ceil(4 / 3 edges) from batch 2's start, with no new feed");
    }

    #[test]
    fn meta_and_overrides_round_trip_and_reject_garbage() {
        let m = Meta { has_feed: true, version: 7, fetched_at_ms: 8, sold_gen: 9, older_since_ms: 10 };
        assert_eq!(Meta::decode(Some(&m.encode())), m);
        assert_eq!(Meta::decode(Some(b"SM\x01")), Meta::default());
        assert_eq!(Meta::decode(None), Meta::default());
        let mut bad = m.encode();
        bad[2] = 9;
        assert_eq!(Meta::decode(Some(&bad)), Meta::default());

        let o = Overrides { entries: vec![Learned { sku: "a".into(), version: 1, at_ms: 5 }, Learned { sku: "phone-2".into(), version: 99, at_ms: 7 }] };
        assert_eq!(Overrides::decode(Some(&o.encode())), o);
        let enc = o.encode();
        for cut in 0..enc.len() {
            assert_eq!(Overrides::decode(Some(&enc[..cut])), Overrides::default(), "cut {cut}");
        }
        let mut bad = enc.clone();
        bad[4 + 17] = b'.'; // invalid sku char
        assert_eq!(Overrides::decode(Some(&bad)), Overrides::default());
        let mut long = enc;
        long.push(0);
        assert_eq!(Overrides::decode(Some(&long)), Overrides::default());
    }

    #[test]
    fn store_then_refresh_then_lookup() {
        let store = MemStore::new();
        let poller = MemHost::new(store.clone(), 500);
        let worker = MemHost::new(store, 500);
        let mut cache = FlagsCache::default();
        cache.refresh(&worker).unwrap();
        assert_eq!(cache.lookup("phone", 500, 3_000), Lookup::NoFeed);

        assert_eq!(store_feed(&poller, &feed_json(1, false), 500, 8), Ok(Stored::Updated { version: 1 }));
        cache.refresh(&worker).unwrap();
        let Lookup::Known { flags, fresh } = cache.lookup("phone", 600, 3_000) else { panic!() };
        assert!(fresh && !flags.sold_out);
        assert_eq!(cache.lookup("tv", 600, 3_000), Lookup::Absent { fresh: true });
        assert_eq!(cache.lookup("tv", 3_500, 3_000), Lookup::Absent { fresh: false });

        // Same version again: freshness renewed, feed not rewritten.
        let (_, sets_before) = poller.calls.get();
        assert_eq!(store_feed(&poller, &feed_json(1, false), 3_400, 8), Ok(Stored::Unchanged));
        assert_eq!(poller.calls.get().1, sets_before + 1, "only meta written");
        cache.refresh(&worker).unwrap();
        assert_eq!(cache.lookup("tv", 3_500, 3_000), Lookup::Absent { fresh: true });

        // A worker that saw version 1 parses again only on a new version.
        let (gets, _) = worker.calls.get();
        cache.refresh(&worker).unwrap();
        assert_eq!(worker.calls.get().0, gets + 1, "meta only");
        store_feed(&poller, &feed_json(2, true), 3_600, 8).unwrap();
        cache.refresh(&worker).unwrap();
        let Lookup::Known { flags, .. } = cache.lookup("phone", 3_600, 3_000) else { panic!() };
        assert!(flags.sold_out);
        assert_eq!(cache.version(), Some(2));
    }

    #[test]
    fn bad_feeds_are_refused_and_old_flags_kept() {
        let store = MemStore::new();
        let h = MemHost::new(store, 0);
        store_feed(&h, &feed_json(1, false), 0, 8).unwrap();
        assert!(matches!(store_feed(&h, b"{\"version\":2}", 0, 8), Err(FeedError::Parse(_))));
        assert!(matches!(store_feed(&h, b"<html>", 0, 8), Err(FeedError::Parse(_))));
        assert_eq!(store_feed(&h, &vec![b' '; MAX_FEED_BYTES + 1], 0, 8), Err(FeedError::TooLarge));
        let mut cache = FlagsCache::default();
        cache.refresh(&h).unwrap();
        assert_eq!(cache.version(), Some(1));
        // A corrupted feed key (inconsistent with meta) keeps the previous parse.
        h.store.put(keys::FEED, b"garbage");
        let mut m = Meta::decode(h.store.raw(keys::META).as_deref());
        m.version = 5;
        h.store.put(keys::META, &m.encode());
        cache.refresh(&h).unwrap();
        assert_eq!(cache.version(), Some(1));
    }

    #[test]
    fn learned_sold_out_lasts_until_next_version() {
        let store = MemStore::new();
        let a = MemHost::new(store.clone(), 0);
        let b = MemHost::new(store, 0);
        assert_eq!(mark_sold_out(&a, "phone", 0, 0, 8), Ok(false), "no feed: nothing to override");
        store_feed(&a, &feed_json(1, false), 0, 8).unwrap();
        let mut cache_b = FlagsCache::default();
        cache_b.refresh(&b).unwrap();
        assert_eq!(mark_sold_out(&a, "phone", 0, 0, 8), Ok(true));
        assert_eq!(mark_sold_out(&a, "phone", 1, 0, 8), Ok(false), "already known");
        cache_b.refresh(&b).unwrap();
        let Lookup::Known { flags, .. } = cache_b.lookup("phone", 10, 3_000) else { panic!() };
        assert!(flags.sold_out, "another worker sees it on its next refresh");
        store_feed(&a, &feed_json(2, false), 20, 8).unwrap();
        cache_b.refresh(&b).unwrap();
        let Lookup::Known { flags, .. } = cache_b.lookup("phone", 30, 3_000) else { panic!() };
        assert!(!flags.sold_out, "the next feed version supersedes it");
    }

    #[test]
    fn conflicts_on_meta_are_retried() {
        let h = MemHost::new(MemStore::new(), 0);
        store_feed(&h, &feed_json(1, false), 0, 8).unwrap();
        h.conflicts.set(3);
        assert_eq!(mark_sold_out(&h, "phone", 0, 0, 8), Ok(true));
        h.conflicts.set(100);
        assert_eq!(store_feed(&h, &feed_json(3, false), 0, 8), Err(FeedError::Store(Counter::CasExhausted)));
    }
}
