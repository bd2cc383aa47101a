//! The proof-of-work challenge a sale may ask of every buy from its start (the seeds' "answer a
//! question before buying", with no human and no third party): a hashcash-style search that costs
//! a shopper's browser a fraction of a second once, and costs a bot the same for every uid it runs.
//!
//! One code for all: the edge and the origin [`ChallengeKey::issue`] and [`ChallengeKey::check`],
//! the page and the simulator [`solve`]; [`meets`] is the one test all of them apply.
//!
//! - A challenge is derived, never stored: its seed is `HMAC-SHA256(key, uid, sku, starts_at,
//!   bits)` cut to 16 bytes. Any edge of a fleet issues the same one for a (uid, sku); nothing can
//!   be prepared before the sale exists with its start (the edge only issues it from the start);
//!   raising the difficulty or re-creating the sale makes new seeds, so old solutions are stale.
//! - A solution is a `nonce` such that `SHA-256(seed ‖ nonce as 8 bytes little-endian)` starts
//!   with `bits` zero bits (on average `2^bits` hashes to find, one to check).
//! - A client sends it as the request header [`PROOF_HEADER`]: `<seed hex>.<nonce decimal>`.
//!   It stays valid for that (uid, sku) for the whole sale: repeats are the throttle's business.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The request header carrying a solution (`<seed hex>.<nonce>`). Not an `x-seckill-*` header: a
/// client sends it, and it travels on to the origin, which checks it too.
pub const PROOF_HEADER: &str = "seckill-proof";
/// The highest difficulty a sale may ask, in leading zero bits (2^30 hashes: minutes in a browser).
pub const MAX_BITS: u32 = 30;
/// Bytes of a seed (its hex form is twice as long).
pub const SEED_LEN: usize = 16;

/// A challenge as the edge hands it out in a `challenge` answer (`{"seed","bits"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// 32 lowercase hex characters.
    pub seed: String,
    /// Leading zero bits the solution's hash must have.
    pub bits: u32,
}

/// Why a buy's proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("this sale asks for a solved challenge: solve the one in this answer and send it as the `seckill-proof` header")]
    Missing,
    #[error("malformed `seckill-proof` header: expected `<seed hex>.<nonce>`")]
    Malformed,
    #[error("the solution is for another challenge (another uid or sku, a re-created sale, or a lower difficulty): solve the one in this answer")]
    Stale,
    #[error("the nonce does not solve the challenge")]
    Wrong,
}

/// The secret challenges are derived from (every edge and origin of a sale share it).
#[derive(Clone)]
pub struct ChallengeKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeKey(..)")
    }
}

impl ChallengeKey {
    /// A key for challenges derived from `secret` (domain-separated: the same secret used for
    /// something else yields unrelated values).
    pub fn new(secret: &[u8]) -> ChallengeKey {
        let mut derive = Sha256::new();
        derive.update(b"seckill challenge key v1\0");
        derive.update(secret);
        // HMAC zero-pads a key shorter than its 64-byte block: a fixed-size key makes `new`
        // infallible.
        let mut key = [0u8; 64];
        for (k, d) in key.iter_mut().zip(derive.finalize().iter()) {
            *k = *d;
        }
        ChallengeKey { mac: <HmacSha256 as hmac::digest::KeyInit>::new(&key.into()) }
    }

    /// The seed of the challenge for `uid` buying `sku` in the sale starting at `starts_at` at
    /// difficulty `bits`.
    pub fn seed(&self, uid: &str, sku: &str, starts_at: u64, bits: u32) -> [u8; SEED_LEN] {
        let mut mac = self.mac.clone();
        // Ids never contain NUL, so the fields cannot run into each other.
        for part in [uid.as_bytes(), b"\0", sku.as_bytes(), b"\0", &starts_at.to_le_bytes(), &bits.to_le_bytes()] {
            mac.update(part);
        }
        let full = mac.finalize().into_bytes();
        let mut seed = [0u8; SEED_LEN];
        for (s, f) in seed.iter_mut().zip(full.iter()) {
            *s = *f;
        }
        seed
    }

