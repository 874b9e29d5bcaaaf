//! The dialogue engine: from a customer's message to a reply, the same for every channel.
//!
//! A message is appended to the conversation's event log, understood, answered, and the
//! reply is appended too; the turn returned to the channel is built from what was logged.

pub mod answer;
pub mod guardrail;
pub mod models;
pub mod text;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::DialogueSettings;
use crate::conversations::{ConversationStore, EventKind, StoreError};
use answer::{Answerer, Passage};
use models::{ChatBackend, SentenceEncoder};
pub use text::{CustomerText, InvalidText, MAX_TEXT_CHARS};

/// Retrieval as the engine needs it.
pub trait Retrieve: Send + Sync {
    fn retrieve(&self, query: &str, query_embedding: &[f32], k: usize) -> anyhow::Result<Vec<Passage>>;
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

/// One reply to a customer message, as channels show it (shape fixed in `interfaces.md`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Turn {
    pub reply: String,
    pub intent: Option<IntentOut>,
    pub awaiting: Option<String>,
    pub pending_action: Option<ActionCall>,
    pub sources: Vec<SourceOut>,
    pub actions: Vec<ActionOut>,
    pub handoff: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntentOut {
    pub name: String,
    pub confidence: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionCall {
    pub name: String,
    pub args: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceOut {
    pub document: String,
    pub section: String,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionOut {
    pub name: String,
    pub args: Value,
    pub status: String,
}

/// Where streamed tokens go while a reply is generated.
pub trait TokenSink: Send + Sync {
    fn token(&self, conversation_id: &str, token: &str);
}

/// A sink that drops tokens.
pub struct NoTokens;

impl TokenSink for NoTokens {
    fn token(&self, _: &str, _: &str) {}
}

/// Time spent in each stage of a turn, for benchmarks and logs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes {
    pub understanding_ms: f64,
    pub retrieval_ms: f64,
    pub action_ms: f64,
    pub generation_ms: f64,
    pub total_ms: f64,
}

pub struct Engine {
    encoder: Arc<dyn SentenceEncoder>,
    chat: Option<Arc<dyn ChatBackend>>,
    knowledge: Arc<dyn Retrieve>,
    conversations: ConversationStore,
    answerer: Answerer,
    settings: DialogueSettings,
    plan_names: Vec<String>,
}

impl Engine {
    pub fn new(
        encoder: Arc<dyn SentenceEncoder>,
        chat: Option<Arc<dyn ChatBackend>>,
        knowledge: Arc<dyn Retrieve>,
        conversations: ConversationStore,
        settings: DialogueSettings,
        plan_names: Vec<String>,
    ) -> Self {
        Self { encoder, chat, knowledge, conversations, answerer: Answerer::new(), settings, plan_names }
    }

    pub fn conversations(&self) -> &ConversationStore {
        &self.conversations
    }

    pub fn guardrail_stats(&self) -> &answer::GuardrailStats {
        &self.answerer.stats
    }

    /// Answers one customer message in a conversation and logs both.
    pub fn respond(
        &self,
        conversation_id: &str,
        text: &CustomerText,
        sink: &dyn TokenSink,
    ) -> Result<(Turn, StageTimes), EngineError> {
        let started = Instant::now();
        let mut times = StageTimes::default();
        self.conversations.append(conversation_id, vec![EventKind::MessageIn { text: text.as_str().to_string() }])?;

        let understanding_started = Instant::now();
        let embedding = self
            .encoder
            .embed(&[text.as_str()])?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("the encoder returned no embedding"))?;
        times.understanding_ms = ms(understanding_started);

        let retrieval_started = Instant::now();
        let passages = self.knowledge.retrieve(text.as_str(), &embedding, self.settings.top_k)?;
        times.retrieval_ms = ms(retrieval_started);

        let generation_started = Instant::now();
        let mut on_token = |token: &str| sink.token(conversation_id, token);
        let answer = self.answerer.answer(
            self.encoder.as_ref(),
            self.chat.as_deref(),
            text.as_str(),
            &embedding,
            &passages,
            &[],
            &self.plan_names,
            self.settings.max_new_tokens,
            &mut on_token,
        )?;
        times.generation_ms = ms(generation_started);

        let reply = if answer.text.is_empty() {
            "I'm sorry, I couldn't find anything about that. Could you rephrase your question?".to_string()
        } else {
            answer.text
        };
        let sources = answer
            .used_passages
            .iter()
            .filter_map(|&idx| passages.get(idx))
            .map(|p| SourceOut { document: p.document.clone(), section: p.section.clone(), score: p.score })
            .collect();
        let turn = Turn { reply: reply.clone(), sources, ..Turn::default() };
        let turn_json = serde_json::to_value(&turn).unwrap_or(json!(null));
        self.conversations.append(conversation_id, vec![EventKind::Reply { text: reply, turn: turn_json }])?;
        times.total_ms = ms(started);
        tracing::info!(
            conversation_id,
            understanding_ms = times.understanding_ms,
            retrieval_ms = times.retrieval_ms,
            generation_ms = times.generation_ms,
            total_ms = times.total_ms,
            generated = answer.generated,
            "turn answered"
        );
        Ok((turn, times))
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
