//! The turn loop: understand the message, feed it to what the conversation was waiting for
//! (a slot, a yes/no, a phone check), then run the active flow until it needs the customer
//! again. Everything that happens is appended to the conversation's event log as it happens.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Instant;

use regex::Regex;
use serde_json::{Value, json};

use super::answer::Passage;
use super::device;
use super::facts::{CheckResult, FactContext};
use super::state::{GLOBAL, State, is_device_check};
use super::{
    ActionCall, ActionOut, CustomerText, Engine, EngineError, IntentOut, SourceOut, StageTimes, TokenSink, Turn,
};
use crate::accounts::{self, ActionRequest, Actor, ConfirmationToken, ConversationId, CustomerId, IdempotencyKey};
use crate::conversations::{Channel, EventKind};
use inference::entities::{Entity, EntityValue, IdKind};
use prompts::{EndOutcome, Flow, Needs, Node, NodeKind};

/// An intent name with its confidence.
type ScoredIntent = (String, f32);

/// Intents that never start a flow but shape the conversation.
const SMALL_TALK: &[&str] = &["greeting", "thanks", "goodbye", "chitchat"];
/// Intents that ask for information (answered from knowledge).
const INFO_INTENTS: &[&str] = &[
    "plan_info",
    "compare_plans",
    "roaming_rates",
    "dispute_charge",
    "update_payment_method",
    "sim_replacement",
    "esim_transfer",
    "report_outage",
    "cancel_line",
];
/// What the plan catalogue reply cites from the knowledge base.
const CATALOGUE_QUERY: &str = "plan catalogue: every plan with its data and monthly price";
/// Below this confidence an intent does not start a flow.
const FLOW_CONFIDENCE: f32 = 0.3;
/// Intents whose flows change an account in a way the customer may not want (a suspended line,
/// roaming off, another plan): a guess does not start them, whatever the customer confirms next.
const ACCOUNT_CHANGING: &[&str] = &["suspend_line", "disable_roaming", "change_plan"];
/// The confidence an [`ACCOUNT_CHANGING`] intent needs to start its flow.
const ACCOUNT_CHANGE_CONFIDENCE: f32 = 0.55;
/// Most nodes one turn may pass through (a guard against loops in a flow file).
const MAX_STEPS_PER_TURN: usize = 64;
/// Times one node may be entered in a flow before the flow gives up.
const MAX_NODE_VISITS: u32 = 3;
/// Times one question may be asked in a flow (asked again once after a wrong answer).
const MAX_ASKS: u32 = 2;

/// What the engine understood of one message.
pub struct Understanding {
    pub text: String,
    pub embedding: Vec<f32>,
    pub intent: Option<(String, f32)>,
    pub entities: Vec<Entity>,
    pub yes_no: Option<bool>,
    pub cancel: bool,
    pub dont_know: bool,
    pub question: bool,
    pub gibberish: bool,
    /// Further requests in the same message ("fix my data, then upgrade my plan"), in order.
    pub more_requests: Vec<String>,
}

impl Understanding {
    fn confident_intent(&self) -> Option<&str> {
        self.intent
            .as_ref()
            .filter(|(name, confidence)| {
                let needed =
                    if ACCOUNT_CHANGING.contains(&name.as_str()) { ACCOUNT_CHANGE_CONFIDENCE } else { FLOW_CONFIDENCE };
                *confidence >= needed
            })
            .map(|(name, _)| name.as_str())
    }
    fn values(&self) -> impl Iterator<Item = &EntityValue> {
        self.entities.iter().map(|entity| &entity.value)
    }
}

/// Where the machine goes next.
enum Step {
    /// Run the top flow from its start (checking what it needs first).
    Start,
    /// Enter a node of the top flow.
    Enter(String),
    /// Leave the current node of the top flow with an outcome (None: the default way).
    Advance(Option<String>),
    /// End the top flow.
    End(EndOutcome),
}

/// One turn in progress.
pub(super) struct Work<'a> {
    conversation_id: &'a str,
    channel: Channel,
    pub(super) state: State,
    parts: Vec<String>,
    awaiting: Option<String>,
    pending_action: Option<ActionCall>,
    actions: Vec<ActionOut>,
    sources: Vec<SourceOut>,
    handoff: bool,
    extra: BTreeMap<String, String>,
    intent: Option<IntentOut>,
    sink: &'a dyn TokenSink,
    times: StageTimes,
}

impl Engine {
    pub(super) fn run_turn(
        &self,
        conversation_id: &str,
        text: &CustomerText,
        sink: &dyn TokenSink,
    ) -> Result<(Turn, StageTimes), EngineError> {
        let started = Instant::now();
        let header = self.conversations.get(conversation_id)?;
        let events = self.conversations.events(conversation_id)?;
        let mut work = Work {
            conversation_id,
            channel: header.channel,
            state: State::replay(&events),
            parts: Vec::new(),
            awaiting: None,
            pending_action: None,
            actions: Vec::new(),
            sources: Vec::new(),
            handoff: false,
            extra: BTreeMap::new(),
            intent: None,
            sink,
            times: StageTimes::default(),
        };
        self.log(&mut work, vec![EventKind::MessageIn { text: text.as_str().to_string() }])?;
        if header.taken_over_by.is_some() {
            // A human agent holds the conversation: the assistant stays silent.
            let turn = Turn::default();
            return Ok((turn, work.times));
        }

        if work.channel == Channel::Whatsapp
            && work.state.customer.is_none()
            && let Some(sender) = header.external_id.as_deref()
        {
            // The sender's number identifies the customer; changes still need verification.
            if let Some(customer_id) =
                self.lookup(&mut work, "get_customer_by_phone", json!({"phone_number": sender}))?
            {
                self.bind_customer(&mut work, &customer_id, false, "whatsapp number")?;
            }
        }

        let understanding_started = Instant::now();
        let understanding = self.understand(text.as_str())?;
        work.times.understanding_ms = ms(understanding_started);
        if let Some((name, confidence)) = &understanding.intent {
            work.intent = Some(IntentOut { name: name.clone(), confidence: *confidence });
            self.log(&mut work, vec![EventKind::Intent { name: name.clone(), confidence: *confidence }])?;
        }

        self.handle(&mut work, &understanding)?;
        let turn = self.finish(&mut work)?;
        work.times.total_ms = ms(started);
        tracing::info!(
            conversation_id,
            intent = ?turn.intent.as_ref().map(|i| &i.name),
            awaiting = ?turn.awaiting,
            understanding_ms = work.times.understanding_ms,
            retrieval_ms = work.times.retrieval_ms,
            action_ms = work.times.action_ms,
            generation_ms = work.times.generation_ms,
            total_ms = work.times.total_ms,
            "turn"
        );
        Ok((turn, work.times))
    }

