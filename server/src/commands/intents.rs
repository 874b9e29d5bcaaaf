//! `switchboard train intents` and `switchboard eval intents`: train the intent classifier on a
//! data file, or train on one file and score on another (shapes in `interfaces.md`).
//!
//! Bad data (empty file, an intent without examples, a CSV without a text column, non-UTF-8)
//! is a [`BadInput`] naming the file and line, found before any model is loaded, and nothing is
//! written to `--out`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use inference::intent::{
    self, DataFormat, FinetuneConfig, IntentDataset, IntentError, IntentModel, Split, TrainConfig, TrainDiagnostics,
};

use crate::BadInput;
use crate::app;
use crate::config::Settings;

fn parse_format(format: Option<&str>) -> anyhow::Result<Option<DataFormat>> {
    format.map(|name| name.parse::<DataFormat>().map_err(|message| BadInput(message).into())).transpose()
}

fn read_dataset(path: &Path, format: Option<DataFormat>, split: Split) -> anyhow::Result<IntentDataset> {
    intent::load_dataset(path, format, split).map_err(|error| match error {
        IntentError::BadData { .. } => BadInput(error.to_string()).into(),
        IntentError::Io { path, source } => BadInput(format!("cannot read {}: {source}", path.display())).into(),
        other => anyhow::Error::new(other).context(format!("reading {}", path.display())),
    })
}

/// How the encoder is trained, shared by `train intents` and `eval intents`. Without a flag the
/// bottom layers of the encoder stay frozen (run once per example and cached) and the top
/// layers are fine-tuned with the classifier.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EncoderTrainingArgs {
    /// Keep the whole encoder frozen and train only the classifier on its embeddings (fastest:
    /// about the time of embedding the examples once; less accurate).
    #[arg(long, conflicts_with_all = ["finetune", "finetune_layers"])]
    pub frozen: bool,
    /// Fine-tune the whole encoder (all 6 layers; about 1.6 times the CPU time of the default,
    /// which fine-tunes the top 4). Same as `--finetune-layers 6`.
    #[arg(long, conflicts_with = "finetune_layers")]
    pub finetune: bool,
    /// Fine-tune only the top N transformer layers of the encoder (default 4 of 6); the layers
    /// below are run once per example and cached. Fewer layers train faster (3: about 0.75 of
    /// the default's time, slightly less accurate).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub finetune_layers: Option<u16>,
    /// Passes over the training data when fine-tuning (default 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=100))]
    pub finetune_epochs: Option<u16>,
}

impl EncoderTrainingArgs {
    /// The fine-tune asked for, or `None` for a frozen encoder. `n_layers` is the encoder's
    /// number of transformer layers.
    pub fn finetune_config(&self, n_layers: usize) -> anyhow::Result<Option<FinetuneConfig>> {
        if self.frozen {
            return Ok(None);
        }
        let mut config = FinetuneConfig::default();
        let n_trained_layers = if self.finetune { Some(n_layers) } else { self.finetune_layers.map(usize::from) };
        if let Some(n_trained_layers) = n_trained_layers {
            if n_trained_layers > n_layers {
                return Err(BadInput(format!(
                    "--finetune-layers {n_trained_layers}: the encoder has {n_layers} layers"
                ))
                .into());
            }
            config.n_frozen_layers = n_layers - n_trained_layers;
        }
        config.n_frozen_layers = config.n_frozen_layers.min(n_layers.saturating_sub(1));
        if let Some(epochs) = self.finetune_epochs {
            config.epochs = usize::from(epochs);
        }
        Ok(Some(config))
    }
}

/// How the out-of-scope threshold is chosen, shared by `train intents` and `eval intents`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutOfScopeArgs {
    /// With out-of-scope examples in the training data (label `oos` or `out_of_scope`): the
    /// share of out-of-scope messages to reject, aimed for on those examples (default 0.85;
    /// higher rejects more in-scope messages too; 0 rejects nothing).
    #[arg(long, value_name = "R", value_parser = parse_share)]
    pub oos_recall: Option<f64>,
    /// Without out-of-scope examples: the share of correctly classified held-out messages the
    /// threshold may reject (default 0: nothing is predicted out of scope).
    #[arg(long, value_name = "F", value_parser = parse_share)]
    pub max_in_scope_rejection: Option<f64>,
}

