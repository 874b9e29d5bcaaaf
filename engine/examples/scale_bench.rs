//! Scale benchmark of the embedded backend: ingests a generated corpus of N chunks, then
//! measures query latency (excluding the query embedding) and the index size on disk.
//!
//! ```text
//! cargo run --release -p engine --example scale_bench -- --chunks 10000 [--embedder minilm|hash] [--queries 300] [--dir DIR]
//! ```
//!
//! The corpus: files of 10 sections, each section one chunk of 170-230 tokens mixing telecom
//! vocabulary (plans, prices, devices, places) with a Zipf-distributed vocabulary of 30,000
//! generated words, so posting lists and vectors look like real text. Queries are 4-9 words
//! taken from random sections, half of them with a word replaced by another.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use engine::retrieval::EncoderForKnowledge;
use knowledge::{Embedder, HashEmbedder, KnowledgeBase, KnowledgeConfig, SearchMode};

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Zipf-like: index i has weight ~ 1/(i+1).
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (((n as f64 + 1.0).powf(u)) - 1.0) as usize % n
    }
}

const DOMAIN: &[&str] = &[
    "plan",
    "bill",
    "payment",
    "roaming",
    "data",
    "refuel",
    "sim",
    "esim",
    "contract",
    "suspension",
    "line",
    "device",
    "invoice",
    "charge",
    "fee",
    "credit",
    "dispute",
    "extension",
    "network",
    "coverage",
    "outage",
    "hotspot",
    "voicemail",
    "porting",
    "number",
    "account",
    "customer",
    "balance",
    "allowance",
    "upgrade",
    "downgrade",
    "tablet",
    "router",
    "smartwatch",
    "tracker",
    "signal",
    "antenna",
    "tower",
    "5G",
    "LTE",
    "APN",
    "MMS",
    "SMS",
    "Wi-Fi",
    "PIN",
    "PUK",
    "activation",
    "termination",
    "renewal",
    "discount",
    "bundle",
    "family",
    "business",
    "prepaid",
    "postpaid",
];
const PLACES: &[&str] = &["Springfield", "Denver", "Austin", "Anytown", "Madrid", "Toronto", "Lisbon", "Osaka", "Lima"];
const PLANS: &[&str] = &["Basic Plan", "Premium Plan", "Unlimited Plus", "Family Share", "IoT Basic"];

fn vocabulary(rng: &mut Rng, n: usize) -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ter", "an", "vo", "ri", "sel", "po", "du", "ne", "gra", "tis", "mon", "el", "ba", "cor",
        "fi", "lu", "ven", "sa", "tor", "pe", "qua", "rin", "de", "mo", "zu", "chi", "nor",
    ];
    (0..n)
        .map(|_| {
            let n_syllables = 2 + rng.below(3);
            (0..n_syllables).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect::<String>()
        })
        .collect()
}

/// A section of 170-230 tokens of the embedder: one chunk each (two never fit in one).
fn section_text(rng: &mut Rng, vocab: &[String], count_tokens: &dyn Fn(&str) -> usize) -> String {
    let target = 170 + rng.below(60);
    let mut words: Vec<String> = Vec::new();
    loop {
        if words.len().is_multiple_of(10) && count_tokens(&words.join(" ")) >= target {
            break;
        }
        match rng.below(10) {
            0..=2 => words.push(DOMAIN[rng.below(DOMAIN.len())].to_string()),
            3 => words.push(format!("${}", 5 + rng.below(120))),
            4 if rng.below(4) == 0 => words.push(PLANS[rng.below(PLANS.len())].to_string()),
            4 => words.push(PLACES[rng.below(PLACES.len())].to_string()),
            _ => words.push(vocab[rng.zipf(vocab.len())].clone()),
        }
        if rng.below(12) == 0
            && let Some(last) = words.last_mut()
        {
            last.push('.');
        }
    }
    let mut text = words.join(" ");
    text.push('.');
    text
}

fn generate(dir: &Path, n_chunks: usize, seed: u64, count_tokens: &dyn Fn(&str) -> usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let vocab = vocabulary(&mut rng, 30_000);
    let n_files = n_chunks.div_ceil(10);
    let mut samples = Vec::new();
    for file_idx in 0..n_files {
        let folder = dir.join(format!("topic-{:02}", file_idx % 40));
        std::fs::create_dir_all(&folder).unwrap();
        let mut doc = format!("# {} guide {file_idx}\n", DOMAIN[file_idx % DOMAIN.len()]);
        let n_sections = 10.min(n_chunks - file_idx * 10);
        for section_idx in 0..n_sections {
            let text = section_text(&mut rng, &vocab, count_tokens);
            if rng.below(20) == 0 {
                samples.push(text.clone());
            }
            doc.push_str(&format!(
                "\n## {} {} {section_idx}\n{text}\n",
                DOMAIN[rng.below(DOMAIN.len())],
                vocab[rng.below(500)]
            ));
        }
        std::fs::write(folder.join(format!("doc-{file_idx:06}.md")), doc).unwrap();
    }
    samples
}

