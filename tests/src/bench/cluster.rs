//! `seckill-bench cluster` (`cargo xtask bench cluster`): what the Redis Cluster and the
//! failover-safe `won` rule cost the store, and whether one hot sku needs stock buckets.
//!
//! Why it exists: issue 10 moves the store from one Redis to a 3-master + 3-replica cluster and
//! makes a `won` wait for a replica (`WAIT 1 150` in the buy's pipeline). Both change how many
//! commits per second the store can make; this bench puts figures on it, measured side by side in
//! one run on this machine (loopback, real `redis-server` processes, AOF `always` everywhere).
//! It drives [`Store::buy`] directly (no HTTP, no edge) from `BUYERS` concurrent tokio tasks on
//! the bench's multi-thread runtime, with the origin's own timeouts ([`Settings::dev`]).
//!
//! 1. **Many skus** (`SKUS` skus of `STOCK_PER_SKU` units, a fresh uid per attempt, skus taken in
//!    turn): commits/s on (a) a standalone Redis, (b) the cluster with `replicas: 0`, (c) the
//!    cluster with `replicas: 1, wait 150 ms` on one shared connection (redis-rs's one multiplexed
//!    connection per master), and (d) the same rule as the origin runs it, over `POOL` connections
//!    of its own for the buys that wait ([`Store::connect`]). `WAIT` blocks the Redis client that
//!    sent it, so on one connection every buy to a master queues behind the previous buy's replica
//!    round trip (and both fsyncs); (d) shows what the origin's connections recover.
//!    The variants alternate in `ROUNDS` rounds (order rotated each round); the figure is the
//!    median over rounds, each ratio (b/a, c/b, d/c) the median of the per-round ratios. Only
//!    `won` counts as a commit; other answers (`late`: the script ran after its fence, so nothing
//!    was committed and the origin answers `busy`) and errors (`not_replicated`: withdrawn, `busy`;
//!    `timeout`) are counted apart.
//! 2. **One hot sku**: a fresh sku of `HOT_STOCK` units sold to distinct uids as fast as the
//!    buyers can, on each variant, until sold out or `HOT_CAP`. All its commits go to one master
//!    (one slot), so this is one master's commit rate. With the edge's admission budget the store
//!    sees about 1.0 commit attempts per unit sold, so time-to-sell = stock / commits_per_s; it is
//!    printed for 10k, 100k and 1M units, extrapolated from the measured rate and labelled so.
//!
//! Results go to `target/bench/cluster.json`. The machine is shared and small: only the ratios
//! within one run mean much, the absolute figures are this machine's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use seckill_origin::redis_conn::RedisTarget;
use seckill_origin::settings::Settings;
use seckill_origin::store::{BuyResult, Durability, SaleConfig, Store, StoreError};
use seckill_stack::redis_cluster::RedisCluster;
use seckill_stack::redis_proc::{Fsync, RedisProc};
use serde_json::{json, Value};

/// Skus of the many-skus sale, and the stock of each.
pub const SKUS: usize = 1_000;
pub const STOCK_PER_SKU: u64 = 1_000;
/// Concurrent buyers (tokio tasks), each one attempt at a time.
pub const BUYERS: usize = 64;
/// Seconds per variant per round of the many-skus part, and its rounds.
pub const SECONDS: u64 = 4;
pub const ROUNDS: usize = 3;
/// The hot sku's stock, the cap on one hot round, and the hot rounds.
pub const HOT_STOCK: u64 = 100_000;
pub const HOT_CAP: Duration = Duration::from_secs(10);
pub const HOT_ROUNDS: usize = 2;
/// The failover-safe rule measured: one replica must confirm within this.
pub const WAIT: Duration = Duration::from_millis(150);
/// Stocks whose time-to-sell is printed (extrapolated from the hot sku's rate).
const SELL_UNITS: [u64; 3] = [10_000, 100_000, 1_000_000];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Standalone,
    Cluster,
    ClusterWait,
    ClusterWaitPool,
}

const VARIANTS: [Variant; 4] = [Variant::Standalone, Variant::Cluster, Variant::ClusterWait, Variant::ClusterWaitPool];

