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
        finetune: Some(FinetuneConfig { epochs: 1, batch_size: 8, max_steps: 3, ..FinetuneConfig::full() }),
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

#[test]
fn upper_layers_over_cached_lower_states_equal_the_full_forward() {
    let encoder = IntentEncoder::load(&encoder_dir()).unwrap();
    let texts = [
        "hi",
        "",
        "I want to pay my bill",
        "my phone has had no signal since I got back from Lisbon last Tuesday, can you check the network?",
        "top up 2gb",
    ];
    let full = encoder.forward_pooled(&texts).unwrap().to_vec2::<f32>().unwrap();
    for n_lower_layers in 0..=encoder.n_layers() {
        let lower = encoder.lower_states(&texts, n_lower_layers, |_| {}).unwrap();
        assert_eq!(lower.len(), texts.len());
        // Unpadded: "hi" is [CLS] hi [SEP], "" is [CLS] [SEP].
        assert_eq!(lower[0].dims(), &[3, encoder.dim()]);
        assert_eq!(lower[1].dims(), &[2, encoder.dim()]);
        // One padded batch, in another order than the cache was built in.
        let batch: Vec<&Tensor> = [3, 0, 2, 1, 4].iter().map(|&idx| &lower[idx]).collect();
        let cached = encoder.forward_pooled_from_lower(&batch, n_lower_layers).unwrap().to_vec2::<f32>().unwrap();
        for (row, idx) in [3, 0, 2, 1, 4].into_iter().enumerate() {
            let difference = cached[row].iter().zip(&full[idx]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(difference < 1e-5, "{n_lower_layers} lower layers, text {idx}: off by {difference}");
        }
        let embedded = encoder.embed_from_lower(&lower, n_lower_layers).unwrap();
        let direct = encoder.embed_texts(&texts).unwrap();
        for (a, b) in embedded.iter().zip(&direct) {
            assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5));
        }
    }
    let too_many = encoder.n_layers() + 1;
    assert!(matches!(encoder.lower_states(&texts, too_many, |_| {}), Err(IntentError::InvalidConfig { .. })));
    let lower = encoder.lower_states(&texts, 2, |_| {}).unwrap();
    assert!(matches!(encoder.forward_pooled_from_lower(&[], 2), Err(IntentError::InvalidConfig { .. })));
    assert!(encoder.forward_pooled_from_lower(&[&lower[0]], too_many).is_err());
}

#[test]
fn partial_finetune_trains_only_the_upper_layers_and_learns_the_intents() {
    let n_frozen_layers = 4;
    let encoder = IntentEncoder::load_trainable(&encoder_dir(), n_frozen_layers).unwrap();
    let trainable: Vec<String> = encoder.varmap().unwrap().data().lock().unwrap().keys().cloned().collect();
    assert!(!trainable.is_empty());
    for name in &trainable {
        let layer: usize =
            name.strip_prefix("encoder.layer.").and_then(|rest| rest.split('.').next()).unwrap().parse().unwrap();
        assert!(layer >= n_frozen_layers, "{name} is trainable");
    }

    // A tiny run on three intents: the loss falls and the training texts are classified right.
    let data = dataset();
    let labels = data.intent_names();
    let examples: Vec<&Example> = data.examples.iter().filter(|e| e.label != OUT_OF_SCOPE).collect();
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let classes: Vec<u32> =
        examples.iter().map(|e| labels.iter().position(|l| *l == e.label).unwrap() as u32).collect();
    let lower = encoder.lower_states(&texts, n_frozen_layers, |_| {}).unwrap();
    let before = encoder.embed_from_lower(&lower, n_frozen_layers).unwrap();
    let initial = head::class_centroids(&before, &classes, labels.len(), encoder.dim()).unwrap();
    let config = FinetuneConfig {
        n_frozen_layers,
        epochs: 6,
        batch_size: 8,
        encoder_learning_rate: 3e-4,
        ..FinetuneConfig::default()
    };
    let directions = finetune::finetune_upper_layers(
        &encoder,
        &lower,
        n_frozen_layers,
        &classes,
        &initial,
        &config,
        1,
        &ProgressBar::hidden(),
    )
    .unwrap();
    let after = encoder.embed_from_lower(&lower, n_frozen_layers).unwrap();
    assert_ne!(before, after, "the upper layers did not change");
    let directions = directions.to_vec2::<f32>().unwrap();
    let margin_of = |embeddings: &[Vec<f32>]| -> f32 {
        // Mean over examples of (cosine to its class) - (best cosine to another class).
        let mut total = 0.0;
        for (embedding, &class) in embeddings.iter().zip(&classes) {
            let cosines: Vec<f32> =
                directions.iter().map(|d| d.iter().zip(embedding).map(|(a, b)| a * b).sum()).collect();
            let other = cosines.iter().enumerate().filter(|(c, _)| *c != class as usize).map(|(_, v)| *v);
            total += cosines[class as usize] - other.fold(f32::MIN, f32::max);
        }
        total / embeddings.len() as f32
    };
    for (embedding, &class) in after.iter().zip(&classes) {
        let cosines: Vec<f32> = directions.iter().map(|d| d.iter().zip(embedding).map(|(a, b)| a * b).sum()).collect();
        assert_eq!(head::argmax(&cosines).0, class as usize);
    }
    assert!(margin_of(&after) > margin_of(&before), "the classes did not separate further");

    // Cached states must come from as many layers as the config freezes.
    let wrong = FinetuneConfig { n_frozen_layers: 2, ..config };
    assert!(matches!(
        finetune::finetune_upper_layers(
            &encoder,
            &lower,
            n_frozen_layers,
            &classes,
            &initial,
            &wrong,
            1,
            &ProgressBar::hidden()
        ),
        Err(IntentError::InvalidConfig { .. })
    ));
}

