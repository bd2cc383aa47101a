//! The throttle/dedup memory: fixed buckets of fixed-size entries, stored as compact binary
//! values in Envoy shared data.
//!
//! Envoy never frees a shared-data key, so a key per uid would grow without bound. Instead a
//! (uid, sku) pair is hashed to one of `buckets` keys, whose value holds at most
//! `slots_per_bucket` [`Entry`]s; a full bucket evicts (see [`Bucket::upsert`]). Memory is therefore
//! bounded by `buckets × (HEADER + slots × ENTRY + Envoy's per-key overhead)` whatever the number
//! of shoppers. Values are versioned, and a value that is not exactly what this version writes
//! (garbage, wrong length, unknown outcome code) reads as an empty bucket: never a panic.
//!
//! Layout (little-endian): `"SB"`, version, entry count `n`, then 25-byte entries: fingerprint
//! u64, last_pass_ms u64, order seq u64, outcome code u8 (0 = none yet, else 1 + index in
//! [`Outcome::ALL`]). Version `1` holds exactly `n` entries; version `2` (what the filter writes,
//! [`Bucket::encode_fixed`]) is always padded with zeroed entries to `slots_per_bucket`, so a
//! bucket's value never changes size: every bucket is created at full size when the filter starts,
//! Envoy's memory is at its bound from the start and does not move with the number of shoppers,
//! and the allocator reuses the same block size on every rewrite (no fragmentation from values
//! growing one entry at a time).

use seckill_core::Outcome;

use crate::siphash::{siphash24, siphash24_parts};

pub const MAGIC: [u8; 2] = *b"SB";
pub const VERSION: u8 = 1;
/// Values padded to a fixed number of entries (see the module doc).
pub const VERSION_FIXED: u8 = 2;
pub const HEADER: usize = 4;
pub const ENTRY: usize = 25;

/// Where a (uid, sku) pair lives: its bucket index and its 64-bit fingerprint inside the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub bucket: u32,
    pub fp: u64,
}

/// The two SipHash keys (bucket choice and fingerprint), derived from a secret so that bucket
/// placement cannot be predicted from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotHasher {
    bucket_key: (u64, u64),
    fp_key: (u64, u64),
}

impl SlotHasher {
    pub fn new(secret: &[u8]) -> SlotHasher {
        let d = |tag: u64| siphash24(0x7365_636b_696c_6c31 ^ tag, 0x736c_6f74_732d_7631, secret);
        SlotHasher { bucket_key: (d(1), d(2)), fp_key: (d(3), d(4)) }
    }

    /// The slot of `(uid, sku)` among `buckets` buckets (`buckets` ≥ 1).
    pub fn slot(&self, uid: &str, sku: &str, buckets: u32) -> Slot {
        // uid, NUL, sku: ids never contain NUL, so the split is unambiguous.
        let parts: [&[u8]; 3] = [uid.as_bytes(), &[0], sku.as_bytes()];
        let h = siphash24_parts(self.bucket_key.0, self.bucket_key.1, &parts);
        let bucket = (h % u64::from(buckets.max(1))) as u32;
        Slot { bucket, fp: siphash24_parts(self.fp_key.0, self.fp_key.1, &parts) }
    }
}

/// Shared-data key of bucket `i`.
pub fn bucket_key(i: u32) -> String {
    format!("{}b/{i}", crate::keys::PREFIX)
}

/// What the edge remembers about one (uid, sku).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub fp: u64,
    /// When the last request of this pair was passed to the origin (Envoy clock, Unix ms).
    pub last_pass_ms: u64,
    /// The origin's answer to that request, once known.
    pub outcome: Option<Outcome>,
    /// For `won` / `already_won`: `n` of the order id `<sku>.<n>`.
    pub seq: u64,
}

impl Entry {
    pub fn new(fp: u64, last_pass_ms: u64) -> Entry {
        Entry { fp, last_pass_ms, outcome: None, seq: 0 }
    }

    /// The origin said this uid holds an order for this sku.
    pub fn is_winner(&self) -> bool {
        matches!(self.outcome, Some(Outcome::Won | Outcome::AlreadyWon))
    }

    fn window_over(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_pass_ms) >= window_ms
    }
}

fn outcome_code(o: Option<Outcome>) -> u8 {
    match o {
        None => 0,
        Some(o) => Outcome::ALL.iter().position(|x| *x == o).map_or(0, |i| i as u8 + 1),
    }
}

