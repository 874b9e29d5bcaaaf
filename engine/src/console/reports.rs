//! Live numbers and reports, computed from the conversation logs (nothing is counted on the
//! side, so the numbers always agree with what the logs say happened).
//!
//! Definitions, per conversation (counted on the UTC day it started, and only when the
//! customer wrote at least once):
//! - **transferred**: the assistant handed it to a human (a `Handoff` event);
//! - **contained** (resolved without a human): no handoff, no agent message, never taken over;
//! - **first response**: from the first handoff to the first agent message after it;
//! - **CSAT**: the customer's last 1-5 rating;
//! - **intents**: each distinct intent the assistant recognised with confidence, small talk,
//!   yes/no and identification answers left out.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::{CONSOLE_NOTE_PREFIX, Result};
use crate::conversations::{Conversation, ConversationStore, Event, EventKind, Status};

/// Intents that say nothing about why the customer came.
const UNINFORMATIVE_INTENTS: &[&str] = &[
    "greeting",
    "thanks",
    "goodbye",
    "chitchat",
    "affirm",
    "deny",
    "give_phone_number",
    "give_customer_id",
    "give_name_and_dob",
    "out_of_scope",
    "oos",
];
/// Least confidence of an intent that counts.
const MIN_INTENT_CONFIDENCE: f32 = 0.45;

fn informative(name: &str, confidence: f32) -> bool {
    confidence >= MIN_INTENT_CONFIDENCE && !UNINFORMATIVE_INTENTS.contains(&name)
}

/// What the conversation is about: the first intent that says why the customer came (else
/// the last one recognised).
pub fn topic(conversation: &Conversation, events: &[Event]) -> String {
    events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::Intent { name, confidence } if informative(name, *confidence) => Some(name.clone()),
            _ => None,
        })
        .or_else(|| conversation.last_intent.clone())
        .unwrap_or_default()
}

/// What one conversation contributes.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationFacts {
    pub day: NaiveDate,
    /// The customer wrote at least once.
    pub counted: bool,
    pub transferred: bool,
    pub human_involved: bool,
    pub first_response: Option<Duration>,
    pub csat: Option<u8>,
    pub intents: Vec<String>,
}

impl ConversationFacts {
    pub fn contained(&self) -> bool {
        self.counted && !self.human_involved
    }
}

/// Reads the facts of one conversation off its log.
pub fn facts(conversation: &Conversation, events: &[Event]) -> ConversationFacts {
    let mut facts = ConversationFacts {
        day: conversation.created_at.date_naive(),
        counted: false,
        transferred: false,
        human_involved: false,
        first_response: None,
        csat: None,
        intents: Vec::new(),
    };
    let mut handoff_at: Option<DateTime<Utc>> = None;
    for event in events {
        match &event.kind {
            EventKind::MessageIn { .. } => facts.counted = true,
            EventKind::Handoff { .. } => {
                facts.transferred = true;
                facts.human_involved = true;
                handoff_at.get_or_insert(event.at);
            }
            EventKind::AgentMessage { .. } => {
                facts.human_involved = true;
                if facts.first_response.is_none()
                    && let Some(since) = handoff_at
                {
                    facts.first_response = Some(event.at - since);
                }
            }
            EventKind::Note { text } if text.starts_with(CONSOLE_NOTE_PREFIX) && text.contains("took over") => {
                facts.human_involved = true;
            }
            EventKind::Csat { score } => facts.csat = Some(*score),
            EventKind::Intent { name, confidence }
                if informative(name, *confidence) && !facts.intents.contains(name) =>
            {
                facts.intents.push(name.clone());
            }
            _ => {}
        }
    }
    facts
}

/// Sums over a set of conversations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub conversations: usize,
    pub contained: usize,
    pub transferred: usize,
    pub first_response_seconds_total: f64,
    pub n_first_responses: usize,
    pub csat_total: u64,
    pub n_csat: usize,
}

impl Stats {
    pub fn add(&mut self, facts: &ConversationFacts) {
        if !facts.counted {
            return;
        }
        self.conversations += 1;
        self.contained += usize::from(facts.contained());
        self.transferred += usize::from(facts.transferred);
        if let Some(first_response) = facts.first_response {
            self.first_response_seconds_total += first_response.num_milliseconds() as f64 / 1000.0;
            self.n_first_responses += 1;
        }
        if let Some(score) = facts.csat {
            self.csat_total += u64::from(score);
            self.n_csat += 1;
        }
    }

    /// Share of conversations resolved without a human.
    pub fn containment(&self) -> Option<f64> {
        (self.conversations > 0).then(|| self.contained as f64 / self.conversations as f64)
    }

    pub fn average_first_response_seconds(&self) -> Option<f64> {
        (self.n_first_responses > 0).then(|| self.first_response_seconds_total / self.n_first_responses as f64)
    }

    pub fn csat_average(&self) -> Option<f64> {
        (self.n_csat > 0).then(|| self.csat_total as f64 / self.n_csat as f64)
    }
}

/// The numbers of the last `n_days` days up to `today` (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Oldest first, one per day, days without conversations included.
    pub days: Vec<(NaiveDate, Stats)>,
    pub totals: Stats,
    /// Most frequent first (ties by name).
    pub top_intents: Vec<(String, usize)>,
}

