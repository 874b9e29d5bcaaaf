//! Public configuration and result types.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where vectors live.
#[derive(Clone, PartialEq, Default)]
pub enum Backend {
    /// On disk under the knowledge directory (sled), searched by an exact in-memory scan.
    #[default]
    Embedded,
    /// A Qdrant server (gRPC URL, e.g. `http://localhost:6334`).
    Qdrant { url: String, api_key: Option<String>, collection: String },
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Embedded => f.write_str("Embedded"),
            Backend::Qdrant { url, api_key, collection } => f
                .debug_struct("Qdrant")
                .field("url", url)
                .field("api_key", &api_key.as_ref().map(|_| "<redacted>"))
                .field("collection", collection)
                .finish(),
        }
    }
}

/// Settings of a [`crate::KnowledgeBase`]. `Default` gives the values used by the demo.
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeConfig {
    /// Vector backend.
    pub backend: Backend,
    /// Maximum tokens per chunk, its context (heading path) included, as counted by
    /// [`crate::Embedder::count_tokens`] (less what it counts for an empty text). Keep it within
    /// the encoder's window: all-MiniLM-L6-v2 reads 254 tokens besides `[CLS]` and `[SEP]`.
    pub chunk_max_tokens: usize,
    /// Tokens of trailing text repeated at the start of the next chunk of the same section.
    pub chunk_overlap_tokens: usize,
    /// Weight of a chunk's outline (its heading path and headings) in its vector: the stored
    /// vector is the normalised sum of the text's embedding and this times the outline's.
    /// Questions often resemble headings; 0 embeds the text alone.
    pub outline_weight: f32,
    /// Texts per call to the embedder during ingestion.
    pub embed_batch_size: usize,
    /// Query embeddings kept in the LRU cache (0 disables it).
    pub query_cache_capacity: usize,
    /// Candidates taken from each method before fusion.
    pub fusion_candidates: usize,
    /// The `k` of reciprocal rank fusion.
    pub rrf_k: f32,
    /// Weight of the lexical ranking in fusion.
    pub lexical_weight: f32,
    /// Weight of the vector ranking in fusion.
    pub vector_weight: f32,
    /// Candidates of the fused ranking scored again by the second stage (0 or 1: no rerank).
    pub rerank_candidates: usize,
    /// Weights of the second stage's features: the fused score, the BM25 score over the best
    /// BM25 score, the cosine similarity, the share of the question's words (weighted by
    /// rarity) in the chunk, that share in its section path, and the best cosine similarity of
    /// one of the chunk's sentences.
    pub rerank_weights: [f32; 6],
    /// BM25 weight of a chunk's section path relative to its text.
    pub section_boost: f32,
    /// BM25 weight of a chunk's document title relative to its text.
    pub title_boost: f32,
    /// Groups of interchangeable words for lexical query expansion (default:
    /// [`crate::TELECOM_SYNONYMS`]); empty disables expansion.
    pub synonyms: Vec<Vec<String>>,
    /// Files larger than this are skipped (and reported).
    pub max_file_bytes: u64,
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        KnowledgeConfig {
            backend: Backend::Embedded,
            chunk_max_tokens: 250,
            chunk_overlap_tokens: 32,
            outline_weight: 0.5,
            embed_batch_size: 32,
            query_cache_capacity: 1024,
            fusion_candidates: 50,
            rrf_k: 20.0,
            lexical_weight: 1.0,
            vector_weight: 2.0,
            rerank_candidates: 20,
            rerank_weights: [1.0, 0.5, 2.0, 1.0, 0.25, 4.0],
            section_boost: 0.5,
            title_boost: 0.25,
            synonyms: crate::synonyms::TELECOM_SYNONYMS
                .iter()
                .map(|group| group.iter().map(|word| word.to_string()).collect())
                .collect(),
            max_file_bytes: 20 * 1024 * 1024,
        }
    }
}

/// Which retrieval methods a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    /// BM25 and vectors fused with reciprocal rank fusion.
    #[default]
    Hybrid,
    /// BM25 only.
    Lexical,
    /// Vector similarity only.
    Vector,
}

impl SearchMode {
    /// All modes, in the order `--compare` reports them.
    pub const ALL: [SearchMode; 3] = [SearchMode::Lexical, SearchMode::Vector, SearchMode::Hybrid];

