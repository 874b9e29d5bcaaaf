//! The classifier over sentence embeddings, and its scores.
//!
//! Two scorers are blended per intent: a cosine classifier (one learnt unit direction per intent,
//! trained with an additive cosine margin) and nearest labelled examples (the highest cosine
//! similarity to a training example of that intent). Out of scope is one more class whose score
//! is `θ + o`, where `o` is the similarity of the nearest out-of-scope training example (0 when
//! the data has none) and `θ` a threshold: a message is out of scope when no intent scores above
//! it, i.e. when its margin `best intent score - o` is below `θ`. Comparing the best intent with
//! the nearest out-of-scope example, rather than reading its score alone, also keeps the
//! decision steadier when new messages are less similar to all the training data at once.
//! Probabilities are `softmax(scale * scores / temperature)` over the intents and that class.

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};

use super::Result;

/// Hyperparameters of the cosine classifier trained on fixed embeddings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Cosine logit scale `s`.
    pub scale: f64,
    /// Additive cosine margin `m` during training.
    pub margin: f64,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self { epochs: 30, batch_size: 64, learning_rate: 1e-2, scale: 20.0, margin: 0.1 }
    }
}

pub(crate) fn normalize_rows(tensor: &Tensor) -> Result<Tensor> {
    let norm = tensor.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(tensor.broadcast_div(&norm)?)
}

/// Mean embedding of each class, normalised: the starting point of the class directions.
pub(crate) fn class_centroids(embeddings: &[Vec<f32>], labels: &[u32], n_classes: usize, dim: usize) -> Result<Tensor> {
    let mut sums = vec![0f32; n_classes * dim];
    for (embedding, &label) in embeddings.iter().zip(labels) {
        let row = &mut sums[label as usize * dim..(label as usize + 1) * dim];
        for (sum, value) in row.iter_mut().zip(embedding) {
            *sum += value;
        }
    }
    normalize_rows(&Tensor::from_vec(sums, (n_classes, dim), &Device::Cpu)?)
}

pub(crate) fn embeddings_tensor(embeddings: &[Vec<f32>], dim: usize) -> Result<Tensor> {
    let flat: Vec<f32> = embeddings.iter().flat_map(|e| e.iter().copied()).collect();
    Ok(Tensor::from_vec(flat, (embeddings.len(), dim), &Device::Cpu)?)
}

/// Trains unit class directions `[n_classes, dim]` on fixed, normalised embeddings.
pub(crate) fn train_class_directions(
    embeddings: &Tensor,
    labels: &[u32],
    initial: &Tensor,
    config: &HeadConfig,
    seed: u64,
    progress: &indicatif::ProgressBar,
) -> Result<Tensor> {
    let (n_classes, _) = initial.dims2()?;
    let directions = Var::from_tensor(initial)?;
    let mut optimizer = AdamW::new(
        vec![directions.clone()],
        ParamsAdamW { lr: config.learning_rate, weight_decay: 0.0, ..ParamsAdamW::default() },
    )?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<u32> = (0..labels.len() as u32).collect();
    let n_steps = config.epochs * labels.len().div_ceil(config.batch_size.max(1));
    let mut step = 0usize;
    progress.set_length(config.epochs as u64);
    progress.set_position(0);
    for epoch in 0..config.epochs {
        let (mut loss_sum, mut n_batches) = (0f64, 0usize);
        order.shuffle(&mut rng);
        for batch in order.chunks(config.batch_size.max(1)) {
            optimizer.set_learning_rate(config.learning_rate * (1.0 - step as f64 / n_steps.max(1) as f64));
            step += 1;
            let idx = Tensor::new(batch, &Device::Cpu)?;
            let batch_labels: Vec<u32> = batch.iter().map(|&i| labels[i as usize]).collect();
            let targets = Tensor::new(batch_labels.as_slice(), &Device::Cpu)?;
            let x = embeddings.index_select(&idx, 0)?;
            let cosines = x.matmul(&normalize_rows(directions.as_tensor())?.t()?)?;
            let margins = candle_nn::encoding::one_hot(targets.clone(), n_classes, config.margin as f32, 0f32)?
                .to_dtype(DType::F32)?;
            let logits = ((cosines - margins)? * config.scale)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
            optimizer.backward_step(&loss)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            n_batches += 1;
        }
        progress.set_position(epoch as u64 + 1);
        progress.set_message(format!(
            "classifier epoch {}/{} loss {:.4}",
            epoch + 1,
            config.epochs,
            loss_sum / n_batches.max(1) as f64
        ));
    }
    normalize_rows(directions.as_tensor())
}