#[test]
fn default_partial_finetune_trains_saves_and_reloads() {
    let config = TrainConfig {
        finetune: Some(FinetuneConfig { epochs: 2, batch_size: 8, ..FinetuneConfig::default() }),
        encoder_dir: Some(encoder_dir()),
        ..small_config()
    };
    let model = train(&dataset(), embedder(), &config, &ProgressBar::hidden()).unwrap();
    assert!(model.has_own_encoder());
    check_predictions(
        &model,
        &[
            ("can I pay my bill now", "pay_bill"),
            ("my phone has no signal", "no_service"),
            ("please add 2 gb of data", "refuel_data"),
        ],
    );
    let again = train(&dataset(), embedder(), &config, &ProgressBar::hidden()).unwrap();
    assert_eq!(again.calibration(), model.calibration(), "not reproducible");
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = IntentModel::load(dir.path()).unwrap();
    let text = "no bars on my phone";
    let (a, b) = (model.predict(embedder(), text).unwrap(), loaded.predict(embedder(), text).unwrap());
    assert_eq!(a.name, b.name);
    assert!((a.confidence - b.confidence).abs() < 1e-4);

    let n_layers = IntentEncoder::load(&encoder_dir()).unwrap().n_layers();
    let nothing_to_train = TrainConfig {
        finetune: Some(FinetuneConfig { n_frozen_layers: n_layers, ..FinetuneConfig::default() }),
        ..config
    };
    assert!(matches!(
        train(&dataset(), embedder(), &nothing_to_train, &ProgressBar::hidden()),
        Err(IntentError::InvalidConfig { .. })
    ));
}

#[test]
fn out_of_scope_examples_are_a_class_that_is_saved_with_the_model() {
    let model = train(&dataset(), embedder(), &small_config(), &ProgressBar::hidden()).unwrap();
    assert_eq!(model.metrics().n_out_of_scope_examples, 4);
    // All four out-of-scope examples are in the held-out slice, each scored against the other
    // three; the default target (0.85 of 5 = 5 > 4) rejects all of them.
    assert_eq!(model.metrics().holdout_oos_recall, Some(1.0));
    // Close to an out-of-scope example, far from the intents.
    let near_example = model.predict(embedder(), "what is the capital of spain").unwrap();
    assert_eq!(near_example.name, OUT_OF_SCOPE, "{near_example:?}");
    // The score is the margin: the best intent's score minus the nearest out-of-scope example's.
    let embedding = embedder().embed(&["top up my data please"]).unwrap().remove(0);
    let prediction = model.predict_embedding(&embedding).unwrap();
    let best = head::argmax(&model.scorer.intent_scores(&embedding)).1;
    let nearest = model.scorer.out_of_scope_similarity(&embedding, None);
    assert!(nearest > 0.0);
    assert!((prediction.score - (best - nearest)).abs() < 1e-6);
    assert_eq!(prediction.name, "refuel_data");

    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = IntentModel::load(dir.path()).unwrap();
    assert_eq!(loaded.scorer.out_of_scope_examples, model.scorer.out_of_scope_examples);
    for text in ["what is the capital of spain", "top up my data please", "how do I make pancakes"] {
        assert_eq!(loaded.predict(embedder(), text).unwrap(), model.predict(embedder(), text).unwrap(), "{text}");
    }
}

#[test]
fn without_out_of_scope_examples_nothing_is_rejected_by_default() {
    let mut data = dataset();
    data.examples.retain(|example| example.label != OUT_OF_SCOPE);
    let model = train(&data, embedder(), &small_config(), &ProgressBar::hidden()).unwrap();
    assert_eq!(model.calibration().threshold, head::NO_REJECTION);
    assert_ne!(model.predict(embedder(), "who won the football world cup in 1998").unwrap().name, OUT_OF_SCOPE);
    // A rejection budget brings the threshold back (the server's demo model keeps 2%).
    let budget = TrainConfig { max_in_scope_rejection: 0.02, ..small_config() };
    let with_budget = train(&data, embedder(), &budget, &ProgressBar::hidden()).unwrap();
    assert!(with_budget.calibration().threshold > 0.0, "{:?}", with_budget.calibration());
}
