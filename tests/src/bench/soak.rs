//! `seckill-bench soak [minutes]` (`cargo xtask soak`): the whole stack under a steady crowd for
//! N minutes, with the resident memory of Envoy, the origin and Redis sampled every 10 s.
//!
//! Why it exists: the benchmarks run for seconds, and a leak of a few bytes per request (a cache
//! without a bound, a buffer kept per connection, a map keyed by something that never repeats)
//! only shows over many minutes. The crowd here is built so that its *data* stops growing once it
//! is warm — a fixed pool of uids, a sale that sold out during priming (answered `sold_out` at the
//! edge), a sale every uid of the pool already won once (`already_won`, from the edge's dedup or
//! from the origin and Redis), `GET /api/orders/mine` (origin and Redis), the sale status, the
//! page, forged tickets — so after a warm-up any upward trend of a process's memory is a leak or
//! fragmentation, not data. The trend is the least-squares slope of the samples after the warm-up
//! (MiB per minute); the run fails when a slope passes [`SLOPE_LIMIT_MIB_PER_MIN`], when answers
//! other than the expected ones pass [`MAX_UNEXPECTED_SHARE`], or when the orders in Redis changed
//! after priming (then the data was not bounded and the run proves nothing).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hyper::Method;
use seckill_origin::client::HttpClient;

use crate::bench::envoy::{envoy_bin, filter_wasm, rss_bytes, Memory, TICKET_SECRET};
use crate::stack_rig::{StackOptions, StackRig};

/// `cargo xtask soak` without `--minutes`.
pub const DEFAULT_MINUTES: u64 = 10;
/// The longest soak accepted (a day).
pub const MAX_MINUTES: u64 = 24 * 60;
/// Memory is read this often.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The first part of the run left out of the trend: allocators, pools and caches settle.
pub const WARMUP_SHARE: f64 = 0.2;
/// The crowd: this many uids, each with one ticket for the whole run.
pub const POOL_UIDS: u64 = 5_000;
/// Requests per second (open loop: sent on schedule, at most [`CONNECTIONS`] in flight).
pub const RATE_PER_S: u64 = 400;
/// Requests in flight at most (the client keeps that many keep-alive connections).
pub const CONNECTIONS: usize = 4;
/// Each request's bound (connect + answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Stock of the sale that sells out during priming.
pub const SOLD_OUT_STOCK: u64 = 1_000;
/// Pass criterion: every process's memory trend after the warm-up at most this many MiB per
/// minute. At [`RATE_PER_S`] (24,000 requests a minute) that is about 4.4 bytes per request, and
/// 6 MiB an hour: a leak anywhere on the request path is caught, the noise of a few pages moving in
/// and out of a process over 8 minutes is not.
pub const SLOPE_LIMIT_MIB_PER_MIN: f64 = 0.1;
/// Pass criterion: answers other than the expected status (or no answer) at most this share.
pub const MAX_UNEXPECTED_SHARE: f64 = 0.001;

/// The sale sold out during priming.
pub const SKU_SOLD_OUT: &str = "soak-sold-out";
/// The sale every uid of the pool won once during priming (stock far above the pool).
pub const SKU_WON_ONCE: &str = "soak-won-once";

const ADMIN: &str = seckill_core::demo::ADMIN_AUTHORIZATION;

/// How long and how hard.
#[derive(Debug, Clone)]
pub struct SoakSettings {
    pub minutes: u64,
    pub rate_per_s: u64,
    pub connections: usize,
    pub uids: u64,
    pub sample_every: Duration,
    /// Left out of the trend.
    pub warmup: Duration,
}

impl SoakSettings {
    /// The defaults for a run of `minutes` (2 ..= [`MAX_MINUTES`]); the warm-up is
    /// [`WARMUP_SHARE`] of it.
    pub fn for_minutes(minutes: u64) -> anyhow::Result<SoakSettings> {
        anyhow::ensure!((2..=MAX_MINUTES).contains(&minutes), "soak: minutes must be 2..={MAX_MINUTES} (a trend needs samples after the warm-up), got {minutes}");
        let duration = Duration::from_secs(minutes * 60);
        Ok(SoakSettings {
            minutes,
            rate_per_s: RATE_PER_S,
            connections: CONNECTIONS,
            uids: POOL_UIDS,
            sample_every: SAMPLE_EVERY,
            warmup: duration.mul_f64(WARMUP_SHARE),
        })
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.minutes * 60)
    }
}

