//! Integration tests of the knowledge crate: real sled and tantivy in temporary directories.

mod fusion;
mod ingest;
mod pack;
mod qdrant;
mod search;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use knowledge::{Embedder, HashEmbedder, KnowledgeBase, KnowledgeConfig};

/// A knowledge base in a temporary directory, with documents in another.
pub struct TestKb {
    pub kb: KnowledgeBase,
    pub index_dir: tempfile::TempDir,
    pub docs: tempfile::TempDir,
}

impl Default for TestKb {
    fn default() -> Self {
        Self::new()
    }
}

impl TestKb {
    pub fn new() -> Self {
        Self::with(Arc::new(HashEmbedder::new(64)), KnowledgeConfig::default())
    }

    pub fn with(embedder: Arc<dyn Embedder>, config: KnowledgeConfig) -> Self {
        let index_dir = tempfile::tempdir().unwrap();
        let docs = tempfile::tempdir().unwrap();
        let kb = KnowledgeBase::open(index_dir.path(), config, embedder).unwrap();
        TestKb { kb, index_dir, docs }
    }

    /// Writes a document (creating folders) and returns its path.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.docs.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn ingest(&self) -> knowledge::IngestReport {
        self.kb.ingest(&[self.docs.path().to_path_buf()], false).unwrap()
    }

    /// Documents of the top `k` hybrid hits.
    pub fn top_documents(&self, query: &str, k: usize) -> Vec<String> {
        self.kb.search(query, k, None).unwrap().into_iter().map(|hit| hit.document).collect()
    }
}

pub fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packs/telco")
}

pub fn qa_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../evals/qa/telco.jsonl")
}
