//! Worker-shared state of the native build: plain shared memory in the Envoy process.
//!
//! Proxy-wasm gives the filter Envoy's shared data (key → bytes with a compare-and-swap token,
//! shared by every worker's VM). A native module lives in Envoy's address space, so the same
//! semantics are memory behind locks: [`Store::get`] returns the value and its token, and
//! [`Store::set`] with a token fails with [`SetError::CasMismatch`] unless the key still has it
//! (a write to an absent key always succeeds, as in Envoy).
//!
//! The slot buckets, read and written by every buy that gets past the worker's own copies, are
//! a dense array indexed by bucket number, one lock each: a bucket key ([`bucket_key`]) costs
//! one parse of its digits, not two string hashes and a key comparison in a map of hundreds of
//! thousands of heap strings. The handful of control keys (flags, lease, worker count) live in
//! a small map behind one lock. A token is the key's own write count (never 0), so a write
//! touches nothing shared beyond its key's lock.
//!
//! Bounded exactly as the proxy-wasm build: the logic only ever writes the fixed set of keys it
//! creates up front (`init_keys`: the slot buckets, the flags, the lease, the worker count), each
//! value of bounded size, whatever the number of uids.
//!
//! [`bucket_key`]: seckill_edge::slots::bucket_key

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use seckill_edge::keys::PREFIX;
use seckill_edge::{HostError, SetError, Shared};

/// One key's value and its token (0: never written).
#[derive(Debug, Default)]
struct Cell {
    value: Vec<u8>,
    cas: u32,
}

impl Cell {
    fn read(&self) -> Shared {
        if self.cas == 0 {
            return Shared::default();
        }
        Shared { value: Some(self.value.clone()), cas: Some(self.cas) }
    }

    /// Write `value` unless `cas` names an older token (Envoy's rule; an absent key takes any).
    fn write(&mut self, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        if self.cas != 0 && cas.is_some_and(|c| c != self.cas) {
            return Err(SetError::CasMismatch);
        }
        self.value.clear();
        self.value.extend_from_slice(value);
        // Never 0, and distinct from every token handed out for this key since 2^32 writes.
        self.cas = self.cas.wrapping_add(1).max(1);
        Ok(())
    }
}

/// One filter configuration's shared data (the proxy-wasm `vm_id` namespace).
#[derive(Debug)]
pub struct Store {
    /// Bucket `i`'s key (`sk1/b/<i>`) is `buckets[i]`.
    buckets: Vec<Mutex<Cell>>,
    /// Every other key.
    others: Mutex<HashMap<String, Cell>>,
}

/// `m` locked, for every lock of the module. A lock poisoned by a panic the hooks caught is
/// still usable: each holder leaves its data consistent before anything that could panic (a
/// store cell is written whole, a queue or list changed by one call).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    /// A store with a dense cell for each of `buckets` slot buckets.
    pub fn new(buckets: u32) -> Store {
        Store { buckets: (0..buckets).map(|_| Mutex::default()).collect(), others: Mutex::default() }
    }

    /// The dense cell of `key`, when it names one of this store's buckets.
    fn bucket(&self, key: &str) -> Option<&Mutex<Cell>> {
        let digits = key.strip_prefix(PREFIX)?.strip_prefix("b/")?;
        // Only the text `bucket_key` writes: digits, no sign (`parse` takes a `+`) and no
        // leading zero (`01` is another key than `1`, as it is in Envoy's map).
        let canonical = digits == "0" || !digits.starts_with('0');
        if !canonical || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.buckets.get(digits.parse::<usize>().ok()?)
    }

    pub fn get(&self, key: &str) -> Result<Shared, HostError> {
        Ok(match self.bucket(key) {
            Some(cell) => lock(cell).read(),
            None => lock(&self.others).get(key).map_or_else(Shared::default, Cell::read),
        })
    }

    pub fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        match self.bucket(key) {
            Some(cell) => lock(cell).write(value, cas),
            None => lock(&self.others).entry(key.to_owned()).or_default().write(value, cas),
        }
    }
}

#[cfg(test)]
mod tests {
    use seckill_edge::slots::bucket_key;

    use super::*;

    /// Envoy's shared-data rules, for a bucket key and a control key alike.
    #[test]
    fn compare_and_swap_as_envoy() {
        let store = Store::new(4);
        for key in [bucket_key(3), seckill_edge::keys::LEASE.to_owned(), bucket_key(4), "sk1/b/+1".to_owned()] {
            assert_eq!(store.get(&key), Ok(Shared::default()), "{key}");
            // A write to an absent key succeeds whatever token it names.
            assert_eq!(store.set(&key, b"a", Some(7)), Ok(()), "{key}");
            let first = store.get(&key).unwrap();
            assert_eq!(first.value.as_deref(), Some(&b"a"[..]), "{key}");
            assert_eq!(store.set(&key, b"b", first.cas), Ok(()), "{key}");
            // The token read before that write is stale now.
            assert_eq!(store.set(&key, b"c", first.cas), Err(SetError::CasMismatch), "{key}");
            let second = store.get(&key).unwrap();
            assert_eq!(second.value.as_deref(), Some(&b"b"[..]), "{key}");
            assert_ne!(second.cas, first.cas, "{key}");
            // Without a token a write always lands.
            assert_eq!(store.set(&key, b"d", None), Ok(()), "{key}");
            assert_eq!(store.get(&key).unwrap().value.as_deref(), Some(&b"d"[..]), "{key}");
        }
    }

    /// Bucket keys land in their own dense cells; keys that only look alike do not.
    #[test]
    fn bucket_keys_are_cells_of_their_own() {
        let store = Store::new(2);
        store.set(&bucket_key(0), b"zero", None).unwrap();
        store.set(&bucket_key(1), b"one", None).unwrap();
        store.set("sk1/b/01", b"padded", None).unwrap();
        store.set("sk1/b/2", b"past the end", None).unwrap();
        assert!(store.bucket(&bucket_key(1)).is_some());
        assert!(store.bucket("sk1/b/2").is_none());
        assert!(store.bucket("sk1/b/").is_none());
        assert!(store.bucket("sk1/b/-1").is_none());
        assert!(store.bucket("sk2/b/1").is_none());
        assert_eq!(store.get(&bucket_key(0)).unwrap().value.as_deref(), Some(&b"zero"[..]));
        assert!(store.bucket("sk1/b/01").is_none());
        assert_eq!(store.get(&bucket_key(1)).unwrap().value.as_deref(), Some(&b"one"[..]));
        assert_eq!(store.get("sk1/b/01").unwrap().value.as_deref(), Some(&b"padded"[..]));
        assert_eq!(store.get("sk1/b/2").unwrap().value.as_deref(), Some(&b"past the end"[..]));
        assert_eq!(lock(&store.others).len(), 2);
    }

    /// A token is never 0 (the logic's "no token"), even when the write count wraps.
    #[test]
    fn tokens_skip_zero_when_they_wrap() {
        let mut cell = Cell { value: Vec::new(), cas: u32::MAX };
        cell.write(b"x", Some(u32::MAX)).unwrap();
        assert_eq!(cell.cas, 1);
    }
}
