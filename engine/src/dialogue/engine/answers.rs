//! Knowledge answers: retrieval, then the answer composer (extractive first, generation only
//! when the guardrail passes it), with the sources cited.

use super::rules::{ABOUT_OWN_ACCOUNT, ASKS_QUESTION, HOW_TO, NAMES_A_PERSON, PROBLEM, asks_to_act};
use super::understanding::Understanding;
use super::{Work, ms};
use crate::conversations::EventKind;
use crate::dialogue::answer::Passage;
use crate::dialogue::computed::{self, ComputedAnswer};
use crate::dialogue::state::GLOBAL;
use crate::dialogue::{Engine, EngineError, SourceOut};
use inference::entities::EntityValue;
use prompts::{Flow, Needs};
use serde_json::json;
use std::time::Instant;

/// The global slot that remembers a flow offered after an answer ("Would you like me to ...?").
pub(super) const OFFER: &str = "__offer";

/// Below this share of a question's topic words (weighted by rarity) in the best passages, the
/// documents do not cover the question (measured on the blind dev set: uncovered questions
/// score 0 to 0.22, covered ones 0.32 and up).
const MIN_COVERAGE: f32 = 0.25;

/// A flow with this many steps on the customer's phone is troubleshooting (resuming a line
/// ends with one restart; fixing no service is a series of checks).
const TROUBLESHOOTING_STEPS: usize = 3;

/// Intents that are never questions to answer from the documents.
const NOT_QUESTIONS: &[&str] = &["human_agent", "greeting", "thanks", "goodbye", "affirm", "deny", "help"];

/// What the plan catalogue reply cites from the knowledge base.
pub(super) const CATALOGUE_QUERY: &str = "plan catalogue: every plan with its data and monthly price";

impl Engine {
    pub(super) fn answer_or_fallback(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        let after_anything_else =
            work.state.last_reply.as_deref().is_some_and(|reply| {
                self.replies.raw("anything_else").is_some_and(|question| reply.ends_with(question))
            });
        if after_anything_else {
            // The request is done: answer a real question, else close politely.
            if u.question && self.answer_from_knowledge(work, u)? {
                return Ok(());
            }
            return self.say(work, "closing");
        }
        if self.answer_from_knowledge(work, u)? {
            return Ok(());
        }
        if is_question(&u.text) && !u.gibberish {
            // A question nothing answers: say so honestly, never the nearest passage.
            return self.say_not_covered(work);
        }
        self.not_understood(work, u, true)
    }

