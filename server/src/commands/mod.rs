//! Command implementations behind the `switchboard` command line.

pub mod accounts;
pub mod agents;
pub mod answers;
pub mod beir;
pub mod bench;
pub mod chat;
pub mod intents;
pub mod knowledge;
pub mod load;
pub mod migrate;
pub mod models;
pub mod scenarios;
pub mod serve;
