//! [`KnowledgeBase`]: ingestion and hybrid search over the lexical and vector indexes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::cache::QueryCache;
use crate::chunk::{ChunkLimits, TokenCounter, chunk_document, chunk_units, embedding_text, outline_text};
use crate::config::{Backend, Filter, Hit, IngestReport, KnowledgeConfig, KnowledgeStats, SearchMode, SkippedFile};
use crate::embed::Embedder;
use crate::extract::{Format, parse};
use crate::fusion::reciprocal_rank_fusion;
use crate::lexical::{FieldBoosts, LexicalDoc, LexicalIndex};
use crate::qdrant::{QdrantVectors, REVISION_KEY, SETTINGS_KEY, SharedChunk, SharedEntry};
use crate::store::{ChunkRecord, FORMAT_VERSION, FileRecord, IndexSettings, MetaStore, UnitVectors, encode};
use crate::vector::{EmbeddedVectors, VectorEntry, VectorIndex, normalize};
use crate::{Error, Result};

/// Queries longer than this many characters are cut (the encoder truncates anyway).
pub const MAX_QUERY_CHARS: usize = 2_000;
/// Largest `k` a search returns.
pub const MAX_K: usize = 1_000;
/// Chunks embedded and written per step of an ingestion.
const WINDOW_CHUNKS: usize = 512;
/// The least score a hit gets: hits' scores are in (0, 1].
const MIN_SCORE: f32 = 1e-6;
/// A version of a file in a shared collection that is still incomplete after this long was left
/// by an ingestion that died; the next ingestion deletes its points.
const ABANDONED_AFTER_MS: u64 = 60 * 60 * 1000;

/// The knowledge base: documents chunked, indexed with BM25 (tantivy) and embedded
/// (embedded store or Qdrant), searched with reciprocal rank fusion.
///
/// Thread-safe: searches run concurrently with each other and with an ingestion (which is
/// serialised with other ingestions and becomes visible when it finishes).
///
/// With the Qdrant backend the collection is the source of truth, shared by every instance:
/// each point carries its whole chunk, the local metadata store and lexical index are a copy
/// loaded from it at open and again by [`KnowledgeBase::refresh`] when another instance has
/// changed it, file keys are relative to the ingested folder (instances keep their folders in
/// different places), and a collection built with other settings is refused, never emptied.
pub struct KnowledgeBase {
    dir: PathBuf,
    config: KnowledgeConfig,
    embedder: Arc<dyn Embedder>,
    store: MetaStore,
    lexical: LexicalIndex,
    vectors: Box<dyn VectorIndex>,
    /// The shared collection (the Qdrant backend), also behind `vectors`.
    shared: Option<Arc<QdrantVectors>>,
    /// The shared collection's revision the local copy was loaded at.
    revision: Mutex<Option<String>>,
    cache: QueryCache,
    ingest_lock: Mutex<()>,
    dim: usize,
    backend_name: String,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase").field("dir", &self.dir).field("backend", &self.backend_name).finish()
    }
}

/// A file found while walking the ingest folders.
struct Candidate {
    path: PathBuf,
    key: String,
    format: Format,
    doc_type_default: String,
}

/// A changed file, parsed and chunked, waiting to be embedded and written.
struct PreparedFile {
    key: String,
    record: FileRecord,
    chunks: Vec<ChunkRecord>,
    previous: Option<FileRecord>,
}

