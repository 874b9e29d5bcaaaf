//! BEIR-format retrieval benchmarks: reading a dataset folder and the standard metrics.
//!
//! A BEIR dataset folder holds three files:
//!
//! - the corpus, `corpus.jsonl` or `corpus.jsonl.gz` (gzip is recognised by its magic bytes,
//!   whatever the name): one `{"_id": s, "title": s, "text": s}` per line; other keys (such as
//!   `metadata`) are ignored, a missing or null `title` or `text` is empty;
//! - the queries, `queries.jsonl`: one `{"_id": s, "text": s}` per line;
//! - the judgements, `qrels-test.tsv` or BEIR's own layout `qrels/test.tsv`: the header
//!   `query-id<TAB>corpus-id<TAB>score`, then one judged pair per line. A score above 0 means
//!   relevant (relevance is binary here); 0 or below, not relevant.
//!
//! Blank lines are skipped and a trailing `\r` is ignored. Ids may be JSON strings or integers.
//! Every query and document named by a judgement must exist; ids must be unique. As in BEIR,
//! only the queries with at least one relevant document are scored (a queries file often holds
//! every split's queries), in the queries file's order.
//!
//! Metrics, per query, over a ranking of *documents* (a document found through several chunks
//! keeps its best rank, see [`best_ranks`]; ties in score keep the order the search returned,
//! whereas pytrec_eval, which BEIR uses, breaks them by document id):
//!
//! - nDCG@10 with binary gains: DCG = Σ_{i ≤ 10, doc i relevant} 1 / log2(i + 1), divided by
//!   the DCG of an ideal ranking (all relevant documents first, at most 10);
//! - recall@k: the share of the query's relevant documents found in the top k;
//! - MRR@10: 1 / the rank of the first relevant document in the top 10, 0 when none is.
//!
//! All are averaged over queries (a macro average, as BEIR reports them).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Size caps of a dataset; [`Limits::default`] is generous for BEIR-sized data sets that can be
/// ingested on one machine, and stops runaway input (e.g. a gzip bomb) early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of the corpus file.
    pub corpus_bytes: u64,
    /// Documents in the corpus.
    pub documents: usize,
    /// Bytes of the queries file.
    pub queries_bytes: u64,
    /// Queries in the queries file.
    pub queries: usize,
    /// Bytes of the judgements file.
    pub qrels_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            corpus_bytes: 1 << 30,
            documents: 1_000_000,
            queries_bytes: 256 << 20,
            queries: 1_000_000,
            qrels_bytes: 256 << 20,
        }
    }
}

/// One corpus document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// One query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub text: String,
}

/// A dataset read and checked by [`load`].
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The folder's name, e.g. `scifact`.
    pub name: String,
    /// The files read.
    pub corpus_path: PathBuf,
    pub queries_path: PathBuf,
    pub qrels_path: PathBuf,
    /// Every document, in file order.
    pub corpus: Vec<Document>,
    /// The queries that are scored (at least one relevant document), in file order.
    pub queries: Vec<Query>,
    /// Relevant document ids of every scored query.
    pub relevant: HashMap<String, HashSet<String>>,
    /// Queries of the queries file left out because no judgement marks a document relevant.
    pub unjudged_queries: usize,
    /// Judgement lines read (relevant or not).
    pub n_judgements: usize,
}

impl Dataset {
    /// Keeps only the first `n` scored queries.
    pub fn limit_queries(&mut self, n: usize) {
        self.queries.truncate(n);
        let kept: HashSet<&str> = self.queries.iter().map(|q| q.id.as_str()).collect();
        self.relevant.retain(|id, _| kept.contains(id.as_str()));
    }

    /// The relevant documents of a query (empty for an unknown id).
    pub fn relevant_to(&self, query_id: &str) -> &HashSet<String> {
        static NONE: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
        self.relevant.get(query_id).unwrap_or_else(|| NONE.get_or_init(HashSet::new))
    }
}

