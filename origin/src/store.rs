//! Everything the origin keeps in Redis, behind one type.
//!
//! Each operation that changes a sale is one Lua script (`src/lua/*.lua`), run with EVALSHA and
//! loaded automatically on `NOSCRIPT` (redis-rs [`Script`]), so an attempt is atomic: the window, the
//! flags, the per-user limit, the stock and the order record are checked and written together.
//! Every key of a sku carries the hash tag `{sku}`, so all keys one script touches live in one
//! Redis Cluster slot.
//!
//! All calls go through one [`RedisConn`]: a multiplexed standalone connection (concurrent
//! requests are pipelined on it and it reconnects by itself) or a Redis Cluster connection (each
//! call routed to its slot's master; no call names keys of two slots). Every call is bounded in
//! time; see [`Store::buy`] for how a timeout is kept from meaning "maybe committed", and
//! [`Durability`] for what a `won` waits for in a cluster.

use std::future::Future;
use std::time::Duration;

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use seckill_core::feed::SaleFlags;
use seckill_core::sale::{self, check_batches, state_at, Batch, SaleState};

use crate::redis_conn::{ConnTimeouts, RedisConn, RedisTarget};

/// The order wire types, defined once in `seckill-core` (the page reads them too).
pub use seckill_core::order::{sku_of_order, OrderState, OrderView};

/// Set of every sku that has a sale: one key (one slot in a cluster), read only by the flags
/// refresher and the SRE listing, never on a shopper's path (those take the skus from the snapshot).
const SALES_KEY: &str = "sk:sales";

/// How long a buy whose reply was lost keeps asking whether it committed (a cluster failover
/// takes 2-3 s here); within Envoy's 5 s route timeout. See [`Store::settle`].
const SETTLE_WITHIN: Duration = Duration::from_millis(4_000);

/// Connections the buys that wait for replicas are spread over (see [`Store::buy`]).
const WAITING_CONNECTIONS: usize = 16;

/// What a `won` waits for before it is answered.
///
/// `replicas: 0` (standalone, the default): the commit is on the master's disk (AOF `always`).
/// `replicas: n` (a cluster): the buy script and `WAIT n wait_ms` go to the master in one pipeline,
/// so `WAIT` covers exactly that commit; only when `n` replicas have it is `won` sent, so it
/// survives the loss of the master. When they do not confirm in time the order is withdrawn
/// (`withdraw.lua`: unit back, uid freed, no trace) and the answer is `busy`, so "`busy` means
/// nothing was committed" stays true (see the README's "What `won` means in a cluster").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    pub replicas: u32,
    pub wait: Duration,
}

impl Durability {
    /// The master's own disk only.
    pub const MASTER_ONLY: Durability = Durability { replicas: 0, wait: Duration::ZERO };
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected answer from redis: {0}")]
    Protocol(String),
    #[error("no replica confirmed the commit within {0:?}; the order was withdrawn")]
    NotReplicated(Duration),
}

/// The keys of one sku. The `{sku}` hash tag keeps them in one cluster slot.
struct SkuKeys {
    sale: String,
    orders: String,
    held: String,
    history: String,
    pending: String,
}

impl SkuKeys {
    fn new(sku: &str) -> Self {
        SkuKeys {
            sale: format!("sk:{{{sku}}}:sale"),
            orders: format!("sk:{{{sku}}}:orders"),
            held: format!("sk:{{{sku}}}:held"),
            history: format!("sk:{{{sku}}}:history"),
            pending: format!("sk:{{{sku}}}:pending"),
        }
    }
}

/// What the buy script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyResult {
    Won { order_id: String },
    AlreadyWon { order_id: String },
    SoldOut,
    NotStarted { starts_at: u64, ends_at: u64 },
    Ended { starts_at: u64, ends_at: u64 },
    UnknownSku,
    /// The script ran after the origin's fence: nothing was committed.
    Late,
}

/// A sale as an SRE defines it (`PUT /admin/sales/{sku}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleConfig {
    pub stock: u64,
    pub starts_at: u64,
    pub ends_at: u64,
    #[serde(default = "default_per_user_limit")]
    pub per_user_limit: u32,
    #[serde(default = "default_pay_within_s")]
    pub pay_within_s: u64,
    /// Difficulty of the proof-of-work challenge asked of every buy from the start, in leading
    /// zero bits (see `seckill_core::challenge`); 0 (the default): none. Raise it while the sale
    /// runs with `PUT /admin/sales/{sku}/challenge`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub challenge_bits: u32,
    /// The stock released in batches at set times (`[{"at": ms, "stock": n}, ...]`, the first at
    /// `starts_at`, adding up to `stock`); absent: all of it at the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<Batch>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn default_per_user_limit() -> u32 {
    1
}
fn default_pay_within_s() -> u64 {
    900
}

