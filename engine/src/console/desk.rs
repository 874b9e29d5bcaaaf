//! The contact-centre work on one conversation. Every operation appends events to the
//! conversation's log and changes its header in the same transaction.
//!
//! Who may act: a conversation held by an agent (taken over by them, or assigned to them) is
//! theirs; other agents get a conflict, supervisors may always step in.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::agents::{Agent, Agents};
use super::canned::Canned;
use super::{CONSOLE_NOTE_PREFIX, Error, Result};
use crate::conversations::{Conversation, ConversationStore, Event, EventKind, Status};
use crate::dialogue::{Engine, MAX_TEXT_CHARS};
use accounts::{ActionCall, ActionKind, ActionRegistry, ActionRequest, Actor, CustomerId, IdempotencyKey};

/// Longest snooze: a week.
pub const MAX_SNOOZE_MINUTES: u32 = 7 * 24 * 60;

/// A snoozed conversation comes back at `until`, or earlier when the customer writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnoozeRecord {
    until: DateTime<Utc>,
    snoozed_at: DateTime<Utc>,
    /// The status it returns to.
    previous: Status,
    by: String,
}

/// The model-written transfer summary, kept so it is generated once per handoff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedSummary {
    /// Sequence number of the handoff event it summarises up to.
    pub handoff_seq: u64,
    pub text: String,
}

/// What an account action run from the console came to.
#[derive(Debug, Clone)]
pub struct ActionResult {
    pub action: String,
    pub args: Value,
    pub output: Value,
    /// True when the same idempotency key had already run it (nothing ran twice).
    pub replayed: bool,
}

/// Account actions an agent may run from the console (changes and money; reads are on the page).
pub fn console_action(request: &ActionRequest) -> bool {
    matches!(request.kind(), ActionKind::Change | ActionKind::Money)
}

/// Operations on conversations for one console.
pub struct Desk<'a> {
    conversations: &'a ConversationStore,
    tree: &'a storage::Tree,
    agents: &'a Agents,
    canned: &'a Canned,
}

fn note(text: String) -> EventKind {
    EventKind::Note { text: format!("{CONSOLE_NOTE_PREFIX}{text}") }
}

impl<'a> Desk<'a> {
    pub(super) fn new(
        conversations: &'a ConversationStore,
        tree: &'a storage::Tree,
        agents: &'a Agents,
        canned: &'a Canned,
    ) -> Self {
        Self { conversations, tree, agents, canned }
    }

    /// The conversation, or `UnknownConversation`.
    pub fn conversation(&self, id: &str) -> Result<Conversation> {
        Ok(self.conversations.get(id)?)
    }

    /// Refuses when another agent holds the conversation (supervisors may always act).
    fn check_holder(conversation: &Conversation, agent: &Agent) -> Result<()> {
        if agent.role.is_supervisor() {
            return Ok(());
        }
        let holder = conversation.taken_over_by.as_deref().or(conversation.assignee.as_deref());
        match holder {
            Some(holder) if holder != agent.name.as_str() => {
                Err(Error::Conflict(format!("{holder} is working on this conversation; ask them or a supervisor")))
            }
            _ => Ok(()),
        }
    }

    fn take_over_events(conversation: &Conversation, agent: &Agent) -> Vec<EventKind> {
        let mut events = vec![note(format!("{} took over from the assistant", agent.name))];
        if conversation.status != Status::Open {
            events.push(EventKind::StatusChanged { status: Status::Open, by: agent.name.to_string() });
        }
        events
    }

    /// Takes the conversation over: the assistant stops replying, the agent holds it.
    pub fn take_over(&self, id: &str, agent: &Agent) -> Result<Conversation> {
        let conversation = self.conversation(id)?;
        Self::check_holder(&conversation, agent)?;
        if conversation.taken_over_by.as_deref() == Some(agent.name.as_str()) {
            return Ok(conversation);
        }
        self.clear_snooze(id)?;
        let name = agent.name.to_string();
        self.conversations.append_and_update(id, Self::take_over_events(&conversation, agent), |header| {
            header.taken_over_by = Some(name.clone());
            header.assignee = Some(name.clone());
        })?;
        self.conversation(id)
    }

