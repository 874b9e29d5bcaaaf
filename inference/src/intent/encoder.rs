//! The sentence encoder used by the intent classifier: all-MiniLM-L6-v2 (a 6-layer BERT) through
//! the crate's differentiable BERT ([`crate::models::bert`]), attention-masked mean pooling, then L2 normalisation.
//!
//! Unlike a plain embedder this one can be built over a [`VarMap`] so the whole encoder can be
//! fine-tuned with candle-nn's optimisers ([`IntentEncoder::load_trainable`],
//! [`IntentEncoder::forward_pooled`]), and saved next to the intent head.

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{IntentError, Result, TextEmbedder};
use crate::models::bert::{BertModel, Config as BertConfig, l2_normalize, mean_pool};

/// File names of an encoder directory (the layout of the sentence-transformers export).
pub const ENCODER_WEIGHTS_FILE: &str = "model.safetensors";
pub const ENCODER_CONFIG_FILE: &str = "config.json";
pub const ENCODER_TOKENIZER_FILE: &str = "tokenizer.json";

/// Longest input in tokens; longer inputs are truncated (what sentence-transformers does).
pub const MAX_TOKENS: usize = 256;

/// Sentences per forward pass when embedding many texts.
const EMBED_BATCH_SIZE: usize = 32;

/// A BERT sentence encoder with its tokenizer.
pub struct IntentEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    config_json: String,
    /// The variables when the encoder is trainable (built over a `VarMap`).
    varmap: Option<VarMap>,
    /// Every tensor of the weights file, kept when trainable so the frozen ones can be saved too.
    base_tensors: Option<HashMap<String, Tensor>>,
    device: Device,
    hidden_size: usize,
    /// Identifies the weights: a digest of the config and the weights file's size.
    model_id: String,
}

impl std::fmt::Debug for IntentEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentEncoder")
            .field("hidden_size", &self.hidden_size)
            .field("trainable", &self.varmap.is_some())
            .finish()
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| IntentError::Io { path: path.to_path_buf(), source })
}

fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|err| IntentError::Tokenizer { message: format!("loading {}: {err}", path.display()) })?;
    // The shipped tokenizer pads every input to 128 tokens: pad to the batch's longest instead.
    tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..PaddingParams::default() }));
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
        .map_err(|err| IntentError::Tokenizer { message: err.to_string() })?;
    Ok(tokenizer)
}

