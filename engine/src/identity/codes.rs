//! One-time codes texted to a line on file: 6 digits, valid for minutes, a few attempts each,
//! one pending code per conversation. Only a keyed hash of the code is stored (HMAC-SHA256
//! under a random key kept in the store), compared in constant time; the code itself exists
//! only in the text message.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;

/// A code waiting to be typed, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCode {
    /// The customer the code proves.
    pub customer_id: String,
    /// The number on file it was texted to.
    pub to: String,
    /// hex(HMAC-SHA256(key, "<conversation>\n<customer>\n<code>")).
    hash: String,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempts_left: u32,
    pub used: bool,
}

/// What a typed code came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right: the customer is verified (the code is spent).
    Verified { customer_id: String },
    /// Wrong; `attempts_left` more may be typed.
    Wrong { customer_id: String, attempts_left: u32 },
    /// Not 6 digits (letters, too short): counts as a wrong attempt.
    Malformed { customer_id: String, attempts_left: u32 },
    /// The code's time is up.
    Expired { customer_id: String },
    /// The code was already used, or its attempts are used up.
    Spent { customer_id: String },
    /// No code was sent in this conversation.
    NoCode,
}

/// The conversation's pending codes (tree `identity_codes`).
#[derive(Clone)]
pub struct Codes {
    tree: storage::Tree,
    key: Vec<u8>,
}

const KEY_RECORD: &[u8] = b"\x00key";

impl Codes {
    pub fn open(db: &storage::Store) -> storage::Result<Self> {
        let tree = db.tree("identity_codes")?;
        let key = match tree.get(KEY_RECORD)? {
            Some(key) => key.to_vec(),
            None => {
                let key: [u8; 32] = rand::rng().random();
                // Two processes racing here both keep whichever key landed first.
                let _ = tree.compare_and_swap(KEY_RECORD, None::<&[u8]>, Some(&key[..]))?;
                tree.get(KEY_RECORD)?.map(|key| key.to_vec()).unwrap_or_else(|| key.to_vec())
            }
        };
        Ok(Self { tree, key })
    }

