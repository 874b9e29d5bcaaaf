//! Knowledge answers: extractive first, generated only when the guardrail passes it.
//!
//! The extractive answer is the one or two sentences of the retrieved passages that best
//! answer the question (by embedding similarity). The chat model may condense the passages
//! instead; each generated sentence is checked by [`guardrail`](super::guardrail) and a
//! sentence stating a fact not in the evidence is replaced by the extractive answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use super::guardrail::{Evidence, Faithfulness, split_sentences};
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
/// How much a how-to question favours sections of steps or "How to" headings.
const HOW_TO_BONUS: f32 = 0.05;
/// A how-to answer moves from an introduction to the document's steps scoring within this.
const STEPS_MARGIN: f32 = 0.2;
/// A how-to answer may run this long (the steps of a section, and the next sections).
const HOW_TO_WORDS: usize = 150;
/// A following section joins a how-to answer when it scores within this of the best unit.
const NEXT_SECTION_MARGIN: f32 = 0.25;
/// A section this short is quoted whole.
const SECTION_WORDS: usize = 110;
/// From a longer section, the best unit and what follows, up to about this many words.
const ANSWER_WORDS: usize = 70;

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

    /// Every quotable unit of the top passages, best first. A unit scores as well as it matches
    /// the question, or as its section's heading does (a little less: a heading is not the
    /// answer itself), plus a bonus for its passage's retrieval rank.
    fn rank_units(
        &self,
        encoder: &dyn SentenceEncoder,
        question: Option<&str>,
        question_embedding: &[f32],
        passages: &[Passage],
    ) -> anyhow::Result<Vec<RankedUnit>> {
        let mut units: Vec<RankedUnit> = Vec::new();
        let mut headings: Vec<(usize, String)> = Vec::new();
        for (passage_idx, passage) in passages.iter().take(PASSAGES_USED).enumerate() {
            for (unit_idx, unit) in passage_units(&passage.text).into_iter().enumerate() {
                if let Some(heading) = unit.heading.clone().filter(|_| unit.first_in_section) {
                    headings.push((units.len(), heading));
                }
                units.push(RankedUnit {
                    score: 0.0,
                    passage_idx,
                    unit_idx,
                    section: unit.section,
                    heading: unit.heading,
                    document: passage.document.clone(),
                    steps: false,
                    list_item: unit.list_item,
                    text: unit.text,
                });
            }
        }
        if units.is_empty() {
            return Ok(units);
        }
        let mut texts: Vec<&str> = units.iter().map(|unit| unit.text.as_str()).collect();
        texts.extend(headings.iter().map(|(_, heading)| heading.as_str()));
        let embeddings = self.embed_cached(encoder, &texts)?;
        let (unit_embeddings, heading_embeddings) = embeddings.split_at(units.len());
        for (unit, embedding) in units.iter_mut().zip(unit_embeddings) {
            unit.score = dot(question_embedding, embedding) + passage_bonus(unit.passage_idx);
        }
        // The heading lifts its whole section: "Setting up AutoPay" answers "how do I set up
        // autopay" through the steps below it.
        for ((first, _), embedding) in headings.iter().zip(heading_embeddings) {
            let heading_score = dot(question_embedding, embedding) - 0.02;
            let (passage_idx, section) = (units[*first].passage_idx, units[*first].section);
            for unit in units.iter_mut().filter(|u| u.passage_idx == passage_idx && u.section == section) {
                unit.score = unit.score.max(heading_score + passage_bonus(passage_idx));
            }
        }
        // Sections of steps: a "How to" heading, numbered headings or a numbered list.
        let steps: Vec<(usize, usize)> = units
            .iter()
            .filter(|unit| {
                unit.heading.as_deref().is_some_and(|heading| STEPS_HEADING.is_match(heading))
                    || (unit.list_item && unit.text.chars().next().is_some_and(|c| c.is_ascii_digit()))
            })
            .map(|unit| (unit.passage_idx, unit.section))
            .collect();
        for unit in &mut units {
            unit.steps = steps.contains(&(unit.passage_idx, unit.section));
        }
        // "How do I ...?" is answered by steps: the top document's sections of steps first.
        if question.is_some_and(is_how_to) {
            let top_document = passages.first().map(|passage| passage.document.as_str()).unwrap_or_default();
            for unit in units.iter_mut().filter(|unit| unit.steps && unit.document == top_document) {
                unit.score += HOW_TO_BONUS;
            }
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
        let ranked = self.rank_units(encoder, None, question_embedding, passages)?;
        Ok(compose_extractive(&ranked, false))
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
        let ranked = self.rank_units(encoder, Some(question), question_embedding, passages)?;
        let (extractive, used_passages) = compose_extractive(&ranked, is_how_to(question));
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
        let mut faithful_to: Vec<&str> = used.iter().map(|p| p.text.as_str()).collect();
        faithful_to.extend(extra_evidence.iter().map(String::as_str));
        let faithfulness = Faithfulness::new(&faithful_to, plan_names);
        let mut kept: Vec<String> = Vec::new();
        let (mut n_passed, mut n_replaced) = (0, 0);
        let mut replaced_once = false;
        for sentence in complete_sentences(&generated) {
            if kept.contains(&sentence) {
                continue; // small models repeat themselves
            }
            if evidence.supports(&sentence)
                && faithfulness.check(&sentence).is_ok()
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
    /// The section of the passage the unit is in (counted from 0 at each heading).
    pub section: usize,
    /// The heading of that section, if any.
    pub heading: Option<String>,
    /// The passage's document.
    pub document: String,
    /// Its section gives steps (a "How to ..." heading, a numbered list or numbered headings).
    pub steps: bool,
    pub list_item: bool,
    pub text: String,
}

/// The answer of the best unit's section, in reading order, and the passages it came from. A
/// short section is quoted whole (the steps under "Setting up AutoPay", the two sentences under
/// "Can I reopen a closed account?"); from a long one, the best unit and what follows it, with a
/// list kept whole, up to [`ANSWER_WORDS`]. A how-to question (`how_to`) gets every numbered
/// step of the document ("1. Airplane mode ... 5. Outage in your area") as a checklist, or the
/// best section with the sections that follow it, within a larger budget.
fn compose_extractive(ranked: &[RankedUnit], how_to: bool) -> (String, Vec<usize>) {
    let Some(mut best) = ranked.first() else { return (String::new(), Vec::new()) };
    if how_to && let Some(checklist) = numbered_checklist(ranked, best) {
        return checklist;
    }
    // A how-to question whose best sentence introduces the topic is answered by the steps the
    // same document gives, when it gives some close enough to the question.
    if how_to
        && !best.steps
        && let Some(steps) = ranked
            .iter()
            .find(|unit| unit.steps && unit.document == best.document && unit.score >= best.score - STEPS_MARGIN)
    {
        best = steps;
    }
    let in_section = |passage_idx: usize, section: usize| {
        let mut units: Vec<&RankedUnit> =
            ranked.iter().filter(|unit| unit.passage_idx == passage_idx && unit.section == section).collect();
        units.sort_by_key(|unit| unit.unit_idx);
        units
    };
    let section = in_section(best.passage_idx, best.section);
    let words = |units: &[&RankedUnit]| units.iter().map(|unit| unit.text.split_whitespace().count()).sum::<usize>();
    let section_budget = if how_to { HOW_TO_WORDS } else { SECTION_WORDS };
    let mut chosen: Vec<&RankedUnit> = if words(&section) <= section_budget {
        section
    } else {
        let start = section.iter().position(|unit| unit.unit_idx == best.unit_idx).unwrap_or(0);
        // A list item is read with its list: start at the sentence that introduces it.
        let mut start = start;
        while start > 0
            && section[start].list_item
            && (section[start - 1].list_item || section[start - 1].text.ends_with(':'))
        {
            start -= 1;
        }
        let mut chosen: Vec<&RankedUnit> = Vec::new();
        for unit in &section[start..] {
            let in_list =
                unit.list_item && chosen.last().is_some_and(|last| last.list_item || last.text.ends_with(':'));
            if !chosen.is_empty() && !in_list && words(&chosen) + unit.text.split_whitespace().count() > ANSWER_WORDS {
                break;
            }
            chosen.push(unit);
            if words(&chosen) > section_budget {
                break;
            }
        }
        chosen
    };
    if how_to {
        // "What do I do?": the next sections of the same passage often hold the next steps
        // ("Where do I find my PUK code?", "Entering the PUK").
        let mut next = best.section + 1;
        loop {
            let following = in_section(best.passage_idx, next);
            if following.is_empty() || words(&chosen) + words(&following) > HOW_TO_WORDS {
                break;
            }
            if following.iter().map(|unit| unit.score).fold(f32::MIN, f32::max) < best.score - NEXT_SECTION_MARGIN {
                break;
            }
            chosen.extend(following);
            next += 1;
        }
    }
    let text = chosen.iter().map(|unit| ensure_period(&unit.text)).collect::<Vec<_>>().join(" ");
    (text, vec![best.passage_idx])
}

/// "1. Airplane mode: Look at the status bar... 2. SIM card: ...": the first sentence of every
/// numbered section of the best unit's document among the passages, in their numbered order,
/// when the best unit is in such a section or just above them (at least three steps).
fn numbered_checklist(ranked: &[RankedUnit], best: &RankedUnit) -> Option<(String, Vec<usize>)> {
    let number_of = |unit: &RankedUnit| {
        let heading = unit.heading.as_deref()?;
        let caps = NUMBERED_HEADING.captures(heading)?;
        Some((caps[1].parse::<u32>().ok()?, caps[2].trim().to_string()))
    };
    let best_numbered = number_of(best).is_some();
    // The best unit is a step, or opens its passage above the steps.
    if !best_numbered && best.section > 1 {
        return None;
    }
    let mut steps: std::collections::BTreeMap<u32, (String, &RankedUnit)> = std::collections::BTreeMap::new();
    for unit in ranked.iter().filter(|unit| unit.document == best.document) {
        if let Some((number, title)) = number_of(unit) {
            let entry = steps.entry(number).or_insert((title, unit));
            if (unit.passage_idx, unit.unit_idx) < (entry.1.passage_idx, entry.1.unit_idx) {
                *entry = (entry.0.clone(), unit);
            }
        }
    }
    if steps.len() < 3 {
        return None;
    }
    let mut used: Vec<usize> = steps.values().map(|(_, unit)| unit.passage_idx).collect();
    used.push(best.passage_idx);
    used.sort_unstable();
    used.dedup();
    let mut lines: Vec<String> = Vec::new();
    if !best_numbered {
        lines.push(ensure_period(&best.text));
    }
    lines.extend(
        steps.iter().map(|(number, (title, unit))| format!("{number}. {title}: {}", ensure_period(&unit.text))),
    );
    Some((lines.join(" "), used))
}

static NUMBERED_HEADING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\d{1,2})[.)]\s+(.+)$").unwrap());
static STEPS_HEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(how to|how do|setting up|set up|steps|checks|what to do|entering|where do i find)\b|^\d{1,2}[.)]\s",
    )
    .unwrap()
});
static HOW_TO_QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bhow (do|can|to|should|would) (i|we|you|u)?\b|\bhow to\b|\bwhat (should|do|can) (i|we) (do|check|try)\b|\bwhat do i need\b|\bwhat steps\b|\bhow do i fix\b").unwrap()
});

