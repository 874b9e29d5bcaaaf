//! The queue: conversations waiting for a human first (transferred by the assistant, or
//! flagged after repeated misunderstandings), oldest wait first; then the other active
//! conversations, most recently updated first; then the snoozed ones.
//!
//! Agents see conversations nobody holds and their own; supervisors see everyone's.

use chrono::{DateTime, Duration, Utc};

use super::agents::{Agent, Role};
use super::desk::Desk;
use super::view::{clock, customer_label, duration_label, status_label};
use super::{Result, reports};
use crate::accounts::AccountStore;
use crate::conversations::{Conversation, ConversationStore, Event, EventKind, Status};
use crate::dialogue::state::State;
use ::web::console::{AgentLoad, LiveNumbers, QueueRow, QueueView};

/// Conversations nobody holds show as active for this long after their last change.
pub const ACTIVE_WINDOW_HOURS: i64 = 24;
/// Most rows in each section.
pub const MAX_ROWS: usize = 200;
/// Longest one-line summary.
const SUMMARY_CHARS: usize = 160;

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

fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= SUMMARY_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(SUMMARY_CHARS - 1).collect();
    format!("{cut}…")
}

fn summary(conversation: &Conversation, events: &[Event]) -> String {
    if let Some(summary) = &conversation.summary {
        return one_line(summary);
    }
    let last_message = events.iter().rev().find_map(|event| match &event.kind {
        EventKind::MessageIn { text } => Some(text.as_str()),
        _ => None,
    });
    last_message.map(|text| one_line(&format!("“{text}”"))).unwrap_or_default()
}

fn row(
    conversation: &Conversation,
    events: &[Event],
    is_flagged: bool,
    snoozed_until: Option<DateTime<Utc>>,
    store: Option<&AccountStore>,
    now: DateTime<Utc>,
) -> QueueRow {
    let waiting_since = conversation.waiting_since.filter(|_| conversation.taken_over_by.is_none());
    QueueRow {
        id: conversation.id.clone(),
        href: format!("/console/conversations/{}", conversation.id),
        channel: conversation.channel.as_str().to_string(),
        customer: customer_label(conversation, store),
        intent: reports::topic(conversation, events),
        status: conversation.status.as_str().to_string(),
        status_label: status_label(conversation).to_string(),
        waiting_since: waiting_since.map(|since| since.to_rfc3339()).unwrap_or_default(),
        waiting: waiting_since.map(|since| duration_label(now - since)).unwrap_or_default(),
        summary: summary(conversation, events),
        assignee: conversation.assignee.clone().unwrap_or_default(),
        holder: conversation.taken_over_by.clone().unwrap_or_default(),
        flagged: is_flagged,
        snoozed_until: snoozed_until.map(|until| until.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(),
        updated: clock(conversation.updated_at),
    }
}

/// Builds the queue `viewer` sees; wakes the snoozed conversations that are due first.
pub fn build(
    conversations: &ConversationStore,
    desk: &Desk<'_>,
    viewer: &Agent,
    store: Option<&AccountStore>,
    now: DateTime<Utc>,
) -> Result<QueueView> {
    desk.wake_due()?;
    let mut waiting: Vec<(DateTime<Utc>, QueueRow)> = Vec::new();
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
            snoozed.push(row(&conversation, &events, false, until, store, now));
            continue;
        }
        let is_flagged = conversation.taken_over_by.is_none() && !pending && flagged(&events);
        let entry = row(&conversation, &events, is_flagged, None, store, now);
        if pending || is_flagged {
            waiting.push((conversation.waiting_since.unwrap_or(conversation.updated_at), entry));
        } else {
            active.push(entry);
        }
    }
    waiting.sort_by_key(|(since, _)| *since);
    let mut view =
        QueueView { waiting: waiting.into_iter().map(|(_, row)| row).take(MAX_ROWS).collect(), active, snoozed };
    view.active.truncate(MAX_ROWS);
    view.snoozed.truncate(MAX_ROWS);
    Ok(view)
}

/// Today's live numbers.
pub fn live_numbers(conversations: &ConversationStore, now: DateTime<Utc>) -> Result<LiveNumbers> {
    let (stats, current) = reports::today(conversations, now)?;
    Ok(numbers(&stats, current))
}

/// The numbers of a set of conversations, formatted.
pub fn numbers(stats: &reports::Stats, current: reports::Now) -> LiveNumbers {
    LiveNumbers {
        conversations: stats.conversations,
        contained: stats.contained,
        containment: stats.containment().map_or_else(|| "–".into(), percent),
        transferred: stats.transferred,
        first_response: stats.average_first_response_seconds().map_or_else(|| "–".into(), super::view::seconds_label),
        csat: match stats.csat_average() {
            Some(average) => {
                format!("{average:.1} / 5 ({} rating{})", stats.n_csat, if stats.n_csat == 1 { "" } else { "s" })
            }
            None => "–".into(),
        },
        waiting_now: current.waiting,
        with_agents_now: current.with_agents,
    }
}

/// `72%`
pub fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// What each agent holds and is assigned now.
pub fn agent_loads(conversations: &ConversationStore, agents: &[Agent]) -> Result<Vec<AgentLoad>> {
    let headers: Vec<Conversation> =
        conversations.list()?.into_iter().filter(|conversation| conversation.status != Status::Resolved).collect();
    Ok(agents
        .iter()
        .map(|agent| AgentLoad {
            agent: agent.name.to_string(),
            role: agent.role.to_string(),
            holding: headers.iter().filter(|c| c.taken_over_by.as_deref() == Some(agent.name.as_str())).count(),
            assigned: headers.iter().filter(|c| c.assignee.as_deref() == Some(agent.name.as_str())).count(),
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

    fn ids(rows: &[QueueRow]) -> Vec<&str> {
        rows.iter().map(|row| row.id.as_str()).collect()
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

        let queue = build(&conversations, &desk, &alice, None, Utc::now()).unwrap();
        assert_eq!(ids(&queue.waiting), vec![transferred.as_str(), confused.as_str()]);
        assert_eq!(ids(&queue.active), vec![chatting.as_str()], "bob's conversation and the empty one are not shown");
        let first = &queue.waiting[0];
        assert_eq!(first.customer, "WhatsApp +•••••••2005");
        assert_eq!(first.summary, "Wants a human.");
        assert!(!first.waiting.is_empty());
        assert!(queue.waiting[1].flagged);

        let queue = build(&conversations, &desk, &sue, None, Utc::now()).unwrap();
        assert_eq!(ids(&queue.active), vec![bobs.as_str(), chatting.as_str()], "supervisors see everyone's");
        assert_eq!(queue.active[0].holder, "bob");

        desk.snooze(&transferred, &alice, 30).unwrap();
        let queue = build(&conversations, &desk, &alice, None, Utc::now()).unwrap();
        assert_eq!(ids(&queue.snoozed), vec![transferred.as_str()]);
        assert!(!queue.snoozed[0].snoozed_until.is_empty());
    }
}