/// Largest stock one sale may have; keeps counters and the pending set far from any limit.
pub const MAX_STOCK: u64 = 100_000_000;
/// Largest per-user limit.
pub const MAX_PER_USER_LIMIT: u32 = 1_000;
/// Longest payment window (one week).
pub const MAX_PAY_WITHIN_S: u64 = 7 * 24 * 3600;

impl SaleConfig {
    /// Check a config before it touches Redis; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.stock > MAX_STOCK {
            return Err(format!("stock must be at most {MAX_STOCK}"));
        }
        if self.ends_at <= self.starts_at {
            return Err("ends_at must be after starts_at".into());
        }
        if self.per_user_limit == 0 || self.per_user_limit > MAX_PER_USER_LIMIT {
            return Err(format!("per_user_limit must be 1..={MAX_PER_USER_LIMIT}"));
        }
        if self.pay_within_s == 0 || self.pay_within_s > MAX_PAY_WITHIN_S {
            return Err(format!("pay_within_s must be 1..={MAX_PAY_WITHIN_S}"));
        }
        check_challenge_bits(self.challenge_bits)?;
        check_batches(&self.batches, self.starts_at, self.ends_at, self.stock).map_err(|e| e.to_string())
    }
}

/// A sale's batches as the sale hash keeps them for the buy script: `at:stock,at:stock`.
fn encode_batches(batches: &[Batch]) -> String {
    batches.iter().map(|b| format!("{}:{}", b.at, b.stock)).collect::<Vec<_>>().join(",")
}

/// [`encode_batches`] read back (a part that does not parse is skipped: the hash is ours).
fn decode_batches(field: Option<&str>) -> Vec<Batch> {
    let parse = |part: &str| {
        let (at, stock) = part.split_once(':')?;
        Some(Batch { at: at.parse().ok()?, stock: stock.parse().ok()? })
    };
    field.unwrap_or_default().split(',').filter_map(parse).collect()
}

/// A challenge difficulty an SRE may set: 0 (none) to [`seckill_core::challenge::MAX_BITS`].
pub fn check_challenge_bits(bits: u32) -> Result<(), String> {
    let max = seckill_core::challenge::MAX_BITS;
    if bits > max {
        return Err(format!("challenge_bits must be 0..={max} (0: no challenge)"));
    }
    Ok(())
}

/// Exact figures of a sale, for SREs (`GET /admin/sales/{sku}`). Never shown to shoppers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleFigures {
    pub sku: String,
    pub stock_total: u64,
    pub stock_left: u64,
    /// Orders holding a unit (pending or paid).
    pub sold: u64,
    pub paid: u64,
    /// Uids holding at least one order.
    pub buyers: u64,
    pub sold_out_flag: bool,
    /// The SRE's switch alone (the flag can also be raised by stock reaching zero).
    pub sold_out_manual: bool,
    pub state: SaleState,
    pub starts_at: u64,
    pub ends_at: u64,
    pub per_user_limit: u32,
    pub pay_within_s: u64,
    /// The challenge's difficulty (0: none).
    #[serde(default)]
    pub challenge_bits: u32,
    /// The batches the stock is released in (absent: all at the start).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<Batch>,
    /// Units released so far (all of them without batches).
    #[serde(default)]
    pub released: u64,
    /// When the next batch goes on sale, if one is to come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_batch_at: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayResult {
    Paid,
    Expired,
    NotFound,
}

/// A sale as the flags refresher reads it, with its change counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRecord {
    pub flags: SaleFlags,
    pub version: u64,
}

/// The buy script's reply as a [`BuyResult`].
fn parse_buy_reply(reply: &[String]) -> Result<BuyResult, StoreError> {
    let field = |i: usize| reply.get(i).cloned().unwrap_or_default();
    let num = |i: usize| reply.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    Ok(match reply.first().map(String::as_str) {
        Some("won") => BuyResult::Won { order_id: field(1) },
        Some("already_won") => BuyResult::AlreadyWon { order_id: field(1) },
        Some("sold_out") => BuyResult::SoldOut,
        Some("not_started") => BuyResult::NotStarted { starts_at: num(1), ends_at: num(2) },
        Some("ended") => BuyResult::Ended { starts_at: num(1), ends_at: num(2) },
        Some("unknown_sku") => BuyResult::UnknownSku,
        Some("busy") => BuyResult::Late,
        _ => return Err(StoreError::Protocol(format!("buy script answered {reply:?}"))),
    })
}

