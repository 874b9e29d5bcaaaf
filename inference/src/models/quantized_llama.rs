//! Llama-architecture decoder from a GGUF file, quantized matmuls on the CPU.
//!
//! Follows candle-transformers' `models/quantized_llama.rs` (0.11.1,
//! <https://github.com/huggingface/candle/blob/main/candle-transformers/src/models/quantized_llama.rs>)
//! with five changes:
//! - the weights are immutable and the KV cache lives outside them ([`KvCache`]), so one loaded
//!   model serves concurrent generations and a cache can later be cloned for prefix reuse; the
//!   cache holds plain per-head rows that grow in place (no concatenation per token);
//! - matmul weights run on Switchboard's own kernels ([`WeightFormat`]): candle has no SIMD dot
//!   product for Q4_1 (the format the default model ships in); the default runs the stored Q4_1
//!   blocks on [`crate::kernels::q4`];
//! - a decode step (one token) with the kernels' weights runs without candle tensors: plain loops
//!   over `Vec<f32>` for the norms, RoPE, attention ([`crate::kernels::attention`]) and SiLU, one
//!   activation quantization shared by the q, k and v products (and by gate and up);
//! - optionally a dense f32 copy of the layer weights serves prompt processing
//!   ([`LoadOptions::dense_prefill`]): candle's quantized matmul re-reads the whole weight matrix
//!   for every prompt row, while the f32 gemm is blocked and about three times faster there;
//! - RoPE tables cover the model's context length (capped at [`MAX_POSITIONS`]) instead of 4096.
//!
//! Mixture-of-experts Llama variants are not supported (the MoE branch upstream is unused here).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{D, DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::Embedding;

use crate::kernels::attention::{KeyBlocks, attend_one};
use crate::kernels::q4::{self, Q4Matrix};
use crate::kernels::q8::{self, Q8Matrix, Q8Rows};

/// Upper bound on the positions the RoPE tables are built for (and so on prompt + reply length).
pub const MAX_POSITIONS: usize = 8192;

/// The format matmul weights are held in after loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// Whatever the file stores, on candle's kernels (Q4_1 for the default model: no SIMD
    /// kernel in candle, slow).
    AsStored,
    /// Q4_1 weights exactly as stored, run by Switchboard's int4 kernel
    /// ([`crate::kernels::q4`]: AVX-512 VNNI where the CPU has it); other stored types take the
    /// int8 kernel ([`WeightFormat::Q8_0`]). The default: the fewest bytes per decode step and
    /// the file's own weights (see `BENCHMARKS.md`).
    #[default]
    Q4_1,
    /// 8-bit blocks of 32 with one scale, run by Switchboard's int8 kernel
    /// ([`crate::kernels::q8`]): nearly lossless from Q4_1, twice the bytes.
    Q8_0,
    /// Q8_0 run by candle's own kernels (AVX2), for comparisons.
    Q8_0Candle,
    /// 4-bit blocks of 32 with one scale: SIMD kernels, least memory, loses Q4_1's offsets.
    Q4_0,
    /// Dequantized f32 (4× the memory of Q8_0; uses the f32 gemm).
    F32,
}

impl WeightFormat {
    /// All formats, for benchmarks.
    pub const ALL: [WeightFormat; 6] =
        [Self::AsStored, Self::Q4_1, Self::Q8_0, Self::Q8_0Candle, Self::Q4_0, Self::F32];

    /// Short lowercase name (`as-stored`, `q4_1`, `q8_0`, `q8_0-candle`, `q4_0`, `f32`).
    pub fn name(self) -> &'static str {
        match self {
            Self::AsStored => "as-stored",
            Self::Q4_1 => "q4_1",
            Self::Q8_0 => "q8_0",
            Self::Q8_0Candle => "q8_0-candle",
            Self::Q4_0 => "q4_0",
            Self::F32 => "f32",
        }
    }

    /// Parses [`WeightFormat::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.name().eq_ignore_ascii_case(name))
    }
}

/// How weights are held after loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Format of the matmul weights (used for single-token decode steps).
    pub weight_format: WeightFormat,
    /// Also keep a dense f32 copy of the layer weights, used when [`DENSE_MIN_ROWS`] or more
    /// tokens are processed at once (the prompt). Costs 4 bytes per layer weight (about 425 MB
    /// for SmolLM2-135M); ignored for [`WeightFormat::F32`].
    pub dense_prefill: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { weight_format: WeightFormat::default(), dense_prefill: true }
    }
}

/// Rows (tokens) from which the dense copy is used when there is one.
pub const DENSE_MIN_ROWS: usize = 4;

/// Hyperparameters read from the GGUF metadata (`llama.*` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub hidden_size: usize,
    pub head_dim: usize,
    pub rope_dim: usize,
    pub rope_freq_base: f32,
    pub rms_norm_eps: f64,
    /// The model's trained context length (`llama.context_length`).
    pub context_length: usize,
    pub vocab_size: usize,
}

