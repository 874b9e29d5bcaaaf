//! Answer evaluation: customer questions with the facts a right answer must state and the facts
//! a wrong one would, scored on the assistant's reply (`switchboard eval answers FILE`).
//!
//! The file is JSON Lines, one item per line:
//! `{"id", "question", "kind", "expect": [[form, ...], ...], "wrong": [text, ...]}` (other keys,
//! such as `source` and `why`, are kept for readers and ignored here). An item passes when every
//! expected fact appears in the reply in one of its forms and no wrong text does, both
//! case-insensitively. Items of kind `not_covered` expect no facts: they pass when the reply
//! says the information is not there (or offers a person) and states nothing wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

/// Largest answer file read.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Longest question.
pub const MAX_QUESTION_CHARS: usize = 4_000;

/// The kind of questions the documents do not answer.
pub const NOT_COVERED: &str = "not_covered";

/// Words by which a reply says it does not have the information.
pub const HONEST_MARKERS: &[&str] = &[
    "don't have",
    "do not have",
    "don't know",
    "not sure",
    "couldn't find",
    "could not find",
    "can't find",
    "no information",
    "one of our agents",
    "connect you with",
];

#[derive(Debug, thiserror::Error)]
pub enum AnswersError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: larger than {} MB", MAX_FILE_BYTES / 1024 / 1024)]
    TooLarge { path: PathBuf },
    #[error("{path} line {line}: {why}")]
    Invalid { path: PathBuf, line: usize, why: String },
    #[error("{path}: no questions")]
    Empty { path: PathBuf },
}

/// One question and how its answer is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerItem {
    pub id: String,
    pub question: String,
    pub kind: String,
    /// Every fact must appear, in one of its forms.
    pub expect: Vec<Vec<String>>,
    /// None of these may appear.
    pub wrong: Vec<String>,
}

#[derive(Deserialize)]
struct RawItem {
    id: String,
    question: String,
    kind: String,
    #[serde(default)]
    expect: Vec<Vec<String>>,
    #[serde(default)]
    wrong: Vec<String>,
}

/// Reads an answer file.
pub fn load(path: &Path) -> Result<Vec<AnswerItem>, AnswersError> {
    let read = |source| AnswersError::Read { path: path.to_path_buf(), source };
    let metadata = std::fs::metadata(path).map_err(read)?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(AnswersError::TooLarge { path: path.to_path_buf() });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|_| AnswersError::Invalid {
        path: path.to_path_buf(),
        line: 0,
        why: "not UTF-8 text".into(),
    })?;
    parse(path, &text)
}

/// Parses answer-file text (`path` names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Vec<AnswerItem>, AnswersError> {
    let mut items: Vec<AnswerItem> = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        if line.trim().is_empty() {
            continue;
        }
        let invalid = |why: String| AnswersError::Invalid { path: path.to_path_buf(), line: line_no, why };
        let raw: RawItem = serde_json::from_str(line).map_err(|error| invalid(error.to_string()))?;
        let question = raw.question.trim().to_string();
        if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
            return Err(invalid(format!("the question must have 1 to {MAX_QUESTION_CHARS} characters")));
        }
        if raw.id.trim().is_empty() || items.iter().any(|item| item.id == raw.id) {
            return Err(invalid(format!("id {:?} is empty or used twice", raw.id)));
        }
        if raw.kind.trim().is_empty() {
            return Err(invalid("the kind is empty".into()));
        }
        let expect: Vec<Vec<String>> = raw
            .expect
            .into_iter()
            .map(|forms| forms.into_iter().map(|form| form.trim().to_string()).filter(|f| !f.is_empty()).collect())
            .collect();
        if expect.iter().any(Vec::is_empty) {
            return Err(invalid("an expected fact has no form".into()));
        }
        if expect.is_empty() && raw.kind != NOT_COVERED {
            return Err(invalid(format!("only {NOT_COVERED} items may expect no facts")));
        }
        items.push(AnswerItem {
            id: raw.id,
            question,
            kind: raw.kind,
            expect,
            wrong: raw.wrong.into_iter().map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect(),
        });
    }
    if items.is_empty() {
        return Err(AnswersError::Empty { path: path.to_path_buf() });
    }
    Ok(items)
}

/// What one reply came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub passed: bool,
    /// Expected facts not found (their first form).
    pub missing: Vec<String>,
    /// Wrong texts found.
    pub wrong: Vec<String>,
}

