//! Conversations as append-only event logs in the process's `storage::Store`.
//!
//! Every conversation is a header (channel, status, assignee, ...) plus an ordered log of
//! events. The current state of a conversation is derived from its log; the console, the
//! reports and the tests read the same log, so what the assistant says happened is what the
//! log says happened.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation {0} not found")]
    NotFound(String),
    #[error("conversation store: {0}")]
    Storage(#[from] storage::Error),
    #[error("conversation store record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where a conversation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Whatsapp,
    Api,
    Terminal,
    Console,
}

impl Channel {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "web" => Some(Self::Web),
            "whatsapp" => Some(Self::Whatsapp),
            "api" => Some(Self::Api),
            "terminal" => Some(Self::Terminal),
            "console" => Some(Self::Console),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Whatsapp => "whatsapp",
            Self::Api => "api",
            Self::Terminal => "terminal",
            Self::Console => "console",
        }
    }
}

/// Contact-centre state of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    PendingHuman,
    Snoozed,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::PendingHuman => "pending_human",
            Self::Snoozed => "snoozed",
            Self::Resolved => "resolved",
        }
    }
}

/// The header of a conversation: what a queue needs without reading the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub channel: Channel,
    /// The channel's own address of the customer (a WhatsApp number), if any.
    #[serde(default)]
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: Status,
    /// A human agent holds the conversation: the assistant does not reply.
    #[serde(default)]
    pub taken_over_by: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub last_intent: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub csat: Option<u8>,
    /// When the customer last wrote (the WhatsApp 24-hour window starts here).
    #[serde(default)]
    pub last_customer_message_at: Option<DateTime<Utc>>,
    /// When the conversation started waiting for a human.
    #[serde(default)]
    pub waiting_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub n_events: u64,
}

/// One entry of a conversation's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. New variants may be added: a log written by a newer version reads back with
/// its unknown kinds as [`EventKind::Newer`], which readers skip; a known kind that does not
/// parse is a corrupt record, an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The customer wrote.
    MessageIn { text: String },
    /// The understanding of a customer message.
    Intent { name: String, confidence: f32 },
    /// The customer claimed to be this customer (`verified` false: a phone number, a customer id,
    /// a name with a date of birth) or proved it (`verified` true; `method` names the proof).
    CustomerIdentified { customer_id: String, verified: bool, method: String },
    /// A code to prove who the customer is was texted to a number on file (`to` is masked).
    VerificationCodeSent { customer_id: String, to: String },
    /// A proof failed or was refused (a wrong, expired or used code, a lockout, a recent SIM
    /// swap, a dead gateway); `reason` says which, never the code.
    ProofFailed { customer_id: Option<String>, reason: String },
    /// An unproven claim was dropped (the customer could not prove it; another may follow).
    ClaimWithdrawn { customer_id: String },
    /// The verification lapsed after the customer was silent for `idle_minutes`.
    VerificationLapsed { idle_minutes: u64 },
    /// A slot of the active flow was filled (or changed).
    SlotSet { flow: String, slot: String, value: Value },
    /// A flow started (on top of the active one when called from it).
    FlowStarted { flow: String },
    /// The active flow moved to a node.
    StepEntered { flow: String, step: String },
    /// A slot of the active flow was forgotten (to be asked again).
    SlotCleared { flow: String, slot: String },
    /// A flow ended (`outcome`: done, cancelled, refused, failed).
    FlowEnded { flow: String, outcome: String },
    /// The assistant asked for a yes/no before a change.
    ConfirmationAsked { action: String, args: Value, token: String },
    /// The customer answered a confirmation.
    ConfirmationGiven { action: String, accepted: bool },
    /// An account action was requested.
    ActionRequested { action: String, args: Value, actor: String },
    /// An account action ran; `result` is its recorded outcome.
    ActionDone { action: String, args: Value, result: Value },
    /// An account action was refused (policy or error).
    ActionRefused { action: String, args: Value, code: String, reason: String },
    /// The customer reported a phone check (`answer` is what they said) or did a phone step.
    DeviceReport { tool: String, outcome: String, answer: String },
    /// The assistant did not understand a message.
    NotUnderstood { text: String },
    /// The assistant replied; `turn` is the full turn as sent.
    Reply { text: String, turn: crate::dialogue::Turn },
    /// The conversation was handed to a human.
    Handoff { reason: String, summary: Option<String> },
    /// A human agent wrote to the customer.
    AgentMessage { agent: String, text: String },
    /// A private note of an agent (never shown to the customer).
    AgentNote { agent: String, text: String },
    /// The header changed (status, assignee, takeover).
    StatusChanged { status: Status, by: String },
    /// The customer rated the conversation.
    Csat { score: u8 },
    /// A channel delivery report (WhatsApp statuses: sent, delivered, read, failed).
    Delivery { message_id: String, status: String },
    /// Anything else a channel or the engine wants to record.
    Note { text: String },
    /// An event of a kind this version does not know (written by a newer version); never written.
    #[serde(other)]
    Newer,
}

