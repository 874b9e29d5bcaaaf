//! Sign-in sessions and the lockout after repeated wrong passwords.
//!
//! A session is a random 256-bit token (the cookie's value); the store keeps only its SHA-256, so
//! a copy of the database does not hold usable sessions. Each session carries its own CSRF
//! token (synchronizer token): every form and every state-changing call must send it back.
//! Sessions expire `console.session_minutes` after sign-in.
//!
//! Lockout: after [`FAILURES_BEFORE_LOCKOUT`] wrong passwords in a row for one name (known or
//! not), sign-in for that name is refused for 30 seconds, doubling with every further failure up
//! to 15 minutes; a success clears the count, and so do 15 quiet minutes.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Result;
use super::agents::Agent;

/// Wrong passwords in a row before a name is locked.
pub const FAILURES_BEFORE_LOCKOUT: u32 = 5;
/// The first lockout; it doubles with every further failure.
pub const FIRST_LOCKOUT_SECONDS: i64 = 30;
/// The longest lockout.
pub const MAX_LOCKOUT_SECONDS: i64 = 15 * 60;
/// Failures older than this (since the last one) are forgotten.
const FAILURE_MEMORY_SECONDS: i64 = 15 * 60;

/// A session token as it travels in the cookie: 64 lowercase hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    fn random() -> Self {
        Self(hex::encode(rand::random::<[u8; 32]>()))
    }

    /// `None` unless `raw` has the shape of a token.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn storage_key(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The agent's name.
    pub agent: String,
    /// Sent back in forms (`csrf`) and in the `X-CSRF-Token` header of state-changing calls.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// Whether `provided` is this session's CSRF token (constant-time).
    pub fn csrf_matches(&self, provided: &str) -> bool {
        !provided.is_empty() && bool::from(provided.as_bytes().ct_eq(self.csrf_token.as_bytes()))
    }

    /// Seconds until the session ends.
    pub fn seconds_left(&self) -> i64 {
        (self.expires_at - Utc::now()).num_seconds().max(0)
    }
}

/// A fresh sign-in: the token for the cookie and its session.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub token: SessionToken,
    pub session: Session,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Failures {
    n_failures: u32,
    last_failure_at: Option<DateTime<Utc>>,
    locked_until: Option<DateTime<Utc>>,
}

/// The sessions and login-failure trees.
#[derive(Clone)]
pub struct Sessions {
    sessions: storage::Tree,
    failures: storage::Tree,
}

impl Sessions {
    pub fn open(db: &storage::Store) -> Result<Self> {
        Ok(Self { sessions: db.tree("console_sessions")?, failures: db.tree("console_login_failures")? })
    }

    /// Starts a session for `agent` lasting `lifetime`.
    pub fn create(&self, agent: &Agent, lifetime: Duration) -> Result<SignIn> {
        self.remove_expired()?;
        let token = SessionToken::random();
        let now = Utc::now();
        let session = Session {
            agent: agent.name.as_str().to_string(),
            csrf_token: hex::encode(rand::random::<[u8; 32]>()),
            created_at: now,
            expires_at: now + lifetime,
        };
        self.sessions.insert(token.storage_key(), serde_json::to_vec(&session)?)?;
        Ok(SignIn { token, session })
    }

