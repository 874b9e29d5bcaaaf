//! The turn loop: understand the message, feed it to what the conversation was waiting for
//! (a slot, a yes/no, a phone check), then run the active flow until it needs the customer
//! again. Everything that happens is appended to the conversation's event log as it happens.
//!
//! The jobs of a turn live in files of their own: [`understanding`] (and its keyword
//! [`rules`]), the [`flow`] interpreter, [`identity`] and line binding, [`slots`], knowledge
//! [`answers`] and account [`actions`].

mod actions;
mod answers;
mod flow;
mod identity;
mod proof;
mod rules;
mod slots;
mod understanding;

pub use understanding::Understanding;

use self::answers::CATALOGUE_QUERY;
use self::rules::{FIRST_PERSON, HOW_IT_WORKS_QUESTION, PLAN_SUPERLATIVE};
use crate::conversations::{Channel, Event, EventKind};
use crate::dialogue::facts::FactContext;
use crate::dialogue::state::{GLOBAL, State, is_device_check};
use crate::dialogue::{
    ActionCall, ActionOut, CustomerText, Engine, EngineError, IntentOut, SourceOut, StageTimes, TokenSink, Turn, device,
};
use inference::entities::EntityValue;
use prompts::EndOutcome;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// Intents that never start a flow but shape the conversation.
const SMALL_TALK: &[&str] = &["greeting", "thanks", "goodbye", "chitchat"];

