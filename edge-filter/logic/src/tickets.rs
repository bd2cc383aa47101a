//! A worker's small cache of tickets it has already verified, so a shopper's repeat clicks skip
//! the HMAC.
//!
//! Why: inside Envoy's Wasm VM an HMAC-SHA256 check costs several microseconds — the largest
//! single cost of a request the edge answers itself — and in a flash crowd most requests are
//! repeats carrying the same ticket. The cache is a fixed array of [`TicketCache::SLOTS`]
//! entries (bounded memory per worker), placed by a keyed SipHash of the ticket (so nobody can
//! aim tickets at one slot), each holding a ticket that verified, its uid and expiry.
//!
//! Only tickets that fully verified are ever stored; a lookup matches the whole ticket string
//! (signature included, compared in constant time), so a forged or altered ticket never hits
//! and takes the full check. Expiry is checked again on every hit. A new configuration builds a
//! new `Edge`, hence a new cache: a removed secret stops working at once.

use std::cell::RefCell;

use seckill_core::ticket::{TicketError, VerifiedTicket, Verifier};

use crate::siphash::siphash24;

#[derive(Debug, Clone)]
struct Cached {
    ticket: Box<str>,
    uid: Box<str>,
    expires_at_s: u64,
}

/// Verified tickets of one worker.
#[derive(Debug)]
pub struct TicketCache {
    key: (u64, u64),
    slots: RefCell<Vec<Option<Cached>>>,
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TicketCache {
    /// Entries per worker (each about 200 bytes: ticket, uid, expiry).
    pub const SLOTS: usize = 4096;

    /// A cache whose slot placement is keyed by `secret` (the edge key).
    pub fn new(secret: &[u8]) -> TicketCache {
        let key = (siphash24(0x7469_636b_6574_7331, 1, secret), siphash24(0x7469_636b_6574_7331, 2, secret));
        TicketCache { key, slots: RefCell::new(vec![None; Self::SLOTS]) }
    }

    fn slot_of(&self, ticket: &str) -> usize {
        (siphash24(self.key.0, self.key.1, ticket.as_bytes()) % Self::SLOTS as u64) as usize
    }

    /// Verify `ticket` at `now_s`, from the cache when this worker verified it before.
    pub fn verify(&self, verifier: &Verifier, ticket: &str, now_s: u64) -> Result<VerifiedTicket, TicketError> {
        let i = self.slot_of(ticket);
        if let Ok(slots) = self.slots.try_borrow() {
            if let Some(Some(c)) = slots.get(i) {
                if ct_eq(c.ticket.as_bytes(), ticket.as_bytes()) {
                    if c.expires_at_s <= now_s {
                        return Err(TicketError::Expired);
                    }
                    return Ok(VerifiedTicket { uid: c.uid.to_string(), expires_at_s: c.expires_at_s });
                }
            }
        }
        let v = verifier.verify(ticket, now_s)?;
        if let Ok(mut slots) = self.slots.try_borrow_mut() {
            if let Some(s) = slots.get_mut(i) {
                *s = Some(Cached { ticket: ticket.into(), uid: v.uid.as_str().into(), expires_at_s: v.expires_at_s });
            }
        }
        Ok(v)
    }

    /// Tickets held now (tests).
    pub fn len(&self) -> usize {
        self.slots.borrow().iter().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seckill_core::ticket::mint;

    const S: &[u8] = seckill_core::demo::TICKET_SECRET.as_bytes();

    #[test]
    fn a_repeat_hits_and_is_still_checked_for_expiry() {
        let (v, c) = (Verifier::new(&[S]), TicketCache::new(b"k"));
        let t = mint(S, "alice", 100).unwrap();
        assert_eq!(c.verify(&v, &t, 10).unwrap().uid, "alice");
        assert_eq!(c.len(), 1);
        assert_eq!(c.verify(&v, &t, 99).unwrap().uid, "alice");
        assert_eq!(c.verify(&v, &t, 100), Err(TicketError::Expired));
    }

    #[test]
    fn only_good_tickets_are_cached_and_altered_ones_never_hit() {
        let (v, c) = (Verifier::new(&[S]), TicketCache::new(b"k"));
        let t = mint(S, "alice", 100).unwrap();
        c.verify(&v, &t, 10).unwrap();
        let forged = mint(b"evil", "alice", 100).unwrap();
        assert_eq!(c.verify(&v, &forged, 10), Err(TicketError::BadSignature));
        let tampered = t.replace("alice", "mallo");
        assert_eq!(c.verify(&v, &tampered, 10), Err(TicketError::BadSignature));
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(c.verify(&v, std::str::from_utf8(&flipped).unwrap(), 10).is_err());
        assert_eq!(c.len(), 1, "no failed ticket was stored");
    }

    #[test]
    fn bounded_whatever_the_number_of_tickets() {
        let (v, c) = (Verifier::new(&[S]), TicketCache::new(b"k"));
        for i in 0..(TicketCache::SLOTS * 3) {
            let t = mint(S, &format!("u{i}"), 100).unwrap();
            assert_eq!(c.verify(&v, &t, 10).unwrap().uid, format!("u{i}"));
        }
        assert!(c.len() <= TicketCache::SLOTS);
    }

    #[test]
    fn placement_depends_on_the_key() {
        let t = mint(S, "alice", 100).unwrap();
        let spots: std::collections::HashSet<usize> = (0..8u8).map(|k| TicketCache::new(&[k]).slot_of(&t)).collect();
        assert!(spots.len() > 1);
    }
}
