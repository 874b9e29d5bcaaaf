//! The WhatsApp Business Cloud API channel.
//!
//! A notification is verified (`X-Hub-Signature-256`: HMAC-SHA256 of the raw bytes with the
//! app secret, compared in constant time) before it is parsed; each of its messages and
//! statuses becomes a [`Job`] stored in sled under a dedupe key (`m/<message id>`), so a
//! redelivered notification is recognised and answered once, and a job accepted before a
//! crash is done after the restart. The webhook returns as soon as the jobs are stored; one
//! worker task answers them in order (the engine runs on the blocking pool), so a slow model
//! never delays Meta's 200.
//!
//! One conversation per sender number (`Channel::Whatsapp`, external id = the number).
//! Replies go out in Meta's send-message shape: text, reply buttons for confirmations and
//! short choices, a list for longer ones, numbered text beyond WhatsApp's limits. Outside the
//! 24-hour customer-service window only the configured template message is sent. Human
//! agents' messages written in the console reach the customer the same way.

pub mod graph;
pub mod payload;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::channels::EngineHandle;
use crate::channels::choices::choices_for;
use crate::channels::stream::TokenHub;
use crate::config::{Secret, WhatsAppSettings};
use engine::conversations::{Channel, Conversation, ConversationStore, EventKind};
use engine::dialogue::{CustomerText, Engine, InvalidText};
use graph::{GraphClient, Outbound};
pub use payload::{Content, Job};

/// What the assistant says to a message it cannot read.
pub const UNSUPPORTED_REPLY: &str =
    "Sorry, I can only read text messages. Could you type your question instead? I'm happy to help.";
/// What the assistant says to a message longer than it reads.
pub const TOO_LONG_REPLY: &str =
    "Sorry, that message is too long for me to read. Could you send it again in a few shorter messages?";
/// How long after the customer's last message free-form messages may be sent.
pub const SERVICE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// Done inbox records older than this are forgotten at start (Meta redelivers for days, not months).
const INBOX_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("whatsapp.app_secret is not configured, so no notification can be verified")]
    NotConfigured,
    #[error("the X-Hub-Signature-256 header is missing")]
    MissingSignature,
    #[error("the X-Hub-Signature-256 header does not match the body")]
    BadSignature,
    #[error("the notification is not valid JSON: {0}")]
    Malformed(String),
    #[error("whatsapp inbox: {0}")]
    Store(#[from] sled::Error),
}

