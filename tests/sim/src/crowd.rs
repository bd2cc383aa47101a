//! The crowd: one tokio task per shopper (per uid), behaving as its population says, against the
//! public edge with tickets minted as a login system would (or, for the benchmark's baseline,
//! straight at the origin as if there were no edge).
//!
//! It exists to turn a [`Scenario`] into traffic shaped like a real sale: shoppers arrive during
//! the pre-start and poll the status, everybody clicks at the start (humans after a reaction delay,
//! scripts on the dot or early), and each keeps going as its kind does. Every request goes through
//! [`Ctx::request`], which enforces the run's bounds (requests, wall time, requests in flight) and
//! records the answer, so nothing can leave the simulator uncounted or unbounded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;
use rand_distr::{Distribution, LogNormal};
use seckill_core::{BuyAnswer, Outcome, SaleStatus};
use seckill_origin::client::HttpClient;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::record::{By, Kind, Label, Record, Recorder, Tally};
use crate::scenario::{Behaviour, Delay, Population, Scenario};

/// Where the crowd sends its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Through the public edge, with `Authorization: Bearer <ticket>` (the real thing).
    Edge,
    /// Straight at the origin with the edge's headers (`x-seckill-edge-key`, `x-seckill-uid`): the
    /// same crowd with no edge in front, for the end-to-end benchmark's baseline.
    Direct,
}

/// The crowd's target and the secrets it needs.
#[derive(Debug, Clone)]
pub struct Target {
    pub mode: Mode,
    /// `http://host:port` of the edge ([`Mode::Edge`]) or the origin ([`Mode::Direct`]).
    pub base_url: String,
    /// Signs the tickets (the stack's `SECKILL_TICKET_SECRET`).
    pub ticket_secret: String,
    /// Only for [`Mode::Direct`].
    pub edge_key: String,
}

/// A crowd ready to run.
#[derive(Debug, Clone)]
pub struct CrowdPlan {
    pub scenario: Scenario,
    pub target: Target,
    /// The sale's `starts_at` (Unix ms).
    pub starts_at_ms: u64,
    /// Prefix of every uid of this run, so a rerun on the same stack meets no memory of the last one.
    pub run_id: String,
    /// Show a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

/// Why the run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Every shopper finished.
    Finished,
    /// `limits.max_requests` was reached.
    MaxRequests,
    /// `limits.max_duration_ms` passed.
    MaxDuration,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct CrowdResult {
    pub tally: Tally,
    /// Unix ms when the first shopper could act, and the sale's start relative to it.
    pub started_epoch_ms: u64,
    pub start_offset: Duration,
    pub wall: Duration,
    pub stop: Stop,
    /// Per population: challenges solved and the solving time in all (the sale's challenge).
    pub solves: Vec<(u64, Duration)>,
    /// Requests that waited over [`QUEUED_AFTER`] for one of the simulator's own connections
    /// (`limits.max_in_flight`), and the longest wait.
    pub queued: (u64, Duration),
}

/// Connections a browser opens to one site at most (HTTP/1.1; Chromium and Firefox: 6): an
/// impatient shopper's clicks beyond them wait in that shopper's browser.
pub const BROWSER_CONNECTIONS: usize = 6;

/// A wait for a connection of the simulator's own longer than this is counted (see [`CrowdResult::queued`]).
pub const QUEUED_AFTER: Duration = Duration::from_millis(20);

/// One answer as a shopper reads it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub by: By,
    pub outcome: Option<Outcome>,
    pub retry_after: Option<Duration>,
    pub sale: Option<SaleStatus>,
    pub starts_at: Option<u64>,
    /// No answer (connection refused or reset, timeout).
    pub error: bool,
    /// Unix ms at which the answer arrived, and how long it took.
    pub received_ms: u64,
    pub rtt: Duration,
    /// A `challenge` answer's challenge.
    pub challenge: Option<seckill_core::challenge::Challenge>,
}