/// A question that asks for steps.
fn is_how_to(question: &str) -> bool {
    HOW_TO_QUESTION.is_match(question)
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
        0 => 0.10,
        1 => 0.04,
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
    passage_units(text).into_iter().map(|unit| unit.text).collect()
}

/// A quotable unit of a passage and where it stands.
#[derive(Debug, Clone, PartialEq)]
struct Unit {
    text: String,
    /// The heading of its section, if any.
    heading: Option<String>,
    /// Counted from 0, one more at each heading.
    section: usize,
    first_in_section: bool,
    list_item: bool,
}

/// Where [`passage_units`] is: the current section.
struct Section {
    heading: Option<String>,
    number: usize,
    first: bool,
}

impl Section {
    fn unit(&mut self, text: String, list_item: bool) -> Unit {
        let first_in_section = std::mem::replace(&mut self.first, false);
        Unit { text, heading: self.heading.clone(), section: self.number, first_in_section, list_item }
    }
}

/// [`answer_units`] with their sections: a heading (a Markdown heading, a heading kept as a line
/// of the chunk, or a question written as a heading) starts a new section, and the units under
/// it belong to it.
fn passage_units(text: &str) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut at = Section { heading: None, number: 0, first: true };
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
                        units.push(at.unit(row, true));
                    }
                }
            }
            continue;
        }
        table_header = None;
        let title = trimmed.trim_start_matches('#').trim();
        let ends_like_text = trimmed.ends_with(['.', '!', '?', ':', ';', '"']);
        // "1. Airplane mode" is a numbered heading kept as a line; "1. Open the app." a step.
        let numbered = trimmed.chars().next().is_some_and(|c| c.is_ascii_digit());
        let is_list_item = trimmed.starts_with(['-', '*', '+', '>'])
            || (numbered && (ends_like_text || trimmed.split_whitespace().count() > 8));
        let question_heading =
            title.ends_with('?') && (trimmed.starts_with('#') || title.split_whitespace().count() <= 15);
        // A heading kept as a line of the chunk ("How to get a replacement SIM"): a title, not
        // an answer. List items and sentences end in punctuation or start with a marker.
        let plain_heading = !is_list_item && !ends_like_text && title.split_whitespace().count() <= 12;
        if question_heading || trimmed.starts_with('#') || plain_heading {
            if !title.is_empty() {
                at = Section { heading: Some(title.to_string()), number: at.number + 1, first: true };
            }
            continue;
        }
        if trimmed.starts_with("---") || trimmed.is_empty() {
            continue;
        }
        let content = trimmed.trim_start_matches(['-', '*', '+', '>']).trim();
        let content = content.replace("**", "").replace('`', "");
        // Labels of structured documents ("Answer: ...") are not part of the answer.
        let content =
            content.strip_prefix("Answer: ").or(content.strip_prefix("answer: ")).unwrap_or(&content).to_string();
        for sentence in split_sentences(&content) {
            // Short fragments ("Compared with other plans.") say nothing on their own.
            let n_words = sentence.split_whitespace().count();
            let informative = n_words >= 5 || (n_words >= 3 && sentence.chars().any(|c| c.is_ascii_digit()));
            // Questions (FAQ headings written as text) are not answers.
            if informative && !sentence.ends_with('?') {
                units.push(at.unit(sentence, is_list_item));
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
    fn units_know_their_section_and_heading() {
        let text = "Early termination fee\nHow much is the early termination fee?\nThe fee is $10 for each \
                    full month left, up to a maximum of $200. For example, 7 months early costs $70.\n\
                    ## When there is no fee\n- After the contract end date, nothing is charged.\nAnswer: Ask customer care for the form.";
        let units = passage_units(text);
        let texts: Vec<&str> = units.iter().map(|unit| unit.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "The fee is $10 for each full month left, up to a maximum of $200.",
                "For example, 7 months early costs $70.",
                "After the contract end date, nothing is charged.",
                "Ask customer care for the form."
            ]
        );
        assert_eq!(units[0].heading.as_deref(), Some("How much is the early termination fee?"));
        assert!(units[0].first_in_section && !units[1].first_in_section);
        assert_eq!(units[0].section, units[1].section);
        assert_eq!(units[2].heading.as_deref(), Some("When there is no fee"));
        assert!(units[2].list_item && units[2].section == units[0].section + 1);
    }

    #[test]
    fn a_short_section_is_quoted_whole_and_a_long_one_from_its_best_unit() {
        let unit = |unit_idx: usize, section: usize, score: f32, text: &str| RankedUnit {
            score,
            passage_idx: 0,
            unit_idx,
            section,
            heading: None,
            document: "d.md".to_string(),
            steps: false,
            list_item: text.starts_with("Step"),
            text: text.to_string(),
        };
        let mut ranked = vec![
            unit(0, 1, 0.2, "AutoPay pays each bill on its due date."),
            unit(1, 2, 0.5, "Step one: open the app and go to Billing."),
            unit(2, 2, 0.7, "Step two: turn AutoPay on."),
            unit(3, 3, 0.1, "You can turn it off at any time."),
        ];
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        let (text, used) = compose_extractive(&ranked, false);
        assert_eq!(text, "Step one: open the app and go to Billing. Step two: turn AutoPay on.");
        assert_eq!(used, [0]);
        let long = "This sentence is one of many in a very long section about nothing in particular at all.";
        let mut ranked: Vec<RankedUnit> = (0..12).map(|i| unit(i, 1, 0.1, long)).collect();
        ranked[5].score = 0.9;
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        let (text, _) = compose_extractive(&ranked, false);
        assert!(text.split_whitespace().count() <= ANSWER_WORDS, "{text}");
    }

    #[test]
    fn generated_numbers_must_come_whole_from_one_sentence() {
        let unit = |text: &str| RankedUnit {
            score: 0.0,
            passage_idx: 0,
            unit_idx: 0,
            section: 0,
            heading: None,
            document: "d.md".to_string(),
            steps: false,
            list_item: false,
            text: text.to_string(),
        };
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
