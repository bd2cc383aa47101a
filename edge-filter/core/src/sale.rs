//! The coarse state of a sale, derived from its window and its sold-out flag, and the batches a
//! sale may release its stock in.
//!
//! The public never sees an exact stock count: only one of four states. The edge, the origin and
//! the page all derive the state with [`state_at`], so they cannot disagree for the same inputs.
//!
//! A sale may release its stock in [`Batch`]es at set times (12306's 分时段放票): a unit can only
//! be sold once its batch is out ([`released_by`]), and each batch's start behaves like a sale
//! start. A stock-driven sold-out flag raised during one batch holds only until the next batch
//! starts ([`sold_out_now`]: the flag carries that time), so every part lowers it from its own
//! clock at the same instant without waiting for anyone to write it.

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

/// Whether a sold-out flag still holds at `now_ms`: a flag raised by the stock of one batch
/// carries the next batch's start as `until` and holds only before it; the SRE's switch, and the
/// flag of a sale's last (or only) batch, carry none and hold until lowered.
pub fn sold_out_now(sold_out: bool, until: Option<u64>, now_ms: u64) -> bool {
    sold_out && until.is_none_or(|t| now_ms < t)
}

/// Stock released at a set time: `{"at": ms, "stock": n}` in a sale's `batches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// When the batch goes on sale (Unix ms).
    pub at: u64,
    /// Units it releases.
    pub stock: u64,
}

/// Most batches one sale may have.
pub const MAX_BATCHES: usize = 64;

/// Why a sale's batches are refused (the message names the rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batches: at most {MAX_BATCHES}")]
    TooMany,
    #[error("batches: the first batch must be at starts_at ({starts_at}), not {at}")]
    FirstNotAtStart { at: u64, starts_at: u64 },
    #[error("batches: each batch's `at` must be after the previous one's ({at} is not after {previous})")]
    NotAscending { at: u64, previous: u64 },
    #[error("batches: every batch must start before ends_at ({at} is not before {ends_at})")]
    AfterEnd { at: u64, ends_at: u64 },
    #[error("batches: each batch needs a stock of at least 1")]
    Empty,
    #[error("batches: the stock of the batches adds up to {sum}, but stock says {stock}")]
    StockMismatch { sum: u64, stock: u64 },
}

/// Check a sale's batches against its window and its stock: ordered strictly by `at`, the first
/// at `starts_at`, all before `ends_at`, none empty, adding up to `stock`. No batches: nothing to check.
pub fn check_batches(batches: &[Batch], starts_at: u64, ends_at: u64, stock: u64) -> Result<(), BatchError> {
    if batches.len() > MAX_BATCHES {
        return Err(BatchError::TooMany);
    }
    let mut previous: Option<u64> = None;
    for b in batches {
        match previous {
            None if b.at != starts_at => return Err(BatchError::FirstNotAtStart { at: b.at, starts_at }),
            Some(p) if b.at <= p => return Err(BatchError::NotAscending { at: b.at, previous: p }),
            _ => {}
        }
        if b.at >= ends_at {
            return Err(BatchError::AfterEnd { at: b.at, ends_at });
        }
        if b.stock == 0 {
            return Err(BatchError::Empty);
        }
        previous = Some(b.at);
    }
    let sum = batches.iter().fold(0u64, |acc, b| acc.saturating_add(b.stock));
    if !batches.is_empty() && sum != stock {
        return Err(BatchError::StockMismatch { sum, stock });
    }
    Ok(())
}

/// Units released by `now_ms` (all of them for a sale without batches: `None`).
pub fn released_by(batches: &[Batch], now_ms: u64) -> Option<u64> {
    (!batches.is_empty()).then(|| batches.iter().filter(|b| b.at <= now_ms).map(|b| b.stock).sum())
}

/// Units whose batch is not out yet at `now_ms` (0 for a sale without batches).
pub fn unreleased_at(batches: &[Batch], now_ms: u64) -> u64 {
    batches.iter().filter(|b| b.at > now_ms).map(|b| b.stock).sum()
}

/// The start of the batch open at `now_ms` (the sale's start without batches, or before the first).
pub fn opened_at(batches: &[Batch], starts_at: u64, now_ms: u64) -> u64 {
    batches.iter().rev().find(|b| b.at <= now_ms).map_or(starts_at, |b| b.at)
}

