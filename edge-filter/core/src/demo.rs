//! The demo stack's secrets, the one place they are written. Every part that runs the demo (the
//! origin's `--dev`, `cargo xtask up`, the tests, the benchmarks, the simulator) takes them from
//! here; production reads its own from the environment and never these.

/// The admin token's text, for [`ADMIN_TOKEN`] and [`ADMIN_AUTHORIZATION`] alike.
macro_rules! admin_token {
    () => {
        "dev-admin-token"
    };
}

/// The key tickets are signed with (HMAC-SHA256, see [`crate::ticket`]).
pub const TICKET_SECRET: &str = "dev-ticket-secret";
/// The SRE's admin token (`Authorization: Bearer ...` on `/admin`, `/metrics`, ...).
pub const ADMIN_TOKEN: &str = admin_token!();
/// The `Authorization` header value carrying [`ADMIN_TOKEN`].
pub const ADMIN_AUTHORIZATION: &str = concat!("Bearer ", admin_token!());
/// The secret the edge sends the origin in `x-seckill-edge-key`.
pub const EDGE_KEY: &str = "dev-edge-key";

#[cfg(test)]
mod tests {
    #[test]
    fn the_authorization_carries_the_token() {
        assert_eq!(super::ADMIN_AUTHORIZATION, format!("Bearer {}", super::ADMIN_TOKEN));
    }
}
