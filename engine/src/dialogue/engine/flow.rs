//! The flow interpreter: flows as data (`prompts/telco/flows.yaml`) run node by node until
//! they need the customer again; a stack of flows, queued requests, and the end of a flow.

use super::actions::conversation_id;
use super::understanding::Understanding;
use super::{MAX_ASKS, Step, Work};
use crate::conversations::EventKind;
use crate::dialogue::facts::{CheckResult, PREVIEW_FACT_PREFIX};
use crate::dialogue::state::{GLOBAL, is_device_check};
use crate::dialogue::{ActionCall, Engine, EngineError, device};
use accounts::ActionRequest;
use prompts::{EndOutcome, Flow, Node, NodeKind};
use serde_json::{Value, json};

/// Most nodes one turn may pass through (a guard against loops in a flow file).
pub(super) const MAX_STEPS_PER_TURN: usize = 64;

/// Times one node may be entered in a flow before the flow gives up.
pub(super) const MAX_NODE_VISITS: u32 = 3;

/// The next node after `current` for `outcome`.
pub(super) fn next_node(flow: &Flow, current: &str, outcome: Option<&str>) -> Option<String> {
    let (idx, node) = flow.node(current)?;
    if let Some(next) = outcome.and_then(|outcome| node.on.get(outcome).or_else(|| node.on.get("*"))) {
        return Some(next.clone());
    }
    if let Some(next) = &node.goto {
        return Some(next.clone());
    }
    if node.end.is_some() {
        return None;
    }
    flow.after(idx).map(|node| node.id.clone())
}

