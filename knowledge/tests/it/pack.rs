//! The demo pack ingests cleanly and answers every question of the project's QA file.

use std::collections::{BTreeMap, BTreeSet};

use evals::retrieval::{Retrieved, is_hit, load_qa};
use knowledge::{Filter, MAX_K, SearchMode};

use crate::{TestKb, pack_dir, qa_file};

#[test]
fn demo_pack_ingests_without_skips() {
    let t = TestKb::new();
    let report = t.kb.ingest(&[pack_dir()], false).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.ignored, 0);
    assert!(report.added >= 40, "{report}");
    let stats = t.kb.stats().unwrap();
    assert_eq!(stats.n_files, report.added);
    assert!(stats.n_chunks > stats.n_files);
}

#[test]
fn every_qa_answer_is_in_its_source_document() {
    let t = TestKb::new();
    t.kb.ingest(&[pack_dir()], false).unwrap();
    let items = load_qa(&qa_file()).unwrap();
    assert!(items.len() >= 120);
    let mut per_document: BTreeMap<String, usize> = BTreeMap::new();
    for item in &items {
        let filter = Filter::default().with_document(item.source.clone());
        let chunks = t.kb.search_mode(&item.question, MAX_K, Some(&filter), SearchMode::Vector).unwrap();
        assert!(!chunks.is_empty(), "source {} is not in the pack", item.source);
        let answered = chunks.iter().any(|c| is_hit(item, &Retrieved { document: &c.document, text: &c.text }));
        assert!(answered, "no chunk of {} contains {:?}", item.source, item.answer_contains);
        *per_document.entry(item.source.clone()).or_default() += 1;
    }
    // Every document is asked about.
    let all_documents: BTreeSet<String> = walk_names(&pack_dir());
    let asked: BTreeSet<String> = per_document.keys().cloned().collect();
    let unasked: Vec<&String> = all_documents.difference(&asked).collect();
    assert!(unasked.is_empty(), "documents without questions: {unasked:?}");
}

#[test]
fn doc_types_follow_the_pack_folders() {
    let t = TestKb::new();
    t.kb.ingest(&[pack_dir()], false).unwrap();
    for (document, doc_type) in [
        ("plan-catalogue.md", "plans"),
        ("late-fees.md", "billing"),
        ("fees-and-charges.toml", "billing"),
        ("roaming-zones-and-rates.md", "roaming"),
        ("contact-us.json", "support"),
        ("network-outages.txt", "support"),
        ("esim-transfer.md", "sim"),
    ] {
        let filter = Filter::default().with_document(document);
        let hits = t.kb.search_mode("plan", 1, Some(&filter), SearchMode::Vector).unwrap();
        assert_eq!(hits[0].doc_type, doc_type, "{document}");
    }
}

fn walk_names(dir: &std::path::Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            names.extend(walk_names(&path));
        } else {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // The catalogue is structured facts, not a document (ingestion skips it).
            if name != knowledge::catalogue::CATALOGUE_FILE {
                names.insert(name);
            }
        }
    }
    names
}
