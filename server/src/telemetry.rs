//! Logging with `tracing`; `RUST_LOG` overrides the default level.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (logs go to standard error); later calls do nothing.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