    /// Gives the conversation back to the assistant.
    pub fn hand_back(&self, id: &str, agent: &Agent) -> Result<Conversation> {
        let conversation = self.conversation(id)?;
        Self::check_holder(&conversation, agent)?;
        if conversation.taken_over_by.is_none() {
            return Err(Error::Conflict("the assistant already has this conversation".into()));
        }
        let mut events = vec![note(format!("{} handed the conversation back to the assistant", agent.name))];
        if conversation.status != Status::Open {
            events.push(EventKind::StatusChanged { status: Status::Open, by: agent.name.to_string() });
        }
        self.conversations.append_and_update(id, events, |header| header.taken_over_by = None)?;
        self.conversation(id)
    }

    /// Sends a message to the customer as the agent (taking the conversation over first if the
    /// assistant had it). A message that is exactly a known short code is replaced by its text.
    /// Channels forward the logged `AgentMessage` to the customer.
    pub fn send(&self, id: &str, agent: &Agent, raw_text: &str) -> Result<Event> {
        let text = super::agent_text(raw_text, MAX_TEXT_CHARS)?;
        let text = self.canned.expand(&text)?.unwrap_or(text);
        let conversation = self.conversation(id)?;
        Self::check_holder(&conversation, agent)?;
        if conversation.status == Status::Resolved {
            return Err(Error::Conflict("the conversation is resolved; take it over to reopen it".into()));
        }
        let mut events = Vec::new();
        if conversation.taken_over_by.as_deref() != Some(agent.name.as_str()) {
            events.extend(Self::take_over_events(&conversation, agent));
            self.clear_snooze(id)?;
        }
        events.push(EventKind::AgentMessage { agent: agent.name.to_string(), text });
        let name = agent.name.to_string();
        let written = self.conversations.append_and_update(id, events, |header| {
            header.taken_over_by = Some(name.clone());
            header.assignee = Some(name.clone());
        })?;
        written.into_iter().last().ok_or_else(|| Error::Internal(anyhow::anyhow!("nothing was logged")))
    }

    /// A private note: kept in the log, never shown to the customer.
    pub fn note(&self, id: &str, agent: &Agent, raw_text: &str) -> Result<Event> {
        let text = super::agent_text(raw_text, MAX_TEXT_CHARS)?;
        let written =
            self.conversations.append(id, vec![EventKind::AgentNote { agent: agent.name.to_string(), text }])?;
        written.into_iter().last().ok_or_else(|| Error::Internal(anyhow::anyhow!("nothing was logged")))
    }

    /// Resolves the conversation and asks the customer for a 1-5 rating (the assistant records
    /// the answer).
    pub fn close(&self, id: &str, agent: &Agent, engine: &Engine) -> Result<Conversation> {
        let conversation = self.conversation(id)?;
        Self::check_holder(&conversation, agent)?;
        if conversation.status == Status::Resolved {
            return Err(Error::Conflict("the conversation is already resolved".into()));
        }
        self.clear_snooze(id)?;
        let events = vec![
            note(format!("{} resolved the conversation", agent.name)),
            EventKind::StatusChanged { status: Status::Resolved, by: agent.name.to_string() },
        ];
        // The assistant reads the rating, so it gets the conversation back.
        self.conversations.append_and_update(id, events, |header| header.taken_over_by = None)?;
        engine.ask_for_rating(id)?;
        self.conversation(id)
    }