/// What one request of the crowd is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A buy on the sold-out sale: `410 sold_out` from the edge's flags.
    BuySoldOut,
    /// A buy on the sale this uid already won: `200 already_won` (edge dedup, or the origin).
    BuyWonAgain,
    /// `GET /api/orders/mine`: through the edge to the origin and Redis.
    OrdersMine,
    /// `GET /api/sales/{sku}`: answered by the edge from its flags.
    SaleStatus,
    /// A buy with a forged ticket: `401` at the edge.
    ForgedTicket,
    /// `GET /`: the sale page, served by Envoy.
    Page,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::BuySoldOut, Kind::BuyWonAgain, Kind::OrdersMine, Kind::SaleStatus, Kind::ForgedTicket, Kind::Page];

    pub fn key(self) -> &'static str {
        match self {
            Kind::BuySoldOut => "buy_sold_out_sale",
            Kind::BuyWonAgain => "buy_won_sale_again",
            Kind::OrdersMine => "orders_mine",
            Kind::SaleStatus => "sale_status",
            Kind::ForgedTicket => "forged_ticket",
            Kind::Page => "page",
        }
    }

    /// The only status the steady crowd should get.
    pub fn expected_status(self) -> u16 {
        match self {
            Kind::BuySoldOut => 410,
            Kind::ForgedTicket => 401,
            Kind::BuyWonAgain | Kind::OrdersMine | Kind::SaleStatus | Kind::Page => 200,
        }
    }
}

/// The crowd's mix, one cycle of 20 requests.
pub const MIX: [Kind; 20] = [
    Kind::BuySoldOut,
    Kind::BuyWonAgain,
    Kind::OrdersMine,
    Kind::BuyWonAgain,
    Kind::SaleStatus,
    Kind::BuySoldOut,
    Kind::OrdersMine,
    Kind::BuyWonAgain,
    Kind::ForgedTicket,
    Kind::OrdersMine,
    Kind::BuySoldOut,
    Kind::BuyWonAgain,
    Kind::Page,
    Kind::OrdersMine,
    Kind::BuyWonAgain,
    Kind::SaleStatus,
    Kind::BuySoldOut,
    Kind::BuyWonAgain,
    Kind::ForgedTicket,
    Kind::OrdersMine,
];

/// Request `n` of the crowd: uid `n % uids` (so one uid's requests are `uids` requests apart,
/// seconds at the soak's rate: never inside the edge's throttle window), and a kind that moves
/// one step through [`MIX`] each time the pool comes round (so every uid makes every kind).
pub fn request_of(n: u64, uids: u64) -> (u64, Kind) {
    let uids = uids.max(1);
    let uid = n % uids;
    let round = n / uids;
    let k = ((n % MIX.len() as u64) + round) % MIX.len() as u64;
    (uid, MIX[k as usize])
}

/// The least-squares slope of `y` over `x`; `None` with fewer than two distinct `x`.
pub fn least_squares_slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx <= f64::EPSILON * n {
        return None;
    }
    Some(sxy / sxx)
}

/// One process's memory over the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Least-squares slope of the samples after the warm-up.
    pub slope_mib_per_min: f64,
    /// Last sample minus the first sample after the warm-up.
    pub growth_after_warmup_mib: f64,
    /// Last sample minus the first sample of the run.
    pub growth_total_mib: f64,
    pub first_mib: f64,
    pub last_mib: f64,
    /// Samples the slope is taken over.
    pub samples: usize,
}

const MIB: f64 = 1024.0 * 1024.0;

/// The trend of `(seconds since the start, bytes)` samples, leaving out those before `warmup_s`;
/// `None` when fewer than two samples are left.
pub fn trend(samples: &[(f64, u64)], warmup_s: f64) -> Option<Trend> {
    let kept: Vec<(f64, f64)> = samples.iter().filter(|s| s.0 >= warmup_s).map(|s| (s.0 / 60.0, s.1 as f64 / MIB)).collect();
    let slope = least_squares_slope(&kept)?;
    let (first_all, last) = (samples.first()?.1 as f64 / MIB, samples.last()?.1 as f64 / MIB);
    let first_kept = kept.first()?.1;
    Some(Trend { slope_mib_per_min: slope, growth_after_warmup_mib: last - first_kept, growth_total_mib: last - first_all, first_mib: first_all, last_mib: last, samples: kept.len() })
}

/// The memory of the stack at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Seconds since the steady crowd started.
    pub at_s: u64,
    pub envoy_rss: u64,
    /// Envoy's tcmalloc `allocated` (admin `/memory`).
    pub envoy_allocated: u64,
    pub origin_rss: u64,
    pub redis_rss: u64,
}

/// A memory series of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    EnvoyRss,
    EnvoyAllocated,
    OriginRss,
    RedisRss,
}

impl Series {
    pub const ALL: [Series; 4] = [Series::EnvoyRss, Series::EnvoyAllocated, Series::OriginRss, Series::RedisRss];

