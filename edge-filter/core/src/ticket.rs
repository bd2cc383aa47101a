//! The shopper's ticket: `v1.<uid>.<expires_unix_seconds>.<sig>`.
//!
//! `sig = base64url_nopad(HMAC-SHA256(secret, "v1.<uid>.<expires>"))`. A login system mints it
//! ([`mint`]); the edge verifies it ([`verify`]) against every configured secret, so secrets can be
//! rotated by adding the new one, waiting out the ticket lifetime, then removing the old one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The only ticket version this code mints and accepts.
pub const VERSION: &str = "v1";
/// Longest ticket accepted; anything longer is rejected before any work (v1 tickets are < 130 bytes).
pub const MAX_TICKET_LEN: usize = 256;
/// Length of the base64url (no padding) encoding of a 32-byte HMAC-SHA256.
const SIG_B64_LEN: usize = 43;

/// A ticket whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTicket {
    pub uid: String,
    pub expires_at_s: u64,
}

/// Why a ticket was refused. Every variant is answered `unauthorized` (401); the variant is for logs and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("no ticket: expected `Authorization: Bearer v1.<uid>.<expires>.<sig>`")]
    Missing,
    #[error("malformed ticket")]
    Malformed,
    #[error("unsupported ticket version (expected v1)")]
    WrongVersion,
    #[error("ticket uid must be 1..64 chars of [A-Za-z0-9_-]")]
    BadUid,
    #[error("ticket signature does not verify")]
    BadSignature,
    #[error("ticket expired")]
    Expired,
    #[error("no ticket secret configured")]
    NoSecret,
}

impl TicketError {
    /// Short stable name for counters and logs.
    pub fn reason(self) -> &'static str {
        match self {
            TicketError::Missing => "missing",
            TicketError::Malformed => "malformed",
            TicketError::WrongVersion => "wrong_version",
            TicketError::BadUid => "bad_uid",
            TicketError::BadSignature => "bad_signature",
            TicketError::Expired => "expired",
            TicketError::NoSecret => "no_secret",
        }
    }
}

/// HMAC accepts keys of any length, so this is `None` only in theory; callers treat `None` as
/// "no usable secret" rather than panicking (a panic would kill the filter's Wasm VM).
fn mac_for(secret: &[u8], payload: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(payload.as_bytes());
    Some(mac)
}

/// Mint a ticket for `uid` valid until `expires_at_s` (Unix seconds).
pub fn mint(secret: &[u8], uid: &str, expires_at_s: u64) -> Result<String, TicketError> {
    if !crate::is_valid_id(uid) {
        return Err(TicketError::BadUid);
    }
    if secret.is_empty() {
        return Err(TicketError::NoSecret);
    }
    let payload = format!("{VERSION}.{uid}.{expires_at_s}");
    let mac = mac_for(secret, &payload).ok_or(TicketError::NoSecret)?;
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{payload}.{sig}"))
}

/// Take the ticket out of an `Authorization` header value (`Bearer <ticket>`, scheme case-insensitive).
pub fn from_authorization(value: Option<&str>) -> Result<&str, TicketError> {
    let value = value.ok_or(TicketError::Missing)?.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("bearer") {
        return Err(TicketError::Missing);
    }
    // `get`, not indexing: a non-ASCII header must not split a character (found by fuzzing).
    let (Some(scheme), Some(rest)) = (value.get(..7), value.get(7..)) else {
        return Err(TicketError::Malformed);
    };
    if !scheme.eq_ignore_ascii_case("bearer ") {
        return Err(TicketError::Malformed);
    }
    let ticket = rest.trim_start();
    if ticket.is_empty() {
        return Err(TicketError::Missing);
    }
    Ok(ticket)
}

/// Verify `ticket` against any of `secrets` at time `now_s`. Constant-time signature comparison.
/// (Checking many tickets against the same secrets: [`Verifier`] keys the HMAC once.)
pub fn verify<S: AsRef<[u8]>>(secrets: &[S], ticket: &str, now_s: u64) -> Result<VerifiedTicket, TicketError> {
    Verifier::new(secrets).verify(ticket, now_s)
}