/// The scorer: class directions plus the labelled example embeddings.
#[derive(Debug, Clone)]
pub(crate) struct Scorer {
    /// `[n_classes, dim]`, unit rows.
    pub directions: Vec<f32>,
    /// `[n_examples, dim]`, unit rows.
    pub examples: Vec<f32>,
    pub example_labels: Vec<u32>,
    pub n_classes: usize,
    pub dim: usize,
    /// Weight of the nearest-example similarity in the blend (0: directions only).
    pub knn_weight: f32,
    /// `[n_out_of_scope_examples, dim]`, unit rows: the training set's out-of-scope examples.
    pub out_of_scope_examples: Vec<f32>,
}

/// Dot product with eight independent accumulators, so the compiler can vectorise it (the
/// nearest-example scan runs it once per training example for every message).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

impl Scorer {
    /// Blended similarity of `embedding` (unit) to every intent.
    pub fn intent_scores(&self, embedding: &[f32]) -> Vec<f32> {
        let mut direction_scores: Vec<f32> =
            self.directions.chunks_exact(self.dim).map(|direction| dot(direction, embedding)).collect();
        if self.knn_weight > 0.0 && !self.example_labels.is_empty() {
            let mut nearest = vec![f32::NEG_INFINITY; self.n_classes];
            for (example, &label) in self.examples.chunks_exact(self.dim).zip(&self.example_labels) {
                let similarity = dot(example, embedding);
                let slot = &mut nearest[label as usize];
                if similarity > *slot {
                    *slot = similarity;
                }
            }
            for (score, nearest) in direction_scores.iter_mut().zip(nearest) {
                let nearest = if nearest.is_finite() { nearest } else { *score };
                *score = (1.0 - self.knn_weight) * *score + self.knn_weight * nearest;
            }
        }
        direction_scores
    }

    /// Similarity of `embedding` to its nearest out-of-scope example, leaving out the example at
    /// `skip` (an out-of-scope example scored against the others); 0 without any.
    pub fn out_of_scope_similarity(&self, embedding: &[f32], skip: Option<usize>) -> f32 {
        let nearest = self
            .out_of_scope_examples
            .chunks_exact(self.dim)
            .enumerate()
            .filter(|(idx, _)| Some(*idx) != skip)
            .map(|(_, example)| dot(example, embedding))
            .fold(f32::NEG_INFINITY, f32::max);
        if nearest.is_finite() { nearest } else { 0.0 }
    }
}

/// Index and value of the largest score.
pub(crate) fn argmax(scores: &[f32]) -> (usize, f32) {
    scores
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (idx, s)| if s > best.1 { (idx, s) } else { best })
}

/// Softmax over the intent scores and the out-of-scope class's score (last: the threshold plus
/// the nearest out-of-scope example's similarity), as probabilities.
pub(crate) fn probabilities(scores: &[f32], out_of_scope_score: f32, scale: f32, temperature: f32) -> Vec<f32> {
    let factor = scale / temperature.max(1e-6);
    let max = scores.iter().copied().fold(out_of_scope_score, f32::max);
    let mut exps: Vec<f32> =
        scores.iter().chain(std::iter::once(&out_of_scope_score)).map(|s| ((s - max) * factor).exp()).collect();
    let total: f32 = exps.iter().sum();
    for e in &mut exps {
        *e /= total;
    }
    exps
}

