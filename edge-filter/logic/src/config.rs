//! The filter's configuration: the JSON an operator puts in the Envoy plugin configuration.
//!
//! It exists so that a wrong configuration is refused when Envoy loads the filter (with a message
//! naming the field), never discovered on the request path. Unknown fields are rejected too, so a
//! typo cannot silently fall back to a default.

use serde::Deserialize;

/// Hard ceiling on `buckets`, whatever the operator asks: keeps the shared-data bound sane.
pub const MAX_BUCKETS: u32 = 1 << 20;
/// Hard ceiling on `slots_per_bucket` (one bucket value is read and written whole per request).
pub const MAX_SLOTS_PER_BUCKET: u32 = 64;

fn default_origin_cluster() -> String {
    "origin".into()
}
fn default_origin_authority() -> String {
    "origin".into()
}
fn default_feed_path() -> String {
    "/edge/flags".into()
}
fn default_window_ms() -> u64 {
    seckill_core::throttle::DEFAULT_WINDOW_MS
}
fn default_start_grace_ms() -> u64 {
    250
}
fn default_poll_interval_ms() -> u64 {
    100
}
fn default_poll_timeout_ms() -> u64 {
    1_000
}
fn default_flags_stale_ms() -> u64 {
    3_000
}
fn default_start_lottery_ms() -> u64 {
    0
}

fn default_hold_at_edge() -> bool {
    true
}

fn default_answer_timeout_ms() -> u64 {
    5_000
}

fn default_winner_ttl_ms() -> u64 {
    60_000
}
fn default_buckets() -> u32 {
    65_536
}
fn default_slots_per_bucket() -> u32 {
    16
}
fn default_cas_retries() -> u32 {
    8
}

/// The plugin configuration (JSON, snake_case). See `edge-filter/README.md` for every field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Secrets tickets may be signed with (first = current; more = rotation). Required, non-empty.
    pub ticket_secrets: Vec<String>,
    /// Shared secret sent to the origin in `x-seckill-edge-key`. Required.
    pub edge_key: String,
    /// This edge's name in a fleet, sent with every feed poll (`x-seckill-edge-id`) so the
    /// origins count the edges sharing a sale (each takes its share of the admission budget).
    /// Absent: the edge does not name itself and counts as the only one.
    #[serde(default)]
    pub edge_id: Option<String>,
    /// Envoy cluster the flags feed is fetched from.
    #[serde(default = "default_origin_cluster")]
    pub origin_cluster: String,
    /// `:authority` of the feed request.
    #[serde(default = "default_origin_authority")]
    pub origin_authority: String,
    /// Path of the flags feed on the origin.
    #[serde(default = "default_feed_path")]
    pub feed_path: String,
    /// Throttle window per (uid, sku).
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// Buys this long before `starts_at` go to the origin instead of `not_started` (clock skew).
    #[serde(default = "default_start_grace_ms")]
    pub start_grace_ms: u64,
    /// The start lottery (0 = off): a uid's first buy in the first `start_lottery_ms` of a sale
    /// (or in the start grace) is not passed but told to come back at a moment drawn for that
    /// (uid, sku) from `[starts_at + L, starts_at + 2L)`, so whoever clicked during the first L ms
    /// is served in random order rather than by reaction time. Needs `2 L + start_grace_ms ≤
    /// window_ms`.
    #[serde(default = "default_start_lottery_ms")]
    pub start_lottery_ms: u64,
    /// With the lottery: keep a held first buy waiting at the edge and pass it on at its turn
    /// (true), instead of answering `429` with the time to come back (false).
    #[serde(default = "default_hold_at_edge")]
    pub hold_at_edge: bool,
    /// How often the feed is polled (also the tick period of every worker).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Timeout of one feed request.
    #[serde(default = "default_poll_timeout_ms")]
    pub poll_timeout_ms: u64,
    /// A feed not refreshed for this long is stale: skus absent from it are passed on.
    #[serde(default = "default_flags_stale_ms")]
    pub flags_stale_ms: u64,
    /// How long the origin's answer to a passed buy can take (the Envoy route's timeout for
    /// `/api/`): after this, a (uid, sku) entry with no answer will never get one, and a worker may
    /// refuse its repeats from its own copy without re-reading shared data.
    #[serde(default = "default_answer_timeout_ms")]
    pub answer_timeout_ms: u64,
    /// How long the edge answers `already_won` itself after learning a win (0 = never dedup).
    #[serde(default = "default_winner_ttl_ms")]
    pub winner_ttl_ms: u64,
    /// Number of shared-data keys holding throttle/dedup slots.
    #[serde(default = "default_buckets")]
    pub buckets: u32,
    /// Entries per bucket.
    #[serde(default = "default_slots_per_bucket")]
    pub slots_per_bucket: u32,
    /// Attempts of one compare-and-swap update before giving up (and passing the request on).
    #[serde(default = "default_cas_retries")]
    pub cas_retries: u32,
}

