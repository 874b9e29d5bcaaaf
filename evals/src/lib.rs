//! evals

pub mod answers;
pub mod intents;
pub mod retrieval;
pub mod scenarios;
