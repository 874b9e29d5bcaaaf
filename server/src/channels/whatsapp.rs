//! The WhatsApp Business Cloud API channel.
//!
//! A notification is verified (`X-Hub-Signature-256`: HMAC-SHA256 of the raw bytes with the
//! app secret, compared in constant time) before it is parsed; each of its messages and
//! statuses becomes a [`Job`] stored under a dedupe key (`m/<message id>`) together with its
//! entry in the pending-jobs index (one transaction), so a redelivered notification is
//! recognised and answered once. Meta gets its 200 only once the jobs are durable (sled is
//! flushed; a PostgreSQL commit is), and never resends after it.
//!
//! Workers (`whatsapp.workers` per instance; one sender's jobs always to the same worker) claim
//! a job with a lease (`whatsapp.job_lease_secs`) by compare-and-swap on its record, so one
//! worker in one instance has it; every step is recorded on the record under that lease: the
//! conversation's length before the answer, then the messages to send and how many Meta
//! accepted. A job whose worker died with its instance is taken over by any instance's sweeper
//! once the lease ends, and resumes from its last recorded step: a logged reply is not
//! answered again, and a sent message is not sent again. The one window left is a message
//! Meta accepted just before the crash and before its record: it is sent again (at least
//! once, never lost). The webhook returns as soon as the jobs are stored, so a slow model
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
use engine::dialogue::{CustomerText, Engine, InvalidText, Turn};
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
    Store(#[from] storage::Error),
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
    /// Who is working on the job, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease: Option<Lease>,
    /// How far the work got (a worker that takes the job over resumes there).
    #[serde(default, skip_serializing_if = "Progress::is_fresh")]
    progress: Progress,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Lease {
    owner: String,
    until: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "stage")]
enum Progress {
    #[default]
    Fresh,
    /// The customer's message (`text`, as the engine reads it) is being answered; the
    /// conversation had `events_before` events.
    Answering {
        conversation_id: String,
        events_before: u64,
        #[serde(default)]
        text: String,
    },
    /// The messages that go to the customer, and how many of them Meta accepted.
    Sending { conversation_id: String, to: String, messages: Vec<serde_json::Value>, sent: usize },
}

impl Progress {
    fn is_fresh(&self) -> bool {
        *self == Progress::Fresh
    }
}

/// A job this worker holds the lease of, with its record as last written.
struct Claimed {
    key: String,
    record: InboxRecord,
    bytes: Vec<u8>,
}

/// Another worker took the job over (this one's lease ended): it stops without writing.
#[derive(Debug, thiserror::Error)]
#[error("the job's lease passed to another worker")]
struct LostLease;