/// Why a dataset could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BeirError {
    #[error("{dir} is not a folder")]
    NotAFolder { dir: PathBuf },
    #[error("{dir} has no {what} (expected {expected})")]
    Missing { dir: PathBuf, what: &'static str, expected: String },
    #[error("{dir} has both {first} and {second}: keep one")]
    Ambiguous { dir: PathBuf, first: String, second: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is larger than {limit} bytes{unit}")]
    TooLarge { path: PathBuf, limit: u64, unit: &'static str },
    #[error("{path} has more than {limit} {what}")]
    TooMany { path: PathBuf, limit: usize, what: &'static str },
    #[error("{path} line {line}: {message}")]
    Line { path: PathBuf, line: usize, message: String },
    #[error("{path} has no {what}")]
    Empty { path: PathBuf, what: &'static str },
}

/// Reads and checks the dataset in `dir` with the default [`Limits`].
pub fn load(dir: &Path) -> Result<Dataset, BeirError> {
    load_with_limits(dir, &Limits::default())
}

/// Reads and checks the dataset in `dir`.
pub fn load_with_limits(dir: &Path, limits: &Limits) -> Result<Dataset, BeirError> {
    if !dir.is_dir() {
        return Err(BeirError::NotAFolder { dir: dir.to_path_buf() });
    }
    let corpus_path = find_one(dir, "corpus", &["corpus.jsonl", "corpus.jsonl.gz"])?;
    let queries_path = find_one(dir, "queries", &["queries.jsonl"])?;
    let qrels_path = find_one(dir, "judgements", &["qrels-test.tsv", "qrels/test.tsv"])?;

    let corpus_text = read_text(&corpus_path, limits.corpus_bytes)?;
    let corpus = parse_corpus(&corpus_text, &corpus_path, limits.documents)?;
    drop(corpus_text);
    let queries_text = read_text(&queries_path, limits.queries_bytes)?;
    let all_queries = parse_queries(&queries_text, &queries_path, limits.queries)?;
    let qrels_text = read_text(&qrels_path, limits.qrels_bytes)?;
    let document_ids: HashSet<&str> = corpus.iter().map(|d| d.id.as_str()).collect();
    let query_ids: HashSet<&str> = all_queries.iter().map(|q| q.id.as_str()).collect();
    let judgements = parse_qrels(&qrels_text, &qrels_path, &query_ids, &document_ids)?;

    let n_judgements = judgements.len();
    let mut relevant: HashMap<String, HashSet<String>> = HashMap::new();
    for judgement in judgements.into_iter().filter(|j| j.score > 0) {
        relevant.entry(judgement.query_id).or_default().insert(judgement.document_id);
    }
    let n_all = all_queries.len();
    let queries: Vec<Query> = all_queries.into_iter().filter(|q| relevant.contains_key(&q.id)).collect();
    if queries.is_empty() {
        return Err(BeirError::Empty { path: qrels_path, what: "judgement with a score above 0" });
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    Ok(Dataset {
        name,
        corpus_path,
        queries_path,
        qrels_path,
        corpus,
        unjudged_queries: n_all - queries.len(),
        queries,
        relevant,
        n_judgements,
    })
}

/// The one file among `names` that exists in `dir`.
fn find_one(dir: &Path, what: &'static str, names: &[&str]) -> Result<PathBuf, BeirError> {
    let found: Vec<&str> = names.iter().copied().filter(|name| dir.join(name).is_file()).collect();
    match found.as_slice() {
        [] => Err(BeirError::Missing { dir: dir.to_path_buf(), what, expected: names.join(" or ") }),
        [one] => Ok(dir.join(one)),
        [first, second, ..] => {
            Err(BeirError::Ambiguous { dir: dir.to_path_buf(), first: first.to_string(), second: second.to_string() })
        }
    }
}

/// Reads a UTF-8 text file of at most `limit` bytes, decompressing it first if it is gzip.
pub fn read_text(path: &Path, limit: u64) -> Result<String, BeirError> {
    let read_error = |source| BeirError::Read { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut magic = [0u8; 2];
    let mut n_magic = 0;
    while n_magic < 2 {
        match file.read(&mut magic[n_magic..]).map_err(read_error)? {
            0 => break,
            n => n_magic += n,
        }
    }
    let head = std::io::Cursor::new(magic[..n_magic].to_vec());
    let compressed = magic[..n_magic] == [0x1f, 0x8b];
    let mut bytes = Vec::new();
    if compressed {
        let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(head.chain(file)));
        decoder.take(limit + 1).read_to_end(&mut bytes).map_err(read_error)?;
    } else {
        head.chain(file).take(limit + 1).read_to_end(&mut bytes).map_err(read_error)?;
    }
    if bytes.len() as u64 > limit {
        let unit = if compressed { " uncompressed" } else { "" };
        return Err(BeirError::TooLarge { path: path.to_path_buf(), limit, unit });
    }
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        BeirError::Line { path: path.to_path_buf(), line, message: "not valid UTF-8".into() }
    })
}

/// An id as BEIR files write it: a string, or (in a few data sets) an integer.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(serde_json::Number),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Text(text) => text,
            Id::Number(number) => number.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id")]
    id: Id,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: Id,
    text: String,
}

/// Non-blank lines with their 1-based numbers, a trailing `\r` removed.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(idx, line)| (idx + 1, line.strip_suffix('\r').unwrap_or(line)))
        .filter(|(_, line)| !line.trim().is_empty())
}

/// A corpus or queries line: its id, and the item it makes (or why the line is refused).
trait IdLine: serde::de::DeserializeOwned {
    type Item;
    /// What is left of the line once its id is taken.
    type Rest;
    fn split(self) -> (Id, Self::Rest);
    fn item(id: String, rest: Self::Rest) -> Result<Self::Item, String>;
}

impl IdLine for CorpusLine {
    type Item = Document;
    type Rest = (Option<String>, Option<String>);
    fn split(self) -> (Id, Self::Rest) {
        (self.id, (self.title, self.text))
    }
    fn item(id: String, (title, text): Self::Rest) -> Result<Document, String> {
        Ok(Document { id, title: title.unwrap_or_default(), text: text.unwrap_or_default() })
    }
}

impl IdLine for QueryLine {
    type Item = Query;
    type Rest = String;
    fn split(self) -> (Id, String) {
        (self.id, self.text)
    }
    fn item(id: String, text: String) -> Result<Query, String> {
        if text.trim().is_empty() {
            return Err(format!("query {id:?} has an empty text"));
        }
        Ok(Query { id, text })
    }
}

/// The items of a corpus or queries file: ids non-empty and unique, at most `max`, at least
/// one (`what` names them in errors, `line_kind` a line that does not parse).
fn parse_id_lines<L: IdLine>(
    text: &str,
    path: &Path,
    max: usize,
    what: &'static str,
    line_kind: &str,
) -> Result<Vec<L::Item>, BeirError> {
    let line_error = |line, message: String| BeirError::Line { path: path.to_path_buf(), line, message };
    let mut items = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line_no, line) in numbered_lines(text) {
        let parsed: L =
            serde_json::from_str(line).map_err(|e| line_error(line_no, format!("not {line_kind} ({e})")))?;
        let (id, rest) = parsed.split();
        let id = id.into_string();
        if id.trim().is_empty() {
            return Err(line_error(line_no, "empty _id".into()));
        }
        let item = L::item(id.clone(), rest).map_err(|message| line_error(line_no, message))?;
        if let Some(first) = seen.insert(id.clone(), line_no) {
            return Err(line_error(line_no, format!("_id {id:?} already used on line {first}")));
        }
        if items.len() == max {
            return Err(BeirError::TooMany { path: path.to_path_buf(), limit: max, what });
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(BeirError::Empty { path: path.to_path_buf(), what });
    }
    Ok(items)
}

/// Parses a corpus file's text (`path` only names it in errors).
pub fn parse_corpus(text: &str, path: &Path, max_documents: usize) -> Result<Vec<Document>, BeirError> {
    parse_id_lines::<CorpusLine>(text, path, max_documents, "documents", "a corpus document")
}

/// Parses a queries file's text (`path` only names it in errors).
pub fn parse_queries(text: &str, path: &Path, max_queries: usize) -> Result<Vec<Query>, BeirError> {
    parse_id_lines::<QueryLine>(text, path, max_queries, "queries", "a query")
}

/// One line of a judgements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub query_id: String,
    pub document_id: String,
    pub score: i64,
}