    pub fn key(self) -> &'static str {
        match self {
            Series::EnvoyRss => "envoy_rss",
            Series::EnvoyAllocated => "envoy_allocated",
            Series::OriginRss => "origin_rss",
            Series::RedisRss => "redis_rss",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Series::EnvoyRss => "Envoy VmRSS",
            Series::EnvoyAllocated => "Envoy allocated (admin /memory)",
            Series::OriginRss => "origin VmRSS",
            Series::RedisRss => "Redis VmRSS",
        }
    }

    pub fn of(self, s: &Sample) -> u64 {
        match self {
            Series::EnvoyRss => s.envoy_rss,
            Series::EnvoyAllocated => s.envoy_allocated,
            Series::OriginRss => s.origin_rss,
            Series::RedisRss => s.redis_rss,
        }
    }
}

/// Answers of the crowd: (kind, status, `x-seckill-by`) → count; requests with no answer by kind.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub answers: BTreeMap<(Kind, u16, String), u64>,
    pub failures: BTreeMap<Kind, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (k, n) in other.answers {
            *self.answers.entry(k).or_default() += n;
        }
        for (k, n) in other.failures {
            *self.failures.entry(k).or_default() += n;
        }
    }

    pub fn sent(&self) -> u64 {
        self.answers.values().sum::<u64>() + self.failures.values().sum::<u64>()
    }

    /// Answers with another status than the kind's expected one, plus requests with no answer.
    pub fn unexpected(&self) -> u64 {
        let wrong: u64 = self.answers.iter().filter(|((k, s, _), _)| *s != k.expected_status()).map(|(_, n)| n).sum();
        wrong + self.failures.values().sum::<u64>()
    }

    /// Count by status over all kinds.
    pub fn by_status(&self) -> BTreeMap<u16, u64> {
        let mut m = BTreeMap::new();
        for ((_, s, _), n) in &self.answers {
            *m.entry(*s).or_default() += n;
        }
        m
    }
}

/// What a soak measured.
#[derive(Debug, Clone)]
pub struct SoakReport {
    pub samples: Vec<Sample>,
    pub tally: Tally,
    pub seconds: f64,
    /// Orders in Redis (both sales) after priming and at the end.
    pub orders_after_priming: u64,
    pub orders_at_end: u64,
    /// Redis `DBSIZE` after priming and at the end.
    pub keys_after_priming: u64,
    pub keys_at_end: u64,
    pub warmup_s: f64,
}

impl SoakReport {
    pub fn trend(&self, series: Series) -> Option<Trend> {
        let points: Vec<(f64, u64)> = self.samples.iter().map(|s| (s.at_s as f64, series.of(s))).collect();
        trend(&points, self.warmup_s)
    }

    /// Why the run fails; empty when it passes.
    pub fn failures(&self) -> Vec<String> {
        let trends: Vec<(Series, Option<Trend>)> = Series::ALL.iter().map(|s| (*s, self.trend(*s))).collect();
        let dead = Series::ALL.iter().filter(|s| **s != Series::EnvoyAllocated).any(|s| self.samples.iter().any(|x| s.of(x) == 0));
        judge(&trends, dead, self.tally.unexpected(), self.tally.sent(), (self.orders_after_priming, self.orders_at_end))
    }

    /// `Err` listing the failures.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let f = self.failures();
        if f.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("soak failed: {}", f.join("; ")))
        }
    }

    pub fn to_json(&self, settings: &SoakSettings) -> serde_json::Value {
        let trends: serde_json::Map<String, serde_json::Value> = Series::ALL
            .iter()
            .map(|s| {
                let t = self.trend(*s);
                let v = match t {
                    Some(t) => serde_json::json!({
                        "slope_mib_per_min": t.slope_mib_per_min, "growth_after_warmup_mib": t.growth_after_warmup_mib,
                        "growth_total_mib": t.growth_total_mib, "first_mib": t.first_mib, "last_mib": t.last_mib, "samples_in_slope": t.samples,
                        "passes": t.slope_mib_per_min <= SLOPE_LIMIT_MIB_PER_MIN,
                    }),
                    None => serde_json::Value::Null,
                };
                (s.key().to_owned(), v)
            })
            .collect();
        let answers: Vec<serde_json::Value> = self
            .tally
            .answers
            .iter()
            .map(|((k, s, by), n)| serde_json::json!({"kind": k.key(), "status": s, "by": by, "count": n, "expected": *s == k.expected_status()}))
            .collect();
        let failures: serde_json::Map<String, serde_json::Value> = self.tally.failures.iter().map(|(k, n)| (k.key().to_owned(), serde_json::json!(n))).collect();
        let by_status: serde_json::Map<String, serde_json::Value> = self.tally.by_status().iter().map(|(s, n)| (s.to_string(), serde_json::json!(n))).collect();
        serde_json::json!({
            "minutes": settings.minutes, "rate_per_s": settings.rate_per_s, "connections": settings.connections, "uids": settings.uids,
            "sample_every_s": settings.sample_every.as_secs(), "warmup_s": self.warmup_s, "seconds": self.seconds,
            "criterion": {"slope_limit_mib_per_min": SLOPE_LIMIT_MIB_PER_MIN, "max_unexpected_share": MAX_UNEXPECTED_SHARE, "orders_unchanged_after_priming": true},
            "passed": self.failures().is_empty(), "failures": self.failures(),
            "trends": trends,
            "requests": {"sent": self.tally.sent(), "unexpected": self.tally.unexpected(), "by_status": by_status, "answers": answers, "no_answer": failures},
            "data": {"orders_after_priming": self.orders_after_priming, "orders_at_end": self.orders_at_end, "redis_keys_after_priming": self.keys_after_priming, "redis_keys_at_end": self.keys_at_end},
            "samples": self.samples.iter().map(|s| serde_json::json!({"at_s": s.at_s, "envoy_rss": s.envoy_rss, "envoy_allocated": s.envoy_allocated, "origin_rss": s.origin_rss, "redis_rss": s.redis_rss})).collect::<Vec<_>>(),
        })
    }
}

