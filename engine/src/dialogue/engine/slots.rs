//! Slot filling: values for what a flow asks, read from the message's entities (leniently when
//! the slot was asked for), corrections, and the arguments of an action built from slots and facts.

use super::rules::{BARE_NUMBER, DATA_QUANTITY, choose_value};
use super::understanding::Understanding;
use super::{Step, Work};
use crate::conversations::EventKind;
use crate::dialogue::state::GLOBAL;
use crate::dialogue::{Engine, EngineError};
use inference::entities::{EntityValue, IdKind};
use prompts::{EndOutcome, Node};
use serde_json::{Value, json};

impl Engine {
    pub(super) fn on_slot_answer(
        &self,
        work: &mut Work<'_>,
        u: &Understanding,
        node_id: &str,
        slot: &str,
    ) -> Result<(), EngineError> {
        if self.is_digression(u) {
            self.answer_from_knowledge(work, u)?;
            return self.repeat_question(work);
        }
        let value = self.value_for_slot(work, u, slot);
        match value {
            Some(value) => {
                let mut fills = vec![(slot.to_string(), value)];
                fills.extend(self.slot_values_for_flow(work, u).into_iter().filter(|(name, _)| name != slot));
                self.fill_slots(work, fills)?;
                self.answer_side_question(work, u)?;
                self.drive(work, Step::Advance(None))
            }
            None if u.dont_know && self.book.slots.get(slot).is_some_and(|def| def.optional) => {
                self.fill_slots(work, vec![(slot.to_string(), Value::Null)])?;
                self.drive(work, Step::Advance(None))
            }
            None => {
                if u.question && !u.gibberish && !u.dont_know {
                    self.answer_from_knowledge(work, u)?;
                    return self.repeat_question(work);
                }
                if let Some(intent) = u.confident_intent()
                    && self.book.flow_for_intent(intent).is_some()
                    && !u.dont_know
                {
                    // A new request instead of an answer: leave this one and start that.
                    self.end_all(work, EndOutcome::Cancelled)?;
                    return self.on_free_message(work, u);
                }
                self.not_understood(work, u, false)?;
                let _ = node_id;
                self.repeat_question(work)
            }
        }
    }

    pub(super) fn fill_slots(&self, work: &mut Work<'_>, fills: Vec<(String, Value)>) -> Result<(), EngineError> {
        let Some(flow) = work.state.frame().map(|frame| frame.flow.clone()) else { return Ok(()) };
        let events = fills
            .into_iter()
            .map(|(slot, value)| {
                // The line in focus belongs to the conversation, not to one flow.
                let flow = if slot == "line_id" { GLOBAL.to_string() } else { flow.clone() };
                EventKind::SlotSet { flow, slot, value }
            })
            .collect();
        self.log(work, events)
    }

    /// Values in the message for slots the top flow asks for (several slots in one message).
    pub(super) fn slot_values_for_flow(&self, work: &Work<'_>, u: &Understanding) -> Vec<(String, Value)> {
        let Some(frame) = work.state.frame() else { return Vec::new() };
        let Some(flow) = self.book.flow(&frame.flow) else { return Vec::new() };
        let mut fills: Vec<(String, Value)> = Vec::new();
        for node in &flow.nodes {
            let Some(slot) = node.ask.as_deref() else { continue };
            if fills.iter().any(|(name, _)| name == slot) || slot == "location" {
                continue;
            }
            let lenient = matches!(slot, "payment_method" | "plan");
            let value = if lenient { self.value_for_slot(work, u, slot) } else { self.entity_for_slot(work, u, slot) };
            if let Some(value) = value
                && frame.slots.get(slot) != Some(&value)
            {
                fills.push((slot.to_string(), value));
            }
        }
        fills
    }

    /// The value of a slot in the message, reading it leniently because it was asked for.
    pub(super) fn value_for_slot(&self, work: &Work<'_>, u: &Understanding, slot: &str) -> Option<Value> {
        if let Some(value) = self.entity_for_slot(work, u, slot) {
            return Some(value);
        }
        match slot {
            "data_gb" => BARE_NUMBER.captures(&u.text).and_then(|c| c[1].parse::<f64>().ok()).map(|gb| json!(gb)),
            "location" if !u.dont_know && !u.gibberish => Some(json!(u.text.clone())),
            "payment_method" => {
                let customer = self.facts(work).customer()?;
                let lower = u.text.to_lowercase();
                customer
                    .payment_methods
                    .iter()
                    .find(|method| {
                        lower.contains(method.last_four.as_str())
                            || lower.contains(&method.kind.as_str().to_lowercase())
                            || (lower.contains("credit") && method.kind.as_str() == "Credit Card")
                            || (lower.contains("debit") && method.kind.as_str() == "Debit Card")
                            || (lower.contains("paypal") && method.kind.as_str() == "PayPal")
                    })
                    .map(|method| json!(method.last_four.as_str()))
            }
            "plan" => {
                let lower = u.text.to_lowercase();
                self.registry
                    .store()
                    .plans()
                    .ok()?
                    .into_iter()
                    .find(|plan| {
                        lower.contains(&plan.name.to_lowercase())
                            || lower.contains(&plan.name.to_lowercase().replace(" plan", ""))
                    })
                    .map(|plan| json!(plan.plan_id.to_string()))
            }
            _ => None,
        }
    }

    pub(super) fn entity_for_slot(&self, work: &Work<'_>, u: &Understanding, slot: &str) -> Option<Value> {
        let _ = work;
        if slot == "data_gb"
            && !u.entities.iter().any(|e| matches!(e.value, EntityValue::DataAmount(_)))
            && let Some(captures) = DATA_QUANTITY.captures(&u.text.to_lowercase())
        {
            return captures[1].parse::<f64>().ok().map(|gb| json!(gb));
        }
        let candidates: Vec<(usize, Value)> = u
            .entities
            .iter()
            .filter_map(|entity| {
                let value = match (slot, &entity.value) {
                    ("data_gb", EntityValue::DataAmount(amount)) => json!(amount.gigabytes()),
                    ("plan", EntityValue::Plan { plan_id, .. }) => json!(plan_id),
                    ("bill_id", EntityValue::Id { kind: IdKind::Bill, id }) => json!(id),
                    _ => return None,
                };
                Some((entity.start, value))
            })
            .collect();
        choose_value(&u.text, candidates)
    }

    pub(super) fn build_args(&self, work: &Work<'_>, node: &Node) -> Result<Value, EngineError> {
        let facts = self.facts(work);
        let mut args = serde_json::Map::new();
        for (name, template) in &node.args {
            let value = match template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(fact) if !fact.contains('{') => facts.fact_value(fact),
                _ => prompts::replies::fill(template, &|name| facts.fact(name)).ok().map(Value::String),
            };
            match value {
                Some(Value::String(text)) if text.is_empty() => {}
                Some(value) => {
                    args.insert(name.clone(), value);
                }
                None => {}
            }
        }
        Ok(Value::Object(args))
    }
}
