//! Intent classification with calibrated out-of-scope detection.
//!
//! - [`data`] reads training and test sets (YAML, CSV, CLINC150 JSON).
//! - [`train`] fits an [`IntentModel`] on sentence embeddings: a cosine classifier with an
//!   additive margin blended with nearest labelled examples; optionally ([`TrainConfig::finetune`])
//!   the encoder itself is fine-tuned first ([`finetune`]) and saved with the model. With
//!   [`FinetuneConfig::n_frozen_layers`] > 0 (the default config freezes 2 of MiniLM's 6), the
//!   frozen bottom layers run once per text and their states are cached
//!   ([`IntentEncoder::lower_states`]); training steps run only the layers above.
//! - Out of scope is one more class: the training data's out-of-scope examples (CLINC's `oos`)
//!   are kept as labelled examples, and a message is out of scope when its best intent does not
//!   beat its nearest out-of-scope example by the threshold. The threshold is chosen on a
//!   held-out slice of the training data plus every out-of-scope example (each scored against
//!   the others only) to reach a stated out-of-scope recall ([`TrainConfig::target_oos_recall`],
//!   a split-conformal quantile). Without out-of-scope examples nothing is rejected unless
//!   [`TrainConfig::max_in_scope_rejection`] allows it. Probabilities are calibrated by
//!   temperature scaling on the same slice.
//! - [`IntentModel::predict_embedding`] lets the dialogue engine reuse the one embedding it
//!   computes per message (frozen-encoder models); [`train_or_load`] caches the demo model.

pub mod data;
pub mod encoder;
pub mod finetune;
mod head;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use sha2::{Digest, Sha256};

pub use data::{DataFormat, Example, IntentDataset, OUT_OF_SCOPE, Split, load_dataset, parse_dataset};
pub use encoder::IntentEncoder;
pub use finetune::FinetuneConfig;
pub use head::HeadConfig;

use encoder::{io_error, write_file};
use head::{CalibrationItem, Scorer};

/// Errors of intent data, training and prediction.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("{path}{}: {message}", line.map(|line| format!(":{line}")).unwrap_or_default())]
    BadData { path: PathBuf, line: Option<usize>, message: String },
    #[error("reading or writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid intent model at {path}: {message}")]
    InvalidModel { path: PathBuf, message: String },
    #[error("invalid training configuration: {message}")]
    InvalidConfig { message: String },
    #[error("tokenizer: {message}")]
    Tokenizer { message: String },
    #[error("embedding failed: {0}")]
    Embedding(#[from] crate::Error),
    #[error("a previous call panicked while holding the model's variables")]
    Poisoned,
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = IntentError> = std::result::Result<T, E>;

/// Anything that turns texts into L2-normalised sentence embeddings.
pub trait TextEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// Identifies the encoder weights (part of cache keys).
    fn model_id(&self) -> String;
}

impl TextEmbedder for crate::SentenceEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(crate::SentenceEmbedder::embed(self, texts)?)
    }

    fn model_id(&self) -> String {
        crate::SentenceEmbedder::model_id(self).to_string()
    }
}

/// Everything [`train`] can be told.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub seed: u64,
    /// Share of each intent's examples held out for calibration (at least one per intent with
    /// five or more examples).
    pub holdout_fraction: f64,
    pub head: HeadConfig,
    /// Weight of the nearest-example similarity in the blended score.
    pub knn_weight: f32,
    /// With out-of-scope examples: the out-of-scope recall the threshold aims for on them
    /// (each scored against the others; see the module docs). 0 rejects nothing.
    pub target_oos_recall: f64,
    /// Without out-of-scope examples: the share of correctly classified held-out items the
    /// threshold may reject (0, the default, rejects nothing: without out-of-scope examples
    /// nothing shows where they would score, and every rejection costs in-scope accuracy).
    pub max_in_scope_rejection: f64,
    /// Fine-tune the encoder first (needs `encoder_dir`).
    pub finetune: Option<FinetuneConfig>,
    /// The encoder to fine-tune (`model.safetensors`, `config.json`, `tokenizer.json`).
    pub encoder_dir: Option<PathBuf>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            holdout_fraction: 0.1,
            head: HeadConfig::default(),
            knn_weight: 0.5,
            target_oos_recall: DEFAULT_TARGET_OOS_RECALL,
            max_in_scope_rejection: 0.0,
            finetune: None,
            encoder_dir: None,
        }
    }
}