    /// Embeds the message once and derives everything else from it.
    pub fn understand(&self, text: &str) -> anyhow::Result<Understanding> {
        let embedding =
            self.encoder.embed(&[text])?.pop().ok_or_else(|| anyhow::anyhow!("the encoder returned no embedding"))?;
        let entities = self.entities.extract(text);
        let intent = match &self.intents {
            Some(intents) => {
                let mut intent = intents.predict(text, &embedding)?;
                // "whats my balance? customer id C1001": the identity part hides the request.
                if IDENTITY_INTENTS.contains(&intent.0.as_str())
                    && let Some(request) = without_identity(text, &entities)
                {
                    let request_embedding = self.encoder.embed(&[&request])?.pop().unwrap_or_default();
                    let second = intents.predict(&request, &request_embedding)?;
                    if !IDENTITY_INTENTS.contains(&second.0.as_str()) && second.0 != "out_of_scope" {
                        intent = second;
                    }
                }
                let lower = text.to_lowercase();
                let model_is_sure =
                    intent.1 >= 0.6 && !IDENTITY_INTENTS.contains(&intent.0.as_str()) && intent.0 != "out_of_scope";
                if let Some(travel) = travel_intent(&lower).filter(|_| !model_is_sure) {
                    intent = (travel.to_string(), intent.1.max(0.8));
                }
                // "My phone has had NO service all morning. Fix it.": the fault words decide when
                // the model is unsure (angry or chatty openings dilute the sentence embedding).
                let unsure = intent.1 < 0.6
                    || intent.0 == "out_of_scope"
                    || (ACCOUNT_CHANGING.contains(&intent.0.as_str()) && intent.1 < ACCOUNT_CHANGE_CONFIDENCE);
                if unsure && let Some(fault) = fault_intent(&lower) {
                    intent = (fault.to_string(), intent.1.max(0.8));
                }
                if VAGUE_HELP.is_match(lower.trim()) {
                    intent = ("help".to_string(), 1.0);
                }
                if HUMAN_REQUEST.is_match(&lower) {
                    intent = ("human_agent".to_string(), intent.1.max(0.9));
                } else if BIGGER_PLAN.is_match(&lower) {
                    intent = ("change_plan".to_string(), intent.1.max(0.9));
                } else if PRICE_OF_DATA.is_match(&lower) && DATA_QUANTITY.is_match(&lower) {
                    intent = ("refuel_data".to_string(), intent.1.max(0.9));
                }
                Some(intent)
            }
            None => None,
        };
        let yes_no = entities.iter().find_map(|entity| match entity.value {
            EntityValue::YesNo(answer) => Some(answer),
            _ => None,
        });
        let yes_no = yes_no.or(match intent.as_ref().map(|(name, confidence)| (name.as_str(), *confidence)) {
            Some(("affirm", confidence)) if confidence >= 0.5 => Some(true),
            Some(("deny", confidence)) if confidence >= 0.5 => Some(false),
            _ => None,
        });
        let (intent, more_requests) = self.requests_in_clauses(text, intent)?;
        Ok(Understanding {
            more_requests,
            text: text.to_string(),
            embedding,
            intent,
            entities,
            yes_no,
            cancel: CANCEL.is_match(&text.to_lowercase()),
            dont_know: DONT_KNOW.is_match(&text.to_lowercase()),
            question: text.trim_end().ends_with('?') || QUESTION_START.is_match(&text.to_lowercase()),
            gibberish: is_gibberish(text),
        })
    }

    /// The flow intents of a message's clauses, in order, when it asks for several things;
    /// the first becomes the message's intent, the others wait their turn.
    fn requests_in_clauses(
        &self,
        text: &str,
        intent: Option<(String, f32)>,
    ) -> anyhow::Result<(Option<ScoredIntent>, Vec<String>)> {
        let Some(intents) = &self.intents else { return Ok((intent, Vec::new())) };
        let clauses = split_clauses(text);
        if clauses.len() < 2 {
            return Ok((intent, Vec::new()));
        }
        let embeddings = self.encoder.embed(&clauses.iter().map(String::as_str).collect::<Vec<_>>())?;
        let mut found: Vec<(String, f32)> = Vec::new();
        for (clause, embedding) in clauses.iter().zip(&embeddings) {
            let lower = clause.to_lowercase();
            let mut predicted = intents.predict(clause, embedding)?;
            if let Some(travel) = travel_intent(&lower) {
                predicted = (travel.to_string(), predicted.1.max(0.8));
            } else if BIGGER_PLAN.is_match(&lower) || UPGRADE_TO_PLAN.is_match(&lower) {
                predicted = ("change_plan".to_string(), predicted.1.max(0.8));
            }
            let fault = fault_intent(&lower);
            if predicted.1 < 0.6
                && let Some(fault) = fault
            {
                predicted = (fault.to_string(), 0.8);
            }
            let is_flow = self.book.flow_for_intent(&predicted.0).is_some() && predicted.0 != "human_agent";
            // "I have two lines" or "the roaming switch is on" tell, they do not ask: a clause
            // becomes a request of its own when it asks for something or names a fault.
            let asks = fault.is_some() || REQUEST_WORDS.is_match(&lower);
            if is_flow && asks && predicted.1 >= 0.5 && !found.iter().any(|(name, _)| *name == predicted.0) {
                found.push(predicted);
            }
        }
        if found.len() < 2 {
            return Ok((intent, Vec::new()));
        }
        let first = found.remove(0);
        Ok((Some(first), found.into_iter().map(|(name, _)| name).collect()))
    }