    /// "I don't have that information", with a person offered (a yes transfers).
    fn say_not_covered(&self, work: &mut Work<'_>) -> Result<(), EngineError> {
        self.log(
            work,
            vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: OFFER.into(), value: json!("human_agent") }],
        )?;
        self.say(work, "no_answer_found")
    }

    /// Answers a question about how things work before any flow starts, even when it names an
    /// account topic ("is there a fee if I pay late?", "what does a new SIM cost?"). Only a
    /// request to act starts a flow; a message with both gets the answer, then an offer to act.
    /// A question about the customer's own account (what they owe, their usage) is left to the
    /// flows, which prove who the customer is first. `true` when the message was answered.
    pub(super) fn answer_question_first(
        &self,
        work: &mut Work<'_>,
        u: &Understanding,
        intent: Option<&str>,
    ) -> Result<bool, EngineError> {
        let lower = u.text.to_lowercase();
        // "Which plan fits me?" from a verified customer: worked out on their own lines' usage.
        if !u.gibberish
            && work.state.assurance() >= crate::identity::Assurance::Verified
            && computed::asks_what_fits_me(&u.text)
            && self.answer_computed(work, &u.text)?
        {
            return Ok(true);
        }
        // The intent model may take a question it has no class for ("can I pay in cash?") for a
        // wish to talk to a person; only one that names a person is one.
        let not_a_question =
            |name: &str| NOT_QUESTIONS.contains(&name) && (name != "human_agent" || NAMES_A_PERSON.is_match(&lower));
        if u.gibberish || ABOUT_OWN_ACCOUNT.is_match(&lower) || intent.is_some_and(not_a_question) {
            return Ok(false);
        }
        // A message that says who the customer is ("... 555-123-2002", "customer id C1001") is
        // about their account.
        let identifies = u.values().any(|value| {
            matches!(value, EntityValue::PhoneNumber(_) | EntityValue::Id { .. } | EntityValue::FullName(_))
        });
        if identifies {
            return Ok(false);
        }
        let request = asks_to_act(&lower);
        let asks = question_sentences(&u.text).iter().any(|sentence| !asks_to_act(&sentence.to_lowercase()));
        if !(asks || (u.question && !request)) {
            return Ok(false);
        }
        let flow = intent.and_then(|name| self.book.flow_for_intent(name));
        // A phone problem is troubleshot step by step; a question about the steps ("what should
        // I check?") is answered.
        let troubleshooting = flow.is_some_and(|flow| {
            flow.nodes.iter().filter(|node| node.device.is_some()).count() >= TROUBLESHOOTING_STEPS
        });
        if troubleshooting && PROBLEM.is_match(&lower) && !HOW_TO.is_match(&lower) {
            return Ok(false);
        }
        let account_flow = flow.is_some_and(|flow| flow.needs != Needs::Nothing || is_transfer(flow));
        // With a request, only a computed answer comes first ("I want to suspend my line for
        // July and August: what will I pay?"); "I want to pay my bill, how much is it?" is the
        // flow's to answer.
        let answered = if account_flow && !request {
            // A general question the documents do not answer is not a reason to start asking
            // for the customer's account: say so.
            self.answer_from_knowledge(work, u)? || {
                self.say_not_covered(work)?;
                true
            }
        } else {
            self.answer_computed(work, &u.text)?
        };
        let not_covered = self
            .replies
            .raw("no_answer_found")
            .is_some_and(|honest| work.parts.last().is_some_and(|last| last.starts_with(honest.trim())));
        if answered
            && !not_covered
            && let Some(flow) = flow.filter(|flow| flow.needs != Needs::Nothing || is_transfer(flow))
            && (request || HOW_TO.is_match(&lower))
        {
            self.offer(work, flow)?;
        }
        Ok(answered)
    }

    /// Offers to do what the answer explained; a yes starts the flow.
    fn offer(&self, work: &mut Work<'_>, flow: &Flow) -> Result<(), EngineError> {
        self.log(work, vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: OFFER.into(), value: json!(flow.name) }])?;
        if is_transfer(flow) {
            return self.say(work, "offer_agent");
        }
        work.extra.insert("offered_task".into(), flow.title.clone());
        self.say(work, "offer_task")
    }

    /// The flow offered in the last reply, forgotten once read: it stands for one answer only.
    pub(super) fn take_offer(&self, work: &mut Work<'_>) -> Result<Option<String>, EngineError> {
        let offered = work.state.globals.get(OFFER).and_then(serde_json::Value::as_str).map(str::to_string);
        if offered.is_some() {
            self.log(
                work,
                vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: OFFER.into(), value: serde_json::Value::Null }],
            )?;
        }
        Ok(offered)
    }

    /// Answers from the catalogue's computed answers, then the knowledge base; `false` when
    /// nothing relevant was found. Two questions in one message get an answer each.
    pub(super) fn answer_from_knowledge(&self, work: &mut Work<'_>, u: &Understanding) -> Result<bool, EngineError> {
        let questions = standalone_questions(&u.text);
        if questions.len() < 2 {
            if self.answer_computed(work, &u.text)? {
                return Ok(true);
            }
            return self.answer_text(work, &u.text, &u.embedding);
        }
        let mut any = false;
        for question in questions {
            if self.answer_computed(work, &question)? {
                any = true;
                continue;
            }
            let embedding = self.encoder.embed(&[question.as_str()])?.pop().unwrap_or_default();
            any |= self.answer_text(work, &question, &embedding)?;
        }
        Ok(any)
    }

    /// A computed answer over the catalogue, when the question is one.
    pub(super) fn answer_computed(&self, work: &mut Work<'_>, text: &str) -> Result<bool, EngineError> {
        let Some(catalogue) = &self.catalogue else { return Ok(false) };
        let context = computed::Context { own_usage: self.own_usage(work) };
        let Some(ComputedAnswer { text, sources }) = computed::answer(catalogue, &self.entities, text, &context) else {
            return Ok(false);
        };
        work.parts.push(text);
        for document in sources {
            work.sources.push(SourceOut { document, section: String::new(), score: 1.0 });
        }
        Ok(true)
    }

    /// The verified customer's lines with this cycle's data use (none before proof).
    fn own_usage(&self, work: &Work<'_>) -> Vec<computed::LineUsage> {
        if work.state.assurance() < crate::identity::Assurance::Verified {
            return Vec::new();
        }
        let catalogue = self.catalogue.as_deref();
        self.facts(work)
            .lines()
            .into_iter()
            .map(|line| {
                let calls = catalogue.and_then(|c| c.plan(line.plan_id.as_str())).is_none_or(|plan| plan.calls);
                let digits: String = line.phone_number.to_string().chars().filter(char::is_ascii_digit).collect();
                computed::LineUsage {
                    label: format!("the line ending {}", &digits[digits.len().saturating_sub(4)..]),
                    data_gb: line.data_used.to_gb(),
                    calls,
                }
            })
            .collect()
    }

    /// Answers a question sentence that came with an answer ("Does it roll over? Anyway, 1 GB").
    pub(super) fn answer_side_question(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        let sentences = crate::dialogue::guardrail::split_sentences(&u.text);
        if sentences.len() < 2 {
            return Ok(());
        }
        let question = sentences.iter().find(|s| s.ends_with('?') && s.split_whitespace().count() >= 3);
        if let Some(question) = question {
            let embedding = self.encoder.embed(&[question])?.pop().unwrap_or_default();
            self.answer_text(work, question, &embedding)?;
        }
        Ok(())
    }

    pub(super) fn answer_text(&self, work: &mut Work<'_>, text: &str, embedding: &[f32]) -> Result<bool, EngineError> {
        let started = Instant::now();
        // Casual words in the documents' words ("u", "gigs", "switch carriers") for the search.
        let normalised = knowledge::normalise_query(text);
        let normalised_embedding = if normalised != text {
            Some(self.encoder.embed(&[normalised.as_str()])?.pop().unwrap_or_default())
        } else {
            None
        };
        let embedding = normalised_embedding.as_deref().unwrap_or(embedding);
        let passages: Vec<Passage> = self.knowledge.retrieve(text, embedding, self.settings.top_k)?;
        work.times.retrieval_ms += ms(started);
        // The reranked first passage need not be the closest by meaning: any of the passages
        // an answer quotes from may show the knowledge base has something on the question.
        let relevant =
            passages.iter().take(3).any(|p| p.vector_similarity.unwrap_or(1.0) >= self.settings.min_similarity);
        if !relevant {
            return Ok(false);
        }
        let mut coverage: Option<f32> = None;
        for passage in passages.iter().take(3) {
            if let Some(value) = self.knowledge.coverage(&normalised, &passage.text)? {
                coverage = Some(coverage.map_or(value, |best: f32| best.max(value)));
            }
        }
        // The passages are about something else ("student discount" against the plan list):
        // say so rather than quote the nearest passage.
        if coverage.is_some_and(|value| value < MIN_COVERAGE) {
            self.say_not_covered(work)?;
            return Ok(true);
        }
        let generation_started = Instant::now();
        let conversation_id = work.conversation_id.to_string();
        let sink = work.sink;
        let mut on_token = |token: &str| sink.token(&conversation_id, token);
        let account_evidence = self.account_evidence(work);
        let answer = self.answerer.answer(
            self.encoder.as_ref(),
            self.chat.as_deref().filter(|_| self.settings.rephrase_answers),
            text,
            embedding,
            &passages,
            &account_evidence,
            &self.plan_names,
            self.settings.max_new_tokens,
            &mut on_token,
        )?;
        work.times.generation_ms += ms(generation_started);
        if answer.text.is_empty() {
            return Ok(false);
        }
        if work.parts.contains(&answer.text) {
            return Ok(true); // two questions answered by the same passage: said once
        }
        work.parts.push(answer.text);
        for idx in answer.used_passages {
            if let Some(passage) = passages.get(idx) {
                work.sources.push(SourceOut {
                    document: passage.document.clone(),
                    section: passage.section.clone(),
                    score: passage.score,
                });
            }
        }
        Ok(true)
    }

    /// Names the knowledge document that backs a reply built from the account system's facts
    /// (the plan catalogue), so the customer sees where the numbers are written down.
    pub(super) fn cite(&self, work: &mut Work<'_>, query: &str) -> Result<(), EngineError> {
        let started = Instant::now();
        let embedding = self.encoder.embed(&[query])?.pop().unwrap_or_default();
        let passages = self.knowledge.retrieve(query, &embedding, 1)?;
        work.times.retrieval_ms += ms(started);
        if let Some(passage) = passages.first() {
            work.sources.push(SourceOut {
                document: passage.document.clone(),
                section: passage.section.clone(),
                score: passage.score,
            });
        }
        Ok(())
    }

    /// The customer's account facts a generated answer may state.
    pub(super) fn account_evidence(&self, work: &Work<'_>) -> Vec<String> {
        let facts = self.facts(work);
        ["plan_name", "plan_price", "data_used_gb", "data_limit_gb", "line_phone", "balance_bills", "plans_list"]
            .iter()
            .filter_map(|name| facts.fact(name))
            .collect()
    }
}

/// A flow that only hands the conversation to a person.
fn is_transfer(flow: &Flow) -> bool {
    flow.nodes.iter().all(|node| node.handoff)
}

/// The sentences of a message that ask something ("... ? ...", "how much ...").
fn question_sentences(text: &str) -> Vec<String> {
    crate::dialogue::guardrail::split_sentences(text).into_iter().filter(|sentence| is_question(sentence)).collect()
}

/// The questions of a message that each stand on their own ("Does it roll over? And how much is
/// a refuel on Basic?"); a short follow-up ("what do I need?") stays with the question before.
fn standalone_questions(text: &str) -> Vec<String> {
    let mut questions: Vec<String> = Vec::new();
    for sentence in crate::dialogue::guardrail::split_sentences(text) {
        let words = sentence.split_whitespace().count();
        match questions.last_mut() {
            Some(last) if words < 5 || !is_question(&sentence) => {
                last.push(' ');
                last.push_str(&sentence);
            }
            _ => questions.push(sentence),
        }
    }
    if questions.iter().filter(|question| is_question(question)).count() < 2 {
        return vec![text.to_string()];
    }
    questions
}

fn is_question(sentence: &str) -> bool {
    ASKS_QUESTION.is_match(&sentence.to_lowercase())
}
