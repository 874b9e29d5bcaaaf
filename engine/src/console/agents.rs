//! Console users (agents and supervisors) in the store, with argon2id password hashes.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted (argon2 hashes anything, but a megabyte "password" is an attack).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Longest agent name.
pub const MAX_NAME_CHARS: usize = 64;

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works conversations.
    Agent,
    /// Works conversations, sees every agent's, the dashboard and reports, manages canned responses.
    Supervisor,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            _ => Err(Error::InvalidRole(raw.chars().take(40).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
        }
    }

    pub fn is_supervisor(self) -> bool {
        self == Role::Supervisor
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agent's sign-in name: 1 to 64 ASCII letters, digits, `.`, `_` or `-`, kept in lower case
/// (names are matched case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentName(String);

impl AgentName {
    pub fn parse(raw: &str) -> Result<Self> {
        let trimmed = raw.trim();
        let valid = !trimmed.is_empty()
            && trimmed.chars().count() <= MAX_NAME_CHARS
            && trimmed.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(Error::InvalidAgentName(raw.chars().take(80).collect()));
        }
        Ok(Self(trimmed.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AgentName {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self> {
        Self::parse(&raw)
    }
}

impl From<AgentName> for String {
    fn from(name: AgentName) -> String {
        name.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: 8 to 256 characters, never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self> {
        let n_chars = raw.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n_chars) || raw.trim().is_empty() {
            return Err(Error::InvalidPassword);
        }
        Ok(Self(raw.to_string()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A console user as the rest of the console sees it (no hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub name: AgentName,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AgentRecord {
    name: AgentName,
    role: Role,
    /// PHC string: `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    password_hash: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<AgentRecord> for Agent {
    fn from(record: AgentRecord) -> Self {
        Agent { name: record.name, role: record.role, created_at: record.created_at }
    }
}

/// The lockout key of a typed name (also for names that are not valid or not known, so a
/// guesser cannot tell them apart).
pub(crate) fn login_key(raw_name: &str) -> String {
    let folded: String = raw_name.trim().to_lowercase().chars().take(MAX_NAME_CHARS * 2).collect();
    format!("name:{folded}")
}

/// The agents tree.
#[derive(Clone)]
pub struct Agents {
    tree: storage::Tree,
}

impl Agents {
    pub fn open(db: &storage::Store) -> Result<Self> {
        Ok(Self { tree: db.tree("console_agents")? })
    }

    /// Creates an agent or, when the name exists, sets a new password and role. Returns true
    /// when the agent is new.
    pub fn add(&self, name: &AgentName, role: Role, password: &Password) -> Result<bool> {
        let password_hash = hash_password(password)?;
        let now = Utc::now();
        let existing = self.record(name.as_str())?;
        let created = existing.is_none();
        let record = AgentRecord {
            name: name.clone(),
            role,
            password_hash,
            created_at: existing.map_or(now, |record| record.created_at),
            updated_at: now,
        };
        self.tree.insert(name.as_str().as_bytes(), serde_json::to_vec(&record)?)?;
        self.tree.flush()?;
        Ok(created)
    }

    /// Removes an agent; their sessions stop working at their next request.
    pub fn remove(&self, name: &AgentName) -> Result<bool> {
        Ok(self.tree.remove(name.as_str().as_bytes())?.is_some())
    }

    /// The agent of a (typed) name.
    pub fn get(&self, raw_name: &str) -> Result<Option<Agent>> {
        Ok(self.record(raw_name)?.map(Agent::from))
    }

    /// Every agent, by name.
    pub fn list(&self) -> Result<Vec<Agent>> {
        let mut out = Vec::new();
        for item in self.tree.iter()? {
            let (_, bytes) = item?;
            out.push(Agent::from(serde_json::from_slice::<AgentRecord>(&bytes)?));
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.tree.is_empty()?)
    }

    /// Checks a password. Unknown names cost a hash verification too, so response times do not
    /// tell which names exist.
    pub fn verify(&self, raw_name: &str, raw_password: &str) -> Result<Option<Agent>> {
        let record = match AgentName::parse(raw_name) {
            Ok(name) => self.record(name.as_str())?,
            Err(_) => None,
        };
        let password = raw_password.chars().take(MAX_PASSWORD_CHARS + 1).collect::<String>();
        match record {
            Some(record) => {
                let hash = PasswordHash::new(&record.password_hash).map_err(|e| Error::Hashing(e.to_string()))?;
                let matches = argon2::Argon2::default().verify_password(password.as_bytes(), &hash).is_ok();
                Ok(matches.then(|| Agent::from(record)))
            }
            None => {
                let hash = PasswordHash::new(dummy_hash()).map_err(|e| Error::Hashing(e.to_string()))?;
                let _ = argon2::Argon2::default().verify_password(password.as_bytes(), &hash);
                Ok(None)
            }
        }
    }

    fn record(&self, raw_name: &str) -> Result<Option<AgentRecord>> {
        let Ok(name) = AgentName::parse(raw_name) else { return Ok(None) };
        match self.tree.get(name.as_str().as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }
}

fn hash_password(password: &Password) -> Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| Error::Hashing(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Hashing(e.to_string()))
}

/// A hash of a random password, verified against when the name is unknown.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let random = hex::encode(rand::random::<[u8; 16]>());
        hash_password(&Password(random)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents() -> (tempfile::TempDir, Agents) {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::temporary().unwrap();
        (dir, Agents::open(&db).unwrap())
    }

    #[test]
    fn names_are_checked_and_folded() {
        assert_eq!(AgentName::parse("  Alice.B-2 ").unwrap().as_str(), "alice.b-2");
        for bad in ["", "  ", "al ice", "<script>", "ünïcode", &"a".repeat(65)] {
            assert!(AgentName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_and_passwords_are_checked() {
        assert_eq!(Role::parse("Supervisor").unwrap(), Role::Supervisor);
        assert!(Role::parse("admin").is_err());
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("        ").is_err());
        assert!(Password::parse(&"p".repeat(257)).is_err());
        assert_eq!(format!("{:?}", Password::parse("a secret pw").unwrap()), "Password(***)");
    }

    #[test]
    fn passwords_are_hashed_and_verified() {
        let (_dir, agents) = agents();
        let name = AgentName::parse("alice").unwrap();
        assert!(agents.add(&name, Role::Agent, &Password::parse("correct horse").unwrap()).unwrap());
        let raw = agents.tree.get("alice").unwrap().unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"), "{text}");
        assert_eq!(agents.verify("ALICE", "correct horse").unwrap().unwrap().name, name);
        assert!(agents.verify("alice", "wrong horse").unwrap().is_none());
        assert!(agents.verify("nobody", "correct horse").unwrap().is_none());
        assert!(agents.verify("<bad name>", "x").unwrap().is_none());
        assert!(agents.verify("alice", &"x".repeat(100_000)).unwrap().is_none());
    }

    #[test]
    fn adding_again_resets_password_and_role_and_keeps_the_creation_date() {
        let (_dir, agents) = agents();
        let name = AgentName::parse("carol").unwrap();
        agents.add(&name, Role::Agent, &Password::parse("first password").unwrap()).unwrap();
        let created_at = agents.get("carol").unwrap().unwrap().created_at;
        assert!(!agents.add(&name, Role::Supervisor, &Password::parse("second password").unwrap()).unwrap());
        let agent = agents.get("carol").unwrap().unwrap();
        assert_eq!((agent.role, agent.created_at), (Role::Supervisor, created_at));
        assert!(agents.verify("carol", "first password").unwrap().is_none());
        assert!(agents.verify("carol", "second password").unwrap().is_some());
    }
}
