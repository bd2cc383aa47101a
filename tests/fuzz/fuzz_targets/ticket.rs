//! The ticket verifier and header checks on arbitrary input: never panics, never accepts what it did not sign,
//! and accepts everything it minted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use seckill_core::ticket;

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ticket::from_authorization(Some(&text));
    let _ = seckill_core::headers::is_reserved(&text);
    if let Ok(t) = ticket::verify(&[SECRET], &text, 0) {
        // Only a ticket minted with SECRET verifies: re-minting it must give the same text.
        let again = ticket::mint(SECRET, &t.uid, t.expires_at_s).expect("a verified uid is valid");
        assert_eq!(again, text, "verify accepted a ticket mint would not produce");
    }
    // Round trip: any valid uid minted verifies to itself.
    if seckill_core::is_valid_id(&text) {
        let t = ticket::mint(SECRET, &text, 10).expect("valid uid");
        assert_eq!(ticket::verify(&[SECRET], &t, 9).expect("own ticket").uid, text);
        assert!(ticket::verify(&[b"other".as_slice()], &t, 9).is_err());
    }
});
