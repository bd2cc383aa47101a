//! [`App`]: everything a request handler needs, one per origin process, and its background tasks
//! (the flags refresher and the expiry sweeper).

use std::sync::Arc;

use tokio::task::JoinHandle;

use seckill_core::challenge::ChallengeKey;
use seckill_core::feed::SaleFlags;
use seckill_core::BuyAnswer;

use crate::flags::FlagsSnapshot;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::{Store, StoreError};

/// Everything a request handler needs. One per origin process.
pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub flags: Arc<FlagsSnapshot>,
    pub metrics: Metrics,
    /// Status of skus not (yet) in the snapshot, `None` = no such sale; single-flight loads and
    /// negative caching, so a flood of unknown skus costs Redis one lookup per sku per TTL.
    pub(super) status_cache: moka::future::Cache<String, Option<SaleFlags>>,
    /// The sales' proof-of-work challenges, derived from `edge_key` exactly as every edge does.
    challenges: ChallengeKey,
}

impl App {
    /// An app on a standalone Redis (no I/O: it connects when Redis is up). For a cluster, see
    /// [`App::connect`].
    pub fn new(settings: Settings) -> Result<Arc<App>, StoreError> {
        let url = match &settings.redis {
            crate::redis_conn::RedisTarget::Standalone(url) => url.clone(),
            other => return Err(StoreError::Protocol(format!("{} needs App::connect", other.describe()))),
        };
        let store = Store::new(&url, settings.redis_timeout, settings.reply_grace, settings.admin_timeout)?;
        Ok(Self::with_store(settings, store))
    }

    /// An app on `settings.redis`, standalone or cluster; a cluster is reached now (a node list
    /// that reaches none is an error here).
    pub async fn connect(settings: Settings) -> Result<Arc<App>, StoreError> {
        let store = Store::connect(&settings.redis, settings.durability, settings.redis_timeout, settings.reply_grace, settings.admin_timeout).await?;
        Ok(Self::with_store(settings, store))
    }

    fn with_store(settings: Settings, store: Store) -> Arc<App> {
        let status_cache = moka::future::Cache::builder().max_capacity(100_000).time_to_live(settings.status_cache_ttl).build();
        let challenges = ChallengeKey::new(settings.edge_key.as_bytes());
        Arc::new(App { settings, store, flags: Arc::new(FlagsSnapshot::new()), metrics: Metrics::new(), status_cache, challenges })
    }

    /// Start the flags refresher and the expiry sweeper. The caller aborts them at shutdown.
    pub fn spawn_background(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let refresher = {
            let app = self.clone();
            tokio::spawn(async move {
                let flags = app.flags.clone();
                flags
                    .run_refresher(app.store.clone(), app.settings.flags_refresh, |e| {
                        app.metrics.redis_errors.inc();
                        tracing::debug!(error = %e, "flags refresh failed");
                    })
                    .await
            })
        };
        let sweeper = {
            let app = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(app.settings.expiry_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    app.expire_once().await;
                }
            })
        };
        vec![refresher, sweeper]
    }

    /// Expire every overdue unpaid order of every sale. Returns how many expired.
    pub async fn expire_once(&self) -> u64 {
        const BATCH: u32 = 200;
        let skus: Vec<String> = self.flags.get().feed.sales.iter().map(|s| s.sku.clone()).collect();
        let mut total = 0;
        for sku in skus {
            loop {
                match self.store.expire_due(&sku, BATCH).await {
                    Ok((expired, examined)) => {
                        total += expired;
                        self.metrics.orders_expired.inc_by(expired);
                        if expired > 0 {
                            tracing::info!(sku, expired, "unpaid orders expired, units back on sale");
                            self.flags.poke();
                        }
                        if examined < BATCH as u64 {
                            break;
                        }
                    }
                    Err(e) => {
                        self.metrics.redis_errors.inc();
                        tracing::debug!(error = %e, "expiry sweep failed");
                        break;
                    }
                }
            }
        }
        total
    }

    /// From the sale's start, a sale with a challenge needs the uid's solution to it (`Err`: the
    /// `challenge` answer, with the challenge to solve). The edge checked it already; this covers
    /// a buy an edge passed on without flags.
    pub(super) fn check_proof(&self, flags: &SaleFlags, uid: &str, proof: Option<&str>) -> Result<(), BuyAnswer> {
        let Some(bits) = flags.challenge().filter(|_| crate::now_ms() >= flags.starts_at) else { return Ok(()) };
        self.challenges.check(uid, &flags.sku, flags.starts_at, bits, proof).map_err(|why| {
            let issued = self.challenges.issue(uid, &flags.sku, flags.starts_at, bits);
            BuyAnswer { sku: Some(flags.sku.clone()), ..BuyAnswer::challenge(issued, &why) }
        })
    }

    /// The flags of `sku`: from the snapshot, else from Redis through the status cache.
    pub(super) async fn sale_flags(&self, sku: &str) -> Result<Option<SaleFlags>, StoreError> {
        if let Some(f) = self.flags.get().by_sku.get(sku) {
            return Ok(Some(f.clone()));
        }
        let store = self.store.clone();
        let key = sku.to_owned();
        self.status_cache
            .try_get_with(key.clone(), async move { Ok::<_, StoreError>(store.sale_records(&[key]).await?.pop().map(|r| r.flags)) })
            .await
            .map_err(|e: Arc<StoreError>| StoreError::Protocol(e.to_string()))
    }
}