impl Config {
    /// Reads the hyperparameters of a `llama` GGUF.
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let get = |key: &str| match ct.metadata.get(key) {
            Some(value) => Ok(value),
            None => candle_core::bail!("missing metadata key {key}"),
        };
        let get_usize = |key: &str| get(key).and_then(|value| value.to_u64()).map(|value| value as usize);
        let arch = get("general.architecture")?.to_string()?.clone();
        if arch != "llama" {
            candle_core::bail!("architecture {arch:?} is not llama");
        }
        if get_usize("llama.expert_count").unwrap_or(0) > 1 {
            candle_core::bail!("mixture-of-experts llama models are not supported");
        }
        let n_head = get_usize("llama.attention.head_count")?;
        let hidden_size = get_usize("llama.embedding_length")?;
        if n_head == 0 || hidden_size % n_head != 0 {
            candle_core::bail!("embedding length {hidden_size} is not a multiple of head count {n_head}");
        }
        let n_kv_head = get_usize("llama.attention.head_count_kv").unwrap_or(n_head);
        if n_kv_head == 0 || n_head % n_kv_head != 0 {
            candle_core::bail!("head count {n_head} is not a multiple of kv head count {n_kv_head}");
        }
        let head_dim = hidden_size / n_head;
        let vocab_size = match get_usize("llama.vocab_size") {
            Ok(size) => size,
            Err(_) => get("tokenizer.ggml.tokens")?.to_vec()?.len(),
        };
        Ok(Self {
            n_layer: get_usize("llama.block_count")?,
            n_head,
            n_kv_head,
            hidden_size,
            head_dim,
            rope_dim: get_usize("llama.rope.dimension_count").unwrap_or(head_dim),
            rope_freq_base: get("llama.rope.freq_base").and_then(|value| value.to_f32()).unwrap_or(10_000.0),
            rms_norm_eps: f64::from(get("llama.attention.layer_norm_rms_epsilon")?.to_f32()?),
            context_length: get_usize("llama.context_length").unwrap_or(2048),
            vocab_size,
        })
    }

    /// Positions usable for prompt plus reply: the context length, capped at [`MAX_POSITIONS`].
    pub fn max_positions(&self) -> usize {
        self.context_length.min(MAX_POSITIONS)
    }
}

/// The keys and values of every layer for the positions processed so far.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    n_positions: usize,
}

/// One layer's cached keys (after RoPE) and values, per KV head, appended in place: keys in
/// [`KeyBlocks`] (the layout the decode step's attention reads fastest), values as
/// `positions × head_dim` values, row-major.
#[derive(Debug, Clone, Default)]
struct LayerCache {
    keys: Vec<KeyBlocks>,
    values: Vec<Vec<f32>>,
}

impl LayerCache {
    /// Appends one position's keys and values of every head (each `n_kv_head × head_dim`,
    /// head-major).
    fn push(&mut self, keys: &[f32], values: &[f32], n_kv_head: usize) {
        self.keys.resize_with(n_kv_head, KeyBlocks::default);
        self.values.resize_with(n_kv_head, Vec::new);
        let head_dim = keys.len() / n_kv_head;
        for (head, key) in self.keys.iter_mut().zip(keys.chunks_exact(head_dim)) {
            head.push(key);
        }
        for (head, value) in self.values.iter_mut().zip(values.chunks_exact(head_dim)) {
            head.extend_from_slice(value);
        }
    }

    /// The first `n_positions` positions (of `of_positions`).
    fn prefix(&self, n_positions: usize, of_positions: usize) -> LayerCache {
        let keys = self
            .keys
            .iter()
            .map(|head| {
                let mut head = head.clone();
                head.truncate(n_positions);
                head
            })
            .collect();
        let values =
            self.values.iter().map(|head| head[..head.len() / of_positions.max(1) * n_positions].to_vec()).collect();
        LayerCache { keys, values }
    }

    /// The keys and the values as row-major `(n_kv_head, positions, head_dim)` values.
    fn rows(&self) -> (Vec<f32>, Vec<f32>) {
        (self.keys.iter().flat_map(KeyBlocks::to_rows).collect(), self.values.concat())
    }

    fn size_bytes(&self) -> usize {
        let values: usize = self.values.iter().map(Vec::len).sum();
        self.keys.iter().map(KeyBlocks::size_bytes).sum::<usize>() + values * std::mem::size_of::<f32>()
    }
}

impl KvCache {
    /// An empty cache for a model with `n_layer` layers.
    pub fn new(n_layer: usize) -> Self {
        Self { layers: vec![LayerCache::default(); n_layer], n_positions: 0 }
    }

    /// Number of positions (tokens) held.
    pub fn len(&self) -> usize {
        self.n_positions
    }

    /// True when no position has been processed.
    pub fn is_empty(&self) -> bool {
        self.n_positions == 0
    }

    /// A copy of the first `n_positions` positions (all of them if there are fewer): the cache
    /// of a prompt's prefix, to continue from with another ending.
    pub fn prefix(&self, n_positions: usize) -> KvCache {
        let n = n_positions.min(self.n_positions);
        let layers = self.layers.iter().map(|layer| layer.prefix(n, self.n_positions)).collect();
        KvCache { layers, n_positions: n }
    }

