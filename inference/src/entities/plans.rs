//! Plan names from the operator's catalogue, tolerant to typos ("premum plan") and to partial
//! names ("the unlimited one"), plus plan ids.

use super::{Entity, EntityValue};

/// One plan of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCatalogEntry {
    pub plan_id: String,
    pub name: String,
}

/// Words that name no particular plan, so they never identify one alone.
const GENERIC_WORDS: &[&str] =
    &["plan", "plans", "the", "a", "plus", "share", "max", "pro", "lite", "mobile", "package"];

/// Common words a typo-tolerant match would confuse with a plan word.
const LOOKALIKE_WORDS: &[&str] = &["basis", "basics", "premise", "limited"];

#[derive(Debug, Clone)]
struct IndexedPlan {
    entry: PlanCatalogEntry,
    tokens: Vec<String>,
    keywords: Vec<String>,
}

/// Finds catalogue plans mentioned in a text.
#[derive(Debug, Clone, Default)]
pub struct PlanMatcher {
    plans: Vec<IndexedPlan>,
}

struct Token<'t> {
    text: String,
    start: usize,
    end: usize,
    _source: &'t str,
}

fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (idx, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        let is_word = c.is_alphanumeric();
        match (start, is_word) {
            (None, true) => start = Some(idx),
            (Some(s), false) => {
                tokens.push(Token { text: text[s..idx].to_lowercase(), start: s, end: idx, _source: text });
                start = None;
            }
            _ => {}
        }
    }
    tokens
}

fn similar(word: &str, keyword: &str) -> f64 {
    if word == keyword {
        return 1.0;
    }
    let n_chars = keyword.chars().count();
    if n_chars <= 3 || LOOKALIKE_WORDS.contains(&word) {
        return 0.0;
    }
    let similarity = strsim::normalized_damerau_levenshtein(word, keyword);
    let threshold = if n_chars == 4 { 0.75 } else { 0.78 };
    if similarity >= threshold { similarity } else { 0.0 }
}

impl PlanMatcher {
    pub fn new(plans: Vec<PlanCatalogEntry>) -> Self {
        let plans = plans
            .into_iter()
            .map(|entry| {
                let tokens: Vec<String> = tokenize(&entry.name).into_iter().map(|t| t.text).collect();
                let mut keywords: Vec<String> =
                    tokens.iter().filter(|t| !GENERIC_WORDS.contains(&t.as_str())).cloned().collect();
                if keywords.is_empty() {
                    keywords = tokens.clone();
                }
                IndexedPlan { entry, tokens, keywords }
            })
            .collect();
        Self { plans }
    }

    /// The catalogue entry with this id (case-insensitive).
    pub fn plan_by_id(&self, plan_id: &str) -> Option<&PlanCatalogEntry> {
        self.plans.iter().map(|p| &p.entry).find(|p| p.plan_id.eq_ignore_ascii_case(plan_id))
    }

    /// The best plan named in `text`, if any.
    pub fn best_plan(&self, text: &str) -> Option<&PlanCatalogEntry> {
        let entity = self.find_plans(text).into_iter().next()?;
        match entity.value {
            EntityValue::Plan { plan_id, .. } => self.plan_by_id(&plan_id),
            _ => None,
        }
    }

    pub(crate) fn find_plans(&self, text: &str) -> Vec<Entity> {
        let tokens = tokenize(text);
        // (start token, end token exclusive, plan index, score)
        let mut candidates: Vec<(usize, usize, usize, f64)> = Vec::new();
        for (plan_idx, plan) in self.plans.iter().enumerate() {
            let n = plan.tokens.len();
            if n == 0 || n > tokens.len() {
                continue;
            }
            for start in 0..=tokens.len() - n {
                let sims: Vec<f64> = (0..n).map(|k| similar(&tokens[start + k].text, &plan.tokens[k])).collect();
                if sims.iter().all(|&s| s > 0.0) {
                    candidates.push((start, start + n, plan_idx, 2.0 + sims.iter().sum::<f64>() / n as f64));
                }
            }
        }
        for (token_idx, token) in tokens.iter().enumerate() {
            let mut matches: Vec<(usize, f64)> = Vec::new();
            for (plan_idx, plan) in self.plans.iter().enumerate() {
                let best = plan.keywords.iter().map(|k| similar(&token.text, k)).fold(0.0, f64::max);
                if best > 0.0 {
                    matches.push((plan_idx, best));
                }
            }
            let chosen = match matches.as_slice() {
                [] => None,
                [single] => Some(*single),
                several => {
                    // "basic" names both "Basic Plan" and "IoT Basic": the plan named by this word
                    // alone wins; otherwise it is ambiguous.
                    let alone: Vec<_> =
                        several.iter().filter(|(plan_idx, _)| self.plans[*plan_idx].keywords.len() == 1).collect();
                    (alone.len() == 1).then(|| *alone[0])
                }
            };
            if let Some((plan_idx, similarity)) = chosen {
                let mut end = token_idx + 1;
                if tokens.get(end).is_some_and(|t| t.text == "plan") {
                    end += 1;
                }
                candidates.push((token_idx, end, plan_idx, 1.0 + similarity));
            }
        }
        // Highest score first, then leftmost; drop overlaps.
        candidates.sort_by(|a, b| b.3.total_cmp(&a.3).then(a.0.cmp(&b.0)));
        let mut taken: Vec<(usize, usize)> = Vec::new();
        let mut found = Vec::new();
        for (start, end, plan_idx, _) in candidates {
            if taken.iter().any(|&(s, e)| start < e && s < end) {
                continue;
            }
            taken.push((start, end));
            let entry = &self.plans[plan_idx].entry;
            found.push(Entity {
                value: EntityValue::Plan { plan_id: entry.plan_id.clone(), name: entry.name.clone() },
                start: tokens[start].start,
                end: tokens[end - 1].end,
            });
        }
        found.sort_by_key(|e| e.start);
        found
    }
}