/// What a verified notification contained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// Jobs stored and queued.
    pub n_new: usize,
    /// Messages and statuses seen before (redeliveries), ignored.
    pub n_duplicates: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JobState {
    Pending,
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InboxRecord {
    state: JobState,
    received_at: DateTime<Utc>,
    job: Job,
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` against the raw body, in constant time.
pub fn verify_signature(app_secret: &Secret, header: Option<&str>, body: &[u8]) -> Result<(), WebhookError> {
    if app_secret.is_empty() {
        return Err(WebhookError::NotConfigured);
    }
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(WebhookError::MissingSignature)?;
    let hex_digest = header.strip_prefix("sha256=").ok_or(WebhookError::BadSignature)?;
    let expected = hex::decode(hex_digest).map_err(|_| WebhookError::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes()).expect("hmac takes keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| WebhookError::BadSignature)
}

/// The signature header value Meta would send for `body` (for tests and tools).
pub fn sign(app_secret: &Secret, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes()).expect("hmac takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether free-form messages may still be sent in this conversation.
pub fn in_service_window(conversation: &Conversation, now: DateTime<Utc>) -> bool {
    conversation.last_customer_message_at.is_some_and(|at| now.signed_duration_since(at) < SERVICE_WINDOW)
}

/// The channel: inbox, worker queue and Graph API client.
pub struct WhatsApp {
    settings: WhatsAppSettings,
    conversations: ConversationStore,
    inbox: sled::Tree,
    /// Per sender: the values of choices last offered as numbered text.
    offered: sled::Tree,
    queue: mpsc::UnboundedSender<String>,
    engine: EngineHandle,
    tokens: Arc<TokenHub>,
    graph: GraphClient,
}

impl WhatsApp {
    /// Opens the inbox, requeues jobs left pending by a previous run and starts the worker and
    /// the forwarder of agent messages. Must be called inside a tokio runtime.
    pub fn start(
        settings: WhatsAppSettings,
        db: &sled::Db,
        conversations: ConversationStore,
        engine: EngineHandle,
        tokens: Arc<TokenHub>,
    ) -> anyhow::Result<Arc<Self>> {
        let (queue, receiver) = mpsc::unbounded_channel();
        let graph = GraphClient::new(&settings.api_base_url, &settings.phone_number_id, settings.access_token.clone());
        let channel = Arc::new(Self {
            inbox: db.open_tree("whatsapp_inbox")?,
            offered: db.open_tree("whatsapp_offered")?,
            settings,
            conversations,
            queue,
            engine,
            tokens,
            graph,
        });
        let n_pending = channel.requeue_pending()?;
        if n_pending > 0 {
            tracing::info!(n_pending, "whatsapp jobs left from the last run requeued");
        }
        tokio::spawn(channel.clone().run_worker(receiver));
        tokio::spawn(channel.clone().forward_agent_messages());
        Ok(channel)
    }

    /// The `GET` verification handshake: the challenge to echo, or `None` (403).
    pub fn verify_subscription(
        &self,
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&str>,
    ) -> Option<String> {
        let expected = self.settings.verify_token.expose().as_bytes();
        let given = token.unwrap_or_default().as_bytes();
        let token_ok = !expected.is_empty() && bool::from(expected.ct_eq(given));
        let challenge =
            challenge.filter(|c| !c.is_empty() && c.len() <= 256 && c.chars().all(|ch| ch.is_ascii_graphic()));
        match (mode, token_ok, challenge) {
            (Some("subscribe"), true, Some(challenge)) => Some(challenge.to_string()),
            _ => None,
        }
    }

    /// Verifies a notification's signature over the raw bytes, then stores and queues each of
    /// its messages and statuses once. Nothing is parsed or stored when the signature fails.
    pub fn accept(&self, body: &[u8], signature: Option<&str>) -> Result<Accepted, WebhookError> {
        verify_signature(&self.settings.app_secret, signature, body)?;
        let notification: payload::Notification =
            serde_json::from_slice(body).map_err(|error| WebhookError::Malformed(error.to_string()))?;
        let mut accepted = Accepted::default();
        if notification.object != "whatsapp_business_account" {
            tracing::warn!(object = %notification.object, "whatsapp notification of another object ignored");
            return Ok(accepted);
        }
        let mut stored = Vec::new();
        for job in payload::jobs(&notification) {
            match self.store(job)? {
                Some(key) => stored.push(key),
                None => accepted.n_duplicates += 1,
            }
        }
        accepted.n_new = stored.len();
        if !stored.is_empty() {
            // A 200 tells Meta the notification is safe, and Meta does not send it again: it must
            // be on disk first (sled writes back every 200 ms otherwise). Queued only once it is,
            // so a reply never goes out for a job a crash could still lose and Meta redeliver.
            self.inbox.flush()?;
            for key in stored {
                let _ = self.queue.send(key);
            }
        }
        if accepted.n_duplicates > 0 {
            tracing::info!(n_duplicates = accepted.n_duplicates, "redelivered whatsapp notifications ignored");
        }
        Ok(accepted)
    }

    /// Stores a job under its dedupe key, pending; its key, or `None` when it was seen before.
    fn store(&self, job: Job) -> Result<Option<String>, sled::Error> {
        let key = job.dedupe_key();
        let record = InboxRecord { state: JobState::Pending, received_at: Utc::now(), job };
        let bytes = serde_json::to_vec(&record).expect("inbox records serialise");
        Ok(self.inbox.compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(bytes))?.ok().map(|()| key))
    }

    fn requeue_pending(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let mut n_pending = 0;
        for item in self.inbox.iter() {
            let (key, bytes) = item?;
            let Ok(record) = serde_json::from_slice::<InboxRecord>(&bytes) else {
                self.inbox.remove(&key)?;
                continue;
            };
            match record.state {
                JobState::Pending => {
                    let _ = self.queue.send(String::from_utf8_lossy(&key).into_owned());
                    n_pending += 1;
                }
                JobState::Done if now.signed_duration_since(record.received_at) > INBOX_RETENTION => {
                    self.inbox.remove(&key)?;
                }
                JobState::Done => {}
            }
        }
        Ok(n_pending)
    }

    async fn run_worker(self: Arc<Self>, mut receiver: mpsc::UnboundedReceiver<String>) {
        while let Some(key) = receiver.recv().await {
            let record = match self.inbox.get(key.as_bytes()) {
                Ok(Some(bytes)) => serde_json::from_slice::<InboxRecord>(&bytes).ok(),
                Ok(None) => None,
                Err(error) => {
                    tracing::error!(%error, "reading the whatsapp inbox failed");
                    None
                }
            };
            let Some(mut record) = record.filter(|r| r.state == JobState::Pending) else { continue };
            let span = tracing::info_span!("whatsapp_job", key = %key);
            if let Err(error) = self.process(&record.job).instrument(span).await {
                tracing::error!(error = %format!("{error:#}"), key = %key, "whatsapp job failed");
            }
            record.state = JobState::Done;
            let bytes = serde_json::to_vec(&record).expect("inbox records serialise");
            if let Err(error) = self.inbox.insert(key.as_bytes(), bytes) {
                tracing::error!(%error, "marking a whatsapp job done failed");
            }
        }
    }

    async fn process(&self, job: &Job) -> anyhow::Result<()> {
        match job {
            Job::Message { from, content, .. } => self.answer(from, content).await,
            Job::Status { message_id, status, recipient_id, errors } => {
                let Some(conversation) = self.conversations.find_external(Channel::Whatsapp, recipient_id)? else {
                    tracing::debug!(%message_id, "status of a message to an unknown number ignored");
                    return Ok(());
                };
                let mut events = vec![EventKind::Delivery { message_id: message_id.clone(), status: status.clone() }];
                if !errors.is_empty() {
                    events.push(EventKind::Note { text: format!("whatsapp delivery {status}: {}", errors.join("; ")) });
                }
                self.conversations.append(&conversation.id, events)?;
                Ok(())
            }
            Job::AgentMessage { conversation_id, text, .. } => {
                let conversation = self.conversations.get(conversation_id)?;
                let Some(to) = conversation.external_id.clone() else { return Ok(()) };
                self.deliver(&conversation.id, &to, graph::text_messages(&to, text)).await
            }
        }
    }

    /// Answers one customer message.
    async fn answer(&self, from: &str, content: &Content) -> anyhow::Result<()> {
        let engine = self.wait_for_engine().await;
        let conversation = match self.conversations.find_external(Channel::Whatsapp, from)? {
            Some(conversation) => conversation,
            None => self.conversations.create(Channel::Whatsapp, Some(from.to_string()))?,
        };
        let raw_text = match content {
            Content::Ignored { message_type } => {
                self.note(&conversation.id, format!("whatsapp {message_type} received (nothing to answer)"))?;
                return Ok(());
            }
            Content::Unsupported { message_type } => {
                // The customer did write: the service window opens even for a sticker.
                self.conversations.update(&conversation.id, |c| c.last_customer_message_at = Some(Utc::now()))?;
                self.note(
                    &conversation.id,
                    format!("whatsapp {message_type} received; replied that only text can be read"),
                )?;
                return self.deliver(&conversation.id, from, graph::text_messages(from, UNSUPPORTED_REPLY)).await;
            }
            Content::Text { text } => self.numbered_choice(from, text).unwrap_or_else(|| text.clone()),
            Content::Choice { id, title } => match id.strip_prefix(graph::CHOICE_ID_PREFIX) {
                Some(value) if !value.is_empty() => value.to_string(),
                _ if !title.is_empty() => title.clone(),
                _ => id.clone(),
            },
        };
        let text = match CustomerText::parse(raw_text) {
            Ok(text) => text,
            Err(InvalidText::Empty) => return Ok(()),
            Err(InvalidText::TooLong { .. }) => {
                self.conversations.update(&conversation.id, |c| c.last_customer_message_at = Some(Utc::now()))?;
                self.note(&conversation.id, "whatsapp message too long to read; asked for shorter ones".into())?;
                return self.deliver(&conversation.id, from, graph::text_messages(from, TOO_LONG_REPLY)).await;
            }
        };
        let sink = self.tokens.sink();
        let conversation_id = conversation.id.clone();
        let span = tracing::Span::current();
        let turn_engine = engine.clone();
        let (turn, _times) = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            turn_engine.respond(&conversation_id, &text, &sink)
        })
        .await??;
        if turn.reply.trim().is_empty() {
            return Ok(()); // a human agent holds the conversation
        }
        let conversation = self.conversations.get(&conversation.id)?;
        let registry = engine.registry();
        let choices = choices_for(
            turn.awaiting.as_deref(),
            conversation.customer_id.as_deref(),
            Some(registry.store()),
            registry.today(),
        );
        let Outbound { messages, numbered } = graph::reply_messages(from, &turn.reply, &choices);
        match numbered {
            Some(values) => {
                self.offered.insert(from.as_bytes(), serde_json::to_vec(&values)?)?;
            }
            None => {
                self.offered.remove(from.as_bytes())?;
            }
        }
        self.deliver(&conversation.id, from, messages).await
    }

    /// A bare number answering choices offered as numbered text, as the chosen value.
    fn numbered_choice(&self, from: &str, text: &str) -> Option<String> {
        let number: usize = text.trim().trim_end_matches('.').parse().ok()?;
        let bytes = self.offered.get(from.as_bytes()).ok()??;
        let values: Vec<String> = serde_json::from_slice(&bytes).ok()?;
        values.get(number.checked_sub(1)?).cloned()
    }

    /// Sends messages to the customer (only the template outside the service window) and
    /// records what happened in the conversation's log.
    async fn deliver(&self, conversation_id: &str, to: &str, messages: Vec<serde_json::Value>) -> anyhow::Result<()> {
        let conversation = self.conversations.get(conversation_id)?;
        let messages = if in_service_window(&conversation, Utc::now()) {
            messages
        } else if self.settings.template_name.trim().is_empty() {
            self.note(conversation_id, "outside the 24-hour window and no template configured: nothing sent".into())?;
            return Ok(());
        } else {
            self.note(
                conversation_id,
                format!("outside the 24-hour window: sent the template {} instead", self.settings.template_name),
            )?;
            vec![graph::template_message(to, &self.settings.template_name, &self.settings.template_language)]
        };
        if !self.graph.is_configured() {
            tracing::warn!("whatsapp reply not sent: whatsapp.access_token or whatsapp.phone_number_id is not set");
            self.note(conversation_id, "whatsapp sending is not configured: reply not sent".into())?;
            return Ok(());
        }
        for message in messages {
            match self.graph.send(&message).await {
                Ok(message_id) => {
                    let message_id = message_id.unwrap_or_else(|| "unknown".into());
                    self.conversations
                        .append(conversation_id, vec![EventKind::Delivery { message_id, status: "accepted".into() }])?;
                }
                Err(error) => {
                    tracing::error!(%error, "whatsapp reply could not be delivered");
                    self.note(conversation_id, format!("whatsapp reply not delivered: {error}"))?;
                    break;
                }
            }
        }
        Ok(())
    }

    fn note(&self, conversation_id: &str, text: String) -> anyhow::Result<()> {
        self.conversations.append(conversation_id, vec![EventKind::Note { text }])?;
        Ok(())
    }

    async fn wait_for_engine(&self) -> Arc<Engine> {
        loop {
            if let Some(engine) = (self.engine)() {
                return engine;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Queues the messages human agents write in WhatsApp conversations, and the rating question
    /// asked when an agent resolves one.
    async fn forward_agent_messages(self: Arc<Self>) {
        use tokio::sync::broadcast::error::RecvError;
        let mut changes = self.conversations.subscribe();
        loop {
            let change = match changes.recv().await {
                Ok(change) => change,
                Err(RecvError::Lagged(n_missed)) => {
                    tracing::warn!(n_missed, "the whatsapp forwarder missed conversation changes");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some(event) = change.event else { continue };
            let text = match event.kind {
                EventKind::AgentMessage { text, .. } => text,
                // Replies the engine writes outside a customer turn (the rating question after an
                // agent resolved the conversation); turn replies are sent by `answer` itself.
                EventKind::Reply { text, turn } if turn.awaiting.as_deref() == Some("csat") => text,
                _ => continue,
            };
            match self.conversations.get(&change.id) {
                Ok(conversation) if conversation.channel == Channel::Whatsapp => {
                    let job = Job::AgentMessage { conversation_id: change.id.clone(), seq: event.seq, text };
                    let queued = self.store(job).map(|key| key.map(|key| self.queue.send(key)));
                    if let Err(error) = queued {
                        tracing::error!(%error, "queueing an agent message for whatsapp failed");
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "agent message of an unreadable conversation"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_over_the_raw_bytes() {
        let secret = Secret::new("app-secret");
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = sign(&secret, body);
        assert!(verify_signature(&secret, Some(&header), body).is_ok());
        // One byte of whitespace more is another body.
        let mut reformatted = body.to_vec();
        reformatted.push(b' ');
        assert!(matches!(verify_signature(&secret, Some(&header), &reformatted), Err(WebhookError::BadSignature)));
        assert!(matches!(verify_signature(&secret, None, body), Err(WebhookError::MissingSignature)));
        assert!(matches!(verify_signature(&secret, Some(""), body), Err(WebhookError::MissingSignature)));
        for bad in ["sha1=abc", "sha256=", "sha256=zz", &header.replace("sha256=", "sha256=00"), &header.to_uppercase()]
        {
            assert!(matches!(verify_signature(&secret, Some(bad), body), Err(WebhookError::BadSignature)), "{bad}");
        }
        assert!(matches!(verify_signature(&Secret::default(), Some(&header), body), Err(WebhookError::NotConfigured)));
    }

    #[test]
    fn the_window_is_twenty_four_hours_after_the_last_customer_message() {
        let now = Utc::now();
        let mut conversation: Conversation = serde_json::from_value(serde_json::json!({
            "id": "c", "channel": "whatsapp", "created_at": now, "updated_at": now, "status": "open"
        }))
        .unwrap();
        assert!(!in_service_window(&conversation, now));
        conversation.last_customer_message_at = Some(now - chrono::TimeDelta::hours(23));
        assert!(in_service_window(&conversation, now));
        conversation.last_customer_message_at = Some(now - chrono::TimeDelta::hours(25));
        assert!(!in_service_window(&conversation, now));
    }
}
