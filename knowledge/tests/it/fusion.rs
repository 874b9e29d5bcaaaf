//! Hybrid search finds what either method alone misses.

use std::sync::Arc;

use knowledge::{EmbedError, Embedder, KnowledgeConfig, SearchMode};

use crate::TestKb;

/// An embedder that knows synonyms: words of the same concept share a dimension.
struct ConceptEmbedder;

const CONCEPTS: &[&[&str]] = &[
    &["refuel", "top", "topup", "extra", "add"],
    &["data", "gigabytes", "gb", "internet"],
    &["abroad", "travel", "roaming", "overseas"],
    &["bill", "invoice", "statement"],
    &["cancel", "terminate", "leave"],
];

impl Embedder for ConceptEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut vector = vec![0.0f32; CONCEPTS.len() + 1];
                vector[CONCEPTS.len()] = 0.1;
                for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
                    if let Some(idx) = CONCEPTS.iter().position(|words| words.contains(&word)) {
                        vector[idx] += 1.0;
                    }
                }
                vector
            })
            .collect())
    }
    fn dim(&self) -> usize {
        CONCEPTS.len() + 1
    }
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
    fn model_id(&self) -> String {
        "concepts".into()
    }
}

#[test]
fn hybrid_combines_lexical_only_and_vector_only_matches() {
    let t = TestKb::with(Arc::new(ConceptEmbedder), KnowledgeConfig::default());
    // Only the vector side can match "extra" to "refuel" (the lexical side's synonyms know
    // "top up" but not "extra"); only the lexical side knows "P1005".
    t.write("refuel.md", "# Refuel\nRefuel adds gigabytes to a line.\n");
    t.write("iot.md", "# IoT Basic\nPlan code P1005 is for trackers.\n");
    t.write("noise.md", "# Noise\nInvoice and statement questions.\n");
    t.ingest();
    let query = "extra for P1005";
    let ids = |mode| -> Vec<String> {
        t.kb.search_mode(query, 2, None, mode).unwrap().into_iter().map(|h| h.document).collect()
    };
    let lexical = ids(SearchMode::Lexical);
    let vector = ids(SearchMode::Vector);
    let mut hybrid = ids(SearchMode::Hybrid);
    assert_eq!(lexical.first().map(String::as_str), Some("iot.md"));
    assert!(!lexical.contains(&"refuel.md".to_string()), "{lexical:?}");
    assert_eq!(vector.first().map(String::as_str), Some("refuel.md"));
    hybrid.sort();
    assert_eq!(hybrid, ["iot.md", "refuel.md"]);
}

#[test]
fn a_zero_weight_turns_a_method_off() {
    let vector_only = KnowledgeConfig { lexical_weight: 0.0, ..KnowledgeConfig::default() };
    let t = TestKb::with(Arc::new(ConceptEmbedder), vector_only);
    t.write("refuel.md", "# Refuel\nRefuel adds gigabytes to a line.\n");
    t.write("iot.md", "# IoT Basic\nPlan code P1005 is for trackers.\n");
    t.ingest();
    let hits = t.kb.search("top up data for P1005", 2, None).unwrap();
    assert_eq!(hits[0].document, "refuel.md");
}
