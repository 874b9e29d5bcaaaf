//! Intent model tests on the real MiniLM encoder.

use std::path::PathBuf;
use std::sync::OnceLock;

use indicatif::ProgressBar;

use super::*;

fn encoder_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        crate::ensure_default_models(&crate::default_models_dir()).expect("default models fetched").encoder_dir
    })
    .clone()
}

fn embedder() -> &'static crate::SentenceEmbedder {
    static EMBEDDER: OnceLock<crate::SentenceEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| crate::SentenceEmbedder::load(&encoder_dir()).expect("encoder loads"))
}

const YAML: &str = "
intents:
  - name: pay_bill
    examples: [I want to pay my bill, pay my bill, how do I pay the overdue bill, make a payment, pay what I owe, settle my balance, i wanna pay, take my payment]
  - name: no_service
    examples: [I have no service, no signal on my phone, my phone says no service, cannot make calls, no bars at all, phone not connecting to the network, zero reception, calls do not go through]
  - name: refuel_data
    examples: [add more data, I need more data, buy 2GB of data, top up my data, give me extra gigs, refuel data, out of data need more, data top up please]
  - name: oos
    examples: [what is the capital of france, how do I bake bread, recommend a good novel, what is the boiling point of water]
";

fn dataset() -> IntentDataset {
    parse_dataset(YAML.as_bytes(), std::path::Path::new("test.yaml"), DataFormat::Yaml, Split::Train).unwrap()
}

fn small_config() -> TrainConfig {
    TrainConfig {
        head: HeadConfig { epochs: 20, ..HeadConfig::default() },
        holdout_fraction: 0.25,
        ..TrainConfig::default()
    }
}

#[track_caller]
fn check_predictions(model: &IntentModel, cases: &[(&str, &str)]) {
    for (text, expected) in cases {
        let prediction = model.predict(embedder(), text).unwrap();
        assert_eq!(prediction.name, *expected, "{text:?}: {prediction:?}");
        assert!(prediction.confidence > 0.0 && prediction.confidence <= 1.0);
        assert!(!prediction.top.is_empty() && prediction.top.len() <= TOP_K);
        assert!(prediction.top.windows(2).all(|w| w[0].1 >= w[1].1));
    }
}

#[test]
fn frozen_model_predicts_saves_loads_and_is_reproducible() {
    let model = train(&dataset(), embedder(), &small_config(), &ProgressBar::hidden()).unwrap();
    assert_eq!(model.labels(), ["no_service", "pay_bill", "refuel_data"]);
    assert!(!model.has_own_encoder());
    check_predictions(
        &model,
        &[
            ("can I pay my bill now", "pay_bill"),
            ("my phone has no signal", "no_service"),
            ("please add 2 gb of data", "refuel_data"),
            ("who won the football world cup in 1998", OUT_OF_SCOPE),
        ],
    );

    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("model");
    model.save(&model_dir).unwrap();
    for file in ["labels.json", "calibration.json", "metrics.json", "intent_head.safetensors"] {
        assert!(model_dir.join(file).is_file(), "{file} missing");
    }
    let loaded = IntentModel::load(&model_dir).unwrap();
    let text = "i need to pay the overdue amount";
    assert_eq!(model.predict(embedder(), text).unwrap(), loaded.predict(embedder(), text).unwrap());

    let again = train(&dataset(), embedder(), &small_config(), &ProgressBar::hidden()).unwrap();
    assert_eq!(again.calibration(), model.calibration());
    assert_eq!(again.predict(embedder(), text).unwrap(), model.predict(embedder(), text).unwrap());

    // The engine's path: one embedding per message, reused.
    let embedding = embedder().embed(&[text]).unwrap().remove(0);
    assert_eq!(model.predict_embedding(&embedding).unwrap(), model.predict(embedder(), text).unwrap());
    assert!(model.predict_embedding(&[0.0; 3]).is_err());
    assert!(model.predict(embedder(), "").is_ok());
    let huge = "pay my bill ".repeat(5000);
    assert_eq!(model.predict(embedder(), &huge).unwrap().name, "pay_bill");
}

#[test]
fn corrupt_model_directories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(IntentModel::load(dir.path()), Err(IntentError::Io { .. })));
    let model = train(&dataset(), embedder(), &small_config(), &ProgressBar::hidden()).unwrap();
    let model_dir = dir.path().join("model");
    model.save(&model_dir).unwrap();
    std::fs::write(model_dir.join("labels.json"), "[\"only_one\"]").unwrap();
    assert!(matches!(IntentModel::load(&model_dir), Err(IntentError::InvalidModel { .. })));
    std::fs::write(model_dir.join("intent_head.safetensors"), "garbage").unwrap();
    assert!(matches!(IntentModel::load(&model_dir), Err(IntentError::InvalidModel { .. })));
}

#[test]
fn train_or_load_caches_by_data_and_config() {
    let cache = tempfile::tempdir().unwrap();
    let first = train_or_load(cache.path(), &dataset(), embedder(), &small_config()).unwrap();
    let n_dirs = || std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(n_dirs(), 1);
    let second = train_or_load(cache.path(), &dataset(), embedder(), &small_config()).unwrap();
    assert_eq!(first.calibration(), second.calibration());
    assert_eq!(n_dirs(), 1);
    let other = TrainConfig { seed: 7, ..small_config() };
    train_or_load(cache.path(), &dataset(), embedder(), &other).unwrap();
    assert_eq!(n_dirs(), 2);
}

#[test]
fn finetuned_model_keeps_its_encoder() {
    let config = TrainConfig {
        finetune: Some(FinetuneConfig { epochs: 1, batch_size: 8, max_steps: 3, ..FinetuneConfig::default() }),
        encoder_dir: Some(encoder_dir()),
        ..small_config()
    };
    let model = train(&dataset(), embedder(), &config, &ProgressBar::hidden()).unwrap();
    assert!(model.has_own_encoder());
    assert!(model.metrics().finetuned);
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = IntentModel::load(dir.path()).unwrap();
    assert!(loaded.has_own_encoder());
    let text = "no signal since this morning";
    let (a, b) = (model.predict(embedder(), text).unwrap(), loaded.predict(embedder(), text).unwrap());
    assert_eq!(a.name, b.name);
    assert!((a.confidence - b.confidence).abs() < 1e-4);
    assert_eq!(a.name, "no_service");
}

#[test]
fn finetune_without_encoder_dir_is_a_config_error() {
    let config = TrainConfig { finetune: Some(FinetuneConfig::default()), encoder_dir: None, ..small_config() };
    assert!(matches!(
        train(&dataset(), embedder(), &config, &ProgressBar::hidden()),
        Err(IntentError::InvalidConfig { .. })
    ));
}