/// A holdout item for calibration: its intent scores, its similarity to the nearest
/// out-of-scope example (never itself; 0 without any), and its gold class (`None`: out of scope).
pub(crate) struct CalibrationItem {
    pub scores: Vec<f32>,
    pub out_of_scope_similarity: f32,
    pub gold: Option<usize>,
}

impl CalibrationItem {
    /// The best intent, and the margin compared with the threshold.
    pub fn best_and_margin(&self) -> (usize, f32) {
        let (best, top) = argmax(&self.scores);
        (best, top - self.out_of_scope_similarity)
    }
}

/// A threshold that no margin falls below (margins are differences of cosines, at least -2):
/// nothing is rejected.
pub(crate) const NO_REJECTION: f32 = -4.0;

/// How the out-of-scope threshold is chosen (see [`choose_threshold`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ThresholdRule {
    /// With out-of-scope calibration items: the out-of-scope recall to aim for.
    pub target_oos_recall: f64,
    /// Without: the share of correctly classified in-scope items the threshold may reject.
    pub max_in_scope_rejection: f64,
}

/// Chooses the out-of-scope threshold on the margins of held-out items.
///
/// With out-of-scope items (n of them): the threshold rejects the `k = ceil((n + 1) * r)`
/// lowest-margin ones (all of them when `k > n`), `r` being the target recall. If the
/// calibration items and future out-of-scope messages are exchangeable, a new out-of-scope
/// message then falls below the threshold with probability at least `k / (n + 1) >= r` (the
/// split-conformal quantile), whatever the in-scope items do: the operating point is stated, not
/// a by-product of how many out-of-scope examples the data happens to hold (the earlier rule,
/// maximising right decisions on the slice, weighed out-of-scope items by their share of the
/// slice). Without out-of-scope items: the threshold rejects at most `max_in_scope_rejection` of
/// the correctly classified in-scope items; 0 rejects nothing ([`NO_REJECTION`]), since then
/// nothing shows where out-of-scope messages would score and every rejection is a cost.
pub(crate) fn choose_threshold(items: &[CalibrationItem], rule: ThresholdRule) -> f32 {
    let mut correct: Vec<f32> = Vec::new();
    let mut out_of_scope: Vec<f32> = Vec::new();
    for item in items {
        let (best, margin) = item.best_and_margin();
        match item.gold {
            Some(gold) if best == gold => correct.push(margin),
            Some(_) => {}
            None => out_of_scope.push(margin),
        }
    }
    if !out_of_scope.is_empty() {
        if rule.target_oos_recall <= 0.0 {
            return NO_REJECTION;
        }
        out_of_scope.sort_by(f32::total_cmp);
        let n = out_of_scope.len();
        let k = ((n + 1) as f64 * rule.target_oos_recall.min(1.0)).ceil() as usize;
        let k = k.clamp(1, n);
        // Reject the k lowest: halfway to the next one, or just above the highest.
        return match out_of_scope.get(k) {
            Some(&next) => (out_of_scope[k - 1] + next) / 2.0,
            None => out_of_scope[n - 1] + 1e-4,
        };
    }
    if correct.is_empty() || rule.max_in_scope_rejection <= 0.0 {
        return NO_REJECTION;
    }
    correct.sort_by(f32::total_cmp);
    let idx = ((correct.len() as f64) * rule.max_in_scope_rejection).floor() as usize;
    correct[idx.min(correct.len() - 1)] - 1e-4
}

