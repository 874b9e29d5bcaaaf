//! Knowledge answers: retrieval, then the answer composer (extractive first, generation only
//! when the guardrail passes it), with the sources cited.

use super::understanding::Understanding;
use super::{Work, ms};
use crate::dialogue::answer::Passage;
use crate::dialogue::{Engine, EngineError, SourceOut};
use std::time::Instant;

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
        self.not_understood(work, u, true)
    }

    /// Answers from the knowledge base; `false` when nothing relevant was found.
    pub(super) fn answer_from_knowledge(&self, work: &mut Work<'_>, u: &Understanding) -> Result<bool, EngineError> {
        self.answer_text(work, &u.text, &u.embedding)
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
        let passages: Vec<Passage> = self.knowledge.retrieve(text, embedding, self.settings.top_k)?;
        work.times.retrieval_ms += ms(started);
        let relevant =
            passages.first().is_some_and(|p| p.vector_similarity.unwrap_or(1.0) >= self.settings.min_similarity);
        if !relevant {
            return Ok(false);
        }
        let generation_started = Instant::now();
        let conversation_id = work.conversation_id.to_string();
        let sink = work.sink;
        let mut on_token = |token: &str| sink.token(&conversation_id, token);
        let account_evidence = self.account_evidence(work);
        let answer = self.answerer.answer(
            self.encoder.as_ref(),
            self.chat.as_deref(),
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