impl KnowledgeBase {
    /// Opens (or creates) the knowledge base stored in `dir`.
    ///
    /// If the embedder's model, the vector dimension, the chunking settings or the backend
    /// differ from those the index was built with, the index is emptied and the next ingestion
    /// rebuilds it. Leftovers of an interrupted ingestion are cleaned up.
    ///
    /// With the Qdrant backend, a collection built with another model, dimension or chunking is
    /// refused with [`Error::Config`] naming the differences (other instances answer from it),
    /// and the local copy is loaded from the collection.
    pub fn open(dir: &Path, config: KnowledgeConfig, embedder: Arc<dyn Embedder>) -> Result<Self> {
        if config.chunk_max_tokens < 16 {
            return Err(Error::Config(format!(
                "chunk_max_tokens must be at least 16, got {}",
                config.chunk_max_tokens
            )));
        }
        if config.chunk_overlap_tokens >= config.chunk_max_tokens {
            return Err(Error::Config("chunk_overlap_tokens must be smaller than chunk_max_tokens".to_string()));
        }
        let weights = [config.rrf_k, config.lexical_weight, config.vector_weight, config.outline_weight];
        let boosts = [config.section_boost, config.title_boost];
        if !weights.iter().chain(&boosts).all(|w| w.is_finite() && *w >= 0.0) {
            return Err(Error::Config("fusion k, weights and boosts must be non-negative numbers".to_string()));
        }
        let dim = embedder.dim();
        if dim == 0 {
            return Err(Error::EmbedderContract { expected: "a positive dimension".into(), got: "0".into() });
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let store = MetaStore::open(&dir.join("store"))?;
        let lexical = LexicalIndex::open(&dir.join("lexical"), &config.synonyms)?;
        let (vectors, shared, backend_name): (Box<dyn VectorIndex>, _, String) = match &config.backend {
            Backend::Embedded => {
                (Box::new(EmbeddedVectors::open(store.db.open_tree("vectors")?, dim)?), None, "embedded".into())
            }
            Backend::Qdrant { url, api_key, collection } => {
                let shared = Arc::new(QdrantVectors::open(url, api_key.as_deref(), collection, dim)?);
                (Box::new(shared.clone()), Some(shared), format!("qdrant {url} collection {collection}"))
            }
        };
        let cache = QueryCache::new(config.query_cache_capacity);
        let knowledge = KnowledgeBase {
            dir: dir.to_path_buf(),
            config,
            embedder,
            store,
            lexical,
            vectors,
            shared,
            revision: Mutex::new(None),
            cache,
            ingest_lock: Mutex::new(()),
            dim,
            backend_name,
        };
        match &knowledge.shared {
            Some(shared) => {
                knowledge.check_shared_settings(shared)?;
                knowledge.check_settings()?;
                knowledge.load_shared(shared, false)?;
            }
            None => {
                knowledge.check_settings()?;
                knowledge.reconcile()?;
            }
        }
        Ok(knowledge)
    }

    /// The settings a shared collection must have been built with: those of this instance,
    /// whatever the server's address.
    fn shared_settings(&self) -> IndexSettings {
        IndexSettings { backend: "qdrant".to_string(), ..self.expected_settings() }
    }

    /// Refuses a shared collection built with other settings, or one whose settings were never
    /// recorded but which holds points; records them on a new, empty one.
    fn check_shared_settings(&self, shared: &QdrantVectors) -> Result<()> {
        let expected = self.shared_settings();
        let collection = shared.collection();
        let keep = "nothing was deleted; set knowledge.qdrant.collection to a new collection and ingest into it, \
                    or delete this one yourself if no instance needs it";
        match shared.metadata()?.get(SETTINGS_KEY) {
            Some(json) => {
                let stored: IndexSettings = serde_json::from_str(json).map_err(|error| {
                    Error::Config(format!("qdrant collection {collection} has unreadable settings ({error}); {keep}"))
                })?;
                if stored == expected {
                    return Ok(());
                }
                Err(Error::Config(format!(
                    "qdrant collection {collection} was built with {}, this instance uses {}; {keep}",
                    settings_differences(&stored, &expected, true),
                    settings_differences(&stored, &expected, false),
                )))
            }
            None => {
                let n_points = shared.len()?;
                if n_points > 0 {
                    return Err(Error::Config(format!(
                        "qdrant collection {collection} holds {n_points} points but no record of the model and \
                         chunking they were built with (an older version or another program made it); {keep}"
                    )));
                }
                shared.set_metadata(&[(SETTINGS_KEY, &encode_string(&expected)?), (REVISION_KEY, &new_revision())])
            }
        }
    }

    /// Reloads the local copy from the shared collection when another instance changed it
    /// (its revision moved); returns whether it did. Does nothing with the embedded backend.
    pub fn refresh(&self) -> Result<bool> {
        let Some(shared) = &self.shared else { return Ok(false) };
        let current = shared.metadata()?.remove(REVISION_KEY);
        if current.is_some() && *self.revision.lock().unwrap_or_else(|p| p.into_inner()) == current {
            return Ok(false);
        }
        let _guard = self.ingest_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.load_shared(shared, false)?;
        Ok(true)
    }

    /// Makes the local store and lexical index hold exactly the shared collection's complete
    /// files (for each file, its newest version whose chunks are all there). With `collect`,
    /// also deletes points no complete file refers to and that are old enough to be
    /// leftovers of a dead ingestion. The caller holds the ingestion lock (or owns `self`).
    fn load_shared(&self, shared: &QdrantVectors, collect: bool) -> Result<()> {
        let started = Instant::now();
        let revision = shared.metadata()?.remove(REVISION_KEY);
        let points = shared.scroll_chunks()?;
        let now = now_ms();
        let (files, leftovers) = complete_files(points, now);
        if collect && !leftovers.is_empty() {
            tracing::info!(n = leftovers.len(), "deleting points left by an ingestion that did not finish");
            shared.delete(&leftovers)?;
        }
        let local = self.store.all_files()?;
        let mut changed = 0;
        for (key, record) in &local {
            if files.get(key).is_none_or(|(shared_record, _)| shared_record != record) {
                self.lexical.delete_file(key)?;
                for id in &record.chunk_ids {
                    self.store.chunks.remove(id.as_bytes())?;
                    self.store.units.remove(id.as_bytes())?;
                }
                self.store.files.remove(key.as_bytes())?;
                changed += 1;
            }
        }
        let local: HashMap<String, FileRecord> = local.into_iter().collect();
        for (key, (record, chunks)) in &files {
            if local.get(key) == Some(record) {
                continue;
            }
            for (id, chunk) in chunks {
                let units = hex::decode(&chunk.units).map_err(|e| Error::Corrupt(format!("unit vectors: {e}")))?;
                UnitVectors::from_bytes(&units)?;
                self.store.units.insert(id.as_bytes(), units)?;
                self.store.chunks.insert(id.as_bytes(), encode(&chunk.chunk)?)?;
                self.lexical.add(&lexical_doc(id, &chunk.chunk))?;
            }
            self.store.files.insert(key.as_bytes(), encode(record)?)?;
            changed += 1;
        }
        self.lexical.commit()?;
        // Chunks of files no longer listed (e.g. a store interrupted mid-load).
        let valid: HashSet<String> = files.values().flat_map(|(record, _)| record.chunk_ids.iter().cloned()).collect();
        for key in self.store.chunks.iter().keys() {
            let key = key?;
            if !valid.contains(String::from_utf8_lossy(&key).as_ref()) {
                self.store.chunks.remove(&key)?;
                self.store.units.remove(&key)?;
            }
        }
        if self.lexical.num_docs() != self.store.chunks.len() as u64 {
            self.rebuild_lexical()?;
        }
        self.store.flush()?;
        if changed > 0 {
            self.cache.clear();
        }
        tracing::info!(
            files = files.len(),
            changed,
            ms = started.elapsed().as_millis() as u64,
            "knowledge loaded from the shared collection"
        );
        *self.revision.lock().unwrap_or_else(|p| p.into_inner()) = revision;
        Ok(())
    }

    fn expected_settings(&self) -> IndexSettings {
        IndexSettings {
            format_version: FORMAT_VERSION,
            model_id: self.embedder.model_id(),
            dim: self.dim,
            chunk_max_tokens: self.config.chunk_max_tokens,
            chunk_overlap_tokens: self.config.chunk_overlap_tokens,
            outline_weight: self.config.outline_weight,
            backend: self.backend_name.clone(),
        }
    }

    fn check_settings(&self) -> Result<()> {
        let expected = self.expected_settings();
        match self.store.settings()? {
            Some(stored) if stored == expected => Ok(()),
            stored => {
                if stored.is_some() || !self.store.files.is_empty() {
                    tracing::warn!(?stored, ?expected, "knowledge index settings changed; emptying it for a rebuild");
                    self.clear_all()?;
                }
                self.store.set_settings(&expected)?;
                self.store.flush()
            }
        }
    }

    /// Empties the index: with the shared backend only this instance's copy (which is then
    /// loaded again from the collection).
    fn clear_all(&self) -> Result<()> {
        self.store.clear()?;
        if self.shared.is_none() {
            self.vectors.clear()?;
        }
        self.lexical.clear()?;
        self.lexical.commit()?;
        self.cache.clear();
        Ok(())
    }

    /// Removes chunks and vectors no file refers to, drops file records whose chunks are
    /// missing (so they are ingested again), and rebuilds the lexical index if it disagrees.
    fn reconcile(&self) -> Result<()> {
        let files = self.store.all_files()?;
        let valid: HashSet<&str> = files.iter().flat_map(|(_, r)| r.chunk_ids.iter().map(String::as_str)).collect();
        let mut batch = sled::Batch::default();
        let mut present: HashSet<String> = HashSet::new();
        let mut n_orphans = 0;
        for key in self.store.chunks.iter().keys() {
            let key = String::from_utf8_lossy(&key?).into_owned();
            if valid.contains(key.as_str()) {
                present.insert(key);
            } else {
                batch.remove(key.as_bytes());
                n_orphans += 1;
            }
        }
        self.store.chunks.apply_batch(batch)?;
        let mut unit_batch = sled::Batch::default();
        for key in self.store.units.iter().keys() {
            let key = key?;
            if !valid.contains(String::from_utf8_lossy(&key).as_ref()) {
                unit_batch.remove(key);
            }
        }
        self.store.units.apply_batch(unit_batch)?;
        let vector_ids: Option<HashSet<String>> = self.vectors.chunk_ids()?.map(|ids| ids.into_iter().collect());
        if let Some(ids) = &vector_ids {
            let orphans: Vec<String> = ids.iter().filter(|id| !valid.contains(id.as_str())).cloned().collect();
            n_orphans += orphans.len();
            self.vectors.delete(&orphans)?;
        }
        let mut broken = Vec::new();
        for (key, record) in &files {
            let complete = record
                .chunk_ids
                .iter()
                .all(|id| present.contains(id) && vector_ids.as_ref().is_none_or(|vector_ids| vector_ids.contains(id)));
            if !complete {
                broken.push((key.clone(), record.chunk_ids.clone()));
            }
        }
        for (key, chunk_ids) in &broken {
            tracing::warn!(file = %key, "knowledge file record is incomplete; it will be ingested again");
            self.store.files.remove(key.as_bytes())?;
            for id in chunk_ids {
                self.store.chunks.remove(id.as_bytes())?;
                self.store.units.remove(id.as_bytes())?;
            }
            self.vectors.delete(chunk_ids)?;
        }
        if n_orphans > 0 {
            tracing::info!(n_orphans, "removed leftovers of an interrupted ingestion");
        }
        let n_chunks = self.store.chunks.len();
        if vector_ids.is_none() && self.vectors.len()? != n_chunks {
            tracing::warn!("vector backend disagrees with the metadata store; emptying both for a rebuild");
            self.clear_all()?;
            self.store.set_settings(&self.expected_settings())?;
        }
        if self.lexical.num_docs() != self.store.chunks.len() as u64 {
            self.rebuild_lexical()?;
        }
        self.store.flush()
    }

    fn rebuild_lexical(&self) -> Result<()> {
        tracing::info!("rebuilding the lexical index from the metadata store");
        self.lexical.clear()?;
        for entry in self.store.chunks.iter() {
            let (key, value) = entry?;
            let chunk_id = String::from_utf8_lossy(&key).into_owned();
            let record: ChunkRecord = crate::store::decode(&value, "chunk record")?;
            self.lexical.add(&lexical_doc(&chunk_id, &record))?;
        }
        self.lexical.commit()
    }

    /// Ingests every supported file under `dirs` (folders or single files), incrementally:
    /// unchanged files (same content hash) are skipped, changed files replace their chunks,
    /// and files that disappeared from these folders lose theirs. Unreadable or unparsable
    /// files are reported in [`IngestReport::skipped`] and the rest is indexed.
    ///
    /// Errors only for a missing folder or a failure of the embedder or the indexes.
    pub fn ingest(&self, dirs: &[PathBuf], progress: bool) -> Result<IngestReport> {
        let _guard = self.ingest_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = self.ingest_locked(dirs, progress);
        if result.is_err() {
            self.lexical.rollback();
            let cleanup = match &self.shared {
                Some(shared) => self.load_shared(shared, false),
                None => self.reconcile(),
            };
            if let Err(error) = cleanup {
                tracing::error!(%error, "cleaning up after a failed ingestion failed");
            }
        }
        result
    }

    fn ingest_locked(&self, dirs: &[PathBuf], progress: bool) -> Result<IngestReport> {
        let started = Instant::now();
        if let Some(shared) = &self.shared {
            // Start from what every instance sees, so that unchanged files are not written again.
            self.load_shared(shared, true)?;
        }
        let mut report = IngestReport::default();
        let mut candidates = Vec::new();
        let mut roots = Vec::new();
        for dir in dirs {
            let root = dir.canonicalize().map_err(|_| Error::MissingPath { path: dir.clone() })?;
            let shared = self.shared.is_some();
            let key_of = |path: &Path| file_key(&root, path, shared);
            if root.is_file() {
                let doc_type = root.parent().map(folder_slug).unwrap_or_else(|| "general".to_string());
                match Format::from_path(&root) {
                    Some(format) => candidates.push(Candidate {
                        key: key_of(&root),
                        path: root.clone(),
                        format,
                        doc_type_default: doc_type,
                    }),
                    None => report.ignored += 1,
                }
                roots.push((key_of(&root), false));
            } else {
                walk(&root, &root, &key_of, &mut candidates, &mut report);
                roots.push((key_of(&root), true));
            }
        }
        candidates.sort_by(|a, b| a.key.cmp(&b.key));
        candidates.dedup_by(|a, b| a.key == b.key);
        let seen: HashSet<&str> = candidates.iter().map(|c| c.key.as_str()).collect();

        // Deleted: files recorded under these roots that are not there any more.
        let mut deleted: Vec<(String, FileRecord)> = Vec::new();
        for (key, record) in self.store.all_files()? {
            let under_root = roots
                .iter()
                .any(|(root, is_dir)| if *is_dir { key.starts_with(&format!("{root}/")) } else { &key == root });
            if under_root && !seen.contains(key.as_str()) {
                deleted.push((key, record));
            }
        }

        // Changed: hash every candidate, keep those whose content differs from the record.
        let mut changed: Vec<(Candidate, Vec<u8>, String, Option<FileRecord>)> = Vec::new();
        for candidate in candidates {
            let bytes = match read_limited(&candidate.path, self.config.max_file_bytes) {
                Ok(bytes) => bytes,
                Err(reason) => {
                    report.skipped.push(SkippedFile { path: candidate.path, reason });
                    continue;
                }
            };
            let hash = hex::encode(Sha256::digest(&bytes));
            let previous = self.store.file(&candidate.key)?;
            if previous.as_ref().is_some_and(|record| record.hash == hash) {
                report.unchanged += 1;
                continue;
            }
            changed.push((candidate, bytes, hash, previous));
        }

        let total_bytes: u64 = changed.iter().map(|(_, bytes, _, _)| bytes.len() as u64).sum();
        let bar = progress_bar(progress && !changed.is_empty(), total_bytes, changed.len());
        let counter_fn = |text: &str| self.embedder.count_tokens(text);
        let counter = TokenCounter::new(&counter_fn);
        let limits =
            ChunkLimits { max_tokens: self.config.chunk_max_tokens, overlap_tokens: self.config.chunk_overlap_tokens };

        let mut window: Vec<PreparedFile> = Vec::new();
        let mut window_chunks = 0;
        let mut written: Vec<PreparedFile> = Vec::new();
        for (candidate, bytes, hash, previous) in changed {
            let n_bytes = bytes.len() as u64;
            match prepare(&candidate, &bytes, hash, previous, &counter, limits) {
                Ok(prepared) => {
                    window_chunks += prepared.chunks.len();
                    window.push(prepared);
                }
                Err(reason) => report.skipped.push(SkippedFile { path: candidate.path, reason }),
            }
            if window_chunks >= WINDOW_CHUNKS {
                self.write_window(&mut window)?;
                written.append(&mut window);
                window_chunks = 0;
            }
            bar.inc(n_bytes);
        }
        self.write_window(&mut window)?;
        written.append(&mut window);

        // Commit: lexical first, then drop replaced chunks, then the file records.
        for (key, _) in &deleted {
            self.lexical.delete_file(key)?;
        }
        self.lexical.commit()?;
        let mut stale: Vec<String> = Vec::new();
        let mut file_batch = sled::Batch::default();
        for prepared in &written {
            if let Some(previous) = &prepared.previous {
                let current: HashSet<&str> = prepared.record.chunk_ids.iter().map(String::as_str).collect();
                stale.extend(previous.chunk_ids.iter().filter(|id| !current.contains(id.as_str())).cloned());
                report.updated += 1;
            } else {
                report.added += 1;
            }
            report.chunks_added += prepared.chunks.len();
            file_batch.insert(prepared.key.as_bytes(), encode(&prepared.record)?);
        }
        for (key, record) in &deleted {
            stale.extend(record.chunk_ids.iter().cloned());
            file_batch.remove(key.as_bytes());
        }
        report.deleted = deleted.len();
        report.chunks_removed = stale.len();
        self.vectors.delete(&stale)?;
        let mut chunk_batch = sled::Batch::default();
        for id in &stale {
            chunk_batch.remove(id.as_bytes());
        }
        self.store.chunks.apply_batch(chunk_batch.clone())?;
        self.store.units.apply_batch(chunk_batch)?;
        self.store.files.apply_batch(file_batch)?;
        self.vectors.flush()?;
        self.store.flush()?;
        bar.finish_and_clear();
        if let Some(shared) = &self.shared
            && report.added + report.updated + report.deleted > 0
        {
            let revision = new_revision();
            shared.set_metadata(&[(REVISION_KEY, &revision)])?;
            *self.revision.lock().unwrap_or_else(|p| p.into_inner()) = Some(revision);
        }

        report.chunks_total = self.store.chunks.len();
        report.seconds = started.elapsed().as_secs_f64();
        for skipped in &report.skipped {
            tracing::info!(path = %skipped.path.display(), reason = %skipped.reason, "skipped a knowledge file");
        }
        tracing::info!(%report, "knowledge ingested");
        Ok(report)
    }

    /// Embeds a window of prepared files and writes their chunks (uncommitted in the lexical
    /// index; the file records are written at the end of the ingestion).
    fn write_window(&self, window: &mut [PreparedFile]) -> Result<()> {
        let chunks: Vec<&ChunkRecord> = window.iter().flat_map(|file| file.chunks.iter()).collect();
        let texts: Vec<String> = chunks.iter().map(|c| embedding_text(&c.context, &c.text)).collect();
        let mut vectors = self.embed_texts(&texts)?;
        let outline_weight = self.config.outline_weight;
        if outline_weight > 0.0 {
            let outlines: Vec<String> = chunks.iter().map(|c| outline_text(&c.context, &c.headings)).collect();
            let outline_vectors = self.embed_texts(&outlines)?;
            for (vector, outline) in vectors.iter_mut().zip(&outline_vectors) {
                vector.iter_mut().zip(outline).for_each(|(x, y)| *x += outline_weight * y);
                normalize(vector);
            }
        }
        // Every chunk's sentences, embedded once here so the reranker reads them at search time.
        let unit_texts: Vec<Vec<&str>> = chunks.iter().map(|c| chunk_units(&c.text)).collect();
        let flat: Vec<String> = unit_texts.iter().flatten().map(|unit| unit.to_string()).collect();
        let mut flat_vectors = self.embed_texts(&flat)?.into_iter();
        let mut units_batch = sled::Batch::default();
        let mut unit_bytes = Vec::with_capacity(unit_texts.len());
        let ids = window.iter().flat_map(|file| file.record.chunk_ids.iter());
        for (chunk_id, units) in ids.zip(&unit_texts) {
            let vectors: Vec<Vec<f32>> = flat_vectors.by_ref().take(units.len()).collect();
            let bytes = UnitVectors::quantize(&vectors).to_bytes();
            units_batch.insert(chunk_id.as_bytes(), bytes.clone());
            unit_bytes.push(bytes);
        }
        self.store.units.apply_batch(units_batch)?;
        let mut vectors = vectors.into_iter();
        let mut unit_bytes = unit_bytes.into_iter();
        let written_ms = now_ms();
        for file in window.iter() {
            self.lexical.delete_file(&file.key)?;
            let mut chunk_batch = sled::Batch::default();
            let mut file_vectors = Vec::with_capacity(file.chunks.len());
            let mut shared_chunks = Vec::new();
            for (index, (chunk_id, chunk)) in file.record.chunk_ids.iter().zip(&file.chunks).enumerate() {
                self.lexical.add(&lexical_doc(chunk_id, chunk))?;
                chunk_batch.insert(chunk_id.as_bytes(), encode(chunk)?);
                file_vectors.push(vectors.next().unwrap_or_default());
                let units = unit_bytes.next().unwrap_or_default();
                if self.shared.is_some() {
                    shared_chunks.push(SharedChunk {
                        chunk: chunk.clone(),
                        file_hash: file.record.hash.clone(),
                        file_title: file.record.title.clone(),
                        index: index as u32,
                        count: file.chunks.len() as u32,
                        units: hex::encode(units),
                        written_ms,
                    });
                }
            }
            self.store.chunks.apply_batch(chunk_batch)?;
            let entries: Vec<VectorEntry<'_>> = file
                .record
                .chunk_ids
                .iter()
                .zip(&file.chunks)
                .zip(&file_vectors)
                .map(|((chunk_id, chunk), vector)| VectorEntry {
                    chunk_id,
                    doc_type: &chunk.doc_type,
                    document: &chunk.document,
                    vector,
                })
                .collect();
            match &self.shared {
                Some(shared) => {
                    let entries: Vec<SharedEntry<'_>> = entries
                        .into_iter()
                        .zip(&shared_chunks)
                        .map(|(vector, chunk)| SharedEntry { vector, chunk })
                        .collect();
                    shared.upsert_shared(&entries)?;
                }
                None => self.vectors.upsert(&entries)?,
            }
        }
        Ok(())
    }

    /// Embeds texts in batches of similar length, checks and normalises the vectors.
    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&idx| texts[idx].len());
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for batch in order.chunks(self.config.embed_batch_size.max(1)) {
            let inputs: Vec<&str> = batch.iter().map(|&idx| texts[idx].as_str()).collect();
            let outputs = self.embed_checked(&inputs)?;
            for (&idx, vector) in batch.iter().zip(outputs) {
                vectors[idx] = vector;
            }
        }
        Ok(vectors)
    }

    fn embed_checked(&self, inputs: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut outputs = self.embedder.embed(inputs)?;
        if outputs.len() != inputs.len() {
            return Err(Error::EmbedderContract {
                expected: format!("{} vectors", inputs.len()),
                got: format!("{} vectors", outputs.len()),
            });
        }
        for vector in &mut outputs {
            if vector.len() != self.dim || vector.iter().any(|x| !x.is_finite()) {
                return Err(Error::EmbedderContract {
                    expected: format!("finite vectors of dimension {}", self.dim),
                    got: format!("a vector of dimension {}", vector.len()),
                });
            }
            normalize(vector);
        }
        Ok(outputs)
    }

    /// Returns the query's embedding, from the LRU cache when the same text was seen recently.
    pub fn embed_query(&self, query: &str) -> Result<Arc<[f32]>> {
        let query = crate::normalise_query(clean_query(query)?);
        let query = query.as_str();
        let key = QueryCache::key(query);
        if let Some(vector) = self.cache.get(&key) {
            return Ok(vector);
        }
        let vector: Arc<[f32]> = Arc::from(self.embed_checked(&[query])?.pop().unwrap_or_default());
        self.cache.insert(key, vector.clone());
        Ok(vector)
    }

    /// Hybrid search: the top `k` chunks for `query`, optionally filtered.
    pub fn search(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        self.search_mode(query, k, filter, SearchMode::Hybrid)
    }

    /// Search with an explicit mode (hybrid, lexical only or vector only).
    pub fn search_mode(&self, query: &str, k: usize, filter: Option<&Filter>, mode: SearchMode) -> Result<Vec<Hit>> {
        let embedding = match mode {
            SearchMode::Lexical => None,
            SearchMode::Hybrid | SearchMode::Vector => Some(self.embed_query(query)?),
        };
        self.search_inner(query, embedding.as_deref(), k, filter, mode)
    }

    /// Search with a query embedding computed by the caller (e.g. once per message and reused);
    /// it must come from the same embedder. `query` is still needed for the lexical side.
    pub fn search_with_embedding(
        &self,
        query: &str,
        embedding: &[f32],
        k: usize,
        filter: Option<&Filter>,
        mode: SearchMode,
    ) -> Result<Vec<Hit>> {
        if embedding.len() != self.dim {
            return Err(Error::QueryDimension { expected: self.dim, got: embedding.len() });
        }
        let mut embedding = embedding.to_vec();
        normalize(&mut embedding);
        self.search_inner(query, Some(&embedding), k, filter, mode)
    }

    fn search_inner(
        &self,
        query: &str,
        embedding: Option<&[f32]>,
        k: usize,
        filter: Option<&Filter>,
        mode: SearchMode,
    ) -> Result<Vec<Hit>> {
        let query = crate::normalise_query(clean_query(query)?);
        let query = query.as_str();
        let k = k.min(MAX_K);
        if k == 0 {
            return Ok(Vec::new());
        }
        let n_candidates = match mode {
            SearchMode::Hybrid => self.config.fusion_candidates.max(k),
            SearchMode::Lexical | SearchMode::Vector => k,
        };
        let boosts = FieldBoosts { section: self.config.section_boost, title: self.config.title_boost };
        let lexical_search = || self.lexical.search(query, n_candidates, filter, boosts);
        let (lexical, vector) = match (mode, embedding) {
            (SearchMode::Lexical, _) | (SearchMode::Hybrid, None) => (lexical_search()?, Vec::new()),
            (SearchMode::Vector, None) => (Vec::new(), Vec::new()),
            (SearchMode::Vector, Some(embedding)) => {
                (Vec::new(), self.vectors.search(embedding, n_candidates, filter)?)
            }
            // Both at once: the latency of a hybrid search is that of the slower method.
            (SearchMode::Hybrid, Some(embedding)) => std::thread::scope(|scope| -> Result<_> {
                let lexical = scope.spawn(lexical_search);
                let vector = self.vectors.search(embedding, n_candidates, filter)?;
                let lexical = lexical.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                Ok((lexical, vector))
            })?,
        };
        let lexical_scores: HashMap<&str, f32> = lexical.iter().map(|(id, s)| (id.as_str(), *s)).collect();
        let vector_scores: HashMap<&str, f32> = vector.iter().map(|(id, s)| (id.as_str(), *s)).collect();
        let ranked: Vec<(String, f32)> = match mode {
            SearchMode::Lexical => lexical.clone(),
            SearchMode::Vector => vector.clone(),
            SearchMode::Hybrid => {
                let lexical_ids: Vec<String> = lexical.iter().map(|(id, _)| id.clone()).collect();
                let vector_ids: Vec<String> = vector.iter().map(|(id, _)| id.clone()).collect();
                let fused = reciprocal_rank_fusion(
                    &[(&lexical_ids, self.config.lexical_weight), (&vector_ids, self.config.vector_weight)],
                    self.config.rrf_k,
                );
                self.rerank(query, embedding, fused, &lexical_scores, &vector_scores)?
            }
        };
        let mut hits = Vec::with_capacity(k);
        for (chunk_id, score) in ranked {
            if hits.len() == k {
                break;
            }
            // A chunk can vanish between the index lookup and here if an ingestion commits.
            let Some(record) = self.store.chunk(&chunk_id)? else { continue };
            if filter.is_some_and(|f| !f.matches(&record.doc_type, &record.document)) {
                continue;
            }
            hits.push(Hit {
                lexical_score: lexical_scores.get(chunk_id.as_str()).copied(),
                vector_similarity: vector_scores.get(chunk_id.as_str()).copied(),
                chunk_id,
                document: record.document,
                path: PathBuf::from(record.file_key),
                title: record.title,
                section: record.section,
                doc_type: record.doc_type,
                text: record.text,
                score,
            });
        }
        Ok(hits)
    }

    /// The second stage of a hybrid search: the first [`KnowledgeConfig::rerank_candidates`] of
    /// the fused ranking are scored again on what fusion throws away (how high each method
    /// scored them, not only their rank), on how much of the question's rare words they contain,
    /// and on their single best sentence (its vector, stored at ingestion, against the
    /// question's), weighed by [`KnowledgeConfig::rerank_weights`]; the rest keep their order
    /// below. The weights were fitted on the development questions only (see BENCHMARKS.md).
    fn rerank(
        &self,
        query: &str,
        embedding: Option<&[f32]>,
        fused: Vec<(String, f32)>,
        lexical: &HashMap<&str, f32>,
        vector: &HashMap<&str, f32>,
    ) -> Result<Vec<(String, f32)>> {
        let n = self.config.rerank_candidates.min(fused.len());
        if n < 2 {
            return Ok(fused);
        }
        let terms = self.lexical.weighed_terms(query)?;
        let max_bm25 = lexical.values().copied().fold(0.0_f32, f32::max).max(1e-6);
        let min_cosine = vector.values().copied().fold(1.0_f32, f32::min);
        let weights = self.config.rerank_weights;
        let weight_sum = weights.iter().sum::<f32>().max(f32::EPSILON);
        let mut head: Vec<(String, f32)> = Vec::with_capacity(n);
        for (id, fused_score) in fused.iter().take(n) {
            let Some(record) = self.store.chunk(id)? else { continue };
            let text_terms = self.lexical.text_terms(&format!("{}\n{}", record.section, record.text));
            let coverage = terms.coverage(&text_terms).unwrap_or(0.0);
            let section_coverage = terms.coverage(&self.lexical.text_terms(&record.section)).unwrap_or(0.0);
            let bm25 = lexical.get(id.as_str()).map_or(0.0, |score| score / max_bm25);
            let cosine = vector.get(id.as_str()).copied().unwrap_or(min_cosine);
            let best_unit = match (embedding, self.store.units(id)?) {
                (Some(embedding), Some(units)) => units.best_dot(embedding),
                _ => 0.0,
            };
            let features = [*fused_score, bm25, cosine, coverage, section_coverage, best_unit];
            // A weighted mean of features of at most 1, kept in (0, 1] as hits' scores are.
            let score: f32 = weights.iter().zip(features).map(|(w, f)| w * f).sum::<f32>() / weight_sum;
            head.push((id.clone(), score.clamp(MIN_SCORE, 1.0)));
        }
        head.sort_by(|a, b| b.1.total_cmp(&a.1));
        let floor = head.last().map_or(MIN_SCORE, |(_, score)| *score);
        // The rest keep their fused order below the reranked head, still above zero.
        let tail = fused.into_iter().skip(n).enumerate().map(|(i, (id, _))| (id, floor / (i as f32 + 2.0)));
        head.extend(tail);
        Ok(head)
    }

    /// Returns the number of files and chunks, the model and the backend.
    /// How much of `question` a passage's `text` speaks to, from 0 to 1: the question's terms
    /// weighted by rarity in this knowledge base (unknown words weigh most, misspellings and
    /// synonyms count as found); `None` when
    /// the question has no topic words at all.
    pub fn coverage(&self, question: &str, text: &str) -> Result<Option<f32>> {
        self.lexical.coverage(question, text)
    }

    pub fn stats(&self) -> Result<KnowledgeStats> {
        let (cache_hits, cache_misses) = self.cache.stats();
        Ok(KnowledgeStats {
            n_files: self.store.files.len(),
            n_chunks: self.store.chunks.len(),
            model_id: self.embedder.model_id(),
            dim: self.dim,
            backend: self.backend_name.clone(),
            cache_hits,
            cache_misses,
        })
    }

    /// Returns the directory the index lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn lexical_doc<'a>(chunk_id: &'a str, chunk: &'a ChunkRecord) -> LexicalDoc<'a> {
    LexicalDoc {
        chunk_id,
        file_key: &chunk.file_key,
        doc_type: &chunk.doc_type,
        document: &chunk.document,
        title: &chunk.title,
        section: &chunk.section,
        text: &chunk.text,
    }
}

