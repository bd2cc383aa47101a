//! Orders on the wire: the order id `<sku>.<n>` (written and parsed only here), an order's state,
//! `GET /api/orders/mine`'s answer ([`MyOrders`]) and the pay answer ([`PayAnswer`]).
//!
//! The origin writes these, the page and the tests read them; the edge parses order ids to
//! remember a winner's order without asking the origin again.

use serde::{Deserialize, Serialize};

use crate::is_valid_id;

/// The order id of the `seq`-th order of `sku`: `<sku>.<seq>`.
pub fn order_id(sku: &str, seq: u64) -> String {
    format!("{sku}.{seq}")
}

/// An order id split into its sku and sequence number; `None` if it is not one of ours (the sku
/// must be a valid id, the number canonical decimal, so [`order_id`] rebuilds it exactly).
pub fn parse_order_id(order_id: &str) -> Option<(&str, u64)> {
    let (sku, n) = order_id.rsplit_once('.')?;
    if !is_valid_id(sku) || n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    Some((sku, n.parse().ok()?))
}

/// The sku of an order id, if it is one of ours (see [`parse_order_id`]).
pub fn sku_of_order(order_id: &str) -> Option<&str> {
    parse_order_id(order_id).map(|(sku, _)| sku)
}

/// Where an order stands: waiting for payment, paid, or expired unpaid (its unit back on sale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Pending,
    Paid,
    Expired,
}

impl OrderState {
    /// The wire name (`pending`, `paid`, `expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::Paid => "paid",
            OrderState::Expired => "expired",
        }
    }
}

/// One order as `GET /api/orders/mine` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub order_id: String,
    pub sku: String,
    pub state: OrderState,
    /// Unix ms.
    #[serde(default)]
    pub created_at: u64,
    /// Unix ms by which a pending order must be paid (the origin always says).
    #[serde(default)]
    pub pay_by: Option<u64>,
}

/// `GET /api/orders/mine`: every order of the uid the edge vouched for, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyOrders {
    #[serde(default)]
    pub uid: String,
    pub orders: Vec<OrderView>,
}

/// `POST /api/orders/{order_id}/pay`: `paid` (200) or `expired` (409, with why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayAnswer {
    #[serde(default)]
    pub order_id: String,
    pub state: OrderState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids() {
        assert_eq!(order_id("phone-1", 42), "phone-1.42");
        assert_eq!(parse_order_id("phone-1.42"), Some(("phone-1", 42)));
        assert_eq!(parse_order_id("phone.18446744073709551615"), Some(("phone", u64::MAX)));
        for bad in ["a.b.1", "phone-1.", "phone-1.x", "nodot", "../x.1", "phone.07", "phone.+7", "phone.18446744073709551616", ".1"] {
            assert_eq!(parse_order_id(bad), None, "{bad}");
        }
        assert_eq!(sku_of_order("phone-1.42"), Some("phone-1"));
    }

    #[test]
    fn answers_round_trip() {
        let mine = MyOrders {
            uid: "alice".into(),
            orders: vec![OrderView { order_id: order_id("p", 1), sku: "p".into(), state: OrderState::Pending, created_at: 5, pay_by: Some(9) }],
        };
        let json = serde_json::to_string(&mine).unwrap();
        assert_eq!(json, r#"{"uid":"alice","orders":[{"order_id":"p.1","sku":"p","state":"pending","created_at":5,"pay_by":9}]}"#);
        assert_eq!(serde_json::from_str::<MyOrders>(&json).unwrap(), mine);
        let paid = PayAnswer { order_id: "p.1".into(), state: OrderState::Paid, error: None };
        assert_eq!(serde_json::to_string(&paid).unwrap(), r#"{"order_id":"p.1","state":"paid"}"#);
    }
}
