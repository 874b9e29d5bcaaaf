//! A small least-recently-used cache of query embeddings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Maps normalised query text to its embedding; evicts the least recently used entry.
pub(crate) struct QueryCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (Arc<[f32]>, u64)>,
    clock: u64,
    hits: u64,
    misses: u64,
}

impl QueryCache {
    pub fn new(capacity: usize) -> Self {
        QueryCache { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// The cache key: whitespace-collapsed text (the encoder is case-insensitive for MiniLM but
    /// not in general, so case is kept).
    pub fn key(query: &str) -> String {
        query.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub fn get(&self, key: &str) -> Option<Arc<[f32]>> {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.clock += 1;
        let clock = inner.clock;
        match inner.entries.get_mut(key) {
            Some((vector, last_used)) => {
                *last_used = clock;
                let vector = vector.clone();
                inner.hits += 1;
                Some(vector)
            }
            None => {
                inner.misses += 1;
                None
            }
        }
    }

    pub fn insert(&self, key: String, vector: Arc<[f32]>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.clock += 1;
        let clock = inner.clock;
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            // O(capacity) eviction; capacities are small (about a thousand entries).
            if let Some(oldest) = inner.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone()) {
                inner.entries.remove(&oldest);
            }
        }
        inner.entries.insert(key, (vector, clock));
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (inner.hits, inner.misses)
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let cache = QueryCache::new(2);
        let v = |x: f32| -> Arc<[f32]> { Arc::from(vec![x]) };
        cache.insert("a".into(), v(1.0));
        cache.insert("b".into(), v(2.0));
        assert!(cache.get("a").is_some()); // a is now more recent than b
        cache.insert("c".into(), v(3.0));
        assert!(cache.get("b").is_none());
        assert_eq!(cache.get("a").unwrap()[0], 1.0);
        assert_eq!(cache.get("c").unwrap()[0], 3.0);
        assert_eq!(cache.stats(), (3, 1));
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let cache = QueryCache::new(0);
        cache.insert("a".into(), Arc::from(vec![1.0]));
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn keys_collapse_whitespace() {
        assert_eq!(QueryCache::key("  late   fee\n"), "late fee");
    }
}