/// Trims the query and cuts it to [`MAX_QUERY_CHARS`]; rejects empty queries.
fn clean_query(query: &str) -> Result<&str> {
    let query = query.trim();
    if query.is_empty() {
        return Err(Error::EmptyQuery);
    }
    Ok(match query.char_indices().nth(MAX_QUERY_CHARS) {
        Some((cut, _)) => &query[..cut],
        None => query,
    })
}

fn path_key(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A file's key: its full path, or with a shared collection its path from the ingested folder
/// (`telco/plans/basic.md`), the same on every instance wherever it keeps the folder.
fn file_key(root: &Path, path: &Path, shared: bool) -> String {
    if !shared {
        return path_key(path);
    }
    let base = root.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    match path.strip_prefix(root) {
        Ok(relative) if !relative.as_os_str().is_empty() => format!("{base}/{}", relative.to_string_lossy()),
        _ => base,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A new revision of a shared collection: unique without coordination.
fn new_revision() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(format!("{:?}", std::thread::current().id()).as_bytes());
    hex::encode(&hasher.finalize()[..12])
}

fn encode_string<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))
}

/// The settings that differ between two indexes, as `stored` (`true`) or `expected` has them.
fn settings_differences(stored: &IndexSettings, expected: &IndexSettings, from_stored: bool) -> String {
    let pick = |a: String, b: String| if from_stored { a } else { b };
    let mut parts = Vec::new();
    if stored.model_id != expected.model_id {
        parts.push(format!("model {}", pick(stored.model_id.clone(), expected.model_id.clone())));
    }
    if stored.dim != expected.dim {
        parts.push(format!("{}-dimensional vectors", pick(stored.dim.to_string(), expected.dim.to_string())));
    }
    if stored.chunk_max_tokens != expected.chunk_max_tokens
        || stored.chunk_overlap_tokens != expected.chunk_overlap_tokens
    {
        let (max, overlap) = if from_stored {
            (stored.chunk_max_tokens, stored.chunk_overlap_tokens)
        } else {
            (expected.chunk_max_tokens, expected.chunk_overlap_tokens)
        };
        parts.push(format!("chunks of {max} tokens overlapping by {overlap}"));
    }
    if stored.outline_weight != expected.outline_weight {
        parts.push(format!(
            "outline weight {}",
            pick(stored.outline_weight.to_string(), expected.outline_weight.to_string())
        ));
    }
    if stored.format_version != expected.format_version {
        parts.push(format!(
            "index format {}",
            pick(stored.format_version.to_string(), expected.format_version.to_string())
        ));
    }
    if parts.is_empty() {
        parts.push(format!("backend {}", pick(stored.backend.clone(), expected.backend.clone())));
    }
    parts.join(", ")
}