/// Cluster connections of the diagnostic variant (d): separate [`Store`]s, buyers spread over them.
pub const POOL: usize = 16;

impl Variant {
    fn key(self) -> &'static str {
        match self {
            Variant::Standalone => "standalone",
            Variant::Cluster => "cluster",
            Variant::ClusterWait => "cluster_wait",
            Variant::ClusterWaitPool => "cluster_wait_pool",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Standalone => "(a) standalone Redis",
            Variant::Cluster => "(b) cluster, replicas 0",
            Variant::ClusterWait => "(c) cluster, WAIT 1 150ms, one shared connection",
            Variant::ClusterWaitPool => "(d) as (c) over the origin's 16 connections",
        }
    }

    /// A short sku prefix, so each variant's sales are its own keys.
    fn tag(self) -> &'static str {
        match self {
            Variant::Standalone => "s",
            Variant::Cluster => "c",
            Variant::ClusterWait => "w",
            Variant::ClusterWaitPool => "p",
        }
    }
}

/// The Redis processes (kept alive for the run) and the store of each variant.
struct Rig {
    procs: (RedisProc, RedisCluster),
    stores: BTreeMap<&'static str, Vec<Store>>,
}

impl Rig {
    fn stores(&self, v: Variant) -> &[Store] {
        self.stores.get(v.key()).map(Vec::as_slice).unwrap_or_default()
    }

    /// The store that creates `v`'s sales.
    fn first(&self, v: Variant) -> anyhow::Result<&Store> {
        self.stores(v).first().with_context(|| format!("no store for {}", v.key()))
    }
}

/// What one drive of the buyers saw.
#[derive(Debug, Default, Clone)]
struct Tally {
    won: u64,
    /// Answers other than `won` (sold out, already won, ...), by kind.
    other: BTreeMap<String, u64>,
    /// Errors (answered `busy` by the origin), by kind.
    errors: BTreeMap<String, u64>,
    seconds: f64,
    sold_out: bool,
}

impl Tally {
    fn rate(&self) -> f64 {
        if self.seconds > 0.0 { self.won as f64 / self.seconds } else { 0.0 }
    }

    fn merge(&mut self, o: Tally) {
        self.won += o.won;
        for (k, n) in o.other {
            *self.other.entry(k).or_default() += n;
        }
        for (k, n) in o.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.sold_out |= o.sold_out;
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn other_count(&self) -> u64 {
        self.other.values().sum()
    }

    fn to_json(&self) -> Value {
        json!({"won": self.won, "seconds": self.seconds, "commits_per_s": self.rate(), "sold_out": self.sold_out,
               "other": self.other, "errors": self.errors})
    }
}

fn error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Redis(_) => "redis",
        StoreError::Timeout(_) => "timeout",
        StoreError::Protocol(_) => "protocol",
        StoreError::NotReplicated(_) => "not_replicated",
    }
}

fn other_kind(r: &BuyResult) -> &'static str {
    match r {
        BuyResult::Won { .. } => "won",
        BuyResult::AlreadyWon { .. } => "already_won",
        BuyResult::SoldOut => "sold_out",
        BuyResult::NotStarted { .. } => "not_started",
        BuyResult::Ended { .. } => "ended",
        BuyResult::UnknownSku => "unknown_sku",
        BuyResult::Late => "late",
    }
}

/// A store as the origin makes it, with `waiting` connections for the buys that wait for a replica.
async fn connect(target: &RedisTarget, durability: Durability, waiting: usize) -> anyhow::Result<Store> {
    let s = Settings::dev("redis://127.0.0.1:1");
    Store::connect_waiting(target, durability, waiting, s.redis_timeout, s.reply_grace, s.admin_timeout)
        .await
        .with_context(|| format!("connecting to {}", target.describe()))
}

