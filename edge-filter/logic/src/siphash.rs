//! SipHash-2-4, the keyed hash that places a (uid, sku) pair in a bucket and fingerprints it.
//!
//! It exists here (about forty lines) rather than as a dependency because the slot layout in
//! shared data must not change when a dependency or the Rust standard library changes its hash:
//! every worker VM, and a reloaded filter reading the same shared data, must agree bit for bit.
//! Keyed, so a shopper who controls uids cannot aim many of them at one bucket to evict others.

#[inline]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// Little-endian u64 from up to 8 bytes (missing high bytes are zero).
#[inline]
fn le_u64(bytes: &[u8]) -> u64 {
    bytes.iter().enumerate().fold(0u64, |acc, (i, b)| acc | (u64::from(*b) << (8 * i)))
}

/// SipHash-2-4 of `data` under the 128-bit key `(k0, k1)`.
pub fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let m = le_u64(chunk);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let last = le_u64(chunks.remainder()) | ((data.len() as u64 & 0xff) << 56);
    v[3] ^= last;
    round(&mut v);
    round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
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
    fn key_matters() {
        assert_ne!(siphash24(1, 2, b"alice\0phone"), siphash24(1, 3, b"alice\0phone"));
    }
}
