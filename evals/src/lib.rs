//! evals

pub mod intents;