    /// Remembers requests to handle after the current one.
    fn queue_requests(&self, work: &mut Work<'_>, requests: &[String]) -> Result<(), EngineError> {
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
    fn start_queued(&self, work: &mut Work<'_>) -> Result<bool, EngineError> {
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

    fn handle(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        if work.state.awaiting.as_deref() == Some("csat")
            && let Some(score) = Engine::parse_csat(&u.text)
        {
            self.log(work, vec![EventKind::Csat { score }])?;
            return self.say(work, "csat_thanks");
        }
        if work.state.handed_off && work.state.stack.is_empty() {
            self.say(work, "agent_is_handling")?;
            return Ok(());
        }
        let active = !work.state.stack.is_empty() || work.state.pending.is_some();
        if u.cancel && active && !matches!(u.yes_no, Some(true)) && self.slot_values_for_flow(work, u).is_empty() {
            return self.cancel_all(work);
        }
        let awaiting = work.state.awaiting.clone();
        if let Some(pending) = work.state.pending.clone() {
            return self.on_confirmation(work, u, pending);
        }
        match awaiting.as_deref() {
            Some(slot @ ("phone_number" | "customer_id" | "full_name" | "date_of_birth")) if active => {
                return self.on_identity_answer(work, u, slot);
            }
            Some("line") if active => return self.on_line_answer(work, u),
            Some(device_step) if active && device_step.starts_with("device:") => {
                return self.on_device_answer(work, u, &device_step["device:".len()..]);
            }
            Some(slot) if active => {
                if let Some((node_id, node_slot)) = self.current_ask(work)
                    && node_slot == slot
                {
                    return self.on_slot_answer(work, u, &node_id, slot);
                }
            }
            _ => {}
        }
        self.on_free_message(work, u)
    }

    // ------------------------------------------------------------------ answers to questions

    fn on_confirmation(
        &self,
        work: &mut Work<'_>,
        u: &Understanding,
        pending: super::state::PendingConfirmation,
    ) -> Result<(), EngineError> {
        let corrections = self.slot_values_for_flow(work, u);
        match u.yes_no {
            Some(true) if corrections.is_empty() => {
                self.log(work, vec![EventKind::ConfirmationGiven { action: pending.action.clone(), accepted: true }])?;
                if pending.action == "transfer_to_human_agents" {
                    return self.hand_off(
                        work,
                        "the customer asked for a person after repeated misunderstandings",
                        "transferring",
                    );
                }
                let outcome =
                    self.run_action(work, &pending.action, pending.args.clone(), Some(pending.token.clone()))?;
                self.drive(work, Step::Advance(Some(outcome)))
            }
            _ if !corrections.is_empty() => {
                // "No, 1 GB not 2": change the slot and confirm again.
                self.log(work, vec![EventKind::ConfirmationGiven { action: pending.action.clone(), accepted: false }])?;
                let first_slot = corrections[0].0.clone();
                self.fill_slots(work, corrections)?;
                match self.ask_node_for(work, &first_slot) {
                    Some(node_id) => self.drive(work, Step::Enter(node_id)),
                    None => self.drive(work, Step::Advance(Some("declined".into()))),
                }
            }
            Some(false) => {
                self.log(work, vec![EventKind::ConfirmationGiven { action: pending.action.clone(), accepted: false }])?;
                if work.state.stack.is_empty() {
                    self.say(work, "anything_else")?;
                    return Ok(());
                }
                self.drive(work, Step::Advance(Some("declined".into())))
            }
            _ => {
                if u.question && !u.gibberish {
                    self.answer_from_knowledge(work, u)?;
                } else {
                    self.not_understood(work, u, false)?;
                }
                self.repeat_question(work)
            }
        }
    }

    fn on_identity_answer(&self, work: &mut Work<'_>, u: &Understanding, slot: &str) -> Result<(), EngineError> {
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

    fn on_line_answer(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        let facts = self.facts(work);
        let lines = facts.lines();
        let chosen = u.values().find_map(|value| match value {
            EntityValue::PhoneNumber(number) => {
                lines.iter().find(|line| same_phone(line.phone_number.as_str(), number)).map(|l| l.line_id.to_string())
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
    fn likely_line(&self, work: &Work<'_>) -> Option<String> {
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

    fn on_device_answer(&self, work: &mut Work<'_>, u: &Understanding, tool: &str) -> Result<(), EngineError> {
        let field = self.current_node(work).and_then(|node| node.field.clone());
        let mut outcome = device::read(tool, field.as_deref(), &u.text);
        if outcome == device::UNCLEAR && is_device_check(tool) && u.question && !u.dont_know {
            // A question about the step ("where do I find that?"): answer it and ask again.
            self.answer_from_knowledge(work, u)?;
            return self.repeat_question(work);
        }
        if outcome == device::UNCLEAR && !u.dont_know && u.gibberish {
            self.not_understood(work, u, false)?;
            return self.repeat_question(work);
        }
        if outcome == device::UNCLEAR {
            outcome = "unclear";
        }
        self.log(
            work,
            vec![EventKind::DeviceReport {
                tool: tool.to_string(),
                outcome: outcome.to_string(),
                answer: u.text.chars().take(2000).collect(),
            }],
        )?;
        self.drive(work, Step::Advance(Some(outcome.to_string())))
    }

    fn on_slot_answer(
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

    /// A question about something ("what's the difference between ...?") rather than an answer.
    fn is_digression(&self, u: &Understanding) -> bool {
        if !u.question || u.gibberish || u.dont_know {
            return false;
        }
        let n_plans = u.values().filter(|value| matches!(value, EntityValue::Plan { .. })).count();
        let asks_for_information = u.confident_intent().is_some_and(|intent| INFO_INTENTS.contains(&intent));
        n_plans >= 2 || asks_for_information
    }

    /// A message that answers nothing pending: a new request, a question, small talk.
    fn on_free_message(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        if u.gibberish {
            return self.not_understood(work, u, true);
        }
        let intent = u.confident_intent().map(str::to_string);
        // Identification given unasked ("my number is ...") is kept for later.
        for (slot, value) in self.identity_values(u) {
            if work.state.globals.get(&slot) != Some(&value) {
                self.log(work, vec![EventKind::SlotSet { flow: GLOBAL.into(), slot, value }])?;
            }
        }
        let mentions_a_plan = u.values().any(|value| matches!(value, EntityValue::Plan { .. }));
        // "Which plan is the cheapest?": the catalogue document answers that in a sentence
        // (the plan list answers "what plans do you have?").
        if matches!(intent.as_deref(), Some("plan_info" | "compare_plans"))
            && u.question
            && PLAN_SUPERLATIVE.is_match(&u.text.to_lowercase())
            && self.answer_from_knowledge(work, u)?
        {
            return Ok(());
        }
        let intent = match intent.as_deref() {
            // "What plans do you have?": the catalogue answers it best.
            Some("plan_info") if !mentions_a_plan => Some("compare_plans".to_string()),
            _ => intent,
        };
        if let Some(intent) = intent.as_deref() {
            if let Some(flow) = self.book.flow_for_intent(intent) {
                // "How do I get a new SIM?" asks how it works: the documents answer that, while
                // "I need a new SIM" goes to the person who can do it.
                // So does "What is the late fee?", asked about no account in particular.
                let lower = u.text.to_lowercase();
                let impersonal = !FIRST_PERSON.is_match(&lower);
                if (flow.nodes.iter().all(|node| node.handoff) || impersonal)
                    && HOW_IT_WORKS_QUESTION.is_match(&lower)
                    && self.answer_from_knowledge(work, u)?
                {
                    return Ok(());
                }
                if !work.state.stack.is_empty() {
                    self.end_all(work, EndOutcome::Cancelled)?;
                }
                let flow_name = flow.name.clone();
                self.start_flow(work, &flow_name, u)?;
                self.queue_requests(work, &u.more_requests)?;
                return self.drive(work, Step::Start);
            }
            if SMALL_TALK.contains(&intent) && !u.question {
                let template = if intent == "chitchat" { "chit_chat" } else { intent };
                return self.say(work, template);
            }
            if matches!(intent, "affirm" | "deny") && !u.question {
                return self.say(work, if intent == "deny" { "goodbye" } else { "anything_else" });
            }
        }
        if matches!(intent.as_deref(), Some("give_phone_number" | "give_customer_id" | "give_name_and_dob"))
            && work.state.stack.is_empty()
        {
            return self.say(work, "greeting");
        }
        if !work.state.stack.is_empty() {
            // Mid-flow but nothing was asked (should not happen): carry on.
            return self.drive(work, Step::Start);
        }
        self.answer_or_fallback(work, u)
    }

    // ------------------------------------------------------------------ the flow machine

    fn start_flow(&self, work: &mut Work<'_>, flow_name: &str, u: &Understanding) -> Result<(), EngineError> {
        self.log(work, vec![EventKind::FlowStarted { flow: flow_name.to_string() }])?;
        let mut values = self.slot_values_for_flow(work, u);
        // "No data since I landed in Lisbon": where the customer is, told up front.
        let asks_location = self
            .book
            .flow(flow_name)
            .is_some_and(|flow| flow.nodes.iter().any(|node| node.ask.as_deref() == Some("location")));
        if asks_location && super::facts::is_abroad(&u.text) {
            values.push(("location".to_string(), json!(u.text.clone())));
        }
        self.fill_slots(work, values)
    }

    fn drive(&self, work: &mut Work<'_>, mut step: Step) -> Result<(), EngineError> {
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
    fn enter(&self, work: &mut Work<'_>, flow: &Flow, node_id: &str) -> Result<Option<Step>, EngineError> {
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
                                work.extra.insert(format!("preview_{name}"), text);
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
    fn end_flow(&self, work: &mut Work<'_>, outcome: EndOutcome) -> Result<Option<Step>, EngineError> {
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

    fn end_all(&self, work: &mut Work<'_>, outcome: EndOutcome) -> Result<(), EngineError> {
        while let Some(frame) = work.state.frame().cloned() {
            self.log(work, vec![EventKind::FlowEnded { flow: frame.flow, outcome: outcome.as_str().into() }])?;
        }
        if work.state.pending.is_some() {
            let action = work.state.pending.as_ref().map(|p| p.action.clone()).unwrap_or_default();
            self.log(work, vec![EventKind::ConfirmationGiven { action, accepted: false }])?;
        }
        Ok(())
    }

    fn cancel_all(&self, work: &mut Work<'_>) -> Result<(), EngineError> {
        self.end_all(work, EndOutcome::Cancelled)?;
        self.say(work, "cancelled")
    }

    /// Makes sure the flow's needs are met; `false` when the turn now waits for the customer.
    fn ensure_needs(&self, work: &mut Work<'_>, flow: &Flow) -> Result<bool, EngineError> {
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
    fn ensure_customer(&self, work: &mut Work<'_>) -> Result<bool, EngineError> {
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
    fn ensure_verified(&self, work: &mut Work<'_>) -> Result<bool, EngineError> {
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
    fn ensure_line(&self, work: &mut Work<'_>, flow: &Flow) -> Result<bool, EngineError> {
        let facts = self.facts(work);
        let lines = facts.lines();
        let current = facts.line();
        if current.as_ref().is_some_and(|line| lines.iter().any(|l| l.line_id == line.line_id)) {
            return Ok(true);
        }
        let given_phone = work.state.global("phone_number").map(str::to_string);
        let by_phone = given_phone
            .as_deref()
            .and_then(|phone| lines.iter().find(|line| same_phone(line.phone_number.as_str(), phone)));
        let contact_number = self.facts(work).customer().map(|c| c.phone_number.to_string());
        if let Some(phone) = &given_phone
            && by_phone.is_none()
            && !contact_number.as_deref().is_some_and(|contact| same_phone(contact, phone))
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
            self.say(work, "lines_list")?;
            self.end_all(work, EndOutcome::Failed)?;
            return Ok(false);
        }
        self.say(work, "ask_line")?;
        work.awaiting = Some("line".into());
        Ok(false)
    }

    fn bind_customer(
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
    fn lookup(&self, work: &mut Work<'_>, action: &str, args: Value) -> Result<Option<String>, EngineError> {
        let outcome = self.run_action(work, action, args, None)?;
        if outcome != "done" {
            return Ok(None);
        }
        let found = work.extra.remove("_last_output").and_then(|output| serde_json::from_str::<Value>(&output).ok());
        Ok(found.and_then(|output| find_customer_id(&output)))
    }

    /// Runs an account action for this conversation's customer; logs it; returns `done` or `refused`.
    fn run_action(
        &self,
        work: &mut Work<'_>,
        action: &str,
        args: Value,
        token: Option<String>,
    ) -> Result<String, EngineError> {
        let started = Instant::now();
        let actor = self.actor(work)?;
        let actor_label = match &actor {
            Actor::Customer { customer_id, .. } => format!("customer:{customer_id}"),
            Actor::Agent { name } => format!("agent:{name}"),
            Actor::System => "system".to_string(),
        };
        self.log(
            work,
            vec![EventKind::ActionRequested { action: action.to_string(), args: args.clone(), actor: actor_label }],
        )?;
        let request = ActionRequest::parse(action, args.clone());
        let result = request.and_then(|request| {
            let mut call = accounts::ActionCall::new(request, actor);
            if request_is_write(action) {
                let key =
                    token.clone().unwrap_or_else(|| format!("{}-{}", work.conversation_id, work.state.n_messages));
                let key = IdempotencyKey::parse(format!("conv-{key}")).map_err(|error| {
                    accounts::Error::InvalidArguments { action: action.to_string(), why: error.to_string() }
                })?;
                call = call.with_idempotency_key(key);
            }
            if let Some(token) = &token {
                call = call.with_confirmation(ConfirmationToken::from_text(token.clone()));
            }
            self.registry.run_blocking(call)
        });
        work.times.action_ms += ms(started);
        match result {
            Ok(outcome) => {
                let output = outcome.output.to_json();
                work.extra.insert("_last_output".into(), output.to_string());
                work.actions.push(ActionOut { name: action.to_string(), args: args.clone(), status: "done".into() });
                self.log(work, vec![EventKind::ActionDone { action: action.to_string(), args, result: output }])?;
                Ok("done".into())
            }
            Err(error) => {
                let (code, message) = match &error {
                    accounts::Error::Refused(refusal) => (refusal.code().to_string(), refusal.customer_message()),
                    other => ("error".to_string(), other.to_string()),
                };
                tracing::info!(action, code, %message, "action refused");
                work.actions.push(ActionOut { name: action.to_string(), args: args.clone(), status: "refused".into() });
                self.log(
                    work,
                    vec![EventKind::ActionRefused {
                        action: action.to_string(),
                        args,
                        code: code.clone(),
                        reason: message.clone(),
                    }],
                )?;
                if !action.starts_with("get_customer") {
                    work.extra.insert("refusal".into(), message);
                    self.say(work, "refused")?;
                }
                Ok("refused".into())
            }
        }
    }

    /// Who acts: the verified customer of the conversation, else Switchboard itself (look-ups).
    fn actor(&self, work: &Work<'_>) -> Result<Actor, EngineError> {
        Ok(match &work.state.customer {
            Some(customer) if customer.verified => match CustomerId::parse(customer.customer_id.clone()) {
                Ok(id) => Actor::customer(id, conversation_id(work)?),
                Err(_) => Actor::System,
            },
            _ => Actor::System,
        })
    }

    fn hand_off(&self, work: &mut Work<'_>, reason: &str, template: &str) -> Result<(), EngineError> {
        let summary = self.handoff_summary(work);
        let mut args = json!({"summary": summary});
        if let Some(customer) = &work.state.customer {
            args["customer_id"] = json!(customer.customer_id);
        }
        let _ = self.run_action(work, "transfer_to_human_agents", args, None)?;
        self.end_all(work, EndOutcome::Failed)?;
        self.log(work, vec![EventKind::Handoff { reason: reason.to_string(), summary: Some(summary) }])?;
        work.handoff = true;
        self.say(work, template)
    }

    /// A short summary of the conversation from its log, for the human agent.
    fn handoff_summary(&self, work: &Work<'_>) -> String {
        let events = self.conversations.events(work.conversation_id).unwrap_or_default();
        super::summary::summarise(&events, work.state.customer.as_ref().map(|c| c.customer_id.as_str()))
    }

    // ------------------------------------------------------------------ replies

    fn answer_or_fallback(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        let after_anything_else =
            work.state.last_reply.as_deref().is_some_and(|reply| {
                self.replies.raw("anything_else").is_some_and(|question| reply.ends_with(question))
            });
        if after_anything_else {
            // The request is done: answer a real question, else close politely.
            if u.question && self.answer_from_knowledge(work, u)? {
                return Ok(());
            }
            return self.say(work, "closing");
        }
        if self.answer_from_knowledge(work, u)? {
            return Ok(());
        }
        self.not_understood(work, u, true)
    }

    /// Answers from the knowledge base; `false` when nothing relevant was found.
    fn answer_from_knowledge(&self, work: &mut Work<'_>, u: &Understanding) -> Result<bool, EngineError> {
        self.answer_text(work, &u.text, &u.embedding)
    }

    /// Answers a question sentence that came with an answer ("Does it roll over? Anyway, 1 GB").
    fn answer_side_question(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
        let sentences = super::guardrail::split_sentences(&u.text);
        if sentences.len() < 2 {
            return Ok(());
        }
        let question = sentences.iter().find(|s| s.ends_with('?') && s.split_whitespace().count() >= 3);
        if let Some(question) = question {
            let embedding = self.encoder.embed(&[question])?.pop().unwrap_or_default();
            self.answer_text(work, question, &embedding)?;
        }
        Ok(())
    }

    fn answer_text(&self, work: &mut Work<'_>, text: &str, embedding: &[f32]) -> Result<bool, EngineError> {
        let started = Instant::now();
        let passages: Vec<Passage> = self.knowledge.retrieve(text, embedding, self.settings.top_k)?;
        work.times.retrieval_ms += ms(started);
        let relevant =
            passages.first().is_some_and(|p| p.vector_similarity.unwrap_or(1.0) >= self.settings.min_similarity);
        if !relevant {
            return Ok(false);
        }
        let generation_started = Instant::now();
        let conversation_id = work.conversation_id.to_string();
        let sink = work.sink;
        let mut on_token = |token: &str| sink.token(&conversation_id, token);
        let account_evidence = self.account_evidence(work);
        let answer = self.answerer.answer(
            self.encoder.as_ref(),
            self.chat.as_deref(),
            text,
            embedding,
            &passages,
            &account_evidence,
            &self.plan_names,
            self.settings.max_new_tokens,
            &mut on_token,
        )?;
        work.times.generation_ms += ms(generation_started);
        if answer.text.is_empty() {
            return Ok(false);
        }
        work.parts.push(answer.text);
        for idx in answer.used_passages {
            if let Some(passage) = passages.get(idx) {
                work.sources.push(SourceOut {
                    document: passage.document.clone(),
                    section: passage.section.clone(),
                    score: passage.score,
                });
            }
        }
        Ok(true)
    }

    /// Names the knowledge document that backs a reply built from the account system's facts
    /// (the plan catalogue), so the customer sees where the numbers are written down.
    fn cite(&self, work: &mut Work<'_>, query: &str) -> Result<(), EngineError> {
        let started = Instant::now();
        let embedding = self.encoder.embed(&[query])?.pop().unwrap_or_default();
        let passages = self.knowledge.retrieve(query, &embedding, 1)?;
        work.times.retrieval_ms += ms(started);
        if let Some(passage) = passages.first() {
            work.sources.push(SourceOut {
                document: passage.document.clone(),
                section: passage.section.clone(),
                score: passage.score,
            });
        }
        Ok(())
    }

    /// The customer's account facts a generated answer may state.
    fn account_evidence(&self, work: &Work<'_>) -> Vec<String> {
        let facts = self.facts(work);
        ["plan_name", "plan_price", "data_used_gb", "data_limit_gb", "line_phone", "balance_bills", "plans_list"]
            .iter()
            .filter_map(|name| facts.fact(name))
            .collect()
    }

    fn not_understood(&self, work: &mut Work<'_>, u: &Understanding, say_fallback: bool) -> Result<(), EngineError> {
        self.log(work, vec![EventKind::NotUnderstood { text: u.text.chars().take(200).collect() }])?;
        if work.state.failed_understandings >= 4 {
            // Still nothing understood after the offer: a person is the better help.
            return self.hand_off(work, "the assistant could not understand the customer", "transferring");
        }
        if work.state.failed_understandings >= 2 {
            let token = format!("offer-human-{}-{}", work.conversation_id, work.state.n_messages);
            self.log(
                work,
                vec![EventKind::ConfirmationAsked {
                    action: "transfer_to_human_agents".into(),
                    args: json!({}),
                    token,
                }],
            )?;
            self.say(work, "fallback_offer_human")?;
            work.awaiting = Some("confirmation".into());
            work.pending_action = Some(ActionCall { name: "transfer_to_human_agents".into(), args: json!({}) });
            return Ok(());
        }
        if say_fallback {
            self.say(work, if u.gibberish { "gibberish" } else { "fallback" })?;
        }
        Ok(())
    }

    /// Asks again what the conversation was waiting for.
    fn repeat_question(&self, work: &mut Work<'_>) -> Result<(), EngineError> {
        if work.awaiting.is_some() {
            return Ok(()); // the fallback already asked (for a human)
        }
        let awaiting = work.state.awaiting.clone();
        let last_question = self.last_question(work);
        if let Some(question) = last_question {
            work.parts.push(question);
        }
        work.awaiting = awaiting;
        if work.awaiting.as_deref() == Some("confirmation")
            && let Some(pending) = &work.state.pending
        {
            work.pending_action = Some(ActionCall { name: pending.action.clone(), args: pending.args.clone() });
        }
        Ok(())
    }

    /// The question of the assistant's last reply (its last sentence ending in `?`, else all of it).
    fn last_question(&self, work: &Work<'_>) -> Option<String> {
        let last = work.state.last_reply.clone()?;
        let sentences = super::guardrail::split_sentences(&last);
        let question = sentences.iter().rev().find(|s| s.ends_with('?')).cloned();
        Some(question.unwrap_or(last))
    }

    /// Gives up the active flows when the same question was asked too often.
    fn give_up_if_stuck(&self, work: &mut Work<'_>, key: &str) -> Result<(), EngineError> {
        let count = work.state.globals.get(key).and_then(Value::as_u64).unwrap_or(0) + 1;
        self.log(work, vec![EventKind::SlotSet { flow: GLOBAL.into(), slot: key.into(), value: json!(count) }])?;
        if count > u64::from(MAX_ASKS) {
            work.parts.clear();
            work.awaiting = None;
            self.end_all(work, EndOutcome::Failed)?;
            self.say(work, if key == "__line" { "line_not_identified" } else { "identification_failed" })?;
        }
        Ok(())
    }

    pub(super) fn say(&self, work: &mut Work<'_>, template: &str) -> Result<(), EngineError> {
        if template == "plans_compared" {
            self.cite(work, CATALOGUE_QUERY)?;
        }
        let facts = self.facts(work);
        let text = match self.replies.render(template, &|name| facts.fact(name)) {
            Ok(text) => text,
            Err(error) => {
                // A fact missing here is a flow bug; the customer gets a safe sentence instead.
                tracing::error!(%error, template, "reply template could not be filled");
                self.replies.render("flow_gave_up", &|name| facts.fact(name)).map_err(|error| anyhow::anyhow!(error))?
            }
        };
        if !text.trim().is_empty() {
            work.parts.push(text.trim().to_string());
        }
        Ok(())
    }

    fn finish(&self, work: &mut Work<'_>) -> Result<Turn, EngineError> {
        if work.parts.is_empty() {
            self.say(work, "anything_else")?;
        }
        let reply = work.parts.join(" ");
        let mut sources = std::mem::take(&mut work.sources);
        sources.dedup_by(|a, b| a.document == b.document && a.section == b.section);
        let turn = Turn {
            reply: reply.clone(),
            intent: work.intent.clone(),
            awaiting: work.awaiting.clone(),
            pending_action: if work.awaiting.as_deref() == Some("confirmation") {
                work.pending_action.clone()
            } else {
                None
            },
            sources,
            actions: std::mem::take(&mut work.actions),
            handoff: work.handoff,
        };
        let turn_json = serde_json::to_value(&turn).unwrap_or(Value::Null);
        self.log(work, vec![EventKind::Reply { text: reply, turn: turn_json }])?;
        Ok(turn)
    }

    // ------------------------------------------------------------------ helpers

    pub(super) fn log(&self, work: &mut Work<'_>, kinds: Vec<EventKind>) -> Result<(), EngineError> {
        for kind in &kinds {
            work.state.apply(kind);
        }
        self.conversations.append(work.conversation_id, kinds)?;
        Ok(())
    }

    fn facts<'w>(&'w self, work: &'w Work<'_>) -> FactContext<'w> {
        FactContext {
            store: self.registry.store(),
            today: self.registry.today(),
            state: &work.state,
            operator_name: &self.settings.operator_name,
            extra: &work.extra,
        }
    }

    fn current_node(&self, work: &Work<'_>) -> Option<Node> {
        let frame = work.state.frame()?;
        let flow = self.book.flow(&frame.flow)?;
        flow.node(frame.node.as_deref()?).map(|(_, node)| node.clone())
    }

    fn current_ask(&self, work: &Work<'_>) -> Option<(String, String)> {
        let node = self.current_node(work)?;
        node.ask.clone().map(|slot| (node.id.clone(), slot))
    }

    /// The ask node of a slot in the top flow.
    fn ask_node_for(&self, work: &Work<'_>, slot: &str) -> Option<String> {
        let flow = self.book.flow(&work.state.frame()?.flow)?;
        flow.nodes.iter().find(|node| node.ask.as_deref() == Some(slot)).map(|node| node.id.clone())
    }

    fn fill_slots(&self, work: &mut Work<'_>, fills: Vec<(String, Value)>) -> Result<(), EngineError> {
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
    fn slot_values_for_flow(&self, work: &Work<'_>, u: &Understanding) -> Vec<(String, Value)> {
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
    fn value_for_slot(&self, work: &Work<'_>, u: &Understanding, slot: &str) -> Option<Value> {
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

    fn entity_for_slot(&self, work: &Work<'_>, u: &Understanding, slot: &str) -> Option<Value> {
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

    /// Identifying values in the message (phone number, customer id, name, date of birth).
    fn identity_values(&self, u: &Understanding) -> Vec<(String, Value)> {
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

    fn build_args(&self, work: &Work<'_>, node: &Node) -> Result<Value, EngineError> {
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

/// One of several values for a slot in a message: the first, unless the customer corrects
/// themselves ("2 GB... sorry, no, 1 GB, not 2"): then the last one not preceded by "not".
fn choose_value(text: &str, candidates: Vec<(usize, Value)>) -> Option<Value> {
    if candidates.len() <= 1 {
        return candidates.into_iter().next().map(|(_, value)| value);
    }
    let lower = text.to_lowercase();
    if !CORRECTION.is_match(&lower) {
        return candidates.into_iter().next().map(|(_, value)| value);
    }
    let negated = |start: usize| {
        let before = lower[..start.min(lower.len())].trim_end();
        before.ends_with(" not") || before.ends_with("instead of") || before.ends_with("rather than")
    };
    let last = candidates.last().map(|(_, value)| value.clone());
    candidates.into_iter().rev().find(|(start, _)| !negated(*start)).map(|(_, value)| value).or(last)
}

static CORRECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(no|not|sorry|actually|i mean|make (it|that)|instead|rather|wait|change (it|that) to)\b").unwrap()
});

/// The next node after `current` for `outcome`.
fn next_node(flow: &Flow, current: &str, outcome: Option<&str>) -> Option<String> {
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

fn conversation_id(work: &Work<'_>) -> Result<ConversationId, EngineError> {
    ConversationId::parse(work.conversation_id.to_string())
        .map_err(|error| EngineError::Internal(anyhow::anyhow!("conversation id: {error}")))
}

fn request_is_write(action: &str) -> bool {
    action.parse::<accounts::ActionName>().map(|name| name.kind().is_write()).unwrap_or(false)
}

/// The customer id in a look-up's output (a customer, or a list with one customer).
fn find_customer_id(output: &Value) -> Option<String> {
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

fn same_phone(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(a), digits(b));
    !a.is_empty() && (a == b || (a.len() >= 10 && b.len() >= 10 && a[a.len() - 10..] == b[b.len() - 10..]))
}

fn is_gibberish(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters == 0 {
        return !text.chars().any(|c| c.is_ascii_digit());
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let vowel_less = words
        .iter()
        .filter(|word| word.chars().filter(|c| c.is_alphabetic()).count() >= 4)
        .filter(|word| !word.to_lowercase().chars().any(|c| "aeiouy".contains(c)))
        .count();
    words.len() <= 3 && vowel_less == words.len() && !words.is_empty()
}

/// Intents that only give identifying details.
const IDENTITY_INTENTS: &[&str] = &["give_phone_number", "give_customer_id", "give_name_and_dob"];

/// The message without its identifying details ("my number is ..."), when a request remains.
fn without_identity(text: &str, entities: &[Entity]) -> Option<String> {
    let mut kept = String::new();
    let mut last = 0;
    for entity in entities {
        if matches!(
            entity.value,
            EntityValue::PhoneNumber(_)
                | EntityValue::Id { .. }
                | EntityValue::DateOfBirth(_)
                | EntityValue::FullName(_)
        ) {
            kept.push_str(&text[last..entity.start]);
            last = entity.end;
        }
    }
    kept.push_str(&text[last..]);
    let cleaned = IDENTITY_WORDS.replace_all(&kept, " ");
    let words: Vec<&str> = cleaned.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).collect();
    (words.len() >= 2 && last > 0).then(|| words.join(" "))
}

static IDENTITY_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(my (phone )?(number|no\.?) is|phone( number)?|customer (id|number)|account (id|number)|it'?s|this is|for my number|for number|on number|(my )?number)\b").unwrap()
});
static HUMAN_REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(real|actual|live) (person|human|agent)|\b(speak|talk|chat) (to|with) (a |an |someone|somebody|a real |an actual )?(human|person|agent|representative|operator|someone|somebody)|human agent|customer service rep|representative please|transfer me").unwrap()
});
/// Which request a mention of travel makes: a trip ahead asks for roaming; being abroad
/// without data is a data problem.
fn travel_intent(lower: &str) -> Option<&'static str> {
    if !(super::facts::is_abroad(lower) || TRAVEL_WORDS.is_match(lower)) {
        return None;
    }
    if DATA_TROUBLE.is_match(lower) {
        Some("mobile_data_issue")
    } else if TRIP_AHEAD.is_match(lower) {
        Some("enable_roaming")
    } else {
        None
    }
}

/// The clauses of a message that may carry separate requests.
fn split_clauses(text: &str) -> Vec<String> {
    let mut clauses = Vec::new();
    for sentence in super::guardrail::split_sentences(text) {
        for part in CLAUSE_BREAK.split(&sentence) {
            let part = part.trim().trim_matches(|c: char| c == ',' || c == ':' || c == ';').trim();
            if part.split_whitespace().count() >= 3 {
                clauses.push(part.to_string());
            }
        }
    }
    clauses
}

static CLAUSE_BREAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:and then|oh and|and also|also|after that|once (?:that'?s|thats|that is) (?:sorted|done|fixed)|two things)\b|, and ").unwrap()
});
static TRAVEL_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(abroad|overseas|travel(l)?ing|trip|vacation|holiday|landed|arrived|flying|flight)\b").unwrap()
});
static TRIP_AHEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(going to|next (week|month)|travel(l)?ing to|trip to|before (i|we) (leave|go|fly)|will be in|heading to|flying to|on (monday|tuesday|wednesday|thursday|friday|saturday|sunday)|work (over )?there|roaming)\b").unwrap()
});
static DATA_TROUBLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(can'?t|cannot|can not|unable to) (get online|connect|load|browse|use (my )?data)|no (internet|data|connection)|(data|internet)('s| is)? (not working|dead|down|doesn'?t work|does not work|isn'?t working|stopped)|(doesn'?t|does not|isn'?t|won'?t) (work|load|connect)").unwrap()
});
/// "help", "I need help", "hello?" — a request without a subject.
static VAGUE_HELP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(help|help me|help please|please help|i need help|need help|can you help( me)?|i have a problem|problem|support|assist me)[.!?]*$").unwrap()
});
/// "upgrade this line to Unlimited Plus".
static UPGRADE_TO_PLAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(upgrade|switch|move|change)\b.*\bto (the )?(unlimited|premium|basic|family|iot)").unwrap()
});

/// "I'd rather move to a bigger plan", "upgrade to a plan with more data".
static BIGGER_PLAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(bigger|larger|higher|better|more data) plan|plan with more (data|gb|gigs)|upgrade (my |the )?plan|(change|switch|move) (to )?(a |my )?(different|new|another|other|bigger|better) plan").unwrap()
});
/// "2 GB", "2 more GB", "1.5 extra gigs".
static DATA_QUANTITY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d+(?:\.\d+)?)\s*(?:more\s+|extra\s+)?(?:gb|gigs?|gigabytes?)\b").unwrap());
/// "How much would 2 more GB cost?"
static PRICE_OF_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(cost|price|how much|charge)\b.*\b(more|extra|add|top|buy|get|refuel)\b|\b(more|extra|add|top|buy|get|refuel)\b.*\b(cost|price|how much|charge)\b").unwrap()
});
static CANCEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(cancel (that|it|this)|cancel$|never ?mind|forget (it|that|about it)|changed my mind|stop (that|this|it)|don'?t do (it|that|this)|actually,? (cancel|stop)|scratch that)\b").unwrap()
});
static DONT_KNOW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(i )?(don'?t|do not|dont) (know|remember|have (it|that|one))|not sure|no idea|can'?t remember|cannot remember|unknown|i forgot\b").unwrap()
});
/// Words that make a clause a request ("can you", "I need", "please", "turn off").
static REQUEST_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(want|wanna|need|needs|please|pls|can you|could you|would you|would like|i'?d like|let me|help me|how (do|can) i|how much|what('?s| is| are)|turn (on|off)|switch (on|off)|cancel|pay|add|top up|topup|change|upgrade|downgrade|suspend|pause|resume|reactivate|enable|disable|activate|deactivate|transfer|refuel|replace|dispute|check|tell me|explain|also)\b",
    )
    .unwrap()
});