/// The pass criterion on its inputs: every trend known and at most [`SLOPE_LIMIT_MIB_PER_MIN`], no
/// process gone, unexpected answers at most [`MAX_UNEXPECTED_SHARE`] of those sent, orders as
/// after priming. Returns the reasons for failing.
pub fn judge(trends: &[(Series, Option<Trend>)], a_process_died: bool, unexpected: u64, sent: u64, orders: (u64, u64)) -> Vec<String> {
    let mut out = Vec::new();
    for (series, t) in trends {
        match t {
            None => out.push(format!("{}: not enough samples after the warm-up for a trend", series.label())),
            Some(t) if t.slope_mib_per_min > SLOPE_LIMIT_MIB_PER_MIN => {
                out.push(format!("{} grows {:.3} MiB/min after the warm-up (limit {SLOPE_LIMIT_MIB_PER_MIN})", series.label(), t.slope_mib_per_min))
            }
            Some(_) => {}
        }
    }
    if a_process_died {
        out.push("a process of the stack was gone at some sample (VmRSS unreadable)".into());
    }
    if sent == 0 {
        out.push("no request was sent".into());
    } else if unexpected as f64 > MAX_UNEXPECTED_SHARE * sent as f64 {
        out.push(format!("{unexpected} of {sent} requests got another answer than expected (limit {:.1}%)", MAX_UNEXPECTED_SHARE * 100.0));
    }
    if orders.0 != orders.1 {
        out.push(format!("orders in Redis went from {} after priming to {}: the crowd's data was not bounded", orders.0, orders.1));
    }
    out
}

/// The crowd's tickets: one good and one forged (signed with another secret) per uid, valid for
/// the whole run.
struct Tickets {
    good: Vec<String>,
    forged: Vec<String>,
}

impl Tickets {
    fn mint(uids: u64, valid_for: Duration) -> anyhow::Result<Tickets> {
        let exp = crate::now_ms() / 1000 + valid_for.as_secs();
        let mut good = Vec::with_capacity(uids as usize);
        let mut forged = Vec::with_capacity(uids as usize);
        for i in 0..uids {
            let uid = uid_name(i);
            good.push(seckill_core::ticket::mint(TICKET_SECRET.as_bytes(), &uid, exp).map_err(|e| anyhow::anyhow!("minting a ticket for {uid}: {e:?}"))?);
            forged.push(seckill_core::ticket::mint(b"not-the-edge-secret", &uid, exp).map_err(|e| anyhow::anyhow!("minting a forged ticket for {uid}: {e:?}"))?);
        }
        Ok(Tickets { good, forged })
    }
}

fn uid_name(i: u64) -> String {
    format!("soak{i}")
}

/// Send one request of `kind` for uid `i` through the edge: (status, `x-seckill-by`).
async fn send(http: &HttpClient, edge: SocketAddr, tickets: &Tickets, kind: Kind, i: u64) -> Option<(u16, String)> {
    let good = tickets.good.get(i as usize)?;
    let forged = tickets.forged.get(i as usize)?;
    let bearer = |t: &str| format!("Bearer {t}");
    let (method, path, auth) = match kind {
        Kind::BuySoldOut => (Method::POST, format!("/api/sales/{SKU_SOLD_OUT}/orders"), Some(bearer(good))),
        Kind::BuyWonAgain => (Method::POST, format!("/api/sales/{SKU_WON_ONCE}/orders"), Some(bearer(good))),
        Kind::OrdersMine => (Method::GET, "/api/orders/mine".to_owned(), Some(bearer(good))),
        Kind::SaleStatus => (Method::GET, format!("/api/sales/{SKU_WON_ONCE}"), None),
        Kind::ForgedTicket => (Method::POST, format!("/api/sales/{SKU_WON_ONCE}/orders"), Some(bearer(forged))),
        Kind::Page => (Method::GET, "/".to_owned(), None),
    };
    let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
    let a = http.send(method, &format!("http://{edge}{path}"), &headers, bytes::Bytes::new()).await.ok()?;
    let by = a.header("x-seckill-by").unwrap_or("-").to_owned();
    Some((a.status.as_u16(), by))
}