/// Conversations waiting and held right now (from the headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Now {
    pub waiting: usize,
    pub with_agents: usize,
}

/// Computes the report of the last `n_days` days.
pub fn report(conversations: &ConversationStore, today: NaiveDate, n_days: u32) -> Result<Report> {
    let first_day = today - Duration::days(i64::from(n_days.max(1)) - 1);
    let mut by_day: BTreeMap<NaiveDate, Stats> = BTreeMap::new();
    let mut day = first_day;
    while day <= today {
        by_day.insert(day, Stats::default());
        day += Duration::days(1);
    }
    let mut totals = Stats::default();
    let mut intents: BTreeMap<String, usize> = BTreeMap::new();
    for conversation in conversations.list()? {
        let day = conversation.created_at.date_naive();
        if day < first_day || day > today {
            continue;
        }
        let events = match conversations.events(&conversation.id) {
            Ok(events) => events,
            Err(crate::conversations::StoreError::NotFound(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        let facts = facts(&conversation, &events);
        if !facts.counted {
            continue;
        }
        by_day.entry(day).or_default().add(&facts);
        totals.add(&facts);
        for intent in facts.intents {
            *intents.entry(intent).or_default() += 1;
        }
    }
    let mut top_intents: Vec<(String, usize)> = intents.into_iter().collect();
    top_intents.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_intents.truncate(10);
    Ok(Report { days: by_day.into_iter().collect(), totals, top_intents })
}

/// Today's numbers (UTC) and the conversations waiting and held now.
pub fn today(conversations: &ConversationStore, now: DateTime<Utc>) -> Result<(Stats, Now)> {
    let report = report(conversations, now.date_naive(), 1)?;
    let mut current = Now::default();
    for conversation in conversations.list()? {
        if conversation.status == Status::Resolved {
            continue;
        }
        if conversation.taken_over_by.is_some() {
            current.with_agents += 1;
        } else if conversation.status == Status::PendingHuman {
            current.waiting += 1;
        }
    }
    Ok((report.totals, current))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::conversations::Channel;

    fn store() -> (tempfile::TempDir, ConversationStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = storage::Store::temporary().unwrap();
        (dir, ConversationStore::open(&db).unwrap())
    }

    fn message(text: &str) -> EventKind {
        EventKind::MessageIn { text: text.into() }
    }

    fn intent(name: &str) -> EventKind {
        EventKind::Intent { name: name.into(), confidence: 0.9 }
    }

    #[test]
    fn the_numbers_follow_the_logs() {
        let (_dir, store) = store();
        // Contained: the assistant answered, nobody else.
        let contained = store.create(Channel::Web, None).unwrap().id;
        store
            .append(
                &contained,
                vec![
                    message("roaming?"),
                    intent("roaming_rates"),
                    EventKind::Reply { text: "…".into(), turn: crate::dialogue::Turn::default() },
                ],
            )
            .unwrap();
        // Transferred, answered by an agent, rated 4.
        let transferred = store.create(Channel::Whatsapp, Some("15550001".into())).unwrap().id;
        store
            .append(
                &transferred,
                vec![
                    message("my data"),
                    intent("refuel_data"),
                    intent("greeting"),
                    EventKind::Handoff { reason: "asked".into(), summary: None },
                ],
            )
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        store
            .append(
                &transferred,
                vec![
                    EventKind::AgentMessage { agent: "alice".into(), text: "hi".into() },
                    EventKind::Csat { score: 4 },
                ],
            )
            .unwrap();
        // Taken over by a supervisor without a handoff: not contained, no first response.
        let watched = store.create(Channel::Web, None).unwrap().id;
        store
            .append(
                &watched,
                vec![
                    message("hello"),
                    intent("refuel_data"),
                    EventKind::Note { text: format!("{CONSOLE_NOTE_PREFIX}sue took over from the assistant") },
                ],
            )
            .unwrap();
        // Never written to: not counted.
        store.create(Channel::Web, None).unwrap();

        let today = Utc::now().date_naive();
        let report = report(&store, today, 30).unwrap();
        assert_eq!(report.days.len(), 30);
        assert_eq!(report.days.last().unwrap().0, today);
        let totals = &report.totals;
        assert_eq!((totals.conversations, totals.contained, totals.transferred), (3, 1, 1));
        assert_eq!(totals.n_first_responses, 1);
        assert!(totals.average_first_response_seconds().unwrap() >= 0.02);
        assert_eq!(totals.csat_average(), Some(4.0));
        assert_eq!(report.top_intents, vec![("refuel_data".to_string(), 2), ("roaming_rates".to_string(), 1)]);
        assert_eq!(report.days.last().unwrap().1, *totals);
        let (stats, now) = super::today(&store, Utc::now()).unwrap();
        assert_eq!(stats.conversations, 3);
        assert_eq!(now, Now { waiting: 1, with_agents: 0 });
    }

    #[test]
    fn an_empty_store_has_no_averages() {
        let (_dir, store) = store();
        let report = report(&store, Utc::now().date_naive(), 30).unwrap();
        assert_eq!(report.totals, Stats::default());
        assert_eq!(report.totals.containment(), None);
        assert_eq!(report.totals.csat_average(), None);
        assert!(report.top_intents.is_empty());
    }
}