    /// Returns the lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Lexical => "lexical",
            SearchMode::Vector => "vector",
        }
    }
}

impl fmt::Display for SearchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SearchMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hybrid" => Ok(SearchMode::Hybrid),
            "lexical" | "bm25" => Ok(SearchMode::Lexical),
            "vector" | "dense" => Ok(SearchMode::Vector),
            other => Err(format!("unknown search mode {other:?} (expected hybrid, lexical or vector)")),
        }
    }
}

/// Restricts a search to chunks whose metadata matches. Within a field, any listed value
/// matches; across fields, all fields must match; an empty field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Allowed document types (e.g. `plans`, `billing`).
    pub doc_types: Vec<String>,
    /// Allowed document file names (e.g. `late-fees.md`).
    pub documents: Vec<String>,
}

impl Filter {
    /// A filter on one document type.
    pub fn doc_type(doc_type: impl Into<String>) -> Self {
        Filter { doc_types: vec![doc_type.into()], documents: Vec::new() }
    }

    /// Also allows another document type.
    pub fn with_doc_type(mut self, doc_type: impl Into<String>) -> Self {
        self.doc_types.push(doc_type.into());
        self
    }

    /// Restricts to a document (file name); may be called several times.
    pub fn with_document(mut self, document: impl Into<String>) -> Self {
        self.documents.push(document.into());
        self
    }

    /// Returns whether a chunk with this metadata passes the filter.
    pub fn matches(&self, doc_type: &str, document: &str) -> bool {
        (self.doc_types.is_empty() || self.doc_types.iter().any(|t| t == doc_type))
            && (self.documents.is_empty() || self.documents.iter().any(|d| d == document))
    }
}

/// One retrieved chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Stable id: derived from the file, the chunk's position and its text.
    pub chunk_id: String,
    /// The document's file name, e.g. `late-fees.md`.
    pub document: String,
    /// The file's full path at ingestion.
    pub path: PathBuf,
    /// Document title.
    pub title: String,
    /// Heading path, e.g. `Late payment fees > How much is the late fee?`.
    pub section: String,
    /// Document type (see the crate docs for how it is derived).
    pub doc_type: String,
    /// The chunk's text.
    pub text: String,
    /// Ranking score: for hybrid search, in (0, 1]: the reranker's weighted mean of its features
    /// for the first candidates, the normalised reciprocal-rank-fusion score (1.0 = ranked first
    /// by both methods) when nothing is reranked; BM25 score for lexical, cosine similarity for
    /// vector.
    pub score: f32,
    /// BM25 score, when the lexical search returned this chunk.
    pub lexical_score: Option<f32>,
    /// Cosine similarity to the query, when the vector search returned this chunk; useful as an
    /// absolute relevance signal (RRF scores are only relative).
    pub vector_similarity: Option<f32>,
}

/// A file that could not be ingested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// What an ingestion did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// New files indexed.
    pub added: usize,
    /// Changed files re-indexed.
    pub updated: usize,
    /// Files whose content hash had not changed.
    pub unchanged: usize,
    /// Files gone from the folders whose chunks were removed.
    pub deleted: usize,
    /// Files with an unsupported extension.
    pub ignored: usize,
    /// Files that could not be read or parsed; a previously indexed version stays indexed.
    pub skipped: Vec<SkippedFile>,
    /// Chunks written.
    pub chunks_added: usize,
    /// Chunks removed.
    pub chunks_removed: usize,
    /// Chunks in the index afterwards.
    pub chunks_total: usize,
    /// Wall time.
    pub seconds: f64,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} added, {} updated, {} unchanged, {} deleted, {} skipped, {} ignored; {} chunks written, {} removed, {} in the index ({:.1} s)",
            self.added,
            self.updated,
            self.unchanged,
            self.deleted,
            self.skipped.len(),
            self.ignored,
            self.chunks_added,
            self.chunks_removed,
            self.chunks_total,
            self.seconds
        )
    }
}

/// Size and identity of an index.
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeStats {
    pub n_files: usize,
    pub n_chunks: usize,
    pub model_id: String,
    pub dim: usize,
    pub backend: String,
    /// Query-embedding cache hits and misses since open.
    pub cache_hits: u64,
    pub cache_misses: u64,
}
