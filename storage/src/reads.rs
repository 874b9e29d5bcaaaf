//! A thread's read cache for one unit of work, such as a conversation's turn: while a
//! [`ReadScope`] is held, a key read from PostgreSQL on this thread is read from the database
//! once and then remembered, so that the several parts of a turn that look up the same
//! customer, line or plan cost one round trip, not one each.
//!
//! What the thread writes itself is never served stale: a write forgets the key (a
//! transaction, every key), and a transaction's own reads always go to the database. A write
//! made meanwhile by another thread or instance is seen by the next scope, as a turn is
//! answered on the state it found when it started. sled reads are not cached (they cost no
//! round trip).

use std::cell::RefCell;
use std::collections::HashMap;

use crate::Bytes;

/// (backend identity, tree, key) -> the value read.
type Cache = HashMap<(usize, String, Bytes), Option<Bytes>>;

thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// Reads on this thread are cached until this drops (see the module). Scopes nest: an inner
/// one changes nothing.
#[must_use = "reads are cached only while the scope is held"]
pub struct ReadScope {
    outermost: bool,
}

/// Starts caching this thread's reads; see [`ReadScope`].
pub fn read_scope() -> ReadScope {
    let outermost = CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.is_some() {
            return false;
        }
        *cache = Some(HashMap::new());
        true
    });
    ReadScope { outermost }
}

impl Drop for ReadScope {
    fn drop(&mut self) {
        if self.outermost {
            CACHE.with(|cache| *cache.borrow_mut() = None);
        }
    }
}

/// The value remembered for a key, if a scope is held and the key was read in it.
pub(crate) fn cached(backend: usize, tree: &str, key: &[u8]) -> Option<Option<Bytes>> {
    CACHE.with(|cache| {
        let cache = cache.borrow();
        cache.as_ref()?.get(&(backend, tree.to_string(), key.to_vec())).cloned()
    })
}

/// Remembers a value read, if a scope is held.
pub(crate) fn remember(backend: usize, tree: &str, key: &[u8], value: &Option<Bytes>) {
    CACHE.with(|cache| {
        if let Some(cache) = cache.borrow_mut().as_mut() {
            cache.insert((backend, tree.to_string(), key.to_vec()), value.clone());
        }
    });
}

/// Forgets a key this thread is writing.
pub(crate) fn forget(backend: usize, tree: &str, key: &[u8]) {
    CACHE.with(|cache| {
        if let Some(cache) = cache.borrow_mut().as_mut() {
            cache.remove(&(backend, tree.to_string(), key.to_vec()));
        }
    });
}

/// Forgets a whole tree (cleared), or with `tree` `None` everything of the backend (a
/// transaction wrote).
pub(crate) fn forget_all(backend: usize, tree: Option<&str>) {
    CACHE.with(|cache| {
        if let Some(cache) = cache.borrow_mut().as_mut() {
            cache.retain(|(owner, name, _), _| *owner != backend || tree.is_some_and(|tree| tree != name));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_remembered_only_inside_a_scope_and_writes_forget_them() {
        remember(1, "t", b"k", &Some(b"v".to_vec()));
        assert_eq!(cached(1, "t", b"k"), None, "no scope: nothing remembered");
        {
            let _scope = read_scope();
            remember(1, "t", b"k", &Some(b"v".to_vec()));
            remember(1, "t", b"absent", &None);
            remember(1, "u", b"k", &Some(b"u".to_vec()));
            remember(2, "t", b"k", &Some(b"other store".to_vec()));
            {
                let _inner = read_scope();
            }
            assert_eq!(cached(1, "t", b"k"), Some(Some(b"v".to_vec())), "an inner scope ends nothing");
            assert_eq!(cached(1, "t", b"absent"), Some(None), "absence is remembered too");
            forget(1, "t", b"k");
            assert_eq!(cached(1, "t", b"k"), None);
            forget_all(1, Some("t"));
            assert_eq!(cached(1, "t", b"absent"), None);
            assert_eq!(cached(1, "u", b"k"), Some(Some(b"u".to_vec())));
            forget_all(1, None);
            assert_eq!(cached(1, "u", b"k"), None);
            assert_eq!(cached(2, "t", b"k"), Some(Some(b"other store".to_vec())), "another store's stay");
        }
        assert_eq!(cached(2, "t", b"k"), None, "the scope ended");
    }
}
