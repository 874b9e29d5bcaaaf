//! Intent classification metrics: in-scope accuracy (an in-scope item predicted out of scope is
//! wrong), overall accuracy, macro-F1 over the in-scope intents, out-of-scope recall and
//! precision, a per-intent table, and the JSON line `switchboard eval intents --json` prints.

use std::collections::BTreeMap;

/// The label of out-of-scope items, gold or predicted.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// Precision, recall and F1 of one intent.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IntentRow {
    pub name: String,
    /// Gold items with this label.
    pub support: usize,
    /// Items predicted with this label.
    pub n_predicted: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Scores of predictions against gold labels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IntentScores {
    /// Share of in-scope items predicted with their intent (predicting out of scope is wrong).
    pub accuracy: f64,
    /// Share of all items predicted right, out-of-scope ones included.
    pub overall_accuracy: f64,
    /// Mean F1 over the in-scope intents present in the gold labels.
    pub macro_f1: f64,
    /// Share of out-of-scope items predicted out of scope; `None` when the test has none.
    pub oos_recall: Option<f64>,
    /// Share of out-of-scope predictions that are out of scope; `None` when the test has none
    /// (0 when it has some and nothing was predicted out of scope).
    pub oos_precision: Option<f64>,
    pub n_test: usize,
    pub n_in_scope: usize,
    pub n_out_of_scope: usize,
    /// One row per gold or predicted label, out of scope last.
    pub per_intent: Vec<IntentRow>,
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 { 0.0 } else { numerator as f64 / denominator as f64 }
}

