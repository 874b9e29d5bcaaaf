//! The demo pack's data that is not documents, compiled into the binary: the intent training
//! set, the demo account seed, the flows (including the troubleshooting trees) and the reply
//! templates, with typed parsers for the flows and replies.
//!
//! Wording and flow structure are data here so they can change without touching the engine;
//! the engine resolves the names (checks, actions, device tools, facts) they use.

pub mod flows;
pub mod replies;

pub use flows::{EndOutcome, Flow, FlowBook, Needs, Node, NodeKind, SlotDef};
pub use replies::{RenderError, Replies};

/// The telco flows and troubleshooting trees.
pub const TELCO_FLOWS: &str = include_str!("../telco/flows.yaml");
/// The telco reply templates.
pub const TELCO_REPLIES: &str = include_str!("../telco/replies.yaml");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {why}")]
    Parse { file: String, why: String },
    #[error("{file}: {why}")]
    Invalid { file: String, why: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The built-in telco flows, parsed.
pub fn telco_flows() -> Result<FlowBook> {
    FlowBook::parse("prompts/telco/flows.yaml", TELCO_FLOWS)
}

/// The built-in telco replies, parsed.
pub fn telco_replies() -> Result<Replies> {
    Replies::parse("prompts/telco/replies.yaml", TELCO_REPLIES)
}

/// The demo account seed (tau2 `db.toml` shape): fictional customers on the tau2 plans.
pub const DEMO_ACCOUNTS: &str = include_str!("../telco/accounts.toml");

/// The telco intent training set (`intents: [{name, examples}]`), written for the project.
pub const TELCO_INTENTS: &str = include_str!("../telco/intents.yaml");
