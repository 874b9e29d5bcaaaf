//! Incremental ingestion: unchanged, changed, deleted and bad files.

use std::collections::HashSet;
use std::sync::Arc;

use knowledge::{Error, HashEmbedder, KnowledgeBase, KnowledgeConfig};

use crate::TestKb;

#[test]
fn reingest_skips_unchanged_files_and_keeps_ids() {
    let t = TestKb::new();
    t.write("billing/late-fees.md", "# Late fees\nA late fee of $10 is charged.\n");
    t.write("plans/basic.md", "# Basic\nThe Basic Plan costs $40.\n");
    let first = t.ingest();
    assert_eq!((first.added, first.updated, first.unchanged, first.deleted), (2, 0, 0, 0));
    assert_eq!(first.chunks_total, 2);
    let ids_before: HashSet<String> =
        t.kb.search("late fee basic plan", 10, None).unwrap().into_iter().map(|h| h.chunk_id).collect();

    let second = t.ingest();
    assert_eq!((second.added, second.updated, second.unchanged, second.deleted), (0, 0, 2, 0));
    assert_eq!(second.chunks_added, 0);
    let ids_after: HashSet<String> =
        t.kb.search("late fee basic plan", 10, None).unwrap().into_iter().map(|h| h.chunk_id).collect();
    assert_eq!(ids_before, ids_after);
}

#[test]
fn changed_file_replaces_its_chunks() {
    let t = TestKb::new();
    t.write("billing/late-fees.md", "# Late fees\nA late fee of $10 is charged.\n");
    t.ingest();
    t.write("billing/late-fees.md", "# Late fees\nA penalty of $12 is charged after the due date.\n");
    let report = t.ingest();
    assert_eq!((report.added, report.updated, report.unchanged), (0, 1, 0));
    assert_eq!(report.chunks_removed, 1);
    assert_eq!(report.chunks_total, 1);
    let hits = t.kb.search("late fee", 5, None).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].text.contains("$12"), "{:?}", hits[0].text);
    assert!(
        t.kb.search_mode("$10", 5, None, knowledge::SearchMode::Lexical)
            .unwrap()
            .iter()
            .all(|h| !h.text.contains("$10"))
    );
}

#[test]
fn unchanged_chunks_of_a_changed_file_keep_their_ids() {
    // Small chunks, so that each section is a chunk of its own.
    let config = KnowledgeConfig { chunk_max_tokens: 16, chunk_overlap_tokens: 0, ..KnowledgeConfig::default() };
    let t = TestKb::with(Arc::new(HashEmbedder::new(64)), config);
    t.write("a.md", "# A\n## One\nfirst section stays the same with many words\n## Two\nsecond section is old and will change soon\n");
    t.ingest();
    let id_of =
        |query: &str| t.kb.search_mode(query, 1, None, knowledge::SearchMode::Lexical).unwrap()[0].chunk_id.clone();
    let first_id = id_of("stays");
    t.write("a.md", "# A\n## One\nfirst section stays the same with many words\n## Two\nsecond section is new and has changed now\n");
    let report = t.ingest();
    assert_eq!(report.chunks_removed, 1);
    assert_eq!(id_of("stays"), first_id);
    assert_eq!(t.kb.stats().unwrap().n_chunks, 2);
}

#[test]
fn deleted_files_lose_their_chunks_but_other_folders_are_untouched() {
    let t = TestKb::new();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("outside.md"), "# Outside\nAn unrelated document about zebras.\n").unwrap();
    t.kb.ingest(&[other.path().to_path_buf()], false).unwrap();
    let doomed = t.write("roaming/zones.md", "# Zones\nZone 2 calls cost $0.25 per minute.\n");
    t.write("roaming/keep.md", "# Keep\nStays indexed.\n");
    t.ingest();
    std::fs::remove_file(doomed).unwrap();
    let report = t.ingest();
    assert_eq!((report.deleted, report.unchanged), (1, 1));
    assert!(t.top_documents("zone calls minute", 5).iter().all(|d| d != "zones.md"));
    // Ingesting one folder never deletes another folder's documents.
    assert_eq!(t.top_documents("zebras", 1), ["outside.md"]);
    assert_eq!(t.kb.stats().unwrap().n_files, 2);
}

