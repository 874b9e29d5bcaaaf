//! `switchboard eval beir DIR [--json] [--limit N]`: the project's retrieval on a BEIR-format
//! dataset (`evals::beir`: corpus, queries, test judgements), e.g. `data/scifact`.
//!
//! Every corpus document becomes a Markdown file (`# {title}\n\n{text}\n`, named after its
//! `_id`) in a temporary folder, which is ingested into a fresh knowledge base in another
//! temporary folder, with the configured encoder and the default knowledge settings, always
//! with the embedded vector store (a configured Qdrant collection is left alone). The files are
//! ingested in parts so that progress can be shown on standard error. Both folders are removed
//! at the end.
//!
//! Every scored query is embedded once, then searched in each mode (hybrid, lexical, vector)
//! for the top 100 chunks, with no filter; chunks are mapped to their documents (a document
//! keeps its best rank), so a ranking holds at most 100 documents, often fewer. Latency is
//! the search time plus, for the modes that use vectors, the query's embedding time.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use evals::beir::{BeirAccumulator, BeirScores, Document, QueryScores, best_ranks};
use evals::retrieval::percentile;
use knowledge::{KnowledgeBase, SearchMode};
use serde_json::json;

use crate::BadInput;
use crate::config::Settings;

/// Chunks retrieved per search.
const SEARCH_K: usize = 100;
/// Documents per part of the ingestion (one progress line each).
const PART_DOCUMENTS: usize = 250;
/// Longest file stem made from a document id.
const MAX_STEM: usize = 80;
/// The modes, in the order they are reported.
const MODES: [SearchMode; 3] = [SearchMode::Hybrid, SearchMode::Lexical, SearchMode::Vector];

/// A file name for every document id, unique even on case-insensitive file systems: ASCII
/// letters, digits, `-`, `_` and `.` are kept, anything else becomes `_`, leading dots are
/// dropped (the knowledge base skips hidden files), the stem is cut at 80 characters, and a
/// name already taken (ignoring case) gets `~2`, `~3`... (`~` is never kept from an id).
pub fn file_names<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut used: HashSet<String> = HashSet::new();
    ids.into_iter()
        .map(|id| {
            let safe: String = id
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
                .collect();
            let mut stem: String = safe.trim_start_matches('.').chars().take(MAX_STEM).collect();
            if stem.is_empty() {
                stem = "doc".to_string();
            }
            let mut name = format!("{stem}.md");
            let mut n = 2;
            while !used.insert(name.to_ascii_lowercase()) {
                name = format!("{stem}~{n}.md");
                n += 1;
            }
            name
        })
        .collect()
}

/// A document as a Markdown file: its title (on one line) as the heading, then its text.
pub fn markdown(document: &Document) -> String {
    let title = document.title.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() { format!("{}\n", document.text) } else { format!("# {title}\n\n{}\n", document.text) }
}

/// Results of one mode.
struct ModeResults {
    mode: SearchMode,
    scores: BeirAccumulator,
    search_ms: Vec<f64>,
    documents_retrieved: usize,
}