/// The first batch to start after `now_ms`, if any.
pub fn next_batch_after(batches: &[Batch], now_ms: u64) -> Option<u64> {
    batches.iter().find(|b| b.at > now_ms).map(|b| b.at)
}

/// `GET /api/sales/{sku}`: `{"sku","state","starts_at","ends_at","server_time"}` (times in Unix
/// ms), plus `next_batch_at` while a sale released in batches has one to come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleStatus {
    pub sku: String,
    pub state: SaleState,
    pub starts_at: u64,
    pub ends_at: u64,
    pub server_time: u64,
    /// When the next batch of stock goes on sale (absent without one to come: old clients see the
    /// four fields they know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_batch_at: Option<u64>,
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
        let s = SaleStatus { sku: "p".into(), state: SaleState::OnSale, starts_at: 1, ends_at: 2, server_time: 3, next_batch_at: None };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"sku":"p","state":"on_sale","starts_at":1,"ends_at":2,"server_time":3}"#
        );
        let s = SaleStatus { next_batch_at: Some(9), ..s };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"sku":"p","state":"on_sale","starts_at":1,"ends_at":2,"server_time":3,"next_batch_at":9}"#
        );
    }

    fn two_batches() -> Vec<Batch> {
        vec![Batch { at: 100, stock: 3 }, Batch { at: 200, stock: 5 }]
    }

    #[test]
    fn batches_release_their_stock_at_their_time() {
        let b = two_batches();
        assert_eq!(released_by(&b, 99), Some(0));
        assert_eq!(released_by(&b, 100), Some(3));
        assert_eq!(released_by(&b, 199), Some(3));
        assert_eq!(released_by(&b, 200), Some(8));
        assert_eq!(released_by(&[], 0), None);
        assert_eq!((unreleased_at(&b, 150), unreleased_at(&b, 200), unreleased_at(&[], 5)), (5, 0, 0));
        assert_eq!((opened_at(&b, 100, 50), opened_at(&b, 100, 150), opened_at(&b, 100, 250), opened_at(&[], 7, 250)), (100, 100, 200, 7));
        assert_eq!((next_batch_after(&b, 50), next_batch_after(&b, 100), next_batch_after(&b, 200)), (Some(100), Some(200), None));
    }

    #[test]
    fn a_batch_sold_out_flag_holds_until_the_next_batch() {
        assert!(sold_out_now(true, Some(200), 199));
        assert!(!sold_out_now(true, Some(200), 200));
        assert!(sold_out_now(true, None, u64::MAX), "the switch and the last batch's flag hold");
        assert!(!sold_out_now(false, None, 0));
    }

    #[test]
    fn batches_are_checked_against_the_window_and_the_stock() {
        let b = two_batches();
        assert_eq!(check_batches(&b, 100, 300, 8), Ok(()));
        assert_eq!(check_batches(&b, 100, 300, 9), Err(BatchError::StockMismatch { sum: 8, stock: 9 }));
        assert_eq!(check_batches(&b, 90, 300, 8), Err(BatchError::FirstNotAtStart { at: 100, starts_at: 90 }));
        assert_eq!(check_batches(&b, 100, 200, 8), Err(BatchError::AfterEnd { at: 200, ends_at: 200 }));
        let back = vec![b[0], Batch { at: 100, stock: 1 }];
        assert_eq!(check_batches(&back, 100, 300, 4), Err(BatchError::NotAscending { at: 100, previous: 100 }));
        assert_eq!(check_batches(&[Batch { at: 100, stock: 0 }], 100, 300, 0), Err(BatchError::Empty));
        let many: Vec<Batch> = (0..=MAX_BATCHES as u64).map(|i| Batch { at: 100 + i, stock: 1 }).collect();
        assert_eq!(check_batches(&many, 100, 1_000, 65), Err(BatchError::TooMany));
        assert_eq!(check_batches(&[], 100, 300, 7), Ok(()), "no batches: the stock as given");
        assert!(BatchError::AfterEnd { at: 200, ends_at: 200 }.to_string().contains("before ends_at"));
    }
}
