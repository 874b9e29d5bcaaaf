//! [`SentenceEmbedder`]: sentence vectors from a BERT-family encoder.

use std::path::{Path, PathBuf};

use candle_core::Device;
use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

use crate::models::bert::{self, BatchInputs, BertModel, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use crate::{Error, Result};

/// Sentences longer than this many tokens (special tokens included) are truncated, as
/// sentence-transformers does for all-MiniLM-L6-v2 (`max_seq_length`).
pub const MAX_SEQUENCE_TOKENS: usize = 256;

/// Sentences per forward pass unless the caller says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// A BERT-family sentence encoder (all-MiniLM-L6-v2 by default): attention-masked mean pooling
/// and L2 normalisation, matching sentence-transformers.
///
/// Loads from a directory holding `config.json`, `tokenizer.json` and `model.safetensors`.
/// Batches are formed from sentences of similar length (sorted internally, results returned in
/// input order) and padded only to the longest in the batch. `Send + Sync`.
pub struct SentenceEmbedder {
    model: BertModel,
    /// No padding, no truncation: [`SentenceEmbedder::embed`] truncates itself.
    tokenizer: Tokenizer,
    dim: usize,
    pad_id: u32,
    model_id: String,
    dir: PathBuf,
    device: Device,
}

impl std::fmt::Debug for SentenceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEmbedder")
            .field("dir", &self.dir)
            .field("dim", &self.dim)
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

impl SentenceEmbedder {
    /// Loads the encoder in `dir`. A corrupt or truncated file gives
    /// [`Error::CorruptModelFile`] naming it, and the directory is marked for re-verification
    /// ([`crate::fetch::invalidate`]).
    pub fn load(dir: &Path) -> Result<Self> {
        let result = Self::load_unchecked(dir);
        if let Err(Error::CorruptModelFile { .. }) = &result {
            crate::fetch::invalidate(dir);
        }
        result
    }

    fn load_unchecked(dir: &Path) -> Result<Self> {
        let device = Device::Cpu;
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map(|bytes| (path.clone(), bytes)).map_err(|err| Error::io(&path, err))
        };
        let (config_path, config_bytes) = read(CONFIG_FILE)?;
        let config = bert::parse_config(&config_bytes, &config_path)?;
        let (tokenizer_path, tokenizer_bytes) = read(TOKENIZER_FILE)?;
        let mut tokenizer =
            Tokenizer::from_bytes(&tokenizer_bytes).map_err(|err| Error::corrupt(&tokenizer_path, err))?;
        // The shipped tokenizer.json pads every input to 128 and truncates at 128: both off, so
        // batches pad to their longest sentence and truncation follows MAX_SEQUENCE_TOKENS.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|err| Error::corrupt(&tokenizer_path, err))?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(config.pad_token_id as u32);

        let (weights_path, weights_bytes) = read(WEIGHTS_FILE)?;
        let tensors = bert::tensors_from_safetensors(&weights_bytes, &weights_path, &device)?;
        let model = bert::model_from_tensors(tensors, &config, &weights_path, &device)?;

        let mut hasher = Sha256::new();
        for bytes in [&config_bytes, &tokenizer_bytes, &weights_bytes] {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
        let model_id = format!("bert-{}", &hex::encode(hasher.finalize())[..16]);
        tracing::info!(dir = %dir.display(), model_id, "sentence encoder loaded");
        Ok(Self { model, tokenizer, dim: config.hidden_size, pad_id, model_id, dir: dir.to_owned(), device })
    }

    /// Embeds `texts` in batches of [`DEFAULT_BATCH_SIZE`]; one unit-length vector per text, in
    /// input order. Texts longer than [`MAX_SEQUENCE_TOKENS`] tokens are truncated.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with_batch_size(texts, DEFAULT_BATCH_SIZE)
    }

    /// [`SentenceEmbedder::embed`] with `batch_size` sentences per forward pass.
    pub fn embed_with_batch_size(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        if batch_size == 0 {
            return Err(Error::InvalidInput("batch size must be at least 1".to_owned()));
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(Error::tokenizer)?;
        let sequences: Vec<Vec<u32>> = encodings.iter().map(|encoding| truncate(encoding.get_ids())).collect();

        // Longest first: similar lengths share a batch, so little padding is computed.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&idx| std::cmp::Reverse(sequences[idx].len()));

        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in order.chunks(batch_size) {
            let batch_sequences: Vec<&[u32]> = batch.iter().map(|&idx| sequences[idx].as_slice()).collect();
            let inputs = BatchInputs::pad(&batch_sequences, self.pad_id, &self.device)?;
            let pooled = bert::forward_pooled(&self.model, &inputs.input_ids, &inputs.type_ids, &inputs.mask)?;
            for (&idx, vector) in batch.iter().zip(pooled.to_vec2::<f32>()?) {
                vectors[idx] = vector;
            }
        }
        Ok(vectors)
    }

    /// Length of the vectors (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tokens of `text` without special tokens and without truncation. A text is embedded
    /// without loss when `count_tokens(text) <= max_content_tokens()`.
    pub fn count_tokens(&self, text: &str) -> usize {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.len(),
            // Tokenizing plain text does not fail in practice; over-estimate to stay safe.
            Err(_) => text.len(),
        }
    }

    /// Byte range in `text` of each of its tokens (no special tokens, no truncation), for cutting
    /// text at token boundaries. Ranges are in order and may overlap for tokens that share
    /// characters after normalisation.
    pub fn token_offsets(&self, text: &str) -> Vec<(usize, usize)> {
        match self.tokenizer.encode(text, false) {
            Ok(encoding) => encoding.get_offsets().to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// Content tokens that fit in one embedded sequence: [`MAX_SEQUENCE_TOKENS`] minus the
    /// `[CLS]` and `[SEP]` tokens.
    pub fn max_content_tokens(&self) -> usize {
        MAX_SEQUENCE_TOKENS - 2
    }

    /// The tokenizer, with padding and truncation turned off.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The underlying BERT model.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// Identifies the model (hash of its config, tokenizer and weights): vectors from embedders
    /// with different ids are not comparable, so stored vectors must be rebuilt.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Cuts ids with special tokens (`[CLS] ... [SEP]`) to [`MAX_SEQUENCE_TOKENS`], keeping the
/// final special token, as the tokenizer's own truncation would.
fn truncate(ids: &[u32]) -> Vec<u32> {
    if ids.len() <= MAX_SEQUENCE_TOKENS {
        return ids.to_vec();
    }
    let mut truncated = ids[..MAX_SEQUENCE_TOKENS - 1].to_vec();
    truncated.push(ids[ids.len() - 1]);
    truncated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_the_final_special_token() {
        let ids: Vec<u32> = (0..300).collect();
        let truncated = truncate(&ids);
        assert_eq!(truncated.len(), MAX_SEQUENCE_TOKENS);
        assert_eq!(truncated[0], 0);
        assert_eq!(truncated[MAX_SEQUENCE_TOKENS - 2], 254);
        assert_eq!(truncated[MAX_SEQUENCE_TOKENS - 1], 299);
        assert_eq!(truncate(&[1, 2, 3]), vec![1, 2, 3]);
    }

    #[test]
    fn sentence_embedder_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SentenceEmbedder>();
    }
}
