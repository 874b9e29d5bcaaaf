//! Supervised fine-tuning of the sentence encoder for intent classification.
//!
//! The encoder's pooled, normalised embedding feeds a cosine classifier with an additive margin
//! (CosFace, Wang et al. 2018: logits `s * (cos θ_j - m [j = y])`). The margin pulls the examples of
//! an intent together and away from the others, which is what both the nearest-example
//! re-ranking and the out-of-scope score rely on afterwards.
//!
//! [`finetune_encoder`] runs the whole encoder at every step; [`finetune_upper_layers`] starts
//! from cached states after the frozen bottom layers and runs only the layers above, forward and
//! backward (the default, [`FinetuneConfig::default`]).

use candle_core::{D, DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::ProgressBar;
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};

use super::{IntentEncoder, IntentError, Result};

/// Hyperparameters of the encoder fine-tune.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinetuneConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub encoder_learning_rate: f64,
    pub head_learning_rate: f64,
    /// Cosine logit scale `s`.
    pub scale: f64,
    /// Additive cosine margin `m`.
    pub margin: f64,
    /// Transformer layers (from the bottom) left frozen, besides the word embeddings.
    pub n_frozen_layers: usize,
    /// Upper bound on optimisation steps (0: no bound): caps the time on big training sets.
    pub max_steps: usize,
}

/// Transformer layers of MiniLM (all-MiniLM-L6-v2) the default fine-tune leaves frozen: their
/// states are computed once per text and cached, and only the layers above are trained. Chosen
/// on CLINC150 (BENCHMARKS.md): 2 frozen layers match the full fine-tune's accuracy at about 60%
/// of its CPU time; 3 cost 0.4 points of in-scope accuracy for another 20% less.
pub const DEFAULT_FROZEN_LAYERS: usize = 2;

impl Default for FinetuneConfig {
    /// The partial fine-tune: the bottom [`DEFAULT_FROZEN_LAYERS`] layers frozen (and cached).
    fn default() -> Self {
        Self { n_frozen_layers: DEFAULT_FROZEN_LAYERS, ..Self::full() }
    }
}

impl FinetuneConfig {
    /// The whole encoder fine-tuned (all but the word embeddings): about 1.6 times the CPU time of
    /// the default, for about the same accuracy (CLINC150, BENCHMARKS.md).
    pub fn full() -> Self {
        Self {
            epochs: 2,
            batch_size: 32,
            encoder_learning_rate: 1e-4,
            head_learning_rate: 5e-3,
            scale: 20.0,
            margin: 0.1,
            n_frozen_layers: 0,
            max_steps: 0,
        }
    }
}