    /// Snoozes the conversation for `minutes`; it comes back then, or when the customer writes.
    pub fn snooze(&self, id: &str, agent: &Agent, minutes: u32) -> Result<DateTime<Utc>> {
        if !(1..=MAX_SNOOZE_MINUTES).contains(&minutes) {
            return Err(Error::InvalidSnooze);
        }
        let conversation = self.conversation(id)?;
        Self::check_holder(&conversation, agent)?;
        if conversation.status == Status::Resolved {
            return Err(Error::Conflict("a resolved conversation cannot be snoozed".into()));
        }
        let now = Utc::now();
        let until = now + Duration::minutes(i64::from(minutes));
        let previous = match (conversation.status, self.snooze_record(id)?) {
            (Status::Snoozed, Some(record)) => record.previous,
            (Status::Snoozed, None) => Status::Open,
            (status, _) => status,
        };
        let record = SnoozeRecord { until, snoozed_at: now, previous, by: agent.name.to_string() };
        self.tree.insert(snooze_key(id), serde_json::to_vec(&record)?)?;
        let events = vec![
            EventKind::StatusChanged { status: Status::Snoozed, by: agent.name.to_string() },
            note(format!("{} snoozed the conversation until {} UTC", agent.name, until.format("%Y-%m-%d %H:%M"))),
        ];
        self.conversations.append(id, events)?;
        Ok(until)
    }

