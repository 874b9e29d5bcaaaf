//! Knowledge answers: extractive first, generated only when the guardrail passes it.
//!
//! The extractive answer is the one or two sentences of the retrieved passages that best
//! answer the question (by embedding similarity). The chat model may condense the passages
//! instead; each generated sentence is checked by [`guardrail`](super::guardrail) and a
//! sentence stating a fact not in the evidence is replaced by the extractive answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::guardrail::{Evidence, split_sentences};
use super::models::{ChatBackend, SentenceEncoder};

/// A retrieved passage with where it came from.
#[derive(Debug, Clone)]
pub struct Passage {
    pub chunk_id: String,
    pub document: String,
    pub section: String,
    pub text: String,
    pub score: f32,
}

/// What a knowledge answer says and how it was made.
#[derive(Debug, Clone)]
pub struct KnowledgeAnswer {
    pub text: String,
    /// Indices into the passages the answer used.
    pub used_passages: Vec<usize>,
    /// The chat model's text survived the guardrail (in whole or in part).
    pub generated: bool,
    pub n_sentences_passed: usize,
    pub n_sentences_replaced: usize,
}

/// Counters of the guardrail, exported as metrics.
#[derive(Debug, Default)]
pub struct GuardrailStats {
    pub sentences_passed: AtomicU64,
    pub sentences_replaced: AtomicU64,
    pub answers_generated: AtomicU64,
    pub answers_extractive: AtomicU64,
}

/// How many passages feed the extractive answer and the chat model's prompt.
const PASSAGES_USED: usize = 3;
/// Most characters of one passage in the chat prompt (keeps prompt processing short).
const PASSAGE_PROMPT_CHARS: usize = 700;
const SENTENCE_CACHE_LIMIT: usize = 50_000;

pub struct Answerer {
    sentence_cache: Mutex<HashMap<String, Vec<f32>>>,
    pub stats: GuardrailStats,
}

impl Default for Answerer {
    fn default() -> Self {
        Self::new()
    }
}

impl Answerer {
    pub fn new() -> Self {
        Self { sentence_cache: Mutex::new(HashMap::new()), stats: GuardrailStats::default() }
    }

