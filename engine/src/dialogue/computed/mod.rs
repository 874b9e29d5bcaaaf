//! Computed answers: questions whose answer is a number or a choice the knowledge pack's
//! catalogue determines ("which plans have 5G?", "2 Basic lines and 1 Premium?", "15 minutes
//! of calls in Thailand?", "we are 4, one streams 30 GB: cheapest?").
//!
//! The question is read into a [`Question`] (plans, amounts, places, dates), then each kind of
//! answer is tried in a fixed order, most specific first; the first that recognises the
//! question answers it. Every number in a computed reply is computed here from
//! [`knowledge::Catalogue`], and the reply shows the arithmetic; nothing is generated. A
//! question no kind recognises is left to the documents.

mod costs;
mod plans;
mod question;
mod recommend;

use std::sync::LazyLock;

use inference::entities::EntityExtractor;
use knowledge::catalogue::{Catalogue, PlanFacts, format_gb};
use regex::Regex;

use question::Question;
pub use recommend::LineUsage;

/// A computed reply and the documents its facts come from.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedAnswer {
    pub text: String,
    /// Pack-relative paths of the documents that state the facts used.
    pub sources: Vec<String>,
}

impl ComputedAnswer {
    fn new(text: String, sources: impl IntoIterator<Item = String>) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for source in sources {
            if !unique.contains(&source) {
                unique.push(source);
            }
        }
        Self { text, sources: unique }
    }
}

/// What else the engine knows when answering: the customer's own lines' usage once they are
/// verified ("which plan fits me?").
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub own_usage: Vec<LineUsage>,
}

/// The computed answer to `text`, when it asks something the catalogue answers.
pub fn answer(
    catalogue: &Catalogue,
    extractor: &EntityExtractor,
    text: &str,
    context: &Context,
) -> Option<ComputedAnswer> {
    let question = Question::read(catalogue, extractor, text);
    if !question.has(&ASKS) {
        return None;
    }
    costs::extension_date(&question)
        .or_else(|| costs::goodwill_left(&question))
        .or_else(|| costs::outage_credit(&question))
        .or_else(|| costs::suspension_cost(&question))
        .or_else(|| costs::early_termination(&question))
        .or_else(|| costs::roaming(&question))
        .or_else(|| recommend::recommend(&question, context))
        .or_else(|| costs::refuel(&question))
        .or_else(|| plans::lines_cost(&question))
        .or_else(|| plans::compare(&question))
        .or_else(|| plans::filter_and_rank(&question))
        .or_else(|| plans::lookup(&question))
        .or_else(|| costs::fee(&question))
}

/// The message asks which plan suits the customer without describing any usage ("which plan
/// fits me?"): answered from their own lines once they are verified.
pub fn asks_what_fits_me(text: &str) -> bool {
    recommend::asks_what_fits_me(&text.to_lowercase())
}

/// The message asks something (a question, or a request for a recommendation or a sum).
static ASKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\?|\b(how|what|whats|what's|which|when|whens|is|are|does|do|can|could|will|would|should|any|cheapest|cheaper|best|recommend|need a plan|looking for|want a plan|total|cost|price|fee|rates?|tell me|difference|compare|vs|versus|list)\b").unwrap()
});

/// Words that ask about money.
pub(super) static COST_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(how much|cost|costs|price|prices|pay|paying|charge|charged|charges|fee|fees|extra|bill|total|rates?|cheap\w*|expensive|free|spend|owe|dollars?|bucks)\b|\$").unwrap()
});

/// A plan's facts in one sentence.
pub(super) fn profile(catalogue: &Catalogue, plan: &PlanFacts) -> String {
    let lines = if plan.max_lines > 1 { format!(" for up to {} lines sharing", plan.max_lines) } else { String::new() };
    let network = if plan.five_g { "5G" } else { "4G LTE (no 5G)" };
    let calls = if plan.calls { "unlimited nationwide calls and texts" } else { "data only (no calls or texts)" };
    format!(
        "{} ({}) costs {} a month{lines} {} of {network} data, with {calls}; extra data is {} per GB.",
        plan.name,
        plan.id,
        catalogue.money(plan.price),
        format_gb(plan.data_gb),
        catalogue.money(plan.refuel_price_per_gb),
    )
}

/// "a, b and c".
pub(super) fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A count as customers read it: `3`, `2.5`.
pub(super) fn number(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 { format!("{}", rounded as i64) } else { format!("{rounded}") }
}

#[cfg(test)]
pub(crate) mod tests;
