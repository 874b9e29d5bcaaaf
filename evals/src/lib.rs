//! evals

pub mod intents;
pub mod scenarios;
