//! Flows declared as data: each flow is a small graph of nodes that ask for a slot, check a
//! condition, confirm and run an account action, ask the customer to look at or do something
//! on their phone, call another flow, or say something and end.
//!
//! The engine in `engine` interprets the graph; the names of checks, slots, actions and device
//! tools are resolved there (and checked against what it has when it starts: `engine::dialogue::validate`).
//! This module parses the file and checks that it is well formed
//! (every node reachable id exists, every node does exactly one thing).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::{Error, Result};

/// What a flow needs before its first node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Needs {
    /// Nothing: anyone may run it (plan comparison, general questions).
    #[default]
    Nothing,
    /// A verified customer.
    Customer,
    /// A verified customer and the line in question.
    Line,
}

/// How a flow ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndOutcome {
    /// The request was done (or the problem fixed).
    Done,
    /// The customer changed their mind.
    Cancelled,
    /// The policy does not allow it.
    Refused,
    /// It did not work and there is nothing more to try here.
    Failed,
}

impl EndOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// A slot: a value the engine asks for, typed by an entity kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotDef {
    /// The entity kind that fills it (`phone_number`, `data_amount`, `plan`, `bill_id`, ...).
    pub entity: String,
    /// The reply template that asks for it.
    pub ask: String,
    /// "I don't know" is an answer: the flow goes on without a value.
    #[serde(default)]
    pub optional: bool,
}

/// One step of a flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub id: String,
    /// Ask for a slot (skipped when the slot is already filled).
    #[serde(default)]
    pub ask: Option<String>,
    /// Evaluate a named check; its outcome picks the next node through `on`.
    #[serde(default)]
    pub check: Option<String>,
    /// Ask for a yes/no, then run this account action on yes.
    #[serde(default)]
    pub confirm: Option<String>,
    /// Run this account action (a look-up) without asking.
    #[serde(default)]
    pub run: Option<String>,
    /// Run another flow; its end outcome picks the next node through `on`.
    #[serde(default)]
    pub call: Option<String>,
    /// Ask the customer to look at (a check) or do (an action) something on their phone.
    #[serde(default)]
    pub device: Option<String>,
    /// For device checks that report several things: which one this node looks at.
    #[serde(default)]
    pub field: Option<String>,
    /// Hand the conversation to a human agent.
    #[serde(default)]
    pub handoff: bool,
    /// The reply template this node says (the question for `ask`, `confirm` and `device`).
    #[serde(default)]
    pub say: Option<String>,
    /// Arguments of the action of `confirm` or `run`: values are templates over the facts;
    /// a value that is exactly `{fact}` keeps the fact's type (a number stays a number).
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// Next node by outcome (`*` matches any outcome not listed).
    #[serde(default)]
    pub on: BTreeMap<String, String>,
    /// The next node when `on` has no entry (default: the next node in the list).
    #[serde(default)]
    pub goto: Option<String>,
    /// End the flow here with this outcome (after saying `say`).
    #[serde(default)]
    pub end: Option<EndOutcome>,
    /// Slots to forget when this node runs (to ask again).
    #[serde(default)]
    pub clear: Vec<String>,
}