#[test]
fn bad_files_are_skipped_by_name_and_the_rest_is_indexed() {
    let t = TestKb::with(
        Arc::new(HashEmbedder::new(64)),
        KnowledgeConfig { max_file_bytes: 10_000, ..KnowledgeConfig::default() },
    );
    t.write("good.md", "# Good\nThis one works.\n");
    t.write("broken.json", "{\"title\": ");
    t.write("broken.toml", "key = = value");
    t.write("latin1.txt", b"caf\xe9 au lait".as_slice());
    t.write("empty.md", "   \n");
    t.write("binary.txt", b"PK\x03\x04\x00\x00binary".as_slice());
    t.write("huge.txt", "word ".repeat(5_000));
    t.write("image.png", b"\x89PNG".as_slice());
    t.write(".hidden/secret.md", "# Secret\nnot indexed\n");
    let report = t.ingest();
    assert_eq!(report.added, 1);
    assert_eq!(report.ignored, 1);
    let mut skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|s| (s.path.file_name().unwrap().to_string_lossy().into_owned(), s.reason.clone()))
        .collect();
    skipped.sort();
    let names: Vec<&str> = skipped.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["binary.txt", "broken.json", "broken.toml", "empty.md", "huge.txt", "latin1.txt"]);
    let reason = |name: &str| skipped.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(reason("broken.json").starts_with("invalid JSON"), "{}", reason("broken.json"));
    assert!(reason("broken.toml").starts_with("invalid TOML"));
    assert!(reason("latin1.txt").contains("UTF-8"));
    assert!(reason("huge.txt").contains("limit"));
    assert_eq!(reason("empty.md"), "no extractable text");
    assert_eq!(t.top_documents("works", 1), ["good.md"]);
    assert!(t.kb.search("secret", 5, None).unwrap().iter().all(|h| h.document != "secret.md"));
}

#[test]
fn a_file_that_turns_bad_keeps_its_previous_version() {
    let t = TestKb::new();
    t.write("data.json", r#"{"title": "Data", "answer": "forty two"}"#);
    t.ingest();
    t.write("data.json", r#"{"title": "#);
    let report = t.ingest();
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.deleted, 0);
    assert_eq!(t.top_documents("forty two", 1), ["data.json"]);
}

#[test]
fn html_is_indexed_as_text_only() {
    let t = TestKb::new();
    t.write(
        "support/wifi.html",
        "<html><head><title>Wi-Fi calling</title><script>var tracking = 'pixel';</script></head>\
         <body><nav>Home | Shop</nav><h1>Wi-Fi calling</h1><p>Calls over Wi-Fi are <b>free</b> &amp; easy.</p></body></html>",
    );
    t.ingest();
    let hits = t.kb.search("wifi calls free", 5, None).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, "Wi-Fi calling\nCalls over Wi-Fi are free & easy.");
    assert_eq!(hits[0].section, "Wi-Fi calling");
    assert_eq!(hits[0].doc_type, "support");
    for hidden in ["tracking", "pixel", "Shop", "<b>"] {
        assert!(t.kb.search_mode(hidden, 5, None, knowledge::SearchMode::Lexical).unwrap().is_empty(), "{hidden}");
    }
}

#[test]
fn single_files_and_missing_paths() {
    let t = TestKb::new();
    let file = t.write("plans/basic.md", "# Basic\nFive gigabytes.\n");
    let report = t.kb.ingest(&[file], false).unwrap();
    assert_eq!(report.added, 1);
    assert_eq!(t.kb.search("gigabytes", 1, None).unwrap()[0].doc_type, "plans");
    let missing = t.docs.path().join("nope");
    assert!(matches!(t.kb.ingest(&[missing], false), Err(Error::MissingPath { .. })));
    let empty = t.kb.ingest(&[], false).unwrap();
    assert_eq!(empty.added + empty.deleted, 0);
}

