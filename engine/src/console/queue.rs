//! The queue: conversations waiting for a human first (transferred by the assistant, or
//! flagged after repeated misunderstandings), oldest wait first; then the other active
//! conversations, most recently updated first; then the snoozed ones.
//!
//! Agents see conversations nobody holds and their own; supervisors see everyone's. This is
//! the order and the selection; `server` formats the rows for the page.

use chrono::{DateTime, Duration, Utc};

use super::Result;
use super::agents::{Agent, Role};
use super::desk::Desk;
use crate::conversations::{Conversation, ConversationStore, Event, EventKind, Status};
use crate::dialogue::state::State;

/// Conversations nobody holds show as active for this long after their last change.
pub const ACTIVE_WINDOW_HOURS: i64 = 24;
/// Most rows in each section.
pub const MAX_ROWS: usize = 200;

/// One conversation in the queue, with its log.
pub struct QueueEntry {
    pub conversation: Conversation,
    pub events: Vec<Event>,
    /// The assistant failed to understand the customer repeatedly, or offered a human.
    pub flagged: bool,
    pub snoozed_until: Option<DateTime<Utc>>,
}

/// The queue one agent sees.
pub struct Queue {
    pub waiting: Vec<QueueEntry>,
    pub active: Vec<QueueEntry>,
    pub snoozed: Vec<QueueEntry>,
}

/// What one agent holds and is assigned now.
pub struct AgentLoad {
    pub agent: Agent,
    pub holding: usize,
    pub assigned: usize,
}

/// Whether `viewer` sees a conversation in their queue.
fn visible_to(conversation: &Conversation, viewer: &Agent) -> bool {
    if viewer.role == Role::Supervisor {
        return true;
    }
    let holder = conversation.taken_over_by.as_deref().or(conversation.assignee.as_deref());
    holder.is_none_or(|holder| holder == viewer.name.as_str())
}

/// The assistant failed to understand the customer repeatedly, or offered a human.
pub fn flagged(events: &[Event]) -> bool {
    let state = State::replay(events);
    state.failed_understandings >= 2
        || state.pending.as_ref().is_some_and(|pending| pending.action == "transfer_to_human_agents")
}

