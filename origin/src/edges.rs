//! How many edges share the sales: the fleet's roster, for the admission budget.
//!
//! Each edge of a fleet names itself on its flags-feed polls (`x-seckill-edge-id`). An origin
//! notes the names it hears ([`EdgeRoster::heard`]); its flags refresher hands them to Redis
//! (`edges.lua`, one slot: `sk:{fleet}:*`), which keeps every edge heard by any origin in the last
//! [`EDGE_TTL_MS`] and a generation that moves once per change of their number. The feed then
//! carries `edges` (each edge budgets `1 / edges` of the units left) and its version includes the
//! generation, so every edge re-reads its share when an edge joins or dies.

use std::collections::HashSet;
use std::sync::Mutex;

/// An edge counts for this long after its last poll (edges poll every 100 ms by default).
pub const EDGE_TTL_MS: u64 = 3_000;
/// At most this many distinct names are kept between two refreshes (a bound, not a fleet limit
/// one should reach: names beyond it wait for the next refresh).
const MAX_HEARD: usize = 1_024;

/// Edge names heard since the last refresh.
#[derive(Default)]
pub struct EdgeRoster {
    heard: Mutex<HashSet<String>>,
}

impl EdgeRoster {
    /// Note a poll by edge `id` (already checked to be a valid id).
    pub fn heard(&self, id: &str) {
        let mut g = match self.heard.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if g.len() < MAX_HEARD && !g.contains(id) {
            g.insert(id.to_owned());
        }
    }

    /// The names heard since the last call, sorted.
    pub fn take(&self) -> Vec<String> {
        let mut g = match self.heard.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut ids: Vec<String> = g.drain().collect();
        ids.sort();
        ids
    }
}

/// The roster as Redis keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fleet {
    /// Edges heard by any origin within [`EDGE_TTL_MS`].
    pub edges: u64,
    /// Moves once per change of `edges`.
    pub generation: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_taken_once_and_bounded() {
        let r = EdgeRoster::default();
        r.heard("edge-2");
        r.heard("edge-1");
        r.heard("edge-2");
        assert_eq!(r.take(), vec!["edge-1".to_owned(), "edge-2".to_owned()]);
        assert!(r.take().is_empty());
        for i in 0..(MAX_HEARD + 10) {
            r.heard(&format!("e{i}"));
        }
        assert_eq!(r.take().len(), MAX_HEARD);
    }
}
