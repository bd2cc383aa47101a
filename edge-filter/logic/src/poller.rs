//! The background flags poller: exactly one worker at a time fetches the origin's feed.
//!
//! Every worker ticks (every `poll_interval_ms`); on each tick it tries to take or renew a lease
//! in shared data ([`keys::LEASE`], CAS-protected: owner worker id + expiry). Only the holder
//! dispatches `GET {feed_path}` to `origin_cluster` and stores the answer with
//! [`flags::store_feed`]. A holder that stops ticking loses the lease after `Config::lease_ms`
//! and another worker takes over. A failed poll keeps the last flags (see `flags`).
//!
//! This module also creates the fixed set of shared-data keys at start-up ([`init_keys`]) and
//! hands out worker ids ([`claim_worker_id`]).

use seckill_core::headers;

use crate::config::Config;
use crate::flags::{self, FeedError, Meta, Overrides, Stored};
use crate::host::{update, Counter, Host, Level};
use crate::keys;
use crate::slots::{bucket_key, Bucket};

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// The poller lease: `"SL\x01\x00"`, owner u64 LE, expires_at_ms u64 LE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    pub owner: u64,
    pub expires_at_ms: u64,
}

impl Lease {
    pub fn decode(value: Option<&[u8]>) -> Lease {
        let Some(b) = value else { return Lease::default() };
        if b.len() != 20 || b.get(0..4) != Some(&b"SL\x01\x00"[..]) {
            return Lease::default();
        }
        match (read_u64(b, 4), read_u64(b, 12)) {
            (Some(owner), Some(expires_at_ms)) => Lease { owner, expires_at_ms },
            _ => Lease::default(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"SL\x01\x00".to_vec();
        out.extend_from_slice(&self.owner.to_le_bytes());
        out.extend_from_slice(&self.expires_at_ms.to_le_bytes());
        out
    }
}

/// Create every shared-data key this configuration uses, once per Envoy process (a marker in
/// [`keys::INIT`] records the largest `buckets` done). Envoy's shared data has no atomic
/// "create if absent", and a write to an absent key ignores CAS, so creating bucket keys lazily on
/// the request path could let two workers' first writes race; creating them all up front leaves
/// every later write CAS-checked. Returns how many keys were created.
pub fn init_keys<H: Host + ?Sized>(host: &H, buckets: u32, slots_per_bucket: u32) -> Result<u32, Counter> {
    let done = host.get_shared(keys::INIT).map_err(|_| Counter::HostErrors)?;
    let done_upto = done.value.as_deref().filter(|v| v.len() == 8).and_then(|v| read_u64(v, 0));
    if done_upto.is_some_and(|n| n >= u64::from(buckets)) {
        return Ok(0);
    }
    let mut created = 0;
    let mut create = |key: &str, value: &[u8]| -> Result<(), Counter> {
        if host.get_shared(key).map_err(|_| Counter::HostErrors)?.value.is_none() {
            host.set_shared(key, value, None).map_err(|_| Counter::HostErrors)?;
            created += 1;
        }
        Ok(())
    };
    create(keys::META, &Meta::default().encode())?;
    create(keys::FEED, b"")?;
    create(keys::SOLD, &Overrides::default().encode())?;
    create(keys::LEASE, &Lease::default().encode())?;
    create(keys::WORKERS, &0u64.to_le_bytes())?;
    // Full size from the start (see `slots`): the slots' memory is taken once, here.
    let empty = Bucket::default().encode_fixed(slots_per_bucket as usize);
    for i in 0..buckets {
        create(&bucket_key(i), &empty)?;
    }
    update(host, keys::INIT, 8, |cur| {
        let prev = cur.filter(|v| v.len() == 8).and_then(|v| read_u64(v, 0)).unwrap_or(0);
        (Some(prev.max(u64::from(buckets)).to_le_bytes().to_vec()), ())
    })?;
    Ok(created)
}

/// A process-unique id for this worker's VM (used as the lease owner). Ids start at 1.
pub fn claim_worker_id<H: Host + ?Sized>(host: &H, retries: u32) -> Result<u64, Counter> {
    update(host, keys::WORKERS, retries, |cur| {
        let prev = cur.filter(|v| v.len() == 8).and_then(|v| read_u64(v, 0)).unwrap_or(0);
        let next = prev.wrapping_add(1).max(1);
        (Some(next.to_le_bytes().to_vec()), next)
    })
}

/// How many worker ids were claimed so far (the VMs sharing this store), if the counter exists.
pub fn claimed_workers<H: Host + ?Sized>(host: &H) -> Result<Option<u64>, Counter> {
    let cur = host.get_shared(keys::WORKERS).map_err(|_| Counter::HostErrors)?;
    Ok(cur.value.as_deref().filter(|v| v.len() == 8).and_then(|v| read_u64(v, 0)))
}

/// A feed request for the glue to dispatch with `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    pub cluster: String,
    pub headers: Vec<(&'static str, String)>,
    pub timeout_ms: u64,
}

/// One worker's poller state.
#[derive(Debug)]
pub struct Poller {
    worker_id: u64,
    in_flight: Option<(u32, u64)>,
    last_dispatch_ms: Option<u64>,
    holding: bool,
    /// The last poll failed (failures are logged on the transition only, not 10 times a second).
    failing: bool,
}

impl Poller {
    pub fn new(worker_id: u64) -> Poller {
        Poller { worker_id, in_flight: None, last_dispatch_ms: None, holding: false, failing: false }
    }

    pub fn worker_id(&self) -> u64 {
        self.worker_id
    }

    /// True while this worker held the lease at its last tick.
    pub fn is_holder(&self) -> bool {
        self.holding
    }

    fn hold_lease<H: Host + ?Sized>(&mut self, host: &H, cfg: &Config, now: u64) -> bool {
        let me = self.worker_id;
        let res = update(host, keys::LEASE, cfg.cas_retries, |cur| {
            let l = Lease::decode(cur);
            if l.owner != me && l.owner != 0 && l.expires_at_ms > now {
                return (None, false);
            }
            (Some(Lease { owner: me, expires_at_ms: now + cfg.lease_ms() }.encode()), true)
        });
        let held = match res {
            Ok(h) => h,
            Err(c) => {
                host.count(c);
                false
            }
        };
        if held != self.holding {
            host.log(Level::Info, &format!("worker {me} {} the flags poller lease", if held { "took" } else { "lost" }));
        }
        self.holding = held;
        held
    }

    /// Called on every tick: returns a request to dispatch when this worker is the poller and a
    /// poll is due.
    pub fn on_tick<H: Host + ?Sized>(&mut self, host: &H, cfg: &Config, now: u64) -> Option<PollRequest> {
        if let Some((_, started)) = self.in_flight {
            // Envoy answers every dispatched call (at worst with a timeout); this is only a guard
            // against a callback that never comes.
            if now.saturating_sub(started) < cfg.poll_timeout_ms + 2 * cfg.poll_interval_ms {
                // Keep the lease while waiting, so nobody else starts a duplicate poll.
                self.hold_lease(host, cfg, now);
                return None;
            }
            self.in_flight = None;
        }
        if !self.hold_lease(host, cfg, now) {
            return None;
        }
        // Ticks are not exact; half an interval of slack keeps the rate at about one poll per tick.
        if self.last_dispatch_ms.is_some_and(|t| now.saturating_sub(t) < cfg.poll_interval_ms / 2) {
            return None;
        }
        let mut headers = vec![
            (":method", "GET".to_owned()),
            (":path", cfg.feed_path.clone()),
            (":authority", cfg.origin_authority.clone()),
            ("accept", "application/json".to_owned()),
            (headers::EDGE_KEY, cfg.edge_key.clone()),
        ];
        if let Some(id) = &cfg.edge_id {
            headers.push((headers::EDGE_ID, id.clone()));
        }
        Some(PollRequest { cluster: cfg.origin_cluster.clone(), headers, timeout_ms: cfg.poll_timeout_ms })
    }

    /// The glue dispatched the request (token from `dispatch_http_call`).
    pub fn dispatched(&mut self, token: u32, now: u64) {
        self.in_flight = Some((token, now));
        self.last_dispatch_ms = Some(now);
    }

    /// The glue could not dispatch (unknown cluster, ...).
    pub fn dispatch_failed<H: Host + ?Sized>(&mut self, host: &H, now: u64, why: &str) {
        self.last_dispatch_ms = Some(now);
        self.failed(host, &format!("cannot dispatch the flags feed request: {why}"));
    }

    fn failed<H: Host + ?Sized>(&mut self, host: &H, why: &str) {
        host.count(Counter::FeedErrors);
        if !self.failing {
            host.log(Level::Warn, &format!("seckill edge filter: {why}; keeping the last flags"));
        }
        self.failing = true;
    }

    /// A feed answer arrived: `status` is the `:status` (None when Envoy reports a failure such as
    /// a timeout or reset). Returns what was stored.
    pub fn on_response<H: Host + ?Sized>(&mut self, host: &H, cfg: &Config, token: u32, status: Option<u16>, body: Option<&[u8]>, now: u64) -> Option<Stored> {
        if self.in_flight.map(|(t, _)| t) == Some(token) {
            self.in_flight = None;
        }
        host.count(Counter::FeedPolls);
        if status != Some(200) {
            self.failed(host, &format!("flags feed poll failed (status {})", status.map_or("none".to_owned(), |s| s.to_string())));
            return None;
        }
        match flags::store_feed(host, body.unwrap_or(b""), now, cfg.cas_retries) {
            Ok(stored) => {
                if self.failing {
                    host.log(Level::Info, "seckill edge filter: flags feed reachable again");
                }
                self.failing = false;
                if let Stored::Updated { version } = stored {
                    host.count(Counter::FeedUpdates);
                    // Debug: during a sale the version moves with every unit taken (stock_left).
                    host.log(Level::Debug, &format!("seckill edge filter: flags feed version {version} stored"));
                }
                Some(stored)
            }
            Err(FeedError::Store(c)) => {
                host.count(c);
                self.failed(host, "cannot store the flags feed in shared data");
                None
            }
            Err(e) => {
                self.failed(host, &format!("flags feed refused: {e}"));
                None
            }
        }
    }
}