/// A point's chunk id and chunk.
type IdChunk = (String, SharedChunk);
/// A file of a shared collection: its record and its chunks in order.
type SharedFile = (FileRecord, Vec<IdChunk>);

/// The complete files of a shared collection's points (for each file key, the newest version
/// whose chunks are all there: its record and its chunks in order), and the ids of points no
/// complete file refers to and written more than [`ABANDONED_AFTER_MS`] before `now_ms`.
/// Points without a readable chunk count as leftovers at once.
fn complete_files(
    points: Vec<(String, Option<SharedChunk>)>,
    now_ms: u64,
) -> (HashMap<String, SharedFile>, Vec<String>) {
    let mut leftovers = Vec::new();
    // file key -> file hash -> (newest write, chunks by index)
    let mut versions: HashMap<String, HashMap<String, (u64, Vec<IdChunk>)>> = HashMap::new();
    for (id, chunk) in points {
        let Some(chunk) = chunk else {
            leftovers.push(id);
            continue;
        };
        let version = versions
            .entry(chunk.chunk.file_key.clone())
            .or_default()
            .entry(chunk.file_hash.clone())
            .or_insert_with(|| (0, Vec::new()));
        version.0 = version.0.max(chunk.written_ms);
        version.1.push((id, chunk));
    }
    let mut files = HashMap::new();
    for (key, versions) in versions {
        let mut complete = Vec::new();
        for (_, (written, mut chunks)) in versions {
            chunks.sort_by_key(|(_, chunk)| chunk.index);
            let whole = chunks
                .iter()
                .enumerate()
                .all(|(i, (_, chunk))| chunk.index as usize == i && chunk.count as usize == chunks.len());
            if whole {
                complete.push((written, chunks));
            } else if now_ms.saturating_sub(written) > ABANDONED_AFTER_MS {
                leftovers.extend(chunks.into_iter().map(|(id, _)| id));
            }
        }
        // The newest complete version wins; older complete ones were replaced.
        complete.sort_by_key(|(written, _)| std::cmp::Reverse(*written));
        let mut complete = complete.into_iter();
        let best = complete.next();
        leftovers.extend(complete.flat_map(|(_, chunks)| chunks.into_iter().map(|(id, _)| id)));
        if let Some((_, chunks)) = best {
            let first = &chunks[0].1;
            let record = FileRecord {
                hash: first.file_hash.clone(),
                document: first.chunk.document.clone(),
                doc_type: first.chunk.doc_type.clone(),
                title: first.file_title.clone(),
                chunk_ids: chunks.iter().map(|(id, _)| id.clone()).collect(),
            };
            files.insert(key, (record, chunks));
        }
    }
    (files, leftovers)
}