/// Buys of `sku` for uids `from..to` through the edge, `concurrency` at a time: count by status.
async fn buy_each(http: &HttpClient, edge: SocketAddr, tickets: &Tickets, sku: &str, uids: std::ops::Range<u64>, concurrency: usize) -> BTreeMap<u16, u64> {
    let kind = if sku == SKU_SOLD_OUT { Kind::BuySoldOut } else { Kind::BuyWonAgain };
    let statuses: Vec<u16> = futures::stream::iter(uids)
        .map(|i| async move { send(http, edge, tickets, kind, i).await.map(|(s, _)| s).unwrap_or(0) })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut m = BTreeMap::new();
    for s in statuses {
        *m.entry(s).or_default() += 1;
    }
    m
}

async fn create_sale(rig: &StackRig, sku: &str, stock: u64, settings: &SoakSettings) -> anyhow::Result<()> {
    let now = crate::now_ms();
    let run_ms = settings.duration().as_millis() as u64;
    // Open well past the run, and orders that never expire during it (an expired order would
    // put its unit back on sale and let its uid win again: data the crowd was not meant to make).
    let pay_within_s = (settings.duration().as_secs() + 3_600).min(7 * 24 * 3_600);
    let body = serde_json::json!({"stock": stock, "starts_at": now - 1_000, "ends_at": now + run_ms + 3_600_000, "per_user_limit": 1, "pay_within_s": pay_within_s});
    let a = rig.http.send(Method::PUT, &format!("{}/admin/sales/{sku}", rig.origin_url()), &[("authorization", ADMIN)], serde_json::to_vec(&body)?).await?;
    anyhow::ensure!(a.status == 200, "create sale {sku}: {} {}", a.status, a.text());
    Ok(())
}