impl Engine {
    /// Remembers requests to handle after the current one.
    pub(super) fn queue_requests(&self, work: &mut Work<'_>, requests: &[String]) -> Result<(), EngineError> {
        if requests.is_empty() {
            return Ok(());
        }
        let mut queued: Vec<String> = work
            .state
            .globals
            .get("_queued")
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default();
        for request in requests {
            if !queued.contains(request) {
                queued.push(request.clone());
            }
        }
        self.log(work, vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: "_queued".into(), value: json!(queued) }])
    }

    /// Starts the next queued request, if any; `true` when one started.
    pub(super) fn start_queued(&self, work: &mut Work<'_>) -> Result<bool, EngineError> {
        let mut queued: Vec<String> = work
            .state
            .globals
            .get("_queued")
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default();
        while !queued.is_empty() {
            let intent = queued.remove(0);
            self.log(
                work,
                vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: "_queued".into(), value: json!(queued) }],
            )?;
            if let Some(flow) = self.book.flow_for_intent(&intent) {
                let flow_name = flow.name.clone();
                self.say(work, "next_request")?;
                self.log(work, vec![EventKind::FlowStarted { flow: flow_name }])?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(super) fn start_flow(
        &self,
        work: &mut Work<'_>,
        flow_name: &str,
        u: &Understanding,
    ) -> Result<(), EngineError> {
        self.log(work, vec![EventKind::FlowStarted { flow: flow_name.to_string() }])?;
        let mut values = self.slot_values_for_flow(work, u);
        // "No data since I landed in Lisbon": where the customer is, told up front.
        let asks_location = self
            .book
            .flow(flow_name)
            .is_some_and(|flow| flow.nodes.iter().any(|node| node.ask.as_deref() == Some("location")));
        if asks_location && crate::dialogue::facts::is_abroad(&u.text) {
            values.push(("location".to_string(), json!(u.text.clone())));
        }
        self.fill_slots(work, values)
    }

    pub(super) fn drive(&self, work: &mut Work<'_>, mut step: Step) -> Result<(), EngineError> {
        for _ in 0..MAX_STEPS_PER_TURN {
            let Some(frame) = work.state.frame().cloned() else { return Ok(()) };
            let flow = self.book.flow(&frame.flow).ok_or_else(|| anyhow::anyhow!("unknown flow {}", frame.flow))?;
            step = match step {
                Step::Start => {
                    if !self.ensure_needs(work, flow)? {
                        return Ok(());
                    }
                    match &frame.node {
                        Some(node) => Step::Enter(node.clone()),
                        None => Step::Enter(flow.first().id.clone()),
                    }
                }
                Step::Enter(node_id) => match self.enter(work, flow, &node_id)? {
                    Some(next) => next,
                    None => return Ok(()),
                },
                Step::Advance(outcome) => {
                    let current = frame.node.clone().unwrap_or_else(|| flow.first().id.clone());
                    let mapped = flow.node(&current).is_some_and(|(_, node)| {
                        outcome.as_deref().is_some_and(|o| node.on.contains_key(o)) || node.on.contains_key("*")
                    });
                    match (outcome.as_deref(), mapped) {
                        // A refusal or a no ends the flow unless the flow says where to go.
                        (Some("refused"), false) => Step::End(EndOutcome::Refused),
                        (Some("declined"), false) => Step::End(EndOutcome::Cancelled),
                        _ => match next_node(flow, &current, outcome.as_deref()) {
                            Some(next) => Step::Enter(next),
                            None => Step::End(EndOutcome::Failed),
                        },
                    }
                }
                Step::End(outcome) => match self.end_flow(work, outcome)? {
                    Some(next) => next,
                    None => return Ok(()),
                },
            };
        }
        tracing::error!(conversation_id = work.conversation_id, "a flow ran too many steps in one turn");
        self.end_all(work, EndOutcome::Failed)?;
        self.say(work, "flow_gave_up")
    }

    /// Runs one node; `None` when the turn now waits for the customer.
    pub(super) fn enter(&self, work: &mut Work<'_>, flow: &Flow, node_id: &str) -> Result<Option<Step>, EngineError> {
        let (_, node) =
            flow.node(node_id).ok_or_else(|| anyhow::anyhow!("flow {} has no node {node_id}", flow.name))?;
        self.log(work, vec![EventKind::StepEntered { flow: flow.name.clone(), step: node.id.clone() }])?;
        let visits = work.state.frame().and_then(|frame| frame.visits.get(&node.id).copied()).unwrap_or(0);
        let limit = if node.ask.is_some() { MAX_ASKS } else { MAX_NODE_VISITS };
        if visits > limit {
            self.say(work, "flow_gave_up")?;
            return Ok(Some(Step::End(EndOutcome::Failed)));
        }
        for slot in &node.clear {
            self.log(work, vec![EventKind::SlotCleared { flow: flow.name.clone(), slot: slot.clone() }])?;
        }
        Ok(match node.kind() {
            NodeKind::Ask(slot) => {
                if work.state.frame().is_some_and(|frame| frame.slots.contains_key(slot)) {
                    Some(Step::Advance(None))
                } else {
                    if let Some(say) = &node.say {
                        self.say(work, say)?;
                    }
                    let template = self.book.slots[slot].ask.clone();
                    self.say(work, &template)?;
                    work.awaiting = Some(slot.to_string());
                    None
                }
            }
            NodeKind::Check(name) => {
                let result =
                    self.facts(work).check(name).unwrap_or(CheckResult { outcome: "unknown", fill: Vec::new() });
                self.fill_slots(work, result.fill)?;
                if let Some(say) = &node.say {
                    self.say(work, say)?;
                }
                Some(Step::Advance(Some(result.outcome.to_string())))
            }
            NodeKind::Confirm(action) => {
                if !self.ensure_verified(work)? {
                    return Ok(None);
                }
                let args = self.build_args(work, node)?;
                let request = match ActionRequest::parse(action, args.clone()) {
                    Ok(request) if request.kind().needs_confirmation() && !self.change_is_safe(work, &args)? => {
                        // A recent SIM swap: handed to a person, nothing asked or changed.
                        return Ok(None);
                    }
                    Ok(request) => request,
                    Err(error) => {
                        tracing::warn!(%error, action, "flow built invalid arguments");
                        self.say(work, "flow_gave_up")?;
                        return Ok(Some(Step::End(EndOutcome::Failed)));
                    }
                };
                // Ask only for what the policy allows: a refusal is explained now, not after a yes.
                let actor = self.actor(work)?;
                match self.registry.check(&actor, &request) {
                    Ok(Ok(preview)) => {
                        if let Value::Object(fields) = preview.to_json() {
                            for (name, value) in fields {
                                let text = match value {
                                    Value::String(text) => text,
                                    other => other.to_string(),
                                };
                                work.extra.insert(format!("{PREVIEW_FACT_PREFIX}{name}"), text);
                            }
                        }
                    }
                    Ok(Err(refusal)) => {
                        work.extra.insert("refusal".into(), refusal.customer_message());
                        self.log(
                            work,
                            vec![EventKind::ActionRefused {
                                action: action.to_string(),
                                args: args.clone(),
                                code: refusal.code().to_string(),
                                reason: refusal.customer_message(),
                            }],
                        )?;
                        self.say(work, "refused")?;
                        return Ok(Some(Step::Advance(Some("refused".into()))));
                    }
                    Err(error) => tracing::warn!(%error, action, "dry run failed; asking anyway"),
                }
                let token = self.registry.confirm(&conversation_id(work)?, &request);
                self.log(
                    work,
                    vec![EventKind::ConfirmationAsked {
                        action: action.to_string(),
                        args: args.clone(),
                        token: token.as_str().to_string(),
                    }],
                )?;
                self.say(work, node.say.as_deref().unwrap_or("nothing_changed"))?;
                work.awaiting = Some("confirmation".into());
                work.pending_action = Some(ActionCall { name: action.to_string(), args });
                None
            }
            NodeKind::Run(action) => {
                let args = self.build_args(work, node)?;
                let outcome = self.run_action(work, action, args, None)?;
                Some(Step::Advance(Some(outcome)))
            }
            NodeKind::Call(callee) => {
                self.log(work, vec![EventKind::FlowStarted { flow: callee.to_string() }])?;
                Some(Step::Start)
            }
            NodeKind::Device(tool) => {
                // A check the customer already reported, with nothing changed since: reuse it.
                if is_device_check(tool)
                    && let Some(answer) = work.state.device_answers.get(tool)
                {
                    let outcome = device::read(tool, node.field.as_deref(), answer);
                    if outcome != device::UNCLEAR {
                        return Ok(Some(Step::Advance(Some(outcome.to_string()))));
                    }
                }
                self.say(work, node.say.as_deref().unwrap_or("fallback"))?;
                work.awaiting = Some(format!("device:{tool}"));
                None
            }
            NodeKind::Handoff => {
                let template = node.say.clone().unwrap_or_else(|| "transferring".into());
                let reason = format!("{}: nothing more to try in the assistant", flow.title);
                self.hand_off(work, &reason, &template)?;
                None
            }
            NodeKind::Say => {
                if let Some(say) = &node.say {
                    self.say(work, say)?;
                }
                match node.end {
                    Some(outcome) => Some(Step::End(outcome)),
                    None => Some(Step::Advance(None)),
                }
            }
        })
    }

    /// Ends the top flow; the caller's `call` node continues with the outcome.
    pub(super) fn end_flow(&self, work: &mut Work<'_>, outcome: EndOutcome) -> Result<Option<Step>, EngineError> {
        let Some(frame) = work.state.frame().cloned() else { return Ok(None) };
        self.log(work, vec![EventKind::FlowEnded { flow: frame.flow.clone(), outcome: outcome.as_str().into() }])?;
        if work.state.stack.is_empty() {
            if !work.handoff && self.start_queued(work)? {
                return Ok(Some(Step::Start));
            }
            if !work.handoff && !work.parts.last().is_some_and(|part| part.trim_end().ends_with('?')) {
                self.say(work, "anything_else")?;
            }
            return Ok(None);
        }
        Ok(Some(Step::Advance(Some(outcome.as_str().to_string()))))
    }

    pub(super) fn end_all(&self, work: &mut Work<'_>, outcome: EndOutcome) -> Result<(), EngineError> {
        while let Some(frame) = work.state.frame().cloned() {
            self.log(work, vec![EventKind::FlowEnded { flow: frame.flow, outcome: outcome.as_str().into() }])?;
        }
        if work.state.pending.is_some() {
            let action = work.state.pending.as_ref().map(|p| p.action.clone()).unwrap_or_default();
            self.log(work, vec![EventKind::ConfirmationGiven { action, accepted: false }])?;
        }
        Ok(())
    }

    pub(super) fn cancel_all(&self, work: &mut Work<'_>) -> Result<(), EngineError> {
        self.end_all(work, EndOutcome::Cancelled)?;
        self.say(work, "cancelled")
    }

    pub(super) fn current_node(&self, work: &Work<'_>) -> Option<Node> {
        let frame = work.state.frame()?;
        let flow = self.book.flow(&frame.flow)?;
        flow.node(frame.node.as_deref()?).map(|(_, node)| node.clone())
    }

    pub(super) fn current_ask(&self, work: &Work<'_>) -> Option<(String, String)> {
        let node = self.current_node(work)?;
        node.ask.clone().map(|slot| (node.id.clone(), slot))
    }

    /// The ask node of a slot in the top flow.
    pub(super) fn ask_node_for(&self, work: &Work<'_>, slot: &str) -> Option<String> {
        let flow = self.book.flow(&work.state.frame()?.flow)?;
        flow.nodes.iter().find(|node| node.ask.as_deref() == Some(slot)).map(|node| node.id.clone())
    }
}
