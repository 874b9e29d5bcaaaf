//! Against a real Qdrant server: runs only when `QDRANT_URL` (gRPC, e.g. http://localhost:6334)
//! is set, and says so when it is not.

use std::sync::Arc;

use knowledge::{Backend, Filter, HashEmbedder, KnowledgeBase, KnowledgeConfig, SearchMode};

fn qdrant_url() -> Option<String> {
    match std::env::var("QDRANT_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("qdrant integration test NOT RUN: set QDRANT_URL to a Qdrant gRPC endpoint to run it");
            None
        }
    }
}

#[test]
fn qdrant_backend_end_to_end() {
    let Some(url) = qdrant_url() else { return };
    let collection = format!("switchboard-test-{}-{}", std::process::id(), rand_suffix());
    let config = KnowledgeConfig {
        backend: Backend::Qdrant { url, api_key: std::env::var("QDRANT_API_KEY").ok(), collection },
        ..KnowledgeConfig::default()
    };
    let index_dir = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(docs.path().join("billing")).unwrap();
    std::fs::create_dir_all(docs.path().join("roaming")).unwrap();
    std::fs::write(docs.path().join("billing/late.md"), "# Late fees\nA late fee of $10 applies.\n").unwrap();
    std::fs::write(docs.path().join("roaming/zones.md"), "# Zones\nZone 2 calls cost $0.25 a minute.\n").unwrap();

    let kb = KnowledgeBase::open(index_dir.path(), config.clone(), Arc::new(HashEmbedder::new(64))).unwrap();
    let report = kb.ingest(&[docs.path().to_path_buf()], false).unwrap();
    assert_eq!(report.added, 2);
    let hits = kb.search_mode("late fee", 2, None, SearchMode::Vector).unwrap();
    assert_eq!(hits[0].document, "late.md");
    let filtered = kb.search_mode("late fee", 5, Some(&Filter::doc_type("roaming")), SearchMode::Vector).unwrap();
    assert!(filtered.iter().all(|h| h.doc_type == "roaming") && !filtered.is_empty());
    assert_eq!(kb.search("late fee", 1, None).unwrap()[0].document, "late.md");

    std::fs::remove_file(docs.path().join("billing/late.md")).unwrap();
    assert_eq!(kb.ingest(&[docs.path().to_path_buf()], false).unwrap().deleted, 1);
    assert!(kb.search_mode("late fee", 5, None, SearchMode::Vector).unwrap().iter().all(|h| h.document != "late.md"));
    drop(kb);
    let Backend::Qdrant { url, api_key, collection } = config.backend else { unreachable!() };
    knowledge::qdrant::QdrantVectors::open(&url, api_key.as_deref(), &collection, 64)
        .unwrap()
        .drop_collection()
        .unwrap();
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64 % 1_000_000)
}