/// Everything `train intents` and `eval intents` take about training: the encoder and the
/// out-of-scope rule.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IntentTrainingArgs {
    #[command(flatten)]
    pub encoder: EncoderTrainingArgs,
    #[command(flatten)]
    pub out_of_scope: OutOfScopeArgs,
}

/// A number in [0, 1].
fn parse_share(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(format!("{value} is not between 0 and 1")) }
}

/// The training configuration for the command line: the defaults plus the encoder training
/// and out-of-scope rule asked for (the encoder in `encoder_dir`).
pub fn train_config(
    encoder_args: &EncoderTrainingArgs,
    out_of_scope_args: &OutOfScopeArgs,
    encoder_dir: &Path,
) -> anyhow::Result<TrainConfig> {
    let n_layers = inference::models::bert::read_config(encoder_dir)
        .with_context(|| format!("reading the encoder config in {}", encoder_dir.display()))?
        .num_hidden_layers;
    let defaults = TrainConfig::default();
    Ok(TrainConfig {
        finetune: encoder_args.finetune_config(n_layers)?,
        encoder_dir: Some(encoder_dir.to_path_buf()),
        target_oos_recall: out_of_scope_args.oos_recall.unwrap_or(defaults.target_oos_recall),
        max_in_scope_rejection: out_of_scope_args.max_in_scope_rejection.unwrap_or(defaults.max_in_scope_rejection),
        ..defaults
    })
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn train_model(
    settings: &Settings,
    dataset: &IntentDataset,
    training: &IntentTrainingArgs,
) -> anyhow::Result<(IntentModel, TrainDiagnostics)> {
    let paths = app::resolve_models(settings)?;
    let config = train_config(&training.encoder, &training.out_of_scope, &paths.encoder_dir)?;
    let embedder = app::load_embedder(&paths.encoder_dir)?;
    let progress = progress_bar();
    let trained = intent::train_with_diagnostics(dataset, embedder.as_ref(), &config, &progress)
        .context("training the intent model")?;
    progress.finish_and_clear();
    Ok(trained)
}

/// Writes `--dump-scores`: a header line (labels, the final and the calibration class
/// directions, the calibration), then one line per training example (`kind` `train` or
/// `held_out`) and per test example (`test`), each with its gold class index (`null`: out of
/// scope; test labels unknown to the model are `-1`) and embedding.
fn dump_scores(
    path: &Path,
    model: &IntentModel,
    diagnostics: &TrainDiagnostics,
    test_set: &IntentDataset,
    test_embeddings: &[Vec<f32>],
) -> anyhow::Result<()> {
    use std::io::Write;
    let rounded = |values: &[f32]| -> Vec<f32> { values.iter().map(|v| (v * 1e5).round() / 1e5).collect() };
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let header = serde_json::json!({
        "labels": model.labels(),
        "directions": rounded(model.class_directions()),
        "calibration_directions": rounded(&diagnostics.calibration_directions),
        "calibration": model.calibration(),
    });
    writeln!(out, "{header}")?;
    for (idx, embedding) in diagnostics.embeddings.iter().enumerate() {
        let kind = if diagnostics.held_out[idx] { "held_out" } else { "train" };
        let line = serde_json::json!({"kind": kind, "gold": diagnostics.classes[idx], "embedding": rounded(embedding)});
        writeln!(out, "{line}")?;
    }
    for (example, embedding) in test_set.examples.iter().zip(test_embeddings) {
        let gold = if example.label == intent::OUT_OF_SCOPE {
            None
        } else {
            Some(model.labels().iter().position(|l| *l == example.label).map_or(-1, |idx| idx as i64))
        };
        let line = serde_json::json!({"kind": "test", "gold": gold, "embedding": rounded(embedding)});
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

pub fn train(
    settings: &Settings,
    data: &Path,
    out: &Path,
    format: Option<&str>,
    training: &IntentTrainingArgs,
) -> anyhow::Result<()> {
    let format = parse_format(format)?;
    let dataset = read_dataset(data, format, Split::Train)?;
    let (model, _) = train_model(settings, &dataset, training)?;
    model.save(out).with_context(|| format!("writing the intent model to {}", out.display()))?;
    let metrics = model.metrics();
    println!(
        "trained {} intents on {} examples in {:.1} s{}; held-out accuracy {:.4}{}; model in {}",
        metrics.n_intents,
        metrics.n_examples,
        metrics.train_seconds,
        if metrics.finetuned {
            format!(" (encoder fine-tuned in {:.1} s)", metrics.finetune_seconds)
        } else {
            String::new()
        },
        metrics.holdout_accuracy,
        metrics.holdout_oos_recall.map(|r| format!(", out-of-scope recall {r:.4}")).unwrap_or_default(),
        out.display()
    );
    Ok(())
}

pub fn eval(
    settings: &Settings,
    train: &Path,
    test: &Path,
    format: Option<&str>,
    json: bool,
    training: &IntentTrainingArgs,
    dump_scores_to: Option<&Path>,
) -> anyhow::Result<()> {
    let format = parse_format(format)?;
    let train_set = read_dataset(train, format, Split::Train)?;
    let test_set = read_dataset(test, format, Split::Test)?;
    let started = Instant::now();
    let (model, diagnostics) = train_model(settings, &train_set, training)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let paths = app::resolve_models(settings)?;
    let embedder = app::load_embedder(&paths.encoder_dir)?;
    // One message at a time, as the engine sees them: the latency includes the embedding.
    let mut latencies_ms = Vec::with_capacity(test_set.len());
    let mut predicted = Vec::with_capacity(test_set.len());
    for example in &test_set.examples {
        let started = Instant::now();
        let prediction = model.predict(embedder.as_ref(), &example.text)?;
        latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        predicted.push(prediction.name);
    }
    if let Some(path) = dump_scores_to {
        let texts: Vec<&str> = test_set.examples.iter().map(|e| e.text.as_str()).collect();
        let test_embeddings = model.embed(embedder.as_ref(), &texts)?;
        dump_scores(path, &model, &diagnostics, &test_set, &test_embeddings)?;
    }
    drop(diagnostics);
    let gold: Vec<&str> = test_set.examples.iter().map(|e| e.label.as_str()).collect();
    let report = evals::intents::IntentEvalReport {
        scores: evals::intents::score(&gold, &predicted),
        train_seconds,
        predict_ms_p50: evals::intents::percentile(&latencies_ms, 50.0),
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::default()
    }

    #[track_caller]
    fn check_bad_train(content: &[u8], file_name: &str, expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join(file_name);
        std::fs::write(&data, content).unwrap();
        let out = dir.path().join("model");
        let error = train(&settings(), &data, &out, None, &IntentTrainingArgs::default()).unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some(), "not bad input: {error:#}");
        let message = error.to_string();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        assert!(message.contains(file_name), "{message:?} lacks the file name");
        assert!(!out.exists(), "--out was written");
    }

    #[test]
    fn bad_data_is_bad_input_and_writes_nothing() {
        check_bad_train(b"", "empty.yaml", ":1: the file is empty");
        check_bad_train(
            b"intents:\n  - name: a\n    examples: [hi]\n  - name: b\n",
            "noexamples.yaml",
            ":4: intent \"b\" has no examples",
        );
        check_bad_train(b"text\nhello\n", "one_column.csv", ":1: the header has fewer than two columns");
        check_bad_train(b"text,label\nhi,a\n\xff\n", "latin1.csv", ":3: not valid UTF-8");
        check_bad_train(b"{}", "clinc.json", "no `train` list");
    }

    #[test]
    fn unknown_format_and_missing_file_are_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        let defaults = IntentTrainingArgs::default();
        let error = train(&settings(), Path::new("data.yaml"), &out, Some("xml"), &defaults).unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some());
        let error = train(&settings(), &dir.path().join("missing.yaml"), &out, None, &defaults).unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some());
        assert!(error.to_string().contains("missing.yaml"));
        let error =
            eval(&settings(), &dir.path().join("a.csv"), &dir.path().join("b.csv"), None, true, &defaults, None)
                .unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some());
    }

    #[test]
    fn encoder_flags_choose_the_fine_tune() {
        let args = |frozen, finetune, finetune_layers: Option<u16>, finetune_epochs: Option<u16>| EncoderTrainingArgs {
            frozen,
            finetune,
            finetune_layers,
            finetune_epochs,
        };
        let default = args(false, false, None, None).finetune_config(6).unwrap().unwrap();
        assert_eq!(default, FinetuneConfig::default());
        assert_eq!(default.n_frozen_layers, inference::intent::finetune::DEFAULT_FROZEN_LAYERS);
        assert_eq!(args(true, false, None, None).finetune_config(6).unwrap(), None);
        assert_eq!(args(false, true, None, None).finetune_config(6).unwrap().unwrap().n_frozen_layers, 0);
        let two_layers = args(false, false, Some(2), Some(5)).finetune_config(6).unwrap().unwrap();
        assert_eq!((two_layers.n_frozen_layers, two_layers.epochs), (4, 5));
        assert_eq!(args(false, false, Some(6), None).finetune_config(6).unwrap().unwrap().n_frozen_layers, 0);
        let error = args(false, false, Some(7), None).finetune_config(6).unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some());
        // A small encoder still keeps at least one layer to train.
        assert_eq!(args(false, false, None, None).finetune_config(2).unwrap().unwrap().n_frozen_layers, 1);
    }

    #[test]
    fn encoder_flags_parse_and_conflict() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            encoder: EncoderTrainingArgs,
        }
        let parsed = Cli::try_parse_from(["x", "--finetune-layers", "2", "--finetune-epochs", "3"]).unwrap();
        assert_eq!((parsed.encoder.finetune_layers, parsed.encoder.finetune_epochs), (Some(2), Some(3)));
        assert!(Cli::try_parse_from(["x", "--frozen", "--finetune"]).is_err());
        assert!(Cli::try_parse_from(["x", "--finetune", "--finetune-layers", "2"]).is_err());
        assert!(Cli::try_parse_from(["x", "--finetune-layers", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--finetune-layers", "many"]).is_err());
    }

    #[test]
    fn out_of_scope_flags_parse_and_set_the_config() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            training: IntentTrainingArgs,
        }
        let parsed =
            Cli::try_parse_from(["x", "--frozen", "--oos-recall", "0.9", "--max-in-scope-rejection", "0.01"]).unwrap();
        assert!(parsed.training.encoder.frozen);
        let out_of_scope = &parsed.training.out_of_scope;
        assert_eq!((out_of_scope.oos_recall, out_of_scope.max_in_scope_rejection), (Some(0.9), Some(0.01)));
        for bad in ["1.5", "-0.1", "NaN", "most", ""] {
            assert!(Cli::try_parse_from(["x", "--oos-recall", bad]).is_err(), "{bad:?} accepted");
        }
        let encoder_dir = inference::ensure_default_models(&inference::default_models_dir()).unwrap().encoder_dir;
        let config = train_config(&EncoderTrainingArgs::default(), out_of_scope, &encoder_dir).unwrap();
        assert_eq!((config.target_oos_recall, config.max_in_scope_rejection), (0.9, 0.01));
        let defaults = train_config(&EncoderTrainingArgs::default(), &OutOfScopeArgs::default(), &encoder_dir).unwrap();
        assert_eq!(defaults.target_oos_recall, inference::intent::DEFAULT_TARGET_OOS_RECALL);
        assert_eq!(defaults.max_in_scope_rejection, 0.0);
    }
}
