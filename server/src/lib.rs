//! Switchboard's server: the binary `switchboard`, its command line and configuration, the
//! channels (REST, server-sent events, the web widget, WhatsApp, the agent console) and the
//! HTTP layer.
//!
//! The HTTP layer is a shell over engine functions: a handler parses the request, calls one
//! function of `engine` or `accounts`, and converts the result. Only this crate knows
//! actix-web, figment and the `web` templates; `app` wires the crates together.

pub mod app;
pub mod channels;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console_view;
pub mod http;
pub mod telemetry;

pub use engine::BadInput;