/// Start a standalone Redis and the 3 + 3 cluster (AOF `always` both), and connect the stores.
async fn start() -> anyhow::Result<Rig> {
    let (redis, cluster) = tokio::task::spawn_blocking(|| -> anyhow::Result<(RedisProc, RedisCluster)> {
        let redis = RedisProc::start_scratch("bench-cluster-standalone").context("starting the standalone Redis")?;
        let dir = seckill_stack::paths::scratch_dir("bench-cluster");
        let cluster = RedisCluster::start(&dir, &[], Fsync::Always).context("starting the 3 + 3 Redis Cluster")?;
        Ok((redis, cluster))
    })
    .await
    .context("the start-up thread panicked")??;
    let standalone = connect(&RedisTarget::Standalone(redis.url()), Durability::MASTER_ONLY, 0).await?;
    let nodes = RedisTarget::cluster_from_list(&cluster.node_list()).context("the cluster's node list")?;
    let plain = connect(&nodes, Durability::MASTER_ONLY, 0).await?;
    let rule = Durability { replicas: 1, wait: WAIT };
    let safe = connect(&nodes, rule, 0).await?;
    anyhow::ensure!(safe.durability().wait == WAIT, "the store cut the wait to {:?} (reply_grace too short)", safe.durability().wait);
    let pool = vec![connect(&nodes, rule, POOL).await?];
    let stores = BTreeMap::from([
        (Variant::Standalone.key(), vec![standalone]),
        (Variant::Cluster.key(), vec![plain]),
        (Variant::ClusterWait.key(), vec![safe]),
        (Variant::ClusterWaitPool.key(), pool),
    ]);
    Ok(Rig { procs: (redis, cluster), stores })
}

/// Create `skus` as open sales of `stock` units each (32 at a time).
async fn put_sales(store: &Store, skus: &[String], stock: u64) -> anyhow::Result<()> {
    let now = crate::now_ms();
    let cfg = SaleConfig { stock, starts_at: now - 1_000, ends_at: now + 3_600_000, per_user_limit: 1, pay_within_s: 900, challenge_bits: 0, batches: Vec::new() };
    let mut puts = futures::stream::iter(skus.iter().map(|sku| {
        let (store, cfg) = (store.clone(), cfg.clone());
        async move { store.put_sale(sku, &cfg).await.with_context(|| format!("creating sale {sku}")) }
    }))
    .buffer_unordered(32);
    while let Some(r) = puts.next().await {
        r?;
    }
    Ok(())
}

/// `BUYERS` tasks buying through `stores` (task `c` on store `c % len`) with fresh uids (`uid_prefix` + task + attempt), taking the
/// skus in turn, until `limit` has passed or (for `stop_on_sold_out`) the sku is sold out.
async fn drive(stores: &[Store], skus: Arc<Vec<String>>, uid_prefix: &str, limit: Duration, stop_on_sold_out: bool) -> anyhow::Result<Tally> {
    anyhow::ensure!(!stores.is_empty() && !skus.is_empty(), "nothing to drive: no store or no sku");
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = Vec::with_capacity(BUYERS);
    for c in 0..BUYERS {
        let (store, skus, prefix) = (stores[c % stores.len()].clone(), skus.clone(), uid_prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let sku = &skus[(c + i * BUYERS) % skus.len()];
                let uid = format!("{prefix}c{c}n{i}");
                i += 1;
                match store.buy(sku, &uid).await {
                    Ok(BuyResult::Won { .. }) => t.won += 1,
                    Ok(BuyResult::SoldOut) if stop_on_sold_out => {
                        t.sold_out = true;
                        break;
                    }
                    Ok(r) => *t.other.entry(other_kind(&r).to_owned()).or_default() += 1,
                    Err(e) => *t.errors.entry(error_kind(&e).to_owned()).or_default() += 1,
                }
            }
            t
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        total.merge(task.await.context("a buyer task panicked")?);
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `VARIANTS` rotated by `round`, so no variant always runs first.
fn order(round: usize) -> Vec<Variant> {
    (0..VARIANTS.len()).map(|i| VARIANTS[(i + round) % VARIANTS.len()]).collect()
}

/// Part 1: the many-skus sale, variants alternating in rounds. Per variant, its tally per round.
async fn many_skus(rig: &Rig) -> anyhow::Result<BTreeMap<&'static str, Vec<Tally>>> {
    let mut skus = BTreeMap::new();
    for v in VARIANTS {
        let list: Vec<String> = (0..SKUS).map(|i| format!("bm{}{i:04}", v.tag())).collect();
        put_sales(rig.first(v)?, &list, STOCK_PER_SKU).await?;
        skus.insert(v.key(), Arc::new(list));
    }
    let mut tallies: BTreeMap<&'static str, Vec<Tally>> = BTreeMap::new();
    for round in 0..ROUNDS {
        for v in order(round) {
            let list = skus.get(v.key()).cloned().unwrap_or_default();
            let t = drive(rig.stores(v), list, &format!("m{}r{round}", v.tag()), Duration::from_secs(SECONDS), false).await?;
            println!("  round {round} {:<28} {:>8.0} commits/s  ({} other, {} errors)", v.label(), t.rate(), t.other_count(), t.error_count());
            tallies.entry(v.key()).or_default().push(t);
        }
    }
    Ok(tallies)
}

/// Part 2: a fresh hot sku of `HOT_STOCK` units per variant per round, sold until gone or capped.
async fn hot_sku(rig: &Rig) -> anyhow::Result<BTreeMap<&'static str, Vec<Tally>>> {
    let mut tallies: BTreeMap<&'static str, Vec<Tally>> = BTreeMap::new();
    for round in 0..HOT_ROUNDS {
        for v in order(round) {
            let sku = format!("bh{}{round}", v.tag());
            put_sales(rig.first(v)?, std::slice::from_ref(&sku), HOT_STOCK).await?;
            let t = drive(rig.stores(v), Arc::new(vec![sku]), &format!("h{}r{round}", v.tag()), HOT_CAP, true).await?;
            let how = if t.sold_out { "sold out" } else { "capped, not sold out" };
            println!("  round {round} {:<28} {:>8} units in {:>5.1} s = {:>7.0} commits/s  ({how}; {} other, {} errors)", v.label(), t.won, t.seconds, t.rate(), t.other_count(), t.error_count());
            tallies.entry(v.key()).or_default().push(t);
        }
    }
    Ok(tallies)
}

