//! `switchboard ingest DIR...` and `switchboard eval retrieval --qa FILE [--json] [--compare]`.
//!
//! Both open the knowledge index under `DATA_DIR/knowledge` with the configured encoder.
//! `eval retrieval` first ingests the configured `knowledge.dirs` (incrementally, as the
//! server does at start), so it scores the same index the server answers from; then, per
//! question, it embeds the question once and searches with that vector (top 10, no filter).
//! Latency is the search time plus, for modes that use vectors, the question's embedding time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use evals::retrieval::{RetrievalScores, Retrieved, ScoreAccumulator, first_hit_rank, load_qa, percentile};
use knowledge::{KnowledgeBase, SearchMode};
use serde_json::json;

use crate::BadInput;
use crate::config::Settings;

/// Chunks retrieved per question (recall@1 and @5, MRR over these).
const EVAL_K: usize = 10;

fn load_encoder(settings: &Settings) -> anyhow::Result<Arc<inference::SentenceEmbedder>> {
    let paths = crate::app::resolve_models(settings)?;
    crate::app::load_embedder(&paths.encoder_dir)
}

/// Opens the index, turning "another process holds it" into a clear bad-input error.
fn open_index(settings: &Settings, encoder: Arc<inference::SentenceEmbedder>) -> anyhow::Result<KnowledgeBase> {
    engine::retrieval::open(&settings.knowledge, &settings.data_dir, encoder).map_err(|error| {
        let locked = error.chain().any(|cause| matches!(cause.downcast_ref(), Some(knowledge::Error::Locked { .. })));
        if locked {
            BadInput(format!(
                "the knowledge index in {} is in use by another switchboard process; stop it or pass --data-dir",
                settings.data_dir.display()
            ))
            .into()
        } else {
            error
        }
    })
}

pub fn ingest(settings: &Settings, dirs: &[PathBuf]) -> anyhow::Result<()> {
    for dir in dirs {
        if !dir.exists() {
            return Err(BadInput(format!("{} does not exist", dir.display())).into());
        }
    }
    let encoder = load_encoder(settings)?;
    let kb = open_index(settings, encoder)?;
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = kb.ingest(dirs, progress).map_err(|error| match error {
        knowledge::Error::MissingPath { path } => {
            BadInput(format!("{} does not exist or cannot be read", path.display())).into()
        }
        other => anyhow::Error::new(other).context("ingesting knowledge"),
    })?;
    for skipped in &report.skipped {
        eprintln!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    println!("{report}");
    Ok(())
}

/// Per-mode results of an evaluation.
struct ModeResults {
    mode: SearchMode,
    scores: ScoreAccumulator,
    search_ms: Vec<f64>,
    misses: Vec<String>,
}

pub fn eval_retrieval(settings: &Settings, qa: &Path, json: bool, compare: bool) -> anyhow::Result<()> {
    let items = load_qa(qa).map_err(|error| BadInput(error.to_string()))?;
    let encoder = load_encoder(settings)?;
    let kb = open_index(settings, encoder)?;
    let dirs = engine::retrieval::configured_dirs(&settings.knowledge, &settings.data_dir)?;
    let report = kb.ingest(&dirs, false).context("ingesting the configured knowledge folders")?;
    for skipped in &report.skipped {
        eprintln!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    if kb.stats()?.n_chunks == 0 {
        return Err(BadInput(
            "the knowledge index is empty: set knowledge.dirs or run `switchboard ingest DIR`".into(),
        )
        .into());
    }

    let modes: Vec<SearchMode> = if compare { SearchMode::ALL.to_vec() } else { vec![SearchMode::Hybrid] };
    let mut results: Vec<ModeResults> = modes
        .iter()
        .map(|&mode| ModeResults {
            mode,
            scores: ScoreAccumulator::default(),
            search_ms: Vec::new(),
            misses: Vec::new(),
        })
        .collect();

    // Warm-up: the first search touches cold pages of the indexes.
    let warm_up = kb.embed_query("warm up")?;
    for &mode in &modes {
        kb.search_with_embedding("warm up", &warm_up, EVAL_K, None, mode)?;
    }

    let mut embed_ms = Vec::with_capacity(items.len());
    for item in &items {
        let started = Instant::now();
        let embedding = kb.embed_query(&item.question)?;
        let embed_time = started.elapsed().as_secs_f64() * 1000.0;
        embed_ms.push(embed_time);
        for result in &mut results {
            let started = Instant::now();
            let hits = kb.search_with_embedding(&item.question, &embedding, EVAL_K, None, result.mode)?;
            let search_time = started.elapsed().as_secs_f64() * 1000.0;
            let retrieved: Vec<Retrieved<'_>> =
                hits.iter().map(|hit| Retrieved { document: &hit.document, text: &hit.text }).collect();
            let rank = first_hit_rank(item, &retrieved);
            let uses_vectors = result.mode != SearchMode::Lexical;
            result.scores.add(rank, search_time + if uses_vectors { embed_time } else { 0.0 });
            result.search_ms.push(search_time);
            if rank.is_none_or(|r| r > 5) {
                let top =
                    hits.first().map_or_else(|| "nothing".to_string(), |h| format!("{} ({})", h.document, h.section));
                result.misses.push(format!("{:?} (expected {}; top: {top})", item.question, item.source));
            }
        }
    }

    let hybrid = results.iter().find(|r| r.mode == SearchMode::Hybrid).context("hybrid results")?;
    let scores = hybrid.scores.scores();
    if json {
        let mut object = json!(scores);
        object["search_ms_p50"] = json!(percentile(&hybrid.search_ms, 50.0));
        object["search_ms_p95"] = json!(percentile(&hybrid.search_ms, 95.0));
        object["embed_ms_p50"] = json!(percentile(&embed_ms, 50.0));
        if compare {
            let mut by_mode = serde_json::Map::new();
            for result in &results {
                let mut mode_object = json!(result.scores.scores());
                mode_object["search_ms_p50"] = json!(percentile(&result.search_ms, 50.0));
                mode_object["search_ms_p95"] = json!(percentile(&result.search_ms, 95.0));
                by_mode.insert(result.mode.name().to_string(), mode_object);
            }
            object["compare"] = serde_json::Value::Object(by_mode);
        }
        println!("{object}");
        return Ok(());
    }
    println!("{} questions from {}, index of {} chunks", scores.n, qa.display(), kb.stats()?.n_chunks);
    println!(
        "{:<8} {:>10} {:>10} {:>7} {:>12} {:>12} {:>12}",
        "mode", "recall@1", "recall@5", "MRR", "latency p50", "latency p95", "search p95"
    );
    for result in &results {
        let RetrievalScores { recall_at_1, recall_at_5, mrr, latency_ms_p50, latency_ms_p95, .. } =
            result.scores.scores();
        println!(
            "{:<8} {recall_at_1:>10.3} {recall_at_5:>10.3} {mrr:>7.3} {latency_ms_p50:>9.2} ms {latency_ms_p95:>9.2} ms {:>9.2} ms",
            result.mode.name(),
            percentile(&result.search_ms, 95.0)
        );
    }
    println!("query embedding p50: {:.2} ms", percentile(&embed_ms, 50.0));
    for result in &results {
        if !result.misses.is_empty() {
            println!("\n{} misses at 5 ({}):", result.mode.name(), result.misses.len());
            for miss in &result.misses {
                println!("  {miss}");
            }
        }
    }
    Ok(())
}
