//! The embedding model, as this crate needs it.
//!
//! `knowledge` does not depend on a model runtime: the server implements [`Embedder`] for its
//! sentence encoder, and tests may use [`HashEmbedder`].

use std::fmt;

/// Error returned by an [`Embedder`]; wraps whatever the implementation failed with.
#[derive(Debug)]
pub struct EmbedError(Box<dyn std::error::Error + Send + Sync>);

impl EmbedError {
    /// Wraps an error (for example an `anyhow::Error` or a `String`).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        EmbedError(error.into())
    }
}

impl fmt::Display for EmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for EmbedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A sentence encoder.
///
/// Implementations return one L2-normalised vector of length [`Embedder::dim`] per input text
/// (the knowledge base re-normalises defensively) and must be callable from several threads.
pub trait Embedder: Send + Sync {
    /// Embeds a batch of texts.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Returns the vector dimension.
    fn dim(&self) -> usize;
    /// Returns the number of model tokens the text becomes, special tokens included.
    fn count_tokens(&self, text: &str) -> usize;
    /// Returns an identifier of the model; the index is rebuilt when it changes.
    fn model_id(&self) -> String;
}

/// A deterministic bag-of-words embedder (feature hashing of lowercased words and their
/// 4-character prefixes) whose tokens are whitespace-separated words.
///
/// Meant for tests and for benchmarking the index without a model; its retrieval quality is
/// that of a keyword match.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dim: usize,
}

impl HashEmbedder {
    /// Creates a hashing embedder producing `dim`-dimensional vectors (`dim` ≥ 1).
    pub fn new(dim: usize) -> Self {
        HashEmbedder { dim: dim.max(1) }
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0f32; self.dim];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let word = word.to_lowercase();
            let prefix: String = word.chars().take(4).collect();
            for (feature, weight) in [(word.as_str(), 1.0f32), (prefix.as_str(), 0.5)] {
                let hash = fnv1a(feature.as_bytes());
                let idx = (hash % self.dim as u64) as usize;
                let sign = if (hash >> 63) == 0 { 1.0 } else { -1.0 };
                vector[idx] += sign * weight;
            }
        }
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|x| *x /= norm);
        } else {
            vector[0] = 1.0;
        }
        vector
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Embedder for HashEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|text| self.embed_one(text)).collect())
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn model_id(&self) -> String {
        format!("hash-bow-{}", self.dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_embedder_is_normalised_and_deterministic() {
        let embedder = HashEmbedder::new(64);
        let vectors = embedder.embed(&["late fee", "late fee", ""]).unwrap();
        assert_eq!(vectors[0], vectors[1]);
        for vector in &vectors {
            let norm: f32 = vector.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn embed_error_wraps_strings() {
        let error = EmbedError::new("model not loaded");
        assert_eq!(error.to_string(), "model not loaded");
    }
}