/// The default [`TrainConfig::target_oos_recall`]. See `BENCHMARKS.md` (Understanding) for how
/// it was chosen.
pub const DEFAULT_TARGET_OOS_RECALL: f64 = 0.85;

/// A prediction for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The intent, or [`OUT_OF_SCOPE`].
    pub name: String,
    /// Calibrated probability of `name`.
    pub confidence: f32,
    /// The best intent's blended score minus the nearest out-of-scope example's similarity (the
    /// plain score when the model has no out-of-scope examples): the margin that
    /// [`Calibration::threshold`] is compared with.
    pub score: f32,
    /// The best intents (never out of scope) with their calibrated probabilities, best first.
    pub top: Vec<(String, f32)>,
}

/// How many intents [`Prediction::top`] lists.
pub const TOP_K: usize = 5;

/// Calibration and blend parameters, saved as `calibration.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// Out-of-scope threshold on the margin: the best blended intent score minus the similarity
    /// of the nearest out-of-scope example (0 when the model has none).
    pub threshold: f32,
    pub temperature: f32,
    pub scale: f32,
    pub knn_weight: f32,
}

/// Numbers measured while training, saved as `metrics.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainMetrics {
    pub n_examples: usize,
    pub n_intents: usize,
    pub n_out_of_scope_examples: usize,
    pub n_holdout: usize,
    /// On the held-out slice, with the chosen threshold (model trained without that slice).
    pub holdout_accuracy: f64,
    pub holdout_oos_recall: Option<f64>,
    pub finetuned: bool,
    pub finetune_seconds: f64,
    pub train_seconds: f64,
    pub seed: u64,
}

const LABELS_FILE: &str = "labels.json";
const CALIBRATION_FILE: &str = "calibration.json";
const METRICS_FILE: &str = "metrics.json";
const WEIGHTS_FILE: &str = "intent_head.safetensors";
const CONFIG_FILE: &str = "train_config.json";
const ENCODER_DIR: &str = "encoder";

/// A trained intent classifier.
#[derive(Debug)]
pub struct IntentModel {
    labels: Vec<String>,
    scorer: Scorer,
    calibration: Calibration,
    metrics: TrainMetrics,
    config: TrainConfig,
    /// The fine-tuned encoder, when the model has one; predictions then embed with it.
    encoder: Option<IntentEncoder>,
}