    /// Bytes held by the cached keys and values.
    pub fn size_bytes(&self) -> usize {
        self.layers.iter().map(LayerCache::size_bytes).sum()
    }
}

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    /// `weight` as values, for decode steps.
    values: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn from_qtensor(weight: QTensor, eps: f64) -> Result<Self> {
        let weight = weight.dequantize(&weight.device())?;
        let values = weight.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self { weight, values, eps: eps as f32 })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(xs, &self.weight, self.eps)
    }

    /// The same for one row of values, into `out`.
    fn forward_row(&self, xs: &[f32], out: &mut Vec<f32>) {
        let mean_square = xs.iter().map(|x| x * x).sum::<f32>() / xs.len().max(1) as f32;
        let inverse = 1.0 / (mean_square + self.eps).sqrt();
        out.clear();
        out.extend(xs.iter().zip(&self.values).map(|(x, w)| x * inverse * w));
    }
}

/// A matmul weight: quantized (or dense) for decode steps, plus an optional dense f32 copy for
/// many rows at once.
#[derive(Debug, Clone)]
struct Weight {
    matmul: Matmul,
    dense: Option<Tensor>,
}

impl Weight {
    fn new(tensor: QTensor, options: LoadOptions) -> Result<Self> {
        let dense = if options.dense_prefill && options.weight_format != WeightFormat::F32 {
            Some(tensor.dequantize(&tensor.device())?)
        } else {
            None
        };
        Ok(Self { matmul: matmul_weight(tensor, options.weight_format)?, dense })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let Some(dense) = &self.dense {
            let n_rows = xs.elem_count() / xs.dim(D::Minus1)?.max(1);
            if n_rows >= DENSE_MIN_ROWS {
                return QMatMul::Tensor(dense.clone()).forward(xs);
            }
        }
        self.matmul.forward(xs)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    attention_wq: Weight,
    attention_wk: Weight,
    attention_wv: Weight,
    attention_wo: Weight,
    attention_norm: RmsNorm,
    feed_forward_w1: Weight,
    feed_forward_w2: Weight,
    feed_forward_w3: Weight,
    ffn_norm: RmsNorm,
}

impl Layer {
    /// Whether every matmul weight is held by a Switchboard kernel.
    fn on_kernels(&self) -> bool {
        [
            &self.attention_wq,
            &self.attention_wk,
            &self.attention_wv,
            &self.attention_wo,
            &self.feed_forward_w1,
            &self.feed_forward_w2,
            &self.feed_forward_w3,
        ]
        .iter()
        .all(|weight| !matches!(weight.matmul, Matmul::Candle(_)))
    }
}

/// The loaded weights of a Llama model. Immutable: every forward pass takes its own [`KvCache`].
#[derive(Debug, Clone)]
pub struct ModelWeights {
    config: Config,
    tok_embeddings: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Matmul,
    cos: Tensor,
    sin: Tensor,
    /// `cos` and `sin` as row-major `(positions, rope_dim / 2)` values, for decode steps.
    cos_values: Vec<f32>,
    sin_values: Vec<f32>,
    /// Every layer weight is held by a Switchboard kernel: decode steps skip candle.
    kernel_decode: bool,
}

fn rope_tables(config: &Config, device: &Device) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..config.rope_dim)
        .step_by(2)
        .map(|i| 1.0 / config.rope_freq_base.powf(i as f32 / config.rope_dim as f32))
        .collect();
    let n_theta = theta.len();
    let theta = Tensor::from_vec(theta, (1, n_theta), device)?;
    let positions = config.max_positions();
    let idx_theta =
        Tensor::arange(0, positions as u32, device)?.to_dtype(DType::F32)?.reshape((positions, 1))?.matmul(&theta)?;
    Ok((idx_theta.cos()?, idx_theta.sin()?))
}

/// A matmul weight held by candle (quantized or dense) or by one of Switchboard's kernels.
#[derive(Debug, Clone)]
enum Matmul {
    Candle(QMatMul),
    Int8(Q8Matrix),
    Int4(Q4Matrix),
}

impl Matmul {
    /// `xs · Wᵀ` over the last dimension of `xs`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let Self::Candle(matmul) = self {
            return matmul.forward(xs);
        }
        let dims = xs.dims();
        let cols = dims.last().copied().unwrap_or(0);
        let values = xs.flatten_all()?.to_vec1::<f32>()?;
        let rows = Q8Rows::quantize(&values, cols).map_err(candle_core::Error::Msg)?;
        let mut out = Vec::new();
        self.kernel_product(&rows, &mut out);
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = out.len() / rows.n_rows().max(1);
        }
        Tensor::from_vec(out, out_dims, xs.device())
    }

    /// `x · Wᵀ` into `out` (resized) when a Switchboard kernel holds the weight; false for
    /// candle's weights.
    fn kernel_product(&self, x: &Q8Rows, out: &mut Vec<f32>) -> bool {
        match self {
            Self::Candle(_) => false,
            Self::Int8(matrix) => {
                out.resize(x.n_rows() * matrix.rows(), 0.0);
                q8::matmul(matrix, x, out);
                true
            }
            Self::Int4(matrix) => {
                out.resize(x.n_rows() * matrix.rows(), 0.0);
                q4::matmul(matrix, x, out);
                true
            }
        }
    }
}

