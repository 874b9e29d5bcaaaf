//! Switchboard's engine: conversations as append-only event logs, the dialogue engine that
//! turns a customer's message into a reply, and the agent console's domain.
//!
//! - [`conversations`]: the conversation store (trees `conversations` and
//!   `conversation_events`); a conversation's state is replayed from its log.
//! - [`dialogue`]: the turn loop shared by every channel: understanding, retrieval, flows as
//!   data, account actions through `accounts`, replies.
//! - [`console`]: agents, sessions, the desk, the queue and reports.
//! - [`identity`]: assurance levels, proofs of who the customer is (texted codes, the channel,
//!   the network), and the lockout after failed proofs.
//! - [`retrieval`]: the knowledge base as the dialogue uses it.
//!
//! Design choice: this crate knows no HTTP framework, no configuration files and no page
//! templates. It takes the plain settings structs of [`config`] (nested by `server::config`)
//! and returns domain values; `server` is its HTTP shell and `web` renders its views.

pub mod config;
pub mod console;
pub mod conversations;
pub mod dialogue;
pub mod identity;
pub mod retrieval;

/// An error caused by what the user gave (arguments, files, input): the command line exits
/// with status 2 on it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