    /// The live session of a token; expired sessions are removed and read as none.
    pub fn get(&self, raw_token: &str) -> Result<Option<Session>> {
        let Some(token) = SessionToken::parse(raw_token) else { return Ok(None) };
        let Some(bytes) = self.sessions.get(token.storage_key())? else { return Ok(None) };
        let session: Session = serde_json::from_slice(&bytes)?;
        if session.expires_at <= Utc::now() {
            self.sessions.remove(token.storage_key())?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Ends a session (signing out).
    pub fn end(&self, raw_token: &str) -> Result<()> {
        if let Some(token) = SessionToken::parse(raw_token) {
            self.sessions.remove(token.storage_key())?;
        }
        Ok(())
    }

    /// Moves a session's end (an administrator cutting a session short; tests of expiry).
    pub fn set_expiry(&self, raw_token: &str, expires_at: DateTime<Utc>) -> Result<bool> {
        let Some(token) = SessionToken::parse(raw_token) else { return Ok(false) };
        let Some(bytes) = self.sessions.get(token.storage_key())? else { return Ok(false) };
        let mut session: Session = serde_json::from_slice(&bytes)?;
        session.expires_at = expires_at;
        self.sessions.insert(token.storage_key(), serde_json::to_vec(&session)?)?;
        Ok(true)
    }

    /// Ends every session of an agent; returns how many.
    pub fn end_all_of(&self, agent: &str) -> Result<usize> {
        let mut n_ended = 0;
        for item in self.sessions.iter()? {
            let (key, bytes) = item?;
            if serde_json::from_slice::<Session>(&bytes).is_ok_and(|session| session.agent == agent) {
                self.sessions.remove(key)?;
                n_ended += 1;
            }
        }
        Ok(n_ended)
    }

    fn remove_expired(&self) -> Result<()> {
        let now = Utc::now();
        for item in self.sessions.iter()? {
            let (key, bytes) = item?;
            let expired = serde_json::from_slice::<Session>(&bytes).map_or(true, |session| session.expires_at <= now);
            if expired {
                self.sessions.remove(key)?;
            }
        }
        Ok(())
    }

    /// Seconds a name stays locked, if it is.
    pub fn locked_for(&self, key: &str) -> Result<Option<u64>> {
        let failures = self.failures(key)?;
        Ok(failures.locked_until.and_then(|until| seconds_until(until, Utc::now())))
    }

    /// Counts a wrong password; returns the lockout it triggers, if any.
    pub fn record_failure(&self, key: &str) -> Result<Option<u64>> {
        let now = Utc::now();
        let mut failures = self.failures(key)?;
        if failures.last_failure_at.is_some_and(|last| (now - last).num_seconds() > FAILURE_MEMORY_SECONDS) {
            failures = Failures::default();
        }
        failures.n_failures = failures.n_failures.saturating_add(1);
        failures.last_failure_at = Some(now);
        let lockout = lockout_seconds(failures.n_failures);
        failures.locked_until = lockout.map(|seconds| now + Duration::seconds(seconds));
        self.failures.insert(key.as_bytes(), serde_json::to_vec(&failures)?)?;
        tracing::warn!(n_failures = failures.n_failures, locked = lockout.is_some(), "console sign-in failed");
        Ok(failures.locked_until.and_then(|until| seconds_until(until, now)))
    }

    pub fn clear_failures(&self, key: &str) -> Result<()> {
        self.failures.remove(key.as_bytes())?;
        Ok(())
    }

    fn failures(&self, key: &str) -> Result<Failures> {
        match self.failures.get(key.as_bytes())? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
            None => Ok(Failures::default()),
        }
    }
}

/// The lockout after `n_failures` wrong passwords in a row.
fn lockout_seconds(n_failures: u32) -> Option<i64> {
    let over = n_failures.checked_sub(FAILURES_BEFORE_LOCKOUT)?;
    let factor = 1_i64 << over.min(10);
    Some((FIRST_LOCKOUT_SECONDS * factor).min(MAX_LOCKOUT_SECONDS))
}

fn seconds_until(until: DateTime<Utc>, now: DateTime<Utc>) -> Option<u64> {
    let millis = (until - now).num_milliseconds();
    (millis > 0).then(|| u64::try_from((millis + 999) / 1000).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::agents::{AgentName, Role};

    fn sessions() -> (tempfile::TempDir, Sessions) {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::temporary().unwrap();
        (dir, Sessions::open(&db).unwrap())
    }

    fn agent(name: &str) -> Agent {
        Agent { name: AgentName::parse(name).unwrap(), role: Role::Agent, created_at: Utc::now() }
    }

    #[test]
    fn lockouts_grow_and_are_capped() {
        assert_eq!(lockout_seconds(FAILURES_BEFORE_LOCKOUT - 1), None);
        assert_eq!(lockout_seconds(FAILURES_BEFORE_LOCKOUT), Some(30));
        assert_eq!(lockout_seconds(FAILURES_BEFORE_LOCKOUT + 1), Some(60));
        assert_eq!(lockout_seconds(FAILURES_BEFORE_LOCKOUT + 50), Some(MAX_LOCKOUT_SECONDS));
    }

    #[test]
    fn tokens_are_stored_hashed() {
        let (_dir, sessions) = sessions();
        let sign_in = sessions.create(&agent("alice"), Duration::minutes(5)).unwrap();
        assert!(sessions.sessions.get(sign_in.token.as_str()).unwrap().is_none());
        assert_eq!(sessions.get(sign_in.token.as_str()).unwrap().unwrap().agent, "alice");
        assert_eq!(format!("{:?}", sign_in.token), "SessionToken(***)");
    }

    #[test]
    fn expired_and_malformed_tokens_are_no_sessions() {
        let (_dir, sessions) = sessions();
        let sign_in = sessions.create(&agent("alice"), Duration::minutes(5)).unwrap();
        assert!(sessions.set_expiry(sign_in.token.as_str(), Utc::now() - Duration::seconds(1)).unwrap());
        assert!(sessions.get(sign_in.token.as_str()).unwrap().is_none());
        assert!(sessions.sessions.is_empty().unwrap(), "the expired session is removed");
        for bad in ["", "abc", &"g".repeat(64), &"A".repeat(64), &"0".repeat(10_000)] {
            assert!(sessions.get(bad).unwrap().is_none(), "{bad:?}");
        }
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let (_dir, sessions) = sessions();
        let session = sessions.create(&agent("alice"), Duration::minutes(5)).unwrap().session;
        assert!(session.csrf_matches(&session.csrf_token.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&session.csrf_token[..10]));
        assert!(!session.csrf_matches(&session.csrf_token.to_uppercase()));
    }

    #[test]
    fn ending_all_sessions_of_an_agent() {
        let (_dir, sessions) = sessions();
        let first = sessions.create(&agent("alice"), Duration::minutes(5)).unwrap();
        let _second = sessions.create(&agent("alice"), Duration::minutes(5)).unwrap();
        let other = sessions.create(&agent("bob"), Duration::minutes(5)).unwrap();
        assert_eq!(sessions.end_all_of("alice").unwrap(), 2);
        assert!(sessions.get(first.token.as_str()).unwrap().is_none());
        assert!(sessions.get(other.token.as_str()).unwrap().is_some());
    }

    #[test]
    fn a_success_clears_the_failures() {
        let (_dir, sessions) = sessions();
        for _ in 0..FAILURES_BEFORE_LOCKOUT - 1 {
            assert_eq!(sessions.record_failure("name:alice").unwrap(), None);
        }
        sessions.clear_failures("name:alice").unwrap();
        assert_eq!(sessions.record_failure("name:alice").unwrap(), None);
        assert_eq!(sessions.locked_for("name:alice").unwrap(), None);
    }
}
