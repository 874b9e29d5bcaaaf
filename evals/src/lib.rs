//! evals

pub mod intents;
pub mod retrieval;
pub mod scenarios;
