//! The agent-assist console, engine side: who may sign in, what a human agent sees and what
//! they may do beside the assistant. `server`'s `http::console` is its HTTP shell and its
//! `console_view` turns these values into the `web` crate's page rows.
//!
//! - [`agents`]: agents and supervisors in the store, passwords hashed with argon2id.
//! - [`sessions`]: sign-in sessions (random tokens, stored hashed), their CSRF tokens, and the
//!   lockout after repeated wrong passwords.
//! - [`canned`]: canned responses by short code (`/roaming`), managed by supervisors.
//! - [`desk`]: the contact-centre work on a conversation: take over, send as the agent, private
//!   notes, hand back, close (which asks the customer for a rating), snooze, assign, and account
//!   actions run under the agent's name.
//! - [`queue`]: the queue (waiting for a human first, then active), read off headers and logs.
//! - [`reports`]: live numbers and 30-day reports computed from the conversation logs.
//!
//! Design choice: everything is stored in the server's one database and read per request,
//! so every HTTP worker sees the same sessions and nothing lives only in memory. The console
//! never writes a conversation's state directly: everything an agent does is an event appended
//! to the conversation's log (`AgentMessage`, `AgentNote`, `StatusChanged`, notes prefixed
//! [`CONSOLE_NOTE_PREFIX`]), so channels, reports and the assistant read the same story.

pub mod agents;
pub mod canned;
pub mod desk;
pub mod queue;
pub mod reports;
pub mod sessions;

use crate::config::ConsoleSettings;
use crate::conversations::StoreError;
use crate::dialogue::EngineError;

pub use agents::{Agent, AgentName, Agents, Password, Role};
pub use canned::{Canned, CannedResponse, Shortcode};
pub use desk::Desk;
pub use sessions::{Session, SessionToken, Sessions, SignIn};

/// Log notes the console writes start with this (`console: alice took over`).
pub const CONSOLE_NOTE_PREFIX: &str = "console: ";

/// Everything that can go wrong in the console.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("agent name {0:?} is not valid: use 1 to 64 letters, digits, '.', '_' or '-'")]
    InvalidAgentName(String),
    #[error("role {0:?} is not valid: use agent or supervisor")]
    InvalidRole(String),
    #[error("the password must have {min} to {max} characters", min = agents::MIN_PASSWORD_CHARS, max = agents::MAX_PASSWORD_CHARS)]
    InvalidPassword,
    #[error("wrong name or password")]
    WrongCredentials,
    #[error("too many wrong passwords; try again in {retry_after_seconds} seconds")]
    LockedOut { retry_after_seconds: u64 },
    #[error("sign in to use the console")]
    NotSignedIn,
    #[error("the form is stale or forged (CSRF token missing or wrong); reload the page")]
    BadCsrfToken,
    #[error("only supervisors may {0}")]
    SupervisorsOnly(&'static str),
    #[error("no agent {0:?}")]
    UnknownAgent(String),
    #[error("conversation {0} not found")]
    UnknownConversation(String),
    #[error("{0}")]
    Conflict(String),
    #[error("message text is empty")]
    EmptyText,
    #[error("text has {n_chars} characters; the limit is {max_chars}")]
    TextTooLong { n_chars: usize, max_chars: usize },
    #[error("short code {0:?} is not valid: use / and 1 to 32 letters, digits, '_' or '-'")]
    InvalidShortcode(String),
    #[error("no canned response {0:?}")]
    UnknownShortcode(String),
    #[error("snooze for 1 to {max} minutes", max = desk::MAX_SNOOZE_MINUTES)]
    InvalidSnooze,
    #[error("{0}")]
    InvalidAction(String),
    #[error("the assistant is still loading its models")]
    NotReady,
    #[error(transparent)]
    Accounts(#[from] accounts::Error),
    #[error("console store: {0}")]
    Storage(#[from] storage::Error),
    #[error("console store holds a corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(id) => Error::UnknownConversation(id),
            StoreError::Storage(error) => Error::Storage(error),
            StoreError::Corrupt(error) => Error::Corrupt(error),
        }
    }
}

impl From<EngineError> for Error {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Store(error) => error.into(),
            EngineError::Internal(error) => Error::Internal(error),
        }
    }
}

/// The console's stores, opened from the server's database (cheap: trees are handles).
#[derive(Clone)]
pub struct Console {
    agents: Agents,
    sessions: Sessions,
    canned: Canned,
    desk_tree: storage::Tree,
    settings: ConsoleSettings,
}

impl Console {
    pub fn open(db: &storage::Store, settings: &ConsoleSettings) -> Result<Self> {
        Ok(Self {
            agents: Agents::open(db)?,
            sessions: Sessions::open(db)?,
            canned: Canned::open(db)?,
            desk_tree: db.tree("console_desk")?,
            settings: settings.clone(),
        })
    }

