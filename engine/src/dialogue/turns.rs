//! One turn at a time per conversation. A turn replays the conversation's state from its log,
//! decides, then appends; two messages to one conversation handled at once would decide on the
//! same state (two "yes" to one confirmation could both act on it). Turns of different
//! conversations run side by side.
//!
//! This holds within one process; instances sharing a database need a lock there too.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The conversations whose turn is being taken.
#[derive(Default)]
pub struct TurnLocks {
    busy: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// Holds a conversation's turn until dropped.
pub struct TurnGuard<'a> {
    locks: &'a TurnLocks,
    conversation_id: String,
}

impl TurnLocks {
    fn busy(&self) -> MutexGuard<'_, HashSet<String>> {
        // The set stays consistent even if a holder panicked (its guard still removes its id).
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no other turn of `conversation_id` is being taken, then holds it.
    pub fn hold(&self, conversation_id: &str) -> TurnGuard<'_> {
        let mut busy = self.busy();
        while busy.contains(conversation_id) {
            busy = self.freed.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        busy.insert(conversation_id.to_string());
        TurnGuard { locks: self, conversation_id: conversation_id.to_string() }
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.locks.busy().remove(&self.conversation_id);
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
        let locks = Arc::new(TurnLocks::default());
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
        let locks = Arc::new(TurnLocks::default());
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
