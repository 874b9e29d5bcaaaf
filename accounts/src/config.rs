//! The account system's settings, as plain structs: `server::config` nests them in its
//! `Settings` tree (`[accounts]` and `[hooks.<action>]`), and nothing here reads files or the
//! environment.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string that never prints itself.
///
/// It deserialises from any scalar, so a secret of digits set through the environment (where
/// `123` arrives as a number) is still a string.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(#[serde(deserialize_with = "scalar_as_string")] String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("\"\"") } else { f.write_str("\"***\"") }
    }
}

/// Deserialises a string from any scalar: configuration read from the environment types
/// `106540352242922` as a number and `true` as a boolean, where the key is a string.
pub fn scalar_as_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Scalar;
    impl serde::de::Visitor<'_> for Scalar {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_string<E: serde::de::Error>(self, value: String) -> Result<String, E> {
            Ok(value)
        }
        fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_char<E: serde::de::Error>(self, value: char) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_i128<E: serde::de::Error>(self, value: i128) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_u128<E: serde::de::Error>(self, value: u128) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<String, E> {
            Ok(value.to_string())
        }
    }
    deserializer.deserialize_any(Scalar)
}

/// `[accounts]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
    /// Account database (tau2 `db.toml` shape) loaded into an empty store at start;
    /// `demo` is the built-in demo seed.
    #[serde(deserialize_with = "scalar_as_string")]
    pub seed: String,
    /// The business date the account policy is checked against (`YYYY-MM-DD`); empty: the
    /// seed's `[meta] today`, else the machine's date.
    pub today: Option<chrono::NaiveDate>,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self { seed: crate::DEMO_SEED.into(), today: None }
    }
}

/// `[hooks.<action>]`: one account action sent to the operator's HTTP endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookSettings {
    #[serde(deserialize_with = "scalar_as_string")]
    pub method: String,
    #[serde(deserialize_with = "scalar_as_string")]
    pub url: String,
    pub timeout_ms: u64,
    pub headers: BTreeMap<String, String>,
    /// Key for the HMAC-SHA256 signature of each delivery.
    pub secret: Secret,
    pub max_attempts: u32,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            method: "POST".into(),
            url: String::new(),
            timeout_ms: 5_000,
            headers: BTreeMap::new(),
            secret: Secret::default(),
            max_attempts: 4,
        }
    }
}