    /// hex(HMAC-SHA256(key, `text`)) under the store's key (for values handed out and taken back,
    /// like the network verification's `state`).
    pub fn sign(&self, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes keys of any length");
        mac.update(b"sign\n");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn hash(&self, conversation_id: &str, customer_id: &str, code: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes keys of any length");
        mac.update(conversation_id.as_bytes());
        mac.update(b"\n");
        mac.update(customer_id.as_bytes());
        mac.update(b"\n");
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Makes a new code for `customer_id`, to be texted to `to`; any earlier code of the
    /// conversation is void. Returns the code (for the text message only).
    pub fn issue(
        &self,
        conversation_id: &str,
        customer_id: &str,
        to: &str,
        now: DateTime<Utc>,
        valid: Duration,
        attempts: u32,
    ) -> storage::Result<String> {
        let number: u32 = rand::rng().random_range(0..1_000_000);
        let code = format!("{number:0width$}", width = CODE_DIGITS);
        let pending = PendingCode {
            customer_id: customer_id.to_string(),
            to: to.to_string(),
            hash: self.hash(conversation_id, customer_id, &code),
            sent_at: now,
            expires_at: now + valid,
            attempts_left: attempts,
            used: false,
        };
        self.tree.insert(conversation_id.as_bytes(), serde_json::to_vec(&pending).expect("codes serialise"))?;
        self.tree.flush()?;
        Ok(code)
    }

    /// The conversation's pending code, if any.
    pub fn pending(&self, conversation_id: &str) -> storage::Result<Option<PendingCode>> {
        Ok(self.tree.get(conversation_id.as_bytes())?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Checks what the customer typed against the conversation's code, spending an attempt
    /// (or the code) as it goes. Spaces and dashes between digits are ignored.
    pub fn check(&self, conversation_id: &str, typed: &str, now: DateTime<Utc>) -> storage::Result<CodeCheck> {
        let Some(mut pending) = self.pending(conversation_id)? else { return Ok(CodeCheck::NoCode) };
        let customer_id = pending.customer_id.clone();
        if pending.used || pending.attempts_left == 0 {
            return Ok(CodeCheck::Spent { customer_id });
        }
        if now >= pending.expires_at {
            return Ok(CodeCheck::Expired { customer_id });
        }
        let digits = read_code(typed);
        pending.attempts_left -= 1;
        let outcome = match digits {
            Some(code) => {
                let expected = self.hash(conversation_id, &customer_id, &code);
                if bool::from(expected.as_bytes().ct_eq(pending.hash.as_bytes())) {
                    pending.used = true;
                    CodeCheck::Verified { customer_id }
                } else {
                    CodeCheck::Wrong { customer_id, attempts_left: pending.attempts_left }
                }
            }
            None => CodeCheck::Malformed { customer_id, attempts_left: pending.attempts_left },
        };
        self.tree.insert(conversation_id.as_bytes(), serde_json::to_vec(&pending).expect("codes serialise"))?;
        self.tree.flush()?;
        Ok(outcome)
    }
}

/// The code in what a customer typed: exactly 6 digits, with any spaces, dashes or dots between
/// them, and nothing else but a few words around it ("it's 123 456"). `None` otherwise.
pub fn read_code(typed: &str) -> Option<String> {
    let mut groups: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut last_was_separator = false;
    for c in typed.chars() {
        if c.is_ascii_digit() {
            current.push(c);
            last_was_separator = false;
        } else if matches!(c, ' ' | '-' | '.') && !current.is_empty() && !last_was_separator {
            last_was_separator = true;
        } else if !current.is_empty() {
            groups.push(std::mem::take(&mut current));
            last_was_separator = false;
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    let mut found = groups.into_iter().filter(|group| !group.is_empty());
    let code = found.next()?;
    if found.next().is_some() || code.len() != CODE_DIGITS {
        return None;
    }
    // Letters glued to the digits ("12a456") make it no code.
    let glued = typed
        .split_whitespace()
        .any(|word| word.chars().any(|c| c.is_ascii_digit()) && word.chars().any(|c| c.is_alphabetic()));
    (!glued).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> (tempfile::TempDir, Codes) {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::open_sled(&dir.path().join("db"), None).unwrap();
        (dir, Codes::open(&db).unwrap())
    }

    #[test]
    fn codes_are_read_from_what_customers_type() {
        for (typed, expected) in [
            ("123456", Some("123456")),
            ("123 456", Some("123456")),
            ("12-34-56", Some("123456")),
            ("it's 004211 thanks", Some("004211")),
            ("12345", None),
            ("1234567", None),
            ("12a456", None),
            ("abcdef", None),
            ("", None),
            ("123456 and 654321", None),
        ] {
            assert_eq!(read_code(typed).as_deref(), expected, "{typed:?}");
        }
    }

    #[test]
    fn a_code_works_once_within_its_time_and_attempts() {
        let (_dir, codes) = codes();
        let now = Utc::now();
        let code = codes.issue("conv1", "C1001", "555-123-2002", now, Duration::minutes(5), 3).unwrap();
        assert_eq!(code.len(), 6);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert_eq!(
            codes.check("conv1", wrong, now).unwrap(),
            CodeCheck::Wrong { customer_id: "C1001".into(), attempts_left: 2 }
        );
        assert_eq!(codes.check("conv2", &code, now).unwrap(), CodeCheck::NoCode, "another conversation's code");
        assert_eq!(codes.check("conv1", &code, now).unwrap(), CodeCheck::Verified { customer_id: "C1001".into() });
        assert_eq!(codes.check("conv1", &code, now).unwrap(), CodeCheck::Spent { customer_id: "C1001".into() });
    }

    #[test]
    fn expired_and_exhausted_codes_fail() {
        let (_dir, codes) = codes();
        let now = Utc::now();
        let code = codes.issue("c", "C1", "555", now, Duration::minutes(5), 3).unwrap();
        assert_eq!(
            codes.check("c", &code, now + Duration::minutes(6)).unwrap(),
            CodeCheck::Expired { customer_id: "C1".into() }
        );
        let code = codes.issue("c", "C1", "555", now, Duration::minutes(5), 2).unwrap();
        let wrong = if code == "999999" { "888888" } else { "999999" };
        codes.check("c", wrong, now).unwrap();
        assert_eq!(
            codes.check("c", "abc", now).unwrap(),
            CodeCheck::Malformed { customer_id: "C1".into(), attempts_left: 0 }
        );
        assert_eq!(codes.check("c", &code, now).unwrap(), CodeCheck::Spent { customer_id: "C1".into() });
    }

    #[test]
    fn the_store_keeps_no_code() {
        let (_dir, codes) = codes();
        let code = codes.issue("c", "C1", "555", Utc::now(), Duration::minutes(5), 3).unwrap();
        for item in codes.tree.iter().unwrap() {
            let (_, value) = item.unwrap();
            assert!(!String::from_utf8_lossy(&value).contains(&format!("\"{code}\"")));
        }
    }
}