/// Poll the edge until it answers `state` for `sku` (the flags reached it), up to `within`.
async fn wait_for_state(http: &HttpClient, edge: SocketAddr, sku: &str, state: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(a) = http.get(&format!("http://{edge}/api/sales/{sku}"), &[]).await {
            if a.status == 200 && a.json_value()["state"] == state {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn redis_counts(rig: &StackRig) -> anyhow::Result<(u64, u64)> {
    let orders = rig.orders_in_redis(SKU_SOLD_OUT)?.len() + rig.orders_in_redis(SKU_WON_ONCE)?.len();
    let mut c = redis::Client::open(rig.redis.url())?.get_connection_with_timeout(Duration::from_secs(5))?;
    let keys: u64 = redis::cmd("DBSIZE").query(&mut c)?;
    Ok((orders as u64, keys))
}

struct Pids {
    envoy: u32,
    origin: u32,
    redis: u32,
    admin: SocketAddr,
}

fn sample(p: &Pids, at_s: u64) -> Sample {
    let envoy = Memory::of(Some(p.envoy), p.admin);
    Sample { at_s, envoy_rss: envoy.rss, envoy_allocated: envoy.allocated, origin_rss: rss_bytes(p.origin), redis_rss: rss_bytes(p.redis) }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// Start the stack, prime it, run the steady crowd for `settings.minutes` while sampling memory,
/// and print the table. The verdict is [`SoakReport::verdict`].
pub async fn run(settings: &SoakSettings) -> anyhow::Result<SoakReport> {
    envoy_bin().map_err(anyhow::Error::msg)?;
    filter_wasm().map_err(anyhow::Error::msg)?;
    let rig = StackRig::start("soak", StackOptions::default()).await?;
    let pids = Pids {
        envoy: rig.envoy.as_ref().and_then(|e| e.pid()).ok_or_else(|| anyhow::anyhow!("Envoy has no pid"))?,
        origin: rig.origin.as_ref().and_then(|o| o.pid()).ok_or_else(|| anyhow::anyhow!("the origin has no pid"))?,
        redis: rig.redis.pid().ok_or_else(|| anyhow::anyhow!("Redis has no pid"))?,
        admin: rig.envoy.as_ref().map(|e| e.admin).ok_or_else(|| anyhow::anyhow!("Envoy has no admin address"))?,
    };
    let edge = rig.edge_addr();
    println!(
        "soak: Redis (pid {}), origin (pid {}), Envoy + filter, 2 workers (pid {}), edge {edge}; {} min at {} req/s, {} in flight at most, {} uids; memory every {} s, trend after the first {} s",
        pids.redis,
        pids.origin,
        pids.envoy,
        settings.minutes,
        settings.rate_per_s,
        settings.connections,
        settings.uids,
        settings.sample_every.as_secs(),
        settings.warmup.as_secs()
    );
    let http = HttpClient::new(REQUEST_TIMEOUT);
    let tickets = Arc::new(Tickets::mint(settings.uids, settings.duration() + Duration::from_secs(3_600))?);

    // Priming: the first sale sells out, every uid of the pool wins the second once.
    create_sale(&rig, SKU_SOLD_OUT, SOLD_OUT_STOCK, settings).await?;
    create_sale(&rig, SKU_WON_ONCE, settings.uids * 100, settings).await?;
    anyhow::ensure!(wait_for_state(&http, edge, SKU_WON_ONCE, "on_sale", Duration::from_secs(20)).await, "the edge never learnt the sales from the flags feed");
    let sold = buy_each(&http, edge, &tickets, SKU_SOLD_OUT, 0..SOLD_OUT_STOCK.min(settings.uids), settings.connections).await;
    anyhow::ensure!(sold.get(&201).copied() == Some(SOLD_OUT_STOCK.min(settings.uids)), "priming {SKU_SOLD_OUT}: {sold:?}");
    if SOLD_OUT_STOCK < settings.uids {
        // The stock is gone; make sure the edge has heard so before the crowd starts.
        anyhow::ensure!(wait_for_state(&http, edge, SKU_SOLD_OUT, "sold_out", Duration::from_secs(20)).await, "the edge never learnt that {SKU_SOLD_OUT} sold out");
    }
    let won = buy_each(&http, edge, &tickets, SKU_WON_ONCE, 0..settings.uids, settings.connections).await;
    anyhow::ensure!(won.get(&201).copied() == Some(settings.uids), "priming {SKU_WON_ONCE}: {won:?}");
    let (orders_after_priming, keys_after_priming) = tokio::task::block_in_place(|| redis_counts(&rig))?;
    println!("  primed: {SKU_SOLD_OUT} sold out ({SOLD_OUT_STOCK} orders), {SKU_WON_ONCE} won once by each of {} uids; {orders_after_priming} orders, {keys_after_priming} Redis keys", settings.uids);

    // The steady crowd: request n is due at start + n / rate; at most `connections` in flight.
    let started = Instant::now();
    let start = tokio::time::Instant::now();
    let end = start + settings.duration();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..settings.connections {
        let (http, tickets, next) = (http.clone(), tickets.clone(), next.clone());
        let (rate, uids) = (settings.rate_per_s.max(1) as f64, settings.uids);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due).await;
                let (uid, kind) = request_of(n, uids);
                match send(&http, edge, &tickets, kind, uid).await {
                    Some((status, by)) => *tally.answers.entry((kind, status, by)).or_default() += 1,
                    None => *tally.failures.entry(kind).or_default() += 1,
                }
            }
            tally
        }));
    }

    // Memory every `sample_every`, the first at the start and the last at the end.
    let mut samples = Vec::new();
    let pids = Arc::new(pids);
    let mut at = Duration::ZERO;
    loop {
        tokio::time::sleep_until(start + at).await;
        let p = pids.clone();
        let at_s = at.as_secs();
        let s = tokio::task::spawn_blocking(move || sample(&p, at_s)).await?;
        if at_s.is_multiple_of(60) {
            println!(
                "  {:>4} s: Envoy {:.1} MiB (allocated {:.1}), origin {:.1} MiB, Redis {:.1} MiB; {} requests due",
                at_s,
                mib(s.envoy_rss),
                mib(s.envoy_allocated),
                mib(s.origin_rss),
                mib(s.redis_rss),
                (at.as_secs_f64() * settings.rate_per_s as f64) as u64
            );
        }
        samples.push(s);
        if at >= settings.duration() {
            break;
        }
        at = (at + settings.sample_every).min(settings.duration());
    }
    let mut tally = Tally::default();
    for w in workers {
        // Each worker stops at the end; its last request is bounded by REQUEST_TIMEOUT.
        match tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(5), w).await {
            Ok(Ok(t)) => tally.merge(t),
            Ok(Err(e)) => anyhow::bail!("a crowd worker failed: {e}"),
            Err(_) => anyhow::bail!("a crowd worker did not stop within {:?} of the end", REQUEST_TIMEOUT + Duration::from_secs(5)),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (orders_at_end, keys_at_end) = tokio::task::block_in_place(|| redis_counts(&rig))?;
    let report = SoakReport { samples, tally, seconds, orders_after_priming, orders_at_end, keys_after_priming, keys_at_end, warmup_s: settings.warmup.as_secs_f64() };
    print_report(&report);
    Ok(report)
}

