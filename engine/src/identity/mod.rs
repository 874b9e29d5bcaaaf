//! Who the customer is: assurance levels, proofs of possession, and the limits that keep
//! guessing out. A claim (a number, a customer id, a name with a date of birth) reveals nothing;
//! only a proof verifies, and a verification binds one customer until it lapses.
//!
//! - [`Assurance`]: `anonymous` < `claimed` < `verified`, per conversation, derived from its
//!   log; [`Requirements`] say, as data, what each kind of account fact and each action needs.
//! - [`codes`]: one-time codes (6 digits, minutes, attempts) stored hashed, per conversation.
//! - [`failures`]: failed proofs per customer in a sliding window, and the lockout they cause.
//! - [`sms`]: the operator's SMS gateway (a signed hook) or the demo outbox file.
//! - [`network`]: the operator's CAMARA network APIs (SIM Swap, Number Verification).
//!
//! Design choice: the proofs and limits live in the store beside the conversations, keyed by
//! conversation and by customer, so a second conversation or another channel sees the same
//! lockout, and nothing secret (no code, no hash key) ever enters a log.

pub mod codes;
pub mod failures;
pub mod network;
pub mod sms;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use codes::{CodeCheck, Codes};
pub use failures::Failures;
pub use network::{NetworkApi, NetworkError};
pub use sms::{Outbox, SmsError, SmsGateway};

/// How sure the assistant is of who it is talking to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assurance {
    /// Nothing about any account.
    Anonymous,
    /// The customer said who they are; nothing proven.
    Claimed,
    /// Proof of possession: a code texted to a line on file, the channel, the network.
    Verified,
}

impl Assurance {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Claimed => "claimed",
            Self::Verified => "verified",
        }
    }
}

impl fmt::Display for Assurance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Assurance {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "anonymous" => Ok(Self::Anonymous),
            "claimed" => Ok(Self::Claimed),
            "verified" => Ok(Self::Verified),
            other => Err(format!("{other:?} is not an assurance level (anonymous, claimed or verified)")),
        }
    }
}

/// How a customer was verified (the `method` of a verifying `CustomerIdentified` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A one-time code texted to a line on file.
    SmsCode,
    /// The WhatsApp number the customer writes from (proven by Meta).
    WhatsappSender,
    /// The operator's own sign-in, passed by the page hosting the widget.
    SignedHostPage,
    /// CAMARA Number Verification: the phone proved its own number on the mobile network.
    NetworkNumberVerification,
    /// An agent verified the customer out of band (the reason is logged with it).
    Agent,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SmsCode => "sms code",
            Self::WhatsappSender => "whatsapp number",
            Self::SignedHostPage => "signed host page",
            Self::NetworkNumberVerification => "network number verification",
            Self::Agent => "agent",
        }
    }
}

/// The kinds of account facts a reply may disclose.
pub const FACT_KINDS: &[&str] = &["profile", "plan", "bills", "usage", "address", "lines", "payment_methods"];

/// What each kind of account fact and each account action needs, as data
/// (`[identity.requirements]`: `facts.<kind>` and `actions.<action name>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Requirements {
    pub facts: BTreeMap<String, Assurance>,
    pub actions: BTreeMap<String, Assurance>,
}

impl Default for Requirements {
    fn default() -> Self {
        let facts = FACT_KINDS.iter().map(|kind| (kind.to_string(), Assurance::Verified)).collect();
        // Look-ups that resolve a claim run as Switchboard itself and show nothing; a handoff
        // needs nobody. Every other action reads or changes an account: verified.
        let actions = accounts::catalog()
            .iter()
            .map(|spec| {
                let name = spec.name.as_str();
                let level = match name {
                    "transfer_to_human_agents" => Assurance::Anonymous,
                    _ => Assurance::Verified,
                };
                (name.to_string(), level)
            })
            .collect();
        Self { facts, actions }
    }
}

impl Requirements {
    /// The level an account fact of `kind` needs (verified for a kind nobody listed).
    pub fn fact(&self, kind: &str) -> Assurance {
        self.facts.get(kind).copied().unwrap_or(Assurance::Verified)
    }

    /// The level the customer needs for the dialogue to run `action` for them.
    pub fn action(&self, action: &str) -> Assurance {
        self.actions.get(action).copied().unwrap_or(Assurance::Verified)
    }
}

/// `[identity]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentitySettings {
    /// A verification lapses after this many minutes without a message from the customer.
    pub verified_minutes: u64,
    /// How long a texted code is valid.
    pub code_minutes: u64,
    /// Wrong entries a code allows before it is void.
    pub code_attempts: u32,
    /// Failed proofs for one customer within `lockout_hours` that lock self-service verification.
    pub max_failed_proofs: u32,
    pub lockout_hours: u64,
    /// The country calling code of national numbers on file (`555-123-2002` is `+1 555 123 2002`).
    #[serde(deserialize_with = "accounts::config::scalar_as_string")]
    pub country_code: String,
    pub requirements: Requirements,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            verified_minutes: 30,
            code_minutes: 5,
            code_attempts: 3,
            max_failed_proofs: 5,
            lockout_hours: 24,
            country_code: "1".into(),
            requirements: Requirements::default(),
        }
    }
}