/// Builds the queue `viewer` sees; wakes the snoozed conversations that are due first.
pub fn build(conversations: &ConversationStore, desk: &Desk<'_>, viewer: &Agent, now: DateTime<Utc>) -> Result<Queue> {
    desk.wake_due()?;
    let mut waiting: Vec<(DateTime<Utc>, QueueEntry)> = Vec::new();
    let mut active = Vec::new();
    let mut snoozed = Vec::new();
    let window = Duration::hours(ACTIVE_WINDOW_HOURS);
    for conversation in conversations.list()? {
        if conversation.status == Status::Resolved || !visible_to(&conversation, viewer) {
            continue;
        }
        let held = conversation.taken_over_by.is_some() || conversation.assignee.is_some();
        let recent = now - conversation.updated_at <= window;
        let pending = conversation.status == Status::PendingHuman && conversation.taken_over_by.is_none();
        if !(recent || held || pending || conversation.status == Status::Snoozed) {
            continue;
        }
        let events = match conversations.events(&conversation.id) {
            Ok(events) => events,
            Err(crate::conversations::StoreError::NotFound(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        if events.iter().all(|event| !matches!(event.kind, EventKind::MessageIn { .. })) && !held {
            // Opened widgets nobody wrote in are not work.
            continue;
        }
        if conversation.status == Status::Snoozed {
            let until = desk.snoozed_until(&conversation.id)?;
            snoozed.push(QueueEntry { conversation, events, flagged: false, snoozed_until: until });
            continue;
        }
        let is_flagged = conversation.taken_over_by.is_none() && !pending && flagged(&events);
        let since = conversation.waiting_since.unwrap_or(conversation.updated_at);
        let entry = QueueEntry { conversation, events, flagged: is_flagged, snoozed_until: None };
        if pending || is_flagged {
            waiting.push((since, entry));
        } else {
            active.push(entry);
        }
    }
    waiting.sort_by_key(|(since, _)| *since);
    let mut queue =
        Queue { waiting: waiting.into_iter().map(|(_, entry)| entry).take(MAX_ROWS).collect(), active, snoozed };
    queue.active.truncate(MAX_ROWS);
    queue.snoozed.truncate(MAX_ROWS);
    Ok(queue)
}

/// What each agent holds and is assigned now.
pub fn agent_loads(conversations: &ConversationStore, agents: &[Agent]) -> Result<Vec<AgentLoad>> {
    let headers: Vec<Conversation> =
        conversations.list()?.into_iter().filter(|conversation| conversation.status != Status::Resolved).collect();
    Ok(agents
        .iter()
        .map(|agent| AgentLoad {
            holding: headers.iter().filter(|c| c.taken_over_by.as_deref() == Some(agent.name.as_str())).count(),
            assigned: headers.iter().filter(|c| c.assignee.as_deref() == Some(agent.name.as_str())).count(),
            agent: agent.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::test_support::console;
    use crate::console::{AgentName, Password};
    use crate::conversations::Channel;

    fn agent(console: &crate::console::Console, name: &str, role: Role) -> Agent {
        console
            .agents()
            .add(&AgentName::parse(name).unwrap(), role, &Password::parse("password one").unwrap())
            .unwrap();
        console.agents().get(name).unwrap().unwrap()
    }

    fn ids(entries: &[QueueEntry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.conversation.id.as_str()).collect()
    }

    #[test]
    fn waiting_first_then_active_and_agents_see_only_theirs() {
        let (_dir, db, console) = console();
        let conversations = ConversationStore::open(&db).unwrap();
        let desk = console.desk(&conversations);
        let alice = agent(&console, "alice", Role::Agent);
        let bob = agent(&console, "bob", Role::Agent);
        let sue = agent(&console, "sue", Role::Supervisor);
        let say = |id: &str, text: &str| {
            conversations.append(id, vec![EventKind::MessageIn { text: text.into() }]).unwrap();
        };
        let chatting = conversations.create(Channel::Web, None).unwrap().id;
        say(&chatting, "what plans do you have?");
        let transferred = conversations.create(Channel::Whatsapp, Some("+15550102005".into())).unwrap().id;
        say(&transferred, "a person please");
        conversations
            .append(
                &transferred,
                vec![EventKind::Handoff { reason: "asked".into(), summary: Some("Wants a human.".into()) }],
            )
            .unwrap();
        let confused = conversations.create(Channel::Web, None).unwrap().id;
        say(&confused, "asdf");
        conversations.append(&confused, vec![EventKind::NotUnderstood { text: "asdf".into() }]).unwrap();
        say(&confused, "qwer");
        conversations.append(&confused, vec![EventKind::NotUnderstood { text: "qwer".into() }]).unwrap();
        let bobs = conversations.create(Channel::Web, None).unwrap().id;
        say(&bobs, "hello");
        desk.take_over(&bobs, &bob).unwrap();
        let _empty = conversations.create(Channel::Web, None).unwrap().id;

        let queue = build(&conversations, &desk, &alice, Utc::now()).unwrap();
        assert_eq!(ids(&queue.waiting), vec![transferred.as_str(), confused.as_str()]);
        assert_eq!(ids(&queue.active), vec![chatting.as_str()], "bob's conversation and the empty one are not shown");
        assert!(!queue.waiting[0].flagged, "transferred, not flagged");
        assert!(queue.waiting[1].flagged);

        let queue = build(&conversations, &desk, &sue, Utc::now()).unwrap();
        assert_eq!(ids(&queue.active), vec![bobs.as_str(), chatting.as_str()], "supervisors see everyone's");
        assert_eq!(queue.active[0].conversation.taken_over_by.as_deref(), Some("bob"));

        desk.snooze(&transferred, &alice, 30).unwrap();
        let queue = build(&conversations, &desk, &alice, Utc::now()).unwrap();
        assert_eq!(ids(&queue.snoozed), vec![transferred.as_str()]);
        assert!(queue.snoozed[0].snoozed_until.is_some());
    }
}
