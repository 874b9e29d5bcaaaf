//! Identifiers and other small validated strings: every value went through `parse`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a string was not accepted as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} is not valid: {why}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// Longest identifier accepted (ids come from files, the dialogue and HTTP).
pub const MAX_ID_CHARS: usize = 64;

fn check_id(kind: &'static str, raw: &str) -> Result<(), InvalidId> {
    let fail = |why| Err(InvalidId { kind, value: raw.chars().take(80).collect(), why });
    if raw.is_empty() {
        return fail("it is empty");
    }
    if raw.chars().count() > MAX_ID_CHARS {
        return fail("it is longer than 64 characters");
    }
    if !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return fail("only letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schemars(with = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts ASCII letters, digits, `-`, `_` and `.`, 1 to 64 characters (surrounding
            /// whitespace is trimmed).
            pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidId> {
                let raw = raw.into();
                let trimmed = raw.trim();
                check_id($kind, trimmed)?;
                Ok(Self(trimmed.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(raw: String) -> Result<Self, InvalidId> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(raw: &str) -> Result<Self, InvalidId> {
                Self::parse(raw)
            }
        }
    };
}

string_id!(
    /// A customer id such as `C1001`.
    CustomerId,
    "customer id"
);
string_id!(
    /// A line id such as `L1002`.
    LineId,
    "line id"
);
string_id!(
    /// A bill id such as `B1005`.
    BillId,
    "bill id"
);
string_id!(
    /// A plan id such as `P1003`.
    PlanId,
    "plan id"
);
string_id!(
    /// A device id such as `D1001`.
    DeviceId,
    "device id"
);
string_id!(
    /// A payment id, minted by the store when a payment is taken.
    PaymentId,
    "payment id"
);
string_id!(
    /// The conversation a customer actor speaks in (minted by the dialogue engine).
    ConversationId,
    "conversation id"
);

/// The one normalisation phone numbers are compared by: the digits, without the country code
/// of an 11-digit North American number, so `555-123-2002`, `(555) 123 2002`, `+1 555 123 2002`
/// and WhatsApp's `15551232002` are one number.
pub fn phone_key(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix('1') {
        Some(national) if digits.len() == 11 => national.to_string(),
        _ => digits,
    }
}

/// A phone number as written (`555-123-2002`), compared by [`phone_key`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts digits with the usual punctuation (`+`, `-`, `.`, spaces, parentheses); 7 to 15 digits.
    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidId> {
        let raw = raw.into();
        let trimmed = raw.trim();
        let fail = |why| Err(InvalidId { kind: "phone number", value: trimmed.chars().take(80).collect(), why });
        if trimmed.chars().count() > 32 {
            return fail("it is longer than 32 characters");
        }
        if !trimmed.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | ' ' | '(' | ')')) {
            return fail("only digits, spaces and + - . ( ) are allowed");
        }
        let n_digits = trimmed.chars().filter(char::is_ascii_digit).count();
        if !(7..=15).contains(&n_digits) {
            return fail("a phone number has 7 to 15 digits");
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form phone numbers are matched on ([`phone_key`]).
    pub fn key(&self) -> String {
        phone_key(&self.0)
    }

    /// Whether `other` (as a customer or a channel wrote it) is this number.
    pub fn is(&self, other: &str) -> bool {
        let key = phone_key(other);
        !key.is_empty() && key == self.key()
    }

    /// All but the last four digits hidden: `•••-•••-2002`.
    pub fn masked(&self) -> String {
        crate::mask::mask_number(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidId;
    fn try_from(raw: String) -> Result<Self, InvalidId> {
        Self::parse(raw)
    }
}

impl From<PhoneNumber> for String {
    fn from(phone: PhoneNumber) -> String {
        phone.0
    }
}

impl std::str::FromStr for PhoneNumber {
    type Err = InvalidId;
    fn from_str(raw: &str) -> Result<Self, InvalidId> {
        Self::parse(raw)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client-chosen key that makes a change request execute at most once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct IdempotencyKey(String);

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

impl IdempotencyKey {
    /// Accepts 1 to 200 printable ASCII characters (no spaces at either end).
    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidId> {
        let raw = raw.into();
        let trimmed = raw.trim();
        let fail = |why| Err(InvalidId { kind: "idempotency key", value: trimmed.chars().take(80).collect(), why });
        if trimmed.is_empty() {
            return fail("it is empty");
        }
        if trimmed.len() > MAX_IDEMPOTENCY_KEY_CHARS {
            return fail("it is longer than 200 characters");
        }
        if !trimmed.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return fail("only printable ASCII characters are allowed");
        }
        Ok(Self(trimmed.to_string()))
    }

    /// A fresh random key (UUID v4).
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidId;
    fn try_from(raw: String) -> Result<Self, InvalidId> {
        Self::parse(raw)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_and_checked() {
        assert_eq!(CustomerId::parse(" C1001 ").unwrap().as_str(), "C1001");
        for bad in ["", "   ", "C 1001", "C1001;DROP", "ü1", &"C".repeat(65)] {
            assert!(CustomerId::parse(bad).is_err(), "{bad:?}");
        }
        let error = LineId::parse("L 1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line id \"L 1\" is not valid: only letters, digits, '-', '_' and '.' are allowed"
        );
    }

    #[test]
    fn ids_deserialize_through_parse() {
        let id: BillId = serde_json::from_str("\"B1005\"").unwrap();
        assert_eq!(id.as_str(), "B1005");
        assert!(serde_json::from_str::<BillId>("\"\"").is_err());
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"B1005\"");
    }

    #[test]
    fn phone_numbers_match_on_their_key() {
        let phone = PhoneNumber::parse("555-123-2002").unwrap();
        assert_eq!(phone.key(), "5551232002");
        for same in ["(555) 123 2002", "+1 555 123 2002", "15551232002", "555.123.2002"] {
            assert!(phone.is(same), "{same}");
            assert_eq!(PhoneNumber::parse(same).unwrap().key(), phone.key());
        }
        for other in ["555-123-2003", "", "2002", "+44 555 123 2002"] {
            assert!(!phone.is(other), "{other}");
        }
        assert_eq!(phone.masked(), "•••-•••-2002");
        for bad in ["", "12345", "555-CALL-NOW", "1234567890123456", &"5".repeat(40)] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("conv-1:turn-3").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a".repeat(201)).is_err());
        assert!(IdempotencyKey::parse("key\u{0}").is_err());
        assert_ne!(IdempotencyKey::random(), IdempotencyKey::random());
    }
}