fn outcome_from_code(c: u8) -> Result<Option<Outcome>, ()> {
    if c == 0 {
        return Ok(None);
    }
    Outcome::ALL.get(usize::from(c) - 1).copied().map(Some).ok_or(())
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// One bucket's entries, oldest first is not guaranteed (order is insertion order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    pub entries: Vec<Entry>,
}

/// What [`Bucket::upsert`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Updated,
    Inserted,
    /// Inserted after evicting another entry.
    Evicted,
}

impl Bucket {
    /// Decode a stored value; anything malformed is an empty bucket.
    pub fn decode(value: Option<&[u8]>) -> Bucket {
        value.and_then(Self::try_decode).unwrap_or_default()
    }

    fn try_decode(b: &[u8]) -> Option<Bucket> {
        if b.get(0..2)? != MAGIC {
            return None;
        }
        let n = usize::from(*b.get(3)?);
        let fits = match *b.get(2)? {
            VERSION => b.len() == HEADER + n * ENTRY,
            VERSION_FIXED => b.len() >= HEADER + n * ENTRY && (b.len() - HEADER).is_multiple_of(ENTRY) && b.len() <= HEADER + 255 * ENTRY,
            _ => false,
        };
        if !fits {
            return None;
        }
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let at = HEADER + i * ENTRY;
            let outcome = outcome_from_code(*b.get(at + 24)?).ok()?;
            entries.push(Entry { fp: read_u64(b, at)?, last_pass_ms: read_u64(b, at + 8)?, seq: read_u64(b, at + 16)?, outcome });
        }
        Some(Bucket { entries })
    }

    /// Encode (at most 255 entries are kept; callers never hold more than `slots_per_bucket` ≤ 64).
    pub fn encode(&self) -> Vec<u8> {
        let n = self.entries.len().min(255);
        let mut out = Vec::with_capacity(HEADER + n * ENTRY);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(n as u8);
        for e in self.entries.iter().take(n) {
            out.extend_from_slice(&e.fp.to_le_bytes());
            out.extend_from_slice(&e.last_pass_ms.to_le_bytes());
            out.extend_from_slice(&e.seq.to_le_bytes());
            out.push(outcome_code(e.outcome));
        }
        out
    }

    /// Encode as version 2, padded with zeroed entries to `slots` entries (or to the number held,
    /// if more): the same length on every write.
    pub fn encode_fixed(&self, slots: usize) -> Vec<u8> {
        let n = self.entries.len().min(255);
        let total = slots.clamp(n, 255);
        let mut out = self.encode();
        out[2] = VERSION_FIXED;
        out.resize(HEADER + total * ENTRY, 0);
        out
    }

    pub fn find(&self, fp: u64) -> Option<&Entry> {
        self.entries.iter().find(|e| e.fp == fp)
    }

    pub fn find_mut(&mut self, fp: u64) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.fp == fp)
    }

    /// Replace the entry with `entry.fp`, or insert it, evicting when the bucket holds `cap`
    /// entries or more. Eviction order: the oldest entry whose window is over and that is not a
    /// live winner; else the oldest non-winner; else the oldest. (A winner older than
    /// `winner_ttl_ms` no longer counts as a winner.)
    pub fn upsert(&mut self, entry: Entry, cap: usize, now_ms: u64, window_ms: u64, winner_ttl_ms: u64) -> Upsert {
        if let Some(e) = self.find_mut(entry.fp) {
            *e = entry;
            return Upsert::Updated;
        }
        let cap = cap.max(1);
        let mut evicted = false;
        while self.entries.len() >= cap {
            let live_winner = |e: &Entry| e.is_winner() && now_ms.saturating_sub(e.last_pass_ms) < winner_ttl_ms;
            let oldest = |pred: &dyn Fn(&Entry) -> bool| {
                self.entries.iter().enumerate().filter(|(_, e)| pred(e)).min_by_key(|(_, e)| e.last_pass_ms).map(|(i, _)| i)
            };
            let victim = oldest(&|e| e.window_over(now_ms, window_ms) && !live_winner(e))
                .or_else(|| oldest(&|e| !live_winner(e)))
                .or_else(|| oldest(&|_| true));
            match victim {
                Some(i) => {
                    self.entries.swap_remove(i);
                    evicted = true;
                }
                None => break,
            }
        }
        self.entries.push(entry);
        if evicted {
            Upsert::Evicted
        } else {
            Upsert::Inserted
        }
    }
}

