//! What the console pages show, built from headers, logs and the account store: queue rows,
//! live numbers, transcript items, the masked customer panel, and the exact change an account
//! action will make, as the plain rows of the `web` crate's templates.
//!
//! Masking: the agent sees the customer's first name and last initial, the last four digits
//! of numbers, the first letter of the email, the city and state (no street), payment methods
//! by their last four digits, and never the date of birth.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use accounts::domain::{BillStatus, LineStatus};
use accounts::mask::{mask_email, mask_name, mask_number};
use accounts::{AccountStore, ActionRequest, Actor, AuditResult, CustomerId, LineId};
use engine::console::agents::Agent;
use engine::console::queue::{self, AgentLoad, Queue, QueueEntry};
use engine::console::{CONSOLE_NOTE_PREFIX, Result, reports};
use engine::conversations::{Conversation, ConversationStore, Event, EventKind, Status};
use engine::dialogue::state::State;
use engine::identity::Assurance;
use web::console::{
    AuditRow, BillRow, ConversationHeader, CustomerPanel, LineCard, LiveNumbers, PlanOption, QueueRow, QueueView,
    TranscriptItem,
};

/// Bills shown in the panel.
const N_RECENT_BILLS: usize = 4;
/// Audit entries shown in the panel.
const N_AUDIT_ENTRIES: usize = 12;
/// Plans at or above this allowance are shown as unlimited.
const UNLIMITED_GB: f64 = 999.0;

/// Longest one-line summary in the queue.
const SUMMARY_CHARS: usize = 160;

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

fn queue_row(entry: &QueueEntry, store: Option<&AccountStore>, now: DateTime<Utc>) -> QueueRow {
    let QueueEntry { conversation, events, flagged, snoozed_until } = entry;
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
        flagged: *flagged,
        snoozed_until: snoozed_until.map(|until| until.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(),
        updated: clock(conversation.updated_at),
    }
}

/// The queue as the page shows it.
pub fn queue_view(queue: &Queue, store: Option<&AccountStore>, now: DateTime<Utc>) -> QueueView {
    let rows = |entries: &[QueueEntry]| entries.iter().map(|entry| queue_row(entry, store, now)).collect();
    QueueView { waiting: rows(&queue.waiting), active: rows(&queue.active), snoozed: rows(&queue.snoozed) }
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
        first_response: stats.average_first_response_seconds().map_or_else(|| "–".into(), seconds_label),
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

/// What each agent holds and is assigned now, for the dashboard.
pub fn agent_loads(conversations: &ConversationStore, agents: &[Agent]) -> Result<Vec<web::console::AgentLoad>> {
    Ok(queue::agent_loads(conversations, agents)?
        .into_iter()
        .map(|AgentLoad { agent, holding, assigned }| web::console::AgentLoad {
            agent: agent.name.to_string(),
            role: agent.role.to_string(),
            holding,
            assigned,
        })
        .collect())
}

/// `45 s`, `3 min`, `1 h 05 min`, `2 d 3 h`.
pub fn duration_label(duration: Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60),
        _ => format!("{} d {} h", seconds / 86_400, (seconds % 86_400) / 3600),
    }
}

/// `1 min 20 s` for averages.
pub fn seconds_label(seconds: f64) -> String {
    // Rounded to whole seconds; negative or absurd values are not expected from the logs.
    #[allow(clippy::cast_possible_truncation)]
    let whole = seconds.round().max(0.0) as i64;
    if whole < 60 { format!("{whole} s") } else { format!("{} min {:02} s", whole / 60, whole % 60) }
}

/// The label of a status, taking a takeover into account.
pub fn status_label(conversation: &Conversation) -> &'static str {
    match (conversation.status, conversation.taken_over_by.is_some()) {
        (Status::Resolved, _) => "Resolved",
        (Status::Snoozed, _) => "Snoozed",
        (_, true) => "With an agent",
        (Status::PendingHuman, false) => "Waiting",
        (Status::Open, false) => "With the assistant",
    }
}