/// Judges `reply` for `item`.
pub fn judge(item: &AnswerItem, reply: &str) -> Judgement {
    let lower = reply.to_lowercase();
    let mut missing: Vec<String> = item
        .expect
        .iter()
        .filter(|forms| !forms.iter().any(|form| lower.contains(&form.to_lowercase())))
        .map(|forms| forms[0].clone())
        .collect();
    if item.kind == NOT_COVERED && !HONEST_MARKERS.iter().any(|marker| lower.contains(marker)) {
        missing.push("a reply that says the information is not there".into());
    }
    let wrong: Vec<String> = item.wrong.iter().filter(|w| lower.contains(&w.to_lowercase())).cloned().collect();
    Judgement { passed: missing.is_empty() && wrong.is_empty(), missing, wrong }
}

/// Scores of a run, overall and per kind.
#[derive(Debug, Clone, Default)]
pub struct AnswerScores {
    pub n: usize,
    pub passed: usize,
    pub by_kind: BTreeMap<String, (usize, usize)>,
}

impl AnswerScores {
    pub fn add(&mut self, kind: &str, passed: bool) {
        self.n += 1;
        let entry = self.by_kind.entry(kind.to_string()).or_default();
        entry.0 += 1;
        if passed {
            self.passed += 1;
            entry.1 += 1;
        }
    }

    pub fn accuracy(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.passed as f64 / self.n as f64 }
    }

    /// `{"n", "passed", "accuracy", "by_kind": {kind: {"n", "passed", "accuracy"}}}`.
    pub fn to_json(&self) -> Value {
        let by_kind: serde_json::Map<String, Value> = self
            .by_kind
            .iter()
            .map(|(kind, (n, passed))| {
                (kind.clone(), json!({"n": n, "passed": passed, "accuracy": *passed as f64 / (*n).max(1) as f64}))
            })
            .collect();
        json!({"n": self.n, "passed": self.passed, "accuracy": self.accuracy(), "by_kind": by_kind})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, expect: &[&[&str]], wrong: &[&str]) -> AnswerItem {
        AnswerItem {
            id: "x".into(),
            question: "q".into(),
            kind: kind.into(),
            expect: expect.iter().map(|forms| forms.iter().map(|f| f.to_string()).collect()).collect(),
            wrong: wrong.iter().map(|w| w.to_string()).collect(),
        }
    }

    #[test]
    fn every_fact_in_some_form_and_nothing_wrong() {
        let premium = item("lookup", &[&["$65", "65 dollars"], &["15 GB", "15GB"]], &["$85"]);
        assert!(judge(&premium, "The Premium Plan is $65.00 a month with 15 GB.").passed);
        let missing = judge(&premium, "The Premium Plan is $65.00 a month.");
        assert_eq!(missing.missing, vec!["15 GB"]);
        let wrong = judge(&premium, "It's $65 and 15gb, or $85 for Unlimited Plus.");
        assert_eq!(wrong.wrong, vec!["$85"]);
        assert!(!wrong.passed);
    }

    #[test]
    fn questions_the_documents_do_not_answer_need_an_honest_reply() {
        let iphones = item(NOT_COVERED, &[], &["$999"]);
        assert!(
            judge(&iphones, "I'm sorry, I don't have that information. I can connect you with one of our agents.")
                .passed
        );
        assert!(!judge(&iphones, "The iPhone 17 costs $999.").passed);
        assert!(!judge(&iphones, "Our plans start at $40 a month.").passed);
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        let path = Path::new("answers.jsonl");
        let ok = r#"{"id": "a", "question": "how much?", "kind": "lookup", "expect": [["$5"]]}"#;
        assert_eq!(parse(path, ok).unwrap().len(), 1);
        for (bad, why) in [
            ("", "no questions"),
            ("not json", "line 1"),
            (r#"{"id": "a", "question": " ", "kind": "lookup", "expect": [["$5"]]}"#, "question"),
            (r#"{"id": "a", "question": "q", "kind": "lookup", "expect": []}"#, "may expect no facts"),
            (r#"{"id": "a", "question": "q", "kind": "lookup", "expect": [[]]}"#, "no form"),
        ] {
            let error = parse(path, bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
        let twice = format!("{ok}\n{ok}");
        assert!(parse(path, &twice).unwrap_err().to_string().contains("used twice"));
    }

    #[test]
    fn scores_by_kind() {
        let mut scores = AnswerScores::default();
        scores.add("lookup", true);
        scores.add("lookup", false);
        scores.add("policy", true);
        let json = scores.to_json();
        assert_eq!(json["n"], 3);
        assert_eq!(json["passed"], 2);
        assert_eq!(json["by_kind"]["lookup"]["accuracy"], 0.5);
    }
}
