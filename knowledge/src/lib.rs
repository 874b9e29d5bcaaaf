//! Switchboard's knowledge layer: the operator's documents, chunked, indexed and searched.
//!
//! [`KnowledgeBase`] ingests folders of Markdown, plain text, HTML, JSON and TOML files
//! ([`KnowledgeBase::ingest`]) and splits them along headings into chunks bounded by the
//! embedding model's tokens: small neighbouring sections share a chunk (a short document is
//! often one chunk), a section is kept whole when it fits a chunk of its own, and a long section
//! is split with a small overlap. A chunk keeps its headings as lines of its text and its
//! heading path as its *section* (e.g. `Late payment fees > How much is the late fee?`).
//! Every chunk is indexed twice:
//!
//! - **lexically**, with tantivy BM25 on disk (English stemming and stop words, typo correction
//!   of unknown query words against the index vocabulary, telecom synonyms added to queries at
//!   a lower weight, section path and title as lightly boosted fields);
//! - **by meaning**, with vectors from an [`Embedder`] the caller provides (the crate does not
//!   depend on a model runtime): the embedding of the chunk's heading path and text, plus half
//!   the embedding of its outline (the headings alone), normalised. Vectors live either in the
//!   embedded store ([`Backend::Embedded`]: sled on disk, an exact SIMD-friendly scan over one
//!   contiguous `f32` matrix in memory) or in a Qdrant server ([`Backend::Qdrant`]).
//!
//! [`KnowledgeBase::search`] runs both (in parallel) and fuses the rankings with weighted
//! reciprocal rank fusion; [`SearchMode`] selects one method alone, [`Filter`] restricts by
//! document type or document, and query embeddings are kept in an LRU cache
//! ([`KnowledgeBase::search_with_embedding`] takes one the caller already has).
//!
//! Ingestion is incremental: a file whose content hash is unchanged is skipped, a changed file
//! replaces its chunks, a file gone from an ingested folder loses its chunks. Chunk ids are
//! stable (a hash of file, position and text). Unreadable or unparsable files are reported by
//! name and skipped; a previously indexed version of such a file stays indexed.
//!
//! A pack may also hold structured facts in a `catalogue.toml` at its root ([`catalogue`]):
//! plans, fees, roaming zones and terms as typed data, which ingestion leaves out.
//!
//! **Document types** (`doc_type`, used by filters): the `doc_type` (or `type`, `category`)
//! key of a Markdown front matter or a top-level `doc_type` key of a JSON/TOML file; otherwise
//! the first folder under the ingested folder (`packs/telco/billing/late-fees.md` ingested as
//! `packs/telco` is `billing`); for files directly in the ingested folder, that folder's name.
//! Values are lowercased slugs.
//!
//! On disk, under the directory given to [`KnowledgeBase::open`]: `store/` (sled: file and
//! chunk records, the index settings and, for the embedded backend, the vectors) and
//! `lexical/` (tantivy). The sled store is the source of truth; the lexical index is rebuilt
//! from it when they disagree, e.g. after a crash. One process at a time opens a directory.

mod cache;
pub mod catalogue;
mod chunk;
mod config;
pub mod demo_pack;
mod embed;
mod error;
mod extract;
mod fusion;
mod kb;
mod lexical;
mod normalise;
pub mod qdrant;
mod store;
mod synonyms;
mod vector;

pub use catalogue::{CATALOGUE_FILE, Catalogue, CatalogueError};
pub use config::{Backend, Filter, Hit, IngestReport, KnowledgeConfig, KnowledgeStats, SearchMode, SkippedFile};
pub use embed::{EmbedError, Embedder, HashEmbedder};
pub use error::{Error, Result};
pub use extract::Format;
pub use fusion::reciprocal_rank_fusion;
pub use kb::{KnowledgeBase, MAX_K, MAX_QUERY_CHARS};
pub use normalise::normalise_query;
pub use synonyms::TELECOM_SYNONYMS;
pub use vector::{EmbeddedVectors, VectorEntry, VectorIndex};
