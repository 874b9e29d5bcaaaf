//! The knowledge base as the engine uses it: the sentence encoder adapted to
//! `knowledge::Embedder` (the one adapter), the configured backend, the demo pack, and
//! retrieval for the dialogue.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::BadInput;
use crate::config::KnowledgeSettings;
use crate::dialogue::Retrieve;
use crate::dialogue::answer::Passage;

/// The name of the built-in telco knowledge pack in `knowledge.dirs`.
pub const DEMO_PACK: &str = "demo";

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
pub fn knowledge_config(settings: &KnowledgeSettings) -> anyhow::Result<knowledge::KnowledgeConfig> {
    let backend = match settings.backend.as_str() {
        "embedded" => knowledge::Backend::Embedded,
        "qdrant" => knowledge::Backend::Qdrant {
            url: settings.qdrant.url.clone(),
            api_key: Some(settings.qdrant.api_key.expose().to_string()).filter(|key| !key.is_empty()),
            collection: settings.qdrant.collection.clone(),
        },
        other => {
            return Err(BadInput(format!("knowledge.backend must be \"embedded\" or \"qdrant\", not {other:?}")).into());
        }
    };
    Ok(knowledge::KnowledgeConfig { backend, ..knowledge::KnowledgeConfig::default() })
}

/// The folders of `knowledge.dirs`, with `demo` resolved to the built-in pack, which is
/// written out of the binary under the data dir (only files that changed are rewritten).
pub fn configured_dirs(settings: &KnowledgeSettings, data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    settings
        .dirs
        .iter()
        .map(|dir| {
            if dir == DEMO_PACK {
                let target = data_dir.join("packs").join("telco");
                knowledge::demo_pack::write_to(&target)
                    .with_context(|| format!("writing the demo knowledge pack to {}", target.display()))?;
                Ok(target)
            } else {
                Ok(PathBuf::from(dir))
            }
        })
        .collect()
}

/// The structured facts of the configured knowledge folders (`catalogue.toml` at a folder's
/// root; the demo pack has one), validated; `None` when no folder has one.
pub fn catalogue(settings: &KnowledgeSettings, data_dir: &Path) -> anyhow::Result<Option<Arc<knowledge::Catalogue>>> {
    let dirs = configured_dirs(settings, data_dir)?;
    let catalogue = knowledge::Catalogue::find(&dirs).map_err(|error| BadInput(error.to_string()))?;
    Ok(catalogue.map(Arc::new))
}

/// Opens the knowledge base under the data dir.
pub fn open(
    settings: &KnowledgeSettings,
    data_dir: &Path,
    embedder: Arc<inference::SentenceEmbedder>,
) -> anyhow::Result<knowledge::KnowledgeBase> {
    let dir = data_dir.join("knowledge");
    knowledge::KnowledgeBase::open(&dir, knowledge_config(settings)?, Arc::new(EncoderForKnowledge(embedder)))
        .with_context(|| format!("opening the knowledge base at {}", dir.display()))
}

/// Opens the knowledge base and ingests the configured folders (incrementally).
pub fn open_and_ingest(
    settings: &KnowledgeSettings,
    data_dir: &Path,
    embedder: Arc<inference::SentenceEmbedder>,
) -> anyhow::Result<Arc<KnowledgeRetriever>> {
    let kb = open(settings, data_dir, embedder)?;
    let dirs = configured_dirs(settings, data_dir)?;
    let report = kb.ingest(&dirs, false).context("ingesting the configured knowledge folders")?;
    for skipped in &report.skipped {
        tracing::warn!(file = %skipped.path.display(), reason = %skipped.reason, "knowledge file skipped");
    }
    tracing::info!(?report, "knowledge ready");
    let retriever = Arc::new(KnowledgeRetriever(kb));
    if settings.backend == "qdrant" && settings.qdrant.refresh_secs > 0 {
        watch_shared_collection(&retriever, Duration::from_secs(settings.qdrant.refresh_secs))?;
    }
    Ok(retriever)
}

/// Every `every`, reloads the knowledge base's copy of the shared collection when another
/// instance changed it; stops when the knowledge base is dropped.
fn watch_shared_collection(retriever: &Arc<KnowledgeRetriever>, every: Duration) -> anyhow::Result<()> {
    let retriever = Arc::downgrade(retriever);
    std::thread::Builder::new()
        .name("knowledge-refresh".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(retriever) = retriever.upgrade() else { return };
                match retriever.0.refresh() {
                    Ok(true) => tracing::info!("knowledge reloaded: the shared collection changed"),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "checking the shared knowledge collection failed"),
                }
            }
        })
        .context("starting the knowledge refresh thread")?;
    Ok(())
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

    fn coverage(&self, question: &str, text: &str) -> anyhow::Result<Option<f32>> {
        Ok(self.0.coverage(question, text)?)
    }
}
