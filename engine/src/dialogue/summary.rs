//! The hand-over summary: what a human agent needs at a glance, read from the event log.

use crate::conversations::{Event, EventKind};

/// Summarises a conversation from its log: who, what was asked, what was tried, what ran.
pub fn summarise(events: &[Event], customer_id: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.push(match customer_id {
        Some(id) => format!("Customer {id}."),
        None => "Customer not identified.".to_string(),
    });
    // The line the conversation was about, when one was chosen.
    let line = events.iter().rev().find_map(|event| match &event.kind {
        EventKind::SlotSet { slot, value, .. } if slot == "line_id" => value.as_str().map(str::to_string),
        _ => None,
    });
    if let Some(line) = line {
        parts.push(format!("Line {line}."));
    }
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;

    fn log(kinds: Vec<EventKind>) -> Vec<Event> {
        kinds.into_iter().enumerate().map(|(seq, kind)| Event { seq: seq as u64, at: Utc::now(), kind }).collect()
    }

    #[test]
    fn the_summary_names_customer_line_requests_and_first_message() {
        let events = log(vec![
            EventKind::MessageIn { text: "my data ran out".into() },
            EventKind::FlowStarted { flow: "refuel_data".into() },
            EventKind::SlotSet { flow: "_global".into(), slot: "line_id".into(), value: json!("L1002") },
            EventKind::FlowStarted { flow: "refuel_data".into() },
            EventKind::FlowStarted { flow: "human_agent".into() },
        ]);
        assert_eq!(
            summarise(&events, Some("C1001")),
            "Customer C1001. Line L1002. Requests: refuel data, human agent. First message: \"my data ran out\"."
        );
        assert_eq!(summarise(&[], None), "Customer not identified.");
    }
}
