//! Retrieval tuning: scores the demo pack with the real encoder under settings taken from the
//! environment (defaults: `KnowledgeConfig::default()`), per mode, and lists the misses.
//!
//! ```text
//! MAX=250 OVERLAP=32 OW=0.5 RRF_K=20 LW=1 VW=2 SB=0.5 TB=0.25 [NOSYN=1] [QA=file.jsonl] [DIR=index-dir] \
//!     [VERBOSE=1 (misses at 1)] [TABLE=1 (ranks per question)] \
//!     cargo run --release -p engine --example tune_retrieval
//! ```
//!
//! `switchboard eval retrieval` is the official score; this tool exists to compare settings
//! quickly (an index directory is reused while the chunking settings stay the same).
use std::sync::Arc;

use engine::retrieval::EncoderForKnowledge;
use evals::retrieval::{Retrieved, ScoreAccumulator, first_hit_rank, load_qa};
use knowledge::{KnowledgeBase, KnowledgeConfig, SearchMode};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let models = inference::ensure_default_models(&inference::default_models_dir()).unwrap();
    let embedder =
        Arc::new(EncoderForKnowledge(Arc::new(inference::SentenceEmbedder::load(&models.encoder_dir).unwrap())));
    let d = KnowledgeConfig::default();
    let config = KnowledgeConfig {
        chunk_max_tokens: env("MAX", d.chunk_max_tokens),
        chunk_overlap_tokens: env("OVERLAP", d.chunk_overlap_tokens),
        fusion_candidates: env("CANDIDATES", d.fusion_candidates),
        rrf_k: env("RRF_K", d.rrf_k),
        lexical_weight: env("LW", d.lexical_weight),
        vector_weight: env("VW", d.vector_weight),
        section_boost: env("SB", d.section_boost),
        title_boost: env("TB", d.title_boost),
        outline_weight: env("OW", d.outline_weight),
        synonyms: if std::env::var("NOSYN").is_ok() { Vec::new() } else { KnowledgeConfig::default().synonyms },
        ..KnowledgeConfig::default()
    };
    let dir = std::path::PathBuf::from(std::env::var("DIR").unwrap_or("/tmp/kb_scratch/tune-index".into()));
    let kb = KnowledgeBase::open(&dir, config, embedder).unwrap();
    let pack = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packs/telco");
    let report = kb.ingest(&[pack], false).unwrap();
    eprintln!("{report}");
    let qa = std::env::var("QA").unwrap_or(concat!(env!("CARGO_MANIFEST_DIR"), "/../evals/qa/telco.jsonl").into());
    let items = load_qa(std::path::Path::new(&qa)).unwrap();
    let verbose = std::env::var("VERBOSE").is_ok();
    if std::env::var("TABLE").is_ok() {
        for item in &items {
            let embedding = kb.embed_query(&item.question).unwrap();
            let ranks: Vec<String> = SearchMode::ALL
                .iter()
                .map(|&mode| {
                    let hits = kb.search_with_embedding(&item.question, &embedding, 10, None, mode).unwrap();
                    let retrieved: Vec<Retrieved<'_>> =
                        hits.iter().map(|h| Retrieved { document: &h.document, text: &h.text }).collect();
                    let top =
                        hits.first().map(|h| format!("{:.2}", h.lexical_score.unwrap_or(h.score))).unwrap_or_default();
                    format!("{:>2} {:>5}", first_hit_rank(item, &retrieved).map_or("-".into(), |r| r.to_string()), top)
                })
                .collect();
            println!("{} | {:?}", ranks.join(" | "), item.question);
        }
        return;
    }
    for mode in SearchMode::ALL {
        let mut acc = ScoreAccumulator::default();
        let mut misses = Vec::new();
        for item in &items {
            let embedding = kb.embed_query(&item.question).unwrap();
            let hits = kb.search_with_embedding(&item.question, &embedding, 10, None, mode).unwrap();
            let retrieved: Vec<Retrieved<'_>> =
                hits.iter().map(|h| Retrieved { document: &h.document, text: &h.text }).collect();
            let rank = first_hit_rank(item, &retrieved);
            acc.add(rank, 0.0);
            if rank.is_none_or(|r| r > if verbose { 1 } else { 5 }) {
                misses.push(format!(
                    "  [{}] {:?} -> want {} | got {}",
                    rank.map_or("-".to_string(), |r| r.to_string()),
                    item.question,
                    item.source,
                    hits.iter().take(3).map(|h| h.document.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        let s = acc.scores();
        println!("{:<8} r@1 {:.3} r@5 {:.3} mrr {:.3}", mode.name(), s.recall_at_1, s.recall_at_5, s.mrr);
        if mode == SearchMode::Hybrid || std::env::var("ALL").is_ok() {
            for m in misses {
                println!("{m}");
            }
        }
    }
}
