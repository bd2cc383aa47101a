//! The rules of the flash sale that more than one part of the stack must agree on.
//!
//! Everything here is pure: functions take `now_ms` / `now_s` and their inputs and return a
//! decision, so the same rule runs natively in the origin and the simulator, as Wasm in the
//! Envoy filter (`wasm32-wasip1`) and as Wasm in the shopper's browser (`wasm32-unknown-unknown`).
//!
//! Layout:
//! - [`ticket`]: the `v1.<uid>.<expires>.<sig>` HMAC ticket, minted by a login system and verified at the edge.
//! - [`outcome`]: the outcomes of a buy attempt, their HTTP statuses and the JSON answer body.
//! - [`sale`]: the coarse sale state (upcoming / on sale / sold out / ended) and its public JSON.
//! - [`feed`]: the flags feed the origin serves and the edge polls.
//! - [`throttle`]: the one-request-per-window rule shared by the edge and the page.
//! - [`challenge`]: the proof-of-work challenge a sale may ask of buys: issue, solve, verify.
//! - [`headers`]: names of the `x-seckill-*` headers exchanged between edge and origin.
//! - [`order`]: the order id `<sku>.<n>`, an order's state, the my-orders and pay answers.
//! - [`session`]: the demo login's request and answer.
//! - [`demo`]: the demo stack's secrets.

pub mod challenge;
pub mod demo;
pub mod feed;
pub mod headers;
pub mod order;
pub mod outcome;
pub mod sale;
pub mod session;
pub mod throttle;
pub mod ticket;

pub use outcome::{BuyAnswer, Outcome};
pub use sale::{SaleState, SaleStatus};

/// True when `s` is a valid identifier in this system: 1..=64 chars of `[A-Za-z0-9_-]`.
///
/// Uids (by the contract) and skus (by this project's choice, written in the README) share
/// this rule, which keeps them safe inside Redis keys, URL paths and header values.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("alice"));
        assert!(is_valid_id("A_b-9"));
        assert!(is_valid_id(&"x".repeat(64)));
        assert!(!is_valid_id(&"x".repeat(65)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a.b"));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("ä"));
        assert!(!is_valid_id("a b"));
    }
}
