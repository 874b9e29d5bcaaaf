//! The account system: the operator's system of record for the demo, the actions the assistant
//! and agents may take on it, the policy they obey, the audit log, and hooks that hand the same
//! actions to the operator's real systems.
//!
//! - [`domain`]: typed plans, customers, lines, devices, bills and payments in the tau2-bench
//!   telecom shape (money in cents, data in megabytes, statuses as enums).
//! - [`data::AccountsData`]: a whole database; parses the tau2 `db.toml` shape
//!   (`switchboard accounts import FILE`).
//! - [`store::AccountStore`]: trees in the process's `storage::Store`; every change is one flushed transaction; snapshots
//!   and dotted-path reads for tests and scenario checks.
//! - [`ActionRegistry`]: runs an [`ActionRequest`] for an [`Actor`] under the policy, with
//!   confirmation tokens, idempotency keys and an append-only audit log; refusals are typed
//!   ([`Refusal`]) and change nothing.
//! - [`hooks`]: signed, retried, circuit-broken HTTP deliveries to the operator (`HOOKS.md`).
//!
//! Design choice: the policy lives in the actions ([`policy`]), not in the dialogue, so no
//! channel, prompt or model output can talk the system into a change the policy forbids.
//! This crate knows no HTTP framework and no configuration files: it takes the plain structs
//! of [`config`], which `server::config` nests; `server`'s `http::staff` is its HTTP shell.

pub mod actions;
pub mod audit;
pub mod config;
pub mod data;
pub mod domain;
pub mod hooks;
pub mod ids;
pub mod mask;
pub mod money;
pub mod policy;
pub mod registry;
pub mod safety;
pub mod setup;
pub mod store;

pub use actions::{ActionKind, ActionName, ActionOutput, ActionRequest, Refusal, catalog};
pub use audit::{AuditEntry, AuditResult};
pub use config::{AccountSettings, HookSettings, Secret};
pub use data::AccountsData;
pub use hooks::{HookEndpoint, Hooks};
pub use ids::{BillId, ConversationId, CustomerId, IdempotencyKey, LineId, PlanId};
pub use registry::{ActionCall, ActionOutcome, ActionRegistry, Clock, RegistryOptions, TAU2_TODAY};
pub use safety::{Actor, ConfirmationToken};
pub use setup::open_registry;
pub use store::{AccountStore, ImportMode};

/// Everything that can go wrong in the account system.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid accounts data: {0}")]
    InvalidAccounts(String),
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("invalid arguments for {action}: {why}")]
    InvalidArguments { action: String, why: String },
    #[error("refused ({code}): {message}", code = .0.code(), message = .0.customer_message())]
    Refused(Refusal),
    #[error("idempotency key {key:?} was already used for another request")]
    IdempotencyConflict { key: String },
    #[error("{action} changes the account and needs an idempotency key")]
    IdempotencyKeyRequired { action: String },
    #[error("{action} needs the customer's confirmation token")]
    ConfirmationRequired { action: String },
    #[error("the confirmation token is not valid: {why}")]
    ConfirmationInvalid { why: &'static str },
    #[error("the confirmation token has expired")]
    ConfirmationExpired,
    #[error("the confirmation token was already used")]
    ConfirmationUsed,
    #[error("invalid hook for {action:?}: {why}")]
    InvalidHook { action: String, why: String },
    #[error("the hook for {action} failed after {n_attempts} attempts: {why}")]
    HookFailed { action: String, n_attempts: u32, why: String },
    #[error("the hook for {action} is paused after repeated failures (circuit open)")]
    HookCircuitOpen { action: String },
    #[error("the hook for {action} answered with something that is not its result: {why}")]
    HookBadResponse { action: String, why: String },
    #[error("the account store at {0} is in use by another process (is the server running?)")]
    Locked(String),
    #[error("the account store has schema {found}, newer than this build's {supported}")]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("account store: {0}")]
    Storage(#[from] storage::Error),
    #[error("account store holds a corrupt record: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The built-in demo seed's name in `accounts.seed`.
pub const DEMO_SEED: &str = "demo";

/// Loads an `accounts.seed` value: `demo` (the built-in seed) or a path to a tau2-shaped file.
pub fn load_seed(seed: &str) -> Result<AccountsData> {
    if seed.trim() == DEMO_SEED {
        AccountsData::from_toml_str(prompts::DEMO_ACCOUNTS)
    } else {
        AccountsData::from_file(std::path::Path::new(seed.trim()))
    }
}
