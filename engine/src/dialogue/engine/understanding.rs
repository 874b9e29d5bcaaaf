//! Understanding a message: one embedding for intent and retrieval, entities, yes/no, "I don't
//! know", cancellation, questions, and several requests in one message.

use super::rules::{
    BIGGER_PLAN, CANCEL, DATA_QUANTITY, DONT_KNOW, HUMAN_REQUEST, IDENTITY_INTENTS, PRICE_OF_DATA, QUESTION_START,
    REQUEST_WORDS, UPGRADE_TO_PLAN, VAGUE_HELP, fault_intent, is_gibberish, split_clauses, travel_intent,
    without_identity,
};
use crate::dialogue::Engine;
use inference::entities::{Entity, EntityValue};

/// An intent name with its confidence.
pub(super) type ScoredIntent = (String, f32);

/// Intents that ask for information (answered from knowledge).
pub(super) const INFO_INTENTS: &[&str] = &[
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

/// Below this confidence an intent does not start a flow.
pub(super) const FLOW_CONFIDENCE: f32 = 0.3;

/// Intents whose flows change an account in a way the customer may not want (a suspended line,
/// roaming off, another plan): a guess does not start them, whatever the customer confirms next.
pub(super) const ACCOUNT_CHANGING: &[&str] = &["suspend_line", "disable_roaming", "change_plan"];

/// The confidence an [`ACCOUNT_CHANGING`] intent needs to start its flow.
pub(super) const ACCOUNT_CHANGE_CONFIDENCE: f32 = 0.55;

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
    pub(super) fn confident_intent(&self) -> Option<&str> {
        self.intent
            .as_ref()
            .filter(|(name, confidence)| {
                let needed =
                    if ACCOUNT_CHANGING.contains(&name.as_str()) { ACCOUNT_CHANGE_CONFIDENCE } else { FLOW_CONFIDENCE };
                *confidence >= needed
            })
            .map(|(name, _)| name.as_str())
    }
    pub(super) fn values(&self) -> impl Iterator<Item = &EntityValue> {
        self.entities.iter().map(|entity| &entity.value)
    }
}

impl Engine {
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
    pub(super) fn requests_in_clauses(
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

    /// A question about something ("what's the difference between ...?") rather than an answer.
    pub(super) fn is_digression(&self, u: &Understanding) -> bool {
        if !u.question || u.gibberish || u.dont_know {
            return false;
        }
        let n_plans = u.values().filter(|value| matches!(value, EntityValue::Plan { .. })).count();
        let asks_for_information = u.confident_intent().is_some_and(|intent| INFO_INTENTS.contains(&intent));
        n_plans >= 2 || asks_for_information
    }
}
