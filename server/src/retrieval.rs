//! The knowledge base as the server uses it: the sentence encoder adapted to
//! `knowledge::Embedder`, the configured backend, the demo pack, and retrieval for the engine.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::BadInput;
use crate::config::Settings;
use crate::dialogue::Retrieve;
use crate::dialogue::answer::Passage;

/// The built-in telco knowledge pack (`knowledge.dirs = ["demo"]`).
pub fn demo_pack_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../knowledge/packs/telco"))
}

/// `inference::SentenceEmbedder` as the knowledge crate needs it.
pub struct EncoderForKnowledge(pub Arc<inference::SentenceEmbedder>);

impl knowledge::Embedder for EncoderForKnowledge {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, knowledge::EmbedError> {
        self.0.embed(texts).map_err(knowledge::EmbedError::new)
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.0.count_tokens(text)
    }
    fn model_id(&self) -> String {
        self.0.model_id().to_string()
    }
}

/// The knowledge settings as the knowledge crate takes them.
pub fn knowledge_config(settings: &Settings) -> anyhow::Result<knowledge::KnowledgeConfig> {
    let backend = match settings.knowledge.backend.as_str() {
        "embedded" => knowledge::Backend::Embedded,
        "qdrant" => knowledge::Backend::Qdrant {
            url: settings.knowledge.qdrant.url.clone(),
            api_key: Some(settings.knowledge.qdrant.api_key.expose().to_string()).filter(|key| !key.is_empty()),
            collection: settings.knowledge.qdrant.collection.clone(),
        },
        other => {
            return Err(BadInput(format!("knowledge.backend must be \"embedded\" or \"qdrant\", not {other:?}")).into());
        }
    };
    Ok(knowledge::KnowledgeConfig { backend, ..knowledge::KnowledgeConfig::default() })
}

/// The folders of `knowledge.dirs`, with `demo` resolved to the built-in pack.
pub fn configured_dirs(settings: &Settings) -> Vec<PathBuf> {
    settings.knowledge.dirs.iter().map(|dir| if dir == "demo" { demo_pack_dir() } else { PathBuf::from(dir) }).collect()
}

/// Opens the knowledge base under the data dir.
pub fn open(
    settings: &Settings,
    embedder: Arc<inference::SentenceEmbedder>,
) -> anyhow::Result<knowledge::KnowledgeBase> {
    let dir = settings.data_dir.join("knowledge");
    knowledge::KnowledgeBase::open(&dir, knowledge_config(settings)?, Arc::new(EncoderForKnowledge(embedder)))
        .with_context(|| format!("opening the knowledge base at {}", dir.display()))
}

/// Opens the knowledge base and ingests the configured folders (incrementally).
pub fn open_and_ingest(
    settings: &Settings,
    embedder: Arc<inference::SentenceEmbedder>,
) -> anyhow::Result<Arc<KnowledgeRetriever>> {
    let kb = open(settings, embedder)?;
    let dirs = configured_dirs(settings);
    let report = kb.ingest(&dirs, false).context("ingesting the configured knowledge folders")?;
    for skipped in &report.skipped {
        tracing::warn!(file = %skipped.path.display(), reason = %skipped.reason, "knowledge file skipped");
    }
    tracing::info!(?report, "knowledge ready");
    Ok(Arc::new(KnowledgeRetriever(kb)))
}

/// The knowledge base as the engine's retriever.
pub struct KnowledgeRetriever(pub knowledge::KnowledgeBase);

impl Retrieve for KnowledgeRetriever {
    fn retrieve(&self, query: &str, query_embedding: &[f32], k: usize) -> anyhow::Result<Vec<Passage>> {
        let hits = self.0.search_with_embedding(query, query_embedding, k, None, knowledge::SearchMode::Hybrid)?;
        Ok(hits
            .into_iter()
            .map(|hit| Passage {
                chunk_id: hit.chunk_id,
                document: hit.document,
                section: hit.section,
                text: hit.text,
                score: hit.score,
                vector_similarity: hit.vector_similarity,
            })
            .collect())
    }
}