/// The upper bound of the bytes stored in shared data for the slots: values only.
pub fn value_bytes_bound(buckets: u32, slots_per_bucket: u32) -> u64 {
    u64::from(buckets) * (HEADER as u64 + u64::from(slots_per_bucket) * ENTRY as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(fp: u64, t: u64, o: Option<Outcome>) -> Entry {
        Entry { fp, last_pass_ms: t, outcome: o, seq: if o.is_some() { 9 } else { 0 } }
    }

    #[test]
    fn round_trip() {
        let b = Bucket { entries: vec![e(1, 10, None), e(u64::MAX, u64::MAX, Some(Outcome::Won)), e(3, 0, Some(Outcome::Invalid))] };
        let bytes = b.encode();
        assert_eq!(bytes.len(), HEADER + 3 * ENTRY);
        assert_eq!(Bucket::decode(Some(&bytes)), b);
        assert_eq!(Bucket::decode(Some(&Bucket::default().encode())), Bucket::default());
    }

    #[test]
    fn fixed_size_values_round_trip_and_never_change_length() {
        let mut b = Bucket::default();
        let empty = b.encode_fixed(16);
        assert_eq!(empty.len(), HEADER + 16 * ENTRY);
        assert_eq!(Bucket::decode(Some(&empty)), Bucket::default());
        for fp in 1..=16 {
            b.upsert(Entry { outcome: Some(Outcome::Won), seq: fp, ..Entry::new(fp, fp) }, 16, 100, 10, 10);
            let v = b.encode_fixed(16);
            assert_eq!(v.len(), empty.len());
            assert_eq!(Bucket::decode(Some(&v)), b);
        }
        // More entries than slots (the configuration shrank): nothing is cut off by encoding.
        assert_eq!(b.encode_fixed(4).len(), HEADER + 16 * ENTRY);
        // Garbage in version 2: count beyond the length, length not whole entries, too long.
        let mut bad = empty.clone();
        bad[3] = 17;
        assert_eq!(Bucket::decode(Some(&bad)), Bucket::default());
        let mut odd = empty.clone();
        odd.push(0);
        assert_eq!(Bucket::decode(Some(&odd)), Bucket::default());
        let huge = [&empty[..4], &vec![0u8; 256 * ENTRY][..]].concat();
        assert_eq!(Bucket::decode(Some(&huge)), Bucket::default());
    }

    #[test]
    fn every_outcome_code_round_trips() {
        for o in Outcome::ALL {
            assert_eq!(outcome_from_code(outcome_code(Some(o))), Ok(Some(o)));
        }
        assert_eq!(outcome_from_code(0), Ok(None));
        assert!(outcome_from_code(Outcome::ALL.len() as u8 + 1).is_err());
        assert!(outcome_from_code(255).is_err());
    }

    #[test]
    fn garbage_is_empty() {
        let good = Bucket { entries: vec![e(1, 10, Some(Outcome::SoldOut))] }.encode();
        assert_eq!(Bucket::decode(None), Bucket::default());
        assert_eq!(Bucket::decode(Some(b"")), Bucket::default());
        assert_eq!(Bucket::decode(Some(b"SB")), Bucket::default());
        // wrong magic / version
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Bucket::decode(Some(&bad)), Bucket::default());
        let mut bad = good.clone();
        bad[2] = 3;
        assert_eq!(Bucket::decode(Some(&bad)), Bucket::default());
        // count disagrees with length
        let mut bad = good.clone();
        bad[3] = 2;
        assert_eq!(Bucket::decode(Some(&bad)), Bucket::default());
        assert_eq!(Bucket::decode(Some(&good[..good.len() - 1])), Bucket::default());
        let mut long = good.clone();
        long.push(0);
        assert_eq!(Bucket::decode(Some(&long)), Bucket::default());
        // unknown outcome code
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] = 200;
        assert_eq!(Bucket::decode(Some(&bad)), Bucket::default());
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        // A small deterministic fuzz: every prefix of many pseudo-random buffers decodes to something.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..600usize {
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            if len > 4 {
                buf[0] = b'S';
                buf[1] = b'B';
                buf[2] = 1;
            }
            let b = Bucket::decode(Some(&buf));
            assert!(b.entries.len() <= 255);
        }
    }

    #[test]
    fn eviction_order() {
        let now = 100_000;
        let w = 5_000;
        let ttl = 60_000;
        // Full bucket of 3: a live winner (old), a non-winner inside its window (oldest of the
        // rest), and a non-winner whose window is over.
        let mut b = Bucket { entries: vec![e(1, now - 30_000, Some(Outcome::Won)), e(2, now - 1_000, None), e(3, now - 6_000, None)] };
        assert_eq!(b.upsert(Entry::new(4, now), 3, now, w, ttl), Upsert::Evicted);
        let fps: Vec<u64> = b.entries.iter().map(|e| e.fp).collect();
        assert!(!fps.contains(&3), "window-over non-winner goes first: {fps:?}");
        // Now every non-winner is inside its window: the oldest non-winner goes.
        assert_eq!(b.upsert(Entry::new(5, now), 3, now, w, ttl), Upsert::Evicted);
        let fps: Vec<u64> = b.entries.iter().map(|e| e.fp).collect();
        assert!(fps.contains(&1) && !fps.contains(&2), "{fps:?}");
        // Only winners left: the oldest goes.
        let mut b = Bucket { entries: vec![e(1, now - 10, Some(Outcome::Won)), e(2, now - 20, Some(Outcome::AlreadyWon))] };
        b.upsert(Entry::new(3, now), 2, now, w, ttl);
        let fps: Vec<u64> = b.entries.iter().map(|e| e.fp).collect();
        assert_eq!(fps.len(), 2);
        assert!(fps.contains(&1) && fps.contains(&3));
        // A winner older than the ttl is an ordinary entry.
        let mut b = Bucket { entries: vec![e(1, now - ttl - 1, Some(Outcome::Won)), e(2, now - 10, None)] };
        b.upsert(Entry::new(3, now), 2, now, w, ttl);
        assert!(b.find(1).is_none());
    }

    #[test]
    fn update_in_place_and_shrinking_cap() {
        let mut b = Bucket::default();
        assert_eq!(b.upsert(Entry::new(1, 5), 4, 5, 10, 10), Upsert::Inserted);
        assert_eq!(b.upsert(Entry { outcome: Some(Outcome::SoldOut), ..Entry::new(1, 5) }, 4, 5, 10, 10), Upsert::Updated);
        assert_eq!(b.entries.len(), 1);
        for fp in 2..=8 {
            b.upsert(Entry::new(fp, 5 + fp), 8, 20, 10, 10);
        }
        assert_eq!(b.entries.len(), 8);
        // A smaller cap (configuration changed) trims down on the next insert.
        b.upsert(Entry::new(100, 30), 3, 30, 10, 10);
        assert_eq!(b.entries.len(), 3);
    }

    #[test]
    fn slots_spread_and_depend_on_secret() {
        let h = SlotHasher::new(b"k1");
        let a = h.slot("alice", "phone", 65_536);
        assert_eq!(a, h.slot("alice", "phone", 65_536));
        assert_ne!(a.fp, h.slot("alice", "phone2", 65_536).fp);
        assert_ne!(a.fp, h.slot("alicep", "hone", 65_536).fp);
        assert_ne!(a, SlotHasher::new(b"k2").slot("alice", "phone", 65_536));
        let mut used = std::collections::HashSet::new();
        for i in 0..1000 {
            used.insert(h.slot(&format!("u{i}"), "phone", 64).bucket);
        }
        assert_eq!(used.len(), 64);
        assert_eq!(h.slot("a", "b", 1).bucket, 0);
    }

    /// The slot layout must never change under a running fleet: these were computed by the
    /// hand-written SipHash-2-4 this crate used before `siphasher`, and must stay as they are.
    #[test]
    fn slots_are_pinned() {
        let h = SlotHasher::new(seckill_core::demo::EDGE_KEY.as_bytes());
        let (z, q) = ("z".repeat(64), "q".repeat(64));
        let cases = [
            ("alice", "phone", 59_156, 0x1f0f_ea4a_22a3_1e40),
            ("b", "x", 54_379, 0xb317_3038_6ba7_dcd9),
            ("u1234567890abcdef", "sku-with-a-longer-name_0123456789", 27_064, 0x8999_ae37_c0e8_da42),
            (z.as_str(), q.as_str(), 5_933, 0x8e63_36ca_4ff6_5a6c),
        ];
        for (uid, sku, bucket, fp) in cases {
            assert_eq!(h.slot(uid, sku, 65_536), Slot { bucket, fp }, "({uid}, {sku})");
        }
    }

    #[test]
    fn bound_formula() {
        assert_eq!(value_bytes_bound(65_536, 16), 65_536 * 404);
    }
}

