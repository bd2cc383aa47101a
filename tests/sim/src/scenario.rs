//! The scenario: who is in the crowd, how they behave, and the bounds of a run.
//!
//! It exists so that a crowd is data, not code: the demo's default crowd is a TOML file in
//! `tests/sim/scenarios/`, the tests write small ones inline, and flags override the few numbers
//! people change most (see the binary). Every field is checked before a single request is sent,
//! so a typo or an impossible bound fails at once with the field named, never halfway through a run.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The scenario shipped as the demo's default (`tests/sim/scenarios/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../scenarios/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("scenario {path} is not valid TOML for a scenario: {source}")]
    Toml { path: String, source: Box<toml::de::Error> },
    #[error("scenario {path} is not valid JSON for a scenario: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("scenario field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid { field: field.into(), reason: reason.into() }
}

/// A whole scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name for the report.
    pub name: String,
    pub sale: SaleSpec,
    pub limits: Limits,
    #[serde(rename = "population")]
    pub populations: Vec<Population>,
}

/// The sale the crowd goes after (created by the simulator with `--create`, else read from the origin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleSpec {
    pub sku: String,
    /// Units on sale.
    pub stock: u64,
    /// The sale starts this long after the simulator created it: the pre-start crowd gathers meanwhile.
    pub starts_in_ms: u64,
    /// The sale window after the start.
    pub open_for_ms: u64,
    /// The sale's proof-of-work challenge, in bits (0 or absent: none). Every simulated shopper
    /// and bot solves it natively when asked (the page does it in Wasm).
    #[serde(default)]
    pub challenge_bits: u32,
    /// The stock released in batches (`[{ after_ms = 0, stock = 100 }, { after_ms = 20000, stock
    /// = 100 }]`: the first at the start, adding up to `stock`); the crowd comes back for each
    /// batch and the report has a funnel per batch. Absent: all of it at the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchSpec>,
}

/// One batch of a sale released in batches, relative to the sale's start.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// When it goes on sale, after the sale's start.
    pub after_ms: u64,
    pub stock: u64,
}

impl Scenario {
    /// How long before a start (the sale's or a batch's) the crowd gathers: the earliest
    /// population's arrival, and 1.5 s for the page loads. A batch's crowd is cut this long before
    /// the next batch, so each report counts one batch.
    pub fn gather_ms(&self) -> u64 {
        self.populations.iter().map(|p| p.arrive_before_start_ms).max().unwrap_or(0) + 1_500
    }
}

impl SaleSpec {
    /// The batches as the sale's config takes them, for a sale starting at `starts_at` (empty
    /// without batches).
    pub fn batches_at(&self, starts_at: u64) -> Vec<seckill_core::sale::Batch> {
        self.batches.iter().map(|b| seckill_core::sale::Batch { at: starts_at + b.after_ms, stock: b.stock }).collect()
    }
}

/// Bounds of a run: it stops by itself at whichever comes first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests the whole crowd may send, all kinds together.
    pub max_requests: u64,
    /// Wall time of the whole run, from the first request.
    pub max_duration_ms: u64,
    /// Requests in flight at once across the crowd (the simulator's own connection budget).
    pub max_in_flight: usize,
    /// One request's timeout (a timed-out request is counted as an error, never as an answer).
    pub request_timeout_ms: u64,
}

/// A log-normal delay: `median` milliseconds, spread `sigma` (of the underlying normal).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Delay {
    pub median_ms: f64,
    pub sigma: f64,
}

/// One population of the crowd: `uids` shoppers who all behave as `behaviour` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// Name in the report (and in the uids: `<run>-<name>-<n>`).
    pub name: String,
    /// Distinct uids (each gets a valid ticket, as a login system would mint).
    pub uids: u32,
    /// When the shoppers turn up: spread evenly over this window, counted back from the start
    /// (`arrive_before_start_ms = 6000` = between 6 s before the start and the start).
    #[serde(default)]
    pub arrive_before_start_ms: u64,
    /// `[population.behaviour]` with `kind = "honest" | "impatient" | "scripted_bot" | "bot_farm"`.
    pub behaviour: Behaviour,
}

/// How a population behaves. Humans read the sale status (the page does) and click after the
/// button enables; bots read it too, to learn the start, and then do what scripts do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Behaviour {
    /// Polls the status until the start, clicks once when the button enables (after a human
    /// reaction delay), retries after `Retry-After` on `throttled` / `busy`, waits for the start
    /// on `not_started`, stops on any final answer, gives up after `give_up_after_ms`.
    Honest {
        poll_every_ms: u64,
        reaction: Delay,
        give_up_after_ms: u64,
        max_attempts: u32,
    },
    /// A human clicking as fast as they can from the moment the button enables (several tabs,
    /// reloads): `clicks_per_s` regardless of answers, for `click_for_ms` or until they see a win.
    Impatient {
        poll_every_ms: u64,
        reaction: Delay,
        clicks_per_s: f64,
        click_for_ms: u64,
    },
    /// A script per uid: `connections` loops each sending the next buy as soon as the last one
    /// is answered (plus `pause_ms`), starting `lead_ms` before the start, for `loop_for_ms` after
    /// it, ignoring `Retry-After`; stops when it wins or sees `sold_out` / `ended`.
    ScriptedBot {
        connections: u32,
        lead_ms: u64,
        pause_ms: u64,
        loop_for_ms: u64,
    },
    /// Many uids driven from one machine over `connections` connections: at `offset_ms` after the
    /// start (by the server's clock, learned from the status) it fires one buy per uid, then retries
    /// each uid exactly when its `Retry-After` allows, for `retry_for_ms`.
    BotFarm {
        connections: u32,
        offset_ms: u64,
        retry_for_ms: u64,
    },
}