impl IntentModel {
    /// The intent names, in class order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    pub fn metrics(&self) -> &TrainMetrics {
        &self.metrics
    }

    /// The classifier's unit class directions, `[n_classes * dim]` row-major.
    pub fn class_directions(&self) -> &[f32] {
        &self.scorer.directions
    }

    /// True when the model carries its own (fine-tuned) encoder: [`Self::predict`] then embeds
    /// with it, and [`Self::predict_embedding`] needs embeddings from it, not from the shared
    /// sentence embedder.
    pub fn has_own_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    /// Embeds with the model's own encoder when it has one, else with `embedder`.
    pub fn embed(&self, embedder: &dyn TextEmbedder, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        match &self.encoder {
            Some(encoder) => encoder.embed_texts(texts),
            None => embedder.embed(texts),
        }
    }

    /// Predicts the intent of one message.
    pub fn predict(&self, embedder: &dyn TextEmbedder, text: &str) -> Result<Prediction> {
        let embeddings = self.embed(embedder, &[text])?;
        let embedding = embeddings
            .first()
            .ok_or_else(|| IntentError::InvalidConfig { message: "the embedder returned no embedding".to_string() })?;
        self.predict_embedding(embedding)
    }

    /// Predicts from a message's embedding (from the shared embedder, or from this model's own
    /// encoder when [`Self::has_own_encoder`]).
    pub fn predict_embedding(&self, embedding: &[f32]) -> Result<Prediction> {
        if embedding.len() != self.scorer.dim {
            return Err(IntentError::InvalidConfig {
                message: format!("embedding has {} dimensions, the model expects {}", embedding.len(), self.scorer.dim),
            });
        }
        let scores = self.scorer.intent_scores(embedding);
        let out_of_scope_similarity = self.scorer.out_of_scope_similarity(embedding, None);
        let Calibration { threshold, temperature, scale, .. } = self.calibration;
        let probs = head::probabilities(&scores, threshold + out_of_scope_similarity, scale, temperature);
        let mut ranked: Vec<(usize, f32)> = probs[..self.labels.len()].iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<(String, f32)> =
            ranked.iter().take(TOP_K).map(|&(idx, p)| (self.labels[idx].clone(), p)).collect();
        let (best, best_score) = head::argmax(&scores);
        let margin = best_score - out_of_scope_similarity;
        let prediction = if margin < threshold {
            Prediction { name: OUT_OF_SCOPE.to_string(), confidence: probs[self.labels.len()], score: margin, top }
        } else {
            Prediction { name: self.labels[best].clone(), confidence: probs[best], score: margin, top }
        };
        Ok(prediction)
    }

    /// Writes the model into `dir` (created; its previous content replaced). Written to a
    /// sibling temporary directory first, then renamed, so `dir` is never half-written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|source| io_error(parent, source))?;
        let staging = tempfile::Builder::new()
            .prefix(".intent-model-")
            .tempdir_in(parent)
            .map_err(|source| io_error(parent, source))?;
        self.write_files(staging.path())?;
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|source| io_error(dir, source))?;
        }
        let staging = staging.keep();
        std::fs::rename(&staging, dir).map_err(|source| io_error(dir, source))?;
        Ok(())
    }

    fn write_files(&self, dir: &Path) -> Result<()> {
        write_file(&dir.join(LABELS_FILE), &json(&self.labels))?;
        write_file(&dir.join(CALIBRATION_FILE), &json(&self.calibration))?;
        write_file(&dir.join(METRICS_FILE), &json(&self.metrics))?;
        write_file(&dir.join(CONFIG_FILE), &json(&self.config))?;
        let scorer = &self.scorer;
        let mut tensors = HashMap::new();
        tensors.insert(
            "class_directions".to_string(),
            Tensor::from_vec(scorer.directions.clone(), (scorer.n_classes, scorer.dim), &Device::Cpu)?,
        );
        let n_examples = scorer.example_labels.len();
        tensors.insert(
            "examples".to_string(),
            Tensor::from_vec(scorer.examples.clone(), (n_examples, scorer.dim), &Device::Cpu)?,
        );
        tensors.insert(
            "example_labels".to_string(),
            Tensor::from_vec(scorer.example_labels.clone(), n_examples, &Device::Cpu)?,
        );
        let n_out_of_scope = scorer.out_of_scope_examples.len() / scorer.dim.max(1);
        if n_out_of_scope > 0 {
            tensors.insert(
                "out_of_scope_examples".to_string(),
                Tensor::from_vec(scorer.out_of_scope_examples.clone(), (n_out_of_scope, scorer.dim), &Device::Cpu)?,
            );
        }
        candle_core::safetensors::save(&tensors, dir.join(WEIGHTS_FILE))?;
        if let Some(encoder) = &self.encoder {
            encoder.save(&dir.join(ENCODER_DIR))?;
        }
        Ok(())
    }

    /// Loads a model written by [`Self::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
            let bytes = std::fs::read(path).map_err(|source| io_error(path, source))?;
            serde_json::from_slice(&bytes)
                .map_err(|err| IntentError::InvalidModel { path: path.to_path_buf(), message: err.to_string() })
        }
        let labels: Vec<String> = read_json(&dir.join(LABELS_FILE))?;
        let calibration: Calibration = read_json(&dir.join(CALIBRATION_FILE))?;
        let metrics: TrainMetrics = read_json(&dir.join(METRICS_FILE))?;
        let config: TrainConfig = read_json(&dir.join(CONFIG_FILE))?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let invalid = |message: String| IntentError::InvalidModel { path: weights_path.clone(), message };
        let tensors =
            candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|err| invalid(err.to_string()))?;
        let get = |name: &str| tensors.get(name).ok_or_else(|| invalid(format!("missing tensor {name}")));
        let directions = get("class_directions")?;
        let (n_classes, dim) = directions.dims2()?;
        let examples = get("examples")?;
        let example_labels: Vec<u32> = get("example_labels")?.to_vec1()?;
        if n_classes != labels.len() || examples.dims2()? != (example_labels.len(), dim) {
            return Err(invalid("tensor shapes do not match the labels".to_string()));
        }
        if example_labels.iter().any(|&label| label as usize >= n_classes) {
            return Err(invalid("an example label is out of range".to_string()));
        }
        let out_of_scope_examples = match tensors.get("out_of_scope_examples") {
            Some(tensor) => {
                if tensor.dims2()?.1 != dim {
                    return Err(invalid("out-of-scope examples do not match the dimension".to_string()));
                }
                tensor.flatten_all()?.to_vec1()?
            }
            None => Vec::new(),
        };
        let scorer = Scorer {
            directions: directions.flatten_all()?.to_vec1()?,
            examples: examples.flatten_all()?.to_vec1()?,
            example_labels,
            n_classes,
            dim,
            knn_weight: calibration.knn_weight,
            out_of_scope_examples,
        };
        let encoder_dir = dir.join(ENCODER_DIR);
        let encoder = if encoder_dir.is_dir() { Some(IntentEncoder::load(&encoder_dir)?) } else { None };
        Ok(Self { labels, scorer, calibration, metrics, config, encoder })
    }
}