/// Why a configuration was refused. The message always names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("plugin configuration is empty: expected JSON with at least `ticket_secrets` and `edge_key`")]
    Empty,
    #[error("plugin configuration is not valid: {0}")]
    Json(String),
    #[error("plugin configuration field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.to_owned(), reason: reason.into() }
}

/// serde_json's type errors ("invalid type: string, expected u64") do not say which field; find
/// it by deserialising each top-level field alone on top of a minimal valid configuration.
fn culprit(bytes: &[u8]) -> Option<String> {
    let serde_json::Value::Object(given) = serde_json::from_slice(bytes).ok()? else { return None };
    for (key, value) in given {
        let mut probe = serde_json::Map::new();
        probe.insert("ticket_secrets".into(), serde_json::json!(["x"]));
        probe.insert("edge_key".into(), serde_json::json!("x"));
        probe.insert(key.clone(), value);
        if serde_json::from_value::<Config>(serde_json::Value::Object(probe)).is_err() {
            return Some(key);
        }
    }
    None
}

/// Characters allowed in a header value we send (visible ASCII and space, no leading/trailing space).
fn is_header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b)) && s.trim() == s
}

fn check_range(field: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(invalid(field, format!("{v} is out of range {lo}..={hi}")));
    }
    Ok(())
}