impl IdentitySettings {
    /// A phone number as written on file, in E.164 (`+15551232002`); `None` when it has no digits.
    pub fn e164(&self, number: &str) -> Option<String> {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        if number.trim_start().starts_with('+') {
            return Some(format!("+{digits}"));
        }
        let key = accounts::ids::phone_key(number);
        Some(format!("+{}{key}", self.country_code))
    }
}

/// The time the identity rules run on: the machine's clock, moved in tests and scenarios.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that runs `offset` ahead of the machine's (the scenario harness moves it).
#[derive(Default)]
pub struct OffsetClock {
    offset_seconds: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, minutes: i64) {
        self.offset_seconds.fetch_add(minutes * 60, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.offset_seconds.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Everything the dialogue needs to check who a customer is.
pub struct Identity {
    pub settings: IdentitySettings,
    pub codes: Codes,
    pub failures: Failures,
    pub sms: Arc<dyn SmsGateway>,
    /// The operator's network APIs, when configured.
    pub network: Option<Arc<dyn NetworkApi>>,
    pub clock: Arc<dyn Clock>,
}

impl Identity {
    /// Opens the stores in `db`.
    pub fn open(
        db: &storage::Store,
        settings: IdentitySettings,
        sms: Arc<dyn SmsGateway>,
        network: Option<Arc<dyn NetworkApi>>,
        clock: Arc<dyn Clock>,
    ) -> storage::Result<Self> {
        Ok(Self { codes: Codes::open(db)?, failures: Failures::open(db)?, settings, sms, network, clock })
    }

    /// Whether self-service verification is locked for `customer_id` now.
    pub fn is_locked(&self, customer_id: &str) -> storage::Result<bool> {
        let window = chrono::Duration::hours(self.settings.lockout_hours as i64);
        let n_failed = self.failures.count_since(customer_id, self.clock.now() - window)?;
        Ok(n_failed >= self.settings.max_failed_proofs as usize)
    }

    /// The OAuth `state` of a network verification for a conversation: its id, an expiry in
    /// unix seconds and a signature (`<id>.<expires>.<hex>`), valid for 10 minutes.
    pub fn network_state(&self, conversation_id: &str) -> String {
        let expires = (self.clock.now() + chrono::Duration::minutes(10)).timestamp();
        let text = format!("{conversation_id}.{expires}");
        format!("{text}.{}", self.codes.sign(&text))
    }

    /// The conversation a network verification's `state` names, when it is genuine and unexpired.
    pub fn check_network_state(&self, state: &str) -> Option<String> {
        let (text, signature) = state.rsplit_once('.')?;
        let (conversation_id, expires) = text.rsplit_once('.')?;
        let expected = self.codes.sign(text);
        let genuine: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), signature.as_bytes()).into();
        let unexpired = expires.parse::<i64>().is_ok_and(|expires| self.clock.now().timestamp() < expires);
        (genuine && unexpired && !conversation_id.is_empty()).then(|| conversation_id.to_string())
    }

    /// Records a failed proof for `customer_id`; returns whether it is now locked.
    pub fn record_failure(&self, customer_id: &str) -> storage::Result<bool> {
        self.failures.record(customer_id, self.clock.now())?;
        self.is_locked(customer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parse() {
        assert!(Assurance::Anonymous < Assurance::Claimed && Assurance::Claimed < Assurance::Verified);
        for level in [Assurance::Anonymous, Assurance::Claimed, Assurance::Verified] {
            assert_eq!(level.as_str().parse::<Assurance>(), Ok(level));
        }
        assert!("trusted".parse::<Assurance>().is_err());
    }

    #[test]
    fn every_account_read_and_change_needs_verification_by_default() {
        let requirements = Requirements::default();
        for kind in FACT_KINDS {
            assert_eq!(requirements.fact(kind), Assurance::Verified, "{kind}");
        }
        for action in ["get_bills_for_customer", "make_payment", "refuel_data", "get_customer_by_phone", "change_plan"]
        {
            assert_eq!(requirements.action(action), Assurance::Verified, "{action}");
        }
        assert_eq!(requirements.action("transfer_to_human_agents"), Assurance::Anonymous);
        assert_eq!(requirements.fact("something new"), Assurance::Verified);
    }

    #[test]
    fn network_states_are_signed_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::open_sled(&dir.path().join("db"), None).unwrap();
        let clock = Arc::new(OffsetClock::default());
        let outbox: Arc<dyn SmsGateway> = Arc::new(Outbox::in_data_dir(dir.path()));
        let identity = Identity::open(&db, IdentitySettings::default(), outbox, None, clock.clone()).unwrap();
        let state = identity.network_state("conv-1");
        assert_eq!(identity.check_network_state(&state).as_deref(), Some("conv-1"));
        let forged = state.replace("conv-1", "conv-2");
        assert_eq!(identity.check_network_state(&forged), None);
        for bad in ["", "conv-1", "conv-1.9999999999.00", "a.b.c.d"] {
            assert_eq!(identity.check_network_state(bad), None, "{bad}");
        }
        clock.advance(11);
        assert_eq!(identity.check_network_state(&state), None, "expired");
    }

    #[test]
    fn numbers_on_file_become_e164() {
        let settings = IdentitySettings::default();
        assert_eq!(settings.e164("555-123-2002").as_deref(), Some("+15551232002"));
        assert_eq!(settings.e164("+44 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(settings.e164("1 (555) 123-2002").as_deref(), Some("+15551232002"));
        assert_eq!(settings.e164("none"), None);
    }
}