/// What a node does (exactly one per node; a node with only `say` and `end`/`goto` is `Say`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind<'a> {
    Ask(&'a str),
    Check(&'a str),
    Confirm(&'a str),
    Run(&'a str),
    Call(&'a str),
    Device(&'a str),
    Handoff,
    Say,
}

impl Node {
    pub fn kind(&self) -> NodeKind<'_> {
        if let Some(slot) = &self.ask {
            NodeKind::Ask(slot)
        } else if let Some(check) = &self.check {
            NodeKind::Check(check)
        } else if let Some(action) = &self.confirm {
            NodeKind::Confirm(action)
        } else if let Some(action) = &self.run {
            NodeKind::Run(action)
        } else if let Some(flow) = &self.call {
            NodeKind::Call(flow)
        } else if let Some(tool) = &self.device {
            NodeKind::Device(tool)
        } else if self.handoff {
            NodeKind::Handoff
        } else {
            NodeKind::Say
        }
    }

    fn n_kinds(&self) -> usize {
        [
            self.ask.is_some(),
            self.check.is_some(),
            self.confirm.is_some(),
            self.run.is_some(),
            self.call.is_some(),
            self.device.is_some(),
            self.handoff,
        ]
        .iter()
        .filter(|set| **set)
        .count()
    }
}

/// A flow: a named graph of nodes, started by intents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub name: String,
    /// Intents that start this flow.
    #[serde(default)]
    pub intents: Vec<String>,
    #[serde(default)]
    pub needs: Needs,
    /// Which of the customer's lines the flow is about when the customer does not say:
    /// `suspended` picks the only suspended line, `any` (default) the only line.
    #[serde(default)]
    pub prefer_line: Option<String>,
    /// A short description of the request, for summaries ("add data to a line").
    pub title: String,
    pub nodes: Vec<Node>,
}

impl Flow {
    pub fn node(&self, id: &str) -> Option<(usize, &Node)> {
        self.nodes.iter().enumerate().find(|(_, node)| node.id == id)
    }

    pub fn first(&self) -> &Node {
        &self.nodes[0]
    }

    /// The node after `idx` when `on` and `goto` say nothing.
    pub fn after(&self, idx: usize) -> Option<&Node> {
        self.nodes.get(idx + 1)
    }
}

/// Every flow and slot of a pack.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowBook {
    /// The file the book was read from, for error messages.
    #[serde(skip)]
    pub source: String,
    pub slots: BTreeMap<String, SlotDef>,
    pub flows: Vec<Flow>,
}

impl FlowBook {
    /// Parses and checks a flow file.
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let mut book: FlowBook = serde_yaml::from_str(text)
            .map_err(|error| Error::Parse { file: name.to_string(), why: error.to_string() })?;
        book.source = name.to_string();
        book.validate().map_err(|why| Error::Invalid { file: name.to_string(), why })?;
        Ok(book)
    }

    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.iter().find(|flow| flow.name == name)
    }

    /// The flow an intent starts, if any.
    pub fn flow_for_intent(&self, intent: &str) -> Option<&Flow> {
        self.flows.iter().find(|flow| flow.intents.iter().any(|name| name == intent))
    }

    fn validate(&self) -> Result<(), String> {
        let mut flow_names = BTreeSet::new();
        let mut intents = BTreeSet::new();
        for flow in &self.flows {
            if !flow_names.insert(flow.name.as_str()) {
                return Err(format!("flow {} is defined twice", flow.name));
            }
            for intent in &flow.intents {
                if !intents.insert(intent.as_str()) {
                    return Err(format!("intent {intent} starts more than one flow"));
                }
            }
        }
        for flow in &self.flows {
            let at = |node: &Node| format!("flow {}, node {}", flow.name, node.id);
            if flow.nodes.is_empty() {
                return Err(format!("flow {} has no nodes", flow.name));
            }
            let mut ids = BTreeSet::new();
            for node in &flow.nodes {
                if !ids.insert(node.id.as_str()) {
                    return Err(format!("{}: the id is used twice", at(node)));
                }
            }
            for (idx, node) in flow.nodes.iter().enumerate() {
                if node.n_kinds() > 1 {
                    return Err(format!(
                        "{}: a node does one thing (ask, check, confirm, run, call, device or handoff)",
                        at(node)
                    ));
                }
                let targets = node.on.values().chain(node.goto.iter());
                for target in targets {
                    if !ids.contains(target.as_str()) {
                        return Err(format!("{}: goes to unknown node {target}", at(node)));
                    }
                }
                if let NodeKind::Ask(slot) = node.kind()
                    && !self.slots.contains_key(slot)
                {
                    return Err(format!("{}: unknown slot {slot}", at(node)));
                }
                if let NodeKind::Call(callee) = node.kind()
                    && !flow_names.contains(callee)
                {
                    return Err(format!("{}: calls unknown flow {callee}", at(node)));
                }
                if matches!(node.kind(), NodeKind::Confirm(_) | NodeKind::Device(_)) && node.say.is_none() {
                    return Err(format!("{}: needs `say` (the question to the customer)", at(node)));
                }
                let falls_off = node.end.is_none()
                    && node.goto.is_none()
                    && !node.handoff
                    && idx + 1 == flow.nodes.len()
                    && !node.on.contains_key("*");
                if falls_off {
                    return Err(format!("{}: the last node must end the flow or go somewhere", at(node)));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_invalid(yaml: &str, expected: &str) {
        let error = FlowBook::parse("test.yaml", yaml).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    }

    const SLOTS: &str = "slots:\n  data_gb: {entity: data_amount, ask: ask_data_gb}\n";

    #[test]
    fn a_small_flow_parses() {
        let yaml = format!(
            "{SLOTS}flows:\n  - name: refuel\n    title: add data\n    intents: [refuel_data]\n    needs: line\n    nodes:\n      - {{id: amount, ask: data_gb}}\n      - {{id: confirm, confirm: refuel_data, say: refuel_confirm, on: {{declined: stop}}}}\n      - {{id: done, say: refuel_done, end: done}}\n      - {{id: stop, say: nothing_changed, end: cancelled}}\n"
        );
        let book = FlowBook::parse("test.yaml", &yaml).unwrap();
        let flow = book.flow_for_intent("refuel_data").unwrap();
        assert_eq!(flow.needs, Needs::Line);
        assert_eq!(flow.first().kind(), NodeKind::Ask("data_gb"));
        assert_eq!(flow.node("confirm").unwrap().1.kind(), NodeKind::Confirm("refuel_data"));
    }

    #[test]
    fn broken_flows_are_refused() {
        check_invalid(
            &format!("{SLOTS}flows:\n  - {{name: a, title: t, nodes: [{{id: x, ask: nope, end: done}}]}}\n"),
            "unknown slot nope",
        );
        check_invalid(
            &format!("{SLOTS}flows:\n  - {{name: a, title: t, nodes: [{{id: x, say: s, goto: y}}]}}\n"),
            "unknown node y",
        );
        check_invalid(
            &format!(
                "{SLOTS}flows:\n  - {{name: a, title: t, nodes: [{{id: x, ask: data_gb, check: c, end: done}}]}}\n"
            ),
            "does one thing",
        );
        check_invalid(&format!("{SLOTS}flows:\n  - {{name: a, title: t, nodes: [{{id: x, say: s}}]}}\n"), "last node");
        check_invalid(
            &format!("{SLOTS}flows:\n  - {{name: a, title: t, nodes: [{{id: x, call: b, end: done}}]}}\n"),
            "unknown flow b",
        );
        check_invalid("flows: [", "test.yaml");
    }
}