/// The conversation store: headers in one tree, events in another keyed by id and sequence.
#[derive(Clone)]
pub struct ConversationStore {
    db: storage::Store,
    headers: storage::Tree,
    events: storage::Tree,
    by_external: storage::Tree,
    changes: Arc<tokio::sync::broadcast::Sender<ConversationChange>>,
    /// This process's name on the shared database's change topic (to skip its own notices).
    origin: Arc<str>,
}

/// The topic instances sharing a database tell each other which conversation changed on.
const CHANGES_TOPIC: &str = "conversation_changes";

/// The id of a [`ConversationChange`] that may concern any conversation (notices from other
/// instances were lost): readers re-read what they show.
pub const ANY_CONVERSATION: &str = "*";

/// A notification that a conversation changed (for live queues and streams).
#[derive(Debug, Clone)]
pub struct ConversationChange {
    pub id: String,
    pub event: Option<Event>,
}

impl ConversationStore {
    /// Opens the store. On a database other instances share, changes they make reach this
    /// process's subscribers as [`ConversationChange`]s without an event (readers take the new
    /// events from the log, after the last sequence number they saw).
    pub fn open(db: &storage::Store) -> Result<Self> {
        let (sender, _) = tokio::sync::broadcast::channel(1024);
        let store = Self {
            db: db.clone(),
            headers: db.tree("conversations")?,
            events: db.tree("conversation_events")?,
            by_external: db.tree("conversations_by_external")?,
            changes: Arc::new(sender),
            origin: Arc::from(new_id()),
        };
        if db.backend() == storage::Backend::Postgres {
            store.forward_other_instances_changes()?;
        }
        Ok(store)
    }

