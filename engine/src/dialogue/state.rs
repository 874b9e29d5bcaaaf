//! The state of a conversation, derived from its event log (never stored on its own).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::conversations::{Event, EventKind, Status};
use crate::identity::Assurance;

/// Slots that belong to the conversation rather than to one flow (identification, the line).
pub const GLOBAL: &str = "";

/// The customer the conversation is bound to.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundCustomer {
    pub customer_id: String,
    /// Proven in this conversation (a code texted to a line on file, the WhatsApp number, a
    /// signed host-page identity, the network, an agent) and not lapsed since; else only
    /// claimed.
    pub verified: bool,
    /// The claim or the proof (`phone number`, `sms code`, ...).
    pub method: String,
}

/// One running flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub flow: String,
    pub node: Option<String>,
    pub slots: BTreeMap<String, Value>,
    /// Times each node was entered (for loop protection).
    pub visits: BTreeMap<String, u32>,
}

/// A yes/no the assistant asked for before a change.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingConfirmation {
    pub action: String,
    pub args: Value,
    pub token: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub customer: Option<BoundCustomer>,
    /// Conversation-wide slots: phone_number, customer_id, full_name, date_of_birth, line_id.
    pub globals: BTreeMap<String, Value>,
    /// Running flows, innermost last.
    pub stack: Vec<Frame>,
    pub pending: Option<PendingConfirmation>,
    /// What the last reply asked for.
    pub awaiting: Option<String>,
    /// Customer messages in a row the assistant did not understand.
    pub failed_understandings: u32,
    pub handed_off: bool,
    pub status: Option<Status>,
    pub n_messages: usize,
    /// The text of the assistant's last reply.
    pub last_reply: Option<String>,
    /// Device steps the customer was asked to do (`toggle_airplane_mode`, ...), in order.
    pub device_actions: Vec<String>,
    /// What the customer last reported for each phone check, until something changes on the
    /// phone or the account (then the check has to be asked again).
    pub device_answers: BTreeMap<String, String>,
    /// When the customer last wrote (the verification lapses after a silence).
    pub last_message_at: Option<DateTime<Utc>>,
    /// Failed proofs in this conversation (wrong codes, claims that matched nobody).
    pub failed_proofs: u32,
    /// Verification codes texted in this conversation.
    pub codes_sent: usize,
    /// The customer said who they are at some point (whether or not it matched an account).
    pub claimed: bool,
    last_message_failed: bool,
}

impl State {
    /// Replays a conversation's log.
    pub fn replay(events: &[Event]) -> Self {
        let mut state = State::default();
        for event in events {
            state.apply_at(&event.kind, event.at);
        }
        state
    }

    /// Applies one event that happened at `at`.
    pub fn apply_at(&mut self, kind: &EventKind, at: DateTime<Utc>) {
        if matches!(kind, EventKind::MessageIn { .. }) {
            self.last_message_at = Some(at);
        }
        self.apply(kind);
    }

    /// How sure the conversation is of its customer.
    pub fn assurance(&self) -> Assurance {
        match &self.customer {
            Some(customer) if customer.verified => Assurance::Verified,
            Some(_) => Assurance::Claimed,
            None if self.claimed => Assurance::Claimed,
            None => Assurance::Anonymous,
        }
    }

    /// The verified customer's id, if there is one.
    pub fn verified_customer(&self) -> Option<&str> {
        self.customer.as_ref().filter(|customer| customer.verified).map(|customer| customer.customer_id.as_str())
    }

