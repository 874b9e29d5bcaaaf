//! Account ids: customers `C1001`, lines `L1002`, bills `B1005`, plans `P1003`, devices `D1001`,
//! with an optional space or dash after the letter ("bill b-1005") and any case.

use std::sync::LazyLock;

use regex::Regex;

use super::{Entity, EntityValue, PlanMatcher};

/// Which account record an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    Customer,
    Line,
    Bill,
    Plan,
    Device,
}

impl IdKind {
    fn from_letter(letter: char) -> Option<Self> {
        match letter.to_ascii_uppercase() {
            'C' => Some(Self::Customer),
            'L' => Some(Self::Line),
            'B' => Some(Self::Bill),
            'P' => Some(Self::Plan),
            'D' => Some(Self::Device),
            _ => None,
        }
    }

    /// The slot this id fills.
    pub fn slot(self) -> &'static str {
        match self {
            Self::Customer => "customer_id",
            Self::Line => "line",
            Self::Bill => "bill_id",
            Self::Plan => "plan",
            Self::Device => "device_id",
        }
    }
}

static ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\b([clbpd])[\- ]?(\d{4,6})\b").expect("id regex"));

pub(crate) fn find_ids(text: &str, plans: &PlanMatcher) -> Vec<Entity> {
    let mut found = Vec::new();
    for captures in ID.captures_iter(text) {
        let whole = captures.get(0).expect("group 0");
        // "555-123-2002" must not yield "d-1234"-like ids from inside a phone number.
        let after = text[whole.end()..].chars().next();
        if after
            .is_some_and(|c| c == '-' || c == '.' && text[whole.end() + 1..].starts_with(|d: char| d.is_ascii_digit()))
        {
            continue;
        }
        let letter = captures[1].chars().next().expect("one letter");
        let Some(kind) = IdKind::from_letter(letter) else { continue };
        // A space between letter and digits is only accepted for an upper-case letter ("C 1001"),
        // so "a 1000 times" style text is not an id.
        let separator_is_space = whole.as_str().as_bytes().get(1) == Some(&b' ');
        if separator_is_space && letter.is_ascii_lowercase() {
            continue;
        }
        let id = format!("{}{}", letter.to_ascii_uppercase(), &captures[2]);
        let value = match (kind, plans.plan_by_id(&id)) {
            (IdKind::Plan, Some(plan)) => EntityValue::Plan { plan_id: plan.plan_id.clone(), name: plan.name.clone() },
            _ => EntityValue::Id { kind, id },
        };
        found.push(Entity { value, start: whole.start(), end: whole.end() });
    }
    found
}