/// Times one question may be asked in a flow (asked again once after a wrong answer).
const MAX_ASKS: u32 = 2;

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
    /// Events of this turn not yet in the log: a turn's events are appended together, in one
    /// transaction, when it ends (or fails), not one write per step.
    pending: Vec<EventKind>,
    /// The log as the turn found it, then with the turn's events once appended.
    log: Vec<Event>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl Engine {
    /// A turn, and the conversation's log after it (as the turn found it, plus what it
    /// appended).
    pub(super) fn run_turn(
        &self,
        conversation_id: &str,
        text: &CustomerText,
        sink: &dyn TokenSink,
    ) -> Result<(Turn, StageTimes, Vec<Event>), EngineError> {
        let started = Instant::now();
        let header = self.conversations.get(conversation_id)?;
        let mut work = self.work(conversation_id, header.channel, sink)?;
        let outcome = self.turn_steps(&mut work, &header, text);
        // What the turn did is logged even when it failed half-way (the message at least).
        let logged = self.flush_log(&mut work);
        let turn = outcome?;
        logged?;
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
        Ok((turn, work.times, work.log))
    }

    fn turn_steps(
        &self,
        work: &mut Work<'_>,
        header: &crate::conversations::Conversation,
        text: &CustomerText,
    ) -> Result<Turn, EngineError> {
        self.identity_at_turn_start(work, header.external_id.as_deref())?;
        self.log(work, vec![EventKind::MessageIn { text: text.as_str().to_string() }])?;
        work.state.last_message_at = Some(self.identity.clock.now());
        if header.taken_over_by.is_some() {
            // A human agent holds the conversation: the assistant stays silent.
            return Ok(Turn::default());
        }

        let understanding_started = Instant::now();
        let understanding = self.understand(text.as_str())?;
        work.times.understanding_ms = ms(understanding_started);
        if let Some((name, confidence)) = &understanding.intent {
            work.intent = Some(IntentOut { name: name.clone(), confidence: *confidence });
            self.log(work, vec![EventKind::Intent { name: name.clone(), confidence: *confidence }])?;
        }

        self.handle(work, &understanding)?;
        self.finish(work)
    }

    /// Appends the turn's events not yet logged, in one transaction.
    fn flush_log(&self, work: &mut Work<'_>) -> Result<(), EngineError> {
        if !work.pending.is_empty() {
            let written = self.conversations.append(work.conversation_id, std::mem::take(&mut work.pending))?;
            work.log.extend(written);
        }
        Ok(())
    }

    /// A turn in progress on the conversation's state, replayed from its log.
    fn work<'a>(
        &self,
        conversation_id: &'a str,
        channel: Channel,
        sink: &'a dyn TokenSink,
    ) -> Result<Work<'a>, EngineError> {
        let events = self.conversations.events(conversation_id)?;
        Ok(Work {
            conversation_id,
            channel,
            state: State::replay(&events),
            log: events,
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
            pending: Vec::new(),
        })
    }

    /// The customer's phone proved its number on the mobile network (CAMARA Number
    /// Verification; `access_token` is the three-legged token the server obtained for it): the
    /// claimed customer is verified when that number is on their account, and the request they
    /// were making goes on. The reply is logged like any turn, so every channel shows it.
    pub fn verify_by_network(
        &self,
        conversation_id: &str,
        access_token: &str,
        sink: &dyn TokenSink,
    ) -> Result<Turn, EngineError> {
        let header = self.conversations.get(conversation_id)?;
        let mut work = self.work(conversation_id, header.channel, sink)?;
        let outcome = self.network_proof(&mut work, access_token).and_then(|()| self.finish(&mut work));
        let logged = self.flush_log(&mut work);
        let turn = outcome?;
        logged?;
        Ok(turn)
    }

    pub(super) fn handle(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
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
        if awaiting.as_deref() == Some(identity::VERIFICATION_CODE) {
            return self.on_code_answer(work, u);
        }
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

    pub(super) fn on_confirmation(
        &self,
        work: &mut Work<'_>,
        u: &Understanding,
        pending: crate::dialogue::state::PendingConfirmation,
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

    pub(super) fn on_device_answer(
        &self,
        work: &mut Work<'_>,
        u: &Understanding,
        tool: &str,
    ) -> Result<(), EngineError> {
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

    /// A message that answers nothing pending: a new request, a question, small talk.
    pub(super) fn on_free_message(&self, work: &mut Work<'_>, u: &Understanding) -> Result<(), EngineError> {
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
        // "My number is 555-123-2001; my daughter's line 555-123-2006 needs data": every number
        // the request names is kept, so a line that is not the customer's is declined, not
        // swapped for one of theirs.
        let numbers: Vec<Value> = u
            .values()
            .filter_map(|value| match value {
                EntityValue::PhoneNumber(number) => Some(json!(number)),
                _ => None,
            })
            .collect();
        if numbers.len() > 1 {
            self.log(
                work,
                vec![EventKind::SlotSet {
                    flow: GLOBAL.into(),
                    slot: identity::NUMBERS_MENTIONED.into(),
                    value: json!(numbers),
                }],
            )?;
        }
        // "Would you like me to ...?" answered yes: the offered flow starts.
        if let Some(offered) = self.take_offer(work)?
            && u.yes_no == Some(true)
            && self.book.flow(&offered).is_some()
        {
            self.start_flow(work, &offered, u)?;
            return self.drive(work, Step::Start);
        }
        if self.answer_question_first(work, u, intent.as_deref())? {
            return Ok(());
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
        // Who the customer is, said with nothing asked yet: greet and ask what they need. A
        // message that only sounds like it ("where do I find my PUK code?", "I want a different
        // phone number") is answered as a question.
        let identifies = u.values().any(|value| {
            matches!(value, EntityValue::PhoneNumber(_) | EntityValue::Id { .. } | EntityValue::FullName(_))
        });
        if matches!(intent.as_deref(), Some("give_phone_number" | "give_customer_id" | "give_name_and_dob"))
            && work.state.stack.is_empty()
            && identifies
        {
            return self.say(work, "greeting");
        }
        if !work.state.stack.is_empty() {
            // Mid-flow but nothing was asked (should not happen): carry on.
            return self.drive(work, Step::Start);
        }
        self.answer_or_fallback(work, u)
    }

    pub(super) fn not_understood(
        &self,
        work: &mut Work<'_>,
        u: &Understanding,
        say_fallback: bool,
    ) -> Result<(), EngineError> {
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
    pub(super) fn repeat_question(&self, work: &mut Work<'_>) -> Result<(), EngineError> {
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
    pub(super) fn last_question(&self, work: &Work<'_>) -> Option<String> {
        let last = work.state.last_reply.clone()?;
        let sentences = crate::dialogue::guardrail::split_sentences(&last);
        let question = sentences.iter().rev().find(|s| s.ends_with('?')).cloned();
        Some(question.unwrap_or(last))
    }

    /// Gives up the active flows when the same question was asked too often.
    pub(super) fn give_up_if_stuck(&self, work: &mut Work<'_>, key: &str) -> Result<(), EngineError> {
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

    pub(super) fn finish(&self, work: &mut Work<'_>) -> Result<Turn, EngineError> {
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
        self.log(work, vec![EventKind::Reply { text: reply, turn: turn.clone() }])?;
        Ok(turn)
    }

    /// Records events of the turn: the state follows at once, the log when the turn ends.
    pub(super) fn log(&self, work: &mut Work<'_>, kinds: Vec<EventKind>) -> Result<(), EngineError> {
        for kind in &kinds {
            work.state.apply(kind);
        }
        work.pending.extend(kinds);
        Ok(())
    }

    pub(super) fn facts<'w>(&'w self, work: &'w Work<'_>) -> FactContext<'w> {
        FactContext {
            store: self.registry.store(),
            today: self.registry.today(),
            state: &work.state,
            operator_name: &self.settings.operator_name,
            extra: &work.extra,
            requirements: &self.identity.settings.requirements,
        }
    }
}
