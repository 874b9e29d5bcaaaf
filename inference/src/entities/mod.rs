//! Entity extraction from customer messages: phone numbers, money, data amounts, dates, plan
//! names, account ids, yes/no answers, full names.
//!
//! Rule-based and deterministic: each kind has a recogniser in its own module that returns
//! candidate spans; [`EntityExtractor::extract`] runs them in priority order (ids, phone numbers,
//! dates, money, data amounts, plans, names, yes/no) and drops candidates overlapping a span
//! already taken, so "555-123-2002" is a phone number and never an amount, and "B1005" is a bill
//! id and never part of a phone number. Relative dates are resolved against an injected `today`.

mod dates;
mod ids;
mod money;
mod names;
mod numbers;
mod phone;
mod plans;
mod quantities;
mod yes_no;

use chrono::NaiveDate;

pub use dates::parse_date;
pub use ids::IdKind;
pub use money::Money;
pub use names::parse_full_name;
pub use numbers::word_value;
pub use phone::normalize_phone_number;
pub use plans::{PlanCatalogEntry, PlanMatcher};
pub use yes_no::parse_yes_no;

/// Amount of mobile data, in megabytes (decimal: 1 GB = 1000 MB, as plans are sold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataAmount {
    pub megabytes: u64,
}

impl DataAmount {
    /// The amount in gigabytes (what `refuel_data`'s `gb_amount` takes).
    pub fn gigabytes(&self) -> f64 {
        self.megabytes as f64 / 1000.0
    }
}

/// The value of one extracted entity.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityValue {
    /// A phone number: NANP numbers as `555-123-2002`, others as `+<digits>`.
    PhoneNumber(String),
    Money(Money),
    DataAmount(DataAmount),
    /// A calendar date (absolute or resolved from a relative expression).
    Date(NaiveDate),
    /// A date introduced as a birth date ("born on ...", "dob ...", or a full date with a year
    /// long past).
    DateOfBirth(NaiveDate),
    /// A plan of the catalogue, found by (possibly misspelt) name or by id.
    Plan {
        plan_id: String,
        name: String,
    },
    /// An account id such as `C1001`, upper-cased.
    Id {
        kind: IdKind,
        id: String,
    },
    /// A yes (true) or no (false) answer.
    YesNo(bool),
    /// A person's full name given in a sentence ("my name is John Smith").
    FullName(String),
}

impl EntityValue {
    /// The slot name this value fills (`phone_number`, `customer_id`, `data_gb`, ...).
    pub fn slot(&self) -> &'static str {
        match self {
            Self::PhoneNumber(_) => "phone_number",
            Self::Money(_) => "amount",
            Self::DataAmount(_) => "data_gb",
            Self::Date(_) => "date",
            Self::DateOfBirth(_) => "date_of_birth",
            Self::Plan { .. } => "plan",
            Self::Id { kind, .. } => kind.slot(),
            Self::YesNo(_) => "confirmation",
            Self::FullName(_) => "full_name",
        }
    }
}

/// One entity found in a text, with its byte span.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub value: EntityValue,
    pub start: usize,
    pub end: usize,
}

impl Entity {
    /// The matched text.
    pub fn text<'t>(&self, source: &'t str) -> &'t str {
        &source[self.start..self.end]
    }
}

/// Extracts entities, knowing the plan catalogue and the current date.
#[derive(Debug, Clone)]
pub struct EntityExtractor {
    plans: PlanMatcher,
    today: NaiveDate,
}

/// Messages longer than this are cut before extraction (bounds the work on hostile input).
pub const MAX_EXTRACT_BYTES: usize = 8 * 1024;

impl EntityExtractor {
    pub fn new(plans: Vec<PlanCatalogEntry>, today: NaiveDate) -> Self {
        Self { plans: PlanMatcher::new(plans), today }
    }

    /// The date relative expressions are resolved against.
    pub fn today(&self) -> NaiveDate {
        self.today
    }

    /// Returns a copy resolving relative dates against another day.
    pub fn with_today(&self, today: NaiveDate) -> Self {
        Self { plans: self.plans.clone(), today }
    }

    /// Returns every entity in `text`, ordered by position; spans never overlap.
    pub fn extract(&self, text: &str) -> Vec<Entity> {
        let text = truncate_at_char_boundary(text, MAX_EXTRACT_BYTES);
        let mut taken: Vec<Entity> = Vec::new();
        let add = |candidates: Vec<Entity>, taken: &mut Vec<Entity>| {
            for candidate in candidates {
                let overlaps = taken.iter().any(|e| candidate.start < e.end && e.start < candidate.end);
                if !overlaps && candidate.start < candidate.end {
                    taken.push(candidate);
                }
            }
        };
        add(ids::find_ids(text, &self.plans), &mut taken);
        add(phone::find_phone_numbers(text), &mut taken);
        add(dates::find_dates(text, self.today), &mut taken);
        add(money::find_money(text), &mut taken);
        add(quantities::find_data_amounts(text), &mut taken);
        add(self.plans.find_plans(text), &mut taken);
        add(names::find_full_names(text), &mut taken);
        add(yes_no::find_yes_no(text), &mut taken);
        taken.sort_by_key(|e| e.start);
        taken
    }

    /// The first entity whose value fills `slot` (see [`EntityValue::slot`]).
    pub fn first_for_slot(&self, text: &str, slot: &str) -> Option<EntityValue> {
        self.extract(text).into_iter().map(|e| e.value).find(|v| v.slot() == slot)
    }
}

pub(crate) fn truncate_at_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
