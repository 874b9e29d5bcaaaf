//! Switchboard's server: configuration, the command line, the HTTP layer, conversations,
//! account actions, the dialogue engine and the channels.
//!
//! The HTTP layer is a shell over engine functions; only `http` and the channel adapters
//! know actix-web. `app` wires the leaves (`inference`, `knowledge`, `prompts`) together.

pub mod accounts;
pub mod app;
pub mod channels;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod conversations;
pub mod dialogue;
pub mod http;
pub mod retrieval;
pub mod telemetry;

/// An error caused by what the user gave us (arguments, files, input): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