impl Config {
    /// Parse and validate the plugin configuration bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ConfigError::Empty);
        }
        let cfg: Config = serde_json::from_slice(bytes).map_err(|e| match culprit(bytes) {
            Some(field) => ConfigError::Invalid { field, reason: e.to_string() },
            None => ConfigError::Json(e.to_string()),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ticket_secrets.is_empty() {
            return Err(invalid("ticket_secrets", "at least one secret is required"));
        }
        if self.ticket_secrets.iter().any(|s| s.is_empty()) {
            return Err(invalid("ticket_secrets", "secrets must not be empty strings"));
        }
        if !is_header_safe(&self.edge_key) {
            return Err(invalid("edge_key", "required: a non-empty string of visible ASCII characters"));
        }
        if self.edge_id.as_deref().is_some_and(|id| !seckill_core::is_valid_id(id)) {
            return Err(invalid("edge_id", "1..64 characters of [A-Za-z0-9_-]"));
        }
        if self.origin_cluster.trim().is_empty() {
            return Err(invalid("origin_cluster", "must name an Envoy cluster"));
        }
        if !is_header_safe(&self.origin_authority) {
            return Err(invalid("origin_authority", "must be a non-empty host[:port]"));
        }
        if !self.feed_path.starts_with('/') || !is_header_safe(&self.feed_path) {
            return Err(invalid("feed_path", "must be an absolute path starting with `/`"));
        }
        check_range("window_ms", self.window_ms, 0, 3_600_000)?;
        check_range("start_grace_ms", self.start_grace_ms, 0, 60_000)?;
        check_range("poll_interval_ms", self.poll_interval_ms, 10, 60_000)?;
        check_range("poll_timeout_ms", self.poll_timeout_ms, 10, 60_000)?;
        check_range("flags_stale_ms", self.flags_stale_ms, self.poll_interval_ms, 86_400_000)
            .map_err(|_| invalid("flags_stale_ms", format!("must be at least poll_interval_ms ({}) and at most 86400000", self.poll_interval_ms)))?;
        check_range("answer_timeout_ms", self.answer_timeout_ms, 1, 600_000)?;
        check_range("start_lottery_ms", self.start_lottery_ms, 0, 60_000)?;
        if self.start_lottery_ms > 0 && 2 * self.start_lottery_ms + self.start_grace_ms > self.window_ms {
            return Err(invalid(
                "start_lottery_ms",
                format!("2 × start_lottery_ms + start_grace_ms must not exceed window_ms ({}): a held uid's turn must fall inside its window", self.window_ms),
            ));
        }
        check_range("winner_ttl_ms", self.winner_ttl_ms, 0, 86_400_000)?;
        check_range("buckets", u64::from(self.buckets), 1, u64::from(MAX_BUCKETS))?;
        check_range("slots_per_bucket", u64::from(self.slots_per_bucket), 1, u64::from(MAX_SLOTS_PER_BUCKET))?;
        check_range("cas_retries", u64::from(self.cas_retries), 1, 100)?;
        Ok(())
    }

    /// How long the feed poller's lease lasts without renewal (a dead poller is replaced after this).
    pub fn lease_ms(&self) -> u64 {
        (self.poll_interval_ms * 5).max(500)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::from_json(s.as_bytes())
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(r#"{"ticket_secrets":["s"],"edge_key":"k"}"#).unwrap();
        assert_eq!(c.origin_cluster, "origin");
        assert_eq!(c.origin_authority, "origin");
        assert_eq!(c.feed_path, "/edge/flags");
        assert_eq!(c.window_ms, 5_000);
        assert_eq!(c.start_grace_ms, 250);
        assert_eq!(c.poll_interval_ms, 100);
        assert_eq!(c.buckets, 65_536);
        assert_eq!(c.slots_per_bucket, 16);
        assert_eq!(c.cas_retries, 8);
        assert_eq!(c.answer_timeout_ms, 5_000);
        assert_eq!(c.start_lottery_ms, 0);
        assert!(c.hold_at_edge);
        assert_eq!(c.lease_ms(), 500);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"edge_key":"k"}"#, "ticket_secrets"),
            (r#"{"ticket_secrets":[],"edge_key":"k"}"#, "ticket_secrets"),
            (r#"{"ticket_secrets":[""],"edge_key":"k"}"#, "ticket_secrets"),
            (r#"{"ticket_secrets":["s"]}"#, "edge_key"),
            (r#"{"ticket_secrets":["s"],"edge_key":""}"#, "edge_key"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k\n"}"#, "edge_key"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","buckets":0}"#, "buckets"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","slots_per_bucket":65}"#, "slots_per_bucket"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","cas_retries":0}"#, "cas_retries"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","answer_timeout_ms":0}"#, "answer_timeout_ms"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","start_lottery_ms":2500}"#, "start_lottery_ms"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","poll_interval_ms":1}"#, "poll_interval_ms"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","flags_stale_ms":50}"#, "flags_stale_ms"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","feed_path":"edge"}"#, "feed_path"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","windw_ms":5}"#, "windw_ms"),
            (r#"{"ticket_secrets":["s"],"edge_key":"k","window_ms":"5"}"#, "window_ms"),
        ];
        for (json, field) in cases {
            let e = parse(json).unwrap_err().to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
    }

    #[test]
    fn empty_and_garbage() {
        assert_eq!(parse(""), Err(ConfigError::Empty));
        assert_eq!(parse("  \n"), Err(ConfigError::Empty));
        assert!(matches!(parse("{"), Err(ConfigError::Json(_))));
        assert!(matches!(parse("[]"), Err(ConfigError::Json(_))));
    }
}
