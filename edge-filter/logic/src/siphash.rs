//! SipHash-2-4, the keyed hash that places a (uid, sku) pair in a bucket and fingerprints it.
//!
//! A thin layer over the `siphasher` crate: one-shot ([`siphash24`]) and over several byte
//! strings without concatenating them first ([`siphash24_parts`], no allocation on the request
//! path). The slot layout in shared data depends on these values bit for bit (every worker VM,
//! and a reloaded filter reading the same shared data, must agree), so the tests pin them: the
//! SipHash paper's reference vectors here, and fixed slots of known pairs in `slots`. A crate
//! update that changed them would fail those tests rather than silently reshuffle the slots.
//! Keyed, so a shopper who controls uids cannot aim many of them at one bucket to evict others.

use core::hash::Hasher as _;

use siphasher::sip::SipHasher24;

/// SipHash-2-4 of `data` under the 128-bit key `(k0, k1)`.
pub fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    SipHasher24::new_with_keys(k0, k1).hash(data)
}

/// SipHash-2-4 of the concatenation of `parts` under `(k0, k1)` (same value as [`siphash24`] of
/// the joined bytes).
pub fn siphash24_parts(k0: u64, k1: u64, parts: &[&[u8]]) -> u64 {
    let mut h = SipHasher24::new_with_keys(k0, k1);
    for p in parts {
        h.write(p);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference vectors from the SipHash paper (Aumasson & Bernstein), key 00..0f, messages 00..(n-1).
    const K0: u64 = 0x0706_0504_0302_0100;
    const K1: u64 = 0x0f0e_0d0c_0b0a_0908;

    fn msg(n: u8) -> Vec<u8> {
        (0..n).collect()
    }

    #[test]
    fn reference_vectors() {
        assert_eq!(siphash24(K0, K1, &msg(0)), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(K0, K1, &msg(8)), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash24(K0, K1, &msg(15)), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn parts_hash_like_the_joined_bytes() {
        let m = msg(63);
        for cut in [0usize, 1, 7, 8, 9, 16, 30, 62, 63] {
            for cut2 in [cut, (cut + 5).min(63), 63] {
                let (a, rest) = m.split_at(cut);
                let (b, c) = rest.split_at(cut2 - cut);
                assert_eq!(siphash24_parts(K0, K1, &[a, b, c]), siphash24(K0, K1, &m), "cuts {cut} {cut2}");
            }
        }
    }

    #[test]
    fn key_matters() {
        assert_ne!(siphash24(1, 2, b"alice\0phone"), siphash24(1, 3, b"alice\0phone"));
    }
}
