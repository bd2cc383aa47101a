//! The in-memory snapshot of every sale's coarse flags, refreshed from Redis.
//!
//! It serves two hot, read-only paths without touching Redis: the flags feed the edge polls many
//! times a second (`GET /edge/flags`, pre-serialised bytes) and the public sale status
//! (`GET /api/sales/{sku}`). A background task refreshes it every `refresh` interval, and at once
//! when this origin changes a flag ([`FlagsSnapshot::poke`]), so a change is in the feed within
//! one refresh interval (50 ms by default) even when made on another origin.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use seckill_core::feed::{FlagsFeed, SaleFlags};

use crate::edges::EdgeRoster;
use crate::store::Store;

/// One refresh's result: the feed and its JSON.
pub struct Snapshot {
    pub feed: FlagsFeed,
    pub by_sku: HashMap<String, SaleFlags>,
    pub json: Bytes,
    /// True once a refresh has succeeded (before that the origin knows no sale from memory).
    pub loaded: bool,
}

pub struct FlagsSnapshot {
    current: RwLock<Arc<Snapshot>>,
    poke: Notify,
    /// Edges heard on the feed since the last refresh.
    pub roster: EdgeRoster,
}

impl Default for FlagsSnapshot {
    fn default() -> Self {
        Self::new()
    }
}

impl FlagsSnapshot {
    pub fn new() -> Self {
        let feed = FlagsFeed { version: 0, server_time: 0, sales: Vec::new(), edges: None };
        let json = Bytes::from(serde_json::to_vec(&feed).unwrap_or_default());
        FlagsSnapshot {
            current: RwLock::new(Arc::new(Snapshot { feed, by_sku: HashMap::new(), json, loaded: false })),
            poke: Notify::new(),
            roster: EdgeRoster::default(),
        }
    }

    pub fn get(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Ask the refresher to refresh now (after this origin changed a flag or a sale).
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// Refresh once from Redis: the sales' flags and the fleet's roster.
    ///
    /// The feed's version is the sum of every sale's change counters plus the roster's generation:
    /// each term only grows, so a later snapshot never has a smaller version (an edge polling
    /// several origins keeps the largest it saw; see the edge's `flags::store_feed`).
    pub async fn refresh(&self, store: &Store, now_ms: u64) -> Result<(), crate::store::StoreError> {
        let heard = self.roster.take();
        let fleet = match store.fleet(&heard).await {
            Ok(f) => f,
            Err(e) => {
                // Hear them again next time.
                heard.iter().for_each(|id| self.roster.heard(id));
                return Err(e);
            }
        };
        let skus = store.skus().await?;
        let records = store.sale_records(&skus).await?;
        let version = records.iter().map(|r| r.version).sum::<u64>() + fleet.generation;
        let sales: Vec<SaleFlags> = records.into_iter().map(|r| r.flags).collect();
        let by_sku = sales.iter().map(|s| (s.sku.clone(), s.clone())).collect();
        let edges = (fleet.edges > 0).then_some(fleet.edges);
        let feed = FlagsFeed { version, server_time: now_ms, sales, edges };
        let json = Bytes::from(serde_json::to_vec(&feed).unwrap_or_default());
        let snap = Arc::new(Snapshot { feed, by_sku, json, loaded: true });
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        Ok(())
    }

    /// Refresh every `every`, or sooner when poked, until the task is dropped.
    pub async fn run_refresher(self: Arc<Self>, store: Store, every: Duration, on_error: impl Fn(&crate::store::StoreError)) {
        loop {
            if let Err(e) = self.refresh(&store, crate::now_ms()).await {
                on_error(&e);
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.poke.notified() => {}
            }
        }
    }
}