/// Median commits/s of `key`'s rounds.
fn median_rate(tallies: &BTreeMap<&'static str, Vec<Tally>>, key: &str) -> f64 {
    median(tallies.get(key).map(|ts| ts.iter().map(Tally::rate).collect()).unwrap_or_default())
}

/// Median over rounds of `num`'s rate over `den`'s rate in the same round.
fn median_ratio(tallies: &BTreeMap<&'static str, Vec<Tally>>, num: &str, den: &str) -> f64 {
    let (Some(n), Some(d)) = (tallies.get(num), tallies.get(den)) else { return 0.0 };
    median(n.iter().zip(d).filter(|(_, d)| d.rate() > 0.0).map(|(n, d)| n.rate() / d.rate()).collect())
}

/// Totals of `key`'s rounds (won, other, errors).
fn totals(tallies: &BTreeMap<&'static str, Vec<Tally>>, key: &str) -> Tally {
    let mut t = Tally::default();
    for r in tallies.get(key).into_iter().flatten() {
        t.merge(r.clone());
        t.seconds += r.seconds;
    }
    t
}

/// Print part 1's figures; its JSON.
fn report_many(tallies: &BTreeMap<&'static str, Vec<Tally>>) -> Value {
    let mut out = serde_json::Map::new();
    println!("  medians over {ROUNDS} rounds:");
    for v in VARIANTS {
        let (rate, all) = (median_rate(tallies, v.key()), totals(tallies, v.key()));
        println!("    {:<28} {:>8.0} commits/s   (all rounds: {} commits, {} other answers {:?}, {} errors {:?})", v.label(), rate, all.won, all.other_count(), all.other, all.error_count(), all.errors);
        let rounds: Vec<Value> = tallies.get(v.key()).into_iter().flatten().map(Tally::to_json).collect();
        out.insert(v.key().into(), json!({"commits_per_s_median": rate, "errors": all.error_count(), "other": all.other_count(), "rounds": rounds}));
    }
    let (ba, cb) = (median_ratio(tallies, "cluster", "standalone"), median_ratio(tallies, "cluster_wait", "cluster"));
    let ca = median_ratio(tallies, "cluster_wait", "standalone");
    let dc = median_ratio(tallies, "cluster_wait_pool", "cluster_wait");
    let db = median_ratio(tallies, "cluster_wait_pool", "cluster");
    println!("    ratio (b) cluster / (a) standalone:        {ba:.2}");
    println!("    ratio (c) with WAIT / (b) without:          {cb:.2}");
    println!("    ratio (c) with WAIT / (a) standalone:       {ca:.2}");
    println!("    ratio (d) WAIT, {POOL} connections / (c):       {dc:.2}   ((d) / (b): {db:.2})");
    out.insert("ratio_cluster_to_standalone".into(), json!(ba));
    out.insert("ratio_wait_to_no_wait".into(), json!(cb));
    out.insert("ratio_wait_to_standalone".into(), json!(ca));
    out.insert("ratio_wait_pool_to_wait".into(), json!(dc));
    out.insert("ratio_wait_pool_to_no_wait".into(), json!(db));
    out.insert("setup".into(), json!({"skus": SKUS, "stock_per_sku": STOCK_PER_SKU, "buyers": BUYERS, "seconds_per_round": SECONDS, "rounds": ROUNDS}));
    Value::Object(out)
}

