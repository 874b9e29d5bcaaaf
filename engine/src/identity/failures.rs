//! Failed proofs per customer (wrong codes, a name and date of birth that match nobody's),
//! kept with their times so a lockout holds across conversations and channels and ends by
//! itself when the window passes; an agent can clear it.

use chrono::{DateTime, Utc};

/// Most failures kept per customer (older ones fall out of any sensible window first).
const MAX_KEPT: usize = 100;

/// Failed proofs by customer (tree `identity_failures`: customer id -> JSON list of times).
#[derive(Clone)]
pub struct Failures {
    tree: storage::Tree,
}

impl Failures {
    pub fn open(db: &storage::Store) -> storage::Result<Self> {
        Ok(Self { tree: db.tree("identity_failures")? })
    }

    fn times(&self, customer_id: &str) -> storage::Result<Vec<DateTime<Utc>>> {
        Ok(self
            .tree
            .get(customer_id.as_bytes())?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default())
    }

    /// Records one failed proof at `at` (durably: it must survive a crash to count).
    pub fn record(&self, customer_id: &str, at: DateTime<Utc>) -> storage::Result<()> {
        self.tree.update_and_fetch(customer_id.as_bytes(), |old| {
            let mut times: Vec<DateTime<Utc>> =
                old.and_then(|bytes| serde_json::from_slice(bytes).ok()).unwrap_or_default();
            times.push(at);
            if times.len() > MAX_KEPT {
                times.drain(..times.len() - MAX_KEPT);
            }
            Some(serde_json::to_vec(&times).expect("times serialise"))
        })?;
        self.tree.flush()?;
        Ok(())
    }

    /// Failed proofs since `since`.
    pub fn count_since(&self, customer_id: &str, since: DateTime<Utc>) -> storage::Result<usize> {
        Ok(self.times(customer_id)?.into_iter().filter(|at| *at >= since).count())
    }

    /// Forgets the customer's failures (an agent's unlock).
    pub fn clear(&self, customer_id: &str) -> storage::Result<()> {
        self.tree.remove(customer_id.as_bytes())?;
        self.tree.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn failures_count_in_their_window_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::open_sled(&dir.path().join("db"), None).unwrap();
        let failures = Failures::open(&db).unwrap();
        let now = Utc::now();
        failures.record("C1", now - Duration::hours(30)).unwrap();
        for _ in 0..3 {
            failures.record("C1", now).unwrap();
        }
        failures.record("C2", now).unwrap();
        assert_eq!(failures.count_since("C1", now - Duration::hours(24)).unwrap(), 3);
        assert_eq!(failures.count_since("C1", now - Duration::hours(48)).unwrap(), 4);
        failures.clear("C1").unwrap();
        assert_eq!(failures.count_since("C1", now - Duration::hours(48)).unwrap(), 0);
        assert_eq!(failures.count_since("C2", now - Duration::hours(1)).unwrap(), 1);
    }
}