/// Verifies tickets against a fixed set of secrets, with each secret's HMAC key schedule (the
/// hashed inner and outer pads) computed once up front: the edge checks a ticket on every
/// request, and this halves the SHA-256 work of each check.
#[derive(Clone)]
pub struct Verifier {
    keyed: Vec<HmacSha256>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("secrets", &self.keyed.len()).finish()
    }
}

impl Verifier {
    /// Key one MAC per non-empty secret (empty secrets are ignored, as by [`verify`]).
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Verifier {
        let keyed = secrets
            .iter()
            .map(AsRef::as_ref)
            .filter(|s| !s.is_empty())
            .filter_map(|s| HmacSha256::new_from_slice(s).ok())
            .collect();
        Verifier { keyed }
    }

    /// Verify `ticket` at time `now_s` (Unix seconds): format, then the signature against every
    /// secret (no early exit, so timing does not tell which one matched), then expiry.
    pub fn verify(&self, ticket: &str, now_s: u64) -> Result<VerifiedTicket, TicketError> {
        if ticket.is_empty() {
            return Err(TicketError::Missing);
        }
        if ticket.len() > MAX_TICKET_LEN || !ticket.is_ascii() {
            return Err(TicketError::Malformed);
        }
        let mut parts = ticket.split('.');
        let (Some(version), Some(uid), Some(expires), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TicketError::Malformed);
        };
        if version != VERSION {
            return Err(TicketError::WrongVersion);
        }
        if !crate::is_valid_id(uid) {
            return Err(TicketError::BadUid);
        }
        if expires.is_empty() || expires.len() > 20 || !expires.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TicketError::Malformed);
        }
        let expires_at_s: u64 = expires.parse().map_err(|_| TicketError::Malformed)?;
        if sig.len() != SIG_B64_LEN {
            return Err(TicketError::Malformed);
        }
        // 43 base64 characters decode to 32 bytes; the buffer has room for the decoder's estimate.
        let mut sig_bytes = [0u8; 33];
        let n = URL_SAFE_NO_PAD.decode_slice(sig, &mut sig_bytes).map_err(|_| TicketError::Malformed)?;
        let sig = sig_bytes.get(..n).filter(|s| s.len() == 32).ok_or(TicketError::Malformed)?;
        let payload = ticket.get(..version.len() + uid.len() + expires.len() + 2).ok_or(TicketError::Malformed)?;
        if self.keyed.is_empty() {
            return Err(TicketError::NoSecret);
        }
        let mut ok = false;
        for keyed in &self.keyed {
            let mut mac = keyed.clone();
            mac.update(payload.as_bytes());
            ok |= mac.verify_slice(sig).is_ok();
        }
        if !ok {
            return Err(TicketError::BadSignature);
        }
        if expires_at_s <= now_s {
            return Err(TicketError::Expired);
        }
        Ok(VerifiedTicket { uid: uid.to_owned(), expires_at_s })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &[u8] = crate::demo::TICKET_SECRET.as_bytes();

    #[test]
    fn mint_then_verify() {
        let t = mint(S, "alice", 2_000).unwrap();
        assert!(t.starts_with("v1.alice.2000."));
        let v = verify(&[S], &t, 1_999).unwrap();
        assert_eq!(v, VerifiedTicket { uid: "alice".into(), expires_at_s: 2_000 });
    }

    #[test]
    fn known_vector() {
        // Computed independently: python3 -c "import hmac,hashlib,base64;print(base64.urlsafe_b64encode(
        //   hmac.new(b'dev-ticket-secret', b'v1.alice.2000', hashlib.sha256).digest()).rstrip(b'=').decode())"
        let t = mint(S, "alice", 2_000).unwrap();
        assert_eq!(t, "v1.alice.2000.QSpfY12KflP-M28YjGhif6uaT09Sdc8FZv9qvUQU818");
    }

    #[test]
    fn expiry_is_exclusive() {
        let t = mint(S, "bob", 100).unwrap();
        assert_eq!(verify(&[S], &t, 100), Err(TicketError::Expired));
        assert!(verify(&[S], &t, 99).is_ok());
    }

    #[test]
    fn rotation_accepts_any_configured_secret() {
        let old = mint(b"old", "carol", 50).unwrap();
        let new = mint(b"new", "carol", 50).unwrap();
        let both: [&[u8]; 2] = [b"new", b"old"];
        assert!(verify(&both, &old, 1).is_ok());
        assert!(verify(&both, &new, 1).is_ok());
        assert_eq!(verify(&[b"new"], &old, 1), Err(TicketError::BadSignature));
        let none: [&[u8]; 0] = [];
        assert_eq!(verify(&none, &new, 1), Err(TicketError::NoSecret));
    }

    #[test]
    fn forged_and_broken_tickets() {
        let t = mint(S, "alice", 2_000).unwrap();
        // uid swapped, signature kept
        assert_eq!(verify(&[S], &t.replace("alice", "mallory"), 1), Err(TicketError::BadSignature));
        // expiry pushed out
        assert_eq!(verify(&[S], &t.replace(".2000.", ".9000."), 1), Err(TicketError::BadSignature));
        // truncated
        assert_eq!(verify(&[S], &t[..t.len() - 1], 1), Err(TicketError::Malformed));
        assert_eq!(verify(&[S], "v1.alice.2000", 1), Err(TicketError::Malformed));
        assert_eq!(verify(&[S], "", 1), Err(TicketError::Missing));
        assert_eq!(verify(&[S], &t.replacen("v1", "v2", 1), 1), Err(TicketError::WrongVersion));
        assert_eq!(verify(&[S], &format!("{t}.extra"), 1), Err(TicketError::Malformed));
        assert_eq!(verify(&[S], &"a".repeat(10_000), 1), Err(TicketError::Malformed));
        assert_eq!(verify(&[S], "v1.al ice.2000.xxx", 1), Err(TicketError::BadUid));
        assert_eq!(verify(&[S], "v1.alice.-5.QSpfY12KflP-M28YjGhif6uaT09Sdc8FZv9qvUQU818", 1), Err(TicketError::Malformed));
        assert_eq!(verify(&[S], "v1.alicé.2000.x", 1), Err(TicketError::Malformed));
        // signature with a bad base64 character
        let bad = format!("{}*", &t[..t.len() - 1]);
        assert_eq!(verify(&[S], &bad, 1), Err(TicketError::Malformed));
    }

    #[test]
    fn authorization_header() {
        assert_eq!(from_authorization(Some("Bearer abc")), Ok("abc"));
        assert_eq!(from_authorization(Some("bearer  abc")), Ok("abc"));
        assert_eq!(from_authorization(None), Err(TicketError::Missing));
        assert_eq!(from_authorization(Some("")), Err(TicketError::Missing));
        assert_eq!(from_authorization(Some("Bearer ")), Err(TicketError::Missing));
        assert_eq!(from_authorization(Some("Basic abc")), Err(TicketError::Malformed));
        // Multi-byte characters around the 7th byte: once a panic, found by `cargo xtask fuzz`.
        assert_eq!(from_authorization(Some("\u{e}\u{fffd}1\u{fffd}")), Err(TicketError::Malformed));
        assert_eq!(from_authorization(Some("Beаrer x")), Err(TicketError::Malformed));
        assert_eq!(from_authorization(Some("ééééé")), Err(TicketError::Malformed));
    }

    #[test]
    fn a_verifier_agrees_with_verify() {
        let v = Verifier::new(&["", "new", "old"]);
        let good = mint(b"old", "dana", 50).unwrap();
        assert_eq!(v.verify(&good, 1), verify(&["new", "old"], &good, 1));
        assert_eq!(v.verify(&good, 1).unwrap().uid, "dana");
        assert_eq!(v.verify(&good.replace("dana", "eve"), 1), Err(TicketError::BadSignature));
        assert_eq!(v.verify(&good, 50), Err(TicketError::Expired));
        assert_eq!(Verifier::new(&[""]).verify(&good, 1), Err(TicketError::NoSecret));
        // A signature of the right length that is not 32 bytes of base64 is malformed.
        let odd = format!("{}{}", &good[..good.len() - 43], "A".repeat(42) + "B");
        assert!(matches!(v.verify(&odd, 1), Err(TicketError::Malformed | TicketError::BadSignature)));
    }

    #[test]
    fn mint_refuses_bad_uid_and_empty_secret() {
        assert_eq!(mint(S, "a.b", 1), Err(TicketError::BadUid));
        assert_eq!(mint(b"", "a", 1), Err(TicketError::NoSecret));
    }
}