/// `14:05` (UTC).
pub fn clock(at: DateTime<Utc>) -> String {
    at.format("%H:%M").to_string()
}

/// The masked customer of a conversation, as the queue and header show it.
pub fn customer_label(conversation: &Conversation, store: Option<&AccountStore>) -> String {
    if let Some(customer_id) = &conversation.customer_id {
        let name = CustomerId::parse(customer_id.clone())
            .ok()
            .and_then(|id| store.and_then(|store| store.customer(&id).ok().flatten()))
            .map(|customer| mask_name(&customer.full_name));
        return match name {
            Some(name) => format!("{name} · {customer_id}"),
            None => format!("Customer {customer_id}"),
        };
    }
    match (&conversation.external_id, conversation.channel) {
        (Some(number), engine::conversations::Channel::Whatsapp) => format!("WhatsApp {}", mask_number(number)),
        (Some(address), _) => format!("Visitor {}", mask_number(address)),
        (None, _) => "Visitor (not identified)".into(),
    }
}

/// The console's header of a conversation.
pub fn conversation_header(
    conversation: &Conversation,
    events: &[Event],
    viewer: &Agent,
    store: Option<&AccountStore>,
    snoozed_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ConversationHeader {
    ConversationHeader {
        id: conversation.id.clone(),
        channel: conversation.channel.as_str().to_string(),
        status: conversation.status.as_str().to_string(),
        status_label: status_label(conversation).to_string(),
        customer: customer_label(conversation, store),
        intent: reports::topic(conversation, events),
        assignee: conversation.assignee.clone().unwrap_or_default(),
        holder: conversation.taken_over_by.clone().unwrap_or_default(),
        held_by_me: conversation.taken_over_by.as_deref() == Some(viewer.name.as_str()),
        csat: conversation.csat.map(|score| format!("{score} / 5")).unwrap_or_default(),
        waiting: conversation.waiting_since.map(|since| duration_label(now - since)).unwrap_or_default(),
        snoozed_until: snoozed_until.map(|until| until.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(),
        created: conversation.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn item(event: &Event, kind: &str, author: &str, text: String) -> TranscriptItem {
    TranscriptItem {
        seq: event.seq,
        at: event.at.to_rfc3339(),
        time: clock(event.at),
        kind: kind.to_string(),
        author: author.to_string(),
        text,
        sources: Vec::new(),
    }
}

/// `line_id=L2005, gb_amount=1` (the customer id is implied by the page).
pub fn args_label(args: &Value) -> String {
    match args {
        Value::Object(map) => map
            .iter()
            .filter(|(key, _)| key.as_str() != "customer_id")
            .map(|(key, value)| match value {
                Value::String(text) => format!("{key}={text}"),
                other => format!("{key}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The transcript entry of a log event, for the ones an agent reads.
pub fn transcript_item(event: &Event) -> Option<TranscriptItem> {
    Some(match &event.kind {
        EventKind::MessageIn { text } => item(event, "customer", "Customer", text.clone()),
        EventKind::Reply { text, turn } => {
            let mut entry = item(event, "assistant", "Assistant", text.clone());
            entry.sources = turn
                .sources
                .iter()
                .map(|source| {
                    if source.section.is_empty() {
                        source.document.clone()
                    } else {
                        format!("{} › {}", source.document, source.section)
                    }
                })
                .collect();
            entry
        }
        EventKind::AgentMessage { agent, text } => item(event, "agent", agent, text.clone()),
        EventKind::AgentNote { agent, text } => item(event, "note", agent, text.clone()),
        EventKind::Handoff { reason, .. } => item(event, "system", "", format!("Transferred to a human: {reason}")),
        EventKind::ActionDone { action, args, .. } if !action.starts_with("get_") && action != "list_plans" => {
            item(event, "action", "", format!("{action} done ({})", args_label(args)))
        }
        EventKind::ActionRefused { action, reason, .. } if !action.starts_with("get_") => {
            item(event, "action", "", format!("{action} refused: {reason}"))
        }
        EventKind::StatusChanged { status: Status::Resolved, .. } => {
            item(event, "system", "", "Resolved; the customer is asked for a rating".into())
        }
        EventKind::Csat { score } => {
            item(event, "system", "", format!("The customer rated the conversation {score} / 5"))
        }
        EventKind::Note { text } => {
            let text = text.strip_prefix(CONSOLE_NOTE_PREFIX)?;
            item(event, "system", "", text.to_string())
        }
        _ => return None,
    })
}

/// How the conversation's customer was identified, from its log.
/// How sure the conversation is of its customer, for the panel's Identity line.
pub struct IdentityLine {
    /// `verified (sms code)`, `claimed (phone number), not proven`, `anonymous`.
    pub text: String,
    pub verified: bool,
}

pub fn verification(events: &[Event]) -> IdentityLine {
    let state = State::replay(events);
    let lapsed = events.iter().rev().find_map(|event| match &event.kind {
        EventKind::VerificationLapsed { idle_minutes } => Some(*idle_minutes),
        EventKind::CustomerIdentified { verified: true, .. } => Some(u64::MAX),
        _ => None,
    });
    let text = match (&state.customer, state.assurance()) {
        (Some(customer), Assurance::Verified) => format!("verified ({})", customer.method),
        (Some(_), _) if lapsed.is_some_and(|minutes| minutes != u64::MAX) => {
            format!("verification lapsed after {} minutes of silence", lapsed.unwrap_or_default())
        }
        (Some(customer), _) => format!("claimed ({}), not proven", customer.method),
        (None, Assurance::Claimed) => "claimed, not proven".into(),
        (None, _) => "anonymous: nobody claimed yet".into(),
    };
    IdentityLine { text, verified: state.assurance() == Assurance::Verified }
}

fn data_label(gb: f64) -> String {
    if gb >= UNLIMITED_GB { "unlimited".into() } else { format!("{} GB", engine::dialogue::facts::format_gb(gb)) }
}

/// The masked customer panel: profile, lines, recent bills, audit log.
pub fn customer_panel(
    store: &AccountStore,
    customer_id: &str,
    identity: IdentityLine,
    locked: bool,
) -> Result<Option<CustomerPanel>> {
    let Ok(customer_id) = CustomerId::parse(customer_id.to_string()) else { return Ok(None) };
    let Some(customer) = store.customer(&customer_id)? else { return Ok(None) };
    let plans = store.plans()?;
    let plan_of = |plan_id: &accounts::PlanId| plans.iter().find(|plan| &plan.plan_id == plan_id);
    let mut lines = Vec::new();
    for line_id in &customer.line_ids {
        let Some(line) = store.line(line_id)? else { continue };
        let plan = plan_of(&line.plan_id);
        let limit_gb = plan.map_or(0.0, |plan| plan.data_limit.to_gb()) + line.data_refuelled.to_gb();
        let used_gb = line.data_used.to_gb();
        let usage_fraction =
            if limit_gb >= UNLIMITED_GB || limit_gb <= 0.0 { 0.0 } else { (used_gb / limit_gb).min(1.0) };
        lines.push(LineCard {
            line_id: line.line_id.to_string(),
            phone: line.phone_number.to_string(),
            plan_id: line.plan_id.to_string(),
            plan_name: plan.map_or_else(|| line.plan_id.to_string(), |plan| plan.name.clone()),
            status: line.status().to_string(),
            data_used: data_label(used_gb),
            data_limit: data_label(limit_gb),
            data_refuelled: data_label(line.data_refuelled.to_gb()),
            usage_fraction,
            over_limit: limit_gb < UNLIMITED_GB && used_gb > limit_gb,
            roaming: line.roaming_enabled,
            contract_end: line.contract_end_date.map(|date| date.to_string()).unwrap_or_default(),
            refuel_price: plan.map(|plan| format!("{} per GB", plan.refuel_price_per_gb)).unwrap_or_default(),
            active: line.status() == LineStatus::Active,
            suspended: line.status() == LineStatus::Suspended,
        });
    }
    let mut bills = Vec::new();
    for bill_id in &customer.bill_ids {
        bills.extend(store.bill(bill_id)?);
    }
    bills.sort_by_key(|bill| std::cmp::Reverse(bill.issue_date));
    let bills = bills
        .into_iter()
        .take(N_RECENT_BILLS)
        .map(|bill| BillRow {
            bill_id: bill.bill_id.to_string(),
            period: bill.period_start.format("%b %Y").to_string(),
            due: bill.due_date.to_string(),
            total: bill.total_due.to_string(),
            status: bill.status.to_string(),
            overdue: bill.status == BillStatus::Overdue,
            awaiting_payment: bill.status == BillStatus::AwaitingPayment,
            can_extend: matches!(bill.status, BillStatus::Issued | BillStatus::Overdue),
        })
        .collect();
    let audit = store
        .audit_for_customer(&customer_id)?
        .into_iter()
        .rev()
        .take(N_AUDIT_ENTRIES)
        .map(|entry| AuditRow {
            at: entry.at.format("%Y-%m-%d %H:%M").to_string(),
            actor: match &entry.actor {
                Actor::Agent { name } => format!("agent {name}"),
                Actor::Customer { .. } => "the customer".into(),
                Actor::System => "the assistant".into(),
            },
            action: entry.action.clone(),
            args: args_label(&entry.args),
            result: match &entry.result {
                AuditResult::Done { .. } => "done".into(),
                AuditResult::Refused { message, .. } => format!("refused: {message}"),
            },
            refused: matches!(entry.result, AuditResult::Refused { .. }),
        })
        .collect();
    let plans = plans
        .iter()
        .map(|plan| PlanOption {
            plan_id: plan.plan_id.to_string(),
            label: format!("{} ({}/month, {})", plan.name, plan.price_per_month, data_label(plan.data_limit.to_gb())),
        })
        .collect();
    Ok(Some(CustomerPanel {
        customer_id: customer.customer_id.to_string(),
        name: mask_name(&customer.full_name),
        phone: mask_number(customer.phone_number.as_str()),
        email: mask_email(&customer.email),
        area: format!("{}, {}", customer.address.city, customer.address.state),
        account_status: customer.account_status.to_string(),
        verification: identity.text,
        can_verify: !identity.verified,
        locked,
        payment_methods: customer.payment_methods.iter().map(ToString::to_string).collect(),
        lines,
        bills,
        audit,
        plans,
    }))
}

/// One sentence stating exactly what an action will change, for the confirmation dialog.
pub fn describe_action(store: &AccountStore, request: &ActionRequest) -> Result<String> {
    let line_text = |line_id: &LineId| -> Result<(String, Option<accounts::domain::Line>)> {
        let line = store.line(line_id)?;
        let label = match &line {
            Some(line) => format!("line {} ({line_id})", line.phone_number),
            None => format!("line {line_id}"),
        };
        Ok((label, line))
    };
    let bill_text = |bill_id: &accounts::BillId| -> Result<String> {
        Ok(match store.bill(bill_id)? {
            Some(bill) => format!("bill {bill_id} ({}, due {}, {})", bill.total_due, bill.due_date, bill.status),
            None => format!("bill {bill_id}"),
        })
    };
    let text = match request {
        ActionRequest::RefuelData(args) => {
            let (label, line) = line_text(&args.line_id)?;
            let amount = accounts::money::DataAmount::from_gb(args.gb_amount).unwrap_or_default();
            let plan = match &line {
                Some(line) => store.plan(&line.plan_id)?,
                None => None,
            };
            match plan.and_then(|plan| plan.refuel_price_per_gb.per_gb_times(amount).map(|price| (plan, price))) {
                Some((plan, price)) => format!(
                    "Add {amount} of data to {label}, charged {price} on the next bill ({amount} at {} per GB, {}).",
                    plan.refuel_price_per_gb, plan.name
                ),
                None => format!("Add {amount} of data to {label}, charged at the plan's price per GB."),
            }
        }
        ActionRequest::EnableRoaming(args) => {
            format!("Turn data roaming ON for {}, at no cost.", line_text(&args.line_id)?.0)
        }
        ActionRequest::DisableRoaming(args) => format!("Turn data roaming OFF for {}.", line_text(&args.line_id)?.0),
        ActionRequest::SuspendLine(args) => {
            format!("Suspend {}: it stops working until it is resumed.", line_text(&args.line_id)?.0)
        }
        ActionRequest::ResumeLine(args) => format!("Resume {}: it works again.", line_text(&args.line_id)?.0),
        ActionRequest::ChangePlan(args) => {
            let (label, line) = line_text(&args.line_id)?;
            let plan_label = |plan: Option<accounts::domain::Plan>, id: &str| match plan {
                Some(plan) => {
                    format!("{} ({}/month, {})", plan.name, plan.price_per_month, data_label(plan.data_limit.to_gb()))
                }
                None => id.to_string(),
            };
            let from = match &line {
                Some(line) => plan_label(store.plan(&line.plan_id)?, line.plan_id.as_str()),
                None => "its plan".into(),
            };
            let to = plan_label(store.plan(&args.plan_id)?, args.plan_id.as_str());
            format!("Move {label} from {from} to {to}.")
        }
        ActionRequest::SendPaymentRequest(args) => {
            format!("Send the customer a payment request for {}.", bill_text(&args.bill_id)?)
        }
        ActionRequest::MakePayment(args) => {
            let method = args.payment_method.as_deref().unwrap_or("the payment method on file");
            format!("Pay {} in full with {method}.", bill_text(&args.bill_id)?)
        }
        ActionRequest::GrantPaymentExtension(args) => {
            let due = store.bill(&args.bill_id)?.map(|bill| bill.due_date);
            match due {
                Some(due) => format!(
                    "Move the due date of {} from {due} to {} (14 days; once per quarter).",
                    bill_text(&args.bill_id)?,
                    due + Duration::days(14)
                ),
                None => format!("Move the due date of {} 14 days out.", bill_text(&args.bill_id)?),
            }
        }
        other => format!("Run {} with {}.", other.name(), args_label(&other.args_json())),
    };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_label(Duration::seconds(45)), "45 s");
        assert_eq!(duration_label(Duration::seconds(185)), "3 min");
        assert_eq!(duration_label(Duration::seconds(3900)), "1 h 05 min");
        assert_eq!(duration_label(Duration::seconds(-5)), "0 s");
        assert_eq!(seconds_label(80.4), "1 min 20 s");
    }

    #[test]
    fn the_transcript_tells_who_wrote_what() {
        let at = Utc::now();
        let event = |seq, kind| Event { seq, at, kind };
        let customer = transcript_item(&event(0, EventKind::MessageIn { text: "<b>hi</b>".into() })).unwrap();
        assert_eq!((customer.kind.as_str(), customer.text.as_str()), ("customer", "<b>hi</b>"));
        let source = engine::dialogue::SourceOut { document: "roaming.md".into(), section: "Rates".into(), score: 1.0 };
        let turn = engine::dialogue::Turn { sources: vec![source], ..Default::default() };
        let reply = transcript_item(&event(1, EventKind::Reply { text: "Hello".into(), turn })).unwrap();
        assert_eq!(reply.sources, vec!["roaming.md › Rates"]);
        let note = transcript_item(&event(2, EventKind::AgentNote { agent: "alice".into(), text: "vip".into() }));
        assert_eq!(note.unwrap().kind, "note");
        let console_note = EventKind::Note { text: format!("{CONSOLE_NOTE_PREFIX}alice took over") };
        assert_eq!(transcript_item(&event(3, console_note)).unwrap().text, "alice took over");
        assert!(transcript_item(&event(4, EventKind::Note { text: "device reboot".into() })).is_none());
        let lookup =
            EventKind::ActionDone { action: "get_customer_by_phone".into(), args: Value::Null, result: Value::Null };
        assert!(transcript_item(&event(5, lookup)).is_none());
    }
}
