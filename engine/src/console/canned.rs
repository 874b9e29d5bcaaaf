//! Canned responses: texts an agent inserts by short code (`/roaming`), managed by supervisors.
//! A few useful ones are written the first time the console opens an empty store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Longest canned text.
pub const MAX_CANNED_CHARS: usize = 2_000;
/// Longest short code (without the slash).
pub const MAX_SHORTCODE_CHARS: usize = 32;

/// A short code: `/` then 1 to 32 lowercase letters, digits, `_` or `-` (the slash is optional
/// when parsing; it is not stored).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shortcode(String);

impl Shortcode {
    pub fn parse(raw: &str) -> Result<Self> {
        let trimmed = raw.trim();
        let code = trimmed.strip_prefix('/').unwrap_or(trimmed).to_ascii_lowercase();
        let valid = !code.is_empty()
            && code.len() <= MAX_SHORTCODE_CHARS
            && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !valid {
            return Err(Error::InvalidShortcode(raw.chars().take(40).collect()));
        }
        Ok(Self(code))
    }

    /// Without the slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// With the slash: `/roaming`.
    pub fn display(&self) -> String {
        format!("/{}", self.0)
    }
}

impl TryFrom<String> for Shortcode {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self> {
        Self::parse(&raw)
    }
}

impl From<Shortcode> for String {
    fn from(code: Shortcode) -> String {
        code.0
    }
}

/// One canned response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedResponse {
    pub shortcode: Shortcode,
    pub text: String,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

const DEFAULTS: &[(&str, &str)] = &[
    (
        "hello",
        "Hi, I'm a member of the customer care team and I'm taking over from the assistant. I've read your conversation, so there's no need to repeat anything.",
    ),
    (
        "roaming",
        "Turning on roaming is free on every plan, with no daily or monthly fee. Data abroad counts against your normal monthly allowance; only calls and texts in some destinations cost extra. Remember to switch Data Roaming on in your phone's settings too.",
    ),
    (
        "refuel",
        "I can add up to 2 GB of extra data to your line right away. It's charged at your plan's price per GB on your next bill.",
    ),
    ("wait", "Thanks for your patience, I'm checking that for you now."),
    ("bye", "Is there anything else I can help you with today? If not, have a lovely day!"),
];

const SEEDED_KEY: &[u8] = b"\0seeded";

/// The canned responses tree.
#[derive(Clone)]
pub struct Canned {
    tree: storage::Tree,
}

impl Canned {
    /// Opens the tree; writes the default responses once, into a store that never had any.
    pub fn open(db: &storage::Store) -> Result<Self> {
        let canned = Self { tree: db.tree("console_canned")? };
        if canned.tree.get(SEEDED_KEY)?.is_none() {
            let now = Utc::now();
            for (code, text) in DEFAULTS {
                let response = CannedResponse {
                    shortcode: Shortcode::parse(code)?,
                    text: (*text).to_string(),
                    updated_by: "switchboard".into(),
                    updated_at: now,
                };
                canned.tree.insert(code.as_bytes(), serde_json::to_vec(&response)?)?;
            }
            canned.tree.insert(SEEDED_KEY, b"1")?;
        }
        Ok(canned)
    }

    /// Every canned response, by short code.
    pub fn list(&self) -> Result<Vec<CannedResponse>> {
        let mut out = Vec::new();
        for item in self.tree.iter()? {
            let (key, bytes) = item?;
            if key.as_slice() == SEEDED_KEY {
                continue;
            }
            out.push(serde_json::from_slice(&bytes)?);
        }
        Ok(out)
    }

    pub fn get(&self, code: &Shortcode) -> Result<Option<CannedResponse>> {
        match self.tree.get(code.as_str().as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Creates or replaces a canned response.
    pub fn put(&self, code: &Shortcode, raw_text: &str, by: &str) -> Result<CannedResponse> {
        let text = super::agent_text(raw_text, MAX_CANNED_CHARS)?;
        let response =
            CannedResponse { shortcode: code.clone(), text, updated_by: by.to_string(), updated_at: Utc::now() };
        self.tree.insert(code.as_str().as_bytes(), serde_json::to_vec(&response)?)?;
        Ok(response)
    }

    /// Removes a canned response; false when there was none.
    pub fn delete(&self, code: &Shortcode) -> Result<bool> {
        Ok(self.tree.remove(code.as_str().as_bytes())?.is_some())
    }

    /// The canned text when `text` is exactly one known short code (`/roaming`).
    pub fn expand(&self, text: &str) -> Result<Option<String>> {
        let trimmed = text.trim();
        if !trimmed.starts_with('/') || trimmed.contains(char::is_whitespace) {
            return Ok(None);
        }
        let Ok(code) = Shortcode::parse(trimmed) else { return Ok(None) };
        Ok(self.get(&code)?.map(|response| response.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canned() -> (tempfile::TempDir, storage::Store, Canned) {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::temporary().unwrap();
        let canned = Canned::open(&db).unwrap();
        (dir, db, canned)
    }

    #[test]
    fn shortcodes_are_checked() {
        assert_eq!(Shortcode::parse("/Roaming").unwrap().as_str(), "roaming");
        assert_eq!(Shortcode::parse("bill-2").unwrap().display(), "/bill-2");
        for bad in ["", "/", "/two words", "/<b>", &format!("/{}", "x".repeat(33))] {
            assert!(Shortcode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_are_seeded_once_and_deletions_stick() {
        let (_dir, db, canned) = canned();
        assert!(canned.list().unwrap().iter().any(|c| c.shortcode.as_str() == "roaming"));
        canned.delete(&Shortcode::parse("/roaming").unwrap()).unwrap();
        let reopened = Canned::open(&db).unwrap();
        assert!(reopened.get(&Shortcode::parse("roaming").unwrap()).unwrap().is_none());
    }

    #[test]
    fn expansion_needs_exactly_one_known_code() {
        let (_dir, _db, canned) = canned();
        let code = Shortcode::parse("/eta").unwrap();
        canned.put(&code, "  About ten minutes.  ", "sam").unwrap();
        assert_eq!(canned.expand(" /eta ").unwrap().as_deref(), Some("About ten minutes."));
        assert_eq!(canned.expand("/eta please").unwrap(), None);
        assert_eq!(canned.expand("/unknown").unwrap(), None);
        assert_eq!(canned.expand("eta").unwrap(), None);
        assert!(matches!(canned.put(&code, "   ", "sam"), Err(Error::EmptyText)));
        assert!(canned.put(&code, &"x".repeat(MAX_CANNED_CHARS + 1), "sam").is_err());
    }
}