/// The header line of a judgements file.
pub const QRELS_HEADER: &str = "query-id\tcorpus-id\tscore";

/// Parses a judgements file's text, checking that every query and document it names exists
/// (`path` only names it in errors).
pub fn parse_qrels(
    text: &str,
    path: &Path,
    query_ids: &HashSet<&str>,
    document_ids: &HashSet<&str>,
) -> Result<Vec<Judgement>, BeirError> {
    let line_error = |line, message: String| BeirError::Line { path: path.to_path_buf(), line, message };
    let mut lines = numbered_lines(text);
    match lines.next() {
        Some((_, header)) if header.trim() == QRELS_HEADER => {}
        Some((line_no, _)) => {
            return Err(line_error(line_no, "expected the header query-id<TAB>corpus-id<TAB>score".into()));
        }
        None => return Err(BeirError::Empty { path: path.to_path_buf(), what: "judgements" }),
    }
    let mut judgements = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (line_no, line) in lines {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [query_id, document_id, score] = fields[..] else {
            return Err(line_error(line_no, format!("expected 3 tab-separated fields, found {}", fields.len())));
        };
        let score: i64 =
            score.parse().map_err(|_| line_error(line_no, format!("score {score:?} is not an integer")))?;
        if !query_ids.contains(query_id) {
            return Err(line_error(line_no, format!("unknown query {query_id:?} (not in the queries file)")));
        }
        if !document_ids.contains(document_id) {
            return Err(line_error(line_no, format!("unknown document {document_id:?} (not in the corpus)")));
        }
        if let Some(first) = seen.insert((query_id.to_string(), document_id.to_string()), line_no) {
            return Err(line_error(
                line_no,
                format!("query {query_id:?} and document {document_id:?} already judged on line {first}"),
            ));
        }
        judgements.push(Judgement { query_id: query_id.to_string(), document_id: document_id.to_string(), score });
    }
    if judgements.is_empty() {
        return Err(BeirError::Empty { path: path.to_path_buf(), what: "judgements" });
    }
    Ok(judgements)
}