/// "Roaming Docs" -> "roaming-docs".
fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() { "general".to_string() } else { slug }
}

fn folder_slug(folder: &Path) -> String {
    folder.file_name().map(|name| slug(&name.to_string_lossy())).unwrap_or_else(|| "general".to_string())
}

/// Collects supported files under `dir`, skipping hidden entries; does not follow symlinked
/// folders (no cycles).
fn walk(
    root: &Path,
    dir: &Path,
    key_of: &dyn Fn(&Path) -> String,
    candidates: &mut Vec<Candidate>,
    report: &mut IngestReport,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            report
                .skipped
                .push(SkippedFile { path: dir.to_path_buf(), reason: format!("cannot read folder: {error}") });
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(file_type) = entry.file_type() else { continue };
        if file_type.is_dir() {
            walk(root, &path, key_of, candidates, report);
            continue;
        }
        // Files (and symlinks to files).
        if !(file_type.is_file() || (file_type.is_symlink() && path.is_file())) {
            continue;
        }
        if dir == root && entry.file_name() == crate::catalogue::CATALOGUE_FILE {
            continue; // the pack's structured facts: data for computed answers, not a document
        }
        let Some(format) = Format::from_path(&path) else {
            report.ignored += 1;
            continue;
        };
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let doc_type_default = match relative.components().count() {
            0 | 1 => folder_slug(root),
            _ => relative.components().next().map(|c| slug(&c.as_os_str().to_string_lossy())).unwrap_or_default(),
        };
        candidates.push(Candidate { key: key_of(&path), path, format, doc_type_default });
    }
}