/// Pretty JSON with a final newline.
fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Splits example indices into (train, holdout), stratified by label, seeded.
fn stratified_split(labels: &[Option<usize>], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut by_label: std::collections::BTreeMap<Option<usize>, Vec<usize>> = std::collections::BTreeMap::new();
    for (idx, label) in labels.iter().enumerate() {
        by_label.entry(*label).or_default().push(idx);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut holdout) = (Vec::new(), Vec::new());
    for (label, mut indices) in by_label {
        indices.shuffle(&mut rng);
        let n_holdout = match label {
            // Out-of-scope examples only set the threshold: all go to the held-out slice.
            None => indices.len(),
            Some(_) if indices.len() < 5 => 0,
            Some(_) => ((indices.len() as f64 * fraction).round() as usize).max(1),
        };
        holdout.extend_from_slice(&indices[..n_holdout]);
        train.extend_from_slice(&indices[n_holdout..]);
    }
    train.sort_unstable();
    holdout.sort_unstable();
    (train, holdout)
}

/// What [`train_with_diagnostics`] returns besides the model, for offline analysis of the
/// out-of-scope rule: every training example's embedding (from the model's final encoder), its
/// class, whether it was in the held-out calibration slice, and the class directions of the
/// classifier fitted without that slice.
#[derive(Debug, Clone)]
pub struct TrainDiagnostics {
    pub embeddings: Vec<Vec<f32>>,
    /// Class index into [`IntentModel::labels`], `None` for out of scope.
    pub classes: Vec<Option<usize>>,
    pub held_out: Vec<bool>,
    /// `[n_classes * dim]`, row-major; empty when nothing was held out.
    pub calibration_directions: Vec<f32>,
}

/// Trains an intent model on `dataset`. `embedder` embeds the texts unless the config asks for
/// a fine-tune, in which case the fine-tuned encoder (from `config.encoder_dir`) is used and kept.
pub fn train(
    dataset: &IntentDataset,
    embedder: &dyn TextEmbedder,
    config: &TrainConfig,
    progress: &ProgressBar,
) -> Result<IntentModel> {
    Ok(train_with_diagnostics(dataset, embedder, config, progress)?.0)
}

