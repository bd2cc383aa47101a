//! The flags feed: every sale's coarse flags, which the origin serves at `GET /edge/flags` (to the edge only) and the
//! edge polls in the background (about every 100 ms).
//!
//! The feed carries the window and the sold-out flag rather than a precomputed state, so the edge
//! derives `upcoming → on_sale → ended` from its own clock without waiting for the next poll.
//! `version` grows whenever a flag or a sale changes, so a poller can skip an unchanged feed.

use serde::{Deserialize, Serialize};

use crate::sale::{state_at, SaleState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagsFeed {
    /// Grows with every change of any sale's flags or window.
    pub version: u64,
    /// The origin's clock when the feed was built (Unix ms).
    pub server_time: u64,
    pub sales: Vec<SaleFlags>,
    /// How many edges share the sales (a fleet: the distinct edges that polled any origin's feed
    /// in the last few seconds). Each edge's admission budget takes `1 / edges` of `stock_left`.
    /// Absent from older origins and from a single edge that does not name itself: one edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<u64>,
}

impl FlagsFeed {
    /// This edge's share of a sale's `stock_left` (rounded up, so the fleet never under-admits
    /// the last units).
    pub fn edge_share(&self, stock_left: u64) -> u64 {
        stock_left.div_ceil(self.edges.unwrap_or(1).max(1))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleFlags {
    pub sku: String,
    pub starts_at: u64,
    pub ends_at: u64,
    /// Raised by the SRE switch or because stock reached zero.
    pub sold_out: bool,
    /// Orders one uid may hold for this sku (the edge dedups winners only when this is 1).
    pub per_user_limit: u32,
    /// Units left when the feed was taken. Only in the edge's feed (never shown to shoppers):
    /// the edge passes no more buys than this at once (see the edge filter's admission budget).
    /// Absent from older origins: no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_left: Option<u64>,
    /// The difficulty of the proof-of-work challenge asked of every buy from the start, in
    /// leading zero bits (see [`crate::challenge`]). Absent or 0: no challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_bits: Option<u32>,
}

impl SaleFlags {
    /// The challenge's difficulty, when the sale asks for one.
    pub fn challenge(&self) -> Option<u32> {
        self.challenge_bits.filter(|b| *b > 0)
    }

    pub fn state_at(&self, now_ms: u64) -> SaleState {
        state_at(now_ms, self.starts_at, self.ends_at, self.sold_out)
    }
}

impl FlagsFeed {
    pub fn get(&self, sku: &str) -> Option<&SaleFlags> {
        self.sales.iter().find(|s| s.sku == sku)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_edge_of_a_fleet_takes_its_share_rounded_up() {
        let mut f: FlagsFeed = serde_json::from_str(r#"{"version":1,"server_time":2,"sales":[]}"#).unwrap();
        assert_eq!((f.edges, f.edge_share(10)), (None, 10), "an older origin's feed: one edge");
        f.edges = Some(3);
        assert_eq!((f.edge_share(10), f.edge_share(9), f.edge_share(1), f.edge_share(0)), (4, 3, 1, 0));
        f.edges = Some(0);
        assert_eq!(f.edge_share(5), 5);
        assert!(!serde_json::to_string(&FlagsFeed { edges: None, ..f.clone() }).unwrap().contains("edges"));
    }

    #[test]
    fn feed_json_round_trip() {
        let f = FlagsFeed {
            version: 7,
            server_time: 1000,
            sales: vec![SaleFlags { sku: "a".into(), starts_at: 10, ends_at: 20, sold_out: true, per_user_limit: 1, stock_left: None, challenge_bits: None }],
            edges: None,
        };
        let j = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<FlagsFeed>(&j).unwrap(), f);
        assert_eq!(f.get("a").unwrap().state_at(15), SaleState::SoldOut);
        assert!(f.get("b").is_none());
    }
}