impl IntentEncoder {
    /// Loads a frozen encoder from a directory holding `model.safetensors`, `config.json` and
    /// `tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_inner(dir, None)
    }

    /// Loads an encoder whose weights live in a [`VarMap`] initialised from the safetensors file,
    /// so that gradients flow into it. The word-embedding matrix (half of MiniLM's parameters) and
    /// the first `n_frozen_layers` transformer layers stay frozen.
    pub fn load_trainable(dir: &Path, n_frozen_layers: usize) -> Result<Self> {
        Self::load_inner(dir, Some(n_frozen_layers))
    }

    fn load_inner(dir: &Path, trainable: Option<usize>) -> Result<Self> {
        let device = Device::Cpu;
        let config_path = dir.join(ENCODER_CONFIG_FILE);
        let config_json = read_text(&config_path)?;
        let config: BertConfig = serde_json::from_str(&config_json)
            .map_err(|err| IntentError::InvalidModel { path: config_path.clone(), message: err.to_string() })?;
        let tokenizer = load_tokenizer(&dir.join(ENCODER_TOKENIZER_FILE))?;
        let weights_path = dir.join(ENCODER_WEIGHTS_FILE);
        let n_weight_bytes = std::fs::metadata(&weights_path).map(|m| m.len()).unwrap_or(0);
        let model_id = {
            use sha2::Digest;
            let digest = sha2::Sha256::new()
                .chain_update(config_json.as_bytes())
                .chain_update(n_weight_bytes.to_le_bytes())
                .finalize();
            hex::encode(&digest[..8])
        };
        if !weights_path.is_file() {
            return Err(IntentError::InvalidModel {
                path: weights_path,
                message: "missing encoder weights".to_string(),
            });
        }
        let (model, varmap, base_tensors) = if let Some(n_frozen_layers) = trainable {
            let tensors = candle_core::safetensors::load(&weights_path, &device)?;
            let tensors: HashMap<String, Tensor> = tensors
                .into_iter()
                .map(|(name, tensor)| {
                    let tensor = if tensor.dtype().is_float() { tensor.to_dtype(DType::F32)? } else { tensor };
                    Ok((name, tensor))
                })
                .collect::<Result<_>>()?;
            let varmap = VarMap::new();
            let backend = PartlyTrainable { tensors: tensors.clone(), varmap: varmap.clone(), n_frozen_layers };
            let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
            let model = BertModel::new(&config, vb)?;
            (model, Some(varmap), Some(tensors))
        } else {
            let weights = std::fs::read(&weights_path)
                .map_err(|source| IntentError::Io { path: weights_path.clone(), source })?;
            let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
            (BertModel::new(&config, vb)?, None, None)
        };
        Ok(Self {
            model,
            tokenizer,
            config_json,
            varmap,
            base_tensors,
            device,
            hidden_size: config.hidden_size,
            model_id,
        })
    }

    /// Size of the sentence embeddings.
    pub fn dim(&self) -> usize {
        self.hidden_size
    }

    /// The encoder's trainable variables, when it was loaded with [`Self::load_trainable`].
    pub fn varmap(&self) -> Option<&VarMap> {
        self.varmap.as_ref()
    }

    /// Number of transformer layers.
    pub fn n_layers(&self) -> usize {
        self.model.n_layers()
    }

    /// Tokenizes a batch, padded to its longest text: `(input_ids, attention_mask)`, each
    /// `[n, seq_len]`.
    fn tokenize_batch(&self, texts: &[&str]) -> Result<(Tensor, Tensor)> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|err| IntentError::Tokenizer { message: err.to_string() })?;
        let n_texts = encodings.len();
        let seq_len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(n_texts * seq_len);
        let mut mask = Vec::with_capacity(n_texts * seq_len);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let input_ids = Tensor::from_vec(ids, (n_texts, seq_len), &self.device)?;
        let attention_mask = Tensor::from_vec(mask, (n_texts, seq_len), &self.device)?;
        Ok((input_ids, attention_mask))
    }

    /// Runs the encoder on a batch and returns the pooled, L2-normalised embeddings `[n, dim]`.
    /// Differentiable when the encoder is trainable.
    pub fn forward_pooled(&self, texts: &[&str]) -> Result<Tensor> {
        let (input_ids, attention_mask) = self.tokenize_batch(texts)?;
        let token_type_ids = input_ids.zeros_like()?;
        let hidden = self.model.forward(&input_ids, &token_type_ids, &attention_mask)?;
        Ok(l2_normalize(&mean_pool(&hidden, &attention_mask)?)?)
    }

    /// The token states of each text after the embeddings and the bottom `n_lower_layers`
    /// layers, unpadded (`[n_tokens, dim]` each, in input order) and detached from any graph:
    /// computed once, they let a fine-tune of the layers above skip the frozen ones
    /// ([`Self::forward_pooled_from_lower`]). `on_batch` is told the number of texts done.
    pub fn lower_states(
        &self,
        texts: &[&str],
        n_lower_layers: usize,
        mut on_batch: impl FnMut(usize),
    ) -> Result<Vec<Tensor>> {
        self.check_layer_split(n_lower_layers)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&idx| texts[idx].len());
        let mut states: Vec<Option<Tensor>> = vec![None; texts.len()];
        let mut n_done = 0;
        for batch in order.chunks(EMBED_BATCH_SIZE) {
            let batch_texts: Vec<&str> = batch.iter().map(|&idx| texts[idx]).collect();
            let (input_ids, attention_mask) = self.tokenize_batch(&batch_texts)?;
            let token_type_ids = input_ids.zeros_like()?;
            let hidden =
                self.model.embed_and_lower(&input_ids, &token_type_ids, &attention_mask, n_lower_layers)?.detach();
            let lengths: Vec<u32> = attention_mask.sum(1)?.to_vec1()?;
            let (_batch, seq_len, dim) = hidden.dims3()?;
            let flat: Vec<f32> = hidden.flatten_all()?.to_vec1()?;
            for (row, (&idx, &length)) in batch.iter().zip(&lengths).enumerate() {
                // Own storage per text (a view would keep the whole padded batch alive).
                let start = row * seq_len * dim;
                let values = flat[start..start + length as usize * dim].to_vec();
                states[idx] = Some(Tensor::from_vec(values, (length as usize, dim), &self.device)?);
            }
            n_done += batch.len();
            on_batch(n_done);
        }
        Ok(states.into_iter().flatten().collect())
    }

    /// Pads cached lower-layer states (from [`Self::lower_states`] with the same
    /// `n_lower_layers`) into a batch, runs the layers above and returns the pooled,
    /// L2-normalised embeddings `[n, dim]`. Equal to [`Self::forward_pooled`] on the same texts;
    /// differentiable in the upper layers when the encoder is trainable.
    pub fn forward_pooled_from_lower(&self, states: &[&Tensor], n_lower_layers: usize) -> Result<Tensor> {
        self.check_layer_split(n_lower_layers)?;
        let seq_len = states.iter().map(|state| state.dim(0)).collect::<candle_core::Result<Vec<_>>>()?;
        let max_len = seq_len.iter().copied().max().unwrap_or(0);
        if states.is_empty() || max_len == 0 {
            return Err(IntentError::InvalidConfig {
                message: "a batch needs at least one non-empty text".to_string(),
            });
        }
        let mut padded = Vec::with_capacity(states.len());
        let mut mask = Vec::with_capacity(states.len() * max_len);
        for (state, &length) in states.iter().zip(&seq_len) {
            padded.push(state.pad_with_zeros(0, 0, max_len - length)?);
            mask.extend(std::iter::repeat_n(1u32, length));
            mask.extend(std::iter::repeat_n(0u32, max_len - length));
        }
        let hidden = Tensor::stack(&padded, 0)?;
        let attention_mask = Tensor::from_vec(mask, (states.len(), max_len), &self.device)?;
        let hidden = self.model.forward_upper(&hidden, &attention_mask, n_lower_layers)?;
        Ok(l2_normalize(&mean_pool(&hidden, &attention_mask)?)?)
    }

    /// Embeddings of many texts from their cached lower-layer states (sorted by length into
    /// batches, returned in input order).
    pub fn embed_from_lower(&self, states: &[Tensor], n_lower_layers: usize) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..states.len()).collect();
        order.sort_by_key(|&idx| states[idx].dims().first().copied().unwrap_or(0));
        let mut embeddings = vec![Vec::new(); states.len()];
        for batch in order.chunks(EMBED_BATCH_SIZE) {
            let batch_states: Vec<&Tensor> = batch.iter().map(|&idx| &states[idx]).collect();
            let pooled = self.forward_pooled_from_lower(&batch_states, n_lower_layers)?.detach().to_vec2::<f32>()?;
            for (&idx, embedding) in batch.iter().zip(pooled) {
                embeddings[idx] = embedding;
            }
        }
        Ok(embeddings)
    }

    fn check_layer_split(&self, n_lower_layers: usize) -> Result<()> {
        if n_lower_layers > self.n_layers() {
            return Err(IntentError::InvalidConfig {
                message: format!("the encoder has {} layers, not {n_lower_layers}", self.n_layers()),
            });
        }
        Ok(())
    }

    /// Embeds many texts (sorted by length into batches, returned in input order).
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&idx| texts[idx].len());
        let mut embeddings = vec![Vec::new(); texts.len()];
        for batch in order.chunks(EMBED_BATCH_SIZE) {
            let batch_texts: Vec<&str> = batch.iter().map(|&idx| texts[idx]).collect();
            let pooled = self.forward_pooled(&batch_texts)?.to_vec2::<f32>()?;
            for (&idx, embedding) in batch.iter().zip(pooled) {
                embeddings[idx] = embedding;
            }
        }
        Ok(embeddings)
    }

    /// After training: rebuilds the model from the current (detached) weights so that later
    /// forward passes record no gradient graph and take the fused kernels (as fast as a frozen
    /// encoder). The variables stay, so [`Self::save`] still writes the trained weights. A no-op
    /// for a frozen encoder.
    pub fn freeze(&mut self) -> Result<()> {
        let (Some(varmap), Some(base_tensors)) = (&self.varmap, &self.base_tensors) else {
            return Ok(());
        };
        let mut tensors = base_tensors.clone();
        for (name, var) in varmap.data().lock().map_err(|_| IntentError::Poisoned)?.iter() {
            tensors.insert(name.clone(), var.as_tensor().detach());
        }
        let config = self.model.config().clone();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &self.device);
        self.model = BertModel::new(&config, vb)?;
        Ok(())
    }

    /// Writes the encoder (weights, config, tokenizer) into `dir`, in the layout [`Self::load`]
    /// reads. Only a trainable encoder can be saved.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let (Some(varmap), Some(base_tensors)) = (&self.varmap, &self.base_tensors) else {
            return Err(IntentError::InvalidModel {
                path: dir.to_path_buf(),
                message: "only a trainable encoder can be saved".to_string(),
            });
        };
        std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        let mut tensors = base_tensors.clone();
        for (name, var) in varmap.data().lock().map_err(|_| IntentError::Poisoned)?.iter() {
            tensors.insert(name.clone(), var.as_tensor().detach());
        }
        candle_core::safetensors::save(&tensors, dir.join(ENCODER_WEIGHTS_FILE))?;
        write_file(&dir.join(ENCODER_CONFIG_FILE), self.config_json.as_bytes())?;
        let tokenizer_json =
            self.tokenizer.to_string(false).map_err(|err| IntentError::Tokenizer { message: err.to_string() })?;
        write_file(&dir.join(ENCODER_TOKENIZER_FILE), tokenizer_json.as_bytes())?;
        Ok(())
    }
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> IntentError {
    IntentError::Io { path: PathBuf::from(path), source }
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| io_error(path, source))
}