fn print_report(r: &SoakReport) {
    let sent = r.tally.sent();
    println!("  sent {sent} requests in {:.0} s ({:.0}/s); answers other than expected (or none): {}", r.seconds, sent as f64 / r.seconds.max(1e-9), r.tally.unexpected());
    println!("  {:<20} {:>7} {:>8} {:>10}", "kind", "status", "by", "count");
    for ((k, s, by), n) in &r.tally.answers {
        let mark = if *s == k.expected_status() { "" } else { "  (unexpected)" };
        println!("  {:<20} {:>7} {:>8} {:>10}{mark}", k.key(), s, by, n);
    }
    for (k, n) in &r.tally.failures {
        println!("  {:<20} {:>7} {:>8} {:>10}  (no answer)", k.key(), "-", "-", n);
    }
    println!("  by status: {}", r.tally.by_status().iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>().join(", "));
    println!(
        "  Redis: {} orders after priming, {} at the end; {} keys after priming, {} at the end",
        r.orders_after_priming, r.orders_at_end, r.keys_after_priming, r.keys_at_end
    );
    println!("  memory, {} samples; slope over the samples after the first {:.0} s (least squares)", r.samples.len(), r.warmup_s);
    println!("  {:<32} {:>10} {:>10} {:>16} {:>14} {:>14}", "", "start", "end", "slope MiB/min", "growth total", "after warm-up");
    for s in Series::ALL {
        match r.trend(s) {
            Some(t) => println!(
                "  {:<32} {:>10} {:>10} {:>16} {:>14} {:>14}{}",
                s.label(),
                format!("{:.2} MiB", t.first_mib),
                format!("{:.2} MiB", t.last_mib),
                format!("{:+.4}", t.slope_mib_per_min),
                format!("{:+.2} MiB", t.growth_total_mib),
                format!("{:+.2} MiB", t.growth_after_warmup_mib),
                if t.slope_mib_per_min <= SLOPE_LIMIT_MIB_PER_MIN { "" } else { "  OVER THE LIMIT" }
            ),
            None => println!("  {:<32} not enough samples", s.label()),
        }
    }
    let f = r.failures();
    println!(
        "  criterion: every slope <= {SLOPE_LIMIT_MIB_PER_MIN} MiB/min, unexpected answers <= {:.1}%, orders unchanged after priming: {}",
        MAX_UNEXPECTED_SHARE * 100.0,
        if f.is_empty() { "PASSED".to_owned() } else { format!("FAILED ({})", f.join("; ")) }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_an_exact_line() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        assert!((least_squares_slope(&pts).unwrap() - 2.0).abs() < 1e-12);
        let down: Vec<(f64, f64)> = (0..5).map(|i| (i as f64 * 0.5, 10.0 - i as f64)).collect();
        assert!((least_squares_slope(&down).unwrap() + 2.0).abs() < 1e-12);
    }

    #[test]
    fn slope_of_a_flat_series_with_symmetric_noise_is_zero() {
        // +1, -1, -1, +1 around 50 repeated: symmetric about the middle of x, so exactly flat.
        let noise = [1.0, -1.0, -1.0, 1.0];
        let pts: Vec<(f64, f64)> = (0..8).map(|i| (i as f64, 50.0 + noise[i % 4])).collect();
        assert!(least_squares_slope(&pts).unwrap().abs() < 1e-12);
    }

    #[test]
    fn slope_needs_two_distinct_x() {
        assert_eq!(least_squares_slope(&[]), None);
        assert_eq!(least_squares_slope(&[(1.0, 5.0)]), None);
        assert_eq!(least_squares_slope(&[(2.0, 5.0), (2.0, 9.0)]), None);
    }

    #[test]
    fn slope_matches_a_hand_computed_fit() {
        // x = 0,1,2,3; y = 1,3,2,5: mean x 1.5, mean y 2.75; sxy = 5.5, sxx = 5 → 1.1.
        let s = least_squares_slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 2.0), (3.0, 5.0)]).unwrap();
        assert!((s - 1.1).abs() < 1e-12, "{s}");
    }

    #[test]
    fn trend_leaves_out_the_warmup_and_reports_mib_per_minute() {
        let mib = 1024 * 1024;
        // A jump of 30 MiB during the first minute (warm-up), then flat at 130 MiB.
        let mut samples: Vec<(f64, u64)> = (0..6).map(|i| (i as f64 * 10.0, 100 * mib + i * 6 * mib)).collect();
        samples.extend((6..=30).map(|i| (i as f64 * 10.0, 130 * mib)));
        let t = trend(&samples, 60.0).unwrap();
        assert!(t.slope_mib_per_min.abs() < 1e-9, "{t:?}");
        assert_eq!(t.samples, 25);
        assert!((t.growth_total_mib - 30.0).abs() < 1e-9);
        assert!(t.growth_after_warmup_mib.abs() < 1e-9);
        // One MiB more per minute, sampled every 10 s, from the start.
        let leak: Vec<(f64, u64)> = (0..=30).map(|i| (i as f64 * 10.0, 100 * mib + (i as u64) * mib / 6)).collect();
        let t = trend(&leak, 60.0).unwrap();
        assert!((t.slope_mib_per_min - 1.0).abs() < 1e-3, "{t:?}");
        assert!((t.growth_after_warmup_mib - 4.0).abs() < 1e-3, "{t:?}");
        // Nothing after the warm-up: no trend.
        assert_eq!(trend(&leak[..3], 60.0), None);
    }

    fn flat() -> Trend {
        Trend { slope_mib_per_min: 0.01, growth_after_warmup_mib: 0.1, growth_total_mib: 2.0, first_mib: 30.0, last_mib: 32.0, samples: 49 }
    }

    #[test]
    fn judge_passes_a_flat_clean_run_and_names_each_failure() {
        let all_flat: Vec<(Series, Option<Trend>)> = Series::ALL.iter().map(|s| (*s, Some(flat()))).collect();
        assert!(judge(&all_flat, false, 0, 240_000, (6_000, 6_000)).is_empty());
        assert!(judge(&all_flat, false, 240, 240_000, (6_000, 6_000)).is_empty(), "0.1% unexpected is allowed");

        let mut leaking = all_flat.clone();
        leaking[2].1 = Some(Trend { slope_mib_per_min: 0.5, ..flat() });
        let f = judge(&leaking, false, 0, 240_000, (6_000, 6_000));
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("origin VmRSS") && f[0].contains("0.500"), "{f:?}");

        assert_eq!(judge(&all_flat, false, 241, 240_000, (6_000, 6_000)).len(), 1);
        assert!(judge(&all_flat, false, 0, 240_000, (6_000, 6_001))[0].contains("not bounded"));
        assert!(judge(&all_flat, true, 0, 240_000, (6_000, 6_000))[0].contains("gone"));
        assert!(judge(&all_flat, false, 0, 0, (6_000, 6_000))[0].contains("no request"));
        let mut unknown = all_flat;
        unknown[0].1 = None;
        assert!(judge(&unknown, false, 0, 240_000, (6_000, 6_000))[0].contains("not enough samples"));
    }

    #[test]
    fn each_uid_makes_every_kind_and_never_twice_within_the_pool() {
        let uids = 5_000u64;
        let mut seen: BTreeMap<u64, std::collections::BTreeSet<Kind>> = BTreeMap::new();
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        for n in 0..uids * MIX.len() as u64 {
            let (uid, kind) = request_of(n, uids);
            assert!(uid < uids);
            if let Some(prev) = last.insert(uid, n) {
                assert_eq!(n - prev, uids, "uid {uid} came back after {} requests", n - prev);
            }
            seen.entry(uid).or_default().insert(kind);
        }
        assert_eq!(seen.len() as u64, uids);
        assert!(seen.values().all(|k| k.len() == Kind::ALL.len()), "some uid missed a kind");
    }

    #[test]
    fn the_mix_keeps_its_shares() {
        let count = |k: Kind| MIX.iter().filter(|m| **m == k).count();
        assert_eq!(MIX.len(), 20);
        assert_eq!((count(Kind::BuySoldOut), count(Kind::BuyWonAgain), count(Kind::OrdersMine)), (4, 6, 5));
        assert_eq!((count(Kind::SaleStatus), count(Kind::ForgedTicket), count(Kind::Page)), (2, 2, 1));
        // Over a long run the counts follow the mix.
        let mut by_kind: BTreeMap<Kind, u64> = BTreeMap::new();
        for n in 0..200_000 {
            *by_kind.entry(request_of(n, 5_000).1).or_default() += 1;
        }
        assert_eq!(by_kind[&Kind::OrdersMine], 50_000);
        assert_eq!(by_kind[&Kind::Page], 10_000);
    }

    #[test]
    fn settings_bound_the_run() {
        assert!(SoakSettings::for_minutes(1).is_err());
        assert!(SoakSettings::for_minutes(MAX_MINUTES + 1).is_err());
        let s = SoakSettings::for_minutes(10).unwrap();
        assert_eq!((s.duration(), s.warmup), (Duration::from_secs(600), Duration::from_secs(120)));
    }
}