/// Scores `predicted` against `gold` (same length; labels are intent names or [`OUT_OF_SCOPE`]).
///
/// # Panics
/// When the two slices differ in length.
pub fn score<G: AsRef<str>, P: AsRef<str>>(gold: &[G], predicted: &[P]) -> IntentScores {
    assert_eq!(gold.len(), predicted.len(), "one prediction per gold label");
    #[derive(Default)]
    struct Counts {
        support: usize,
        n_predicted: usize,
        n_correct: usize,
    }
    let mut counts: BTreeMap<&str, Counts> = BTreeMap::new();
    let (mut n_in_scope, mut n_in_scope_correct, mut n_correct) = (0, 0, 0);
    for (gold, predicted) in gold.iter().zip(predicted) {
        let (gold, predicted) = (gold.as_ref(), predicted.as_ref());
        counts.entry(gold).or_default().support += 1;
        counts.entry(predicted).or_default().n_predicted += 1;
        if gold == predicted {
            counts.entry(gold).or_default().n_correct += 1;
            n_correct += 1;
        }
        if gold != OUT_OF_SCOPE {
            n_in_scope += 1;
            if gold == predicted {
                n_in_scope_correct += 1;
            }
        }
    }
    let mut per_intent: Vec<IntentRow> = counts
        .iter()
        .map(|(name, c)| {
            let precision = ratio(c.n_correct, c.n_predicted);
            let recall = ratio(c.n_correct, c.support);
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            IntentRow { name: name.to_string(), support: c.support, n_predicted: c.n_predicted, precision, recall, f1 }
        })
        .collect();
    per_intent.sort_by_key(|row| (row.name == OUT_OF_SCOPE, row.name.clone()));
    let in_scope_rows: Vec<&IntentRow> =
        per_intent.iter().filter(|row| row.name != OUT_OF_SCOPE && row.support > 0).collect();
    let macro_f1 = if in_scope_rows.is_empty() {
        0.0
    } else {
        in_scope_rows.iter().map(|row| row.f1).sum::<f64>() / in_scope_rows.len() as f64
    };
    let n_out_of_scope = gold.len() - n_in_scope;
    let oos = per_intent.iter().find(|row| row.name == OUT_OF_SCOPE);
    let (oos_recall, oos_precision) = match oos {
        Some(row) if n_out_of_scope > 0 => (Some(row.recall), Some(row.precision)),
        _ => (None, None),
    };
    IntentScores {
        accuracy: ratio(n_in_scope_correct, n_in_scope),
        overall_accuracy: ratio(n_correct, gold.len()),
        macro_f1,
        oos_recall,
        oos_precision,
        n_test: gold.len(),
        n_in_scope,
        n_out_of_scope,
        per_intent,
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of `values`; 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// What `switchboard eval intents` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentEvalReport {
    pub scores: IntentScores,
    pub train_seconds: f64,
    pub predict_ms_p50: f64,
}

impl IntentEvalReport {
    /// The `--json` object, with exactly the keys of the interface.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "accuracy": self.scores.accuracy,
            "overall_accuracy": self.scores.overall_accuracy,
            "macro_f1": self.scores.macro_f1,
            "oos_recall": self.scores.oos_recall,
            "oos_precision": self.scores.oos_precision,
            "n_test": self.scores.n_test,
            "train_seconds": self.train_seconds,
            "predict_ms_p50": self.predict_ms_p50,
        })
    }

    /// The human-readable report: the per-intent table, then the totals.
    pub fn render_table(&self) -> String {
        use std::fmt::Write;
        let scores = &self.scores;
        let width = scores.per_intent.iter().map(|row| row.name.len()).max().unwrap_or(6).max(6);
        let mut out = String::new();
        let _ =
            writeln!(out, "{:<width$}  {:>7}  {:>9}  {:>9}  {:>6}", "intent", "support", "precision", "recall", "f1");
        for row in &scores.per_intent {
            let _ = writeln!(
                out,
                "{:<width$}  {:>7}  {:>9.3}  {:>9.3}  {:>6.3}",
                row.name, row.support, row.precision, row.recall, row.f1
            );
        }
        let optional = |value: Option<f64>| value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"));
        let _ = writeln!(out);
        let _ = writeln!(out, "in-scope accuracy  {:.4}  ({} items)", scores.accuracy, scores.n_in_scope);
        let _ = writeln!(out, "overall accuracy   {:.4}  ({} items)", scores.overall_accuracy, scores.n_test);
        let _ = writeln!(out, "macro-F1           {:.4}", scores.macro_f1);
        let _ = writeln!(out, "oos recall         {}  ({} items)", optional(scores.oos_recall), scores.n_out_of_scope);
        let _ = writeln!(out, "oos precision      {}", optional(scores.oos_precision));
        let _ = writeln!(out, "train seconds      {:.1}", self.train_seconds);
        let _ = writeln!(out, "predict ms p50     {:.2}", self.predict_ms_p50);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OOS: &str = OUT_OF_SCOPE;

    #[test]
    fn in_scope_predicted_out_of_scope_counts_wrong() {
        let gold = ["a", "a", "b", "b", OOS, OOS];
        let predicted = ["a", OOS, "b", "a", OOS, "b"];
        let scores = score(&gold, &predicted);
        assert_eq!(scores.accuracy, 0.5);
        assert_eq!(scores.overall_accuracy, 0.5);
        assert_eq!(scores.oos_recall, Some(0.5));
        assert_eq!(scores.oos_precision, Some(0.5));
        assert_eq!((scores.n_test, scores.n_in_scope, scores.n_out_of_scope), (6, 4, 2));
        // a: precision 1/2, recall 1/2; b: precision 1/2, recall 1/2.
        assert!((scores.macro_f1 - 0.5).abs() < 1e-12);
        assert_eq!(scores.per_intent.last().map(|r| r.name.as_str()), Some(OOS));
    }

    #[test]
    fn no_out_of_scope_in_test_gives_null() {
        let scores = score(&["a", "b"], &["a", OOS]);
        assert_eq!(scores.oos_recall, None);
        assert_eq!(scores.oos_precision, None);
        let json = IntentEvalReport { scores, train_seconds: 1.5, predict_ms_p50: 2.0 }.to_json();
        assert_eq!(json["oos_recall"], serde_json::Value::Null);
        assert_eq!(json["accuracy"], 0.5);
    }

    #[test]
    fn nothing_predicted_out_of_scope_has_zero_precision() {
        let scores = score(&["a", OOS], &["a", "a"]);
        assert_eq!(scores.oos_recall, Some(0.0));
        assert_eq!(scores.oos_precision, Some(0.0));
    }

    #[test]
    fn json_has_exactly_the_interface_keys() {
        let report = IntentEvalReport { scores: score(&["a"], &["a"]), train_seconds: 0.0, predict_ms_p50: 0.0 };
        let json = report.to_json();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "accuracy",
                "macro_f1",
                "n_test",
                "oos_precision",
                "oos_recall",
                "overall_accuracy",
                "predict_ms_p50",
                "train_seconds"
            ]
        );
        assert!(report.render_table().contains("in-scope accuracy  1.0000"));
    }

    #[test]
    fn empty_input_scores_zero() {
        let scores = score::<&str, &str>(&[], &[]);
        assert_eq!((scores.accuracy, scores.macro_f1, scores.n_test), (0.0, 0.0, 0));
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 100.0), 4.0);
        assert_eq!(percentile(&[5.0], 0.0), 5.0);
    }
}
