//! Retrieval evaluation: the QA file format (`interfaces.md`) and the metrics.
//!
//! A QA file is JSON Lines, one `{"question": s, "answer_contains": [s...], "source": s}` per
//! line, `source` being the file name of the document that answers the question. A retrieved
//! chunk is a hit when it comes from that document and its text contains one of the
//! `answer_contains` strings (both compared case-insensitively). recall@k counts questions with
//! a hit in the top k; MRR averages 1/rank of the first hit (0 when none is retrieved).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One question of a QA file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QaItem {
    pub question: String,
    pub answer_contains: Vec<String>,
    pub source: String,
}

/// Why a QA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum QaError {
    #[error("cannot read QA file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("QA file line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("QA file has no questions")]
    Empty,
}

/// Reads and validates a QA file.
pub fn load_qa(path: &Path) -> Result<Vec<QaItem>, QaError> {
    let text = std::fs::read_to_string(path).map_err(|source| QaError::Read { path: path.to_path_buf(), source })?;
    parse_qa(&text)
}

/// Parses QA JSON Lines; blank lines are skipped, every other line must be a valid item.
pub fn parse_qa(text: &str) -> Result<Vec<QaItem>, QaError> {
    let mut items = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        if line.trim().is_empty() {
            continue;
        }
        let item: QaItem =
            serde_json::from_str(line).map_err(|e| QaError::Line { line: line_no, message: e.to_string() })?;
        let invalid = |message: &str| QaError::Line { line: line_no, message: message.to_string() };
        if item.question.trim().is_empty() {
            return Err(invalid("empty question"));
        }
        if item.source.trim().is_empty() {
            return Err(invalid("empty source"));
        }
        if item.answer_contains.is_empty() || item.answer_contains.iter().any(|a| a.trim().is_empty()) {
            return Err(invalid("answer_contains needs at least one non-empty string"));
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(QaError::Empty);
    }
    Ok(items)
}

/// A retrieved chunk, as the metrics need it.
#[derive(Debug, Clone, Copy)]
pub struct Retrieved<'a> {
    /// The document's file name (folders, if any, are ignored).
    pub document: &'a str,
    pub text: &'a str,
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Returns whether a retrieved chunk answers the item.
pub fn is_hit(item: &QaItem, chunk: &Retrieved<'_>) -> bool {
    if !file_name(chunk.document).eq_ignore_ascii_case(file_name(item.source.trim())) {
        return false;
    }
    let text = chunk.text.to_lowercase();
    item.answer_contains.iter().any(|answer| text.contains(&answer.to_lowercase()))
}

/// Returns the 1-based rank of the first hit, if any.
pub fn first_hit_rank(item: &QaItem, retrieved: &[Retrieved<'_>]) -> Option<usize> {
    retrieved.iter().position(|chunk| is_hit(item, chunk)).map(|idx| idx + 1)
}

/// The scores printed by `switchboard eval retrieval --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalScores {
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub mrr: f64,
    pub n: usize,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
}

/// Collects per-question results.
#[derive(Debug, Clone, Default)]
pub struct ScoreAccumulator {
    ranks: Vec<Option<usize>>,
    latencies_ms: Vec<f64>,
}

impl ScoreAccumulator {
    /// Records one question: the rank of its first hit and the time its search took.
    pub fn add(&mut self, first_hit_rank: Option<usize>, latency_ms: f64) {
        self.ranks.push(first_hit_rank);
        self.latencies_ms.push(latency_ms);
    }

    /// Returns the number of questions recorded.
    pub fn len(&self) -> usize {
        self.ranks.len()
    }

    /// Returns whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }

    /// Computes the scores (all zero when nothing was recorded).
    pub fn scores(&self) -> RetrievalScores {
        let n = self.ranks.len();
        let share = |count: usize| if n == 0 { 0.0 } else { count as f64 / n as f64 };
        let within = |k: usize| self.ranks.iter().filter(|rank| rank.is_some_and(|r| r <= k)).count();
        let reciprocal: f64 = self.ranks.iter().map(|rank| rank.map_or(0.0, |r| 1.0 / r as f64)).sum();
        RetrievalScores {
            recall_at_1: share(within(1)),
            recall_at_5: share(within(5)),
            mrr: if n == 0 { 0.0 } else { reciprocal / n as f64 },
            n,
            latency_ms_p50: percentile(&self.latencies_ms, 50.0),
            latency_ms_p95: percentile(&self.latencies_ms, 95.0),
        }
    }
}

/// Nearest-rank percentile (`p` in 0..=100); 0 for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> QaItem {
        QaItem {
            question: "How much is the late fee?".into(),
            answer_contains: vec!["$10".into(), "ten dollars".into()],
            source: "late-fees.md".into(),
        }
    }

    #[test]
    fn parses_lines_and_rejects_bad_ones() {
        let text = "\n{\"question\": \"q\", \"answer_contains\": [\"a\"], \"source\": \"d.md\"}\n\n";
        assert_eq!(parse_qa(text).unwrap().len(), 1);
        for (bad, expected) in [
            ("{\"question\": \"q\"}", "line 1"),
            ("not json", "line 1"),
            ("{\"question\": \" \", \"answer_contains\": [\"a\"], \"source\": \"d\"}", "empty question"),
            ("{\"question\": \"q\", \"answer_contains\": [], \"source\": \"d\"}", "answer_contains"),
            ("{\"question\": \"q\", \"answer_contains\": [\"\"], \"source\": \"d\"}", "answer_contains"),
            ("{\"question\": \"q\", \"answer_contains\": [\"a\"], \"source\": \"\"}", "empty source"),
            ("{\"question\": \"q\", \"answer_contains\": [\"a\"], \"source\": \"d\", \"x\": 1}", "unknown field"),
        ] {
            let error = parse_qa(bad).unwrap_err().to_string();
            assert!(error.contains(expected), "{bad}: {error}");
        }
        assert!(matches!(parse_qa("  \n"), Err(QaError::Empty)));
    }

    #[test]
    fn hits_need_the_source_and_an_answer_string() {
        let item = item();
        let chunk = |document, text| Retrieved { document, text };
        assert!(is_hit(&item, &chunk("late-fees.md", "A late fee of $10 applies.")));
        assert!(is_hit(&item, &chunk("billing/Late-Fees.md", "TEN DOLLARS")));
        assert!(!is_hit(&item, &chunk("other.md", "A late fee of $10 applies.")));
        assert!(!is_hit(&item, &chunk("late-fees.md", "A late fee applies.")));
        let retrieved = [chunk("other.md", "$10"), chunk("late-fees.md", "nothing"), chunk("late-fees.md", "$10")];
        assert_eq!(first_hit_rank(&item, &retrieved), Some(3));
        assert_eq!(first_hit_rank(&item, &[]), None);
    }

    #[test]
    fn scores() {
        let mut acc = ScoreAccumulator::default();
        acc.add(Some(1), 1.0);
        acc.add(Some(2), 2.0);
        acc.add(Some(6), 3.0);
        acc.add(None, 4.0);
        let scores = acc.scores();
        assert_eq!(scores.n, 4);
        assert_eq!(scores.recall_at_1, 0.25);
        assert_eq!(scores.recall_at_5, 0.5);
        assert!((scores.mrr - (1.0 + 0.5 + 1.0 / 6.0) / 4.0).abs() < 1e-12);
        assert_eq!(scores.latency_ms_p50, 2.0);
        assert_eq!(scores.latency_ms_p95, 4.0);
        assert_eq!(ScoreAccumulator::default().scores().mrr, 0.0);
        let json = serde_json::to_value(&scores).unwrap();
        for key in ["recall_at_1", "recall_at_5", "mrr", "n", "latency_ms_p50", "latency_ms_p95"] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn the_project_qa_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("qa/telco.jsonl");
        let items = load_qa(&path).unwrap();
        assert!(items.len() >= 120, "{} questions", items.len());
    }
}
