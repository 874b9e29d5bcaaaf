//! BERT-family sentence encoders, following candle-transformers' `models/bert.rs`
//! (<https://github.com/huggingface/candle/blob/main/candle-transformers/src/models/bert.rs>) and
//! Hugging Face's `modeling_bert.py`, plus sentence-transformers' pooling (attention-masked mean,
//! then L2 normalisation) and the pieces a fine-tuning loop needs ([`load_trainable`],
//! [`forward_pooled`], [`BatchInputs`]).
//!
//! Own copy because candle-nn's fast layer norm has no backward pass: upstream's `BertModel`
//! cannot be fine-tuned. Here each layer norm takes the fused kernel when nothing needs a
//! gradient and the differentiable formula when its input or weights are tracked (variables
//! from a `VarMap`), so one model type serves inference and training.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, VarMap};
pub use candle_transformers::models::bert::{Config, HiddenAct};

use crate::{Error, Result};

/// Layer normalisation over the last dimension.
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder<'_>) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let needs_gradient = xs.track_op() || self.weight.track_op() || self.bias.track_op();
        if !needs_gradient && xs.is_contiguous() {
            return candle_nn::ops::layer_norm(xs, &self.weight, &self.bias, self.eps as f32);
        }
        let hidden_size = xs.dim(D::Minus1)? as f64;
        let mean = (xs.sum_keepdim(D::Minus1)? / hidden_size)?;
        let centered = xs.broadcast_sub(&mean)?;
        let variance = (centered.sqr()?.sum_keepdim(D::Minus1)? / hidden_size)?;
        let normed = centered.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// A dense layer `x·Wᵀ + b`. A frozen weight is stored transposed and contiguous once at load:
/// the matmul of a short input (one sentence) then reads it in order instead of repacking the
/// transposed view on every call, which dominated single-sentence latency. A trainable weight
/// (a variable) keeps candle's `Linear`, so gradients reach it.
#[derive(Debug, Clone)]
enum Dense {
    Frozen { weight_t: Tensor, bias: Tensor },
    Trainable(Linear),
}

impl Dense {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Trainable(linear) => linear.forward(xs),
            Self::Frozen { weight_t, bias } => {
                let dims = xs.dims().to_vec();
                let (rows, k) = match dims.as_slice() {
                    [rows, k] => (*rows, *k),
                    [.., k] => (xs.elem_count() / k, *k),
                    [] => candle_core::bail!("a dense layer needs at least one dimension"),
                };
                let out = xs.contiguous()?.reshape((rows, k))?.matmul(weight_t)?.broadcast_add(bias)?;
                let mut out_dims = dims;
                if let Some(last) = out_dims.last_mut() {
                    *last = weight_t.dim(1)?;
                }
                out.reshape(out_dims)
            }
        }
    }
}

fn linear(in_size: usize, out_size: usize, vb: VarBuilder<'_>) -> candle_core::Result<Dense> {
    let linear = candle_nn::linear(in_size, out_size, vb)?;
    if linear.weight().is_variable() || linear.bias().is_some_and(Tensor::is_variable) {
        return Ok(Dense::Trainable(linear));
    }
    let weight_t = linear.weight().t()?.contiguous()?;
    let bias = match linear.bias() {
        Some(bias) => bias.clone(),
        None => Tensor::zeros(out_size, weight_t.dtype(), weight_t.device())?,
    };
    Ok(Dense::Frozen { weight_t, bias })
}

#[derive(Debug, Clone)]
struct Embeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
}