struct Scripts {
    buy: Script,
    expire: Script,
    pay: Script,
    reset: Script,
    set_challenge: Script,
    set_flag: Script,
    withdraw: Script,
    edges: Script,
}

/// The origin's handle on Redis. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: RedisConn,
    /// Buys that wait for replicas go round these: `WAIT` holds back the connection it is sent on
    /// until the replica confirms, so one connection would commit one such buy at a time
    /// (`cargo xtask bench cluster` measured 3-4x more commits/s over 16). Empty otherwise.
    waiting: std::sync::Arc<Vec<RedisConn>>,
    next_waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    durability: Durability,
    scripts: std::sync::Arc<Scripts>,
    /// Bound on the shopper paths (buy, pay, orders): a flash crowd needs a fast `busy`.
    timeout: Duration,
    reply_grace: Duration,
    /// Bound on SRE and background calls (the sold-out switch, figures, flags refresh, expiry):
    /// an SRE's switch must not fail because Redis is briefly slow under the crowd.
    admin_timeout: Duration,
}

/// The sale hash's fields [`Store::figures`] reads.
const FIGURE_FIELDS: [&str; 13] = [
    "stock_total",
    "stock_left",
    "sold",
    "paid",
    "flag_manual",
    "flag_auto",
    "flag_auto_until",
    "starts_at",
    "ends_at",
    "per_user_limit",
    "pay_within_s",
    "challenge_bits",
    "batches",
];
/// The sale hash's fields [`Store::sale_records`] reads.
const RECORD_FIELDS: [&str; 11] =
    ["starts_at", "ends_at", "flag_manual", "flag_auto", "flag_auto_until", "per_user_limit", "version", "seq", "stock_left", "challenge_bits", "batches"];

/// One HMGET's answer, read by field name rather than by position.
struct Fields<'a> {
    names: &'a [&'a str],
    values: Vec<Option<String>>,
}

impl Fields<'_> {
    /// The value of `name` (`None` if absent or not asked for).
    fn get(&self, name: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.values.get(i)?.as_deref()
    }
    /// `name` as a number, 0 when absent or not one.
    fn u64(&self, name: &str) -> u64 {
        self.get(name).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
    /// Whether the flag `name` is raised (`"1"`).
    fn is_set(&self, name: &str) -> bool {
        self.get(name) == Some("1")
    }
    /// The sold-out flag as the feed carries it: raised by the SRE's switch (holds until lowered)
    /// or by one batch's stock (holds until the next batch's start, `flag_auto_until`; 0: none).
    fn sold_out(&self) -> (bool, Option<u64>) {
        if self.is_set("flag_manual") {
            return (true, None);
        }
        (self.is_set("flag_auto"), Some(self.u64("flag_auto_until")).filter(|t| *t > 0))
    }
}

impl Store {
    /// Make a store for a standalone `redis_url`. Does not wait for Redis: the origin starts (and
    /// answers `busy`, `/readyz` 503) while Redis is down, and connects when it comes up.
    ///
    /// `timeout` bounds the shopper calls; a buy additionally waits `reply_grace` for a reply whose
    /// script started in time (see [`Store::buy`]). `admin_timeout` bounds SRE and background calls.
    pub fn new(redis_url: &str, timeout: Duration, reply_grace: Duration, admin_timeout: Duration) -> Result<Self, StoreError> {
        let conn = RedisConn::standalone(redis_url, Self::conn_timeouts(timeout, reply_grace, admin_timeout))?;
        Ok(Self::with_conn(conn, Durability::MASTER_ONLY, timeout, reply_grace, admin_timeout))
    }

    /// Make a store for `target`: standalone as [`Store::new`]; a cluster is connected now (a
    /// node list that reaches no cluster is an error here, at start-up).
    pub async fn connect(target: &RedisTarget, durability: Durability, timeout: Duration, reply_grace: Duration, admin_timeout: Duration) -> Result<Self, StoreError> {
        Self::connect_waiting(target, durability, WAITING_CONNECTIONS, timeout, reply_grace, admin_timeout).await
    }