#[test]
fn index_persists_and_rebuilds_when_the_model_changes() {
    let index_dir = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("a.md"), "# A\nPersistent text about refuels.\n").unwrap();
    {
        let kb =
            KnowledgeBase::open(index_dir.path(), KnowledgeConfig::default(), Arc::new(HashEmbedder::new(32))).unwrap();
        kb.ingest(&[docs.path().to_path_buf()], false).unwrap();
    }
    {
        let kb =
            KnowledgeBase::open(index_dir.path(), KnowledgeConfig::default(), Arc::new(HashEmbedder::new(32))).unwrap();
        assert_eq!(kb.search("refuels", 1, None).unwrap()[0].document, "a.md");
        assert_eq!(kb.ingest(&[docs.path().to_path_buf()], false).unwrap().unchanged, 1);
    }
    // Another model (dimension): the index is emptied and the next ingestion rebuilds it.
    let kb =
        KnowledgeBase::open(index_dir.path(), KnowledgeConfig::default(), Arc::new(HashEmbedder::new(48))).unwrap();
    assert_eq!(kb.stats().unwrap().n_chunks, 0);
    assert_eq!(kb.ingest(&[docs.path().to_path_buf()], false).unwrap().added, 1);
    assert_eq!(kb.search("refuels", 1, None).unwrap()[0].document, "a.md");
}

#[test]
fn a_lost_lexical_index_is_rebuilt_from_the_store() {
    let index_dir = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("a.md"), "# A\nRebuild me please.\n").unwrap();
    {
        let kb =
            KnowledgeBase::open(index_dir.path(), KnowledgeConfig::default(), Arc::new(HashEmbedder::new(32))).unwrap();
        kb.ingest(&[docs.path().to_path_buf()], false).unwrap();
    }
    std::fs::remove_dir_all(index_dir.path().join("lexical")).unwrap();
    let kb =
        KnowledgeBase::open(index_dir.path(), KnowledgeConfig::default(), Arc::new(HashEmbedder::new(32))).unwrap();
    let hits = kb.search_mode("rebuild", 1, None, knowledge::SearchMode::Lexical).unwrap();
    assert_eq!(hits[0].document, "a.md");
}

#[test]
fn a_second_process_cannot_open_the_same_index() {
    let t = TestKb::new();
    let second = KnowledgeBase::open(t.index_dir.path(), KnowledgeConfig::default(), Arc::new(HashEmbedder::new(64)));
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
}

#[test]
fn failing_embedder_fails_the_ingestion_cleanly() {
    struct Failing;
    impl knowledge::Embedder for Failing {
        fn embed(&self, _: &[&str]) -> Result<Vec<Vec<f32>>, knowledge::EmbedError> {
            Err(knowledge::EmbedError::new("model exploded"))
        }
        fn dim(&self) -> usize {
            8
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn model_id(&self) -> String {
            "failing".into()
        }
    }
    let t = TestKb::with(Arc::new(Failing), KnowledgeConfig::default());
    t.write("a.md", "# A\ntext\n");
    let error = t.kb.ingest(&[t.docs.path().to_path_buf()], false).unwrap_err();
    assert!(error.to_string().contains("model exploded"), "{error}");
    let stats = t.kb.stats().unwrap();
    assert_eq!((stats.n_files, stats.n_chunks), (0, 0));
}

#[test]
fn bad_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = Arc::new(HashEmbedder::new(8));
    for config in [
        KnowledgeConfig { chunk_max_tokens: 4, ..KnowledgeConfig::default() },
        KnowledgeConfig { chunk_overlap_tokens: 500, ..KnowledgeConfig::default() },
        KnowledgeConfig { rrf_k: f32::NAN, ..KnowledgeConfig::default() },
    ] {
        assert!(matches!(KnowledgeBase::open(dir.path(), config, embedder.clone()), Err(Error::Config(_))));
    }
}
