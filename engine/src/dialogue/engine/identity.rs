//! Who the customer is and which line a request is about: identification from what the
//! customer gives, verification before a change, and the line in focus.

use super::rules::without_identity;
use super::understanding::Understanding;
use super::{Step, Work};
use crate::conversations::EventKind;
use crate::dialogue::state::GLOBAL;
use crate::dialogue::{Engine, EngineError};
use inference::entities::{EntityValue, IdKind};
use prompts::{EndOutcome, Flow, Needs};
use serde_json::{Value, json};

/// The customer id in a look-up's output (a customer, or a list with one customer).
pub(super) fn find_customer_id(output: &Value) -> Option<String> {
    if let Some(id) = output.get("customer_id").and_then(Value::as_str) {
        return Some(id.to_string());
    }
    for key in ["customer", "customers"] {
        if let Some(id) = output.get(key).and_then(find_customer_id) {
            return Some(id);
        }
    }
    match output {
        Value::Array(items) if items.len() == 1 => find_customer_id(&items[0]),
        _ => None,
    }
}

impl Engine {
    pub(super) fn on_identity_answer(
        &self,
        work: &mut Work<'_>,
        u: &Understanding,
        slot: &str,
    ) -> Result<(), EngineError> {
        let value = match slot {
            "phone_number" => u.values().find_map(|v| match v {
                EntityValue::PhoneNumber(number) => Some(json!(number)),
                _ => None,
            }),
            "customer_id" => u.values().find_map(|v| match v {
                EntityValue::Id { kind: IdKind::Customer, id } => Some(json!(id)),
                _ => None,
            }),
            "full_name" => u
                .values()
                .find_map(|v| match v {
                    EntityValue::FullName(name) => Some(json!(name)),
                    _ => None,
                })
                .or_else(|| inference::entities::parse_full_name(&u.text).map(|name| json!(name))),
            "date_of_birth" => u.values().find_map(|v| match v {
                EntityValue::DateOfBirth(date) | EntityValue::Date(date) => Some(json!(date.to_string())),
                _ => None,
            }),
            _ => None,
        };
        let mut fills = Vec::new();
        match value {
            Some(value) => fills.push((slot.to_string(), value)),
            None if u.dont_know => fills.push((slot.to_string(), Value::Null)),
            None => {
                if u.question && !u.gibberish {
                    self.answer_from_knowledge(work, u)?;
                } else {
                    self.not_understood(work, u, false)?;
                }
                return self.repeat_question(work);
            }
        }
        // Anything else identifying in the same message ("John Smith, born 1985-06-15").
        for extra in self.identity_values(u) {
            if extra.0 != slot {
                fills.push(extra);
            }
        }
        for (slot, value) in fills {
            self.log(work, vec![EventKind::SlotSet { flow: GLOBAL.into(), slot, value }])?;
        }
        // "555-123-2002 - it has said No Service since I dropped it": the request comes along.
        if let Some(request) = without_identity(&u.text, &u.entities)
            && request.split_whitespace().count() >= 3
            && let Some(intents) = &self.intents
        {
            let embedding = self.encoder.embed(&[&request])?.pop().unwrap_or_default();
            let (name, confidence) = intents.predict(&request, &embedding)?;
            let current = work.state.frame().map(|frame| frame.flow.clone());
            let flow = self.book.flow_for_intent(&name).map(|flow| flow.name.clone());
            if confidence >= 0.5 && flow.is_some() && flow != current {
                self.queue_requests(work, &[name])?;
            }
        }
        self.drive(work, Step::Start)
    }

