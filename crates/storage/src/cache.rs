//! A byte-budgeted cache of chunk bytes read from the object store. Objects
//! are immutable, so nothing is ever invalidated; entries leave oldest first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// A chunk is named by its object and byte offset.
type Key = (i64, i64);

pub struct ChunkCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Bytes>,
    order: VecDeque<Key>,
    bytes: usize,
}

impl ChunkCache {
    pub fn new(budget: usize) -> Self {
        ChunkCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, key: Key) -> Option<Bytes> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.get(&key).cloned()
    }

    pub fn contains(&self, key: Key) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.contains_key(&key)
    }

    pub fn insert(&self, key: Key, value: Bytes) {
        if value.len() > self.budget {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.map.contains_key(&key) {
            return;
        }
        inner.bytes += value.len();
        inner.map.insert(key, value);
        inner.order.push_back(key);
        while inner.bytes > self.budget {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(v) = inner.map.remove(&old) {
                inner.bytes -= v.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_over_budget() {
        let c = ChunkCache::new(10);
        c.insert((1, 0), Bytes::from_static(b"12345"));
        c.insert((1, 5), Bytes::from_static(b"12345"));
        assert!(c.get((1, 0)).is_some());
        c.insert((2, 0), Bytes::from_static(b"123"));
        assert!(c.get((1, 0)).is_none());
        assert!(c.get((1, 5)).is_some() && c.get((2, 0)).is_some());
        c.insert((3, 0), Bytes::from(vec![0; 11]));
        assert!(c.get((3, 0)).is_none(), "larger than the whole budget");
    }
}
