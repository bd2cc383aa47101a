//! Names of the headers that carry decisions between the edge and the origin.
//!
//! Every request header starting with [`PREFIX`] that a *client* sends is stripped or rejected at
//! the edge; only the edge itself adds [`EDGE_KEY`] and [`UID`], and the origin believes [`UID`]
//! only next to a correct [`EDGE_KEY`].

/// Prefix of every header this system owns.
pub const PREFIX: &str = "x-seckill-";
/// Who decided a buy answer: `edge` or `origin` (response header, contract).
pub const BY: &str = "x-seckill-by";
/// The uid the edge verified from the ticket (request header, edge → origin).
pub const UID: &str = "x-seckill-uid";
/// The shared secret proving a request came through the edge (request header, edge → origin).
pub const EDGE_KEY: &str = "x-seckill-edge-key";
/// Sent by an edge with its flags-feed polls: its name in the fleet (`edge_id` in the filter's
/// config), so the origins can count how many edges share a sale's stock.
pub const EDGE_ID: &str = "x-seckill-edge-id";
/// The outcome of a buy, so the edge can learn from an answer without reading the body (response header).
pub const OUTCOME: &str = "x-seckill-outcome";
/// The order id of a `won` / `already_won` answer (response header).
pub const ORDER_ID: &str = "x-seckill-order-id";

/// True when a header name (any case) belongs to this system and must not come from a client.
pub fn is_reserved(name: &str) -> bool {
    // `get`, not indexing: a non-ASCII name must not split a character.
    name.get(..PREFIX.len()).is_some_and(|head| head.eq_ignore_ascii_case(PREFIX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reserved_is_case_insensitive() {
        assert!(super::is_reserved("X-Seckill-Uid"));
        assert!(super::is_reserved("x-seckill-anything"));
        assert!(!super::is_reserved("x-seckil"));
        assert!(!super::is_reserved("authorization"));
        assert!(!super::is_reserved("x-seckilé-uid"));
        assert!(!super::is_reserved("ééééééééé"));
    }
}
