//! The append-only audit log: who did what to which account, with which arguments, and what
//! came of it. Entries are written in the same transaction as the change they record.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, IdempotencyKey};
use super::safety::Actor;

/// One audited action (a change, a payment, a refusal of either, or a handoff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Monotonic across the store (not contiguous).
    pub sequence: u64,
    /// Wall-clock time of the entry.
    pub at: DateTime<Utc>,
    /// The business date the action ran under (the store's clock).
    pub business_date: NaiveDate,
    /// The customer whose account the action concerns.
    pub customer_id: Option<CustomerId>,
    pub actor: Actor,
    pub action: String,
    pub args: serde_json::Value,
    pub idempotency_key: Option<IdempotencyKey>,
    pub result: AuditResult,
    /// True when the operator's endpoint (a hook) took part.
    pub via_hook: bool,
}

/// What came of an audited action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AuditResult {
    Done { output: serde_json::Value },
    Refused { code: String, message: String },
}

/// Key of an audit entry: the customer id (or `~` for none), a zero byte, the sequence number
/// big-endian, so one customer's entries are one prefix scan in order.
pub(crate) struct AuditKey(Vec<u8>);

const NO_CUSTOMER: &[u8] = b"~";

impl AuditKey {
    pub(crate) fn new(customer_id: Option<&CustomerId>, sequence: u64) -> Self {
        let mut key = Self::prefix(customer_id);
        key.extend_from_slice(&sequence.to_be_bytes());
        Self(key)
    }

    pub(crate) fn prefix(customer_id: Option<&CustomerId>) -> Vec<u8> {
        let mut key = customer_id.map_or(NO_CUSTOMER, |id| id.as_str().as_bytes()).to_vec();
        key.push(0);
        key
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_group_by_customer_and_sort_by_sequence() {
        let c1 = CustomerId::parse("C1").unwrap();
        let c10 = CustomerId::parse("C10").unwrap();
        let a = AuditKey::new(Some(&c1), 2);
        let b = AuditKey::new(Some(&c1), 300);
        assert!(a.as_bytes() < b.as_bytes());
        assert!(a.as_bytes().starts_with(&AuditKey::prefix(Some(&c1))));
        // C1's prefix is not a prefix of C10's keys.
        assert!(!AuditKey::new(Some(&c10), 1).as_bytes().starts_with(&AuditKey::prefix(Some(&c1))));
    }
}