fn queries(samples: &[String], n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let words: Vec<&str> = samples[rng.below(samples.len())].split_whitespace().collect();
            let len = 4 + rng.below(6);
            let start = rng.below(words.len().saturating_sub(len).max(1));
            let mut query: Vec<String> =
                words[start..(start + len).min(words.len())].iter().map(|w| w.to_string()).collect();
            if rng.below(2) == 0 {
                let idx = rng.below(query.len());
                query[idx] = DOMAIN[rng.below(DOMAIN.len())].to_string();
            }
            query.join(" ")
        })
        .collect()
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let path = e.path();
            if path.is_dir() { dir_size(&path) } else { e.metadata().map_or(0, |m| m.len()) }
        })
        .sum()
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let n_chunks: usize = arg("--chunks").and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let n_queries: usize = arg("--queries").and_then(|v| v.parse().ok()).unwrap_or(300);
    let embedder_name = arg("--embedder").unwrap_or_else(|| "minilm".into());
    let scratch = tempfile::tempdir().unwrap();
    let base: PathBuf = arg("--dir").map(PathBuf::from).unwrap_or_else(|| scratch.path().to_path_buf());
    let corpus_dir = base.join("corpus");
    let index_dir = base.join("index");

    let embedder: Arc<dyn Embedder> = match embedder_name.as_str() {
        "hash" => Arc::new(HashEmbedder::new(384)),
        _ => {
            let models = inference::ensure_default_models(&inference::default_models_dir()).unwrap();
            Arc::new(EncoderForKnowledge(Arc::new(inference::SentenceEmbedder::load(&models.encoder_dir).unwrap())))
        }
    };
    let started = Instant::now();
    let count_tokens = |text: &str| embedder.count_tokens(text);
    let samples = generate(&corpus_dir, n_chunks, 42, &count_tokens);
    eprintln!("generated {n_chunks} chunks in {:.1} s", started.elapsed().as_secs_f64());

    let kb = KnowledgeBase::open(&index_dir, KnowledgeConfig::default(), embedder.clone()).unwrap();
    let report = kb.ingest(std::slice::from_ref(&corpus_dir), true).unwrap();
    let ingest_seconds = report.seconds;
    let chunks = kb.stats().unwrap().n_chunks;
    eprintln!("{report}");
    drop(kb);
    let reopen_started = Instant::now();
    let kb = KnowledgeBase::open(&index_dir, KnowledgeConfig::default(), embedder.clone()).unwrap();
    let open_seconds = reopen_started.elapsed().as_secs_f64();
    let reingest = kb.ingest(std::slice::from_ref(&corpus_dir), false).unwrap();

    let queries = queries(&samples, n_queries, 7);
    let embeddings: Vec<Vec<f32>> = queries.iter().map(|q| kb.embed_query(q).unwrap().to_vec()).collect();
    for (query, embedding) in queries.iter().zip(&embeddings).take(20) {
        kb.search_with_embedding(query, embedding, 5, None, SearchMode::Hybrid).unwrap();
    }
    let mut lines = Vec::new();
    for mode in [SearchMode::Lexical, SearchMode::Vector, SearchMode::Hybrid] {
        let mut times = Vec::with_capacity(queries.len());
        for (query, embedding) in queries.iter().zip(&embeddings) {
            let started = Instant::now();
            let hits = kb.search_with_embedding(query, embedding, 5, None, mode).unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(hits);
        }
        let (p50, p95) = (percentile(&mut times, 50.0), percentile(&mut times, 95.0));
        lines.push(format!("\"{}\": {{\"p50_ms\": {p50:.3}, \"p95_ms\": {p95:.3}}}", mode.name()));
    }
    let store_bytes = dir_size(&index_dir.join("store"));
    let lexical_bytes = dir_size(&index_dir.join("lexical"));
    println!(
        "{{\"chunks\": {chunks}, \"embedder\": \"{embedder_name}\", \"ingest_seconds\": {ingest_seconds:.1}, \"ingest_chunks_per_s\": {:.1}, \"reingest_unchanged_seconds\": {:.2}, \"open_seconds\": {open_seconds:.2}, \"query_ms_excluding_embedding\": {{{}}}, \"index_mb\": {:.1}, \"store_mb\": {:.1}, \"lexical_mb\": {:.1}, \"rss_mb\": {:.0}}}",
        chunks as f64 / ingest_seconds,
        reingest.seconds,
        lines.join(", "),
        (store_bytes + lexical_bytes) as f64 / 1e6,
        store_bytes as f64 / 1e6,
        lexical_bytes as f64 / 1e6,
        rss_mb()
    );
}
