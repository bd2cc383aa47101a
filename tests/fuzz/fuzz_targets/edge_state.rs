//! The edge's shared-data encodings (throttle/dedup buckets, flags metadata and overrides): any
//! value read from shared data decodes without panicking, and what decodes re-encodes stably.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seckill_edge::flags::{Meta, Overrides};
use seckill_edge::slots::{Bucket, Entry};

fuzz_target!(|data: &[u8]| {
    let b = Bucket::decode(Some(data));
    assert_eq!(Bucket::decode(Some(&b.encode())), b, "bucket round trip");
    let mut b2 = b.clone();
    // Inserting into a decoded (possibly garbage-derived) bucket keeps the size bound.
    for (i, chunk) in data.chunks(8).enumerate() {
        let mut fp = [0u8; 8];
        fp[..chunk.len()].copy_from_slice(chunk);
        b2.upsert(Entry::new(u64::from_le_bytes(fp), i as u64 * 1000), 16, i as u64 * 1000, 5000, 60_000);
        assert!(b2.entries.len() <= 16.max(b.entries.len()));
    }
    let m = Meta::decode(Some(data));
    assert_eq!(Meta::decode(Some(&m.encode())), m, "meta round trip");
    let o = Overrides::decode(Some(data));
    assert_eq!(Overrides::decode(Some(&o.encode())), o, "overrides round trip");
});
