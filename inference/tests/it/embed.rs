//! The sentence encoder against sentence-transformers' reference vectors, and its edges.

use serde::Deserialize;

use crate::embedder;

/// sentence-transformers' vectors for 15 sentences (`tests/fixtures/`, see its README).
const REFERENCE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/minilm_reference.json");

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    items: Vec<ReferenceItem>,
}

#[derive(Deserialize)]
struct ReferenceItem {
    text: String,
    embedding: Vec<f32>,
}

fn reference() -> Reference {
    let bytes = std::fs::read(REFERENCE_PATH).unwrap_or_else(|err| panic!("reading {REFERENCE_PATH}: {err}"));
    serde_json::from_slice(&bytes).expect("reference json")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn matches_sentence_transformers_reference_vectors() {
    let reference = reference();
    assert_eq!(reference.max_seq_length, inference::embed::MAX_SEQUENCE_TOKENS);
    let texts: Vec<&str> = reference.items.iter().map(|item| item.text.as_str()).collect();
    let vectors = embedder().embed(&texts).unwrap();
    assert_eq!(vectors.len(), texts.len());
    for (item, vector) in reference.items.iter().zip(&vectors) {
        assert_eq!(vector.len(), item.embedding.len());
        let similarity = cosine(vector, &item.embedding);
        assert!(similarity >= 0.999, "cosine {similarity} for {:?}", item.text);
    }
}

#[test]
fn batching_and_order_do_not_change_vectors() {
    let texts = ["hi", "What does your cheapest plan cost per month?", "", "ok", &"long sentence ".repeat(100)];
    let together = embedder().embed(&texts).unwrap();
    for (text, vector) in texts.iter().zip(&together) {
        let alone = embedder().embed_with_batch_size(&[text], 1).unwrap();
        assert!(cosine(vector, &alone[0]) > 0.99999, "{text:?}");
    }
    let small_batches = embedder().embed_with_batch_size(&texts, 2).unwrap();
    for (a, b) in together.iter().zip(&small_batches) {
        assert!(cosine(a, b) > 0.99999);
    }
}

#[test]
fn vectors_are_unit_length_with_the_models_dimension() {
    let embedder = embedder();
    assert_eq!(embedder.dim(), 384);
    for vector in embedder.embed(&["", "   ", "😀", "a"]).unwrap() {
        assert_eq!(vector.len(), 384);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}

#[test]
fn empty_and_hostile_inputs() {
    let embedder = embedder();
    assert!(embedder.embed(&[]).unwrap().is_empty());
    assert!(embedder.embed_with_batch_size(&["x"], 0).is_err());
    // A megabyte of text is truncated, not rejected.
    let huge = "word ".repeat(200_000);
    let control = "\u{0}\u{7}\u{1b}[31m<script>alert(1)</script>\u{202e}";
    let vectors = embedder.embed(&[&huge, control]).unwrap();
    assert_eq!(vectors.len(), 2);
    assert!(vectors.iter().flatten().all(|x| x.is_finite()));
}

#[test]
fn token_counting_and_offsets_for_chunkers() {
    let embedder = embedder();
    let text = "My internet is very slow. Résumé café!";
    let n_tokens = embedder.count_tokens(text);
    let offsets = embedder.token_offsets(text);
    assert_eq!(offsets.len(), n_tokens);
    assert!(n_tokens > 5);
    assert_eq!(embedder.count_tokens(""), 0);
    for (start, end) in &offsets {
        assert!(start <= end && *end <= text.len());
        assert!(text.is_char_boundary(*start) && text.is_char_boundary(*end));
    }
    assert_eq!(&text[offsets[0].0..offsets[0].1], "My");
    assert_eq!(embedder.max_content_tokens(), 254);
    // The exposed tokenizer neither pads nor truncates.
    let encoding = embedder.tokenizer().encode("word ".repeat(400), true).unwrap();
    assert_eq!(encoding.len(), 402);
}

#[test]
fn model_id_is_stable_and_names_the_family() {
    let id = embedder().model_id();
    assert!(id.starts_with("bert-") && id.len() == 21, "{id}");
    let again = inference::SentenceEmbedder::load(embedder().dir()).unwrap();
    assert_eq!(again.model_id(), id);
}

#[test]
fn trainable_model_reproduces_the_embedder() {
    use inference::models::bert::{BatchInputs, forward_pooled, load_trainable};
    let device = candle_core::Device::Cpu;
    let trainable = load_trainable(embedder().dir(), &device).unwrap();
    assert!(!trainable.varmap.all_vars().is_empty());
    let text = "Why was I charged a late fee?";
    let ids = embedder().tokenizer().encode(text, true).unwrap().get_ids().to_vec();
    let inputs = BatchInputs::pad(&[&ids], 0, &device).unwrap();
    let pooled = forward_pooled(&trainable.model, &inputs.input_ids, &inputs.type_ids, &inputs.mask).unwrap();
    let pooled = pooled.to_vec2::<f32>().unwrap();
    let expected = embedder().embed(&[text]).unwrap();
    assert!(cosine(&pooled[0], &expected[0]) > 0.99999);
}
