//! Integration tests of the engine crate: real models, real sled, real tantivy.

mod retrieval;

use std::path::{Path, PathBuf};

/// The demo knowledge pack as it is in the source tree.
pub fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../knowledge/packs/telco")
}

/// The demo pack's own retrieval questions.
pub fn qa_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../evals/qa/telco.jsonl")
}
