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
    let Some(config) = qdrant_config("switchboard-test") else { return };
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
    drop_collection(config);
}

/// Two instances (two data folders, the knowledge folder at two different paths) on one
/// collection: the second answers from what the first ingested, lexical search included;
/// unchanged files are not written again; a change made by one is picked up by the other's
/// refresh; an instance with other chunking is refused and the collection is left whole.
#[test]
fn instances_share_one_collection() {
    let Some(config) = qdrant_config("switchboard-shared") else { return };
    let write_pack = |root: &std::path::Path, late_fee: &str| {
        let pack = root.join("pack");
        std::fs::create_dir_all(pack.join("billing")).unwrap();
        std::fs::create_dir_all(pack.join("roaming")).unwrap();
        std::fs::write(pack.join("billing/late.md"), format!("# Late fees\nA late fee of {late_fee} applies.\n"))
            .unwrap();
        std::fs::write(pack.join("roaming/zones.md"), "# Zones\nZone 2 calls cost $0.25 a minute.\n").unwrap();
        pack
    };
    let (docs_a, docs_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (pack_a, pack_b) = (write_pack(docs_a.path(), "$10"), write_pack(docs_b.path(), "$10"));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let embedder = Arc::new(HashEmbedder::new(64));

    let a = KnowledgeBase::open(dir_a.path(), config.clone(), embedder.clone()).unwrap();
    assert_eq!(a.ingest(std::slice::from_ref(&pack_a), false).unwrap().added, 2);
    let b = KnowledgeBase::open(dir_b.path(), config.clone(), embedder.clone()).unwrap();
    assert_eq!((b.stats().unwrap().n_files, b.stats().unwrap().n_chunks), (2, a.stats().unwrap().n_chunks));
    let hit = &b.search_mode("late fee", 1, None, SearchMode::Lexical).unwrap()[0];
    assert_eq!((hit.document.as_str(), hit.path.to_str().unwrap()), ("late.md", "pack/billing/late.md"));
    assert!(hit.text.contains("$10"), "{}", hit.text);
    assert_eq!(b.search("late fee", 1, None).unwrap()[0].document, "late.md");
    let report = b.ingest(std::slice::from_ref(&pack_b), false).unwrap();
    assert_eq!((report.unchanged, report.added, report.updated), (2, 0, 0), "the same files at another path");
    assert!(!b.refresh().unwrap(), "nothing changed");

    write_pack(docs_a.path(), "$15");
    assert_eq!(a.ingest(std::slice::from_ref(&pack_a), false).unwrap().updated, 1);
    assert!(b.refresh().unwrap(), "B sees A's change");
    let hit = &b.search_mode("late fee", 1, None, SearchMode::Lexical).unwrap()[0];
    assert!(hit.text.contains("$15"), "{}", hit.text);
    assert_eq!(b.stats().unwrap().n_chunks, a.stats().unwrap().n_chunks);
    assert!(!b.refresh().unwrap());

    let other = KnowledgeConfig { chunk_max_tokens: 64, chunk_overlap_tokens: 8, ..config.clone() };
    let dir_c = tempfile::tempdir().unwrap();
    let error = KnowledgeBase::open(dir_c.path(), other, embedder.clone()).unwrap_err().to_string();
    assert!(error.contains("chunks of 64 tokens") && error.contains("nothing was deleted"), "{error}");
    let error = KnowledgeBase::open(dir_c.path(), config.clone(), Arc::new(HashEmbedder::new(32))).unwrap_err();
    assert!(error.to_string().contains("32"), "{error}");
    assert_eq!(b.search("late fee", 1, None).unwrap()[0].document, "late.md", "the collection is whole");
    assert!(b.refresh().is_ok());

    drop((a, b));
    drop_collection(config);
}

/// A configuration on a new collection of the server `QDRANT_URL` names (`None`: not set).
fn qdrant_config(prefix: &str) -> Option<KnowledgeConfig> {
    let url = qdrant_url()?;
    let collection = format!("{prefix}-{}-{}", std::process::id(), rand_suffix());
    Some(KnowledgeConfig {
        backend: Backend::Qdrant { url, api_key: std::env::var("QDRANT_API_KEY").ok(), collection },
        ..KnowledgeConfig::default()
    })
}

/// Deletes the test's collection (64-dimensional, as the tests' embedder).
fn drop_collection(config: KnowledgeConfig) {
    let Backend::Qdrant { url, api_key, collection } = config.backend else { unreachable!() };
    knowledge::qdrant::QdrantVectors::open(&url, api_key.as_deref(), &collection, 64)
        .unwrap()
        .drop_collection()
        .unwrap();
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64 % 1_000_000)
}
