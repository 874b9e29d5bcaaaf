//! Who the customer is and which line a request is about: identification from what the
//! customer gives, verification before a change, and the line in focus.

use super::rules::without_identity;
use super::understanding::Understanding;
use super::{Step, Work};
use crate::conversations::EventKind;
use crate::dialogue::state::GLOBAL;
use crate::dialogue::{Engine, EngineError};
use crate::identity::Assurance;
use accounts::ids::phone_key;
use accounts::{ActionRequest, Actor};
use inference::entities::{EntityValue, IdKind};
use prompts::{EndOutcome, Flow, Needs};
use serde_json::{Value, json};

/// The slot a code is asked for.
pub(super) const VERIFICATION_CODE: &str = "verification_code";
/// Conversation slots that remember which identifiers were tried as claims.
const TRIED_ID: &str = "_claim_tried_customer_id";
const TRIED_NAME: &str = "_claim_tried_name";
const TRIED_PHONE: &str = "_claim_tried_phone_number";
/// The number a phone-number claim named (a code goes there when it is on the account).
pub(super) const CLAIM_NUMBER: &str = "_claim_number";
/// Every phone number a request named, when it named several.
pub(super) const NUMBERS_MENTIONED: &str = "_numbers_mentioned";
/// The look-up that resolved the claim, reported when the claim is proven.
pub(super) const CLAIM_LOOKUP: &str = "_claim_lookup";

/// A look-up that resolved a claim to a customer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ClaimLookup {
    pub(super) action: String,
    pub(super) args: Value,
    pub(super) customer_id: String,
}

impl ClaimLookup {
    fn to_json(&self) -> Value {
        json!({"action": self.action, "args": self.args, "customer_id": self.customer_id})
    }

