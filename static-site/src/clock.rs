//! The server's clock as seen from the browser.
//!
//! A shopper's clock can be minutes off, and a countdown that trusts it would open the button
//! too early (every click `not_started`) or too late (the stock gone). So the page keeps an offset
//! from the `server_time` of `GET /api/sales/{sku}` and counts down on `local now + offset`.
//! The server read its clock somewhere between sending and receiving, so the midpoint of the
//! round trip is the best local estimate of that moment; the answer with the shortest round trip
//! (the least uncertain) wins.

/// Offset between the server's clock and the local one, learnt from status answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerClock {
    /// `server - local`, in ms. Zero until the first sync.
    offset_ms: i64,
    /// Round trip of the sample the offset came from; `None` before the first sync.
    rtt_ms: Option<u64>,
    /// Local time of that sample.
    synced_at: u64,
}

/// Samples older than this are replaced even by a slower one (clocks drift, laptops sleep).
const SAMPLE_MAX_AGE_MS: u64 = 60_000;

impl ServerClock {
    /// Learn from an answer carrying `server_time`, for a request sent at local `sent_ms` and
    /// answered at local `received_ms`.
    pub fn sync(&mut self, server_time: u64, sent_ms: u64, received_ms: u64) {
        let received_ms = received_ms.max(sent_ms);
        let rtt = received_ms - sent_ms;
        let midpoint = sent_ms + rtt / 2;
        let offset = server_time as i64 - midpoint as i64;
        let better = match self.rtt_ms {
            None => true,
            Some(best) => rtt <= best || rtt <= 100 || self.aged(received_ms),
        };
        if better {
            self.offset_ms = offset;
            self.rtt_ms = Some(rtt);
            self.synced_at = received_ms;
        }
    }

    fn aged(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.synced_at) > SAMPLE_MAX_AGE_MS
    }

    /// True once a status answer was seen.
    pub fn is_synced(&self) -> bool {
        self.rtt_ms.is_some()
    }

    /// The server's time at local time `local_ms`.
    pub fn server_now(&self, local_ms: u64) -> u64 {
        (local_ms as i64).saturating_add(self.offset_ms).max(0) as u64
    }

    /// `server - local` in ms.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_clock_is_the_local_one() {
        let c = ServerClock::default();
        assert!(!c.is_synced());
        assert_eq!(c.server_now(1_000), 1_000);
    }

    #[test]
    fn offset_from_the_round_trip_midpoint() {
        // The local clock is 10 minutes slow: the server said 1_000_600_000 at local 1_000_000_050.
        let mut c = ServerClock::default();
        c.sync(1_000_600_050, 1_000_000_000, 1_000_000_100);
        assert!(c.is_synced());
        assert_eq!(c.offset_ms(), 600_000);
        assert_eq!(c.server_now(1_000_001_000), 1_000_601_000);
    }

    #[test]
    fn a_fast_local_clock_gives_a_negative_offset() {
        let mut c = ServerClock::default();
        c.sync(5_000, 65_000, 65_000);
        assert_eq!(c.offset_ms(), -60_000);
        assert_eq!(c.server_now(66_000), 6_000);
        assert_eq!(c.server_now(0), 0, "never below the epoch");
    }

    #[test]
    fn a_slow_answer_does_not_replace_a_precise_one() {
        let mut c = ServerClock::default();
        c.sync(10_050, 10_000, 10_100); // rtt 100, offset 0
        c.sync(20_000 + 2_000, 20_000, 23_000); // rtt 3 s: uncertain
        assert_eq!(c.offset_ms(), 0);
        // ...unless the precise one is old.
        c.sync(90_000 + 2_000, 90_000, 93_000);
        assert_eq!(c.offset_ms(), 500);
    }

    #[test]
    fn answers_before_sending_are_clamped() {
        // Local clock stepped back between send and receive.
        let mut c = ServerClock::default();
        c.sync(1_000, 2_000, 1_500);
        assert_eq!(c.offset_ms(), -1_000);
    }
}
