//! A crowd of shoppers through the public edge, recording every answer, and the contract's
//! invariants checked against what Redis holds afterwards. The fault matrix drives it while it
//! breaks things.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seckill_origin::client::HttpClient;

/// One answer the crowd got (or failed to get).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub uid: String,
    /// `None`: no HTTP answer at all (connection refused, reset, timeout).
    pub status: Option<u16>,
    pub outcome: Option<String>,
    pub order_id: Option<String>,
    pub by: Option<String>,
    /// When the request was sent / answered (Unix ms) and how long it took.
    pub sent_ms: u64,
    pub done_ms: u64,
}

impl Attempt {
    pub fn is(&self, outcome: &str) -> bool {
        self.outcome.as_deref() == Some(outcome)
    }

    /// An answer after which the attempt may or may not have committed: no answer, or a 5xx that
    /// is not the contract's `busy` (Envoy's own 504 after a timeout, a reset).
    pub fn ambiguous(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s >= 500 && !self.is("busy"),
        }
    }

    pub fn latency_ms(&self) -> u64 {
        self.done_ms.saturating_sub(self.sent_ms)
    }
}

/// Shoppers with valid tickets, buying one sku through the edge.
#[derive(Clone)]
pub struct Crowd {
    http: HttpClient,
    url: String,
    shoppers: Arc<Vec<(String, String)>>,
    log: Arc<Mutex<Vec<Attempt>>>,
}

impl Crowd {
    /// `n` shoppers named `<prefix><i>` with tickets signed by the demo secret.
    pub fn new(edge_url: &str, sku: &str, prefix: &str, n: usize) -> Self {
        let exp = crate::now_ms() / 1000 + 3600;
        let shoppers = (0..n)
            .map(|i| {
                let uid = format!("{prefix}{i}");
                let t = seckill_core::ticket::mint(seckill_core::demo::TICKET_SECRET.as_bytes(), &uid, exp).expect("valid uid");
                (uid, format!("Bearer {t}"))
            })
            .collect();
        Crowd {
            http: HttpClient::new(Duration::from_secs(8)),
            url: format!("{edge_url}/api/sales/{sku}/orders"),
            shoppers: Arc::new(shoppers),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// One attempt by shopper `i`.
    pub async fn attempt(&self, i: usize) -> Attempt {
        let (uid, auth) = &self.shoppers[i % self.shoppers.len()];
        let sent_ms = crate::now_ms();
        let r = self.http.send(hyper::Method::POST, &self.url, &[("authorization", auth)], "").await;
        let done_ms = crate::now_ms();
        let a = match r {
            Ok(a) => {
                let v = a.json_value();
                Attempt {
                    uid: uid.clone(),
                    status: Some(a.status.as_u16()),
                    outcome: v["outcome"].as_str().map(str::to_owned),
                    order_id: v["order_id"].as_str().map(str::to_owned),
                    by: a.header("x-seckill-by").map(str::to_owned),
                    sent_ms,
                    done_ms,
                }
            }
            Err(_) => Attempt { uid: uid.clone(), status: None, outcome: None, order_id: None, by: None, sent_ms, done_ms },
        };
        self.log.lock().map(|mut l| l.push(a.clone())).ok();
        a
    }

    /// Run `workers` loops in the background, each cycling through its share of the shoppers with
    /// `pause` between attempts, until [`CrowdRun::stop`].
    pub fn start(&self, workers: usize, pause: Duration) -> CrowdRun {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (crowd, stop) = (self.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    crowd.attempt(i).await;
                    i += workers;
                    tokio::time::sleep(pause).await;
                }
            }));
        }
        CrowdRun { stop, tasks }
    }

    /// Everything recorded so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Attempts sent within `[from_ms, to_ms)`.
    pub fn between(&self, from_ms: u64, to_ms: u64) -> Vec<Attempt> {
        self.attempts().into_iter().filter(|a| a.sent_ms >= from_ms && a.sent_ms < to_ms).collect()
    }
}

pub struct CrowdRun {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CrowdRun {
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Wait until `cond` holds, polling every 20 ms, for at most `within`. Returns the time it took.
pub async fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if cond() {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// An orders hash as Redis holds it (order id → `uid state created deadline`) as order id →
/// (uid, state), the form [`check_invariants`] takes.
pub fn owners_and_states(raw: HashMap<String, String>) -> HashMap<String, (String, String)> {
    raw.into_iter()
        .map(|(id, rec)| {
            let mut f = rec.split(' ');
            (id, (f.next().unwrap_or_default().to_owned(), f.next().unwrap_or_default().to_owned()))
        })
        .collect()
}

/// What the invariant check saw, for the closing notes.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub attempts: usize,
    pub won: usize,
    pub busy: usize,
    pub ambiguous: usize,
    pub orders: usize,
    pub by_edge: usize,
}

/// The contract's invariants over `attempts` and the orders Redis holds (`orders`: order id →
/// (uid, state)), for a sale of `stock` units and `per_user_limit` 1:
/// 1. no oversell, one order per uid;
/// 3. every `won`/`already_won` answer names an order Redis holds for that uid;
///
/// and no order exists whose uid never got an answer under which it could have been committed
/// (`won`, `already_won`, or an ambiguous no-answer / non-`busy` 5xx).
pub fn check_invariants(attempts: &[Attempt], orders: &HashMap<String, (String, String)>, stock: u64) -> Result<Checked, String> {
    let live: Vec<(&String, &String)> = orders.iter().filter(|(_, (_, s))| s != "expired").map(|(id, (u, _))| (id, u)).collect();
    if live.len() as u64 > stock {
        return Err(format!("oversold: {} orders for {stock} units", live.len()));
    }
    let mut per_uid: HashMap<&String, usize> = HashMap::new();
    for (_, uid) in &live {
        *per_uid.entry(uid).or_default() += 1;
    }
    if let Some((uid, n)) = per_uid.iter().find(|(_, n)| **n > 1) {
        return Err(format!("uid {uid} holds {n} orders"));
    }
    for a in attempts.iter().filter(|a| a.is("won") || a.is("already_won")) {
        let id = a.order_id.as_ref().ok_or_else(|| format!("{a:?} has no order id"))?;
        match orders.get(id) {
            Some((uid, _)) if *uid == a.uid => {}
            other => return Err(format!("answer {:?} to {} but Redis has {other:?}", a.outcome, a.uid)),
        }
    }
    let possible: HashSet<&String> =
        attempts.iter().filter(|a| a.is("won") || a.is("already_won") || a.ambiguous()).map(|a| &a.uid).collect();
    for (id, uid) in &live {
        if !possible.contains(uid) {
            return Err(format!("order {id} of {uid}, who never got an answer under which it could commit"));
        }
    }
    Ok(Checked {
        attempts: attempts.len(),
        won: attempts.iter().filter(|a| a.is("won")).count(),
        busy: attempts.iter().filter(|a| a.is("busy")).count(),
        ambiguous: attempts.iter().filter(|a| a.ambiguous()).count(),
        orders: live.len(),
        by_edge: attempts.iter().filter(|a| a.by.as_deref() == Some("edge")).count(),
    })
}