    /// When a snoozed conversation comes back, if it is snoozed.
    pub fn snoozed_until(&self, id: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.snooze_record(id)?.map(|record| record.until))
    }

    fn snooze_record(&self, id: &str) -> Result<Option<SnoozeRecord>> {
        match self.tree.get(snooze_key(id))? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    fn clear_snooze(&self, id: &str) -> Result<()> {
        self.tree.remove(snooze_key(id))?;
        Ok(())
    }

    /// Wakes the snoozed conversations that are due (their time passed, or the customer wrote);
    /// returns how many woke.
    pub fn wake_due(&self) -> Result<usize> {
        let now = Utc::now();
        let mut n_woken = 0;
        for item in self.tree.scan_prefix(SNOOZE_PREFIX)? {
            let (key, bytes) = item?;
            let id = String::from_utf8_lossy(&key[SNOOZE_PREFIX.len()..]).to_string();
            let record: SnoozeRecord = serde_json::from_slice(&bytes)?;
            let conversation = match self.conversations.get(&id) {
                Ok(conversation) => conversation,
                Err(crate::conversations::StoreError::NotFound(_)) => {
                    self.tree.remove(&key)?;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if conversation.status != Status::Snoozed {
                self.tree.remove(&key)?;
                continue;
            }
            let customer_wrote = conversation.last_customer_message_at.is_some_and(|at| at > record.snoozed_at);
            if record.until > now && !customer_wrote {
                continue;
            }
            let why = if customer_wrote { "the customer wrote" } else { "its time came" };
            let previous = record.previous;
            self.conversations.append_and_update(
                &id,
                vec![
                    note(format!("the snooze ended ({why})")),
                    EventKind::StatusChanged { status: previous, by: "console".into() },
                ],
                |header| {
                    if previous == Status::PendingHuman {
                        header.waiting_since = Some(now);
                    }
                },
            )?;
            self.tree.remove(&key)?;
            n_woken += 1;
        }
        Ok(n_woken)
    }

    /// Assigns the conversation to an agent (`None`: to nobody). When an agent holds it taken
    /// over, the new assignee holds it instead.
    pub fn assign(&self, id: &str, agent: &Agent, target: Option<&str>) -> Result<Conversation> {
        let conversation = self.conversation(id)?;
        Self::check_holder(&conversation, agent)?;
        let target = match target.map(str::trim).filter(|name| !name.is_empty()) {
            Some(name) => {
                Some(self.agents.get(name)?.ok_or_else(|| Error::UnknownAgent(name.chars().take(64).collect()))?)
            }
            None => None,
        };
        let target_name = target.as_ref().map(|target| target.name.to_string());
        if conversation.assignee == target_name {
            return Ok(conversation);
        }
        let text = match &target_name {
            Some(name) if name == agent.name.as_str() => {
                format!("{} assigned the conversation to themselves", agent.name)
            }
            Some(name) => format!("{} assigned the conversation to {name}", agent.name),
            None => format!("{} unassigned the conversation", agent.name),
        };
        let taken_over = conversation.taken_over_by.is_some();
        self.conversations.append_and_update(id, vec![note(text)], |header| {
            header.assignee = target_name.clone();
            if taken_over && target_name.is_some() {
                header.taken_over_by = target_name.clone();
            }
        })?;
        self.conversation(id)
    }

    /// Runs an account action for the conversation's customer under the agent's name (audited
    /// so by the account system) and logs it in the conversation. A refusal is logged too and
    /// returned as `Error::Accounts(Refused)`.
    pub async fn run_action(
        &self,
        id: &str,
        agent: &Agent,
        registry: &ActionRegistry,
        name: &str,
        args: Value,
        idempotency_key: IdempotencyKey,
    ) -> Result<ActionResult> {
        let conversation = self.conversation(id)?;
        Self::check_holder(&conversation, agent)?;
        let request = checked_request(&conversation, name, args)?;
        let args = request.args_json();
        let action = request.name().as_str().to_string();
        let actor = Actor::agent(agent.name.as_str());
        let call = ActionCall::new(request, actor).with_idempotency_key(idempotency_key);
        let requested = EventKind::ActionRequested {
            action: action.clone(),
            args: args.clone(),
            actor: format!("agent:{}", agent.name),
        };
        match registry.run(call).await {
            Ok(outcome) => {
                let output = outcome.output.to_json();
                if !outcome.replayed {
                    let done =
                        EventKind::ActionDone { action: action.clone(), args: args.clone(), result: output.clone() };
                    self.conversations.append(id, vec![requested, done])?;
                }
                Ok(ActionResult { action, args, output, replayed: outcome.replayed })
            }
            Err(accounts::Error::Refused(refusal)) => {
                let refused = EventKind::ActionRefused {
                    action: action.clone(),
                    args: args.clone(),
                    code: refusal.code().to_string(),
                    reason: refusal.customer_message(),
                };
                self.conversations.append(id, vec![requested, refused])?;
                Err(Error::Accounts(accounts::Error::Refused(refusal)))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The model-written summary cached for this conversation, if any.
    pub fn cached_summary(&self, id: &str) -> Result<Option<CachedSummary>> {
        match self.tree.get(summary_key(id))? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn store_summary(&self, id: &str, summary: &CachedSummary) -> Result<()> {
        self.tree.insert(summary_key(id), serde_json::to_vec(summary)?)?;
        Ok(())
    }

    /// The hand-over summary an agent reads: written by the chat model once per handoff (then
    /// cached), else the one in the header, else composed from the log.
    pub fn handover_summary(&self, id: &str, engine: Option<&Engine>) -> Result<(String, SummarySource)> {
        let conversation = self.conversations.get(id)?;
        let events = self.conversations.events(id)?;
        let handoff_seq = events.iter().rev().find_map(|event| match event.kind {
            EventKind::Handoff { .. } => Some(event.seq),
            _ => None,
        });
        let (Some(handoff_seq), Some(engine)) = (handoff_seq, engine) else {
            let logged = conversation
                .summary
                .clone()
                .unwrap_or_else(|| crate::dialogue::summary::summarise(&events, conversation.customer_id.as_deref()));
            return Ok((logged, SummarySource::Log));
        };
        if let Some(cached) = self.cached_summary(id)?.filter(|cached| cached.handoff_seq == handoff_seq) {
            return Ok((cached.text, SummarySource::Model));
        }
        let text = engine.summarise(id)?;
        self.store_summary(id, &CachedSummary { handoff_seq, text: text.clone() })?;
        Ok((text, SummarySource::Model))
    }

    /// What an account action would do for this conversation's customer, run by `agent`: the
    /// checked request and the policy's refusal now, if it would refuse. Nothing changes.
    pub fn preview_action(
        &self,
        id: &str,
        agent: &Agent,
        registry: &ActionRegistry,
        name: &str,
        args: Value,
    ) -> Result<ActionPreview> {
        let conversation = self.conversations.get(id)?;
        let request = checked_request(&conversation, name, args)?;
        let refusal = match registry.check(&Actor::agent(agent.name.as_str()), &request)? {
            Ok(_) => None,
            Err(refusal) => Some(refusal.customer_message()),
        };
        Ok(ActionPreview { request, refusal })
    }
}

/// Longest reason an agent gives for an identity decision.
pub const MAX_REASON_CHARS: usize = 500;

fn reason_text(raw: &str) -> Result<String> {
    let reason = raw.trim();
    let n_chars = reason.chars().count();
    if n_chars == 0 {
        return Err(Error::InvalidAction("say why (the reason is audited)".into()));
    }
    if n_chars > MAX_REASON_CHARS {
        return Err(Error::TextTooLong { n_chars, max_chars: MAX_REASON_CHARS });
    }
    Ok(reason.to_string())
}

impl Desk<'_> {
    /// An agent verifies the conversation's (claimed) customer out of band, with a reason:
    /// logged in the conversation and audited under the agent on the customer's account.
    pub fn verify_customer(&self, id: &str, agent: &Agent, reason: &str, engine: &Engine) -> Result<Conversation> {
        let reason = reason_text(reason)?;
        let conversation = self.conversations.get(id)?;
        let customer_id = conversation
            .customer_id
            .clone()
            .ok_or_else(|| Error::InvalidAction("the customer has not said who they are yet".into()))?;
        let customer = CustomerId::parse(customer_id.clone()).map_err(|e| Error::InvalidAction(e.to_string()))?;
        let registry = engine.registry();
        registry.store().audit_event(
            &customer,
            Actor::agent(agent.name.as_str()),
            "verify_customer",
            serde_json::json!({"conversation_id": id, "reason": reason}),
            registry.today(),
        )?;
        engine.identify(id, &customer_id, crate::identity::Proof::Agent)?;
        self.conversations.append(
            id,
            vec![EventKind::Note {
                text: format!("{CONSOLE_NOTE_PREFIX}{} verified the customer: {reason}", agent.name),
            }],
        )?;
        Ok(self.conversations.get(id)?)
    }

    /// An agent lifts the lockout of the conversation's customer's self-service verification,
    /// with a reason; audited under the agent.
    pub fn unlock_verification(&self, id: &str, agent: &Agent, reason: &str, engine: &Engine) -> Result<Conversation> {
        let reason = reason_text(reason)?;
        let conversation = self.conversations.get(id)?;
        let customer_id = conversation
            .customer_id
            .clone()
            .ok_or_else(|| Error::InvalidAction("the customer has not said who they are yet".into()))?;
        let customer = CustomerId::parse(customer_id.clone()).map_err(|e| Error::InvalidAction(e.to_string()))?;
        let registry = engine.registry();
        registry.store().audit_event(
            &customer,
            Actor::agent(agent.name.as_str()),
            "unlock_verification",
            serde_json::json!({"conversation_id": id, "reason": reason}),
            registry.today(),
        )?;
        engine.identity().failures.clear(&customer_id)?;
        self.conversations.append(
            id,
            vec![EventKind::Note {
                text: format!("{CONSOLE_NOTE_PREFIX}{} unlocked the customer's verification: {reason}", agent.name),
            }],
        )?;
        Ok(self.conversations.get(id)?)
    }
}

/// Where a hand-over summary comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummarySource {
    /// Written by the chat model for the latest handoff.
    Model,
    /// The assistant's own summary in the header, or one composed from the log.
    Log,
}

impl SummarySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Log => "log",
        }
    }
}

/// An account action as the console would run it.
pub struct ActionPreview {
    pub request: ActionRequest,
    /// The policy's reason, in the customer's words, when it would refuse now.
    pub refusal: Option<String>,
}

/// Parses an action for a conversation: one the console offers, for the conversation's own
/// customer.
pub fn checked_request(conversation: &Conversation, name: &str, args: Value) -> Result<ActionRequest> {
    let Some(customer_id) = conversation.customer_id.as_deref() else {
        return Err(Error::InvalidAction(
            "the customer of this conversation is not identified yet; ask for their phone number or customer id".into(),
        ));
    };
    let request = ActionRequest::parse(name, args)?;
    if !console_action(&request) {
        return Err(Error::InvalidAction(format!("{name} is not an account change the console runs")));
    }
    match request.customer_id() {
        Some(named) if named.as_str() == customer_id => Ok(request),
        Some(named) => Err(Error::InvalidAction(format!(
            "this conversation's customer is {customer_id}; the action names {named}"
        ))),
        None => Err(Error::InvalidAction(format!("{name} names no customer"))),
    }
}

const SNOOZE_PREFIX: &[u8] = b"snooze/";

fn snooze_key(id: &str) -> Vec<u8> {
    [SNOOZE_PREFIX, id.as_bytes()].concat()
}

fn summary_key(id: &str) -> Vec<u8> {
    [b"summary/".as_slice(), id.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::test_support::console;
    use crate::console::{AgentName, Password, Role};
    use crate::conversations::Channel;

    fn agent(console: &crate::console::Console, name: &str, role: Role) -> Agent {
        let agent_name = AgentName::parse(name).unwrap();
        console.agents().add(&agent_name, role, &Password::parse("password one").unwrap()).unwrap();
        console.agents().get(name).unwrap().unwrap()
    }

    #[test]
    fn sending_takes_over_and_logs_an_agent_message() {
        let (_dir, db, console) = console();
        let conversations = ConversationStore::open(&db).unwrap();
        let desk = console.desk(&conversations);
        let alice = agent(&console, "alice", Role::Agent);
        let id = conversations.create(Channel::Web, None).unwrap().id;
        conversations.append(&id, vec![EventKind::Handoff { reason: "asked".into(), summary: None }]).unwrap();
        let event = desk.send(&id, &alice, "  /bye ").unwrap();
        let EventKind::AgentMessage { agent, text } = event.kind else { panic!("{event:?}") };
        assert_eq!(agent, "alice");
        assert!(text.starts_with("Is there anything else"), "the short code was expanded: {text}");
        let header = conversations.get(&id).unwrap();
        assert_eq!(header.taken_over_by.as_deref(), Some("alice"));
        assert_eq!(header.status, Status::Open);
        assert!(header.waiting_since.is_none());
    }

    #[test]
    fn another_agents_conversation_is_theirs_but_supervisors_may_step_in() {
        let (_dir, db, console) = console();
        let conversations = ConversationStore::open(&db).unwrap();
        let desk = console.desk(&conversations);
        let alice = agent(&console, "alice", Role::Agent);
        let bob = agent(&console, "bob", Role::Agent);
        let sue = agent(&console, "sue", Role::Supervisor);
        let id = conversations.create(Channel::Web, None).unwrap().id;
        desk.take_over(&id, &alice).unwrap();
        assert!(matches!(desk.send(&id, &bob, "hi"), Err(Error::Conflict(_))));
        assert!(matches!(desk.hand_back(&id, &bob), Err(Error::Conflict(_))));
        desk.note(&id, &bob, "private: I can still leave a note").unwrap();
        desk.assign(&id, &sue, Some("bob")).unwrap();
        let header = conversations.get(&id).unwrap();
        assert_eq!((header.assignee.as_deref(), header.taken_over_by.as_deref()), (Some("bob"), Some("bob")));
        desk.hand_back(&id, &bob).unwrap();
        assert!(conversations.get(&id).unwrap().taken_over_by.is_none());
        assert!(matches!(desk.assign(&id, &bob, Some("nobody")), Err(Error::UnknownAgent(_))));
    }

    #[test]
    fn snoozes_end_when_the_customer_writes() {
        let (_dir, db, console) = console();
        let conversations = ConversationStore::open(&db).unwrap();
        let desk = console.desk(&conversations);
        let alice = agent(&console, "alice", Role::Agent);
        let id = conversations.create(Channel::Web, None).unwrap().id;
        conversations.append(&id, vec![EventKind::Handoff { reason: "asked".into(), summary: None }]).unwrap();
        assert!(matches!(desk.snooze(&id, &alice, 0), Err(Error::InvalidSnooze)));
        assert!(matches!(desk.snooze(&id, &alice, MAX_SNOOZE_MINUTES + 1), Err(Error::InvalidSnooze)));
        desk.snooze(&id, &alice, 60).unwrap();
        assert_eq!(conversations.get(&id).unwrap().status, Status::Snoozed);
        assert_eq!(desk.wake_due().unwrap(), 0);
        std::thread::sleep(std::time::Duration::from_millis(5));
        conversations.append(&id, vec![EventKind::MessageIn { text: "hello?".into() }]).unwrap();
        assert_eq!(desk.wake_due().unwrap(), 1);
        let header = conversations.get(&id).unwrap();
        assert_eq!(header.status, Status::PendingHuman);
        assert!(header.waiting_since.is_some());
        assert!(desk.snoozed_until(&id).unwrap().is_none());
    }

    #[test]
    fn unknown_conversations_and_empty_texts_are_refused() {
        let (_dir, db, console) = console();
        let conversations = ConversationStore::open(&db).unwrap();
        let desk = console.desk(&conversations);
        let alice = agent(&console, "alice", Role::Agent);
        assert!(matches!(desk.take_over("nope", &alice), Err(Error::UnknownConversation(_))));
        assert!(matches!(desk.send("nope", &alice, "hi"), Err(Error::UnknownConversation(_))));
        assert!(matches!(desk.note("nope", &alice, "hi"), Err(Error::UnknownConversation(_))));
        let id = conversations.create(Channel::Web, None).unwrap().id;
        assert!(matches!(desk.send(&id, &alice, "   "), Err(Error::EmptyText)));
        assert!(matches!(desk.note(&id, &alice, &"x".repeat(MAX_TEXT_CHARS + 1)), Err(Error::TextTooLong { .. })));
        assert_eq!(conversations.get(&id).unwrap().n_events, 0, "nothing was logged");
    }

    #[test]
    fn actions_must_be_changes_for_the_conversations_own_customer() {
        let mut conversation =
            ConversationStore::open(&storage::Store::temporary().unwrap()).unwrap().create(Channel::Web, None).unwrap();
        let args = serde_json::json!({"customer_id": "C2004", "line_id": "L2005", "gb_amount": 1.0});
        assert!(matches!(checked_request(&conversation, "refuel_data", args.clone()), Err(Error::InvalidAction(_))));
        conversation.customer_id = Some("C2004".into());
        assert!(checked_request(&conversation, "refuel_data", args).is_ok());
        let other = serde_json::json!({"customer_id": "C2001", "line_id": "L2001", "gb_amount": 1.0});
        assert!(matches!(checked_request(&conversation, "refuel_data", other), Err(Error::InvalidAction(_))));
        let read = serde_json::json!({"customer_id": "C2004"});
        assert!(matches!(checked_request(&conversation, "get_customer_by_id", read), Err(Error::InvalidAction(_))));
        let bad = serde_json::json!({"customer_id": "C2004", "line_id": "L2005", "gb_amount": "lots"});
        assert!(matches!(checked_request(&conversation, "refuel_data", bad), Err(Error::Accounts(_))));
        assert!(matches!(checked_request(&conversation, "launch_rockets", Value::Null), Err(Error::Accounts(_))));
    }
}