/// Documents in the order of their best rank: `ranked` lists the document of every retrieved
/// chunk, best first; a document seen again later (another of its chunks) is dropped.
pub fn best_ranks<'a>(ranked: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    ranked.into_iter().filter(|document| seen.insert(*document)).collect()
}

/// nDCG@k with binary gains (1 for a relevant document, 0 otherwise) and log2 discounts;
/// 0 when nothing is relevant. `ranked` must hold each document once.
pub fn ndcg_at(k: usize, ranked: &[&str], relevant: &HashSet<String>) -> f64 {
    let discount = |rank: usize| 1.0 / ((rank + 1) as f64).log2();
    let ideal: f64 = (1..=relevant.len().min(k)).map(discount).sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, document)| relevant.contains(**document))
        .map(|(idx, _)| discount(idx + 1))
        .sum();
    dcg / ideal
}

/// The share of the relevant documents found in the top `k`; 0 when nothing is relevant.
/// `ranked` must hold each document once.
pub fn recall_at(k: usize, ranked: &[&str], relevant: &HashSet<String>) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked.iter().take(k).filter(|document| relevant.contains(**document)).count();
    found as f64 / relevant.len() as f64
}

/// 1 / the rank of the first relevant document in the top `k`, 0 when there is none.
pub fn reciprocal_rank_at(k: usize, ranked: &[&str], relevant: &HashSet<String>) -> f64 {
    ranked.iter().take(k).position(|document| relevant.contains(*document)).map_or(0.0, |idx| 1.0 / (idx + 1) as f64)
}

/// The metrics of one query.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueryScores {
    pub ndcg_at_10: f64,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
}

impl QueryScores {
    /// Scores a ranking of documents (each once, best first) against the relevant ones.
    pub fn of(ranked: &[&str], relevant: &HashSet<String>) -> Self {
        QueryScores {
            ndcg_at_10: ndcg_at(10, ranked, relevant),
            recall_at_1: recall_at(1, ranked, relevant),
            recall_at_5: recall_at(5, ranked, relevant),
            recall_at_10: recall_at(10, ranked, relevant),
            recall_at_100: recall_at(100, ranked, relevant),
            mrr_at_10: reciprocal_rank_at(10, ranked, relevant),
        }
    }
}

/// The scores of one search mode, as `switchboard eval beir --json` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct BeirScores {
    pub ndcg_at_10: f64,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
    pub latency_ms_p50: f64,
}

impl fmt::Display for BeirScores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nDCG@10 {:.4}, R@1 {:.4}, R@5 {:.4}, R@10 {:.4}, R@100 {:.4}, MRR@10 {:.4}, p50 {:.2} ms",
            self.ndcg_at_10,
            self.recall_at_1,
            self.recall_at_5,
            self.recall_at_10,
            self.recall_at_100,
            self.mrr_at_10,
            self.latency_ms_p50
        )
    }
}

