//! evals

pub mod answers;
pub mod beir;
pub mod intents;
pub mod retrieval;
pub mod scenarios;
