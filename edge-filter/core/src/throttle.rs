//! "Button throttling": at most one request per uid and sku per window.
//!
//! The page applies it to the buy button (a click inside the window sends nothing) and the edge
//! applies it to requests (a repeat inside the window never reaches the origin). Same rule, one code.

/// Default window between two requests of one uid for one sku that may reach the origin.
pub const DEFAULT_WINDOW_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Let this request through; it opens a new window at `now_ms`.
    Pass,
    /// Inside the window opened by the last request that passed; try again in `retry_after_ms`.
    Wait { retry_after_ms: u64 },
}

/// Decide for a request at `now_ms` when the last one that passed did so at `last_pass_ms`.
///
/// A `last_pass_ms` in the future (clock stepped back, or a value from another worker's clock)
/// counts as "just now", so a clock step can never open extra windows.
pub fn decide(last_pass_ms: Option<u64>, now_ms: u64, window_ms: u64) -> ThrottleDecision {
    match last_pass_ms {
        None => ThrottleDecision::Pass,
        Some(last) => {
            let elapsed = now_ms.saturating_sub(last);
            if elapsed >= window_ms {
                ThrottleDecision::Pass
            } else {
                ThrottleDecision::Wait { retry_after_ms: window_ms - elapsed }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_window() {
        assert_eq!(decide(None, 100, 5000), ThrottleDecision::Pass);
        assert_eq!(decide(Some(100), 100, 5000), ThrottleDecision::Wait { retry_after_ms: 5000 });
        assert_eq!(decide(Some(100), 5099, 5000), ThrottleDecision::Wait { retry_after_ms: 1 });
        assert_eq!(decide(Some(100), 5100, 5000), ThrottleDecision::Pass);
    }

    #[test]
    fn future_timestamp_counts_as_now() {
        assert_eq!(decide(Some(10_000), 100, 5000), ThrottleDecision::Wait { retry_after_ms: 5000 });
    }

    #[test]
    fn zero_window_always_passes() {
        assert_eq!(decide(Some(100), 100, 0), ThrottleDecision::Pass);
    }
}
