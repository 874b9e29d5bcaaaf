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
    /// Cosine similarity of the passage to the question, when the vector search found it.
    pub vector_similarity: Option<f32>,
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
    /// Generated answers that passed the guardrail but left out the best passage's facts.
    pub answers_uncovered: AtomicU64,
}

/// How many passages feed the extractive answer and the chat model's prompt.
const PASSAGES_USED: usize = 3;
/// Most units (sentences, table rows) in the chat prompt, and most characters of them: a short
/// prompt keeps the time to the first token low and the small model on topic.
const PROMPT_UNITS: usize = 4;
const PROMPT_CONTEXT_CHARS: usize = 500;
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

    /// Every quotable unit of the top passages, best first.
    fn rank_units(
        &self,
        encoder: &dyn SentenceEncoder,
        question_embedding: &[f32],
        passages: &[Passage],
    ) -> anyhow::Result<Vec<RankedUnit>> {
        let mut units: Vec<RankedUnit> = Vec::new();
        let mut questions: Vec<(usize, String)> = Vec::new();
        for (passage_idx, passage) in passages.iter().take(PASSAGES_USED).enumerate() {
            for (unit_idx, (text, question)) in answer_units_after_questions(&passage.text).into_iter().enumerate() {
                if let Some(question) = question {
                    questions.push((units.len(), question));
                }
                units.push(RankedUnit { score: 0.0, passage_idx, unit_idx, text });
            }
        }
        if units.is_empty() {
            return Ok(units);
        }
        let mut texts: Vec<&str> = units.iter().map(|unit| unit.text.as_str()).collect();
        texts.extend(questions.iter().map(|(_, question)| question.as_str()));
        let embeddings = self.embed_cached(encoder, &texts)?;
        let (unit_embeddings, question_embeddings) = embeddings.split_at(units.len());
        for (unit, embedding) in units.iter_mut().zip(unit_embeddings) {
            unit.score = dot(question_embedding, embedding) + passage_bonus(unit.passage_idx);
        }
        // The first sentence under a question heading scores as well as the heading matches the
        // customer's question (a little less: the heading is not the answer itself).
        for ((unit_idx, _), embedding) in questions.iter().zip(question_embeddings) {
            let unit = &mut units[*unit_idx];
            unit.score = unit.score.max(dot(question_embedding, embedding) - 0.02 + passage_bonus(unit.passage_idx));
        }
        units.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(units)
    }

    /// The best sentences of the passages for the question, in reading order.
    pub fn extractive(
        &self,
        encoder: &dyn SentenceEncoder,
        question_embedding: &[f32],
        passages: &[Passage],
    ) -> anyhow::Result<(String, Vec<usize>)> {
        let ranked = self.rank_units(encoder, question_embedding, passages)?;
        Ok(compose_extractive(&ranked))
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
        let ranked = self.rank_units(encoder, question_embedding, passages)?;
        let (extractive, used_passages) = compose_extractive(&ranked);
        let extractive_answer = |stats: &GuardrailStats, n_passed, n_replaced| {
            stats.answers_extractive.fetch_add(1, Ordering::Relaxed);
            KnowledgeAnswer {
                text: extractive.clone(),
                used_passages: used_passages.clone(),
                generated: false,
                n_sentences_passed: n_passed,
                n_sentences_replaced: n_replaced,
            }
        };
        let Some(chat) = chat.filter(|_| !ranked.is_empty() && max_new_tokens > 0) else {
            return Ok(extractive_answer(&self.stats, 0, 0));
        };
        let context = prompt_context(&ranked);
        let (system, user) = knowledge_prompt(question, &context);
        let generated = chat.chat(&system, &user, max_new_tokens, on_token)?;

        let used = &passages[..passages.len().min(PASSAGES_USED)];
        let mut evidence_texts: Vec<&str> = used.iter().map(|p| p.text.as_str()).collect();
        evidence_texts.extend(extra_evidence.iter().map(String::as_str));
        evidence_texts.push(question);
        let evidence = Evidence::new(&evidence_texts, plan_names);
        let mut kept: Vec<String> = Vec::new();
        let (mut n_passed, mut n_replaced) = (0, 0);
        let mut replaced_once = false;
        for sentence in complete_sentences(&generated) {
            if kept.contains(&sentence) {
                continue; // small models repeat themselves
            }
            if evidence.supports(&sentence)
                && states_numbers_whole(&sentence, &ranked)
                && !is_refusal(&sentence)
                && !sentence.ends_with('?')
            {
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
        // The model dodged or dropped part of the answer: the best passage states facts (prices,
        // amounts, plans) and the generated answer leaves one out. "The early termination fee
        // is $200" passes the fact check yet drops "$10 per remaining month" and turns a cap
        // into a price; the passage's own sentence answers better.
        let key_facts = ranked.first().map(|unit| facts_of(&unit.text, plan_names)).unwrap_or_default();
        let kept_text = kept.join(" ");
        let covers_key_facts = key_facts.is_empty() || {
            let kept_facts = facts_of(&kept_text, plan_names);
            key_facts.iter().all(|fact| kept_facts.contains(fact))
        };
        if n_passed == 0 || !covers_key_facts {
            self.stats.answers_uncovered.fetch_add(u64::from(n_passed > 0 && !covers_key_facts), Ordering::Relaxed);
            return Ok(extractive_answer(&self.stats, n_passed, n_replaced));
        }
        self.stats.answers_generated.fetch_add(1, Ordering::Relaxed);
        let mut used_passages: Vec<usize> = context.iter().map(|unit| unit.passage_idx).collect();
        used_passages.sort_unstable();
        used_passages.dedup();
        Ok(KnowledgeAnswer {
            text: kept_text,
            used_passages,
            generated: true,
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

/// The chat prompt for a knowledge answer: the question and the best facts of the passages,
/// short so that prompt processing is quick. Works with any instruction-tuned chat model.
pub fn knowledge_prompt(question: &str, context: &[&RankedUnit]) -> (String, String) {
    let system = "You are a customer-care assistant for a mobile operator. Answer the customer's question \
                  in one or two short sentences, using only the facts below. Copy prices, amounts and plan \
                  names exactly as written."
        .to_string();
    let mut user = String::from("Facts:\n");
    for unit in context {
        user.push_str(&format!("- {}\n", unit.text));
    }
    user.push_str(&format!("\nQuestion: {question}"));
    (system, user)
}

/// A quotable unit of a passage and how well it answers the question.
#[derive(Debug, Clone)]
pub struct RankedUnit {
    pub score: f32,
    pub passage_idx: usize,
    pub unit_idx: usize,
    pub text: String,
}

/// The one or two best units, in reading order, and the passages they came from.
fn compose_extractive(ranked: &[RankedUnit]) -> (String, Vec<usize>) {
    let Some(best) = ranked.first() else { return (String::new(), Vec::new()) };
    let mut chosen = vec![best];
    if let Some(second) = ranked.get(1) {
        let same_passage = second.passage_idx == best.passage_idx;
        if second.score >= best.score - 0.08 && (same_passage || second.score >= best.score - 0.03) {
            chosen.push(second);
        }
    }
    chosen.sort_by_key(|unit| (unit.passage_idx, unit.unit_idx));
    let text = chosen.iter().map(|unit| ensure_period(&unit.text)).collect::<Vec<_>>().join(" ");
    let mut used: Vec<usize> = chosen.iter().map(|unit| unit.passage_idx).collect();
    used.dedup();
    (text, used)
}

/// The best units for the chat prompt, in reading order, within a character budget.
fn prompt_context(ranked: &[RankedUnit]) -> Vec<&RankedUnit> {
    let mut chosen: Vec<&RankedUnit> = Vec::new();
    let mut n_chars = 0;
    for unit in ranked.iter().take(PROMPT_UNITS) {
        if n_chars + unit.text.len() > PROMPT_CONTEXT_CHARS && !chosen.is_empty() {
            break;
        }
        n_chars += unit.text.len();
        chosen.push(unit);
    }
    chosen.sort_by_key(|unit| (unit.passage_idx, unit.unit_idx));
    chosen
}

/// The sentences of a generation, without a last one cut off by the token limit.
fn complete_sentences(generated: &str) -> Vec<String> {
    let mut sentences = split_sentences(generated);
    if sentences.len() > 1 && sentences.last().is_some_and(|last| !last.ends_with(['.', '!', '?'])) {
        sentences.pop();
    }
    sentences
}

/// What ranking a unit gains from its passage's rank (retrieval already judged the passages).
fn passage_bonus(passage_idx: usize) -> f32 {
    match passage_idx {
        0 => 0.06,
        1 => 0.03,
        _ => 0.0,
    }
}

/// Whether the numbers of a generated sentence come whole from one sentence of the passages:
/// some passage sentence states all of them, and states no other number (a table row may state
/// more: its cells are separate facts). "The early termination fee is $200" fails against "$10
/// for each full month left, up to a maximum of $200": each number is in the evidence, the
/// claim is not.
fn states_numbers_whole(sentence: &str, units: &[RankedUnit]) -> bool {
    let numbers = super::guardrail::numbers_in(sentence);
    if numbers.is_empty() {
        return true;
    }
    units.iter().any(|unit| {
        let unit_numbers = super::guardrail::numbers_in(&unit.text);
        let is_table_row = unit.text.contains("; ") && unit.text.contains(": ");
        numbers.iter().all(|n| unit_numbers.contains(n))
            && (is_table_row || unit_numbers.iter().all(|n| numbers.contains(n)))
    })
}

/// Numbers and plan names a text states (lowercased), for comparing two answers.
fn facts_of(text: &str, plan_names: &[String]) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut facts: Vec<String> = super::guardrail::numbers_in(text);
    facts.extend(plan_names.iter().map(|name| name.to_lowercase()).filter(|name| lower.contains(name.as_str())));
    facts
}

/// Sentences (and table rows, as "Header: value" pairs) of a passage worth quoting.
pub fn answer_units(text: &str) -> Vec<String> {
    answer_units_after_questions(text).into_iter().map(|(unit, _)| unit).collect()
}

/// [`answer_units`], each with the question heading it directly answers, if any: the first
/// sentence under "How much is the early termination fee?" is that question's answer even when
/// it only says "The fee is $10 for each full month left".
fn answer_units_after_questions(text: &str) -> Vec<(String, Option<String>)> {
    let mut units: Vec<(String, Option<String>)> = Vec::new();
    let mut question: Option<String> = None;
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
                        units.push((row, question.take()));
                    }
                }
            }
            continue;
        }
        table_header = None;
        let heading = trimmed.trim_start_matches('#').trim();
        if heading.ends_with('?') && (trimmed.starts_with('#') || heading.split_whitespace().count() <= 15) {
            question = Some(heading.to_string());
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with("---") {
            question = None; // another section
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        // A heading kept as a line of the chunk ("How to get a replacement SIM"): a title, not
        // an answer. List items and sentences end in punctuation or start with a marker.
        let is_list_item =
            trimmed.starts_with(['-', '*', '+', '>']) || trimmed.chars().next().is_some_and(|c| c.is_ascii_digit());
        let ends_like_text = trimmed.ends_with(['.', '!', '?', ':', ';', ')', '"']);
        if !is_list_item && !ends_like_text && trimmed.split_whitespace().count() <= 12 {
            question = None;
            continue;
        }
        let content = trimmed.trim_start_matches(['-', '*', '+', '>']).trim();
        let content = content.replace("**", "").replace('`', "");
        for sentence in split_sentences(&content) {
            // Short fragments ("Compared with other plans.") say nothing on their own.
            let n_words = sentence.split_whitespace().count();
            let informative = n_words >= 5 || (n_words >= 3 && sentence.chars().any(|c| c.is_ascii_digit()));
            // Questions (FAQ headings written as text) are not answers.
            if informative && !sentence.ends_with('?') {
                units.push((sentence, question.take()));
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
    fn the_first_sentence_under_a_question_heading_answers_it() {
        let text = "Early termination fee\nHow much is the early termination fee?\nThe fee is $10 for each \
                    full month left, up to a maximum of $200. For example, 7 months early costs $70.\n\
                    ## When there is no fee\n- After the contract end date, nothing is charged.";
        let units = answer_units_after_questions(text);
        let texts: Vec<&str> = units.iter().map(|(unit, _)| unit.as_str()).collect();
        assert_eq!(
            texts,
            [
                "The fee is $10 for each full month left, up to a maximum of $200.",
                "For example, 7 months early costs $70.",
                "After the contract end date, nothing is charged."
            ]
        );
        assert_eq!(units[0].1.as_deref(), Some("How much is the early termination fee?"));
        assert_eq!((units[1].1.as_deref(), units[2].1.as_deref()), (None, None));
    }

    #[test]
    fn generated_numbers_must_come_whole_from_one_sentence() {
        let unit = |text: &str| RankedUnit { score: 0.0, passage_idx: 0, unit_idx: 0, text: text.to_string() };
        let units = [
            unit("The fee is $10 for each full month left, up to a maximum of $200."),
            unit("Plan: Basic Plan; Data: 5 GB; Price: $40"),
        ];
        assert!(!states_numbers_whole("The early termination fee is $200.", &units));
        assert!(states_numbers_whole("It is $10 a month left, at most $200.", &units));
        assert!(states_numbers_whole("The Basic Plan costs $40 a month.", &units), "a table row's cells stand alone");
        assert!(states_numbers_whole("There is no fee after the contract ends.", &units));
    }

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
        let text =
            "## Late fees\nA late fee of $10 applies after the due date. Pay now.\n- You can pay by card online.";
        assert_eq!(
            answer_units(text),
            vec!["A late fee of $10 applies after the due date.", "You can pay by card online."]
        );
    }
}
