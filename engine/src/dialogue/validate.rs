//! Checks a flow book and its reply templates against what the engine knows, when the engine
//! is built: every check, fact, template, slot, action and device tool a flow names must exist.
//! A mistake is a startup error naming the file, the flow and the node, never an "unknown" at
//! run time in front of a customer. Phone tools are the tau2 telecom user tools the scenario
//! harness plays (`evals::scenarios`).

use accounts::ActionName;
use evals::scenarios::{DEVICE_ACTIONS, DEVICE_CHECKS};
use prompts::{FlowBook, NodeKind, Replies};

use super::facts::{CHECKS, is_known_fact};

/// Reply templates the engine itself says, whatever the flows.
pub const ENGINE_TEMPLATES: &[&str] = &[
    "agent_is_handling",
    "anything_else",
    "ask_line",
    "ask_verification_code",
    "cancelled",
    "chit_chat",
    "closing",
    "code_expired",
    "code_malformed",
    "code_sent",
    "code_spent",
    "code_wrong",
    "csat_question",
    "csat_thanks",
    "fallback",
    "fallback_offer_human",
    "flow_gave_up",
    "gibberish",
    "goodbye",
    "greeting",
    "identification_failed",
    "line_guessed",
    "line_not_found",
    "line_not_identified",
    "line_not_on_account",
    "network_no_claim",
    "network_not_verified",
    "next_request",
    "no_lines",
    "not_found_id",
    "not_found_name",
    "not_found_phone",
    "nothing_changed",
    "offer_person",
    "plans_compared",
    "refused",
    "sim_swap_handoff",
    "sms_verification_code",
    "thanks",
    "transferring",
    "verification_failed",
    "verification_locked",
    "verification_unavailable",
    "verified",
];

/// A flow book or reply file that names something the engine does not have.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {place}: {why}")]
pub struct InvalidFlows {
    pub file: String,
    /// `flow pay_bill, node confirm`, `slot plan` or `template refused`.
    pub place: String,
    pub why: String,
}

/// Checks `book` and `replies` together; the first mistake found is the error.
pub fn validate(book: &FlowBook, replies: &Replies) -> Result<(), InvalidFlows> {
    let in_replies = |place: String, why: String| InvalidFlows { file: replies.source.clone(), place, why };
    let in_book = |place: String, why: String| InvalidFlows { file: book.source.clone(), place, why };
    for name in ENGINE_TEMPLATES {
        if !replies.contains(name) {
            return Err(in_replies(format!("template {name}"), "the engine says it, but it is not defined".into()));
        }
    }
    for name in replies.names() {
        for fact in replies.placeholders_of(name) {
            if !is_known_fact(&fact) {
                return Err(in_replies(format!("template {name}"), format!("unknown fact {{{fact}}}")));
            }
        }
    }
    for (slot, definition) in &book.slots {
        if !replies.contains(&definition.ask) {
            return Err(in_book(format!("slot {slot}"), format!("unknown reply template {}", definition.ask)));
        }
    }
    for flow in &book.flows {
        for node in &flow.nodes {
            let place = || format!("flow {}, node {}", flow.name, node.id);
            let fail = |why: String| Err(in_book(place(), why));
            if let Some(template) = &node.say
                && !replies.contains(template)
            {
                return fail(format!("unknown reply template {template}"));
            }
            match node.kind() {
                NodeKind::Check(check) if !CHECKS.contains(&check) => return fail(format!("unknown check {check}")),
                NodeKind::Confirm(action) | NodeKind::Run(action) if action.parse::<ActionName>().is_err() => {
                    return fail(format!("unknown account action {action}"));
                }
                NodeKind::Device(tool) if !DEVICE_CHECKS.contains(&tool) && !DEVICE_ACTIONS.contains(&tool) => {
                    return fail(format!("unknown device tool {tool}"));
                }
                NodeKind::Ask(_)
                | NodeKind::Check(_)
                | NodeKind::Confirm(_)
                | NodeKind::Run(_)
                | NodeKind::Call(_)
                | NodeKind::Device(_)
                | NodeKind::Handoff
                | NodeKind::Say => {}
            }
            for (argument, template) in &node.args {
                let facts = prompts::replies::placeholders(template)
                    .map_err(|why| in_book(place(), format!("argument {argument}: {why}")))?;
                if let Some(fact) = facts.iter().find(|fact| !is_known_fact(fact)) {
                    return fail(format!("argument {argument}: unknown fact {{{fact}}}"));
                }
            }
            for slot in &node.clear {
                if !book.slots.contains_key(slot) && slot != "line_id" {
                    return fail(format!("clears unknown slot {slot}"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_error(flows: &str, replies: &str, expected: &str) {
        let book = FlowBook::parse("flows.yaml", flows).unwrap();
        let replies = Replies::parse("replies.yaml", replies).unwrap();
        let error = validate(&book, &replies).unwrap_err().to_string();
        assert_eq!(error, expected);
    }

    fn engine_templates() -> String {
        ENGINE_TEMPLATES.iter().map(|name| format!("{name}: \"x\"\n")).collect()
    }

    const SLOTS: &str = "slots:\n  plan: {entity: plan, ask: ask_plan}\n";

    #[test]
    fn the_built_in_pack_is_valid() {
        validate(&prompts::telco_flows().unwrap(), &prompts::telco_replies().unwrap()).unwrap();
    }

    #[test]
    fn engine_templates_that_are_missing() {
        let flows = format!("{SLOTS}flows: []\n");
        check_error(
            &flows,
            "ask_plan: \"Which plan?\"\n",
            "replies.yaml: template agent_is_handling: the engine says it, but it is not defined",
        );
    }

    #[test]
    fn unknown_names_in_flows() {
        let replies = format!("{}ask_plan: \"Which plan?\"\nsure: \"Sure?\"\n", engine_templates());
        let flow = |node: &str| format!("{SLOTS}flows:\n  - name: f\n    title: F\n    nodes:\n      - {node}\n");
        check_error(
            &flow("{id: a, check: overdue_bil, end: done}"),
            &replies,
            "flows.yaml: flow f, node a: unknown check overdue_bil",
        );
        check_error(
            &flow("{id: a, run: pay_everything, end: done}"),
            &replies,
            "flows.yaml: flow f, node a: unknown account action pay_everything",
        );
        check_error(
            &flow("{id: a, device: shake_phone, say: sure, end: done}"),
            &replies,
            "flows.yaml: flow f, node a: unknown device tool shake_phone",
        );
        check_error(
            &flow("{id: a, say: hello, end: done}"),
            &replies,
            "flows.yaml: flow f, node a: unknown reply template hello",
        );
        check_error(
            &flow("{id: a, confirm: refuel_data, say: sure, end: done, args: {gb_amount: \"{data_gbs}\"}}"),
            &replies,
            "flows.yaml: flow f, node a: argument gb_amount: unknown fact {data_gbs}",
        );
        check_error(
            &flow("{id: a, clear: [colour], say: sure, end: done}"),
            &replies,
            "flows.yaml: flow f, node a: clears unknown slot colour",
        );
    }

    #[test]
    fn unknown_facts_and_slot_templates() {
        let flows = format!("{SLOTS}flows: []\n");
        let replies = format!("{}ask_plan: \"Which plan, {{customer_nickname}}?\"\n", engine_templates());
        check_error(&flows, &replies, "replies.yaml: template ask_plan: unknown fact {customer_nickname}");
        let replies = engine_templates();
        check_error(&flows, &replies, "flows.yaml: slot plan: unknown reply template ask_plan");
    }
}
