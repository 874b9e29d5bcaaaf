//! Reciprocal rank fusion.

use std::collections::HashMap;

/// Fuses ranked lists of ids: each list contributes `weight / (k + rank)` (rank from 1) to an
/// id's score. Scores are divided by the best attainable score (`Σ weight / (k + 1)`), so an id
/// ranked first everywhere scores 1.0. Ties keep the order of first appearance.
pub fn reciprocal_rank_fusion(lists: &[(&[String], f32)], k: f32) -> Vec<(String, f32)> {
    let mut scores: HashMap<&str, (f32, usize)> = HashMap::new();
    let mut order = 0;
    for (list, weight) in lists {
        for (rank, id) in list.iter().enumerate() {
            let entry = scores.entry(id.as_str()).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            entry.0 += weight / (k + rank as f32 + 1.0);
        }
    }
    let best: f32 = lists.iter().map(|(_, weight)| weight / (k + 1.0)).sum();
    let mut fused: Vec<(&str, f32, usize)> =
        scores.into_iter().map(|(id, (score, first))| (id, score, first)).collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused.into_iter().map(|(id, score, _)| (id.to_string(), if best > 0.0 { score / best } else { 0.0 })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[track_caller]
    fn check(lexical: &[&str], vector: &[&str], expected: &[&str]) {
        let (lexical, vector) = (ids(lexical), ids(vector));
        let fused = reciprocal_rank_fusion(&[(&lexical, 1.0), (&vector, 1.0)], 60.0);
        let got: Vec<&str> = fused.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn agreement_wins() {
        check(&["a", "b", "c"], &["b", "d", "c"], &["b", "c", "a", "d"]);
    }

    #[test]
    fn one_sided_lists_keep_their_order() {
        check(&["a", "b"], &[], &["a", "b"]);
        check(&[], &["x", "y"], &["x", "y"]);
        check(&[], &[], &[]);
    }

    #[test]
    fn ties_keep_first_appearance() {
        check(&["a", "b"], &["b", "a"], &["a", "b"]);
    }

    #[test]
    fn scores_are_normalised() {
        let list = ids(&["a", "b"]);
        let fused = reciprocal_rank_fusion(&[(&list, 1.0), (&list, 1.0)], 60.0);
        assert!((fused[0].1 - 1.0).abs() < 1e-6);
        assert!(fused[1].1 < 1.0);
        let weighted = reciprocal_rank_fusion(&[(&list, 2.0), (&ids(&["b", "a"]), 1.0)], 60.0);
        assert_eq!(weighted[0].0, "a");
    }
}