/// The troubleshooting intent named by a message's fault words, if any.
fn fault_intent(lower: &str) -> Option<&'static str> {
    if MMS_FAULT.is_match(lower) {
        Some("mms_issue")
    } else if NO_SERVICE_FAULT.is_match(lower) {
        Some("no_service")
    } else if DATA_FAULT.is_match(lower) {
        Some("mobile_data_issue")
    } else {
        None
    }
}

static NO_SERVICE_FAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(no|without|zero|lost|losing|lose|without any) (phone |mobile |cell |cellular )?(service|signal|network|bars|reception|coverage)\b|\bcan'?t (make|place|receive|get) (any )?(phone )?calls\b|\bemergency calls only\b|\bsos only\b",
    )
    .unwrap()
});
static DATA_FAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(internet|mobile data|data|4g|5g|lte|web ?sites?|browsing)\b[^.?!]{0,40}\b(dead|not working|isn'?t working|doesn'?t work|don'?t work|stopped|is down|gone|won'?t (load|open|work)|not (load|open)\w*|slow|crawling)\b|\bno (internet|mobile data|data connection)\b|\b(don'?t|doesn'?t|do not|does not) have (any )?(internet|data)\b",
    )
    .unwrap()
});
static MMS_FAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(mms|picture messages?|photo messages?|multimedia messages?)\b|\bcan'?t send (a |any )?(photos?|pictures?|images?|videos?)\b|\b(photos?|pictures?|images?) (won'?t|will not|doesn'?t|don'?t) send\b",
    )
    .unwrap()
});

/// "Which plan is the cheapest?": the catalogue document has that answer in a sentence.
static PLAN_SUPERLATIVE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(cheapest|least expensive|most affordable|lowest price)\b").unwrap());

/// Words by which a message is about the customer's own account or phone ("us" is left out: it
/// is as often the country).
static FIRST_PERSON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(i|i'm|im|i've|i'd|i'll|me|my|mine|we|our)\b").unwrap());

/// A question about how something works or what it costs, rather than a request to do it.
static HOW_IT_WORKS_QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(how (do|does|can|would|long|much)|what (is|are|does|do|happens)|where|when|why|which|is there|are there|does|do you)\b").unwrap()
});
static QUESTION_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(what|how|why|when|where|which|who|is|are|can|could|do|does|will|would|should)\b").unwrap()
});
static BARE_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\d+(?:\.\d+)?)").unwrap());

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
