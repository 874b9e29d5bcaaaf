//! Keyed locks within this process: one holder per key at a time, other keys side by side.
//! [`crate::Store::lock`] takes one of these before the database's own lock, so waiting turns of
//! one instance queue here rather than each holding a database connection.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The keys being held.
#[derive(Default)]
pub struct LocalLocks {
    busy: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// Holds a key until dropped.
pub struct LocalGuard<'a> {
    locks: &'a LocalLocks,
    key: String,
}

impl LocalLocks {
    fn busy(&self) -> MutexGuard<'_, HashSet<String>> {
        // The set stays consistent even if a holder panicked (its guard still removes its id).
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no one else holds `key`, then holds it.
    pub fn hold(&self, key: &str) -> LocalGuard<'_> {
        let mut busy = self.busy();
        while busy.contains(key) {
            busy = self.freed.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        busy.insert(key.to_string());
        LocalGuard { locks: self, key: key.to_string() }
    }
}

impl Drop for LocalGuard<'_> {
    fn drop(&mut self) {
        self.locks.busy().remove(&self.key);
        self.locks.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn turns_of_one_conversation_never_overlap_and_others_run_alongside() {
        let locks = Arc::new(LocalLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most_inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (locks, inside, most_inside) = (locks.clone(), inside.clone(), most_inside.clone());
                std::thread::spawn(move || {
                    let _turn = locks.hold("c1");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most_inside.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Another conversation is not held up by c1's queue.
        let _other = locks.hold("c2");
        drop(_other);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(most_inside.load(Ordering::SeqCst), 1);
        assert!(locks.busy().is_empty(), "every turn let go");
    }

    #[test]
    fn a_panicking_turn_lets_go() {
        let locks = Arc::new(LocalLocks::default());
        let held = locks.clone();
        let result = std::thread::spawn(move || {
            let _turn = held.hold("c1");
            panic!("a turn failed");
        })
        .join();
        assert!(result.is_err());
        drop(locks.hold("c1"));
    }
}