#[derive(Debug, thiserror::Error)]
pub enum CrowdError {
    #[error("the crowd's tasks failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Everything the shoppers share.
struct Ctx {
    http: HttpClient,
    target: Target,
    status_url: String,
    buy_url: String,
    recorder: Recorder,
    in_flight: Semaphore,
    issued: AtomicU64,
    max_requests: u64,
    hit_max: AtomicBool,
    deadline: Instant,
    t0: Instant,
    epoch0: u64,
    timeout: Duration,
    run_id: String,
    populations: Vec<Population>,
    /// Each (population, uid)'s solution to the sale's challenge, once it was asked to solve one.
    proofs: Mutex<HashMap<(usize, u32), String>>,
    /// Per population: challenges solved and the CPU time it took (µs).
    solves: Vec<(AtomicU64, AtomicU64)>,
    /// Requests held back by `in_flight` over [`QUEUED_AFTER`], and the longest wait (µs).
    queued: (AtomicU64, AtomicU64),
}

fn now_ms() -> u64 {
    seckill_stack::now_ms()
}

fn sample(d: &Delay, rng: &mut impl rand::Rng) -> Duration {
    let ms = if d.sigma <= 0.0 || d.median_ms <= 0.0 {
        d.median_ms.max(0.0)
    } else {
        match LogNormal::new(d.median_ms.ln(), d.sigma) {
            Ok(dist) => dist.sample(rng),
            Err(_) => d.median_ms,
        }
    };
    Duration::from_secs_f64(ms.min(600_000.0) / 1000.0)
}

/// `base` ± `spread` (a fraction), so pollers do not march in step.
fn jitter(base: Duration, spread: f64) -> Duration {
    let f = 1.0 + rand::rng().random_range(-spread..=spread);
    base.mul_f64(f.max(0.0))
}

impl Ctx {
    /// The local instant at which this machine's clock reads `epoch_ms`.
    fn at(&self, epoch_ms: u64) -> Instant {
        if epoch_ms >= self.epoch0 {
            self.t0 + Duration::from_millis(epoch_ms - self.epoch0)
        } else {
            self.t0.checked_sub(Duration::from_millis(self.epoch0 - epoch_ms)).unwrap_or(self.t0)
        }
    }

    fn uid(&self, pop: &Population, i: u32) -> String {
        format!("{}-{}-{i}", self.run_id, pop.name)
    }

    /// The headers that say who this shopper is.
    fn credentials(&self, uid: &str) -> Vec<(String, String)> {
        match self.target.mode {
            Mode::Edge => {
                let exp = now_ms() / 1000 + 3600;
                let t = seckill_core::ticket::mint(self.target.ticket_secret.as_bytes(), uid, exp).unwrap_or_default();
                vec![("authorization".into(), format!("Bearer {t}"))]
            }
            Mode::Direct => vec![
                (seckill_core::headers::EDGE_KEY.into(), self.target.edge_key.clone()),
                (seckill_core::headers::UID.into(), uid.to_owned()),
            ],
        }
    }

    fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Sleep until `t`; false when the run's deadline comes first (the shopper must stop).
    async fn sleep_until(&self, t: Instant) -> bool {
        if t >= self.deadline {
            tokio::time::sleep_until(self.deadline.into()).await;
            return false;
        }
        tokio::time::sleep_until(t.into()).await;
        true
    }

