//! The hand-over summary: what a human agent needs at a glance, read from the event log.

use crate::conversations::{Event, EventKind};

/// Summarises a conversation from its log: who, what was asked, what was tried, what ran.
pub fn summarise(events: &[Event], customer_id: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.push(match customer_id {
        Some(id) => format!("Customer {id}."),
        None => "Customer not identified.".to_string(),
    });
    let flows: Vec<&str> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::FlowStarted { flow } => Some(flow.as_str()),
            _ => None,
        })
        .collect();
    if !flows.is_empty() {
        let mut unique: Vec<&str> = Vec::new();
        for flow in flows {
            if !unique.contains(&flow) {
                unique.push(flow);
            }
        }
        parts.push(format!("Requests: {}.", unique.join(", ").replace('_', " ")));
    }
    let checks: Vec<String> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::DeviceReport { tool, outcome, .. } => {
                Some(format!("{}: {}", tool.replace('_', " "), outcome.replace('_', " ")))
            }
            _ => None,
        })
        .collect();
    if !checks.is_empty() {
        parts.push(format!("Phone steps: {}.", checks.join("; ")));
    }
    let actions: Vec<String> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::ActionDone { action, .. } if !action.starts_with("get_") => Some(format!("{action} done")),
            EventKind::ActionRefused { action, code, .. } => Some(format!("{action} refused ({code})")),
            _ => None,
        })
        .collect();
    if !actions.is_empty() {
        parts.push(format!("Account actions: {}.", actions.join("; ")));
    }
    let first_message = events.iter().find_map(|event| match &event.kind {
        EventKind::MessageIn { text } => Some(text.as_str()),
        _ => None,
    });
    if let Some(text) = first_message {
        let short: String = text.chars().take(200).collect();
        parts.push(format!("First message: \"{short}\"."));
    }
    parts.join(" ")
}
