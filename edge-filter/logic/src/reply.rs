//! The answers the edge gives itself: status, headers and JSON body, built in one place so every
//! edge answer carries the headers the contract requires.
//!
//! Every buy answer is a [`seckill_core::BuyAnswer`] with the status of its outcome,
//! `x-seckill-by: edge`, `content-type: application/json` and `cache-control: no-store` (plus
//! `x-seckill-outcome`, as the origin sends, and `retry-after` for `throttled`).

use seckill_core::{headers, BuyAnswer, Outcome, SaleStatus};

/// A response the filter sends instead of calling the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    /// The value of a header of this reply (first match), for tests and logs.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as a `BuyAnswer` (tests).
    pub fn answer(&self) -> Option<BuyAnswer> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A buy answer decided at the edge.
pub fn buy(answer: &BuyAnswer) -> Reply {
    let mut h = vec![
        ("content-type", "application/json".to_owned()),
        ("cache-control", "no-store".to_owned()),
        (headers::BY, "edge".to_owned()),
        (headers::OUTCOME, answer.outcome.as_str().to_owned()),
    ];
    if answer.outcome == Outcome::Throttled {
        let ms = answer.retry_after_ms.unwrap_or(1_000);
        h.push(("retry-after", BuyAnswer::retry_after_header(ms).to_string()));
    }
    Reply { status: answer.outcome.http_status(), headers: h, body: answer.to_json() }
}

/// The contract's `busy` (503, `Retry-After: 1`): the edge cannot decide now and nothing was
/// committed. The native glue answers it when its own code fails on a request (a caught panic).
pub fn busy() -> Reply {
    let mut r = buy(&BuyAnswer { retry_after_ms: Some(1_000), ..BuyAnswer::new(Outcome::Busy) });
    r.headers.push(("retry-after", "1".to_owned()));
    r
}

/// `GET /api/sales/{sku}` answered at the edge (may be cached for 1 s, as the contract allows).
pub fn sale_status(status: &SaleStatus) -> Reply {
    let body = serde_json::to_string(status).unwrap_or_else(|_| "{}".to_owned());
    Reply {
        status: 200,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("cache-control", "max-age=1".to_owned()),
            (headers::BY, "edge".to_owned()),
        ],
        body,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_is_the_contracts_503() {
        let r = super::busy();
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.header("x-seckill-by"), Some("edge"));
        assert_eq!(r.header("x-seckill-outcome"), Some("busy"));
        let a = r.answer().unwrap();
        assert_eq!((a.outcome, a.retry_after_ms), (seckill_core::Outcome::Busy, Some(1_000)));
    }

    use super::*;
    use seckill_core::SaleState;

    #[test]
    fn throttled_has_retry_after() {
        let r = buy(&BuyAnswer::throttled(1_500));
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("2"));
        assert_eq!(r.header("x-seckill-by"), Some("edge"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, r#"{"outcome":"throttled","retry_after_ms":1500}"#);
    }

    #[test]
    fn status_shape() {
        let r = sale_status(&SaleStatus { sku: "p".into(), state: SaleState::Upcoming, starts_at: 1, ends_at: 2, server_time: 0, next_batch_at: None });
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-control"), Some("max-age=1"));
        assert_eq!(r.body, r#"{"sku":"p","state":"upcoming","starts_at":1,"ends_at":2,"server_time":0}"#);
    }
}