    /// The challenge to hand out.
    pub fn issue(&self, uid: &str, sku: &str, starts_at: u64, bits: u32) -> Challenge {
        Challenge { seed: to_hex(&self.seed(uid, sku, starts_at, bits)), bits }
    }

    /// Check a buy's `seckill-proof` header against the challenge it must solve.
    pub fn check(&self, uid: &str, sku: &str, starts_at: u64, bits: u32, proof: Option<&str>) -> Result<(), ProofError> {
        let (seed_hex, nonce) = parse_proof(proof.ok_or(ProofError::Missing)?)?;
        let seed = self.seed(uid, sku, starts_at, bits);
        if !eq_hex(&seed, seed_hex) {
            return Err(ProofError::Stale);
        }
        if meets(&seed, nonce, bits) {
            Ok(())
        } else {
            Err(ProofError::Wrong)
        }
    }
}

/// Split `<seed hex>.<nonce>`.
pub fn parse_proof(proof: &str) -> Result<(&str, u64), ProofError> {
    let (seed, nonce) = proof.trim().split_once('.').ok_or(ProofError::Malformed)?;
    let hex_ok = seed.len() == 2 * SEED_LEN && seed.bytes().all(|b| b.is_ascii_hexdigit());
    let nonce_ok = !nonce.is_empty() && nonce.len() <= 20 && nonce.bytes().all(|b| b.is_ascii_digit());
    if !hex_ok || !nonce_ok {
        return Err(ProofError::Malformed);
    }
    Ok((seed, nonce.parse().map_err(|_| ProofError::Malformed)?))
}

/// The header value for a solution.
pub fn proof_value(challenge: &Challenge, nonce: u64) -> String {
    format!("{}.{nonce}", challenge.seed)
}

