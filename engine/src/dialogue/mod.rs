//! The dialogue engine: from a customer's message to a reply, the same for every channel.
//!
//! A message is appended to the conversation's event log, understood, answered, and the
//! reply is appended too; the turn returned to the channel is built from what was logged.

pub mod answer;
pub mod assist;
pub mod computed;
pub mod device;
mod engine;
pub mod facts;
pub mod guardrail;
pub mod metrics;
pub mod models;
pub mod state;
pub mod summary;
pub mod text;
pub mod validate;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::DialogueSettings;
use crate::conversations::{ConversationStore, StoreError};
use accounts::ActionRegistry;
use answer::{Answerer, Passage};
pub use engine::Understanding;
use models::{ChatBackend, IntentPredictor, SentenceEncoder};
pub use text::{CustomerText, InvalidText, MAX_TEXT_CHARS};

/// Retrieval as the engine needs it.
pub trait Retrieve: Send + Sync {
    fn retrieve(&self, query: &str, query_embedding: &[f32], k: usize) -> anyhow::Result<Vec<Passage>>;
    /// How much of `question` the passage `text` speaks to, from 0 to 1 (its topic words,
    /// weighted by rarity); `None` when unknown or when the question has no topic words.
    fn coverage(&self, _question: &str, _text: &str) -> anyhow::Result<Option<f32>> {
        Ok(None)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

/// One reply to a customer message, as channels show it (shape fixed in `interfaces.md`) and
/// as the conversation log keeps it (`EventKind::Reply`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub reply: String,
    pub intent: Option<IntentOut>,
    pub awaiting: Option<String>,
    pub pending_action: Option<ActionCall>,
    pub sources: Vec<SourceOut>,
    pub actions: Vec<ActionOut>,
    pub handoff: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentOut {
    pub name: String,
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionCall {
    pub name: String,
    pub args: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceOut {
    pub document: String,
    pub section: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Everything the engine is made of.
pub struct EngineParts {
    pub encoder: Arc<dyn SentenceEncoder>,
    pub chat: Option<Arc<dyn ChatBackend>>,
    pub knowledge: Arc<dyn Retrieve>,
    pub intents: Option<Arc<dyn IntentPredictor>>,
    pub entities: inference::entities::EntityExtractor,
    pub registry: Arc<ActionRegistry>,
    pub conversations: ConversationStore,
    pub book: prompts::FlowBook,
    pub replies: prompts::Replies,
    pub settings: DialogueSettings,
    /// Proofs of who the customer is, and their limits.
    pub identity: Arc<crate::identity::Identity>,
    /// The knowledge pack's structured facts, for computed answers (none: documents only).
    pub catalogue: Option<Arc<knowledge::Catalogue>>,
}

pub struct Engine {
    encoder: Arc<dyn SentenceEncoder>,
    chat: Option<Arc<dyn ChatBackend>>,
    knowledge: Arc<dyn Retrieve>,
    intents: Option<Arc<dyn IntentPredictor>>,
    entities: inference::entities::EntityExtractor,
    registry: Arc<ActionRegistry>,
    conversations: ConversationStore,
    book: prompts::FlowBook,
    replies: prompts::Replies,
    answerer: Answerer,
    settings: DialogueSettings,
    plan_names: Vec<String>,
    identity: Arc<crate::identity::Identity>,
    catalogue: Option<Arc<knowledge::Catalogue>>,
    pub metrics: metrics::EngineMetrics,
}

impl Engine {
    /// Builds the engine; refuses flows and replies that name something it does not have.
    pub fn new(parts: EngineParts) -> Result<Self, validate::InvalidFlows> {
        validate::validate(&parts.book, &parts.replies)?;
        let plan_names = parts.registry.store().plans().unwrap_or_default().into_iter().map(|plan| plan.name).collect();
        Ok(Self {
            encoder: parts.encoder,
            chat: parts.chat,
            knowledge: parts.knowledge,
            intents: parts.intents,
            entities: parts.entities,
            registry: parts.registry,
            conversations: parts.conversations,
            book: parts.book,
            replies: parts.replies,
            answerer: Answerer::new(),
            settings: parts.settings,
            plan_names,
            identity: parts.identity,
            catalogue: parts.catalogue,
            metrics: metrics::EngineMetrics::default(),
        })
    }

    pub fn conversations(&self) -> &ConversationStore {
        &self.conversations
    }

    pub fn registry(&self) -> &Arc<ActionRegistry> {
        &self.registry
    }

    pub fn guardrail_stats(&self) -> &answer::GuardrailStats {
        &self.answerer.stats
    }

    /// The identity checks: proofs, codes, lockouts.
    pub fn identity(&self) -> &Arc<crate::identity::Identity> {
        &self.identity
    }

    /// Binds a customer the channel or an agent vouches for (a signed host-page identity, an
    /// out-of-band check) to a conversation, verified.
    pub fn identify(
        &self,
        conversation_id: &str,
        customer_id: &str,
        proof: crate::identity::Proof,
    ) -> Result<(), EngineError> {
        self.conversations.append(
            conversation_id,
            vec![crate::conversations::EventKind::CustomerIdentified {
                customer_id: customer_id.to_string(),
                verified: true,
                method: proof.as_str().to_string(),
            }],
        )?;
        self.conversations
            .update(conversation_id, |conversation| conversation.customer_id = Some(customer_id.to_string()))?;
        Ok(())
    }

    /// Answers one customer message in a conversation; everything that happens is logged.
    /// Turns of one conversation are taken one at a time.
    pub fn respond(
        &self,
        conversation_id: &str,
        text: &CustomerText,
        sink: &dyn TokenSink,
    ) -> Result<(Turn, StageTimes), EngineError> {
        self.respond_with_log(conversation_id, text, sink).map(|(turn, times, _)| (turn, times))
    }

    /// [`respond`](Self::respond), with the conversation's log after the turn (as the turn
    /// found it and appended to it: not read again).
    pub fn respond_with_log(
        &self,
        conversation_id: &str,
        text: &CustomerText,
        sink: &dyn TokenSink,
    ) -> Result<(Turn, StageTimes, Vec<crate::conversations::Event>), EngineError> {
        // Messages to one conversation arriving together (at this instance or another on the
        // same database) are answered one after the other, each on the state the one before
        // left: a turn replays the log, decides, then appends.
        let _turn = self.conversations.hold_turn(conversation_id)?;
        // The turn's parts look up the same customer, lines and plans: once each from the
        // database (the turn's own writes are never served stale).
        let _reads = storage::read_scope();
        match self.run_turn(conversation_id, text, sink) {
            Ok((turn, times, log)) => {
                self.metrics.record_turn(&turn, &times);
                Ok((turn, times, log))
            }
            Err(error) => {
                if matches!(error, EngineError::Internal(_)) {
                    self.metrics.record_failure();
                }
                Err(error)
            }
        }
    }

    /// The Prometheus text of the engine's metrics.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.answerer.stats)
    }
}
