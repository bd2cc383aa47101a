//! A Redis and an in-process origin wired together, with the calls tests make most.

use std::collections::HashMap;
use std::time::Duration;

use seckill_origin::client::{Answer, HttpClient};
use seckill_core::demo;
use seckill_origin::store::SaleFigures;
use seckill_origin::Settings;

use crate::inproc::InProcOrigin;
use crate::redis_proc::RedisProc;

pub struct OriginRig {
    pub redis: RedisProc,
    pub origin: InProcOrigin,
    pub http: HttpClient,
}

/// Sale parameters for [`OriginRig::create_sale`].
#[derive(Debug, Clone)]
pub struct SaleSpec {
    pub stock: u64,
    pub starts_at: u64,
    pub ends_at: u64,
    pub per_user_limit: u32,
    pub pay_within_s: u64,
}

impl SaleSpec {
    /// On sale now for an hour.
    pub fn open(stock: u64) -> Self {
        let now = crate::now_ms();
        SaleSpec { stock, starts_at: now - 1_000, ends_at: now + 3_600_000, per_user_limit: 1, pay_within_s: 900 }
    }
}

impl OriginRig {
    /// A fresh Redis and an origin with dev settings (tweaked by `tune`).
    pub async fn start(name: &str, tune: impl FnOnce(&mut Settings)) -> anyhow::Result<Self> {
        let redis = RedisProc::start_scratch(name)?;
        let mut settings = Settings::dev(&redis.url());
        tune(&mut settings);
        let origin = InProcOrigin::start(settings).await?;
        Ok(OriginRig { redis, origin, http: HttpClient::new(Duration::from_secs(10)) })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin.url())
    }

    /// A buy as the edge would forward it for `uid`.
    pub async fn buy(&self, sku: &str, uid: &str) -> Answer {
        self.http
            .send(hyper::Method::POST, &self.url(&format!("/api/sales/{sku}/orders")), &[("x-seckill-edge-key", demo::EDGE_KEY), ("x-seckill-uid", uid)], "")
            .await
            .expect("origin answered")
    }

    /// A request carrying the edge's headers for `uid`.
    pub async fn as_edge(&self, method: &str, path: &str, uid: &str) -> Answer {
        let m = method.parse().expect("method");
        self.http.send(m, &self.url(path), &[("x-seckill-edge-key", demo::EDGE_KEY), ("x-seckill-uid", uid)], "").await.expect("origin answered")
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Answer {
        let m = method.parse().expect("method");
        let auth = demo::ADMIN_AUTHORIZATION.to_owned();
        let body = body.map(|b| serde_json::to_vec(&b).expect("json")).unwrap_or_default();
        self.http.send(m, &self.url(path), &[("authorization", &auth)], body).await.expect("origin answered")
    }

    pub async fn create_sale(&self, sku: &str, s: &SaleSpec) -> SaleFigures {
        let a = self
            .admin(
                "PUT",
                &format!("/admin/sales/{sku}"),
                Some(serde_json::json!({"stock": s.stock, "starts_at": s.starts_at, "ends_at": s.ends_at,
                    "per_user_limit": s.per_user_limit, "pay_within_s": s.pay_within_s})),
            )
            .await;
        assert_eq!(a.status, 200, "create sale: {}", a.text());
        a.json().expect("figures")
    }

    pub async fn figures(&self, sku: &str) -> SaleFigures {
        let a = self.admin("GET", &format!("/admin/sales/{sku}"), None).await;
        assert_eq!(a.status, 200, "figures: {}", a.text());
        a.json().expect("figures")
    }

    /// A blocking Redis connection for checks behind the origin's back.
    pub fn redis_connection(&self) -> redis::Connection {
        redis::Client::open(self.redis.url()).and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5))).expect("redis connection")
    }

    /// Orders of `sku` straight from Redis: order id → (uid, state).
    pub fn orders_in_redis(&self, sku: &str) -> HashMap<String, (String, String)> {
        let mut c = self.redis_connection();
        let raw: HashMap<String, String> = redis::cmd("HGETALL").arg(format!("sk:{{{sku}}}:orders")).query(&mut c).expect("HGETALL");
        raw.into_iter()
            .map(|(id, rec)| {
                let mut f = rec.split(' ');
                let uid = f.next().unwrap_or_default().to_owned();
                let state = f.next().unwrap_or_default().to_owned();
                (id, (uid, state))
            })
            .collect()
    }
}