/// Converts a matmul weight to `format`.
fn matmul_weight(tensor: QTensor, format: WeightFormat) -> Result<Matmul> {
    let device = tensor.device();
    let k = tensor.shape().dims().last().copied().unwrap_or(0);
    let target = match format {
        WeightFormat::AsStored => return Ok(Matmul::Candle(QMatMul::from_qtensor(tensor)?)),
        WeightFormat::F32 => return Ok(Matmul::Candle(QMatMul::Tensor(tensor.dequantize(&device)?))),
        WeightFormat::Q4_1 if tensor.dtype() == GgmlDType::Q4_1 && k % q8::BLOCK == 0 => {
            let (rows, cols) = tensor.shape().dims2()?;
            let matrix = Q4Matrix::from_q4_1(&tensor.data()?, rows, cols).map_err(candle_core::Error::Msg)?;
            return Ok(Matmul::Int4(matrix));
        }
        WeightFormat::Q4_1 | WeightFormat::Q8_0 if k % q8::BLOCK == 0 => {
            let (rows, cols) = tensor.shape().dims2()?;
            let values = tensor.dequantize(&device)?.flatten_all()?.to_vec1::<f32>()?;
            let matrix = Q8Matrix::from_f32(&values, rows, cols).map_err(candle_core::Error::Msg)?;
            return Ok(Matmul::Int8(matrix));
        }
        WeightFormat::Q4_1 | WeightFormat::Q8_0 | WeightFormat::Q8_0Candle => GgmlDType::Q8_0,
        WeightFormat::Q4_0 => GgmlDType::Q4_0,
    };
    if tensor.dtype() == target || k % target.block_size() != 0 {
        return Ok(Matmul::Candle(QMatMul::from_qtensor(tensor)?));
    }
    Ok(Matmul::Candle(QMatMul::from_qtensor(QTensor::quantize(&tensor.dequantize(&device)?, target)?)?))
}