    /// [`Store::connect`] with `waiting` connections for the buys that wait for replicas (0: they
    /// share the one connection; `cargo xtask bench cluster` measures both).
    pub async fn connect_waiting(target: &RedisTarget, durability: Durability, waiting: usize, timeout: Duration, reply_grace: Duration, admin_timeout: Duration) -> Result<Self, StoreError> {
        let timeouts = Self::conn_timeouts(timeout, reply_grace, admin_timeout);
        let conn = RedisConn::connect(target, timeouts).await?;
        let mut store = Self::with_conn(conn, durability, timeout, reply_grace, admin_timeout);
        if durability.replicas > 0 && waiting > 0 {
            let n = waiting;
            let mut waiting = Vec::with_capacity(n);
            for _ in 0..n {
                waiting.push(RedisConn::connect(target, timeouts).await?);
            }
            store.waiting = std::sync::Arc::new(waiting);
        }
        Ok(store)
    }

    fn conn_timeouts(timeout: Duration, reply_grace: Duration, admin_timeout: Duration) -> ConnTimeouts {
        ConnTimeouts { connect: timeout, response: (timeout + reply_grace).max(admin_timeout) }
    }

    fn with_conn(conn: RedisConn, durability: Durability, timeout: Duration, reply_grace: Duration, admin_timeout: Duration) -> Self {
        let scripts = Scripts {
            buy: Script::new(include_str!("lua/buy.lua")),
            expire: Script::new(include_str!("lua/expire.lua")),
            pay: Script::new(include_str!("lua/pay.lua")),
            reset: Script::new(include_str!("lua/reset.lua")),
            set_challenge: Script::new(include_str!("lua/set_challenge.lua")),
            set_flag: Script::new(include_str!("lua/set_flag.lua")),
            withdraw: Script::new(include_str!("lua/withdraw.lua")),
            edges: Script::new(include_str!("lua/edges.lua")),
        };
        // The buy's wait for replicas runs inside its own time bound.
        let durability = Durability { wait: durability.wait.min(reply_grace), ..durability };
        let (waiting, next_waiting) = (std::sync::Arc::new(Vec::new()), std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)));
        Store { conn, waiting, next_waiting, durability, scripts: std::sync::Arc::new(scripts), timeout, reply_grace, admin_timeout }
    }

    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    async fn bounded<T>(&self, limit: Duration, fut: impl Future<Output = redis::RedisResult<T>>) -> Result<T, StoreError> {
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }

    /// `PING`, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let pong: String = self.bounded(self.timeout, redis::cmd("PING").query_async(&mut c)).await?;
        if pong == "PONG" { Ok(()) } else { Err(StoreError::Protocol(pong)) }
    }

    /// One attempt by `uid` to buy one unit of `sku`.
    ///
    /// The script is given a fence, now + `timeout`: if Redis only gets to run it after the fence
    /// (Redis paused, slow or backed up), it commits nothing and says `late`. The origin waits for the
    /// reply until fence + `reply_grace`. So an `Err` (answered `busy`) can only hide a commit when a
    /// script that started before the fence took longer than `reply_grace` to reply (its fsync and
    /// the network included); the uid's next attempt then gets `already_won` with that order.
    ///
    /// With [`Durability::replicas`] > 0 a `won` also waits for the replicas; one they did not
    /// confirm is withdrawn and this returns [`StoreError::NotReplicated`] (answered `busy`).
    pub async fn buy(&self, sku: &str, uid: &str) -> Result<BuyResult, StoreError> {
        let k = SkuKeys::new(sku);
        let fence = crate::now_ms() + self.timeout.as_millis() as u64;
        let mut inv = self.scripts.buy.prepare_invoke();
        inv.key(&k.sale).key(&k.orders).key(&k.held).key(&k.history).key(&k.pending).arg(sku).arg(uid).arg(fence);
        let bound = self.timeout + self.reply_grace;
        let (reply, acked) = if self.durability.replicas == 0 {
            let mut c = self.conn.clone();
            (self.bounded(bound, inv.invoke_async::<Vec<String>>(&mut c)).await?, None)
        } else {
            match self.bounded(bound, self.buy_then_wait(&k, sku, uid, fence)).await {
                Ok((reply, acked)) => (reply, Some(acked)),
                // Whatever the error says, the buy may have run: the cluster client retries a
                // request whose connection dropped, so even a refusal or a MOVED can follow a
                // first try that committed. Ask what survived.
                Err(e) => return self.settle(&k, uid, e).await,
            }
        };
        let result = parse_buy_reply(&reply)?;
        if let (BuyResult::Won { order_id }, Some(acked)) = (&result, acked) {
            if acked < i64::from(self.durability.replicas) {
                let unconfirmed = StoreError::NotReplicated(self.durability.wait);
                if self.withdraw(&k, order_id, uid).await {
                    return Err(unconfirmed);
                }
                // The master died before the withdrawal: the order may live on where it was copied.
                return self.settle(&k, uid, unconfirmed).await;
            }
        }
        Ok(result)
    }

    /// The buy script and `WAIT replicas wait_ms` in one pipeline to the sku's master, so the
    /// `WAIT` counts the replicas that have this very commit. Returns the script's reply and how
    /// many replicas acknowledged. A master that lost the script (after a failover) gets it again.
    async fn buy_then_wait(&self, k: &SkuKeys, sku: &str, uid: &str, fence: u64) -> redis::RedisResult<(Vec<String>, i64)> {
        let mut pipe = redis::pipe();
        pipe.cmd("EVALSHA").arg(self.scripts.buy.get_hash()).arg(5).arg(&k.sale).arg(&k.orders).arg(&k.held).arg(&k.history).arg(&k.pending);
        pipe.arg(sku).arg(uid).arg(fence);
        pipe.cmd("WAIT").arg(self.durability.replicas).arg(self.durability.wait.as_millis() as u64);
        let mut c = self.waiting_conn();
        match pipe.query_async(&mut c).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.scripts.buy.prepare_invoke().load_async(&mut c).await?;
                pipe.query_async(&mut c).await
            }
            other => other,
        }
    }

    /// A buy whose reply was lost after it was sent (the master died or stopped answering
    /// mid-call) may have committed, and that commit may survive on the replica that takes the
    /// slot over. Rather than answer `busy` blind, ask the master serving the slot now (after a
    /// failover: the promoted replica) whether `uid` holds an order: yes → `already_won` with it
    /// (true whichever attempt made it); no → nothing of this attempt survives, `busy` is true.
    /// While the slot has no master, ask again every 100 ms for up to [`SETTLE_WITHIN`]; past it,
    /// answer `busy` (the uid's next attempt then finds any order as `already_won`).
    async fn settle(&self, k: &SkuKeys, uid: &str, first: StoreError) -> Result<BuyResult, StoreError> {
        let deadline = tokio::time::Instant::now() + SETTLE_WITHIN;
        while tokio::time::Instant::now() < deadline {
            let mut c = self.conn.clone();
            match self.bounded(self.timeout, c.hget::<_, _, Option<String>>(&k.held, uid)).await {
                Ok(Some(held)) => {
                    if let Some(order_id) = held.split(' ').rfind(|s| !s.is_empty()) {
                        tracing::warn!(order_id, "a buy's reply was lost; the order survives: answering already_won");
                        return Ok(BuyResult::AlreadyWon { order_id: order_id.to_owned() });
                    }
                    return Err(first);
                }
                Ok(None) => return Err(first),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Err(first)
    }

    /// The next connection for a buy that waits for replicas (the shared one if there is no pool).
    fn waiting_conn(&self) -> RedisConn {
        let i = self.next_waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.waiting.get(i % self.waiting.len().max(1)) {
            Some(c) => c.clone(),
            None => self.conn.clone(),
        }
    }

    /// Take back an order its replicas did not confirm: the unit returns to stock and the uid is
    /// free again, as if the attempt had never been made. If this fails too (the master is gone),
    /// the caller settles what survived ([`Store::settle`]). True when the withdrawal ran.
    async fn withdraw(&self, k: &SkuKeys, order_id: &str, uid: &str) -> bool {
        let mut inv = self.scripts.withdraw.prepare_invoke();
        inv.key(&k.sale).key(&k.orders).key(&k.held).key(&k.history).key(&k.pending).arg(order_id).arg(uid);
        let mut c = self.conn.clone();
        match self.bounded(self.timeout, inv.invoke_async::<i64>(&mut c)).await {
            Ok(n) => {
                tracing::warn!(order_id, withdrawn = n, "no replica confirmed a commit in time: order withdrawn, answered busy");
                true
            }
            Err(e) => {
                tracing::error!(order_id, error = %e, "no replica confirmed a commit and withdrawing it failed");
                false
            }
        }
    }

    /// Create or reset a sale and register its sku. Returns its new version.
    pub async fn put_sale(&self, sku: &str, cfg: &SaleConfig) -> Result<u64, StoreError> {
        let k = SkuKeys::new(sku);
        let mut c = self.conn.clone();
        let _: i64 = self.bounded(self.admin_timeout, c.sadd(SALES_KEY, sku)).await?;
        let mut inv = self.scripts.reset.prepare_invoke();
        inv.key(&k.sale).key(&k.orders).key(&k.held).key(&k.history).key(&k.pending);
        inv.arg(cfg.stock).arg(cfg.starts_at).arg(cfg.ends_at).arg(cfg.per_user_limit).arg(cfg.pay_within_s).arg(cfg.challenge_bits);
        inv.arg(encode_batches(&cfg.batches));
        self.bounded(self.admin_timeout, inv.invoke_async(&mut c)).await
    }

    /// Raise or lower the SRE's sold-out switch. `false` when the sku has no sale.
    pub async fn set_sold_out(&self, sku: &str, sold_out: bool) -> Result<bool, StoreError> {
        let k = SkuKeys::new(sku);
        let mut inv = self.scripts.set_flag.prepare_invoke();
        inv.key(&k.sale).arg(if sold_out { "1" } else { "0" });
        let mut c = self.conn.clone();
        let found: i64 = self.bounded(self.admin_timeout, inv.invoke_async(&mut c)).await?;
        Ok(found == 1)
    }

    /// Set the difficulty of a sale's challenge (0: none); the feed carries it to every edge.
    /// `false` when the sku has no sale.
    pub async fn set_challenge(&self, sku: &str, bits: u32) -> Result<bool, StoreError> {
        let k = SkuKeys::new(sku);
        let mut inv = self.scripts.set_challenge.prepare_invoke();
        inv.key(&k.sale).arg(bits);
        let mut c = self.conn.clone();
        let found: i64 = self.bounded(self.admin_timeout, inv.invoke_async(&mut c)).await?;
        Ok(found == 1)
    }

    /// Exact figures of a sale; `None` for an unknown sku.
    pub async fn figures(&self, sku: &str) -> Result<Option<SaleFigures>, StoreError> {
        let k = SkuKeys::new(sku);
        let mut c = self.conn.clone();
        let (values, buyers): (Vec<Option<String>>, u64) = self
            .bounded(
                self.timeout,
                redis::pipe()
                    .cmd("HMGET")
                    .arg(&k.sale)
                    .arg(&FIGURE_FIELDS)
                    .cmd("HLEN")
                    .arg(&k.held)
                    .query_async(&mut c),
            )
            .await?;
        let f = Fields { names: &FIGURE_FIELDS, values };
        if f.get("stock_total").is_none() {
            return Ok(None);
        }
        let manual = f.is_set("flag_manual");
        let (raised, until) = f.sold_out();
        let now = crate::now_ms();
        let flag = sale::sold_out_now(raised, until, now);
        let (starts_at, ends_at) = (f.u64("starts_at"), f.u64("ends_at"));
        let batches = decode_batches(f.get("batches"));
        Ok(Some(SaleFigures {
            sku: sku.to_owned(),
            stock_total: f.u64("stock_total"),
            stock_left: f.u64("stock_left"),
            sold: f.u64("sold"),
            paid: f.u64("paid"),
            buyers,
            sold_out_flag: flag,
            sold_out_manual: manual,
            state: state_at(now, starts_at, ends_at, flag),
            starts_at,
            ends_at,
            per_user_limit: f.u64("per_user_limit") as u32,
            pay_within_s: f.u64("pay_within_s"),
            challenge_bits: f.u64("challenge_bits") as u32,
            released: sale::released_by(&batches, now).unwrap_or(f.u64("stock_total")),
            next_batch_at: sale::next_batch_after(&batches, now).filter(|t| *t < ends_at),
            batches,
        }))
    }

    /// Every registered sku, sorted.
    pub async fn skus(&self) -> Result<Vec<String>, StoreError> {
        let mut c = self.conn.clone();
        let mut skus: Vec<String> = self.bounded(self.admin_timeout, c.smembers(SALES_KEY)).await?;
        skus.sort();
        Ok(skus)
    }

    /// The flags of the given skus (absent ones skipped), in one pipeline.
    pub async fn sale_records(&self, skus: &[String]) -> Result<Vec<SaleRecord>, StoreError> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let cmds = skus
            .iter()
            .map(|sku| {
                let mut c = redis::cmd("HMGET");
                c.arg(SkuKeys::new(sku).sale).arg(&RECORD_FIELDS);
                c
            })
            .collect();
        let rows: Vec<Vec<Option<String>>> = self.bounded(self.admin_timeout, self.conn.per_key(cmds)).await?;
        Ok(skus
            .iter()
            .zip(rows)
            .map(|(sku, values)| (sku, Fields { names: &RECORD_FIELDS, values }))
            .filter(|(_, f)| f.get("starts_at").is_some())
            .map(|(sku, f)| {
                let (sold_out, sold_out_until) = f.sold_out();
                SaleRecord {
                    flags: SaleFlags {
                        sku: sku.clone(),
                        starts_at: f.u64("starts_at"),
                        ends_at: f.u64("ends_at"),
                        sold_out,
                        sold_out_until,
                        per_user_limit: f.u64("per_user_limit") as u32,
                        stock_left: f.get("stock_left").and_then(|v| v.parse::<i64>().ok()).map(|n| n.max(0) as u64),
                        challenge_bits: f.get("challenge_bits").and_then(|v| v.parse::<u32>().ok()).filter(|b| *b > 0),
                        batches: decode_batches(f.get("batches")),
                    },
                    // Flag changes bump `version`; every sale bumps `seq` (never reused), so the
                    // feed's version also moves when stock is taken and the edge re-reads stock_left.
                    version: f.u64("version") + f.u64("seq"),
                }
            })
            .collect())
    }

    /// Record the edges heard since the last call and read the fleet's roster (see [`crate::edges`]).
    pub async fn fleet(&self, heard: &[String]) -> Result<crate::edges::Fleet, StoreError> {
        let mut inv = self.scripts.edges.prepare_invoke();
        inv.key("sk:{fleet}:edges").key("sk:{fleet}:roster").arg(crate::edges::EDGE_TTL_MS);
        for id in heard {
            inv.arg(id);
        }
        let mut c = self.conn.clone();
        let (edges, generation): (u64, u64) = self.bounded(self.admin_timeout, inv.invoke_async(&mut c)).await?;
        Ok(crate::edges::Fleet { edges, generation })
    }

    /// Expire up to `batch` overdue unpaid orders of `sku`. Returns (expired, examined).
    pub async fn expire_due(&self, sku: &str, batch: u32) -> Result<(u64, u64), StoreError> {
        let k = SkuKeys::new(sku);
        let mut inv = self.scripts.expire.prepare_invoke();
        inv.key(&k.sale).key(&k.orders).key(&k.held).key(&k.pending).arg(batch);
        let mut c = self.conn.clone();
        let r: (u64, u64) = self.bounded(self.admin_timeout, inv.invoke_async(&mut c)).await?;
        Ok(r)
    }

    /// Mark `order_id` paid, if `uid` owns it and it has not expired.
    pub async fn pay(&self, order_id: &str, uid: &str) -> Result<PayResult, StoreError> {
        let Some(sku) = sku_of_order(order_id) else { return Ok(PayResult::NotFound) };
        let k = SkuKeys::new(sku);
        let mut inv = self.scripts.pay.prepare_invoke();
        inv.key(&k.sale).key(&k.orders).key(&k.pending).arg(order_id).arg(uid);
        let mut c = self.conn.clone();
        let r: Vec<String> = self.bounded(self.timeout, inv.invoke_async(&mut c)).await?;
        Ok(match r.first().map(String::as_str) {
            Some("paid") => PayResult::Paid,
            Some("expired") => PayResult::Expired,
            _ => PayResult::NotFound,
        })
    }

    /// Every order `uid` ever got for the given skus, oldest first.
    pub async fn orders_of(&self, uid: &str, skus: &[String]) -> Result<Vec<OrderView>, StoreError> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let cmds = skus.iter().map(|sku| redis::Cmd::hget(SkuKeys::new(sku).history, uid)).collect();
        let histories: Vec<Option<String>> = self.bounded(self.timeout, self.conn.per_key(cmds)).await?;
        let mut cmds = Vec::new();
        let mut asked = Vec::new();
        for (sku, hist) in skus.iter().zip(histories) {
            let Some(hist) = hist else { continue };
            let ids: Vec<String> = hist.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
            let mut c = redis::cmd("HMGET");
            c.arg(SkuKeys::new(sku).orders).arg(&ids);
            cmds.push(c);
            asked.push((sku.clone(), ids));
        }
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let records: Vec<Vec<Option<String>>> = self.bounded(self.timeout, self.conn.per_key(cmds)).await?;
        let mut out = Vec::new();
        for ((sku, ids), recs) in asked.into_iter().zip(records) {
            for (id, rec) in ids.into_iter().zip(recs) {
                let Some(rec) = rec else { continue };
                let mut f = rec.split(' ');
                let (Some(owner), Some(state), Some(created), Some(deadline)) = (f.next(), f.next(), f.next(), f.next()) else {
                    continue;
                };
                if owner != uid {
                    continue;
                }
                let state = match state {
                    "pending" => OrderState::Pending,
                    "paid" => OrderState::Paid,
                    _ => OrderState::Expired,
                };
                out.push(OrderView {
                    order_id: id,
                    sku: sku.clone(),
                    state,
                    created_at: created.parse().unwrap_or(0),
                    pay_by: Some(deadline.parse().unwrap_or(0)),
                });
            }
        }
        out.sort_by_key(|o| o.created_at);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids() {
        assert_eq!(sku_of_order("phone-1.42"), Some("phone-1"));
        assert_eq!(sku_of_order("a.b.1"), None);
        assert_eq!(sku_of_order("phone-1."), None);
        assert_eq!(sku_of_order("phone-1.x"), None);
        assert_eq!(sku_of_order("nodot"), None);
        assert_eq!(sku_of_order("../x.1"), None);
    }

    #[test]
    fn config_validation_names_the_field() {
        let ok = SaleConfig { stock: 10, starts_at: 1, ends_at: 2, per_user_limit: 1, pay_within_s: 900, challenge_bits: 0, batches: Vec::new() };
        assert!(ok.validate().is_ok());
        assert!(SaleConfig { ends_at: 1, ..ok.clone() }.validate().unwrap_err().contains("ends_at"));
        assert!(SaleConfig { per_user_limit: 0, ..ok.clone() }.validate().unwrap_err().contains("per_user_limit"));
        assert!(SaleConfig { pay_within_s: 0, ..ok.clone() }.validate().unwrap_err().contains("pay_within_s"));
        assert!(SaleConfig { stock: MAX_STOCK + 1, ..ok.clone() }.validate().unwrap_err().contains("stock"));
        assert!(SaleConfig { challenge_bits: 31, ..ok.clone() }.validate().unwrap_err().contains("challenge_bits must be 0..=30"));
        assert!(SaleConfig { challenge_bits: 30, ..ok.clone() }.validate().is_ok());
        let two = vec![Batch { at: 1, stock: 4 }, Batch { at: 5, stock: 6 }];
        let batched = SaleConfig { stock: 10, ends_at: 9, batches: two.clone(), ..ok.clone() };
        assert!(batched.validate().is_ok());
        assert!(SaleConfig { stock: 11, ..batched.clone() }.validate().unwrap_err().contains("adds up to 10, but stock says 11"));
        assert!(SaleConfig { ends_at: 5, ..batched.clone() }.validate().unwrap_err().contains("before ends_at"));
        assert_eq!(decode_batches(Some(&encode_batches(&two))), two);
        assert_eq!(decode_batches(None), Vec::new());
        let parsed: SaleConfig = serde_json::from_str(r#"{"stock":10,"starts_at":1,"ends_at":9,"batches":[{"at":1,"stock":4},{"at":5,"stock":6}]}"#).unwrap();
        assert_eq!(parsed, batched);
        assert!(serde_json::from_str::<SaleConfig>(r#"{"stock":1,"starts_at":1,"ends_at":9,"batches":[{"at":1,"stok":1}]}"#).is_err());
        let parsed: SaleConfig = serde_json::from_str(r#"{"stock":5,"starts_at":1,"ends_at":9}"#).unwrap();
        assert_eq!((parsed.per_user_limit, parsed.pay_within_s, parsed.challenge_bits), (1, 900, 0));
        assert!(!serde_json::to_string(&parsed).unwrap().contains("challenge_bits"), "an older origin is never sent the field it does not know");
        assert!(serde_json::from_str::<SaleConfig>(r#"{"stock":5,"starts_at":1,"ends_at":9,"stok":1}"#).is_err());
    }
}