pub fn run(settings: &Settings, dir: &Path, json: bool, limit: Option<usize>) -> anyhow::Result<()> {
    if limit == Some(0) {
        return Err(BadInput("--limit must be at least 1".into()).into());
    }
    let mut data = evals::beir::load(dir).map_err(|error| BadInput(error.to_string()))?;
    let n_scored = data.queries.len();
    if let Some(n) = limit {
        data.limit_queries(n);
    }
    eprintln!(
        "{}: {} documents ({}), {} queries with a relevant document ({}{}), {} judgements ({})",
        data.name,
        data.corpus.len(),
        data.corpus_path.display(),
        n_scored,
        data.queries_path.display(),
        if data.unjudged_queries > 0 {
            format!("; {} without one left out", data.unjudged_queries)
        } else {
            String::new()
        },
        data.n_judgements,
        data.qrels_path.display(),
    );
    if data.queries.len() < n_scored {
        eprintln!("--limit {}: scoring the first {} queries only", data.queries.len(), data.queries.len());
    }

    // The corpus as Markdown files, in parts of PART_DOCUMENTS.
    let corpus_dir = tempfile::Builder::new().prefix("switchboard-beir-corpus-").tempdir()?;
    let names = file_names(data.corpus.iter().map(|d| d.id.as_str()));
    let mut document_of_file: HashMap<&str, &str> = HashMap::with_capacity(names.len());
    let mut parts: Vec<(PathBuf, usize)> = Vec::new();
    for (part_idx, part) in data.corpus.chunks(PART_DOCUMENTS).enumerate() {
        let part_dir = corpus_dir.path().join(format!("part-{part_idx:05}"));
        std::fs::create_dir(&part_dir).with_context(|| format!("creating {}", part_dir.display()))?;
        for (offset, document) in part.iter().enumerate() {
            let name = &names[part_idx * PART_DOCUMENTS + offset];
            let path = part_dir.join(name);
            std::fs::write(&path, markdown(document)).with_context(|| format!("writing {}", path.display()))?;
            document_of_file.insert(name, &document.id);
        }
        parts.push((part_dir, part.len()));
    }

    // A fresh knowledge base, the configured encoder.
    let paths = crate::app::resolve_models(settings)?;
    let encoder = crate::app::load_embedder(&paths.encoder_dir)?;
    let index_dir = tempfile::Builder::new().prefix("switchboard-beir-index-").tempdir()?;
    let mut config = engine::retrieval::knowledge_config(&settings.knowledge)?;
    config.backend = knowledge::Backend::Embedded;
    let kb = KnowledgeBase::open(index_dir.path(), config, Arc::new(engine::retrieval::EncoderForKnowledge(encoder)))
        .with_context(|| format!("opening a knowledge base in {}", index_dir.path().display()))?;

    let started = Instant::now();
    let mut done = 0;
    let mut skipped = Vec::new();
    for (part_dir, n_documents) in &parts {
        let report = kb.ingest(std::slice::from_ref(part_dir), false).context("ingesting the corpus")?;
        skipped.extend(report.skipped);
        done += n_documents;
        let seconds = started.elapsed().as_secs_f64();
        let rate = done as f64 / seconds.max(1e-9);
        eprintln!(
            "ingested {done}/{} documents: {} chunks, {seconds:.0} s ({rate:.1} documents/s, about {:.0} s left)",
            data.corpus.len(),
            report.chunks_total,
            (data.corpus.len() - done) as f64 / rate.max(1e-9),
        );
    }
    let ingest_seconds = started.elapsed().as_secs_f64();
    for file in &skipped {
        eprintln!("skipped {}: {}", file.path.display(), file.reason);
    }
    let stats = kb.stats()?;
    if stats.n_chunks == 0 {
        return Err(BadInput(format!("no document of {} could be indexed", data.corpus_path.display())).into());
    }
    eprintln!(
        "ingested {} documents into {} chunks in {ingest_seconds:.1} s ({:.1} documents/s, {:.1} chunks/s; {})",
        stats.n_files,
        stats.n_chunks,
        stats.n_files as f64 / ingest_seconds,
        stats.n_chunks as f64 / ingest_seconds,
        stats.model_id,
    );

    let k = SEARCH_K.min(knowledge::MAX_K);
    let mut results: Vec<ModeResults> = MODES
        .iter()
        .map(|&mode| ModeResults {
            mode,
            scores: BeirAccumulator::default(),
            search_ms: Vec::new(),
            documents_retrieved: 0,
        })
        .collect();
    // Warm-up: the first search touches cold pages of the indexes.
    let warm_up = kb.embed_query("warm up")?;
    for mode in MODES {
        kb.search_with_embedding("warm up", &warm_up, k, None, mode)?;
    }
    let mut embed_ms = Vec::with_capacity(data.queries.len());
    let mut unknown_documents = 0;
    let searching = Instant::now();
    for (idx, query) in data.queries.iter().enumerate() {
        let relevant = data.relevant_to(&query.id);
        let started = Instant::now();
        let embedding = kb.embed_query(&query.text)?;
        let embed_time = started.elapsed().as_secs_f64() * 1000.0;
        embed_ms.push(embed_time);
        for result in &mut results {
            let started = Instant::now();
            let hits = kb.search_with_embedding(&query.text, &embedding, k, None, result.mode)?;
            let search_time = started.elapsed().as_secs_f64() * 1000.0;
            let documents = best_ranks(hits.iter().filter_map(|hit| {
                let document = document_of_file.get(hit.document.as_str()).copied();
                if document.is_none() {
                    unknown_documents += 1;
                }
                document
            }));
            let uses_vectors = result.mode != SearchMode::Lexical;
            result
                .scores
                .add(QueryScores::of(&documents, relevant), search_time + if uses_vectors { embed_time } else { 0.0 });
            result.search_ms.push(search_time);
            result.documents_retrieved += documents.len();
        }
        if (idx + 1) % 100 == 0 && idx + 1 < data.queries.len() {
            eprintln!("searched {}/{} queries", idx + 1, data.queries.len());
        }
    }
    if unknown_documents > 0 {
        eprintln!("warning: {unknown_documents} hits named a file that is not a corpus document");
    }
    eprintln!("searched {} queries in {:.1} s", data.queries.len(), searching.elapsed().as_secs_f64());

    let n_queries = data.queries.len();
    println!(
        "{}: {n_queries} queries, {} documents in {} chunks (ingested in {ingest_seconds:.1} s); top {k} chunks per search",
        data.name,
        data.corpus.len(),
        stats.n_chunks
    );
    println!(
        "{:<8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>12} {:>12} {:>6}",
        "mode", "nDCG@10", "R@1", "R@5", "R@10", "R@100", "MRR@10", "latency p50", "search p50", "docs"
    );
    for result in &results {
        let BeirScores { ndcg_at_10, recall_at_1, recall_at_5, recall_at_10, recall_at_100, mrr_at_10, latency_ms_p50 } =
            result.scores.scores();
        println!(
            "{:<8} {ndcg_at_10:>8.4} {recall_at_1:>7.4} {recall_at_5:>7.4} {recall_at_10:>7.4} {recall_at_100:>7.4} {mrr_at_10:>7.4} {latency_ms_p50:>9.2} ms {:>9.2} ms {:>6.1}",
            result.mode.name(),
            percentile(&result.search_ms, 50.0),
            result.documents_retrieved as f64 / n_queries.max(1) as f64,
        );
    }
    println!(
        "query embedding p50: {:.2} ms (in the latency of hybrid and vector); docs: distinct documents in the top {k} chunks, mean",
        percentile(&embed_ms, 50.0)
    );
    if json {
        let modes: serde_json::Map<String, serde_json::Value> =
            results.iter().map(|result| (result.mode.name().to_string(), json!(result.scores.scores()))).collect();
        let object = json!({
            "dataset": data.name,
            "n_queries": n_queries,
            "n_documents": data.corpus.len(),
            "n_chunks": stats.n_chunks,
            "modes": modes,
        });
        println!("{object}");
    }
    drop(kb);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_unique() {
        let names = file_names(["4983", "a/b", "a_b", "A_B", "../x", ".hidden", "", "é", "x~2", "x", "X"]);
        assert_eq!(
            names,
            [
                "4983.md",
                "a_b.md",
                "a_b~2.md",
                "A_B~3.md",
                "_x.md",
                "hidden.md",
                "doc.md",
                "_.md",
                "x_2.md",
                "x.md",
                "X~2.md"
            ]
        );
        let long = "y".repeat(300);
        assert_eq!(file_names([long.as_str()])[0].len(), MAX_STEM + 3);
    }

    #[test]
    fn documents_as_markdown() {
        let document = |title: &str, text: &str| Document { id: "1".into(), title: title.into(), text: text.into() };
        assert_eq!(markdown(&document("A  title\non two lines", "Body.")), "# A title on two lines\n\nBody.\n");
        assert_eq!(markdown(&document(" ", "Body.")), "Body.\n");
    }
}
