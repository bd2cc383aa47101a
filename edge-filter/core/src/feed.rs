//! The flags feed: every sale's coarse flags, which the origin serves at `GET /edge/flags` (to the edge only) and the
//! edge polls in the background (about every 100 ms).
//!
//! The feed carries the window and the sold-out flag rather than a precomputed state, so the edge
//! derives `upcoming → on_sale → ended` from its own clock without waiting for the next poll.
//! `version` grows whenever a flag or a sale changes, so a poller can skip an unchanged feed.

use serde::{Deserialize, Serialize};

use crate::sale::{self, state_at, Batch, SaleState, SaleStatus};

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
    /// One edge's share of a sale's `stock_left` among `edges` (absent: one edge), rounded up so
    /// the fleet never under-admits the last units.
    pub fn share_of(edges: Option<u64>, stock_left: u64) -> u64 {
        stock_left.div_ceil(edges.unwrap_or(1).max(1))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The batches the sale releases its stock in (see [`crate::sale`]); absent: all at the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<Batch>,
    /// When `sold_out` was raised by one batch's stock: the next batch's start, from which it no
    /// longer holds (see [`sale::sold_out_now`]). Absent: it holds until lowered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sold_out_until: Option<u64>,
}

impl SaleFlags {
    /// The challenge's difficulty, when the sale asks for one.
    pub fn challenge(&self) -> Option<u32> {
        self.challenge_bits.filter(|b| *b > 0)
    }

    pub fn state_at(&self, now_ms: u64) -> SaleState {
        state_at(now_ms, self.starts_at, self.ends_at, sale::sold_out_now(self.sold_out, self.sold_out_until, now_ms))
    }

    /// Units that can be sold at `now_ms`: `stock_left` less what later batches still hold back.
    pub fn units_open(&self, now_ms: u64) -> Option<u64> {
        Some(self.stock_left?.saturating_sub(sale::unreleased_at(&self.batches, now_ms)))
    }

    /// The start of the batch open at `now_ms` (the sale's start without batches): the start the
    /// edge's start lottery counts from.
    pub fn opened_at(&self, now_ms: u64) -> u64 {
        sale::opened_at(&self.batches, self.starts_at, now_ms)
    }

    /// The public status at `now_ms`, as both the edge and the origin answer it.
    pub fn status(&self, now_ms: u64) -> SaleStatus {
        let state = self.state_at(now_ms);
        SaleStatus {
            sku: self.sku.clone(),
            state,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            server_time: now_ms,
            next_batch_at: sale::next_batch_after(&self.batches, now_ms).filter(|_| state != SaleState::Ended),
        }
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
        assert_eq!((f.edges, FlagsFeed::share_of(f.edges, 10)), (None, 10), "an older origin's feed: one edge");
        f.edges = Some(3);
        assert_eq!((FlagsFeed::share_of(f.edges, 10), FlagsFeed::share_of(f.edges, 9), FlagsFeed::share_of(f.edges, 1), FlagsFeed::share_of(f.edges, 0)), (4, 3, 1, 0));
        f.edges = Some(0);
        assert_eq!(FlagsFeed::share_of(f.edges, 5), 5);
        assert!(!serde_json::to_string(&FlagsFeed { edges: None, ..f.clone() }).unwrap().contains("edges"));
    }

    #[test]
    fn feed_json_round_trip() {
        let f = FlagsFeed {
            version: 7,
            server_time: 1000,
            sales: vec![SaleFlags { sku: "a".into(), starts_at: 10, ends_at: 20, sold_out: true, per_user_limit: 1, ..SaleFlags::default() }],
            edges: None,
        };
        let j = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<FlagsFeed>(&j).unwrap(), f);
        assert_eq!(f.get("a").unwrap().state_at(15), SaleState::SoldOut);
        assert!(f.get("b").is_none());
        assert!(!j.contains("batches") && !j.contains("sold_out_until"), "a sale without batches reads as before: {j}");
    }

    #[test]
    fn a_sale_in_batches_opens_each_batch_from_the_edges_own_clock() {
        let sale = SaleFlags {
            sku: "a".into(),
            starts_at: 100,
            ends_at: 1_000,
            // Batch 1 sold out; the feed was taken before batch 2 and is not polled again.
            sold_out: true,
            sold_out_until: Some(200),
            stock_left: Some(5),
            batches: vec![Batch { at: 100, stock: 3 }, Batch { at: 200, stock: 5 }],
            per_user_limit: 1,
            ..SaleFlags::default()
        };
        assert_eq!((sale.state_at(150), sale.units_open(150), sale.opened_at(150)), (SaleState::SoldOut, Some(0), 100));
        assert_eq!((sale.state_at(200), sale.units_open(200), sale.opened_at(200)), (SaleState::OnSale, Some(5), 200));
        assert_eq!(sale.status(150).next_batch_at, Some(200));
        assert_eq!((sale.status(200).next_batch_at, sale.status(50).next_batch_at), (None, Some(100)));
        assert_eq!(sale.status(1_000).state, SaleState::Ended);
        let j = serde_json::to_string(&sale).unwrap();
        assert_eq!(serde_json::from_str::<SaleFlags>(&j).unwrap(), sale);
    }
}
