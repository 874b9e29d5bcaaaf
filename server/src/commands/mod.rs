//! Command implementations behind the `switchboard` CLI.
