//! Switchboard's server: configuration, the command line, the HTTP layer, conversations,
//! account actions, the dialogue engine and the channels.
//!
//! The HTTP layer is a shell over engine functions; only `http` and the channel adapters
//! know actix-web.

pub mod accounts;
pub mod commands;
