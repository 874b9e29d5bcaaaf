//! The sled metadata store: one record per ingested file and per chunk, and the index's
//! settings. It is the source of truth from which the lexical index can be rebuilt.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Bumped when the stored formats or the chunking change meaning; a mismatch rebuilds the index.
pub(crate) const FORMAT_VERSION: u32 = 4;

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
    /// Each chunk's sentence vectors (int8, one scale per vector), for reranking.
    pub units: sled::Tree,
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
            units: db.open_tree("units")?,
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

    /// A chunk's sentence vectors, as stored by [`MetaStore::put_units`].
    pub fn units(&self, chunk_id: &str) -> Result<Option<UnitVectors>> {
        self.units.get(chunk_id.as_bytes())?.map(|bytes| UnitVectors::from_bytes(&bytes)).transpose()
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
        self.units.clear()?;
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

/// A chunk's sentence vectors, int8 with one scale per vector (a quarter of the f32 bytes;
/// cosine similarities stay within about 0.01).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnitVectors {
    dim: usize,
    scales: Vec<f32>,
    values: Vec<i8>,
}

impl UnitVectors {
    pub fn quantize(vectors: &[Vec<f32>]) -> Self {
        let dim = vectors.first().map_or(0, Vec::len);
        let mut scales = Vec::with_capacity(vectors.len());
        let mut values = Vec::with_capacity(vectors.len() * dim);
        for vector in vectors {
            let max = vector.iter().fold(0.0_f32, |max, x| max.max(x.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            // In range: |x / scale| <= 127.
            #[allow(clippy::cast_possible_truncation)]
            values.extend(vector.iter().map(|x| (x / scale).round() as i8));
        }
        UnitVectors { dim, scales, values }
    }

    /// The best dot product of `query` with any of the vectors (0 without vectors).
    pub fn best_dot(&self, query: &[f32]) -> f32 {
        if self.dim == 0 || query.len() != self.dim {
            return 0.0;
        }
        self.values
            .chunks_exact(self.dim)
            .zip(&self.scales)
            .map(|(values, scale)| values.iter().zip(query).map(|(v, q)| f32::from(*v) * q).sum::<f32>() * scale)
            .fold(0.0_f32, f32::max)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(8 + self.scales.len() * 4 + self.values.len());
        bytes.extend((self.dim as u32).to_le_bytes());
        bytes.extend((self.scales.len() as u32).to_le_bytes());
        for scale in &self.scales {
            bytes.extend(scale.to_le_bytes());
        }
        bytes.extend(self.values.iter().map(|v| v.to_le_bytes()[0]));
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = || Error::Corrupt("unit vectors".to_string());
        let word = |at: usize| -> Result<[u8; 4]> {
            bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)
        };
        let dim = u32::from_le_bytes(word(0)?) as usize;
        let n = u32::from_le_bytes(word(4)?) as usize;
        let values_at = 8 + n * 4;
        if bytes.len() != values_at + n * dim {
            return Err(corrupt());
        }
        let scales = (0..n).map(|i| word(8 + i * 4).map(f32::from_le_bytes)).collect::<Result<Vec<f32>>>()?;
        let values = bytes[values_at..].iter().map(|b| i8::from_le_bytes([*b])).collect();
        Ok(UnitVectors { dim, scales, values })
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn unit_vectors_round_trip_and_keep_their_similarities() {
        let a = vec![0.6_f32, 0.8, 0.0];
        let b = vec![0.0_f32, 0.6, 0.8];
        let units = UnitVectors::quantize(&[a.clone(), b]);
        let back = UnitVectors::from_bytes(&units.to_bytes()).unwrap();
        assert_eq!(back, units);
        assert!((back.best_dot(&a) - 1.0).abs() < 0.01);
        assert_eq!(back.best_dot(&[1.0]), 0.0, "another dimension");
        assert!(UnitVectors::from_bytes(&[1, 2, 3]).is_err());
        assert_eq!(UnitVectors::quantize(&[]).best_dot(&a), 0.0);
    }
}
