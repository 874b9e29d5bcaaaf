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
    self, DataFormat, FinetuneConfig, IntentDataset, IntentError, IntentModel, Split, TrainConfig,
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

/// The training configuration for the command line: the defaults, plus a fine-tune of the
/// encoder in `encoder_dir` when asked.
pub fn train_config(finetune: bool, encoder_dir: &Path) -> TrainConfig {
    TrainConfig {
        finetune: finetune.then(FinetuneConfig::default),
        encoder_dir: Some(encoder_dir.to_path_buf()),
        ..TrainConfig::default()
    }
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

fn train_model(settings: &Settings, dataset: &IntentDataset, finetune: bool) -> anyhow::Result<IntentModel> {
    let paths = app::resolve_models(settings)?;
    let embedder = app::load_embedder(&paths.encoder_dir)?;
    let config = train_config(finetune, &paths.encoder_dir);
    let progress = progress_bar();
    let model = intent::train(dataset, embedder.as_ref(), &config, &progress).context("training the intent model")?;
    progress.finish_and_clear();
    Ok(model)
}

pub fn train(settings: &Settings, data: &Path, out: &Path, format: Option<&str>, finetune: bool) -> anyhow::Result<()> {
    let format = parse_format(format)?;
    let dataset = read_dataset(data, format, Split::Train)?;
    let model = train_model(settings, &dataset, finetune)?;
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
    finetune: bool,
) -> anyhow::Result<()> {
    let format = parse_format(format)?;
    let train_set = read_dataset(train, format, Split::Train)?;
    let test_set = read_dataset(test, format, Split::Test)?;
    let started = Instant::now();
    let model = train_model(settings, &train_set, finetune)?;
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
        let error = train(&settings(), &data, &out, None, false).unwrap_err();
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
        let error = train(&settings(), Path::new("data.yaml"), &out, Some("xml"), false).unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some());
        let error = train(&settings(), &dir.path().join("missing.yaml"), &out, None, false).unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some());
        assert!(error.to_string().contains("missing.yaml"));
        let error =
            eval(&settings(), &dir.path().join("a.csv"), &dir.path().join("b.csv"), None, true, false).unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some());
    }
}