    /// Relays other instances' change notices to this process's subscribers, until the database
    /// or this store goes away.
    fn forward_other_instances_changes(&self) -> Result<()> {
        let mut notices = self.db.subscribe(CHANGES_TOPIC)?;
        let changes = Arc::downgrade(&self.changes);
        let origin = self.origin.clone();
        std::thread::Builder::new()
            .name("conversation-changes".into())
            .spawn(move || {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    let notice = match notices.blocking_recv() {
                        Ok(notice) => notice,
                        // Notices missed here, or lost in a reconnect: anything may have changed.
                        Err(RecvError::Lagged(_)) => String::new(),
                        Err(RecvError::Closed) => return,
                    };
                    let id = match notice.split_once(' ') {
                        Some((from, _)) if from == &*origin => continue,
                        Some((_, id)) => id.to_string(),
                        None => ANY_CONVERSATION.to_string(),
                    };
                    let Some(changes) = changes.upgrade() else { return };
                    let _ = changes.send(ConversationChange { id, event: None });
                }
            })
            .map_err(|error| {
                StoreError::Storage(storage::Error::Postgres(format!("starting the change relay: {error}")))
            })?;
        Ok(())
    }

    /// Tells this process's subscribers, and the other instances on a shared database, that
    /// conversation `id` changed.
    fn changed(&self, id: &str, events: &[Event]) {
        if events.is_empty() {
            let _ = self.changes.send(ConversationChange { id: id.to_string(), event: None });
        }
        for event in events {
            let _ = self.changes.send(ConversationChange { id: id.to_string(), event: Some(event.clone()) });
        }
        if self.db.backend() == storage::Backend::Postgres
            && let Err(error) = self.db.publish(CHANGES_TOPIC, &format!("{} {id}", self.origin))
        {
            // The change is stored; other instances' live views catch up at their next notice.
            tracing::warn!(%error, "telling other instances about a conversation change failed");
        }
    }

    /// Holds `id`'s turn until the guard drops: one turn at a time per conversation, in this
    /// process and (with PostgreSQL) across every instance on the database.
    pub fn hold_turn(&self, id: &str) -> Result<storage::Lock<'_>> {
        Ok(self.db.lock(&format!("turn:{id}"))?)
    }

    /// Subscribes to changes of every conversation.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ConversationChange> {
        self.changes.subscribe()
    }

    pub fn create(&self, channel: Channel, external_id: Option<String>) -> Result<Conversation> {
        let now = Utc::now();
        let conversation = Conversation {
            id: new_id(),
            channel,
            external_id: external_id.clone(),
            created_at: now,
            updated_at: now,
            status: Status::Open,
            taken_over_by: None,
            assignee: None,
            customer_id: None,
            last_intent: None,
            summary: None,
            csat: None,
            last_customer_message_at: None,
            waiting_since: None,
            n_events: 0,
        };
        let Some(external_id) = external_id else {
            self.headers.insert(conversation.id.as_bytes(), serde_json::to_vec(&conversation)?)?;
            self.changed(&conversation.id, &[]);
            return Ok(conversation);
        };
        // One conversation per channel address, even when two instances create it at once: the
        // address and the header are written together, and only when the address is new.
        use storage::{TransactionError, TxError};
        let header = serde_json::to_vec(&conversation)?;
        let key = external_key(channel, &external_id);
        let created = self.db.transaction(&[&self.headers, &self.by_external], |trees| {
            if let Some(existing) = trees[1].get(&key)? {
                return Ok(Err(String::from_utf8_lossy(&existing).into_owned()));
            }
            trees[1].insert(&key, conversation.id.as_bytes())?;
            trees[0].insert(conversation.id.as_bytes(), &header)?;
            Ok::<_, TxError<std::convert::Infallible>>(Ok(()))
        });
        match created {
            Ok(Ok(())) => {
                self.changed(&conversation.id, &[]);
                Ok(conversation)
            }
            Ok(Err(existing)) => self.get(&existing),
            Err(TransactionError::Storage(error)) => Err(StoreError::Storage(error)),
            Err(TransactionError::Abort(never)) => match never {},
        }
    }

    /// Finds the conversation of a channel address (one conversation per WhatsApp sender).
    pub fn find_external(&self, channel: Channel, external_id: &str) -> Result<Option<Conversation>> {
        match self.by_external.get(external_key(channel, external_id))? {
            Some(id) => self.get(&String::from_utf8_lossy(&id)).map(Some),
            None => Ok(None),
        }
    }

    pub fn get(&self, id: &str) -> Result<Conversation> {
        let bytes = self.headers.get(id.as_bytes())?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    pub fn exists(&self, id: &str) -> Result<bool> {
        Ok(self.headers.contains_key(id.as_bytes())?)
    }

    /// Appends events to a conversation's log and updates its header, atomically.
    pub fn append(&self, id: &str, kinds: Vec<EventKind>) -> Result<Vec<Event>> {
        self.append_and_update(id, kinds, |_| {})
    }

    /// Changes a conversation's header without logging an event.
    pub fn update(&self, id: &str, change: impl Fn(&mut Conversation)) -> Result<Conversation> {
        let mut updated = None;
        self.headers.update_and_fetch(id.as_bytes(), |old| {
            let old = old?;
            // A header this version cannot read is left as it is (never removed).
            let Ok(mut conversation) = serde_json::from_slice::<Conversation>(old) else { return Some(old.to_vec()) };
            change(&mut conversation);
            conversation.updated_at = Utc::now();
            let bytes = serde_json::to_vec(&conversation).ok()?;
            updated = Some(conversation);
            Some(bytes)
        })?;
        let conversation = updated.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        self.changed(id, &[]);
        Ok(conversation)
    }

    /// Appends events and applies `change` to the header in one transaction.
    pub fn append_and_update(
        &self,
        id: &str,
        kinds: Vec<EventKind>,
        change: impl Fn(&mut Conversation),
    ) -> Result<Vec<Event>> {
        use storage::{TransactionError, TxError};
        let result = self.db.transaction(&[&self.headers, &self.events], |trees| {
            let (headers, events) = (&trees[0], &trees[1]);
            let Some(bytes) = headers.get(id.as_bytes())? else {
                return Err(TxError::Abort(StoreError::NotFound(id.to_string())));
            };
            let mut conversation: Conversation =
                serde_json::from_slice(&bytes).map_err(|error| TxError::Abort(StoreError::Corrupt(error)))?;
            let now = Utc::now();
            let mut written = Vec::with_capacity(kinds.len());
            for kind in &kinds {
                let event = Event { seq: conversation.n_events, at: now, kind: kind.clone() };
                apply_to_header(&mut conversation, &event);
                conversation.n_events += 1;
                let bytes = serde_json::to_vec(&event).map_err(|error| TxError::Abort(StoreError::Corrupt(error)))?;
                events.insert(event_key(id, event.seq), bytes)?;
                written.push(event);
            }
            change(&mut conversation);
            conversation.updated_at = now;
            let bytes =
                serde_json::to_vec(&conversation).map_err(|error| TxError::Abort(StoreError::Corrupt(error)))?;
            headers.insert(id.as_bytes(), bytes)?;
            Ok(written)
        });
        let written = match result {
            Ok(written) => written,
            Err(TransactionError::Abort(error)) => return Err(error),
            Err(TransactionError::Storage(error)) => return Err(StoreError::Storage(error)),
        };
        self.changed(id, &written);
        Ok(written)
    }

    /// The whole log of a conversation, in order.
    pub fn events(&self, id: &str) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        let mut any = false;
        for item in self.events.scan_prefix(event_prefix(id))? {
            let (_, bytes) = item?;
            any = true;
            let event = serde_json::from_slice::<Event>(&bytes)?;
            if event.kind != EventKind::Newer {
                out.push(event);
            }
        }
        // A log with events belongs to a conversation; only an empty one needs the header.
        if !any && !self.exists(id)? {
            return Err(StoreError::NotFound(id.to_string()));
        }
        Ok(out)
    }

    /// Every conversation header, newest first.
    pub fn list(&self) -> Result<Vec<Conversation>> {
        let mut out = Vec::new();
        for item in self.headers.iter()? {
            let (_, bytes) = item?;
            out.push(serde_json::from_slice::<Conversation>(&bytes)?);
        }
        out.sort_by_key(|conversation| std::cmp::Reverse(conversation.updated_at));
        Ok(out)
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// Keeps the header's quick facts in step with the log.
fn apply_to_header(conversation: &mut Conversation, event: &Event) {
    match &event.kind {
        EventKind::MessageIn { .. } => conversation.last_customer_message_at = Some(event.at),
        EventKind::Intent { name, .. } => conversation.last_intent = Some(name.clone()),
        EventKind::CustomerIdentified { customer_id, .. } => conversation.customer_id = Some(customer_id.clone()),
        EventKind::Handoff { summary, .. } => {
            conversation.status = Status::PendingHuman;
            conversation.waiting_since = Some(event.at);
            if summary.is_some() {
                conversation.summary = summary.clone();
            }
        }
        EventKind::StatusChanged { status, .. } => {
            conversation.status = *status;
            if *status != Status::PendingHuman {
                conversation.waiting_since = None;
            }
        }
        EventKind::Csat { score } => conversation.csat = Some(*score),
        _ => {}
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn event_prefix(id: &str) -> Vec<u8> {
    let mut key = id.as_bytes().to_vec();
    key.push(0);
    key
}

fn event_key(id: &str, seq: u64) -> Vec<u8> {
    let mut key = event_prefix(id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn external_key(channel: Channel, external_id: &str) -> Vec<u8> {
    format!("{}\0{external_id}", channel.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ConversationStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::open_sled(dir.path(), None).unwrap();
        (dir, ConversationStore::open(&db).unwrap())
    }

    #[test]
    fn newer_kinds_are_skipped_and_bad_records_are_errors() {
        let (_dir, store) = store();
        let id = store.create(Channel::Web, None).unwrap().id;
        store.append(&id, vec![EventKind::MessageIn { text: "hi".into() }]).unwrap();
        let newer = serde_json::json!({"seq": 1, "at": Utc::now(), "type": "sentiment", "score": 0.4});
        store.events.insert(event_key(&id, 1), serde_json::to_vec(&newer).unwrap()).unwrap();
        let events = store.events(&id).unwrap();
        assert_eq!(events.len(), 1, "the newer kind is skipped: {events:?}");
        // A reply whose turn lost a field is corrupt, not an empty turn.
        let broken =
            serde_json::json!({"seq": 2, "at": Utc::now(), "type": "reply", "text": "x", "turn": {"reply": "x"}});
        store.events.insert(event_key(&id, 2), serde_json::to_vec(&broken).unwrap()).unwrap();
        assert!(matches!(store.events(&id), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn events_keep_their_order_and_update_the_header() {
        let (_dir, store) = store();
        let conversation = store.create(Channel::Web, None).unwrap();
        store.append(&conversation.id, vec![EventKind::MessageIn { text: "hi".into() }]).unwrap();
        store
            .append(
                &conversation.id,
                vec![
                    EventKind::Intent { name: "greeting".into(), confidence: 0.9 },
                    EventKind::Reply { text: "Hello".into(), turn: crate::dialogue::Turn::default() },
                ],
            )
            .unwrap();
        let events = store.events(&conversation.id).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
        let header = store.get(&conversation.id).unwrap();
        assert_eq!(header.n_events, 3);
        assert_eq!(header.last_intent.as_deref(), Some("greeting"));
    }

    #[test]
    fn unknown_conversation_is_not_found_and_nothing_is_written() {
        let (_dir, store) = store();
        let error = store.append("nope", vec![EventKind::MessageIn { text: "x".into() }]).unwrap_err();
        assert!(matches!(error, StoreError::NotFound(_)));
        assert!(store.events.is_empty().unwrap());
    }

    #[test]
    fn logs_of_conversations_do_not_mix() {
        let (_dir, store) = store();
        let first = store.create(Channel::Web, None).unwrap();
        let second = store.create(Channel::Whatsapp, Some("15550001".into())).unwrap();
        store.append(&first.id, vec![EventKind::MessageIn { text: "one".into() }]).unwrap();
        store.append(&second.id, vec![EventKind::MessageIn { text: "two".into() }]).unwrap();
        assert_eq!(store.events(&first.id).unwrap().len(), 1);
        assert_eq!(store.find_external(Channel::Whatsapp, "15550001").unwrap().unwrap().id, second.id);
    }

    fn reopen(path: &std::path::Path) -> storage::Store {
        for _ in 0..100 {
            if let Ok(db) = storage::Store::open_sled(path, None) {
                return db;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the database stayed locked after its handle was dropped")
    }

    #[test]
    fn survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let db = storage::Store::open_sled(dir.path(), None).unwrap();
            let store = ConversationStore::open(&db).unwrap();
            let conversation = store.create(Channel::Api, None).unwrap();
            store.append(&conversation.id, vec![EventKind::MessageIn { text: "kept".into() }]).unwrap();
            store.flush().unwrap();
            conversation.id
        };
        // sled releases its file lock when its background flusher lets go of the old handle.
        let db = reopen(dir.path());
        let store = ConversationStore::open(&db).unwrap();
        assert_eq!(store.events(&id).unwrap()[0].kind, EventKind::MessageIn { text: "kept".into() });
    }
}