impl TextEmbedder for IntentEncoder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_texts(texts)
    }

    fn model_id(&self) -> String {
        self.model_id.clone()
    }
}

/// A variable source for `BertModel::new` that hands out trainable variables (registered in a
/// [`VarMap`]) for the upper layers and plain tensors for the frozen ones.
struct PartlyTrainable {
    tensors: HashMap<String, Tensor>,
    varmap: VarMap,
    n_frozen_layers: usize,
}

impl PartlyTrainable {
    fn is_trainable(&self, name: &str) -> bool {
        if name.starts_with("embeddings.word_embeddings") {
            return false;
        }
        match name.strip_prefix("encoder.layer.").and_then(|rest| rest.split('.').next()) {
            Some(layer_idx) => layer_idx.parse::<usize>().is_ok_and(|idx| idx >= self.n_frozen_layers),
            None => self.n_frozen_layers == 0,
        }
    }
}

impl candle_nn::var_builder::SimpleBackend for PartlyTrainable {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _init: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, device)?;
        if tensor.shape() != &shape {
            candle_core::bail!("shape mismatch for {name}: expected {shape:?}, found {:?}", tensor.shape())
        }
        if !self.is_trainable(name) {
            return Ok(tensor);
        }
        let var = Var::from_tensor(&tensor)?;
        let mut vars = self.varmap.data().lock().map_err(|_| candle_core::Error::Msg("poisoned varmap".into()))?;
        vars.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let tensor =
            self.tensors.get(name).ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.to_string() })?;
        tensor.to_dtype(dtype)?.to_device(device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}