/// True when `SHA-256(seed ‖ nonce LE)` starts with `bits` zero bits.
pub fn meets(seed: &[u8; SEED_LEN], nonce: u64, bits: u32) -> bool {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(nonce.to_le_bytes());
    leading_zero_bits(&h.finalize()) >= bits
}

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Search `tries` nonces from `from` for a solution (a caller that must stay responsive, like the
/// page, searches in slices).
pub fn solve(seed: &[u8; SEED_LEN], bits: u32, from: u64, tries: u64) -> Option<u64> {
    let mut h = Sha256::new();
    h.update(seed);
    // The seed's hashing state is reused for every nonce.
    (from..from.saturating_add(tries)).find(|nonce| {
        let mut one = h.clone();
        one.update(nonce.to_le_bytes());
        leading_zero_bits(&one.finalize()) >= bits
    })
}

/// A seed from its hex form.
pub fn seed_from_hex(hex: &str) -> Option<[u8; SEED_LEN]> {
    if hex.len() != 2 * SEED_LEN {
        return None;
    }
    let mut seed = [0u8; SEED_LEN];
    for (i, s) in seed.iter_mut().enumerate() {
        *s = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(seed)
}

/// Solve a challenge as handed out (the whole search: for clients that may block).
pub fn solve_challenge(c: &Challenge) -> Option<u64> {
    solve(&seed_from_hex(&c.seed)?, c.bits, 0, u64::MAX)
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Compare a seed with a hex string (any case) without allocating.
fn eq_hex(seed: &[u8; SEED_LEN], hex: &str) -> bool {
    seed_from_hex(hex).is_some_and(|h| h == *seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_800_000_000_000;

    fn solved(key: &ChallengeKey, uid: &str, sku: &str, bits: u32) -> String {
        let c = key.issue(uid, sku, START, bits);
        proof_value(&c, solve_challenge(&c).expect("a solution exists"))
    }

    #[test]
    fn issue_then_verify() {
        let key = ChallengeKey::new(b"edge-key");
        let c = key.issue("alice", "phone", START, 12);
        assert_eq!((c.seed.len(), c.bits), (32, 12));
        assert_eq!(c, ChallengeKey::new(b"edge-key").issue("alice", "phone", START, 12), "any edge issues the same one");
        let nonce = solve_challenge(&c).unwrap();
        assert!(meets(&seed_from_hex(&c.seed).unwrap(), nonce, 12));
        assert_eq!(key.check("alice", "phone", START, 12, Some(&proof_value(&c, nonce))), Ok(()));
        // Replayed by the same uid for the same sale: still the answer to the same question.
        assert_eq!(key.check("alice", "phone", START, 12, Some(&proof_value(&c, nonce))), Ok(()));
        assert_eq!(key.check("alice", "phone", START, 12, Some(&proof_value(&c, nonce).to_uppercase())), Ok(()));
    }

    #[test]
    fn another_uid_sku_sale_or_secret_is_stale() {
        let key = ChallengeKey::new(b"edge-key");
        let proof = solved(&key, "alice", "phone", 10);
        assert_eq!(key.check("bob", "phone", START, 10, Some(&proof)), Err(ProofError::Stale), "another uid");
        assert_eq!(key.check("alice", "tv", START, 10, Some(&proof)), Err(ProofError::Stale), "another sku");
        assert_eq!(key.check("alice", "phone", START + 1, 10, Some(&proof)), Err(ProofError::Stale), "the sale re-created");
        assert_eq!(ChallengeKey::new(b"other").check("alice", "phone", START, 10, Some(&proof)), Err(ProofError::Stale), "another secret");
    }

    #[test]
    fn raising_the_difficulty_mid_sale_makes_old_solutions_stale() {
        let key = ChallengeKey::new(b"edge-key");
        let old = solved(&key, "alice", "phone", 8);
        assert_eq!(key.check("alice", "phone", START, 8, Some(&old)), Ok(()));
        assert_eq!(key.check("alice", "phone", START, 14, Some(&old)), Err(ProofError::Stale));
        let new = solved(&key, "alice", "phone", 14);
        assert_eq!(key.check("alice", "phone", START, 14, Some(&new)), Ok(()));
        // Lowered again: the older challenge is the current one again.
        assert_eq!(key.check("alice", "phone", START, 8, Some(&old)), Ok(()));
    }

    #[test]
    fn wrong_missing_or_malformed_proofs() {
        let key = ChallengeKey::new(b"edge-key");
        let c = key.issue("alice", "phone", START, 16);
        let seed = seed_from_hex(&c.seed).unwrap();
        let wrong = (0..).find(|n| !meets(&seed, *n, 16)).unwrap();
        assert_eq!(key.check("alice", "phone", START, 16, Some(&proof_value(&c, wrong))), Err(ProofError::Wrong));
        assert_eq!(key.check("alice", "phone", START, 16, None), Err(ProofError::Missing));
        for bad in ["", ".", "abc", "x.1", &format!("{}.", c.seed), &format!("{}.-1", c.seed), &format!("{}.1e3", c.seed), &format!("{}.99999999999999999999999", c.seed), &format!("{}0.1", c.seed), "é".repeat(16).as_str()] {
            assert_eq!(key.check("alice", "phone", START, 16, Some(bad)), Err(ProofError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn difficulty_counts_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
        let seed = [7u8; SEED_LEN];
        assert!(meets(&seed, 0, 0), "zero bits: anything solves it");
        let n = solve(&seed, 8, 0, 1 << 20).unwrap();
        assert!(meets(&seed, n, 8) && (0..n).all(|m| !meets(&seed, m, 8)), "the first solution is found");
        assert_eq!(solve(&seed, 8, n + 1, 0), None, "no tries, no solution");
    }

    #[test]
    fn wire_shape() {
        let c = Challenge { seed: "00".repeat(16), bits: 3 };
        assert_eq!(serde_json::to_string(&c).unwrap(), format!(r#"{{"seed":"{}","bits":3}}"#, "00".repeat(16)));
    }
}