    /// The best sentences of the passages for the question, in reading order.
    pub fn extractive(
        &self,
        encoder: &dyn SentenceEncoder,
        question_embedding: &[f32],
        passages: &[Passage],
    ) -> anyhow::Result<(String, Vec<usize>)> {
        let mut candidates: Vec<(usize, usize, String)> = Vec::new();
        for (passage_idx, passage) in passages.iter().take(PASSAGES_USED).enumerate() {
            for (sentence_idx, sentence) in answer_units(&passage.text).into_iter().enumerate() {
                candidates.push((passage_idx, sentence_idx, sentence));
            }
        }
        if candidates.is_empty() {
            return Ok((String::new(), Vec::new()));
        }
        let texts: Vec<&str> = candidates.iter().map(|(_, _, text)| text.as_str()).collect();
        let embeddings = self.embed_cached(encoder, &texts)?;
        let mut scored: Vec<(f32, usize)> = embeddings
            .iter()
            .enumerate()
            .map(|(idx, embedding)| {
                let passage_bonus = match candidates[idx].0 {
                    0 => 0.06,
                    1 => 0.03,
                    _ => 0.0,
                };
                (dot(question_embedding, embedding) + passage_bonus, idx)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (best_score, best_idx) = scored[0];
        let mut chosen = vec![best_idx];
        if let Some(&(second_score, second_idx)) = scored.get(1) {
            let same_passage = candidates[second_idx].0 == candidates[best_idx].0;
            if second_score >= best_score - 0.08 && (same_passage || second_score >= best_score - 0.03) {
                chosen.push(second_idx);
            }
        }
        chosen.sort_by_key(|&idx| (candidates[idx].0, candidates[idx].1));
        let text = chosen.iter().map(|&idx| ensure_period(&candidates[idx].2)).collect::<Vec<_>>().join(" ");
        let mut used: Vec<usize> = chosen.iter().map(|&idx| candidates[idx].0).collect();
        used.dedup();
        Ok((text, used))
    }

    /// Answers a question from passages: generated and checked when a chat model is given,
    /// else extractive. `extra_evidence` is account data the answer may also state.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &self,
        encoder: &dyn SentenceEncoder,
        chat: Option<&dyn ChatBackend>,
        question: &str,
        question_embedding: &[f32],
        passages: &[Passage],
        extra_evidence: &[String],
        plan_names: &[String],
        max_new_tokens: usize,
        on_token: &mut dyn FnMut(&str),
    ) -> anyhow::Result<KnowledgeAnswer> {
        let (extractive, used_passages) = self.extractive(encoder, question_embedding, passages)?;
        let Some(chat) = chat.filter(|_| !passages.is_empty() && max_new_tokens > 0) else {
            self.stats.answers_extractive.fetch_add(1, Ordering::Relaxed);
            return Ok(KnowledgeAnswer {
                text: extractive,
                used_passages,
                generated: false,
                n_sentences_passed: 0,
                n_sentences_replaced: 0,
            });
        };
        let used = &passages[..passages.len().min(PASSAGES_USED)];
        let (system, user) = knowledge_prompt(question, used);
        let generated = chat.chat(&system, &user, max_new_tokens, on_token)?;

        let mut evidence_texts: Vec<&str> = used.iter().map(|p| p.text.as_str()).collect();
        evidence_texts.extend(extra_evidence.iter().map(String::as_str));
        evidence_texts.push(question);
        let evidence = Evidence::new(&evidence_texts, plan_names);
        let mut kept = Vec::new();
        let (mut n_passed, mut n_replaced) = (0, 0);
        let mut replaced_once = false;
        for sentence in split_sentences(&generated) {
            if evidence.supports(&sentence) && !is_refusal(&sentence) {
                n_passed += 1;
                kept.push(sentence);
            } else {
                n_replaced += 1;
                if !replaced_once && !extractive.is_empty() {
                    kept.push(extractive.clone());
                    replaced_once = true;
                }
            }
        }
        self.stats.sentences_passed.fetch_add(n_passed as u64, Ordering::Relaxed);
        self.stats.sentences_replaced.fetch_add(n_replaced as u64, Ordering::Relaxed);
        let generated_survived = n_passed > 0;
        if generated_survived {
            self.stats.answers_generated.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.answers_extractive.fetch_add(1, Ordering::Relaxed);
        }
        let text = if kept.is_empty() { extractive } else { kept.join(" ") };
        Ok(KnowledgeAnswer {
            text,
            used_passages: if generated_survived { (0..used.len()).collect() } else { used_passages },
            generated: generated_survived,
            n_sentences_passed: n_passed,
            n_sentences_replaced: n_replaced,
        })
    }

    fn embed_cached(&self, encoder: &dyn SentenceEncoder, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = {
            let cache = self.sentence_cache.lock().expect("sentence cache poisoned");
            texts.iter().map(|text| cache.get(*text).cloned()).collect()
        };
        let missing: Vec<&str> =
            texts.iter().zip(&out).filter(|(_, cached)| cached.is_none()).map(|(text, _)| *text).collect();
        if !missing.is_empty() {
            let fresh = encoder.embed(&missing)?;
            let mut cache = self.sentence_cache.lock().expect("sentence cache poisoned");
            if cache.len() + fresh.len() > SENTENCE_CACHE_LIMIT {
                cache.clear();
            }
            let mut fresh_iter = fresh.into_iter();
            for (slot, text) in out.iter_mut().zip(texts) {
                if slot.is_none() {
                    let embedding = fresh_iter.next().expect("one embedding per text");
                    cache.insert((*text).to_string(), embedding.clone());
                    *slot = Some(embedding);
                }
            }
        }
        Ok(out.into_iter().map(|e| e.expect("filled above")).collect())
    }
}

/// The chat prompt for a knowledge answer: works with any instruction-tuned chat model.
pub fn knowledge_prompt(question: &str, passages: &[Passage]) -> (String, String) {
    let system = "You are a customer-care assistant for a mobile operator. Answer the customer's question \
                  in one or two short sentences, using only facts stated in the passages. Copy prices, \
                  amounts and plan names exactly as written. If the passages do not answer the question, \
                  say that you are not sure."
        .to_string();
    let mut user = String::from("Passages:\n");
    for (idx, passage) in passages.iter().enumerate() {
        let text: String = passage.text.chars().take(PASSAGE_PROMPT_CHARS).collect();
        user.push_str(&format!("[{}] {}\n{}\n\n", idx + 1, passage.section, text.trim()));
    }
    user.push_str(&format!("Question: {question}\nAnswer:"));
    (system, user)
}

/// Sentences (and table rows, as "Header: value" pairs) of a passage worth quoting.
pub fn answer_units(text: &str) -> Vec<String> {
    let mut units = Vec::new();
    let mut table_header: Option<Vec<String>> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('|') {
            let cells: Vec<String> =
                trimmed.trim_matches('|').split('|').map(|cell| cell.trim().replace("**", "")).collect();
            if cells.iter().all(|cell| cell.chars().all(|c| matches!(c, '-' | ':' | ' '))) {
                continue; // the separator row
            }
            match &table_header {
                None => table_header = Some(cells),
                Some(header) => {
                    let row = header
                        .iter()
                        .zip(&cells)
                        .filter(|(_, value)| !value.is_empty())
                        .map(|(name, value)| if name.is_empty() { value.clone() } else { format!("{name}: {value}") })
                        .collect::<Vec<_>>()
                        .join("; ");
                    if !row.is_empty() {
                        units.push(row);
                    }
                }
            }
            continue;
        }
        table_header = None;
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let content = trimmed.trim_start_matches(['-', '*', '+', '>']).trim();
        let content = content.replace("**", "").replace('`', "");
        for sentence in split_sentences(&content) {
            if sentence.split_whitespace().count() >= 3 {
                units.push(sentence);
            }
        }
    }
    units
}

fn ensure_period(sentence: &str) -> String {
    let trimmed = sentence.trim();
    if trimmed.ends_with(['.', '!', '?', ':']) { trimmed.to_string() } else { format!("{trimmed}.") }
}

fn is_refusal(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    ["i'm not sure", "i am not sure", "i don't know", "i do not know", "as an ai"].iter().any(|p| lower.contains(p))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_header_value_pairs() {
        let text = "# Plans\n| Plan | Data | Price |\n|---|---|---|\n| Basic Plan | 5 GB | $40 |\n| **Premium Plan** | 15 GB | $65 |\n";
        assert_eq!(
            answer_units(text),
            vec!["Plan: Basic Plan; Data: 5 GB; Price: $40", "Plan: Premium Plan; Data: 15 GB; Price: $65"]
        );
    }

    #[test]
    fn headings_and_short_fragments_are_skipped() {
        let text = "## Late fees\nA late fee of $10 applies after the due date. Pay now.\n- You can pay by card online.";
        assert_eq!(answer_units(text), vec!["A late fee of $10 applies after the due date.", "You can pay by card online."]);
    }
}
