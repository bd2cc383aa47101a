//! The coarse state of a sale, derived from its window and its sold-out flag.
//!
//! The public never sees an exact stock count: only one of four states. The edge, the origin and
//! the page all derive the state with [`state_at`], so they cannot disagree for the same inputs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleState {
    Upcoming,
    OnSale,
    SoldOut,
    Ended,
}

impl SaleState {
    pub fn as_str(self) -> &'static str {
        match self {
            SaleState::Upcoming => "upcoming",
            SaleState::OnSale => "on_sale",
            SaleState::SoldOut => "sold_out",
            SaleState::Ended => "ended",
        }
    }
}

/// The state at `now_ms` of a sale open on `[starts_at, ends_at)` (Unix ms).
///
/// The window is checked first (the buy script does the same), so a sale flagged sold out before
/// its start still reads `upcoming`, and every sale past its end reads `ended`.
pub fn state_at(now_ms: u64, starts_at: u64, ends_at: u64, sold_out: bool) -> SaleState {
    if now_ms >= ends_at {
        SaleState::Ended
    } else if now_ms < starts_at {
        SaleState::Upcoming
    } else if sold_out {
        SaleState::SoldOut
    } else {
        SaleState::OnSale
    }
}

/// `GET /api/sales/{sku}`: `{"sku","state","starts_at","ends_at","server_time"}` (times in Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleStatus {
    pub sku: String,
    pub state: SaleState,
    pub starts_at: u64,
    pub ends_at: u64,
    pub server_time: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_then_flag() {
        assert_eq!(state_at(5, 10, 20, false), SaleState::Upcoming);
        assert_eq!(state_at(5, 10, 20, true), SaleState::Upcoming);
        assert_eq!(state_at(10, 10, 20, false), SaleState::OnSale);
        assert_eq!(state_at(10, 10, 20, true), SaleState::SoldOut);
        assert_eq!(state_at(19, 10, 20, true), SaleState::SoldOut);
        assert_eq!(state_at(20, 10, 20, false), SaleState::Ended);
        assert_eq!(state_at(20, 10, 20, true), SaleState::Ended);
    }

    #[test]
    fn status_json() {
        let s = SaleStatus { sku: "p".into(), state: SaleState::OnSale, starts_at: 1, ends_at: 2, server_time: 3 };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"sku":"p","state":"on_sale","starts_at":1,"ends_at":2,"server_time":3}"#
        );
    }
}