/// Print part 2's figures and the extrapolated time-to-sell; its JSON.
fn report_hot(tallies: &BTreeMap<&'static str, Vec<Tally>>) -> Value {
    let mut out = serde_json::Map::new();
    println!("  one master's commit rate (median over {HOT_ROUNDS} rounds) and time to sell one sku at ~1.0 commit attempts per unit sold");
    println!("  (EXTRAPOLATED from the measured rate: stock / commits_per_s):");
    for v in VARIANTS {
        let rate = median_rate(tallies, v.key());
        let sell: BTreeMap<String, f64> = SELL_UNITS.iter().map(|u| (u.to_string(), if rate > 0.0 { *u as f64 / rate } else { f64::INFINITY })).collect();
        let shown: Vec<String> = SELL_UNITS.iter().map(|u| format!("{}k: {:.1} s", u / 1000, sell.get(&u.to_string()).copied().unwrap_or_default())).collect();
        println!("    {:<28} {:>7.0} commits/s   extrapolated {}", v.label(), rate, shown.join(", "));
        let rounds: Vec<Value> = tallies.get(v.key()).into_iter().flatten().map(Tally::to_json).collect();
        out.insert(v.key().into(), json!({"commits_per_s_median": rate, "time_to_sell_s_extrapolated": sell, "rounds": rounds}));
    }
    out.insert("setup".into(), json!({"stock": HOT_STOCK, "buyers": BUYERS, "cap_s": HOT_CAP.as_secs(), "rounds": HOT_ROUNDS, "commit_attempts_per_unit_sold": 1.0}));
    Value::Object(out)
}

/// The whole bench: prints the figures and returns them for `target/bench/cluster.json`.
pub async fn run() -> anyhow::Result<Value> {
    let began = Instant::now();
    println!("cluster benchmark: Store::buy from {BUYERS} concurrent tasks; standalone Redis vs 3-master + 3-replica cluster, AOF always, loopback");
    let rig = start().await?;
    println!("1. {SKUS} skus x {STOCK_PER_SKU} units, a fresh uid per attempt, {SECONDS} s per variant, {ROUNDS} rounds (order rotated)");
    let many = many_skus(&rig).await?;
    let many_json = report_many(&many);
    println!("2. one hot sku of {HOT_STOCK} units, sold to distinct uids until gone (cap {:?}), {HOT_ROUNDS} rounds", HOT_CAP);
    let hot = hot_sku(&rig).await?;
    let hot_json = report_hot(&hot);
    let Rig { procs, stores } = rig;
    drop(stores); // the connections first, inside the runtime; then the processes
    tokio::task::spawn_blocking(move || drop(procs)).await.context("stopping the Redis processes")?;
    println!("  whole bench: {:.0} s", began.elapsed().as_secs_f64());
    Ok(json!({"many_skus": many_json, "hot_sku": hot_json, "wait_ms": WAIT.as_millis() as u64, "seconds": began.elapsed().as_secs_f64()}))
}