/// Builds shuffled batches of similar lengths (less padding, same randomness for a given seed).
fn length_bucketed_batches(lengths: &[usize], batch_size: usize, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    let mut batches = Vec::new();
    for group in order.chunks(batch_size * 32) {
        let mut group = group.to_vec();
        group.sort_by_key(|&idx| lengths[idx]);
        batches.extend(group.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

fn normalize_rows(tensor: &Tensor) -> Result<Tensor> {
    let norm = tensor.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(tensor.broadcast_div(&norm)?)
}

/// Fine-tunes a trainable encoder (in place) on labelled texts, running the whole encoder at
/// every step; returns the learnt class directions `[n_classes, dim]`, rows normalised.
pub fn finetune_encoder(
    encoder: &IntentEncoder,
    texts: &[&str],
    labels: &[u32],
    initial_class_directions: &Tensor,
    config: &FinetuneConfig,
    seed: u64,
    progress: &ProgressBar,
) -> Result<Tensor> {
    let lengths: Vec<usize> = texts.iter().map(|text| text.len()).collect();
    let forward = |batch: &[usize]| {
        let batch_texts: Vec<&str> = batch.iter().map(|&idx| texts[idx]).collect();
        encoder.forward_pooled(&batch_texts)
    };
    finetune_loop(encoder, &lengths, labels, initial_class_directions, config, seed, progress, forward)
}

/// Fine-tunes the layers of a trainable encoder above its frozen bottom `n_lower_layers` (in
/// place), from each text's cached states after those layers ([`IntentEncoder::lower_states`]):
/// each step pads the batch's cached states and runs only the upper layers, forward and backward.
/// Returns the learnt class directions `[n_classes, dim]`, rows normalised.
#[allow(clippy::too_many_arguments)]
pub fn finetune_upper_layers(
    encoder: &IntentEncoder,
    lower_states: &[Tensor],
    n_lower_layers: usize,
    labels: &[u32],
    initial_class_directions: &Tensor,
    config: &FinetuneConfig,
    seed: u64,
    progress: &ProgressBar,
) -> Result<Tensor> {
    if n_lower_layers != config.n_frozen_layers {
        return Err(IntentError::InvalidConfig {
            message: format!(
                "states cached after {n_lower_layers} layers, but {} layers are frozen",
                config.n_frozen_layers
            ),
        });
    }
    let lengths = lower_states.iter().map(|state| state.dim(0)).collect::<candle_core::Result<Vec<_>>>()?;
    let forward = |batch: &[usize]| {
        let batch_states: Vec<&Tensor> = batch.iter().map(|&idx| &lower_states[idx]).collect();
        encoder.forward_pooled_from_lower(&batch_states, n_lower_layers)
    };
    finetune_loop(encoder, &lengths, labels, initial_class_directions, config, seed, progress, forward)
}

/// The training loop shared by both fine-tunes: `forward` maps a batch of item indices to their
/// pooled, normalised embeddings; `lengths` (any length measure) groups similar items.
#[allow(clippy::too_many_arguments)]
fn finetune_loop(
    encoder: &IntentEncoder,
    lengths: &[usize],
    labels: &[u32],
    initial_class_directions: &Tensor,
    config: &FinetuneConfig,
    seed: u64,
    progress: &ProgressBar,
    forward: impl Fn(&[usize]) -> Result<Tensor>,
) -> Result<Tensor> {
    let Some(varmap) = encoder.varmap() else {
        return Err(IntentError::InvalidConfig { message: "the encoder was not loaded as trainable".to_string() });
    };
    if lengths.len() != labels.len() || lengths.is_empty() {
        return Err(IntentError::InvalidConfig { message: "fine-tuning needs one label per text".to_string() });
    }
    let (n_classes, _dim) = initial_class_directions.dims2()?;
    if labels.iter().any(|&label| label as usize >= n_classes) {
        return Err(IntentError::InvalidConfig { message: "a label is out of range".to_string() });
    }
    let device = initial_class_directions.device().clone();
    let class_directions = Var::from_tensor(initial_class_directions)?;
    let mut encoder_optimizer = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW { lr: config.encoder_learning_rate, weight_decay: 0.01, ..ParamsAdamW::default() },
    )?;
    let mut head_optimizer = AdamW::new(
        vec![class_directions.clone()],
        ParamsAdamW { lr: config.head_learning_rate, weight_decay: 0.0, ..ParamsAdamW::default() },
    )?;
    let mut rng = StdRng::seed_from_u64(seed);
    let n_batches_per_epoch = lengths.len().div_ceil(config.batch_size.max(1));
    let mut n_steps = n_batches_per_epoch * config.epochs;
    if config.max_steps > 0 {
        n_steps = n_steps.min(config.max_steps);
    }
    let n_warmup_steps = (n_steps / 10).max(1);
    progress.set_length(n_steps as u64);
    progress.set_position(0);
    let mut step = 0usize;
    'epochs: for epoch in 0..config.epochs {
        let mut loss_sum = 0.0f64;
        let mut n_loss = 0usize;
        for batch in length_bucketed_batches(lengths, config.batch_size.max(1), &mut rng) {
            if step >= n_steps {
                break 'epochs;
            }
            let schedule = if step < n_warmup_steps {
                (step + 1) as f64 / n_warmup_steps as f64
            } else {
                (n_steps - step) as f64 / (n_steps - n_warmup_steps).max(1) as f64
            };
            encoder_optimizer.set_learning_rate(config.encoder_learning_rate * schedule);
            head_optimizer.set_learning_rate(config.head_learning_rate * schedule);

            let batch_labels: Vec<u32> = batch.iter().map(|&idx| labels[idx]).collect();
            let targets = Tensor::new(batch_labels.as_slice(), &device)?;
            let embeddings = forward(&batch)?;
            let directions = normalize_rows(class_directions.as_tensor())?;
            let cosines = embeddings.matmul(&directions.t()?)?;
            let margins = (candle_nn::encoding::one_hot(targets.clone(), n_classes, config.margin as f32, 0f32)?)
                .to_dtype(DType::F32)?;
            let logits = ((cosines - margins)? * config.scale)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
            let grads = loss.backward()?;
            encoder_optimizer.step(&grads)?;
            head_optimizer.step(&grads)?;

            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            n_loss += 1;
            step += 1;
            progress.set_position(step as u64);
            progress.set_message(format!("epoch {}/{} loss {:.4}", epoch + 1, config.epochs, loss_sum / n_loss as f64));
        }
        tracing::info!(epoch, loss = loss_sum / n_loss.max(1) as f64, "fine-tune epoch done");
    }
    normalize_rows(class_directions.as_tensor())
}