impl ModelWeights {
    /// Loads the weights of a `llama` GGUF, converting matmul weights as `options` say.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        options: LoadOptions,
    ) -> Result<Self> {
        let format = options.weight_format;
        let config = Config::from_gguf(ct)?;
        let mut tensor = |name: &str| ct.tensor(reader, name, device);

        let tok_embeddings_q = tensor("token_embd.weight")?;
        let tok_embeddings = tok_embeddings_q.dequantize(device)?;
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, config.rms_norm_eps)?;
        // Models with tied embeddings have no output.weight.
        let output =
            if ct.tensor_infos.contains_key("output.weight") { tensor("output.weight")? } else { tok_embeddings_q };
        let output = matmul_weight(output, format)?;
        let mut layers = Vec::with_capacity(config.n_layer);
        for layer_idx in 0..config.n_layer {
            let mut weight = |name: &str| tensor(&format!("blk.{layer_idx}.{name}.weight"));
            layers.push(Layer {
                attention_wq: Weight::new(weight("attn_q")?, options)?,
                attention_wk: Weight::new(weight("attn_k")?, options)?,
                attention_wv: Weight::new(weight("attn_v")?, options)?,
                attention_wo: Weight::new(weight("attn_output")?, options)?,
                attention_norm: RmsNorm::from_qtensor(weight("attn_norm")?, config.rms_norm_eps)?,
                feed_forward_w1: Weight::new(weight("ffn_gate")?, options)?,
                feed_forward_w2: Weight::new(weight("ffn_down")?, options)?,
                feed_forward_w3: Weight::new(weight("ffn_up")?, options)?,
                ffn_norm: RmsNorm::from_qtensor(weight("ffn_norm")?, config.rms_norm_eps)?,
            });
        }
        let tok_embeddings = Embedding::new(tok_embeddings, config.hidden_size);
        Self::assemble(config, tok_embeddings, layers, norm, output, device)
    }

    /// Puts loaded parts together with the RoPE tables and the decode path's flag.
    fn assemble(
        config: Config,
        tok_embeddings: Embedding,
        layers: Vec<Layer>,
        norm: RmsNorm,
        output: Matmul,
        device: &Device,
    ) -> Result<Self> {
        let (cos, sin) = rope_tables(&config, device)?;
        let cos_values = cos.flatten_all()?.to_vec1::<f32>()?;
        let sin_values = sin.flatten_all()?.to_vec1::<f32>()?;
        let kernel_decode = layers.iter().all(Layer::on_kernels);
        Ok(Self { config, tok_embeddings, layers, norm, output, cos, sin, cos_values, sin_values, kernel_decode })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A fresh cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layer)
    }

    /// Runs `tokens` (shape `(1, seq_len)`, u32) at positions `cache.len()..` and returns the
    /// logits of the last position, shape `(1, vocab_size)`; appends to `cache`.
    pub fn forward(&self, tokens: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (_b_size, seq_len) = tokens.dims2()?;
        let index_pos = cache.n_positions;
        if seq_len == 0 {
            candle_core::bail!("no tokens to process");
        }
        if index_pos + seq_len > self.config.max_positions() {
            candle_core::bail!(
                "positions {index_pos}..{} exceed the model's {} positions",
                index_pos + seq_len,
                self.config.max_positions()
            );
        }
        if seq_len == 1 && self.kernel_decode {
            let token = tokens.flatten_all()?.to_vec1::<u32>()?[0];
            return self.forward_one(token, cache);
        }
        let mask = if seq_len == 1 {
            None
        } else {
            Some(candle_transformers::utils::build_causal_mask(seq_len, index_pos, tokens.device())?)
        };
        let mut hidden = self.tok_embeddings.forward(tokens)?;
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let residual = &hidden;
            let normed = layer.attention_norm.forward(&hidden)?;
            let attn = self.forward_attention(layer, &normed, mask.as_ref(), index_pos, layer_cache)?;
            let hidden_mid = (attn + residual)?;
            let residual = &hidden_mid;
            let normed = layer.ffn_norm.forward(&hidden_mid)?;
            let gate = layer.feed_forward_w1.forward(&normed)?;
            let up = layer.feed_forward_w3.forward(&normed)?;
            let mlp = layer.feed_forward_w2.forward(&(candle_nn::ops::silu(&gate)? * up)?)?;
            hidden = (mlp + residual)?;
        }
        cache.n_positions += seq_len;
        let hidden = self.norm.forward(&hidden)?;
        let last = hidden.i((.., seq_len - 1, ..))?;
        self.output.forward(&last)
    }

    /// One decode step on the kernels' weights, without candle tensors: the logits of `token` at
    /// position `cache.len()`, shape `(1, vocab_size)`; appends to `cache`.
    fn forward_one(&self, token: u32, cache: &mut KvCache) -> Result<Tensor> {
        let Config { n_head, n_kv_head, head_dim, .. } = self.config;
        let position = cache.n_positions;
        let mut hidden = self.tok_embeddings.embeddings().i(token as usize)?.to_vec1::<f32>()?;
        let hidden_size = hidden.len();
        let mut normed = Vec::with_capacity(hidden_size);
        let mut activations = Q8Rows::default();
        let (mut q, mut k, mut v, mut product) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut gate, mut up) = (Vec::new(), Vec::new());
        let mut attended = vec![0f32; n_head * head_dim];
        let mut scores = Vec::new();
        let scale = 1.0 / (head_dim as f32).sqrt();
        let heads_per_kv = n_head / n_kv_head;
        let quantize = |activations: &mut Q8Rows, values: &[f32]| {
            activations.quantize_from(values, values.len()).map_err(candle_core::Error::Msg)
        };
        let product_of = |weight: &Weight, activations: &Q8Rows, out: &mut Vec<f32>| {
            if weight.matmul.kernel_product(activations, out) {
                Ok(())
            } else {
                Err(candle_core::Error::Msg("a decode-step weight is not on a kernel".to_owned()))
            }
        };
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            layer.attention_norm.forward_row(&hidden, &mut normed);
            quantize(&mut activations, &normed)?;
            product_of(&layer.attention_wq, &activations, &mut q)?;
            product_of(&layer.attention_wk, &activations, &mut k)?;
            product_of(&layer.attention_wv, &activations, &mut v)?;
            self.rotate_row(&mut q, head_dim, position);
            self.rotate_row(&mut k, head_dim, position);
            layer_cache.push(&k, &v, n_kv_head);
            for (head, (query, out)) in q.chunks_exact(head_dim).zip(attended.chunks_exact_mut(head_dim)).enumerate() {
                let kv = head / heads_per_kv;
                attend_one(query, &layer_cache.keys[kv], &layer_cache.values[kv], scale, &mut scores, out);
            }
            quantize(&mut activations, &attended)?;
            product_of(&layer.attention_wo, &activations, &mut product)?;
            for (h, p) in hidden.iter_mut().zip(&product) {
                *h += p;
            }
            layer.ffn_norm.forward_row(&hidden, &mut normed);
            quantize(&mut activations, &normed)?;
            product_of(&layer.feed_forward_w1, &activations, &mut gate)?;
            product_of(&layer.feed_forward_w3, &activations, &mut up)?;
            for (g, u) in gate.iter_mut().zip(&up) {
                *g = *g / (1.0 + (-*g).exp()) * u;
            }
            quantize(&mut activations, &gate)?;
            product_of(&layer.feed_forward_w2, &activations, &mut product)?;
            for (h, p) in hidden.iter_mut().zip(&product) {
                *h += p;
            }
        }
        cache.n_positions += 1;
        self.norm.forward_row(&hidden, &mut normed);
        quantize(&mut activations, &normed)?;
        let mut logits = Vec::new();
        if !self.output.kernel_product(&activations, &mut logits) {
            let row = Tensor::from_vec(normed, (1, hidden_size), &Device::Cpu)?;
            return self.output.forward(&row);
        }
        let vocab_size = logits.len();
        Tensor::from_vec(logits, (1, vocab_size), &Device::Cpu)
    }

    /// Interleaved RoPE (pairs `2i, 2i + 1`, as [`candle_nn::rotary_emb::rope_i`]) of every head
    /// of one row at `position`.
    fn rotate_row(&self, row: &mut [f32], head_dim: usize, position: usize) {
        let n_pairs = self.config.rope_dim / 2;
        let cos = &self.cos_values[position * n_pairs..][..n_pairs];
        let sin = &self.sin_values[position * n_pairs..][..n_pairs];
        for head in row.chunks_exact_mut(head_dim) {
            for (pair, (&c, &s)) in head.chunks_exact_mut(2).zip(cos.iter().zip(sin)) {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c - x1 * s;
                pair[1] = x0 * s + x1 * c;
            }
        }
    }

    fn apply_rotary_emb(&self, xs: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b_size, _n_head, seq_len, _head_dim) = xs.dims4()?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        // GGUF llama weights are permuted for the interleaved ("normal") RoPE layout.
        candle_nn::rotary_emb::rope_i(&xs.contiguous()?, &cos, &sin)
    }

    fn forward_attention(
        &self,
        layer: &Layer,
        xs: &Tensor,
        mask: Option<&Tensor>,
        index_pos: usize,
        layer_cache: &mut LayerCache,
    ) -> Result<Tensor> {
        let Config { n_head, n_kv_head, head_dim, .. } = self.config;
        let (b_size, seq_len, hidden_size) = xs.dims3()?;
        if b_size != 1 {
            candle_core::bail!("a batch of {b_size} sequences: one at a time");
        }
        let q = layer.attention_wq.forward(xs)?;
        let k = layer.attention_wk.forward(xs)?;
        let v = layer.attention_wv.forward(xs)?;

        let q = q.reshape((b_size, seq_len, n_head, head_dim))?.transpose(1, 2)?;
        let k = k.reshape((b_size, seq_len, n_kv_head, head_dim))?.transpose(1, 2)?;
        let v = v.reshape((b_size, seq_len, n_kv_head, head_dim))?.transpose(1, 2)?.contiguous()?;
        let q = self.apply_rotary_emb(&q, index_pos)?;
        let k = self.apply_rotary_emb(&k, index_pos)?;

        // Append the new positions to the cache, then read every position back as tensors.
        let by_position = |new: &Tensor| new.i(0)?.transpose(0, 1)?.contiguous()?.flatten_all()?.to_vec1::<f32>();
        let (new_keys, new_values) = (by_position(&k)?, by_position(&v)?);
        let position_len = n_kv_head * head_dim;
        for (keys, values) in new_keys.chunks_exact(position_len).zip(new_values.chunks_exact(position_len)) {
            layer_cache.push(keys, values, n_kv_head);
        }
        let shape = (1, n_kv_head, index_pos + seq_len, head_dim);
        let (keys, values) = layer_cache.rows();
        let (k, v) = (Tensor::from_vec(keys, shape, xs.device())?, Tensor::from_vec(values, shape, xs.device())?);

        let k = candle_transformers::utils::repeat_kv(k, n_head / n_kv_head)?;
        let v = candle_transformers::utils::repeat_kv(v, n_head / n_kv_head)?;
        let att = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
        let att = match mask {
            None => att,
            Some(mask) => {
                let mask = mask.broadcast_as(att.shape())?;
                let neg_inf = Tensor::new(f32::NEG_INFINITY, att.device())?.broadcast_as(att.shape())?;
                mask.where_cond(&neg_inf, &att)?
            }
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v.contiguous()?)?;
        let y = y.transpose(1, 2)?.reshape((b_size, seq_len, hidden_size))?;
        layer.attention_wo.forward(&y)
    }
}

