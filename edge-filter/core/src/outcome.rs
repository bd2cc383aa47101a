//! The outcomes of one attempt to buy, as the contract's table defines them.
//!
//! Both the edge and the origin answer buys, and the page and the simulator read the answers, so
//! the outcome names, their HTTP statuses and the body shape live here once.

use serde::{Deserialize, Serialize};

use crate::challenge::Challenge;

/// Every answer a buy (`POST /api/sales/{sku}/orders`) can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Won,
    AlreadyWon,
    SoldOut,
    NotStarted,
    Ended,
    Throttled,
    Unauthorized,
    Busy,
    UnknownSku,
    Invalid,
    /// The sale asks for a solved proof-of-work challenge: the body's `challenge` is the one to
    /// solve (see [`crate::challenge`]); nothing was recorded against the uid.
    Challenge,
}

impl Outcome {
    pub const ALL: [Outcome; 11] = [
        Outcome::Won,
        Outcome::AlreadyWon,
        Outcome::SoldOut,
        Outcome::NotStarted,
        Outcome::Ended,
        Outcome::Throttled,
        Outcome::Unauthorized,
        Outcome::Busy,
        Outcome::UnknownSku,
        Outcome::Invalid,
        Outcome::Challenge,
    ];

    /// The wire name (`won`, `already_won`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Won => "won",
            Outcome::AlreadyWon => "already_won",
            Outcome::SoldOut => "sold_out",
            Outcome::NotStarted => "not_started",
            Outcome::Ended => "ended",
            Outcome::Throttled => "throttled",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Busy => "busy",
            Outcome::UnknownSku => "unknown_sku",
            Outcome::Invalid => "invalid",
            Outcome::Challenge => "challenge",
        }
    }

    /// Parse a wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The HTTP status the contract gives this outcome.
    pub fn http_status(self) -> u16 {
        match self {
            Outcome::Won => 201,
            Outcome::AlreadyWon => 200,
            Outcome::SoldOut => 410,
            Outcome::NotStarted | Outcome::Ended => 403,
            Outcome::Throttled => 429,
            Outcome::Unauthorized => 401,
            Outcome::Busy => 503,
            Outcome::UnknownSku => 404,
            Outcome::Invalid => 400,
            Outcome::Challenge => 428,
        }
    }

    /// Outcomes that stay true for at least a throttle window for this uid and sku, so the edge may
    /// replay them to a repeat inside the window instead of answering `throttled`. (`not_started`,
    /// `busy` and `invalid` are not: they change with time or with the request. A `sold_out` can end
    /// when an unpaid order expires, which takes far longer than a window.)
    pub fn is_final(self) -> bool {
        matches!(self, Outcome::Won | Outcome::AlreadyWon | Outcome::SoldOut | Outcome::Ended | Outcome::UnknownSku)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every buy answer. Fields beyond `outcome` appear where the contract says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyAnswer {
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Only with `challenge`: the challenge to solve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<Challenge>,
}

impl BuyAnswer {
    pub fn new(outcome: Outcome) -> Self {
        BuyAnswer { outcome, order_id: None, sku: None, uid: None, starts_at: None, ends_at: None, retry_after_ms: None, error: None, challenge: None }
    }

    pub fn won(outcome: Outcome, order_id: &str, sku: &str, uid: &str) -> Self {
        BuyAnswer { order_id: Some(order_id.into()), sku: Some(sku.into()), uid: Some(uid.into()), ..Self::new(outcome) }
    }

    pub fn with_error(outcome: Outcome, error: impl Into<String>) -> Self {
        BuyAnswer { error: Some(error.into()), ..Self::new(outcome) }
    }

    /// `challenge`: why the proof was refused, and the challenge to solve.
    pub fn challenge(challenge: Challenge, why: &crate::challenge::ProofError) -> Self {
        BuyAnswer { challenge: Some(challenge), error: Some(why.to_string()), ..Self::new(Outcome::Challenge) }
    }

    pub fn throttled(retry_after_ms: u64) -> Self {
        BuyAnswer { retry_after_ms: Some(retry_after_ms), ..Self::new(Outcome::Throttled) }
    }

    /// Value of the `Retry-After` header (whole seconds, at least 1) for a wait of `ms`.
    pub fn retry_after_header(ms: u64) -> u64 {
        ms.div_ceil(1000).max(1)
    }

    pub fn to_json(&self) -> String {
        // Serialising this plain struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"outcome\":\"{}\"}}", self.outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{}\"", o.as_str()));
        }
        assert_eq!(Outcome::parse("WON"), None);
    }

    #[test]
    fn statuses_follow_the_contract() {
        let table = [
            ("won", 201), ("already_won", 200), ("sold_out", 410), ("not_started", 403), ("ended", 403),
            ("throttled", 429), ("unauthorized", 401), ("busy", 503), ("unknown_sku", 404), ("invalid", 400),
            ("challenge", 428),
        ];
        for (name, status) in table {
            assert_eq!(Outcome::parse(name).unwrap().http_status(), status, "{name}");
        }
    }

    #[test]
    fn answer_json_shape() {
        let a = BuyAnswer::won(Outcome::Won, "phone-1.7", "phone-1", "alice");
        assert_eq!(a.to_json(), r#"{"outcome":"won","order_id":"phone-1.7","sku":"phone-1","uid":"alice"}"#);
        let t = BuyAnswer::throttled(1500);
        assert_eq!(t.to_json(), r#"{"outcome":"throttled","retry_after_ms":1500}"#);
        assert_eq!(BuyAnswer::retry_after_header(1500), 2);
        assert_eq!(BuyAnswer::retry_after_header(0), 1);
        let back: BuyAnswer = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn only_lasting_outcomes_are_final() {
        assert!(Outcome::Won.is_final());
        assert!(Outcome::SoldOut.is_final());
        assert!(!Outcome::NotStarted.is_final());
        assert!(!Outcome::Busy.is_final());
        assert!(!Outcome::Throttled.is_final());
    }
}