/// Collects per-query scores and latencies of one mode.
#[derive(Debug, Clone, Default)]
pub struct BeirAccumulator {
    queries: Vec<QueryScores>,
    latencies_ms: Vec<f64>,
}

impl BeirAccumulator {
    /// Records one query.
    pub fn add(&mut self, scores: QueryScores, latency_ms: f64) {
        self.queries.push(scores);
        self.latencies_ms.push(latency_ms);
    }

    /// Returns the number of queries recorded.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Returns whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Averages over the queries (all zero when nothing was recorded); latency is the
    /// nearest-rank median.
    pub fn scores(&self) -> BeirScores {
        let mean = |metric: fn(&QueryScores) -> f64| {
            if self.queries.is_empty() { 0.0 } else { self.queries.iter().map(metric).sum::<f64>() / self.len() as f64 }
        };
        BeirScores {
            ndcg_at_10: mean(|q| q.ndcg_at_10),
            recall_at_1: mean(|q| q.recall_at_1),
            recall_at_5: mean(|q| q.recall_at_5),
            recall_at_10: mean(|q| q.recall_at_10),
            recall_at_100: mean(|q| q.recall_at_100),
            mrr_at_10: mean(|q| q.mrr_at_10),
            latency_ms_p50: crate::retrieval::percentile(&self.latencies_ms, 50.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const EPS: f64 = 1e-12;

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn one_relevant_document_at_each_rank() {
        let relevant = set(&["d"]);
        assert!(close(ndcg_at(10, &["d", "a", "b"], &relevant), 1.0));
        // Rank 2: 1 / log2(3); rank 3: 1 / log2(4) = 0.5.
        assert!(close(ndcg_at(10, &["a", "d", "b"], &relevant), 1.0 / 3f64.log2()));
        assert!(close(ndcg_at(10, &["a", "b", "d"], &relevant), 0.5));
        assert!(close(reciprocal_rank_at(10, &["a", "b", "d"], &relevant), 1.0 / 3.0));
        assert!(close(recall_at(1, &["a", "b", "d"], &relevant), 0.0));
        assert!(close(recall_at(3, &["a", "b", "d"], &relevant), 1.0));
        // Rank 11 is outside every @10 metric but inside recall@100.
        let ranked: Vec<String> = (0..10).map(|i| format!("x{i}")).chain(["d".to_string()]).collect();
        let ranked: Vec<&str> = ranked.iter().map(String::as_str).collect();
        let scores = QueryScores::of(&ranked, &relevant);
        assert_eq!(scores.ndcg_at_10, 0.0);
        assert_eq!(scores.mrr_at_10, 0.0);
        assert_eq!(scores.recall_at_10, 0.0);
        assert_eq!(scores.recall_at_100, 1.0);
    }

    #[test]
    fn nothing_relevant_found() {
        let relevant = set(&["d"]);
        let scores = QueryScores::of(&["a", "b", "c"], &relevant);
        assert_eq!(scores, QueryScores::default());
        assert_eq!(QueryScores::of(&[], &relevant), QueryScores::default());
        // A query with no relevant document scores 0 (such queries are not scored at all).
        assert_eq!(QueryScores::of(&["a"], &HashSet::new()), QueryScores::default());
    }

    #[test]
    fn several_relevant_documents() {
        let relevant = set(&["r1", "r2", "r3"]);
        let ranked = ["r2", "a", "r3", "b", "c", "d"];
        let ideal = 1.0 + 1.0 / 3f64.log2() + 0.5;
        let dcg = 1.0 + 0.5;
        assert!(close(ndcg_at(10, &ranked, &relevant), dcg / ideal));
        assert!(close(recall_at(1, &ranked, &relevant), 1.0 / 3.0));
        assert!(close(recall_at(5, &ranked, &relevant), 2.0 / 3.0));
        assert!(close(recall_at(100, &ranked, &relevant), 2.0 / 3.0));
        assert!(close(reciprocal_rank_at(10, &ranked, &relevant), 1.0));
        // All relevant documents first is a perfect ranking, whatever their order.
        assert!(close(ndcg_at(10, &["r3", "r1", "r2", "a"], &relevant), 1.0));
        // More relevant documents than k: the ideal DCG stops at k.
        let many: HashSet<String> = (0..12).map(|i| format!("r{i}")).collect();
        let ranked: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
        let ranked: Vec<&str> = ranked.iter().map(String::as_str).collect();
        assert!(close(ndcg_at(10, &ranked, &many), 1.0));
        assert!(close(recall_at(10, &ranked, &many), 10.0 / 12.0));
    }

    #[test]
    fn chunks_of_one_document_keep_its_best_rank() {
        // Chunks of d1, d2, d1 again, d3: d1 counts once, at rank 1, and d3 moves up to rank 3.
        let ranked = best_ranks(["d1", "d2", "d1", "d3", "d2"]);
        assert_eq!(ranked, ["d1", "d2", "d3"]);
        let relevant = set(&["d3"]);
        assert!(close(reciprocal_rank_at(10, &ranked, &relevant), 1.0 / 3.0));
        assert!(close(ndcg_at(10, &ranked, &relevant), 0.5));
        // A relevant document retrieved twice is not counted twice.
        let relevant = set(&["d1", "d9"]);
        assert!(close(recall_at(5, &ranked, &relevant), 0.5));
        assert!(ndcg_at(10, &ranked, &relevant) <= 1.0);
    }

    #[test]
    fn ties_keep_the_order_given() {
        // Two documents with equal scores: the metrics are positional, so the order the search
        // returned decides; swapping the tied pair changes the score, deterministically.
        let relevant = set(&["b"]);
        assert!(close(ndcg_at(10, &["a", "b"], &relevant), 1.0 / 3f64.log2()));
        assert!(close(ndcg_at(10, &["b", "a"], &relevant), 1.0));
        assert_eq!(best_ranks(["b", "a", "b", "a"]), ["b", "a"]);
    }

    #[test]
    fn averages_over_queries() {
        let mut acc = BeirAccumulator::default();
        assert_eq!(acc.scores(), BeirScores::default());
        acc.add(QueryScores::of(&["r"], &set(&["r"])), 3.0);
        acc.add(QueryScores::of(&["a", "r"], &set(&["r", "s"])), 1.0);
        acc.add(QueryScores::of(&["a"], &set(&["r"])), 2.0);
        let scores = acc.scores();
        assert_eq!(acc.len(), 3);
        assert!(close(scores.recall_at_1, 1.0 / 3.0));
        assert!(close(scores.recall_at_5, (1.0 + 0.5) / 3.0));
        assert!(close(scores.mrr_at_10, (1.0 + 0.5) / 3.0));
        let second = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!(close(scores.ndcg_at_10, (1.0 + second) / 3.0));
        assert_eq!(scores.latency_ms_p50, 2.0);
        let json = serde_json::to_value(scores).unwrap();
        for key in
            ["ndcg_at_10", "recall_at_1", "recall_at_5", "recall_at_10", "recall_at_100", "mrr_at_10", "latency_ms_p50"]
        {
            assert!(json.get(key).is_some(), "{key}");
        }
    }

    // ---- readers ----

    const CORPUS: &str = "{\"_id\": \"d1\", \"title\": \"T1\", \"text\": \"one\", \"metadata\": {}}\n\
                          \n\
                          {\"_id\": 2, \"title\": null, \"text\": \"two\"}\r\n\
                          {\"_id\": \"d3\", \"text\": \"three\"}\n";
    const QUERIES: &str = "{\"_id\": \"q1\", \"text\": \"first\"}\n{\"_id\": \"q2\", \"text\": \"second\"}\n\
                           {\"_id\": \"q3\", \"text\": \"third\"}\n";
    const QRELS: &str = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t2\t1\nq2\td3\t0\r\nq3\td3\t2\n";

    fn write(dir: &Path, name: &str, content: &[u8]) {
        if let Some(parent) = Path::new(name).parent() {
            std::fs::create_dir_all(dir.join(parent)).unwrap();
        }
        std::fs::write(dir.join(name), content).unwrap();
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn dataset(corpus: (&str, &[u8]), queries: &str, qrels: (&str, &str)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), corpus.0, corpus.1);
        write(dir.path(), "queries.jsonl", queries.as_bytes());
        write(dir.path(), qrels.0, qrels.1.as_bytes());
        dir
    }

    fn load_error(corpus: (&str, &[u8]), queries: &str, qrels: (&str, &str)) -> String {
        let dir = dataset(corpus, queries, qrels);
        load(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn reads_plain_and_gzip_corpora() {
        let gz = gzip(CORPUS);
        for corpus in [("corpus.jsonl", CORPUS.as_bytes()), ("corpus.jsonl.gz", &gz[..])] {
            for qrels in ["qrels-test.tsv", "qrels/test.tsv"] {
                let dir = dataset(corpus, QUERIES, (qrels, QRELS));
                let data = load(dir.path()).unwrap();
                let ids: Vec<&str> = data.corpus.iter().map(|d| d.id.as_str()).collect();
                assert_eq!(ids, ["d1", "2", "d3"]);
                assert_eq!(data.corpus[0].title, "T1");
                assert_eq!(data.corpus[1].title, "");
                assert_eq!(data.corpus[2].title, "");
                // q2 has only a score-0 judgement: not scored.
                let ids: Vec<&str> = data.queries.iter().map(|q| q.id.as_str()).collect();
                assert_eq!(ids, ["q1", "q3"]);
                assert_eq!(data.unjudged_queries, 1);
                assert_eq!(data.n_judgements, 4);
                assert_eq!(data.relevant_to("q1"), &set(&["d1", "2"]));
                assert_eq!(data.relevant_to("q3"), &set(&["d3"]));
                assert!(data.relevant_to("q2").is_empty());
            }
        }
        // A gzip file named .jsonl is still read.
        let dir = dataset(("corpus.jsonl", &gz), QUERIES, ("qrels-test.tsv", QRELS));
        assert_eq!(load(dir.path()).unwrap().corpus.len(), 3);
    }

    #[test]
    fn limits_the_queries() {
        let dir = dataset(("corpus.jsonl", CORPUS.as_bytes()), QUERIES, ("qrels-test.tsv", QRELS));
        let mut data = load(dir.path()).unwrap();
        data.limit_queries(1);
        assert_eq!(data.queries.len(), 1);
        assert_eq!(data.relevant.len(), 1);
        assert!(data.relevant_to("q3").is_empty());
    }

    #[test]
    fn missing_and_ambiguous_files() {
        let dir = tempfile::tempdir().unwrap();
        let error = load(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(error.contains("is not a folder"), "{error}");
        let error = load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no corpus") && error.contains("corpus.jsonl.gz"), "{error}");
        write(dir.path(), "corpus.jsonl", CORPUS.as_bytes());
        let error = load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no queries"), "{error}");
        write(dir.path(), "queries.jsonl", QUERIES.as_bytes());
        let error = load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no judgements") && error.contains("qrels/test.tsv"), "{error}");
        write(dir.path(), "qrels-test.tsv", QRELS.as_bytes());
        write(dir.path(), "corpus.jsonl.gz", &gzip(CORPUS));
        let error = load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("both corpus.jsonl and corpus.jsonl.gz"), "{error}");
    }

    #[test]
    fn bad_corpus_lines_name_file_and_line() {
        let qrels = ("qrels-test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
        for (corpus, expected) in [
            ("{\"_id\": \"d1\", \"text\": \"x\"}\nnot json\n", "corpus.jsonl line 2: not a corpus document"),
            ("{\"_id\": \"d1\", \"text\": \"x\"}\n{\"text\": \"y\"}\n", "line 2: not a corpus document"),
            (
                "{\"_id\": \"d1\", \"text\": \"x\"}\n\n{\"_id\": \"d1\", \"text\": \"y\"}\n",
                "line 3: _id \"d1\" already used on line 1",
            ),
            ("{\"_id\": \" \", \"text\": \"x\"}\n", "line 1: empty _id"),
            ("{\"_id\": \"d1\", \"text\": 5}\n", "line 1: not a corpus document"),
            ("\n  \n", "corpus.jsonl has no documents"),
        ] {
            let error = load_error(("corpus.jsonl", corpus.as_bytes()), QUERIES, qrels);
            assert!(error.contains(expected), "{corpus:?}: {error}");
        }
        // Invalid UTF-8 names its line.
        let error =
            load_error(("corpus.jsonl", b"{\"_id\": \"d1\", \"text\": \"x\"}\n{\"_id\": \"\xff\"}\n"), QUERIES, qrels);
        assert!(error.contains("corpus.jsonl line 2: not valid UTF-8"), "{error}");
        // A truncated gzip stream.
        let gz = gzip(CORPUS);
        let error = load_error(("corpus.jsonl.gz", &gz[..gz.len() / 2]), QUERIES, qrels);
        assert!(error.contains("cannot read") && error.contains("corpus.jsonl.gz"), "{error}");
    }

    #[test]
    fn bad_queries_name_file_and_line() {
        let corpus = ("corpus.jsonl", CORPUS.as_bytes());
        let qrels = ("qrels-test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
        for (queries, expected) in [
            ("{\"_id\": \"q1\", \"text\": \"a\"}\n{\"_id\": \"q2\"}\n", "queries.jsonl line 2: not a query"),
            ("{\"_id\": \"q1\", \"text\": \"  \"}\n", "line 1: query \"q1\" has an empty text"),
            (
                "{\"_id\": \"q1\", \"text\": \"a\"}\n{\"_id\": \"q1\", \"text\": \"b\"}\n",
                "line 2: _id \"q1\" already used",
            ),
            ("", "queries.jsonl has no queries"),
        ] {
            let error = load_error(corpus, queries, qrels);
            assert!(error.contains(expected), "{queries:?}: {error}");
        }
    }

    #[test]
    fn bad_judgements_name_file_and_line() {
        let corpus = ("corpus.jsonl", CORPUS.as_bytes());
        for (qrels, expected) in [
            ("q1\td1\t1\n", "qrels-test.tsv line 1: expected the header"),
            ("query-id\tcorpus-id\tscore\nq1\tnope\t1\n", "line 2: unknown document \"nope\" (not in the corpus)"),
            ("query-id\tcorpus-id\tscore\nq9\td1\t1\n", "line 2: unknown query \"q9\""),
            ("query-id\tcorpus-id\tscore\nq1\td1\n", "line 2: expected 3 tab-separated fields, found 2"),
            ("query-id\tcorpus-id\tscore\nq1 d1 1\n", "line 2: expected 3 tab-separated fields, found 1"),
            ("query-id\tcorpus-id\tscore\nq1\td1\tyes\n", "line 2: score \"yes\" is not an integer"),
            (
                "query-id\tcorpus-id\tscore\n\nq1\td1\t1\nq1\td1\t1\n",
                "line 4: query \"q1\" and document \"d1\" already judged on line 3",
            ),
            ("query-id\tcorpus-id\tscore\n", "qrels-test.tsv has no judgements"),
            ("", "qrels-test.tsv has no judgements"),
            ("query-id\tcorpus-id\tscore\nq1\td1\t0\n", "has no judgement with a score above 0"),
        ] {
            let error = load_error(corpus, QUERIES, ("qrels-test.tsv", qrels));
            assert!(error.contains(expected), "{qrels:?}: {error}");
        }
    }

    #[test]
    fn size_caps() {
        let dir = dataset(("corpus.jsonl.gz", &gzip(CORPUS)), QUERIES, ("qrels-test.tsv", QRELS));
        let limits = Limits { corpus_bytes: 20, ..Limits::default() };
        let error = load_with_limits(dir.path(), &limits).unwrap_err().to_string();
        assert!(error.contains("corpus.jsonl.gz is larger than 20 bytes uncompressed"), "{error}");
        let limits = Limits { documents: 2, ..Limits::default() };
        let error = load_with_limits(dir.path(), &limits).unwrap_err().to_string();
        assert!(error.contains("more than 2 documents"), "{error}");
        let limits = Limits { queries: 2, ..Limits::default() };
        let error = load_with_limits(dir.path(), &limits).unwrap_err().to_string();
        assert!(error.contains("more than 2 queries"), "{error}");
        let limits = Limits { qrels_bytes: 10, ..Limits::default() };
        let error = load_with_limits(dir.path(), &limits).unwrap_err().to_string();
        assert!(error.contains("qrels-test.tsv is larger than 10 bytes"), "{error}");
        let exact = Limits { corpus_bytes: CORPUS.len() as u64, ..Limits::default() };
        assert!(load_with_limits(dir.path(), &exact).is_ok());
    }

    #[test]
    fn the_scifact_files_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/scifact");
        if !dir.is_dir() {
            return;
        }
        let data = load(&dir).unwrap();
        assert_eq!(data.name, "scifact");
        assert_eq!(data.corpus.len(), 5_183);
        assert_eq!(data.queries.len(), 300);
        assert_eq!(data.unjudged_queries, 0);
        assert_eq!(data.n_judgements, 339);
        assert_eq!(data.relevant.values().map(HashSet::len).sum::<usize>(), 339);
    }
}
