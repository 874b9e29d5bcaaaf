//! prompts

/// The demo account seed (tau2 `db.toml` shape): fictional customers on the tau2 plans.
pub const DEMO_ACCOUNTS: &str = include_str!("../telco/accounts.toml");

/// The telco intent training set (`intents: [{name, examples}]`), written for the project.
pub const TELCO_INTENTS: &str = include_str!("../telco/intents.yaml");