impl Embeddings {
    fn new(config: &Config, vb: VarBuilder<'_>) -> candle_core::Result<Self> {
        Ok(Self {
            word_embeddings: candle_nn::embedding(config.vocab_size, config.hidden_size, vb.pp("word_embeddings"))?,
            position_embeddings: candle_nn::embedding(
                config.max_position_embeddings,
                config.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type_embeddings: candle_nn::embedding(
                config.type_vocab_size,
                config.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            layer_norm: LayerNorm::new(config.hidden_size, config.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, input_ids: &Tensor, type_ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_batch, seq_len) = input_ids.dims2()?;
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        let embeddings = (self.word_embeddings.forward(input_ids)? + self.token_type_embeddings.forward(type_ids)?)?
            .broadcast_add(&self.position_embeddings.forward(&positions)?)?;
        self.layer_norm.forward(&embeddings)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_output: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
    hidden_act: HiddenAct,
    n_heads: usize,
    head_dim: usize,
}

impl Layer {
    fn new(config: &Config, vb: VarBuilder<'_>) -> candle_core::Result<Self> {
        let hidden = config.hidden_size;
        let attention = vb.pp("attention");
        Ok(Self {
            query: linear(hidden, hidden, attention.pp("self").pp("query"))?,
            key: linear(hidden, hidden, attention.pp("self").pp("key"))?,
            value: linear(hidden, hidden, attention.pp("self").pp("value"))?,
            attention_output: linear(hidden, hidden, attention.pp("output").pp("dense"))?,
            attention_norm: LayerNorm::new(hidden, config.layer_norm_eps, attention.pp("output").pp("LayerNorm"))?,
            intermediate: linear(hidden, config.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: linear(config.intermediate_size, hidden, vb.pp("output").pp("dense"))?,
            output_norm: LayerNorm::new(hidden, config.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            hidden_act: config.hidden_act,
            n_heads: config.num_attention_heads,
            head_dim: hidden / config.num_attention_heads,
        })
    }

    /// `additive_mask`: `(batch, 1, 1, seq_len)`, 0 for tokens and a large negative for padding.
    fn forward(&self, xs: &Tensor, additive_mask: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq_len, hidden) = xs.dims3()?;
        let heads = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((batch, seq_len, self.n_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let query = heads(self.query.forward(xs)?)?;
        let key = heads(self.key.forward(xs)?)?;
        let value = heads(self.value.forward(xs)?)?;
        let scores = (query.matmul(&key.t()?)? / (self.head_dim as f64).sqrt())?.broadcast_add(additive_mask)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs.matmul(&value)?.transpose(1, 2)?.reshape((batch, seq_len, hidden))?;
        let attended = self.attention_norm.forward(&(self.attention_output.forward(&context)? + xs)?)?;
        let intermediate = self.intermediate.forward(&attended)?;
        let activated = match self.hidden_act {
            HiddenAct::Gelu => crate::kernels::gelu::gelu_erf(&intermediate)?,
            HiddenAct::GeluApproximate => intermediate.gelu()?,
            HiddenAct::Relu => intermediate.relu()?,
        };
        self.output_norm.forward(&(self.output.forward(&activated)? + attended)?)
    }
}

/// A BERT encoder: embeddings and transformer layers (no pooler, no heads).
#[derive(Debug, Clone)]
pub struct BertModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    config: Config,
}

impl BertModel {
    /// Builds the model from `vb`, whose tensors may carry a `bert.` prefix or none.
    pub fn new(config: &Config, vb: VarBuilder<'_>) -> candle_core::Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let encoder = vb.pp("encoder").pp("layer");
        Ok(Self {
            embeddings: Embeddings::new(config, vb.pp("embeddings"))?,
            layers: (0..config.num_hidden_layers)
                .map(|idx| Layer::new(config, encoder.pp(idx)))
                .collect::<candle_core::Result<_>>()?,
            config: config.clone(),
        })
    }

    /// Token states `(batch, seq_len, hidden_size)` for u32 `input_ids`, `type_ids` and `mask`
    /// (1 for tokens, 0 for padding), each `(batch, seq_len)`.
    pub fn forward(&self, input_ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let hidden = self.embed_and_lower(input_ids, type_ids, mask, 0)?;
        self.forward_upper(&hidden, mask, 0)
    }

    /// The embeddings followed by the bottom `n_lower_layers` transformer layers: the token
    /// states `(batch, seq_len, hidden_size)` that [`Self::forward_upper`] continues from.
    /// With the bottom layers frozen these states can be computed once and cached.
    pub fn embed_and_lower(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        n_lower_layers: usize,
    ) -> candle_core::Result<Tensor> {
        let (_batch, seq_len) = input_ids.dims2()?;
        if seq_len > self.config.max_position_embeddings {
            candle_core::bail!(
                "sequence of {seq_len} tokens exceeds {} positions",
                self.config.max_position_embeddings
            );
        }
        let lower = self.layers.get(..n_lower_layers).ok_or_else(|| self.too_many_layers(n_lower_layers))?;
        let mut hidden = self.embeddings.forward(input_ids, type_ids)?;
        let additive_mask = additive_mask(mask, hidden.dtype())?;
        for layer in lower {
            hidden = layer.forward(&hidden, &additive_mask)?;
        }
        Ok(hidden)
    }

    /// Runs the transformer layers from `first_layer` to the top over `hidden`
    /// `(batch, seq_len, hidden_size)` (the output of [`Self::embed_and_lower`] with
    /// `n_lower_layers = first_layer`, padded positions masked out by `mask`).
    pub fn forward_upper(&self, hidden: &Tensor, mask: &Tensor, first_layer: usize) -> candle_core::Result<Tensor> {
        let upper = self.layers.get(first_layer..).ok_or_else(|| self.too_many_layers(first_layer))?;
        let additive_mask = additive_mask(mask, hidden.dtype())?;
        let mut hidden = hidden.clone();
        for layer in upper {
            hidden = layer.forward(&hidden, &additive_mask)?;
        }
        Ok(hidden)
    }

    /// Number of transformer layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    fn too_many_layers(&self, n_layers: usize) -> candle_core::Error {
        candle_core::Error::Msg(format!("the model has {} layers, not {n_layers}", self.layers.len()))
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// `(batch, 1, 1, seq_len)`: 0 for tokens, `f32::MIN` for padding, as Hugging Face's
/// `get_extended_attention_mask` (`(1 - mask) * f32::MIN`).
fn additive_mask(mask: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    mask.to_dtype(dtype)?.affine(-1.0, 1.0)?.affine(f64::from(f32::MIN), 0.0)?.unsqueeze(1)?.unsqueeze(1)
}

/// File names of an encoder directory.
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Reads `config.json` of an encoder directory.
pub fn read_config(dir: &Path) -> Result<Config> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(|err| Error::io(&path, err))?;
    parse_config(&bytes, &path)
}

pub(crate) fn parse_config(bytes: &[u8], path: &Path) -> Result<Config> {
    let config: Config = serde_json::from_slice(bytes).map_err(|err| Error::corrupt(path, err))?;
    if config.hidden_size == 0
        || config.num_attention_heads == 0
        || !config.hidden_size.is_multiple_of(config.num_attention_heads)
    {
        return Err(Error::UnsupportedModel {
            path: path.to_owned(),
            reason: format!(
                "hidden size {} is not a multiple of {} attention heads",
                config.hidden_size, config.num_attention_heads
            ),
        });
    }
    Ok(config)
}

/// Reads `model.safetensors` from bytes already in memory into named f32 tensors.
pub(crate) fn tensors_from_safetensors(bytes: &[u8], path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let tensors = candle_core::safetensors::load_buffer(bytes, device).map_err(|err| Error::corrupt(path, err))?;
    tensors.into_iter().map(|(name, tensor)| Ok((name, tensor.to_dtype(DType::F32)?))).collect()
}

/// Builds a [`BertModel`] from named tensors (with or without a `bert.` prefix).
pub(crate) fn model_from_tensors(
    tensors: HashMap<String, Tensor>,
    config: &Config,
    path: &Path,
    device: &Device,
) -> Result<BertModel> {
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    BertModel::new(config, vb).map_err(|err| Error::corrupt(path, err))
}

/// A BERT model whose weights are trainable variables.
pub struct TrainableBert {
    /// The model; its weights are the variables in `varmap`.
    pub model: BertModel,
    /// Every weight, initialised from `model.safetensors`; hand `varmap.all_vars()` to an
    /// optimizer and `varmap.save(dir/model.safetensors)` to write a loadable encoder.
    pub varmap: VarMap,
    pub config: Config,
}

impl std::fmt::Debug for TrainableBert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainableBert").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Loads the encoder in `dir` with its weights as trainable variables.
///
/// Note: the model applies no dropout, also when training.
pub fn load_trainable(dir: &Path, device: &Device) -> Result<TrainableBert> {
    let config = read_config(dir)?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&weights_path).map_err(|err| Error::io(&weights_path, err))?;
    let tensors = tensors_from_safetensors(&bytes, &weights_path, device)?;
    let varmap = VarMap::new();
    let model = {
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        BertModel::new(&config, vb)?
    };
    {
        let variables = varmap.data().lock().map_err(|_| Error::Poisoned)?;
        for (name, variable) in variables.iter() {
            let tensor = tensors
                .get(name)
                .or_else(|| tensors.get(&format!("bert.{name}")))
                .ok_or_else(|| Error::corrupt(&weights_path, format!("missing tensor {name}")))?;
            variable.set(tensor).map_err(|err| Error::corrupt(&weights_path, format!("tensor {name}: {err}")))?;
        }
    }
    Ok(TrainableBert { model, varmap, config })
}

/// Token ids, token type ids and attention mask of a padded batch, each `(batch, seq_len)`.
#[derive(Debug, Clone)]
pub struct BatchInputs {
    /// u32 token ids, padded with `pad_id`.
    pub input_ids: Tensor,
    /// u32 token type ids (all 0 for single sentences).
    pub type_ids: Tensor,
    /// u32 mask: 1 for real tokens, 0 for padding.
    pub mask: Tensor,
}

impl BatchInputs {
    /// Pads `sequences` (token ids with special tokens already added) to the longest one.
    pub fn pad(sequences: &[&[u32]], pad_id: u32, device: &Device) -> Result<Self> {
        let n_sequences = sequences.len();
        let seq_len = sequences.iter().map(|ids| ids.len()).max().unwrap_or(0);
        if n_sequences == 0 || seq_len == 0 {
            return Err(Error::InvalidInput("a batch needs at least one non-empty sequence".to_owned()));
        }
        let mut ids = Vec::with_capacity(n_sequences * seq_len);
        let mut mask = Vec::with_capacity(n_sequences * seq_len);
        for sequence in sequences {
            ids.extend_from_slice(sequence);
            ids.extend(std::iter::repeat_n(pad_id, seq_len - sequence.len()));
            mask.extend(std::iter::repeat_n(1u32, sequence.len()));
            mask.extend(std::iter::repeat_n(0u32, seq_len - sequence.len()));
        }
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (n_sequences, seq_len), device)?,
            type_ids: Tensor::zeros((n_sequences, seq_len), DType::U32, device)?,
            mask: Tensor::from_vec(mask, (n_sequences, seq_len), device)?,
        })
    }
}

/// Runs the encoder and pools: the mean of the token states under the attention mask, L2
/// normalised. Returns `(batch, hidden_size)`. Differentiable.
pub fn forward_pooled(
    model: &BertModel,
    input_ids: &Tensor,
    type_ids: &Tensor,
    mask: &Tensor,
) -> candle_core::Result<Tensor> {
    let hidden = model.forward(input_ids, type_ids, mask)?;
    l2_normalize(&mean_pool(&hidden, mask)?)
}

/// Mean of `hidden` `(batch, seq_len, hidden_size)` over positions where `mask` `(batch, seq_len)`
/// is 1, as sentence-transformers' `Pooling(mode="mean")` does.
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.maximum(1e-9)?;
    summed.broadcast_div(&counts)
}

/// Divides each row by its L2 norm (rows of norm 0 stay 0), like `torch.nn.functional.normalize`.
pub fn l2_normalize(xs: &Tensor) -> candle_core::Result<Tensor> {
    let norms = xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    xs.broadcast_div(&norms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_config() -> Config {
        Config {
            vocab_size: 50,
            hidden_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            intermediate_size: 16,
            hidden_act: HiddenAct::Gelu,
            max_position_embeddings: 32,
            ..Config::default()
        }
    }

    #[test]
    fn mean_pool_ignores_padding() -> Result<()> {
        let device = Device::Cpu;
        let hidden = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &device)?;
        let mask = Tensor::new(&[[1u32, 1, 0]], &device)?;
        let pooled = mean_pool(&hidden, &mask)?.to_vec2::<f32>()?;
        assert_eq!(pooled, vec![vec![2.0, 3.0]]);
        let normalized = l2_normalize(&Tensor::new(&[[3f32, 4.], [0., 0.]], &device)?)?.to_vec2::<f32>()?;
        assert_eq!(normalized, vec![vec![0.6, 0.8], vec![0.0, 0.0]]);
        Ok(())
    }

    #[test]
    fn padding_builds_masks() -> Result<()> {
        let inputs = BatchInputs::pad(&[&[101, 7, 102], &[101, 102]], 0, &Device::Cpu)?;
        assert_eq!(inputs.input_ids.to_vec2::<u32>()?, vec![vec![101, 7, 102], vec![101, 102, 0]]);
        assert_eq!(inputs.mask.to_vec2::<u32>()?, vec![vec![1, 1, 1], vec![1, 1, 0]]);
        assert!(BatchInputs::pad(&[], 0, &Device::Cpu).is_err());
        assert!(BatchInputs::pad(&[&[]], 0, &Device::Cpu).is_err());
        Ok(())
    }

    #[test]
    fn pooled_forward_is_differentiable_and_padding_invariant() -> Result<()> {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = BertModel::new(&tiny_config(), vb)?;

        let inputs = BatchInputs::pad(&[&[1, 5, 9, 2], &[1, 7, 2]], 0, &device)?;
        let pooled = forward_pooled(&model, &inputs.input_ids, &inputs.type_ids, &inputs.mask)?;
        assert_eq!(pooled.dims(), &[2, 8]);

        // The padded second sentence pools like the same sentence alone.
        let alone = BatchInputs::pad(&[&[1, 7, 2]], 0, &device)?;
        let alone = forward_pooled(&model, &alone.input_ids, &alone.type_ids, &alone.mask)?;
        let difference = (pooled.get(1)? - alone.get(0)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(difference < 1e-5, "padding changed the embedding by {difference}");

        // A loss on the pooled output reaches every weight.
        let loss = pooled.get(0)?.mul(&pooled.get(1)?)?.sum_all()?;
        let gradients = loss.backward()?;
        let variables = varmap.all_vars();
        assert!(!variables.is_empty());
        let with_gradient = variables.iter().filter(|var| gradients.get(var.as_tensor()).is_some()).count();
        // Every variable takes part in the forward pass, so every one has a gradient.
        assert_eq!(with_gradient, variables.len());
        Ok(())
    }

    #[test]
    fn upper_layers_continue_the_lower_ones_exactly() -> Result<()> {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = BertModel::new(&Config { num_hidden_layers: 3, ..tiny_config() }, vb)?;
        assert_eq!(model.n_layers(), 3);
        let inputs = BatchInputs::pad(&[&[1, 5, 9, 2], &[1, 7, 2]], 0, &device)?;
        let full = model.forward(&inputs.input_ids, &inputs.type_ids, &inputs.mask)?;
        for n_lower_layers in 0..=3 {
            let lower = model.embed_and_lower(&inputs.input_ids, &inputs.type_ids, &inputs.mask, n_lower_layers)?;
            let upper = model.forward_upper(&lower, &inputs.mask, n_lower_layers)?;
            let difference = (upper - &full)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(difference < 1e-5, "split after {n_lower_layers} layers: off by {difference}");
        }
        assert!(model.embed_and_lower(&inputs.input_ids, &inputs.type_ids, &inputs.mask, 4).is_err());
        assert!(model.forward_upper(&full, &inputs.mask, 4).is_err());
        Ok(())
    }
}