    pub(super) fn from_json(value: &Value) -> Option<Self> {
        Some(Self {
            action: value.get("action")?.as_str()?.to_string(),
            args: value.get("args")?.clone(),
            customer_id: value.get("customer_id")?.as_str()?.to_string(),
        })
    }
}

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

    /// Makes sure the conversation's customer is verified: a claim from what they gave, then a
    /// proof; asks for the next thing to try otherwise. `false` while the turn waits.
    pub(super) fn ensure_customer(&self, work: &mut Work<'_>) -> Result<bool, EngineError> {
        if work.state.assurance() == Assurance::Verified {
            return Ok(true);
        }
        if let Some(bound) = work.state.customer.clone() {
            // A claim waiting for its proof: the code was sent (ask for it again) or is sent now.
            let claimed = bound.customer_id;
            let pending = self.identity.codes.pending(work.conversation_id).map_err(anyhow::Error::from)?;
            if pending.is_none_or(|code| code.used || code.customer_id != claimed) {
                let number = work.state.global(CLAIM_NUMBER).map(str::to_string);
                self.start_proof(work, &claimed, number.as_deref())?;
            } else {
                self.say(work, "ask_verification_code")?;
                work.awaiting = Some(VERIFICATION_CODE.into());
            }
            return Ok(false);
        }
        let globals = work.state.globals.clone();
        let given = |slot: &str| globals.get(slot).and_then(Value::as_str).map(str::to_string);
        let tried = |marker: &str| globals.contains_key(marker);
        // A customer id or a name with a date of birth says who writes; a phone number may be
        // the line the request is about (someone else's, even), so it comes last.
        if let Some(customer_id) = given("customer_id")
            && !tried(TRIED_ID)
        {
            self.mark(work, TRIED_ID)?;
            let found = self.find_claimed(work, "get_customer_by_id", json!({"customer_id": customer_id}))?;
            return self.claim(work, found, "customer id", None);
        }
        if let (Some(name), Some(dob)) = (given("full_name"), given("date_of_birth"))
            && !tried(TRIED_NAME)
        {
            self.mark(work, TRIED_NAME)?;
            let found = self.find_claimed(work, "get_customer_by_name", json!({"full_name": name, "dob": dob}))?;
            if found.is_none() {
                self.name_and_date_of_birth_failed(work, &name)?;
            }
            return self.claim(work, found, "name and date of birth", None);
        }
        if let Some(phone) = given("phone_number")
            && !tried(TRIED_PHONE)
        {
            self.mark(work, TRIED_PHONE)?;
            let found = self.find_claimed(work, "get_customer_by_phone", json!({"phone_number": phone}))?;
            return self.claim(work, found, "phone number", Some(&phone));
        }
        let next = if !tried(TRIED_PHONE) && !tried("phone_number") {
            Some("phone_number")
        } else if !tried(TRIED_ID) && !tried("customer_id") {
            Some("customer_id")
        } else if !tried(TRIED_NAME) {
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
                self.offer_person(work)?;
            }
        }
        Ok(false)
    }

    /// Records that an identifier was tried as a claim.
    fn mark(&self, work: &mut Work<'_>, marker: &str) -> Result<(), EngineError> {
        self.log(work, vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: marker.into(), value: json!(true) }])
    }

    /// A claim was made: bound (unverified) when it names a customer, and a code texted to a
    /// number on their account. The customer hears the same either way: whether the details
    /// match an account is not told.
    fn claim(
        &self,
        work: &mut Work<'_>,
        found: Option<ClaimLookup>,
        method: &str,
        number: Option<&str>,
    ) -> Result<bool, EngineError> {
        match found {
            Some(lookup) => {
                self.bind_customer(work, &lookup.customer_id, false, method)?;
                let value = number.map_or(Value::Null, |number| json!(number));
                self.log(work, vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: CLAIM_NUMBER.into(), value }])?;
                self.log(
                    work,
                    vec![EventKind::SlotSet {
                        flow: GLOBAL.into(),
                        slot: CLAIM_LOOKUP.into(),
                        value: lookup.to_json(),
                    }],
                )?;
                self.start_proof(work, &lookup.customer_id, number)?;
            }
            None => self.start_decoy_proof(work)?,
        }
        Ok(false)
    }

    /// Before a change: the customer must be verified (and still be: a verification lapses).
    pub(super) fn ensure_verified(&self, work: &mut Work<'_>) -> Result<bool, EngineError> {
        self.ensure_customer(work)
    }

    /// Picks the line the flow is about, or asks which one.
    pub(super) fn ensure_line(&self, work: &mut Work<'_>, flow: &Flow) -> Result<bool, EngineError> {
        let facts = self.facts(work);
        let lines = facts.lines();
        let current = facts.line();
        if current.as_ref().is_some_and(|line| lines.iter().any(|l| l.line_id == line.line_id)) {
            return Ok(true);
        }
        let contact_number = self.facts(work).customer().map(|c| c.phone_number.clone());
        let on_account = |phone: &str| {
            lines.iter().any(|line| line.phone_number.is(phone))
                || contact_number.as_ref().is_some_and(|contact| contact.is(phone))
        };
        let mentioned: Vec<String> = work
            .state
            .globals
            .get(NUMBERS_MENTIONED)
            .and_then(Value::as_array)
            .map(|numbers| numbers.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let claim_number = work.state.global(CLAIM_NUMBER).map(str::to_string);
        // Of several numbers named, a foreign one is the request's subject; else one of the
        // customer's lines other than the one they identified with.
        let given_phone = mentioned
            .iter()
            .find(|phone| !on_account(phone))
            .or_else(|| {
                mentioned.iter().find(|phone| {
                    lines.iter().any(|line| line.phone_number.is(phone))
                        && claim_number.as_deref().is_none_or(|claim| phone_key(claim) != phone_key(phone))
                })
            })
            .cloned()
            .or_else(|| work.state.global("phone_number").map(str::to_string));
        let by_phone = given_phone.as_deref().and_then(|phone| lines.iter().find(|line| line.phone_number.is(phone)));
        if let Some(phone) = &given_phone
            && by_phone.is_none()
            && !on_account(phone)
        {
            // "Top up my daughter's line 555-123-2004": not a line of this account. Declined,
            // with nothing said about that number (not its owner, its plan, or whether it exists).
            work.extra.insert("given_phone".into(), phone.clone());
            self.say(work, "line_not_on_account")?;
            self.log(work, vec![EventKind::SlotCleared { flow: GLOBAL.into(), slot: "phone_number".into() }])?;
            self.log(work, vec![EventKind::SlotCleared { flow: GLOBAL.into(), slot: NUMBERS_MENTIONED.into() }])?;
            self.end_all(work, EndOutcome::Refused)?;
            return Ok(false);
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

    /// Resolves a claim with a look-up run as Switchboard itself, without logging it or showing
    /// it in the turn: whether the details match an account must not show. The look-up is
    /// reported once the claim is proven ([`Self::verified`]).
    fn find_claimed(&self, work: &mut Work<'_>, action: &str, args: Value) -> Result<Option<ClaimLookup>, EngineError> {
        let Ok(request) = ActionRequest::parse(action, args.clone()) else { return Ok(None) };
        let started = std::time::Instant::now();
        let result = self.registry.run_blocking(accounts::ActionCall::new(request, Actor::System));
        work.times.action_ms += started.elapsed().as_secs_f64() * 1000.0;
        Ok(match result {
            Ok(outcome) => find_customer_id(&outcome.output.to_json()).map(|customer_id| ClaimLookup {
                action: action.to_string(),
                args,
                customer_id,
            }),
            Err(_) => None,
        })
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