/// Index of the largest logit (greedy decoding), ties broken towards the lower id.
pub fn argmax(logits: &Tensor) -> Result<u32> {
    logits.flatten_all()?.argmax(D::Minus1)?.to_scalar::<u32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small model with random weights, stored as Q4_1 like the shipped model.
    fn random_model(options: LoadOptions) -> Result<ModelWeights> {
        let device = Device::Cpu;
        let config = Config {
            n_layer: 2,
            n_head: 4,
            n_kv_head: 2,
            hidden_size: 64,
            head_dim: 16,
            rope_dim: 16,
            rope_freq_base: 10_000.0,
            rms_norm_eps: 1e-5,
            context_length: 128,
            vocab_size: 96,
        };
        let stored = |rows: usize, cols: usize| -> Result<QTensor> {
            QTensor::quantize(&(Tensor::randn(0f32, 1.0, (rows, cols), &device)? * 0.2)?, GgmlDType::Q4_1)
        };
        let norm = || -> Result<RmsNorm> {
            RmsNorm::from_qtensor(QTensor::quantize(&Tensor::ones(64, DType::F32, &device)?, GgmlDType::F32)?, 1e-5)
        };
        let layers = (0..config.n_layer)
            .map(|_| {
                Ok(Layer {
                    attention_wq: Weight::new(stored(64, 64)?, options)?,
                    attention_wk: Weight::new(stored(32, 64)?, options)?,
                    attention_wv: Weight::new(stored(32, 64)?, options)?,
                    attention_wo: Weight::new(stored(64, 64)?, options)?,
                    attention_norm: norm()?,
                    feed_forward_w1: Weight::new(stored(128, 64)?, options)?,
                    feed_forward_w2: Weight::new(stored(64, 128)?, options)?,
                    feed_forward_w3: Weight::new(stored(128, 64)?, options)?,
                    ffn_norm: norm()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tok_embeddings = Embedding::new(Tensor::randn(0f32, 1.0, (96, 64), &device)?, 64);
        let output = matmul_weight(stored(96, 64)?, options.weight_format)?;
        ModelWeights::assemble(config, tok_embeddings, layers, norm()?, output, &device)
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
    }

    #[test]
    fn cached_and_chunked_forward_passes_match_one_full_pass() -> Result<()> {
        let model = random_model(LoadOptions { weight_format: WeightFormat::F32, dense_prefill: false })?;
        let tokens: Vec<u32> = (0..12).map(|i| (i * 7 + 3) % 96).collect();
        let all = Tensor::new(tokens.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let mut cache = model.new_cache();
        let full = model.forward(&all, &mut cache)?;
        assert_eq!(cache.len(), 12);

        // Two chunks, then the rest one token at a time.
        let mut cache = model.new_cache();
        model.forward(&all.narrow(1, 0, 5)?, &mut cache)?;
        model.forward(&all.narrow(1, 5, 4)?, &mut cache)?;
        let mut last = None;
        for position in 9..12 {
            last = Some(model.forward(&all.narrow(1, position, 1)?, &mut cache)?);
        }
        let difference = max_difference(&full, &last.unwrap())?;
        assert!(difference < 1e-4, "incremental logits differ by {difference}");
        Ok(())
    }

    /// The candle-free decode step against candle's ops on the same kernel weights: a prompt,
    /// then decode steps on both paths, logits compared at every step.
    #[test]
    fn decode_steps_without_candle_match_the_candle_path() -> Result<()> {
        for weight_format in [WeightFormat::Q4_1, WeightFormat::Q8_0] {
            let fast = random_model(LoadOptions { weight_format, dense_prefill: false })?;
            assert!(fast.kernel_decode, "{weight_format:?}");
            let mut slow = fast.clone();
            slow.kernel_decode = false;
            let prompt = Tensor::new(&[[5u32, 17, 42, 8, 77]], &Device::Cpu)?;
            let (mut fast_cache, mut slow_cache) = (fast.new_cache(), slow.new_cache());
            let mut fast_logits = fast.forward(&prompt, &mut fast_cache)?;
            let mut slow_logits = slow.forward(&prompt, &mut slow_cache)?;
            for step in 0..6 {
                let scale = slow_logits.abs()?.max_all()?.to_scalar::<f32>()?;
                let difference = max_difference(&fast_logits, &slow_logits)?;
                assert!(difference <= 1e-3 * scale, "{weight_format:?} step {step}: logits differ by {difference}");
                let next = Tensor::new(&[[argmax(&slow_logits)?]], &Device::Cpu)?;
                fast_logits = fast.forward(&next, &mut fast_cache)?;
                slow_logits = slow.forward(&next, &mut slow_cache)?;
            }
            assert_eq!(fast_cache.len(), 11);
            for (fast_layer, slow_layer) in fast_cache.layers.iter().zip(&slow_cache.layers) {
                let ((fast_keys, fast_values), (slow_keys, slow_values)) = (fast_layer.rows(), slow_layer.rows());
                for (fast_rows, slow_rows) in [(fast_keys, slow_keys), (fast_values, slow_values)] {
                    assert_eq!(fast_rows.len(), 2 * 11 * 16, "two kv heads, 11 positions, 16 dimensions");
                    let scale = slow_rows.iter().fold(0f32, |m, x| m.max(x.abs()));
                    let difference = fast_rows.iter().zip(&slow_rows).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    assert!(difference <= 1e-3 * scale, "{weight_format:?}: cached rows differ by {difference}");
                }
            }
        }
        Ok(())
    }

    /// A cache cut back to a prefix continues exactly like a cache that only ever saw it.
    #[test]
    fn a_cache_prefix_continues_like_a_fresh_cache() -> Result<()> {
        // Without the dense copy every chunk size takes the same (quantized) path.
        let model = random_model(LoadOptions { weight_format: WeightFormat::Q4_1, dense_prefill: false })?;
        let tokens = Tensor::new(&[[5u32, 17, 42, 8, 77, 3, 9]], &Device::Cpu)?;
        let mut long = model.new_cache();
        model.forward(&tokens, &mut long)?;
        let mut reused = long.prefix(4);
        assert_eq!((reused.len(), long.len()), (4, 7));
        assert_eq!(long.prefix(99).len(), 7);
        assert!(reused.size_bytes() < long.size_bytes());
        let mut fresh = model.new_cache();
        model.forward(&tokens.narrow(1, 0, 4)?, &mut fresh)?;
        let other_ending = Tensor::new(&[[60u32, 61]], &Device::Cpu)?;
        let from_reused = model.forward(&other_ending, &mut reused)?;
        let from_fresh = model.forward(&other_ending, &mut fresh)?;
        let difference = max_difference(&from_reused, &from_fresh)?;
        assert!(difference < 1e-4, "{difference}");
        // Cut again, continue with a single token (the decode step).
        let mut twice = reused.prefix(5);
        let mut fresh = model.new_cache();
        model.forward(&Tensor::new(&[[5u32, 17, 42, 8, 60]], &Device::Cpu)?, &mut fresh)?;
        let last = Tensor::new(&[[61u32]], &Device::Cpu)?;
        let from_twice = model.forward(&last, &mut twice)?;
        let from_fresh = model.forward(&last, &mut fresh)?;
        let difference = max_difference(&from_twice, &from_fresh)?;
        assert!(difference < 1e-4, "{difference}");
        Ok(())
    }

    #[test]
    fn forward_rejects_positions_past_the_context() -> Result<()> {
        let model = random_model(LoadOptions::default())?;
        let mut cache = model.new_cache();
        let too_many = Tensor::zeros((1, 129), DType::U32, &Device::Cpu)?;
        assert!(model.forward(&too_many, &mut cache).is_err());
        let none = Tensor::zeros((1, 0), DType::U32, &Device::Cpu)?;
        assert!(model.forward(&none, &mut cache).is_err());
        Ok(())
    }

    #[test]
    fn every_weight_format_gives_finite_logits() -> Result<()> {
        let tokens = Tensor::new(&[[5u32, 17, 42, 8, 77, 3]], &Device::Cpu)?;
        for weight_format in WeightFormat::ALL {
            for dense_prefill in [false, true] {
                let model = random_model(LoadOptions { weight_format, dense_prefill })?;
                let mut cache = model.new_cache();
                let prompt_logits = model.forward(&tokens, &mut cache)?;
                let step_logits =
                    model.forward(&Tensor::new(&[[argmax(&prompt_logits)?]], &Device::Cpu)?, &mut cache)?;
                for logits in [prompt_logits, step_logits] {
                    assert_eq!(logits.dims(), &[1, 96]);
                    assert!(logits.flatten_all()?.to_vec1::<f32>()?.iter().all(|x| x.is_finite()), "{weight_format:?}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn weight_format_names_round_trip() {
        for format in WeightFormat::ALL {
            assert_eq!(WeightFormat::from_name(format.name()), Some(format));
        }
        assert_eq!(WeightFormat::from_name("Q8_0"), Some(WeightFormat::Q8_0));
        assert_eq!(WeightFormat::from_name("q5_k"), None);
        assert_eq!(WeightFormat::default(), WeightFormat::Q4_1);
    }

    #[test]
    fn dense_copy_serves_many_rows_and_quantized_serves_few() -> Result<()> {
        let device = Device::Cpu;
        let values = Tensor::randn(0f32, 1.0, (64, 128), &device)?;
        let stored = || QTensor::quantize(&values, GgmlDType::Q4_1);
        let exact = stored()?.dequantize(&device)?;
        let weight = Weight::new(stored()?, LoadOptions { weight_format: WeightFormat::Q8_0, dense_prefill: true })?;
        let plain = Weight::new(stored()?, LoadOptions { weight_format: WeightFormat::Q8_0, dense_prefill: false })?;
        assert!(weight.dense.is_some() && plain.dense.is_none());
        let many = Tensor::randn(0f32, 1.0, (1, DENSE_MIN_ROWS, 128), &device)?;
        let expected = many.broadcast_matmul(&exact.t()?)?;
        let difference = (weight.forward(&many)? - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(difference < 1e-3, "dense path differs by {difference}");
        let one = many.narrow(1, 0, 1)?;
        let from_dense_weight = weight.forward(&one)?;
        let from_plain_weight = plain.forward(&one)?;
        let difference = (from_dense_weight - from_plain_weight)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(difference, 0.0, "a single row takes the quantized path");
        let f32_weight = Weight::new(stored()?, LoadOptions { weight_format: WeightFormat::F32, dense_prefill: true })?;
        assert!(f32_weight.dense.is_none(), "no second copy of f32 weights");
        Ok(())
    }

    #[test]
    fn requantising_keeps_values_close() -> Result<()> {
        let device = Device::Cpu;
        let values = Tensor::randn(0f32, 1.0, (64, 128), &device)?;
        let q4_1 = QTensor::quantize(&values, GgmlDType::Q4_1)?;
        let reference = q4_1.dequantize(&device)?;
        let input = Tensor::randn(0f32, 1.0, (3, 128), &device)?;
        let expected = input.matmul(&reference.t()?)?;
        for format in WeightFormat::ALL {
            let weight = matmul_weight(QTensor::quantize(&values, GgmlDType::Q4_1)?, format)?;
            let actual = weight.forward(&input)?;
            let error = (actual - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let scale = expected.abs()?.max_all()?.to_scalar::<f32>()?;
            // Q4_0 drops Q4_1's per-block offset, so it is the loosest.
            let tolerance = if format == WeightFormat::Q4_0 { 0.25 } else { 0.05 };
            assert!(error / scale < tolerance, "{format:?}: relative error {}", error / scale);
        }
        Ok(())
    }
}
