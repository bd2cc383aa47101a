//! The demo login on the wire (`POST /api/session`, on only with the origin's demo login): the
//! request ([`SessionRequest`]) and the answer ([`SessionAnswer`]), a ticket for the uid.

use serde::{Deserialize, Serialize};

/// `POST /api/session`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub uid: String,
}

/// `POST /api/session`'s answer: a ticket (see [`crate::ticket`]) for `uid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAnswer {
    pub uid: String,
    pub ticket: String,
    /// Unix ms.
    pub expires_at: u64,
}