    /// Send one request (within the bounds) and record its answer. `None`: the run is over.
    /// One request of a shopper or bot; a buy asked for the sale's challenge is solved (natively,
    /// off the runtime's threads) and sent again at once with its proof, as the page does: both
    /// requests are counted.
    async fn request(&self, client: &HttpClient, kind: Kind, population: usize, uid_n: u32, creds: &[(String, String)]) -> Option<Reply> {
        let reply = self.request_once(client, kind, population, uid_n, creds).await?;
        let Some(challenge) = reply.challenge.clone() else { return Some(reply) };
        let started = Instant::now();
        let nonce = tokio::task::spawn_blocking(move || seckill_core::challenge::solve_challenge(&challenge).map(|n| (challenge, n))).await.ok().flatten();
        let Some((challenge, nonce)) = nonce else { return Some(reply) };
        if let Some((n, us)) = self.solves.get(population) {
            n.fetch_add(1, Ordering::Relaxed);
            us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        let proof = seckill_core::challenge::proof_value(&challenge, nonce);
        self.proofs.lock().unwrap_or_else(|e| e.into_inner()).insert((population, uid_n), proof);
        self.request_once(client, kind, population, uid_n, creds).await
    }

    async fn request_once(&self, client: &HttpClient, kind: Kind, population: usize, uid_n: u32, creds: &[(String, String)]) -> Option<Reply> {
        if self.past_deadline() {
            return None;
        }
        let waiting = Instant::now();
        let _permit = self.in_flight.acquire().await.ok()?;
        let waited = waiting.elapsed();
        if waited > QUEUED_AFTER {
            self.queued.0.fetch_add(1, Ordering::Relaxed);
            self.queued.1.fetch_max(waited.as_micros() as u64, Ordering::Relaxed);
        }
        if self.past_deadline() {
            return None;
        }
        if self.issued.fetch_add(1, Ordering::Relaxed) >= self.max_requests {
            self.hit_max.store(true, Ordering::Relaxed);
            return None;
        }
        let proof = match kind {
            Kind::Buy => self.proofs.lock().unwrap_or_else(|e| e.into_inner()).get(&(population, uid_n)).cloned(),
            Kind::Status => None,
        };
        let mut headers: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if let Some(p) = proof.as_deref() {
            headers.push((seckill_core::challenge::PROOF_HEADER, p));
        }
        let sent = Instant::now();
        let answer = match kind {
            Kind::Status => client.get(&self.status_url, &[]).await,
            Kind::Buy => client.send(hyper::Method::POST, &self.buy_url, &headers, "").await,
        };
        let rtt = sent.elapsed();
        let received_ms = now_ms();
        let reply = match answer {
            Err(e) => {
                tracing::debug!(error = %e, "request failed");
                Reply { status: 0, by: By::Other, outcome: None, retry_after: None, sale: None, starts_at: None, error: true, received_ms, rtt, challenge: None }
            }
            Ok(a) => {
                let status = a.status.as_u16();
                let by = match a.header(seckill_core::headers::BY) {
                    Some("edge") => By::Edge,
                    Some("origin") => By::Origin,
                    // The origin's status answer carries no `x-seckill-by`; through the edge, a
                    // 200 without it was passed on to the origin.
                    _ if kind == Kind::Status && status == 200 => By::Origin,
                    _ => By::Other,
                };
                let header_retry = a.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
                match kind {
                    Kind::Buy => {
                        let body: Option<BuyAnswer> = a.json().ok();
                        let outcome = body.as_ref().map(|b| b.outcome);
                        let retry_after = body.as_ref().and_then(|b| b.retry_after_ms).map(Duration::from_millis).or(header_retry);
                        let starts_at = body.as_ref().and_then(|b| b.starts_at);
                        let challenge = body.and_then(|b| b.challenge);
                        Reply { status, by, outcome, retry_after, sale: None, starts_at, error: false, received_ms, rtt, challenge }
                    }
                    Kind::Status => {
                        let sale: Option<SaleStatus> = if status == 200 { a.json().ok() } else { None };
                        Reply { status, by, outcome: None, retry_after: header_retry, sale, starts_at: None, error: false, received_ms, rtt, challenge: None }
                    }
                }
            }
        };
        let label = if reply.error {
            Label::error()
        } else {
            match (kind, reply.outcome, reply.sale.is_some()) {
                (Kind::Buy, Some(o), _) => Label::outcome(o),
                (Kind::Status, _, true) => Label::ok(),
                _ => Label::http(reply.status),
            }
        };
        self.recorder.record(&Record { population, uid: uid_n, kind, by: reply.by, label, sent, latency: rtt });
        Some(reply)
    }
}

/// What a human's page knows about the sale: its start by the server's clock, as an instant here.
struct PageClock {
    start: Instant,
}

/// Load the page's status until it answers (the page shows the countdown from it: to the sale's
/// start, or to the next batch of a sale released in batches).
async fn open_page(ctx: &Ctx, pop: usize, n: u32) -> Option<PageClock> {
    loop {
        let r = ctx.request(&ctx.http, Kind::Status, pop, n, &[]).await?;
        if let Some(s) = &r.sale {
            // The page's offset: server time at the middle of the round trip.
            let local_mid = r.received_ms.saturating_sub(r.rtt.as_millis() as u64 / 2) as i64;
            let offset = s.server_time as i64 - local_mid;
            // Between the batches of a sale released in batches, the page counts down to the next.
            let start_local = (s.next_batch_at.unwrap_or(s.starts_at) as i64 - offset).max(0) as u64;
            return Some(PageClock { start: ctx.at(start_local) });
        }
        if !ctx.sleep_until(Instant::now() + Duration::from_millis(500)).await {
            return None;
        }
    }
}

/// Poll the status every `every` (± 20 %) until `until`.
async fn poll_until(ctx: &Ctx, pop: usize, n: u32, every: Duration, until: Instant) -> Option<()> {
    loop {
        let next = Instant::now() + jitter(every, 0.2);
        if next >= until {
            return if ctx.sleep_until(until).await { Some(()) } else { None };
        }
        if !ctx.sleep_until(next).await {
            return None;
        }
        ctx.request(&ctx.http, Kind::Status, pop, n, &[]).await?;
    }
}

async fn honest(ctx: Arc<Ctx>, pop: usize, n: u32, arrive: Instant) -> Option<()> {
    let p = ctx_population(&ctx, pop);
    let Behaviour::Honest { poll_every_ms, reaction, give_up_after_ms, max_attempts } = p.behaviour.clone() else { return None };
    let uid = ctx.uid(&p, n);
    let creds = ctx.credentials(&uid);
    if !ctx.sleep_until(arrive).await {
        return None;
    }
    let page = open_page(&ctx, pop, n).await?;
    poll_until(&ctx, pop, n, Duration::from_millis(poll_every_ms), page.start).await?;
    let react = sample(&reaction, &mut rand::rng());
    if !ctx.sleep_until(page.start + react).await {
        return None;
    }
    let first = Instant::now();
    for _ in 0..max_attempts {
        if first.elapsed() > Duration::from_millis(give_up_after_ms) {
            return Some(());
        }
        let r = ctx.request(&ctx.http, Kind::Buy, pop, n, &creds).await?;
        let wait = match r.outcome {
            Some(Outcome::Throttled | Outcome::Busy) => r.retry_after.unwrap_or(Duration::from_secs(1)) + sample(&reaction, &mut rand::rng()),
            Some(Outcome::NotStarted) => {
                let start = r.starts_at.map(|s| ctx.at(s)).unwrap_or(page.start);
                start.saturating_duration_since(Instant::now()) + sample(&reaction, &mut rand::rng())
            }
            None => Duration::from_secs(1),
            // won, already_won, sold_out, ended, unknown_sku, unauthorized, invalid: the page says so.
            Some(_) => return Some(()),
        };
        if !ctx.sleep_until(Instant::now() + wait).await {
            return None;
        }
    }
    Some(())
}

async fn impatient(ctx: Arc<Ctx>, pop: usize, n: u32, arrive: Instant) -> Option<()> {
    let p = ctx_population(&ctx, pop);
    let Behaviour::Impatient { poll_every_ms, reaction, clicks_per_s, click_for_ms } = p.behaviour.clone() else { return None };
    let uid = ctx.uid(&p, n);
    let creds = Arc::new(ctx.credentials(&uid));
    if !ctx.sleep_until(arrive).await {
        return None;
    }
    let page = open_page(&ctx, pop, n).await?;
    poll_until(&ctx, pop, n, Duration::from_millis(poll_every_ms), page.start).await?;
    let begin = page.start + sample(&reaction, &mut rand::rng());
    let end = begin + Duration::from_millis(click_for_ms);
    let done = Arc::new(AtomicBool::new(false));
    // Their browser: clicks beyond its connections to the site wait in this browser, not ahead of
    // other people's requests in the simulator's own budget.
    let browser = Arc::new(Semaphore::new(BROWSER_CONNECTIONS));
    let every = Duration::from_secs_f64(1.0 / clicks_per_s);
    let mut clicks = JoinSet::new();
    let mut at = begin;
    while at < end && !done.load(Ordering::Relaxed) {
        if !ctx.sleep_until(at).await {
            break;
        }
        if done.load(Ordering::Relaxed) {
            break;
        }
        // Clicks do not wait for answers (that is what makes them impatient).
        let (ctx2, creds, done, browser) = (ctx.clone(), creds.clone(), done.clone(), browser.clone());
        clicks.spawn(async move {
            let Ok(_connection) = browser.acquire().await else { return };
            if done.load(Ordering::Relaxed) {
                return;
            }
            let r = ctx2.request(&ctx2.http, Kind::Buy, pop, n, &creds).await;
            match r.and_then(|r| r.outcome) {
                // A win (or learning of one) or the end of the sale is what makes them stop.
                Some(Outcome::Won | Outcome::AlreadyWon | Outcome::Ended) => done.store(true, Ordering::Relaxed),
                None if ctx2.past_deadline() => done.store(true, Ordering::Relaxed),
                _ => {}
            }
        });
        at += jitter(every, 0.3);
    }
    while clicks.join_next().await.is_some() {}
    Some(())
}

async fn scripted_bot(ctx: Arc<Ctx>, pop: usize, n: u32, arrive: Instant) -> Option<()> {
    let p = ctx_population(&ctx, pop);
    let Behaviour::ScriptedBot { connections, lead_ms, pause_ms, loop_for_ms } = p.behaviour.clone() else { return None };
    let uid = ctx.uid(&p, n);
    let creds = Arc::new(ctx.credentials(&uid));
    // Its own connections (its own pool): a script per uid, `connections` loops.
    let client = HttpClient::new(ctx.timeout);
    if !ctx.sleep_until(arrive).await {
        return None;
    }
    let page = open_page(&ctx, pop, n).await?;
    let begin = page.start.checked_sub(Duration::from_millis(lead_ms)).unwrap_or(ctx.t0);
    let end = page.start + Duration::from_millis(loop_for_ms);
    if !ctx.sleep_until(begin).await {
        return None;
    }
    let done = Arc::new(AtomicBool::new(false));
    let mut loops = JoinSet::new();
    for _ in 0..connections {
        let (ctx, creds, done, client) = (ctx.clone(), creds.clone(), done.clone(), client.clone());
        loops.spawn(async move {
            while Instant::now() < end && !done.load(Ordering::Relaxed) {
                let Some(r) = ctx.request(&client, Kind::Buy, pop, n, &creds).await else { return };
                if matches!(r.outcome, Some(Outcome::Won | Outcome::AlreadyWon | Outcome::SoldOut | Outcome::Ended)) {
                    done.store(true, Ordering::Relaxed);
                    return;
                }
                if pause_ms > 0 && !ctx.sleep_until(Instant::now() + Duration::from_millis(pause_ms)).await {
                    return;
                }
            }
        });
    }
    while loops.join_next().await.is_some() {}
    Some(())
}

/// The whole farm is one task: a schedule of (due, uid) served by `connections` workers.
async fn bot_farm(ctx: Arc<Ctx>, pop: usize, arrive: Instant) -> Option<()> {
    let p = ctx_population(&ctx, pop);
    let Behaviour::BotFarm { connections, offset_ms, retry_for_ms } = p.behaviour.clone() else { return None };
    let client = HttpClient::new(ctx.timeout);
    if !ctx.sleep_until(arrive).await {
        return None;
    }
    // The farm's controller reads the start from the public status, like the page does.
    let page = open_page(&ctx, pop, 0).await?;
    let fire = page.start + Duration::from_millis(offset_ms);
    let end = page.start + Duration::from_millis(retry_for_ms);
    let creds: Arc<Vec<Vec<(String, String)>>> = Arc::new((0..p.uids).map(|i| ctx.credentials(&ctx.uid(&p, i))).collect());
    let queue: Arc<Mutex<BinaryHeap<Reverse<(Instant, u32)>>>> = Arc::new(Mutex::new((0..p.uids).map(|i| Reverse((fire, i))).collect()));
    let busy = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        let (ctx, client, creds, queue, busy) = (ctx.clone(), client.clone(), creds.clone(), queue.clone(), busy.clone());
        workers.spawn(async move {
            loop {
                enum Step {
                    Take(u32),
                    Wait(Instant),
                    Empty,
                }
                let step = {
                    let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                    match q.peek().copied() {
                        Some(Reverse((due, i))) if due <= Instant::now() => {
                            busy.fetch_add(1, Ordering::SeqCst);
                            q.pop();
                            Step::Take(i)
                        }
                        Some(Reverse((due, _))) => Step::Wait(due),
                        None => Step::Empty,
                    }
                };
                let next = match step {
                    Step::Take(i) => Some(((), i)),
                    Step::Wait(due) => {
                        if !ctx.sleep_until(due.min(Instant::now() + Duration::from_millis(20))).await {
                            return;
                        }
                        continue;
                    }
                    Step::Empty => None,
                };
                let Some((_, i)) = next else {
                    // Nothing queued: done once no other worker can put a uid back.
                    if busy.load(Ordering::SeqCst) == 0 || Instant::now() >= end {
                        return;
                    }
                    if !ctx.sleep_until(Instant::now() + Duration::from_millis(10)).await {
                        return;
                    }
                    continue;
                };
                let Some(r) = ctx.request(&client, Kind::Buy, pop, i, &creds[i as usize]).await else {
                    busy.fetch_sub(1, Ordering::SeqCst);
                    return;
                };
                let again = match r.outcome {
                    Some(Outcome::Throttled | Outcome::Busy) => Some(Instant::now() + r.retry_after.unwrap_or(Duration::from_secs(1))),
                    Some(Outcome::NotStarted) => Some(r.starts_at.map(|s| ctx.at(s)).unwrap_or(fire).max(Instant::now())),
                    None => Some(Instant::now() + Duration::from_millis(200)),
                    Some(_) => None,
                };
                if let Some(due) = again.filter(|d| *d < end) {
                    queue.lock().unwrap_or_else(|e| e.into_inner()).push(Reverse((due, i)));
                }
                busy.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    Some(())
}

fn ctx_population(ctx: &Ctx, pop: usize) -> Population {
    ctx.populations[pop].clone()
}

/// A uid's arrival: spread evenly over the population's window before the start.
fn arrival(p: &Population, n: u32, start: Instant, t0: Instant) -> Instant {
    let window = Duration::from_millis(p.arrive_before_start_ms);
    let frac = (f64::from(n) + rand::rng().random_range(0.0..1.0)) / f64::from(p.uids.max(1));
    let at = start.checked_sub(window).unwrap_or(t0) + window.mul_f64(frac.clamp(0.0, 1.0));
    at.max(t0)
}

/// Run the crowd to the end (every shopper done) or to a bound.
pub async fn run(plan: CrowdPlan) -> Result<CrowdResult, CrowdError> {
    let s = &plan.scenario;
    let t0 = Instant::now();
    let epoch0 = now_ms();
    let timeout = Duration::from_millis(s.limits.request_timeout_ms);
    let base = plan.target.base_url.trim_end_matches('/').to_owned();
    let sku = &s.sale.sku;
    let recorder = Recorder::new(s.populations.len(), t0);
    let ctx = Arc::new(Ctx {
        http: HttpClient::new(timeout),
        status_url: format!("{base}/api/sales/{sku}"),
        buy_url: format!("{base}/api/sales/{sku}/orders"),
        target: plan.target.clone(),
        recorder: recorder.clone(),
        in_flight: Semaphore::new(s.limits.max_in_flight),
        issued: AtomicU64::new(0),
        max_requests: s.limits.max_requests,
        hit_max: AtomicBool::new(false),
        deadline: t0 + Duration::from_millis(s.limits.max_duration_ms),
        t0,
        epoch0,
        timeout,
        run_id: plan.run_id.clone(),
        populations: s.populations.clone(),
        proofs: Mutex::new(HashMap::new()),
        solves: s.populations.iter().map(|_| (AtomicU64::new(0), AtomicU64::new(0))).collect(),
        queued: (AtomicU64::new(0), AtomicU64::new(0)),
    });
    let start = ctx.at(plan.starts_at_ms);
    let bar = crate::progress::Progress::start(plan.progress, recorder.clone(), s.limits.max_requests, start);
    let mut tasks = JoinSet::new();
    for (pi, p) in s.populations.iter().enumerate() {
        match &p.behaviour {
            Behaviour::BotFarm { .. } => {
                let at = arrival(p, 0, start, t0);
                tasks.spawn(bot_farm(ctx.clone(), pi, at));
            }
            b => {
                for n in 0..p.uids {
                    let at = arrival(p, n, start, t0);
                    let ctx = ctx.clone();
                    match b {
                        Behaviour::Honest { .. } => tasks.spawn(honest(ctx, pi, n, at)),
                        Behaviour::Impatient { .. } => tasks.spawn(impatient(ctx, pi, n, at)),
                        _ => tasks.spawn(scripted_bot(ctx, pi, n, at)),
                    };
                }
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        r?;
    }
    let wall = t0.elapsed();
    bar.finish();
    let stop = if ctx.hit_max.load(Ordering::Relaxed) {
        Stop::MaxRequests
    } else if Instant::now() >= ctx.deadline {
        Stop::MaxDuration
    } else {
        Stop::Finished
    };
    let solves = ctx.solves.iter().map(|(n, us)| (n.load(Ordering::Relaxed), Duration::from_micros(us.load(Ordering::Relaxed)))).collect();
    let queued = (ctx.queued.0.load(Ordering::Relaxed), Duration::from_micros(ctx.queued.1.load(Ordering::Relaxed)));
    Ok(CrowdResult { tally: recorder.snapshot(), started_epoch_ms: epoch0, start_offset: start.saturating_duration_since(t0), wall, stop, solves, queued })
}