/// How long after it was stored an unclaimed job is left to the instance that stored it.
const CLAIM_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Which worker a job goes to: one sender's (or conversation's) jobs keep their order.
fn job_route(job: &Job) -> &str {
    match job {
        Job::Message { from, .. } => from,
        Job::Status { recipient_id, .. } => recipient_id,
        Job::AgentMessage { conversation_id, .. } => conversation_id,
    }
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

/// The channel: inbox, workers and Graph API client.
pub struct WhatsApp {
    settings: WhatsAppSettings,
    conversations: ConversationStore,
    db: storage::Store,
    inbox: storage::Tree,
    /// The jobs not done yet (dedupe key -> time stored): what sweepers look through.
    pending: storage::Tree,
    /// Per sender: the values of choices last offered as numbered text.
    offered: storage::Tree,
    /// One queue per worker.
    queues: Vec<mpsc::UnboundedSender<String>>,
    /// Keys in a local queue now: the sweeper does not queue them again.
    queued: std::sync::Mutex<std::collections::HashSet<String>>,
    /// This process's name on leases.
    instance: String,
    lease: chrono::TimeDelta,
    engine: EngineHandle,
    tokens: Arc<TokenHub>,
    graph: GraphClient,
}

impl WhatsApp {
    /// Opens the inbox, requeues jobs left pending, and starts the workers, the sweeper (jobs of
    /// instances that died) and the forwarder of agent messages. Must be called inside a tokio
    /// runtime.
    pub fn start(
        settings: WhatsAppSettings,
        db: &storage::Store,
        conversations: ConversationStore,
        engine: EngineHandle,
        tokens: Arc<TokenHub>,
    ) -> anyhow::Result<Arc<Self>> {
        let n_workers = settings.workers.clamp(1, 64);
        let (queues, receivers): (Vec<_>, Vec<_>) = (0..n_workers).map(|_| mpsc::unbounded_channel()).unzip();
        let graph = GraphClient::new(&settings.api_base_url, &settings.phone_number_id, settings.access_token.clone());
        let lease = chrono::TimeDelta::seconds(i64::try_from(settings.job_lease_secs.clamp(1, 3600)).unwrap_or(30));
        let channel = Arc::new(Self {
            db: db.clone(),
            inbox: db.tree("whatsapp_inbox")?,
            pending: db.tree("whatsapp_pending")?,
            offered: db.tree("whatsapp_offered")?,
            settings,
            conversations,
            queues,
            queued: std::sync::Mutex::default(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            lease,
            engine,
            tokens,
            graph,
        });
        let n_pending = channel.requeue_pending()?;
        if n_pending > 0 {
            tracing::info!(n_pending, "whatsapp jobs left pending requeued");
        }
        for receiver in receivers {
            tokio::spawn(channel.clone().run_worker(receiver));
        }
        tokio::spawn(channel.clone().sweep());
        tokio::spawn(channel.clone().forward_agent_messages());
        Ok(channel)
    }

    /// Queues a job with the worker of its route, unless it is in a local queue already.
    fn enqueue(&self, key: String, route: &str) {
        if !self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.clone()) {
            return;
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in route.as_bytes() {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        let worker = usize::try_from(hash % self.queues.len() as u64).unwrap_or(0);
        let _ = self.queues[worker].send(key);
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
            let route = job_route(&job).to_string();
            match self.store(job)? {
                Some(key) => stored.push((key, route)),
                None => accepted.n_duplicates += 1,
            }
        }
        accepted.n_new = stored.len();
        if !stored.is_empty() {
            // A 200 tells Meta the notification is safe, and Meta does not send it again: it must
            // be on disk first (sled writes back every 200 ms otherwise). Queued only once it is,
            // so a reply never goes out for a job a crash could still lose and Meta redeliver.
            self.inbox.flush()?;
            for (key, route) in stored {
                self.enqueue(key, &route);
            }
        }
        if accepted.n_duplicates > 0 {
            tracing::info!(n_duplicates = accepted.n_duplicates, "redelivered whatsapp notifications ignored");
        }
        Ok(accepted)
    }

    /// Stores a job under its dedupe key with its entry in the pending index, in one
    /// transaction; its key, or `None` when it was seen before.
    fn store(&self, job: Job) -> Result<Option<String>, storage::Error> {
        let key = job.dedupe_key();
        let record = InboxRecord {
            state: JobState::Pending,
            received_at: Utc::now(),
            job,
            lease: None,
            progress: Progress::Fresh,
        };
        let bytes = serde_json::to_vec(&record).expect("inbox records serialise");
        let stored = self.db.transaction(&[&self.inbox, &self.pending], |trees| {
            if trees[0].get(key.as_bytes())?.is_some() {
                return Ok(false);
            }
            trees[0].insert(key.as_bytes(), &bytes)?;
            trees[1].insert(key.as_bytes(), record.received_at.to_rfc3339().as_bytes())?;
            Ok::<_, storage::TxError<std::convert::Infallible>>(true)
        });
        match stored {
            Ok(stored) => Ok(stored.then_some(key)),
            Err(storage::TransactionError::Storage(error)) => Err(error),
            Err(storage::TransactionError::Abort(never)) => match never {},
        }
    }

    /// At start: queues every job not done (indexing records an older version stored without
    /// an index entry) and forgets done records past the retention.
    fn requeue_pending(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let mut n_pending = 0;
        for item in self.inbox.iter()? {
            let (key, bytes) = item?;
            let Ok(record) = serde_json::from_slice::<InboxRecord>(&bytes) else {
                // Written by a newer version (a rolling upgrade): left for it.
                tracing::warn!(key = %String::from_utf8_lossy(&key), "a whatsapp job this version cannot read was left alone");
                continue;
            };
            match record.state {
                JobState::Pending => {
                    if !self.pending.contains_key(&key)? {
                        self.pending.insert(&key, record.received_at.to_rfc3339().as_bytes())?;
                    }
                    if record.lease.as_ref().is_none_or(|lease| lease.until <= now) {
                        self.enqueue(String::from_utf8_lossy(&key).into_owned(), job_route(&record.job));
                        n_pending += 1;
                    }
                }
                JobState::Done if now.signed_duration_since(record.received_at) > INBOX_RETENTION => {
                    self.inbox.remove(&key)?;
                }
                JobState::Done => {}
            }
        }
        Ok(n_pending)
    }

    /// Every few seconds: queues the pending jobs nobody works on, those another instance
    /// stored but did not claim, and those whose worker's lease ended (its instance died).
    async fn sweep(self: Arc<Self>) {
        let every = (self.lease / 3).to_std().unwrap_or(Duration::from_secs(10)).max(Duration::from_millis(500));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let channel = self.clone();
            match tokio::task::spawn_blocking(move || channel.unclaimed_jobs()).await {
                Ok(Ok(found)) => {
                    for (key, route) in found {
                        self.enqueue(key, &route);
                    }
                }
                Ok(Err(error)) => tracing::warn!(%error, "looking for unclaimed whatsapp jobs failed"),
                Err(error) => tracing::warn!(%error, "the whatsapp sweeper stopped a round"),
            }
        }
    }

    fn unclaimed_jobs(&self) -> Result<Vec<(String, String)>, storage::Error> {
        let now = Utc::now();
        let mut found = Vec::new();
        for key in self.pending.iter()?.keys() {
            let key = key?;
            let Some(bytes) = self.inbox.get(&key)? else {
                self.pending.remove(&key)?;
                continue;
            };
            // A record this version cannot read was written by a newer one: left for it.
            let Ok(record) = serde_json::from_slice::<InboxRecord>(&bytes) else { continue };
            if record.state == JobState::Done {
                self.pending.remove(&key)?;
                continue;
            }
            let unclaimed = match &record.lease {
                None => now.signed_duration_since(record.received_at) > CLAIM_GRACE,
                Some(lease) => lease.until <= now,
            };
            if unclaimed {
                found.push((String::from_utf8_lossy(&key).into_owned(), job_route(&record.job).to_string()));
            }
        }
        Ok(found)
    }

    /// Takes the job's lease if nobody holds it (or the holder's ended); `None` when it is done
    /// or another worker has it.
    fn claim(&self, key: &str) -> Result<Option<Claimed>, storage::Error> {
        loop {
            let Some(bytes) = self.inbox.get(key.as_bytes())? else { return Ok(None) };
            let Ok(mut record) = serde_json::from_slice::<InboxRecord>(&bytes) else { return Ok(None) };
            let now = Utc::now();
            if record.state == JobState::Done || record.lease.as_ref().is_some_and(|lease| lease.until > now) {
                return Ok(None);
            }
            let taken_over = record.lease.is_some();
            record.lease = Some(Lease { owner: self.instance.clone(), until: now + self.lease });
            let claimed = serde_json::to_vec(&record).expect("inbox records serialise");
            if self.inbox.compare_and_swap(key.as_bytes(), Some(&bytes), Some(&claimed))?.is_ok() {
                if taken_over {
                    tracing::info!(key, "took over a whatsapp job whose worker stopped");
                }
                return Ok(Some(Claimed { key: key.to_string(), record, bytes: claimed }));
            }
        }
    }

    /// Records the job's next step (and renews the lease); [`LostLease`] when another worker
    /// has taken the job over meanwhile.
    fn advance(&self, claimed: &mut Claimed, progress: Progress) -> anyhow::Result<()> {
        let mut record = claimed.record.clone();
        record.progress = progress;
        record.lease = Some(Lease { owner: self.instance.clone(), until: Utc::now() + self.lease });
        let bytes = serde_json::to_vec(&record).expect("inbox records serialise");
        match self.inbox.compare_and_swap(claimed.key.as_bytes(), Some(&claimed.bytes), Some(&bytes))? {
            Ok(()) => {
                claimed.record = record;
                claimed.bytes = bytes;
                Ok(())
            }
            Err(_) => Err(LostLease.into()),
        }
    }

    /// Marks the job done and out of the pending index, in one transaction, if this worker
    /// still holds it.
    fn finish(&self, claimed: Claimed) -> Result<(), storage::Error> {
        let mut record = claimed.record;
        record.state = JobState::Done;
        record.lease = None;
        record.progress = Progress::Fresh;
        let bytes = serde_json::to_vec(&record).expect("inbox records serialise");
        let key = claimed.key.as_bytes();
        let result = self.db.transaction(&[&self.inbox, &self.pending], |trees| {
            if trees[0].get(key)?.as_deref() != Some(claimed.bytes.as_slice()) {
                return Ok(false);
            }
            trees[0].insert(key, &bytes)?;
            trees[1].remove(key)?;
            Ok::<_, storage::TxError<std::convert::Infallible>>(true)
        });
        match result {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::info!(key = %claimed.key, "a whatsapp job finished after another worker took it over");
                Ok(())
            }
            Err(storage::TransactionError::Storage(error)) => Err(error),
            Err(storage::TransactionError::Abort(never)) => match never {},
        }
    }

    async fn run_worker(self: Arc<Self>, mut receiver: mpsc::UnboundedReceiver<String>) {
        while let Some(key) = receiver.recv().await {
            self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
            let engine = self.wait_for_engine().await;
            let channel = self.clone();
            let claim_key = key.clone();
            let claimed = match tokio::task::spawn_blocking(move || channel.claim(&claim_key)).await {
                Ok(Ok(Some(claimed))) => claimed,
                Ok(Ok(None)) => continue,
                Ok(Err(error)) => {
                    tracing::error!(%error, key = %key, "claiming a whatsapp job failed; the sweeper tries again");
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, "claiming a whatsapp job failed");
                    continue;
                }
            };
            let span = tracing::info_span!("whatsapp_job", key = %key);
            self.work(claimed, &engine).instrument(span).await;
        }
    }

    /// Does a claimed job and marks it done, unless it passed to another worker or the
    /// database is unreachable (then the job waits for its lease to end and is done later).
    async fn work(&self, mut claimed: Claimed, engine: &Arc<Engine>) {
        let job = claimed.record.job.clone();
        let outcome = match &job {
            Job::Message { from, content, .. } => self.answer(&mut claimed, engine, from, content).await,
            Job::AgentMessage { conversation_id, text, .. } => {
                self.deliver_agent_message(&mut claimed, conversation_id, text).await
            }
            Job::Status { .. } => self.process(&job).await,
        };
        if let Err(error) = outcome {
            if error.is::<LostLease>() {
                tracing::info!(key = %claimed.key, "whatsapp job taken over by another worker");
                return;
            }
            if error.chain().any(crate::http::error::is_database_unavailable) {
                tracing::warn!(error = %format!("{error:#}"), key = %claimed.key, "whatsapp job paused: the database is unavailable");
                return;
            }
            tracing::error!(error = %format!("{error:#}"), key = %claimed.key, "whatsapp job failed");
        }
        if let Err(error) = self.finish(claimed) {
            tracing::error!(%error, "marking a whatsapp job done failed; it will be looked at again");
        }
    }

    /// An agent's message (or the rating question), to the customer.
    async fn deliver_agent_message(
        &self,
        claimed: &mut Claimed,
        conversation_id: &str,
        text: &str,
    ) -> anyhow::Result<()> {
        if !matches!(claimed.record.progress, Progress::Sending { .. }) {
            let conversation = self.conversations.get(conversation_id)?;
            let Some(to) = conversation.external_id.clone() else { return Ok(()) };
            let messages = graph::text_messages(&to, text);
            self.prepare(claimed, &conversation.id, &to, messages)?;
        }
        self.send_pending(claimed).await
    }

    /// Records a delivery report (recording one twice after a takeover is harmless).
    async fn process(&self, job: &Job) -> anyhow::Result<()> {
        let Job::Status { message_id, status, recipient_id, errors } = job else { return Ok(()) };
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

    /// Answers one customer message, resuming where a worker that stopped left it.
    async fn answer(
        &self,
        claimed: &mut Claimed,
        engine: &Arc<Engine>,
        from: &str,
        content: &Content,
    ) -> anyhow::Result<()> {
        match claimed.record.progress.clone() {
            Progress::Sending { .. } => return self.send_pending(claimed).await,
            Progress::Answering { conversation_id, events_before, text } => {
                // Taken over while the message was being answered: a logged answer is sent, not
                // answered again.
                if let Some(turn) = self.logged_reply(&conversation_id, events_before, &text)? {
                    tracing::info!("the message was answered before the takeover; sending that answer");
                    let messages = self.reply_messages(engine, &conversation_id, from, &turn)?;
                    self.prepare(claimed, &conversation_id, from, messages)?;
                    return self.send_pending(claimed).await;
                }
            }
            Progress::Fresh => {}
        }
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
                self.prepare(claimed, &conversation.id, from, graph::text_messages(from, UNSUPPORTED_REPLY))?;
                return self.send_pending(claimed).await;
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
                self.prepare(claimed, &conversation.id, from, graph::text_messages(from, TOO_LONG_REPLY))?;
                return self.send_pending(claimed).await;
            }
        };
        let answering = Progress::Answering {
            conversation_id: conversation.id.clone(),
            events_before: conversation.n_events,
            text: text.as_str().to_string(),
        };
        self.advance(claimed, answering)?;
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
        let messages = self.reply_messages(engine, &conversation.id, from, &turn)?;
        self.prepare(claimed, &conversation.id, from, messages)?;
        self.send_pending(claimed).await
    }

    /// The reply logged to this message (`text`, logged at or after the `events_before`th
    /// event), if its turn got that far.
    fn logged_reply(&self, conversation_id: &str, events_before: u64, text: &str) -> anyhow::Result<Option<Turn>> {
        let events = self.conversations.events(conversation_id)?;
        let mut after_message = events.iter().filter(|event| event.seq >= events_before).skip_while(
            |event| !matches!(&event.kind, EventKind::MessageIn { text: logged } if text.is_empty() || logged == text),
        );
        after_message.next();
        Ok(after_message.find_map(|event| match &event.kind {
            EventKind::Reply { text, turn } => {
                let mut turn = turn.clone();
                if turn.reply.is_empty() {
                    turn.reply = text.clone();
                }
                Some(turn)
            }
            _ => None,
        }))
    }

    /// A turn's reply in WhatsApp's shapes (buttons, a list, or numbered text, which is
    /// remembered so that a bare number answers it).
    fn reply_messages(
        &self,
        engine: &Arc<Engine>,
        conversation_id: &str,
        from: &str,
        turn: &Turn,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let conversation = self.conversations.get(conversation_id)?;
        let registry = engine.registry();
        let choices = choices_for(
            turn.awaiting.as_deref(),
            conversation.customer_id.as_deref(),
            Some(registry.store()),
            registry.today(),
        );
        let Outbound { messages, numbered } = graph::reply_messages(from, &turn.reply, &choices);
        match numbered {
            Some(values) => self.offered.insert(from.as_bytes(), serde_json::to_vec(&values)?)?,
            None => {
                self.offered.remove(from.as_bytes())?;
            }
        }
        Ok(messages)
    }

    /// A bare number answering choices offered as numbered text, as the chosen value.
    fn numbered_choice(&self, from: &str, text: &str) -> Option<String> {
        let number: usize = text.trim().trim_end_matches('.').parse().ok()?;
        let bytes = self.offered.get(from.as_bytes()).ok()??;
        let values: Vec<String> = serde_json::from_slice(&bytes).ok()?;
        values.get(number.checked_sub(1)?).cloned()
    }

    /// Decides what goes to the customer (only the template outside the service window;
    /// nothing when sending is not configured, with a note saying so) and records it on the
    /// job before anything is sent.
    fn prepare(
        &self,
        claimed: &mut Claimed,
        conversation_id: &str,
        to: &str,
        messages: Vec<serde_json::Value>,
    ) -> anyhow::Result<()> {
        let conversation = self.conversations.get(conversation_id)?;
        let messages = if in_service_window(&conversation, Utc::now()) {
            messages
        } else if self.settings.template_name.trim().is_empty() {
            self.note(conversation_id, "outside the 24-hour window and no template configured: nothing sent".into())?;
            Vec::new()
        } else {
            self.note(
                conversation_id,
                format!("outside the 24-hour window: sent the template {} instead", self.settings.template_name),
            )?;
            vec![graph::template_message(to, &self.settings.template_name, &self.settings.template_language)]
        };
        let messages = if !messages.is_empty() && !self.graph.is_configured() {
            tracing::warn!("whatsapp reply not sent: whatsapp.access_token or whatsapp.phone_number_id is not set");
            self.note(conversation_id, "whatsapp sending is not configured: reply not sent".into())?;
            Vec::new()
        } else {
            messages
        };
        let sending =
            Progress::Sending { conversation_id: conversation_id.to_string(), to: to.to_string(), messages, sent: 0 };
        self.advance(claimed, sending)
    }

    /// Sends the job's messages Meta has not accepted yet, recording each acceptance on the job
    /// before logging it in the conversation.
    async fn send_pending(&self, claimed: &mut Claimed) -> anyhow::Result<()> {
        let Progress::Sending { conversation_id, to, messages, sent } = claimed.record.progress.clone() else {
            return Ok(());
        };
        for (index, message) in messages.iter().enumerate().skip(sent) {
            // A whole lease for the send (and its retries), or stop if the job was taken over.
            self.advance(claimed, claimed.record.progress.clone())?;
            match self.graph.send(message).await {
                Ok(message_id) => {
                    let progress = Progress::Sending {
                        conversation_id: conversation_id.clone(),
                        to: to.clone(),
                        messages: messages.clone(),
                        sent: index + 1,
                    };
                    self.advance(claimed, progress)?;
                    let message_id = message_id.unwrap_or_else(|| "unknown".into());
                    self.conversations.append(
                        &conversation_id,
                        vec![EventKind::Delivery { message_id, status: "accepted".into() }],
                    )?;
                }
                Err(error) => {
                    tracing::error!(%error, "whatsapp reply could not be delivered");
                    self.note(&conversation_id, format!("whatsapp reply not delivered: {error}"))?;
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
                    let queued = self.store(job).map(|key| key.map(|key| self.enqueue(key, &change.id)));
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
