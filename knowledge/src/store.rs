//! The sled metadata store: one record per ingested file and per chunk, and the index's
//! settings. It is the source of truth from which the lexical index can be rebuilt.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Bumped when the stored formats or the chunking change meaning; a mismatch rebuilds the index.
pub(crate) const FORMAT_VERSION: u32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct FileRecord {
    pub hash: String,
    pub document: String,
    pub doc_type: String,
    pub title: String,
    pub chunk_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ChunkRecord {
    pub file_key: String,
    pub document: String,
    pub doc_type: String,
    pub title: String,
    pub section: String,
    /// Heading path embedded in front of the text.
    #[serde(default)]
    pub context: String,
    /// Headings inside the chunk (for its outline vector).
    #[serde(default)]
    pub headings: Vec<String>,
    pub text: String,
}

/// The settings an index was built with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct IndexSettings {
    pub format_version: u32,
    pub model_id: String,
    pub dim: usize,
    pub chunk_max_tokens: usize,
    pub chunk_overlap_tokens: usize,
    pub outline_weight: f32,
    pub backend: String,
}

pub(crate) struct MetaStore {
    pub db: sled::Db,
    pub files: sled::Tree,
    pub chunks: sled::Tree,
    meta: sled::Tree,
}

const SETTINGS_KEY: &[u8] = b"settings";
/// sled's page cache (its default is 1 GB); vectors live in memory anyway.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl MetaStore {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new().path(dir).mode(sled::Mode::LowSpace).cache_capacity(CACHE_BYTES).open().map_err(
            |error| match &error {
                sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                    Error::Locked { path: dir.to_path_buf() }
                }
                _ => Error::Store(error),
            },
        )?;
        Ok(MetaStore {
            files: db.open_tree("files")?,
            chunks: db.open_tree("chunks")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    pub fn settings(&self) -> Result<Option<IndexSettings>> {
        match self.meta.get(SETTINGS_KEY)? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            None => Ok(None),
        }
    }

    pub fn set_settings(&self, settings: &IndexSettings) -> Result<()> {
        self.meta.insert(SETTINGS_KEY, encode(settings)?)?;
        Ok(())
    }

    pub fn file(&self, file_key: &str) -> Result<Option<FileRecord>> {
        self.files.get(file_key.as_bytes())?.map(|bytes| decode(&bytes, "file record")).transpose()
    }

    pub fn chunk(&self, chunk_id: &str) -> Result<Option<ChunkRecord>> {
        self.chunks.get(chunk_id.as_bytes())?.map(|bytes| decode(&bytes, "chunk record")).transpose()
    }

    /// Every file record, in key order.
    pub fn all_files(&self) -> Result<Vec<(String, FileRecord)>> {
        let mut files = Vec::new();
        for entry in self.files.iter() {
            let (key, value) = entry?;
            files.push((String::from_utf8_lossy(&key).into_owned(), decode(&value, "file record")?));
        }
        Ok(files)
    }

    pub fn clear(&self) -> Result<()> {
        self.files.clear()?;
        self.chunks.clear()?;
        self.meta.clear()?;
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Corrupt(e.to_string()))
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}