    pub fn agents(&self) -> &Agents {
        &self.agents
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn canned(&self) -> &Canned {
        &self.canned
    }

    pub fn settings(&self) -> &ConsoleSettings {
        &self.settings
    }

    /// The contact-centre operations over a conversation store.
    pub fn desk<'a>(&'a self, conversations: &'a crate::conversations::ConversationStore) -> Desk<'a> {
        Desk::new(conversations, &self.desk_tree, &self.agents, &self.canned)
    }

    /// Signs in: checks the lockout, then the password; a wrong one counts towards the lockout.
    pub fn sign_in(&self, name: &str, password: &str) -> Result<SignIn> {
        let key = agents::login_key(name);
        if let Some(retry_after_seconds) = self.sessions.locked_for(&key)? {
            return Err(Error::LockedOut { retry_after_seconds });
        }
        match self.agents.verify(name, password)? {
            Some(agent) => {
                self.sessions.clear_failures(&key)?;
                let lifetime = chrono::Duration::minutes(i64::try_from(self.settings.session_minutes).unwrap_or(60));
                self.sessions.create(&agent, lifetime)
            }
            None => {
                let lock = self.sessions.record_failure(&key)?;
                match lock {
                    Some(retry_after_seconds) => Err(Error::LockedOut { retry_after_seconds }),
                    None => Err(Error::WrongCredentials),
                }
            }
        }
    }

    /// The agent behind a session token, when the session is live and the agent still exists.
    pub fn signed_in(&self, token: &str) -> Result<Option<(Agent, Session)>> {
        let Some(session) = self.sessions.get(token)? else { return Ok(None) };
        match self.agents.get(&session.agent)? {
            Some(agent) => Ok(Some((agent, session))),
            None => {
                self.sessions.end(token)?;
                Ok(None)
            }
        }
    }
}

/// Parses message text an agent wrote (same limits as customer text).
pub fn agent_text(raw: &str, max_chars: usize) -> Result<String> {
    let cleaned: String = raw.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect();
    let trimmed = cleaned.trim();
    let n_chars = trimmed.chars().count();
    if n_chars == 0 {
        return Err(Error::EmptyText);
    }
    if n_chars > max_chars {
        return Err(Error::TextTooLong { n_chars, max_chars });
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn console() -> (tempfile::TempDir, storage::Store, Console) {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::temporary().unwrap();
        let console = Console::open(&db, &ConsoleSettings::default()).unwrap();
        (dir, db, console)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::console;
    use super::*;

    #[test]
    fn sign_in_locks_out_after_repeated_wrong_passwords() {
        let (_dir, _db, console) = console();
        let name = AgentName::parse("alice").unwrap();
        console.agents().add(&name, Role::Agent, &Password::parse("correct horse").unwrap()).unwrap();
        for _ in 0..sessions::FAILURES_BEFORE_LOCKOUT - 1 {
            assert!(matches!(console.sign_in("alice", "wrong password"), Err(Error::WrongCredentials)));
        }
        let locked = console.sign_in("alice", "wrong password").unwrap_err();
        assert!(matches!(locked, Error::LockedOut { retry_after_seconds } if retry_after_seconds > 0), "{locked}");
        // Locked: even the right password is refused until the delay has passed.
        assert!(matches!(console.sign_in("alice", "correct horse"), Err(Error::LockedOut { .. })));
    }

    #[test]
    fn unknown_names_count_towards_a_lockout_too() {
        let (_dir, _db, console) = console();
        for _ in 0..sessions::FAILURES_BEFORE_LOCKOUT - 1 {
            assert!(matches!(console.sign_in("mallory", "guess"), Err(Error::WrongCredentials)));
        }
        assert!(matches!(console.sign_in("Mallory", "guess"), Err(Error::LockedOut { .. })));
    }

    #[test]
    fn a_signed_in_agent_has_a_session_until_signing_out() {
        let (_dir, _db, console) = console();
        let name = AgentName::parse("bob").unwrap();
        console.agents().add(&name, Role::Supervisor, &Password::parse("a long secret").unwrap()).unwrap();
        let sign_in = console.sign_in("BOB", "a long secret").unwrap();
        let (agent, session) = console.signed_in(sign_in.token.as_str()).unwrap().unwrap();
        assert_eq!(agent.name.as_str(), "bob");
        assert_eq!(agent.role, Role::Supervisor);
        assert_eq!(session.csrf_token, sign_in.session.csrf_token);
        console.sessions().end(sign_in.token.as_str()).unwrap();
        assert!(console.signed_in(sign_in.token.as_str()).unwrap().is_none());
    }

    #[test]
    fn agent_text_is_trimmed_and_bounded() {
        assert_eq!(agent_text("  hello\u{7}  ", 10).unwrap(), "hello");
        assert!(matches!(agent_text(" \n ", 10), Err(Error::EmptyText)));
        assert!(matches!(agent_text(&"x".repeat(11), 10), Err(Error::TextTooLong { n_chars: 11, .. })));
    }
}