/// Fits the softmax temperature by minimising the negative log-likelihood on held-out items
/// (golden-section search on log T).
pub(crate) fn fit_temperature(items: &[CalibrationItem], threshold: f32, scale: f32) -> f32 {
    if items.is_empty() {
        return 1.0;
    }
    let nll = |temperature: f32| -> f64 {
        items
            .iter()
            .map(|item| {
                let probs = probabilities(&item.scores, threshold + item.out_of_scope_similarity, scale, temperature);
                let p = match item.gold {
                    Some(gold) => probs[gold],
                    None => probs[probs.len() - 1],
                };
                -f64::from(p.max(1e-12)).ln()
            })
            .sum()
    };
    let (mut lo, mut hi) = ((0.05f32).ln(), (20.0f32).ln());
    let ratio = (5f32.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let a = hi - ratio * (hi - lo);
        let b = lo + ratio * (hi - lo);
        if nll(a.exp()) < nll(b.exp()) {
            hi = b;
        } else {
            lo = a;
        }
    }
    ((lo + hi) / 2.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..389).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..389).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
        assert_eq!(dot(&[], &[]), 0.0);
    }

    #[test]
    fn probabilities_sum_to_one_and_threshold_is_last() {
        let probs = probabilities(&[0.9, 0.1], 0.5, 20.0, 1.0);
        assert_eq!(probs.len(), 3);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(probs[0] > probs[2] && probs[2] > probs[1]);
    }

    fn item(scores: Vec<f32>, out_of_scope_similarity: f32, gold: Option<usize>) -> CalibrationItem {
        CalibrationItem { scores, out_of_scope_similarity, gold }
    }

    fn rule(target_oos_recall: f64, max_in_scope_rejection: f64) -> ThresholdRule {
        ThresholdRule { target_oos_recall, max_in_scope_rejection }
    }

    #[test]
    fn threshold_separates_out_of_scope() {
        let items = vec![
            item(vec![0.9, 0.1], 0.0, Some(0)),
            item(vec![0.2, 0.8], 0.0, Some(1)),
            item(vec![0.3, 0.2], 0.0, None),
            item(vec![0.1, 0.35], 0.0, None),
        ];
        let threshold = choose_threshold(&items, rule(0.85, 0.02));
        assert!(threshold > 0.35 && threshold < 0.8, "{threshold}");
        let temperature = fit_temperature(&items, threshold, 20.0);
        assert!(temperature > 0.05 && temperature < 20.0);
    }

    /// Out-of-scope items with margins 0.01, 0.02, ..., 1.00 (n = 100).
    fn hundred_out_of_scope() -> Vec<CalibrationItem> {
        (1..=100).map(|i| item(vec![i as f32 / 100.0, 0.0], 0.0, None)).collect()
    }

    #[test]
    fn threshold_meets_the_target_recall_with_the_conformal_quantile() {
        let items = hundred_out_of_scope();
        let rejected_share = |threshold: f32| {
            items.iter().filter(|item| item.best_and_margin().1 < threshold).count() as f64 / items.len() as f64
        };
        // ceil(101 * 0.8) = 81 of 100 rejected; ceil(101 * 0.85) = 86; ceil(101 * 0.5) = 51.
        for (target, expected) in [(0.8, 0.81), (0.85, 0.86), (0.5, 0.51), (1.0, 1.0), (0.999, 1.0)] {
            let threshold = choose_threshold(&items, rule(target, 0.0));
            assert_eq!(rejected_share(threshold), expected, "target {target}: threshold {threshold}");
        }
        assert_eq!(choose_threshold(&items, rule(0.0, 0.5)), NO_REJECTION);
        // In-scope items do not move the threshold when out-of-scope items are there.
        let mut with_in_scope = hundred_out_of_scope();
        with_in_scope.extend((0..50).map(|i| item(vec![0.5 + i as f32 / 200.0, 0.0], 0.0, Some(0))));
        assert_eq!(choose_threshold(&with_in_scope, rule(0.8, 0.0)), choose_threshold(&items, rule(0.8, 0.0)));
    }

    #[test]
    fn threshold_is_on_the_margin_to_the_nearest_out_of_scope_example() {
        // The same top scores, but out-of-scope items lie close to out-of-scope examples: the
        // margin separates what the top score alone cannot.
        let items = vec![
            item(vec![0.7, 0.1], 0.1, Some(0)),
            item(vec![0.1, 0.6], 0.2, Some(1)),
            item(vec![0.7, 0.2], 0.65, None),
            item(vec![0.1, 0.6], 0.55, None),
        ];
        assert_eq!(items[2].best_and_margin(), (0, 0.7 - 0.65));
        let threshold = choose_threshold(&items, rule(0.9, 0.0));
        let kept: Vec<bool> = items.iter().map(|item| item.best_and_margin().1 >= threshold).collect();
        assert_eq!(kept, [true, true, false, false], "threshold {threshold}");
    }

    #[test]
    fn without_out_of_scope_items_the_rejection_budget_decides() {
        let items: Vec<CalibrationItem> = (1..=100).map(|i| item(vec![i as f32 / 100.0, 0.0], 0.0, Some(0))).collect();
        assert_eq!(choose_threshold(&items, rule(0.85, 0.0)), NO_REJECTION);
        let threshold = choose_threshold(&items, rule(0.85, 0.02));
        let n_rejected = items.iter().filter(|item| item.best_and_margin().1 < threshold).count();
        assert_eq!(n_rejected, 2, "threshold {threshold}");
        // Wrongly classified items do not count against the budget.
        let mut with_wrong = items;
        with_wrong.push(item(vec![0.0, 0.001], 0.0, Some(0)));
        assert_eq!(choose_threshold(&with_wrong, rule(0.85, 0.02)), threshold);
        assert_eq!(choose_threshold(&[], rule(0.85, 0.02)), NO_REJECTION);
    }

    #[test]
    fn nearest_out_of_scope_example_leaves_out_the_skipped_one() {
        let scorer = Scorer {
            directions: vec![1.0, 0.0],
            examples: vec![],
            example_labels: vec![],
            n_classes: 1,
            dim: 2,
            knn_weight: 0.0,
            out_of_scope_examples: vec![0.0, 1.0, 0.6, 0.8],
        };
        assert!((scorer.out_of_scope_similarity(&[0.0, 1.0], None) - 1.0).abs() < 1e-6);
        assert!((scorer.out_of_scope_similarity(&[0.0, 1.0], Some(0)) - 0.8).abs() < 1e-6);
        let without = Scorer { out_of_scope_examples: vec![], ..scorer };
        assert_eq!(without.out_of_scope_similarity(&[0.0, 1.0], None), 0.0);
    }

    #[test]
    fn head_learns_separable_classes() {
        let embeddings = vec![vec![1.0, 0.0], vec![0.9, 0.1], vec![0.0, 1.0], vec![0.1, 0.9]];
        let embeddings: Vec<Vec<f32>> = embeddings
            .into_iter()
            .map(|e: Vec<f32>| {
                let n = e.iter().map(|x| x * x).sum::<f32>().sqrt();
                e.into_iter().map(|x| x / n).collect()
            })
            .collect();
        let labels = [0u32, 0, 1, 1];
        let initial = class_centroids(&embeddings, &labels, 2, 2).unwrap();
        let x = embeddings_tensor(&embeddings, 2).unwrap();
        let directions =
            train_class_directions(&x, &labels, &initial, &HeadConfig::default(), 1, &indicatif::ProgressBar::hidden())
                .unwrap();
        let directions: Vec<f32> = directions.flatten_all().unwrap().to_vec1().unwrap();
        let scorer = Scorer {
            directions,
            examples: embeddings.concat(),
            example_labels: labels.to_vec(),
            n_classes: 2,
            dim: 2,
            knn_weight: 0.5,
            out_of_scope_examples: vec![],
        };
        assert_eq!(argmax(&scorer.intent_scores(&[1.0, 0.0])).0, 0);
        assert_eq!(argmax(&scorer.intent_scores(&[0.0, 1.0])).0, 1);
    }
}