    /// Applies one event (the engine applies what it logs as it goes).
    pub fn apply(&mut self, kind: &EventKind) {
        match kind {
            EventKind::MessageIn { .. } => {
                if self.n_messages > 0 && !self.last_message_failed {
                    self.failed_understandings = 0;
                }
                self.last_message_failed = false;
                self.n_messages += 1;
            }
            EventKind::NotUnderstood { .. } => {
                self.last_message_failed = true;
                self.failed_understandings += 1;
            }
            EventKind::CustomerIdentified { customer_id, verified, method } => {
                self.claimed = true;
                let same = self.customer.as_ref().is_some_and(|c| c.customer_id == *customer_id);
                let already_verified = self.customer.as_ref().is_some_and(|c| c.verified);
                if *verified || !already_verified {
                    self.customer = Some(BoundCustomer {
                        customer_id: customer_id.clone(),
                        verified: *verified || (same && already_verified),
                        method: method.clone(),
                    });
                }
            }
            EventKind::ProofFailed { .. } => {
                self.claimed = true;
                self.failed_proofs += 1;
            }
            EventKind::VerificationCodeSent { .. } => {
                self.claimed = true;
                self.codes_sent += 1;
            }
            EventKind::ClaimWithdrawn { customer_id } => {
                if self.customer.as_ref().is_some_and(|c| c.customer_id == *customer_id && !c.verified) {
                    self.customer = None;
                }
            }
            EventKind::VerificationLapsed { .. } => {
                if let Some(customer) = &mut self.customer {
                    customer.verified = false;
                }
            }
            EventKind::FlowStarted { flow } => self.stack.push(Frame {
                flow: flow.clone(),
                node: None,
                slots: BTreeMap::new(),
                visits: BTreeMap::new(),
            }),
            EventKind::StepEntered { flow, step } => {
                if let Some(frame) = self.stack.last_mut().filter(|frame| frame.flow == *flow) {
                    frame.node = Some(step.clone());
                    *frame.visits.entry(step.clone()).or_default() += 1;
                }
            }
            EventKind::SlotSet { flow, slot, value } => {
                if flow == GLOBAL {
                    self.globals.insert(slot.clone(), value.clone());
                } else if let Some(frame) = self.stack.iter_mut().rev().find(|frame| frame.flow == *flow) {
                    frame.slots.insert(slot.clone(), value.clone());
                }
            }
            EventKind::SlotCleared { flow, slot } => {
                if flow == GLOBAL {
                    self.globals.remove(slot);
                } else if let Some(frame) = self.stack.iter_mut().rev().find(|frame| frame.flow == *flow) {
                    frame.slots.remove(slot);
                }
            }
            EventKind::FlowEnded { flow, .. } => {
                if let Some(idx) = self.stack.iter().rposition(|frame| frame.flow == *flow) {
                    self.stack.truncate(idx);
                }
            }
            EventKind::ConfirmationAsked { action, args, token } => {
                self.pending =
                    Some(PendingConfirmation { action: action.clone(), args: args.clone(), token: token.clone() })
            }
            EventKind::ConfirmationGiven { .. } => self.pending = None,
            EventKind::Reply { text, turn } => {
                self.awaiting = turn.awaiting.clone();
                self.last_reply = Some(text.clone());
                if let Some(tool) = self.awaiting.as_deref().and_then(|a| a.strip_prefix("device:"))
                    && !is_device_check(tool)
                {
                    self.device_actions.push(tool.to_string());
                }
            }
            EventKind::Handoff { .. } => {
                self.handed_off = true;
                self.stack.clear();
                self.pending = None;
            }
            EventKind::StatusChanged { status, .. } => {
                self.status = Some(*status);
                if *status == Status::Open {
                    self.handed_off = false;
                }
            }
            EventKind::DeviceReport { tool, answer, .. } => {
                if is_device_check(tool) {
                    self.device_answers.insert(tool.clone(), answer.clone());
                } else {
                    self.device_answers.clear();
                }
            }
            EventKind::ActionDone { action, .. } if !action.starts_with("get_") && !action.starts_with("list_") => {
                self.device_answers.clear();
            }
            EventKind::Intent { .. }
            | EventKind::ActionRequested { .. }
            | EventKind::ActionDone { .. }
            | EventKind::ActionRefused { .. }
            | EventKind::AgentMessage { .. }
            | EventKind::AgentNote { .. }
            | EventKind::Csat { .. }
            | EventKind::Delivery { .. }
            | EventKind::Note { .. }
            | EventKind::Newer => {}
        }
    }