/// [`train`], also returning the embeddings and the calibration classifier (see
/// [`TrainDiagnostics`]).
pub fn train_with_diagnostics(
    dataset: &IntentDataset,
    embedder: &dyn TextEmbedder,
    config: &TrainConfig,
    progress: &ProgressBar,
) -> Result<(IntentModel, TrainDiagnostics)> {
    let started = Instant::now();
    let labels = dataset.intent_names();
    if labels.is_empty() {
        return Err(IntentError::InvalidConfig { message: "the training set has no in-scope intent".to_string() });
    }
    let label_index: HashMap<&str, usize> = labels.iter().enumerate().map(|(idx, l)| (l.as_str(), idx)).collect();
    let classes: Vec<Option<usize>> =
        dataset.examples.iter().map(|e| label_index.get(e.label.as_str()).copied()).collect();
    let texts: Vec<&str> = dataset.examples.iter().map(|e| e.text.as_str()).collect();
    let (train_idx, holdout_idx) = stratified_split(&classes, config.holdout_fraction, config.seed);
    let in_scope_train: Vec<usize> = train_idx.iter().copied().filter(|&i| classes[i].is_some()).collect();

    // 1. Optionally fine-tune the encoder on the training part (never on the held-out slice),
    //    then embed everything once (with the fine-tuned encoder when there is one).
    let mut finetune_seconds = 0.0;
    let (encoder, embeddings) = match &config.finetune {
        None => {
            progress.set_message("embedding the examples");
            (None, embedder.embed(&texts)?)
        }
        Some(finetune_config) => {
            let encoder_dir = config.encoder_dir.as_deref().ok_or_else(|| IntentError::InvalidConfig {
                message: "fine-tuning needs the encoder directory".to_string(),
            })?;
            let finetune_started = Instant::now();
            let n_frozen_layers = finetune_config.n_frozen_layers;
            let mut encoder = IntentEncoder::load_trainable(encoder_dir, n_frozen_layers)?;
            if n_frozen_layers >= encoder.n_layers() {
                return Err(IntentError::InvalidConfig {
                    message: format!(
                        "{n_frozen_layers} frozen layers leave none of the encoder's {} to fine-tune",
                        encoder.n_layers()
                    ),
                });
            }
            let ft_labels: Vec<u32> = in_scope_train.iter().map(|&i| classes[i].unwrap_or(0) as u32).collect();
            let embeddings = if n_frozen_layers == 0 {
                let ft_texts: Vec<&str> = in_scope_train.iter().map(|&i| texts[i]).collect();
                progress.set_message("embedding for the class centroids");
                let base = encoder.embed_texts(&ft_texts)?;
                let initial = head::class_centroids(&base, &ft_labels, labels.len(), encoder.dim())?;
                finetune::finetune_encoder(
                    &encoder,
                    &ft_texts,
                    &ft_labels,
                    &initial,
                    finetune_config,
                    config.seed,
                    progress,
                )?;
                finetune_seconds = finetune_started.elapsed().as_secs_f64();
                encoder.freeze()?;
                progress.set_message("embedding the examples");
                encoder.embed_texts(&texts)?
            } else {
                // The frozen bottom layers run once per text; every later pass starts above them.
                progress.set_length(texts.len() as u64);
                progress.set_position(0);
                progress.set_message(format!("running the {n_frozen_layers} frozen layers"));
                let lower =
                    encoder.lower_states(&texts, n_frozen_layers, |n_done| progress.set_position(n_done as u64))?;
                let ft_states: Vec<Tensor> = in_scope_train.iter().map(|&i| lower[i].clone()).collect();
                progress.set_message("embedding for the class centroids");
                let base = encoder.embed_from_lower(&ft_states, n_frozen_layers)?;
                let initial = head::class_centroids(&base, &ft_labels, labels.len(), encoder.dim())?;
                finetune::finetune_upper_layers(
                    &encoder,
                    &ft_states,
                    n_frozen_layers,
                    &ft_labels,
                    &initial,
                    finetune_config,
                    config.seed,
                    progress,
                )?;
                finetune_seconds = finetune_started.elapsed().as_secs_f64();
                encoder.freeze()?;
                progress.set_message("embedding the examples");
                encoder.embed_from_lower(&lower, n_frozen_layers)?
            };
            (Some(encoder), embeddings)
        }
    };

    // 2. Check the embeddings.
    let dim = embeddings.first().map_or(0, Vec::len);
    if dim == 0 || embeddings.len() != texts.len() {
        return Err(IntentError::InvalidConfig { message: "the embedder returned no embeddings".to_string() });
    }

    // 3. Fit on the training part, calibrate on the held-out slice. Every out-of-scope example
    //    is in the slice and in both scorers' out-of-scope memory; in calibration each is scored
    //    against the others only (leave-one-out), so none is compared with itself.
    progress.set_message("training the classifier");
    let out_of_scope_idx: Vec<usize> = (0..texts.len()).filter(|&i| classes[i].is_none()).collect();
    let out_of_scope_examples: Vec<f32> =
        out_of_scope_idx.iter().flat_map(|&i| embeddings[i].iter().copied()).collect();
    let fit = |indices: &[usize], seed: u64| -> Result<Scorer> {
        let in_scope: Vec<usize> = indices.iter().copied().filter(|&i| classes[i].is_some()).collect();
        let rows: Vec<Vec<f32>> = in_scope.iter().map(|&i| embeddings[i].clone()).collect();
        let row_labels: Vec<u32> = in_scope.iter().map(|&i| classes[i].unwrap_or(0) as u32).collect();
        let initial = head::class_centroids(&rows, &row_labels, labels.len(), dim)?;
        let x = head::embeddings_tensor(&rows, dim)?;
        let directions = head::train_class_directions(&x, &row_labels, &initial, &config.head, seed, progress)?;
        Ok(Scorer {
            directions: directions.flatten_all()?.to_vec1()?,
            examples: rows.concat(),
            example_labels: row_labels,
            n_classes: labels.len(),
            dim,
            knn_weight: config.knn_weight,
            out_of_scope_examples: out_of_scope_examples.clone(),
        })
    };
    let scale = config.head.scale as f32;
    let mut calibration_directions = Vec::new();
    let (threshold, temperature, holdout_accuracy, holdout_oos_recall) = if holdout_idx.is_empty() {
        (head::NO_REJECTION, 1.0, f64::NAN, None)
    } else {
        let scorer = fit(&train_idx, config.seed)?;
        calibration_directions = scorer.directions.clone();
        let items: Vec<CalibrationItem> = holdout_idx
            .iter()
            .map(|&i| {
                let skip = out_of_scope_idx.binary_search(&i).ok();
                CalibrationItem {
                    scores: scorer.intent_scores(&embeddings[i]),
                    out_of_scope_similarity: scorer.out_of_scope_similarity(&embeddings[i], skip),
                    gold: classes[i],
                }
            })
            .collect();
        let rule = head::ThresholdRule {
            target_oos_recall: config.target_oos_recall,
            max_in_scope_rejection: config.max_in_scope_rejection,
        };
        let threshold = head::choose_threshold(&items, rule);
        let temperature = head::fit_temperature(&items, threshold, scale);
        let (mut n_in, mut n_in_ok, mut n_oos, mut n_oos_ok) = (0usize, 0usize, 0usize, 0usize);
        for item in &items {
            let (best, score) = item.best_and_margin();
            match item.gold {
                Some(gold) => {
                    n_in += 1;
                    n_in_ok += usize::from(best == gold && score >= threshold);
                }
                None => {
                    n_oos += 1;
                    n_oos_ok += usize::from(score < threshold);
                }
            }
        }
        let accuracy = n_in_ok as f64 / n_in.max(1) as f64;
        let recall = (n_oos > 0).then(|| n_oos_ok as f64 / n_oos as f64);
        (threshold, temperature, accuracy, recall)
    };
    tracing::info!(threshold, temperature, holdout_accuracy, ?holdout_oos_recall, "intent model calibrated");

    // 4. Refit on every in-scope example; keep the calibration.
    let scorer = fit(&(0..texts.len()).collect::<Vec<_>>(), config.seed)?;
    let metrics = TrainMetrics {
        n_examples: dataset.len(),
        n_intents: labels.len(),
        n_out_of_scope_examples: dataset.n_out_of_scope(),
        n_holdout: holdout_idx.len(),
        holdout_accuracy,
        holdout_oos_recall,
        finetuned: encoder.is_some(),
        finetune_seconds,
        train_seconds: started.elapsed().as_secs_f64(),
        seed: config.seed,
    };
    progress.set_message("done");
    let mut held_out = vec![false; texts.len()];
    for &idx in &holdout_idx {
        held_out[idx] = true;
    }
    let diagnostics = TrainDiagnostics { embeddings, classes, held_out, calibration_directions };
    let model = IntentModel {
        labels,
        scorer,
        calibration: Calibration { threshold, temperature, scale, knn_weight: config.knn_weight },
        metrics,
        config: config.clone(),
        encoder,
    };
    Ok((model, diagnostics))
}

