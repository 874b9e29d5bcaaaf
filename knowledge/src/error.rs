//! The crate's error type.

use std::path::PathBuf;

use crate::embed::EmbedError;

/// Everything that can go wrong in the knowledge layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedder failed.
    #[error("embedding failed: {0}")]
    Embed(#[from] EmbedError),
    /// The embedder broke its contract (wrong number or size of vectors).
    #[error("embedder returned {got} for {expected}")]
    EmbedderContract { expected: String, got: String },
    /// A query was empty or only whitespace.
    #[error("query is empty")]
    EmptyQuery,
    /// A precomputed query embedding has the wrong dimension.
    #[error("query embedding has dimension {got}, the index uses {expected}")]
    QueryDimension { expected: usize, got: usize },
    /// A folder given to `ingest` does not exist.
    #[error("{path} does not exist or cannot be read")]
    MissingPath { path: PathBuf },
    /// Another process holds the index.
    #[error("knowledge index at {path} is in use by another process")]
    Locked { path: PathBuf },
    /// The configuration is unusable.
    #[error("invalid knowledge configuration: {0}")]
    Config(String),
    /// File system error.
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The sled metadata store failed.
    #[error("knowledge store error: {0}")]
    Store(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("corrupt record in knowledge store: {0}")]
    Corrupt(String),
    /// Tantivy failed.
    #[error("lexical index error: {0}")]
    Lexical(#[from] tantivy::TantivyError),
    /// The Qdrant server failed or could not be reached.
    #[error("qdrant error: {0}")]
    Qdrant(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