impl Behaviour {
    pub fn kind(&self) -> &'static str {
        match self {
            Behaviour::Honest { .. } => "honest",
            Behaviour::Impatient { .. } => "impatient",
            Behaviour::ScriptedBot { .. } => "scripted_bot",
            Behaviour::BotFarm { .. } => "bot_farm",
        }
    }

    /// Bots are scripts; the other two kinds are people.
    pub fn is_bot(&self) -> bool {
        matches!(self, Behaviour::ScriptedBot { .. } | Behaviour::BotFarm { .. })
    }
}

impl Scenario {
    /// The demo's default scenario.
    pub fn default_scenario() -> Scenario {
        // The shipped file is checked by a unit test; a broken one is a build-time mistake.
        Scenario::from_toml(DEFAULT_TOML, "scenarios/default.toml").unwrap_or_else(|e| panic!("the shipped default scenario is invalid: {e}"))
    }

    /// Parse TOML text (`origin` names it in errors) and validate.
    pub fn from_toml(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Toml { path: origin.to_owned(), source: Box::new(e) })?;
        s.validate()?;
        Ok(s)
    }

    /// Parse JSON text and validate.
    pub fn from_json(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = serde_json::from_str(text).map_err(|e| ScenarioError::Json { path: origin.to_owned(), source: e })?;
        s.validate()?;
        Ok(s)
    }

    /// Load a `.toml` or `.json` file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: shown.clone(), source })?;
        if path.extension().is_some_and(|e| e == "json") {
            Scenario::from_json(&text, &shown)
        } else {
            Scenario::from_toml(&text, &shown)
        }
    }

    /// Total uids over all populations.
    pub fn shoppers(&self) -> u64 {
        self.populations.iter().map(|p| u64::from(p.uids)).sum()
    }

    /// Check every field; the first problem is returned, naming the field.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if !seckill_core::is_valid_id(&self.sale.sku) {
            return Err(invalid("sale.sku", "1..64 characters of [A-Za-z0-9_-]"));
        }
        if self.sale.stock == 0 {
            return Err(invalid("sale.stock", "must be at least 1"));
        }
        if self.sale.open_for_ms == 0 {
            return Err(invalid("sale.open_for_ms", "must be at least 1"));
        }
        let (start, end) = (1_000_000, 1_000_000 + self.sale.open_for_ms);
        seckill_core::sale::check_batches(&self.sale.batches_at(start), start, end, self.sale.stock).map_err(|e| invalid("sale.batches", e.to_string()))?;
        // Each batch's crowd runs until the next one's gathers: at least 5 s of sale per batch.
        let gather = self.gather_ms();
        if self.sale.batches.windows(2).any(|w| w[1].after_ms - w[0].after_ms < gather + 5_000) {
            return Err(invalid("sale.batches", format!("batches must be at least {} ms apart (the crowd gathers {gather} ms before each batch)", gather + 5_000)));
        }
        let l = &self.limits;
        if l.max_requests == 0 || l.max_requests > 10_000_000 {
            return Err(invalid("limits.max_requests", "must be 1..=10000000 (the machine is shared: keep runs bounded)"));
        }
        if l.max_duration_ms == 0 || l.max_duration_ms > 600_000 {
            return Err(invalid("limits.max_duration_ms", "must be 1..=600000 (ten minutes at most)"));
        }
        if l.max_in_flight == 0 || l.max_in_flight > 8192 {
            return Err(invalid("limits.max_in_flight", "must be 1..=8192"));
        }
        if l.request_timeout_ms == 0 || l.request_timeout_ms > 60_000 {
            return Err(invalid("limits.request_timeout_ms", "must be 1..=60000"));
        }
        if self.populations.is_empty() {
            return Err(invalid("population", "at least one population is needed"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.populations.iter().enumerate() {
            let f = |name: &str| format!("population[{i}].{name}");
            if p.name.is_empty() || p.name.len() > 24 || !seckill_core::is_valid_id(&p.name) {
                return Err(invalid(f("name"), "1..24 characters of [A-Za-z0-9_-]"));
            }
            if !names.insert(p.name.clone()) {
                return Err(invalid(f("name"), format!("`{}` is used twice", p.name)));
            }
            if p.uids == 0 || p.uids > 1_000_000 {
                return Err(invalid(f("uids"), "must be 1..=1000000"));
            }
            let delay_ok = |d: &Delay| d.median_ms.is_finite() && d.median_ms >= 0.0 && d.sigma.is_finite() && (0.0..=3.0).contains(&d.sigma);
            match &p.behaviour {
                Behaviour::Honest { poll_every_ms, reaction, give_up_after_ms, max_attempts } => {
                    if *poll_every_ms < 100 {
                        return Err(invalid(f("poll_every_ms"), "must be at least 100"));
                    }
                    if !delay_ok(reaction) {
                        return Err(invalid(f("reaction"), "median_ms >= 0 and sigma in 0..=3"));
                    }
                    if *give_up_after_ms == 0 || *max_attempts == 0 {
                        return Err(invalid(f("give_up_after_ms"), "give_up_after_ms and max_attempts must be at least 1"));
                    }
                }
                Behaviour::Impatient { poll_every_ms, reaction, clicks_per_s, click_for_ms } => {
                    if *poll_every_ms < 100 {
                        return Err(invalid(f("poll_every_ms"), "must be at least 100"));
                    }
                    if !delay_ok(reaction) {
                        return Err(invalid(f("reaction"), "median_ms >= 0 and sigma in 0..=3"));
                    }
                    if !clicks_per_s.is_finite() || *clicks_per_s <= 0.0 || *clicks_per_s > 50.0 {
                        return Err(invalid(f("clicks_per_s"), "must be in (0, 50]"));
                    }
                    if *click_for_ms == 0 {
                        return Err(invalid(f("click_for_ms"), "must be at least 1"));
                    }
                }
                Behaviour::ScriptedBot { connections, loop_for_ms, .. } => {
                    if *connections == 0 || *connections > 64 {
                        return Err(invalid(f("connections"), "must be 1..=64 per uid"));
                    }
                    if *loop_for_ms == 0 {
                        return Err(invalid(f("loop_for_ms"), "must be at least 1"));
                    }
                }
                Behaviour::BotFarm { connections, .. } => {
                    if *connections == 0 || *connections > 4096 {
                        return Err(invalid(f("connections"), "must be 1..=4096"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scenario_is_valid_and_matches_the_brief() {
        let s = Scenario::default_scenario();
        assert_eq!(s.sale.stock, 500);
        assert_eq!(s.shoppers(), 5_000);
        assert!(s.populations.iter().any(|p| p.behaviour.is_bot()));
        assert!(s.populations.iter().any(|p| matches!(p.behaviour, Behaviour::Honest { .. })));
        assert!(s.populations.iter().any(|p| matches!(p.behaviour, Behaviour::Impatient { .. })));
        assert!(s.populations.iter().any(|p| matches!(p.behaviour, Behaviour::ScriptedBot { .. })));
        assert!(s.populations.iter().any(|p| matches!(p.behaviour, Behaviour::BotFarm { .. })));
    }

    #[test]
    fn errors_name_the_field() {
        let mut s = Scenario::default_scenario();
        s.limits.max_duration_ms = 0;
        assert!(s.validate().unwrap_err().to_string().contains("limits.max_duration_ms"));
        let mut s = Scenario::default_scenario();
        s.populations[1].name = s.populations[0].name.clone();
        assert!(s.validate().unwrap_err().to_string().contains("population[1].name"));
        let bad = DEFAULT_TOML.replace("max_requests", "max_requestz");
        assert!(Scenario::from_toml(&bad, "x").unwrap_err().to_string().contains("max_requestz"));
    }

    #[test]
    fn the_two_batch_scenario_is_valid_and_bad_batches_name_the_field() {
        let s = Scenario::from_toml(include_str!("../scenarios/batches.toml"), "batches.toml").expect("the shipped batches scenario");
        assert_eq!(s.sale.batches.len(), 2);
        assert_eq!(s.sale.batches_at(1_000)[1], seckill_core::sale::Batch { at: 21_000, stock: 100 });
        let mut bad = s.clone();
        bad.sale.batches[1].stock = 99;
        assert!(bad.validate().unwrap_err().to_string().contains("`sale.batches`: batches: the stock of the batches adds up to 199, but stock says 200"));
        let mut close = s.clone();
        close.sale.batches[1].after_ms = 9_000;
        assert!(close.validate().unwrap_err().to_string().contains("at least 11500 ms apart"), "{:?}", close.validate());
        let mut late = s;
        late.sale.batches[0].after_ms = 1;
        assert!(late.validate().unwrap_err().to_string().contains("first batch must be at starts_at"));
    }

    #[test]
    fn json_works_too() {
        let s = Scenario::default_scenario();
        let json = serde_json::to_string(&s).unwrap();
        let back = Scenario::from_json(&json, "x").unwrap();
        assert_eq!(back.shoppers(), s.shoppers());
    }
}