fn read_limited(path: &Path, max_bytes: u64) -> std::result::Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if metadata.len() > max_bytes {
        return Err(format!("file is {} bytes, more than the {max_bytes}-byte limit", metadata.len()));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

fn prepare(
    candidate: &Candidate,
    bytes: &[u8],
    hash: String,
    previous: Option<FileRecord>,
    counter: &TokenCounter<'_>,
    limits: ChunkLimits,
) -> std::result::Result<PreparedFile, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not valid UTF-8 text ({e})"))?;
    let stem = candidate.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let document = candidate.path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let parsed = parse(candidate.format, text, &stem)?;
    let doc_type = parsed.doc_type.as_deref().map(slug).unwrap_or_else(|| candidate.doc_type_default.clone());
    let drafts = chunk_document(&parsed, counter, limits);
    if drafts.is_empty() {
        return Err("no extractable text".to_string());
    }
    let mut chunk_ids = Vec::with_capacity(drafts.len());
    let mut chunks = Vec::with_capacity(drafts.len());
    for (idx, draft) in drafts.into_iter().enumerate() {
        let mut hasher = Sha256::new();
        for part in
            [candidate.key.as_bytes(), idx.to_string().as_bytes(), draft.section.as_bytes(), draft.text.as_bytes()]
        {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        chunk_ids.push(hex::encode(&hasher.finalize()[..16]));
        chunks.push(ChunkRecord {
            file_key: candidate.key.clone(),
            document: document.clone(),
            doc_type: doc_type.clone(),
            title: parsed.title.clone(),
            section: draft.section,
            context: draft.context,
            text: draft.text,
            headings: draft.headings,
        });
    }
    Ok(PreparedFile {
        key: candidate.key.clone(),
        record: FileRecord { hash, document, doc_type, title: parsed.title, chunk_ids },
        chunks,
        previous,
    })
}

fn progress_bar(visible: bool, total_bytes: u64, n_files: usize) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(total_bytes), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} ({eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("ingesting {n_files} files"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Roaming Docs"), "roaming-docs");
        assert_eq!(slug("--"), "general");
        assert_eq!(slug("Plans"), "plans");
    }

    fn shared_chunk(file: &str, hash: &str, index: u32, count: u32, written_ms: u64) -> SharedChunk {
        SharedChunk {
            chunk: ChunkRecord {
                file_key: file.to_string(),
                document: file.rsplit('/').next().unwrap_or(file).to_string(),
                doc_type: "plans".to_string(),
                title: "Plans".to_string(),
                section: format!("part {index}"),
                context: String::new(),
                headings: Vec::new(),
                text: format!("{file} {hash} {index}"),
            },
            file_hash: hash.to_string(),
            file_title: "Plans".to_string(),
            index,
            count,
            units: String::new(),
            written_ms,
        }
    }

    #[test]
    fn shared_files_are_their_newest_complete_version() {
        let hour = ABANDONED_AFTER_MS;
        let now = 10 * hour;
        let points = vec![
            // a.md: v1 complete (older), v2 complete (newer): v2 wins, v1's points go.
            ("a1".to_string(), Some(shared_chunk("t/a.md", "v1", 0, 2, now - 5))),
            ("a2".to_string(), Some(shared_chunk("t/a.md", "v1", 1, 2, now - 5))),
            ("a3".to_string(), Some(shared_chunk("t/a.md", "v2", 0, 1, now - 1))),
            // b.md: only an incomplete version, being written now: not served, not deleted.
            ("b1".to_string(), Some(shared_chunk("t/b.md", "v1", 1, 2, now))),
            // c.md: complete v1, and an incomplete v2 abandoned long ago: v1, and v2's point goes.
            ("c1".to_string(), Some(shared_chunk("t/c.md", "v1", 0, 1, now - 3 * hour))),
            ("c2".to_string(), Some(shared_chunk("t/c.md", "v2", 0, 3, now - 2 * hour))),
            // A point whose chunk cannot be read.
            ("x".to_string(), None),
        ];
        let (files, mut leftovers) = complete_files(points, now);
        leftovers.sort();
        assert_eq!(leftovers, ["a1", "a2", "c2", "x"]);
        let mut keys: Vec<&String> = files.keys().collect();
        keys.sort();
        assert_eq!(keys, ["t/a.md", "t/c.md"]);
        let (record, chunks) = &files["t/a.md"];
        assert_eq!((record.hash.as_str(), record.chunk_ids.as_slice()), ("v2", &["a3".to_string()][..]));
        assert_eq!((record.document.as_str(), record.title.as_str()), ("a.md", "Plans"));
        assert_eq!(chunks[0].1.chunk.text, "t/a.md v2 0");
        assert_eq!(files["t/c.md"].0.hash, "v1");
    }

    #[test]
    fn shared_file_keys_are_relative_to_the_ingested_folder() {
        let root = Path::new("/srv/a/packs/telco");
        assert_eq!(file_key(root, Path::new("/srv/a/packs/telco/plans/basic.md"), true), "telco/plans/basic.md");
        assert_eq!(file_key(root, root, true), "telco");
        assert_eq!(
            file_key(root, Path::new("/srv/a/packs/telco/plans/basic.md"), false),
            "/srv/a/packs/telco/plans/basic.md"
        );
        let file = Path::new("/srv/b/faq.md");
        assert_eq!(file_key(file, file, true), "faq.md");
    }

    #[test]
    fn settings_differences_name_both_sides() {
        let stored = IndexSettings {
            format_version: FORMAT_VERSION,
            model_id: "model-a".to_string(),
            dim: 384,
            chunk_max_tokens: 256,
            chunk_overlap_tokens: 32,
            outline_weight: 0.5,
            backend: "qdrant".to_string(),
        };
        let expected = IndexSettings { model_id: "model-b".to_string(), chunk_max_tokens: 128, ..stored.clone() };
        assert_eq!(
            settings_differences(&stored, &expected, true),
            "model model-a, chunks of 256 tokens overlapping by 32"
        );
        assert_eq!(
            settings_differences(&stored, &expected, false),
            "model model-b, chunks of 128 tokens overlapping by 32"
        );
        assert_ne!(new_revision(), new_revision());
    }

    #[test]
    fn queries_are_trimmed_and_bounded() {
        assert!(matches!(clean_query("  \n "), Err(Error::EmptyQuery)));
        assert_eq!(clean_query(" late fee ").unwrap(), "late fee");
        let long = "é".repeat(MAX_QUERY_CHARS + 10);
        assert_eq!(clean_query(&long).unwrap().chars().count(), MAX_QUERY_CHARS);
    }
}