    /// A conversation-wide slot as text.
    pub fn global(&self, slot: &str) -> Option<&str> {
        self.globals.get(slot).and_then(Value::as_str)
    }

    pub fn frame(&self) -> Option<&Frame> {
        self.stack.last()
    }

    pub fn frame_mut(&mut self) -> Option<&mut Frame> {
        self.stack.last_mut()
    }

    /// A slot of the innermost flow that has it, else a conversation-wide one.
    pub fn slot(&self, slot: &str) -> Option<&Value> {
        self.stack.iter().rev().find_map(|frame| frame.slots.get(slot)).or_else(|| self.globals.get(slot))
    }
}

/// Device tools that only look (as opposed to change something on the phone).
pub fn is_device_check(tool: &str) -> bool {
    tool.starts_with("check_") || tool == "run_speed_test" || tool == "can_send_mms"
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;

    fn events(kinds: Vec<EventKind>) -> Vec<Event> {
        kinds.into_iter().enumerate().map(|(seq, kind)| Event { seq: seq as u64, at: Utc::now(), kind }).collect()
    }

    fn message(text: &str) -> EventKind {
        EventKind::MessageIn { text: text.into() }
    }

    fn reply(awaiting: Option<&str>) -> EventKind {
        EventKind::Reply {
            text: "r".into(),
            turn: crate::dialogue::Turn { awaiting: awaiting.map(str::to_string), ..Default::default() },
        }
    }

    #[test]
    fn flows_slots_and_confirmations_replay() {
        let state = State::replay(&events(vec![
            message("add data"),
            EventKind::FlowStarted { flow: "refuel_data".into() },
            EventKind::StepEntered { flow: "refuel_data".into(), step: "amount".into() },
            reply(Some("data_gb")),
            message("2 gb"),
            EventKind::SlotSet { flow: "refuel_data".into(), slot: "data_gb".into(), value: json!(2.0) },
            EventKind::StepEntered { flow: "refuel_data".into(), step: "confirm".into() },
            EventKind::ConfirmationAsked { action: "refuel_data".into(), args: json!({}), token: "t".into() },
            reply(Some("confirmation")),
        ]));
        assert_eq!(state.frame().unwrap().node.as_deref(), Some("confirm"));
        assert_eq!(state.slot("data_gb"), Some(&json!(2.0)));
        assert_eq!(state.pending.as_ref().unwrap().token, "t");
        assert_eq!(state.awaiting.as_deref(), Some("confirmation"));
    }

    #[test]
    fn called_flows_end_back_into_their_caller() {
        let state = State::replay(&events(vec![
            EventKind::FlowStarted { flow: "no_service".into() },
            EventKind::StepEntered { flow: "no_service".into(), step: "resume".into() },
            EventKind::FlowStarted { flow: "resume_line".into() },
            EventKind::FlowEnded { flow: "resume_line".into(), outcome: "done".into() },
        ]));
        assert_eq!(state.stack.len(), 1);
        assert_eq!(state.frame().unwrap().node.as_deref(), Some("resume"));
    }

    #[test]
    fn failed_understandings_count_in_a_row() {
        let state = State::replay(&events(vec![
            message("asdf"),
            EventKind::NotUnderstood { text: "asdf".into() },
            message("qwer"),
            EventKind::NotUnderstood { text: "qwer".into() },
        ]));
        assert_eq!(state.failed_understandings, 2);
        let state = State::replay(&events(vec![
            message("asdf"),
            EventKind::NotUnderstood { text: "asdf".into() },
            message("pay my bill"),
            message("qwer"),
            EventKind::NotUnderstood { text: "qwer".into() },
        ]));
        assert_eq!(state.failed_understandings, 1);
    }

    #[test]
    fn verification_is_not_lost_by_a_later_unverified_identification() {
        let state = State::replay(&events(vec![
            EventKind::CustomerIdentified { customer_id: "C1".into(), verified: true, method: "phone".into() },
            EventKind::CustomerIdentified { customer_id: "C1".into(), verified: false, method: "whatsapp".into() },
        ]));
        assert!(state.customer.unwrap().verified);
    }
}
