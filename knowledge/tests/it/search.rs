//! Searching: filters, modes, bad queries, concurrency, precomputed embeddings.

use std::sync::Arc;

use knowledge::{Error, Filter, SearchMode};

use crate::TestKb;

fn sample() -> TestKb {
    let t = TestKb::new();
    t.write("billing/late-fees.md", "# Late fees\nA late fee of $10 is added when a bill is paid late.\n");
    t.write("billing/autopay.md", "# AutoPay\nAutoPay pays each bill on its due date.\n");
    t.write(
        "roaming/zones.md",
        "# Roaming zones\nCalls in zone 2 cost $0.25 per minute; bills show them as roaming.\n",
    );
    t.write("plans/catalogue.md", "---\ndoc_type: Price List\n---\n# Plans\nThe Basic Plan bill is $40 per month.\n");
    t.ingest();
    t
}

#[test]
fn filters_restrict_every_mode() {
    let t = sample();
    for mode in SearchMode::ALL {
        let hits = t.kb.search_mode("bill", 10, Some(&Filter::doc_type("billing")), mode).unwrap();
        assert!(!hits.is_empty(), "{mode}");
        assert!(hits.iter().all(|h| h.doc_type == "billing"), "{mode}: {hits:?}");
        let hits =
            t.kb.search_mode("bill", 10, Some(&Filter::doc_type("roaming").with_doc_type("price-list")), mode).unwrap();
        let types: std::collections::HashSet<&str> = hits.iter().map(|h| h.doc_type.as_str()).collect();
        assert!(types.iter().all(|t| *t == "roaming" || *t == "price-list"), "{mode}: {types:?}");
        let hits = t.kb.search_mode("bill", 10, Some(&Filter::default().with_document("autopay.md")), mode).unwrap();
        assert!(hits.iter().all(|h| h.document == "autopay.md"), "{mode}");
        assert!(t.kb.search_mode("bill", 10, Some(&Filter::doc_type("nothing")), mode).unwrap().is_empty());
    }
}

#[test]
fn doc_types_come_from_front_matter_or_folders() {
    let t = sample();
    let doc_type = |document: &str| {
        t.kb.search("bill plan zone fee autopay", 10, Some(&Filter::default().with_document(document))).unwrap()[0]
            .doc_type
            .clone()
    };
    assert_eq!(doc_type("catalogue.md"), "price-list");
    assert_eq!(doc_type("zones.md"), "roaming");
    assert_eq!(doc_type("late-fees.md"), "billing");
}

#[test]
fn hits_carry_metadata_and_scores() {
    let t = sample();
    let hits = t.kb.search("late fee", 3, None).unwrap();
    let top = &hits[0];
    assert_eq!(top.document, "late-fees.md");
    assert_eq!(top.section, "Late fees");
    assert_eq!(top.title, "Late fees");
    assert!(top.path.ends_with("billing/late-fees.md"));
    assert!(top.score > 0.0 && top.score <= 1.0);
    assert!(top.lexical_score.is_some() && top.vector_similarity.is_some());
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    let vector_hits = t.kb.search_mode("late fee", 3, None, SearchMode::Vector).unwrap();
    assert!(vector_hits.iter().all(|h| h.lexical_score.is_none() && h.vector_similarity == Some(h.score)));
}

#[test]
fn bad_queries() {
    let t = sample();
    assert!(matches!(t.kb.search("", 5, None), Err(Error::EmptyQuery)));
    assert!(matches!(t.kb.search(" \n\t", 5, None), Err(Error::EmptyQuery)));
    assert!(t.kb.search("late fee", 0, None).unwrap().is_empty());
    assert!(t.kb.search("late fee", usize::MAX, None).unwrap().len() <= 4);
    for query in
        ["🙂🙂🙂", "AND OR NOT (", "title:\"x", "\0\u{202e}", "x".repeat(100_000).as_str(), &"late fee ".repeat(5_000)]
    {
        t.kb.search(query, 5, None).unwrap();
    }
    assert!(matches!(
        t.kb.search_with_embedding("late fee", &[1.0, 2.0], 5, None, SearchMode::Hybrid),
        Err(Error::QueryDimension { expected: 64, got: 2 })
    ));
}

#[test]
fn precomputed_embeddings_give_the_same_results_and_the_cache_is_used() {
    let t = sample();
    let embedding = t.kb.embed_query("late fee").unwrap();
    let with = t.kb.search_with_embedding("late fee", &embedding, 3, None, SearchMode::Hybrid).unwrap();
    let without = t.kb.search("late fee", 3, None).unwrap();
    assert_eq!(with, without);
    t.kb.search("  late   fee ", 3, None).unwrap();
    let stats = t.kb.stats().unwrap();
    assert!(stats.cache_hits >= 2, "{stats:?}");
    assert_eq!(stats.cache_misses, 1);
}

#[test]
fn concurrent_searches_during_an_ingestion() {
    let t = Arc::new(sample());
    let mut handles = Vec::new();
    for thread_idx in 0..4 {
        let t = t.clone();
        handles.push(std::thread::spawn(move || {
            for i in 0..50 {
                let query = if (thread_idx + i) % 2 == 0 { "late fee" } else { "roaming zone calls" };
                let hits = t.kb.search(query, 3, None).unwrap();
                assert!(!hits.is_empty());
            }
        }));
    }
    for i in 0..20 {
        t.write(&format!("extra/doc-{i}.md"), format!("# Extra {i}\nMore text number {i} about bills.\n"));
        t.ingest();
    }
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(t.kb.stats().unwrap().n_files, 24);
}