    pub(super) fn on_line_answer(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        let facts = self.facts(work);
        let lines = facts.lines();
        let chosen = u.values().find_map(|value| match value {
            EntityValue::PhoneNumber(number) => {
                lines.iter().find(|line| line.phone_number.is(number)).map(|l| l.line_id.to_string())
            }
            EntityValue::Id { kind: IdKind::Line, id } => {
                lines.iter().find(|line| line.line_id.as_str() == id).map(|l| l.line_id.to_string())
            }
            _ => None,
        });
        match chosen {
            Some(line_id) => {
                self.log(
                    work,
                    vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: "line_id".into(), value: json!(line_id) }],
                )?;
                self.drive(work, Step::Start)
            }
            None if u.dont_know => {
                // The customer can't tell which line: take the one the request most likely concerns.
                let Some(line_id) = self.likely_line(work) else {
                    self.say(work, "identification_failed")?;
                    return self.end_all(work, EndOutcome::Failed);
                };
                self.log(
                    work,
                    vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: "line_id".into(), value: json!(line_id) }],
                )?;
                self.say(work, "line_guessed")?;
                self.drive(work, Step::Start)
            }
            None => {
                let given = u.values().any(|v| matches!(v, EntityValue::PhoneNumber(_) | EntityValue::Id { .. }));
                if given {
                    self.say(work, "line_not_found")?;
                    work.awaiting = Some("line".into());
                    return self.give_up_if_stuck(work, "__line");
                }
                if u.question && !u.gibberish {
                    self.answer_from_knowledge(work, u)?;
                } else {
                    self.not_understood(work, u, false)?;
                }
                self.repeat_question(work)
            }
        }
    }

    /// The customer's line a request most likely concerns: a suspended line for a flow that
    /// prefers one, else a line with a problem (suspended, data used up), else the first active line.
    pub(super) fn likely_line(&self, work: &Work<'_>) -> Option<String> {
        let facts = self.facts(work);
        let lines = facts.lines();
        let prefer =
            work.state.frame().and_then(|frame| self.book.flow(&frame.flow)).and_then(|flow| flow.prefer_line.clone());
        let suspended = |line: &&accounts::domain::Line| line.status() == accounts::domain::LineStatus::Suspended;
        let used_up = |line: &&accounts::domain::Line| {
            let limit = self.registry.store().plan(&line.plan_id).ok().flatten().map(|plan| plan.data_limit.to_gb());
            limit.is_some_and(|limit| line.data_used.to_gb() >= limit + line.data_refuelled.to_gb())
        };
        let chosen = match prefer.as_deref() {
            Some("suspended") => lines.iter().find(suspended),
            _ => lines.iter().find(|line| suspended(line) || used_up(line)),
        }
        .or_else(|| lines.iter().find(|line| line.status() == accounts::domain::LineStatus::Active))
        .or(lines.first());
        chosen.map(|line| line.line_id.to_string())
    }

    /// Makes sure the flow's needs are met; `false` when the turn now waits for the customer.
    pub(super) fn ensure_needs(&self, work: &mut Work<'_>, flow: &Flow) -> Result<bool, EngineError> {
        if flow.needs == Needs::Nothing {
            return Ok(true);
        }
        if !self.ensure_customer(work)? {
            return Ok(false);
        }
        if flow.needs == Needs::Line {
            return self.ensure_line(work, flow);
        }
        Ok(true)
    }

    /// Identifies the customer from what they gave; asks for the next thing to try otherwise.
    pub(super) fn ensure_customer(&self, work: &mut Work<'_>) -> Result<bool, EngineError> {
        if work.state.customer.is_some() {
            return Ok(true);
        }
        let globals = work.state.globals.clone();
        let given = |slot: &str| globals.get(slot).and_then(Value::as_str).map(str::to_string);
        let tried = |slot: &str| globals.contains_key(slot);
        // A customer id or a name with a date of birth says who writes; a phone number may be
        // the line the request is about (someone else's, even), so it comes last.
        if let Some(customer_id) = given("customer_id")
            && !tried("_id_lookup_failed")
        {
            let found = self.lookup(work, "get_customer_by_id", json!({"customer_id": customer_id}))?;
            if let Some(customer_id) = found {
                self.bind_customer(work, &customer_id, true, "customer id")?;
                return Ok(true);
            }
            work.extra.insert("given_customer_id".into(), customer_id);
            self.say(work, "not_found_id")?;
            self.log(
                work,
                vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: "_id_lookup_failed".into(), value: json!(true) }],
            )?;
        }
        if let (Some(name), Some(dob)) = (given("full_name"), given("date_of_birth"))
            && !tried("_name_lookup_failed")
        {
            let found = self.lookup(work, "get_customer_by_name", json!({"full_name": name, "dob": dob}))?;
            if let Some(customer_id) = found {
                self.bind_customer(work, &customer_id, true, "name and date of birth")?;
                return Ok(true);
            }
            self.say(work, "not_found_name")?;
            self.log(
                work,
                vec![EventKind::SlotSet {
                    flow: GLOBAL.into(),
                    slot: "_name_lookup_failed".into(),
                    value: json!(true),
                }],
            )?;
        }
        if let Some(phone) = given("phone_number")
            && !tried("_phone_lookup_failed")
        {
            let found = self.lookup(work, "get_customer_by_phone", json!({"phone_number": phone}))?;
            if let Some(customer_id) = found {
                self.bind_customer(work, &customer_id, true, "phone number")?;
                return Ok(true);
            }
            work.extra.insert("given_phone".into(), phone);
            self.say(work, "not_found_phone")?;
            self.log(
                work,
                vec![EventKind::SlotSet {
                    flow: GLOBAL.into(),
                    slot: "_phone_lookup_failed".into(),
                    value: json!(true),
                }],
            )?;
        }
        let next = if !tried("phone_number") {
            Some("phone_number")
        } else if !tried("customer_id") {
            Some("customer_id")
        } else if !tried("full_name") || (given("full_name").is_some() && !tried("date_of_birth")) {
            if given("full_name").is_some() { Some("date_of_birth") } else { Some("full_name") }
        } else {
            None
        };
        match next {
            Some(slot) => {
                let template = self.book.slots[slot].ask.clone();
                self.say(work, &template)?;
                work.awaiting = Some(slot.to_string());
                self.give_up_if_stuck(work, &format!("__ask_{slot}"))?;
            }
            None => {
                self.say(work, "identification_failed")?;
                self.end_all(work, EndOutcome::Failed)?;
            }
        }
        Ok(false)
    }

    /// Before a change: a customer identified only by their channel confirms their date of birth.
    pub(super) fn ensure_verified(&self, work: &mut Work<'_>) -> Result<bool, EngineError> {
        let Some(customer) = work.state.customer.clone() else { return self.ensure_customer(work) };
        if customer.verified {
            return Ok(true);
        }
        if let Some(dob) = work.state.global("date_of_birth").map(str::to_string) {
            let record = self.facts(work).customer();
            if record.is_some_and(|c| c.date_of_birth.to_string() == dob) {
                self.bind_customer(work, &customer.customer_id, true, "date of birth")?;
                return Ok(true);
            }
            self.say(work, "verification_failed")?;
            self.end_all(work, EndOutcome::Refused)?;
            return Ok(false);
        }
        self.say(work, "ask_date_of_birth_verify")?;
        work.awaiting = Some("date_of_birth".into());
        Ok(false)
    }

    /// Picks the line the flow is about, or asks which one.
    pub(super) fn ensure_line(&self, work: &mut Work<'_>, flow: &Flow) -> Result<bool, EngineError> {
        let facts = self.facts(work);
        let lines = facts.lines();
        let current = facts.line();
        if current.as_ref().is_some_and(|line| lines.iter().any(|l| l.line_id == line.line_id)) {
            return Ok(true);
        }
        let given_phone = work.state.global("phone_number").map(str::to_string);
        let by_phone = given_phone.as_deref().and_then(|phone| lines.iter().find(|line| line.phone_number.is(phone)));
        let contact_number = self.facts(work).customer().map(|c| c.phone_number.clone());
        if let Some(phone) = &given_phone
            && by_phone.is_none()
            && !contact_number.as_ref().is_some_and(|contact| contact.is(phone))
            && !work.state.globals.contains_key("_foreign_line_said")
        {
            // "Suspend 555-123-2005" from someone whose line it is not.
            work.extra.insert("given_phone".into(), phone.clone());
            self.say(work, "line_not_on_account")?;
            self.log(
                work,
                vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: "_foreign_line_said".into(), value: json!(true) }],
            )?;
        }
        let preferred: Vec<_> = match flow.prefer_line.as_deref() {
            Some("suspended") => {
                lines.iter().filter(|line| line.status() == accounts::domain::LineStatus::Suspended).collect()
            }
            _ => Vec::new(),
        };
        let chosen = by_phone
            .or(if preferred.len() == 1 { Some(preferred[0]) } else { None })
            .or(if lines.len() == 1 { Some(&lines[0]) } else { None })
            .map(|line| line.line_id.to_string());
        if let Some(line_id) = chosen {
            self.log(
                work,
                vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: "line_id".into(), value: json!(line_id) }],
            )?;
            return Ok(true);
        }
        if lines.is_empty() {
            self.say(work, "no_lines")?;
            self.end_all(work, EndOutcome::Failed)?;
            return Ok(false);
        }
        self.say(work, "ask_line")?;
        work.awaiting = Some("line".into());
        Ok(false)
    }

    pub(super) fn bind_customer(
        &self,
        work: &mut Work<'_>,
        customer_id: &str,
        verified: bool,
        method: &str,
    ) -> Result<(), EngineError> {
        self.log(
            work,
            vec![EventKind::CustomerIdentified {
                customer_id: customer_id.to_string(),
                verified,
                method: method.to_string(),
            }],
        )?;
        self.conversations.update(work.conversation_id, |conversation| {
            conversation.customer_id = Some(customer_id.to_string());
        })?;
        Ok(())
    }

    /// Runs a look-up action that finds a customer; returns the customer's id.
    pub(super) fn lookup(&self, work: &mut Work<'_>, action: &str, args: Value) -> Result<Option<String>, EngineError> {
        let outcome = self.run_action(work, action, args, None)?;
        if outcome != "done" {
            return Ok(None);
        }
        let found = work.extra.remove("_last_output").and_then(|output| serde_json::from_str::<Value>(&output).ok());
        Ok(found.and_then(|output| find_customer_id(&output)))
    }

    /// Identifying values in the message (phone number, customer id, name, date of birth).
    pub(super) fn identity_values(&self, u: &Understanding) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = Vec::new();
        for value in u.values() {
            let pair = match value {
                EntityValue::PhoneNumber(number) => ("phone_number", json!(number)),
                EntityValue::Id { kind: IdKind::Customer, id } => ("customer_id", json!(id)),
                EntityValue::FullName(name) => ("full_name", json!(name)),
                EntityValue::DateOfBirth(date) => ("date_of_birth", json!(date.to_string())),
                _ => continue,
            };
            if !out.iter().any(|(slot, _)| slot == pair.0) {
                out.push((pair.0.to_string(), pair.1));
            }
        }
        out
    }
}
