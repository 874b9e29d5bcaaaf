//! prompts

/// The demo account seed (tau2 `db.toml` shape): fictional customers on the tau2 plans.
pub const DEMO_ACCOUNTS: &str = include_str!("../telco/accounts.toml");