/// The cache key of a model: the examples, the training config and the encoder's identity.
pub fn cache_key(dataset: &IntentDataset, embedder_id: &str, config: &TrainConfig) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"switchboard-intent-model-v2\0");
    hasher.update(embedder_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(serde_json::to_vec(config).unwrap_or_default());
    for example in &dataset.examples {
        hasher.update(example.label.as_bytes());
        hasher.update(b"\0");
        hasher.update(example.text.as_bytes());
        hasher.update(b"\0");
    }
    hex::encode(&hasher.finalize()[..12])
}

/// Loads the model cached under `cache_dir` for this data, encoder and config, or trains and
/// caches it (`cache_dir/intent-<key>/`). A cached directory that fails to load is retrained.
pub fn train_or_load(
    cache_dir: &Path,
    dataset: &IntentDataset,
    embedder: &dyn TextEmbedder,
    config: &TrainConfig,
) -> Result<IntentModel> {
    let dir = cache_dir.join(format!("intent-{}", cache_key(dataset, &embedder.model_id(), config)));
    if dir.is_dir() {
        match IntentModel::load(&dir) {
            Ok(model) => return Ok(model),
            Err(err) => tracing::warn!(error = %err, dir = %dir.display(), "cached intent model unusable, retraining"),
        }
    }
    let model = train(dataset, embedder, config, &ProgressBar::hidden())?;
    model.save(&dir)?;
    Ok(model)
}

#[cfg(test)]
mod tests;
