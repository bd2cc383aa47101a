//! Worker-shared state of the native build: plain shared memory in the Envoy process.
//!
//! Proxy-wasm gives the filter Envoy's shared data (key → bytes with a compare-and-swap token,
//! shared by every worker's VM). A native module lives in Envoy's address space, so the same
//! semantics are a map behind locks: [`Store::get`] returns the value and its token, and
//! [`Store::set`] with a token fails with [`SetError::CasMismatch`] unless the key still has it
//! (a write to an absent key always succeeds, as in Envoy). The map is split into
//! [`SHARDS`] independently locked shards so two workers rarely wait on each other.
//!
//! Bounded exactly as the proxy-wasm build: the logic only ever writes the fixed set of keys it
//! creates up front (`init_keys`: the slot buckets, the flags, the lease, the worker count), each
//! value of bounded size, whatever the number of uids.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use seckill_edge::{HostError, SetError, Shared};

/// Number of independently locked parts of the map.
pub const SHARDS: usize = 64;

type Shard = HashMap<String, (Vec<u8>, u32)>;

/// One filter configuration's shared data (the proxy-wasm `vm_id` namespace).
#[derive(Debug)]
pub struct Store {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    next_cas: AtomicU32,
}

impl Default for Store {
    fn default() -> Self {
        Store { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), hasher: RandomState::new(), next_cas: AtomicU32::new(1) }
    }
}

impl Store {
    /// The shard of `key`, locked (a lock poisoned by a caught panic is still usable: every
    /// update below leaves the map consistent before it can panic).
    fn shard(&self, key: &str) -> Result<MutexGuard<'_, Shard>, HostError> {
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        let m = self.shards.get(i).ok_or(HostError("shared data shard"))?;
        Ok(m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn token(&self) -> u32 {
        // Never 0, so a token is always `Some` and distinct from the previous one of its key.
        let t = self.next_cas.fetch_add(1, Ordering::Relaxed);
        if t == 0 {
            self.next_cas.fetch_add(1, Ordering::Relaxed)
        } else {
            t
        }
    }

    pub fn get(&self, key: &str) -> Result<Shared, HostError> {
        let shard = self.shard(key)?;
        Ok(match shard.get(key) {
            Some((v, cas)) => Shared { value: Some(v.clone()), cas: Some(*cas) },
            None => Shared::default(),
        })
    }

    pub fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        let token = self.token();
        let mut shard = self.shard(key)?;
        match shard.get_mut(key) {
            Some(entry) => {
                if cas.is_some_and(|c| c != entry.1) {
                    return Err(SetError::CasMismatch);
                }
                entry.0.clear();
                entry.0.extend_from_slice(value);
                entry.1 = token;
            }
            None => {
                shard.insert(key.to_owned(), (value.to_vec(), token));
            }
        }
        Ok(())
    }
}
