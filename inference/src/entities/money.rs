//! Money amounts with a currency: `$40`, `$1,200.50`, `40 dollars`, `twenty bucks`, `USD 40`,
//! `40 usd`, `€5`, `5 euros`, `£10`. Amounts are integer minor units (cents), never floats.

use std::sync::LazyLock;

use regex::Regex;

use super::numbers::{NUMBER_WORDS, parse_decimal_scaled, word_number_tenths};
use super::{Entity, EntityValue};

/// An amount of money in minor units (cents) of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    pub cents: i64,
    pub currency: String,
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}.{:02}", self.currency, self.cents / 100, self.cents % 100)
    }
}

const AMOUNT: &str = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?|\.\d{1,2}";

static SYMBOL_FIRST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"([$€£])\s?({AMOUNT})")).expect("money regex"));
static CODE_FIRST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"(?i)\b(usd|eur|gbp|cad)\s?({AMOUNT})")).expect("money regex"));
static UNIT_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)({AMOUNT}|\b{NUMBER_WORDS})\s?(dollars?|bucks|usd|euros?|eur|pounds?|gbp|quid|cents?)\b"))
        .expect("money regex")
});

fn currency_code(unit: &str) -> Option<&'static str> {
    match unit.to_lowercase().as_str() {
        "$" | "usd" | "dollar" | "dollars" | "bucks" | "cent" | "cents" => Some("USD"),
        "€" | "eur" | "euro" | "euros" => Some("EUR"),
        "£" | "gbp" | "pound" | "pounds" | "quid" => Some("GBP"),
        "cad" => Some("CAD"),
        _ => None,
    }
}

fn amount_cents(text: &str) -> Option<i64> {
    let cents = match parse_decimal_scaled(text, 100) {
        Some(cents) => cents,
        None => word_number_tenths(text)? * 10,
    };
    i64::try_from(cents).ok()
}

fn preceded_by_word_char(text: &str, start: usize) -> bool {
    text[..start].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '.' || c == ',')
}

fn followed_by_digit(text: &str, end: usize) -> bool {
    let rest = &text[end..];
    rest.starts_with(|c: char| c.is_ascii_digit())
        || (rest.starts_with(['.', ',']) && rest[1..].starts_with(|c: char| c.is_ascii_digit()))
}

pub(crate) fn find_money(text: &str) -> Vec<Entity> {
    let mut found = Vec::new();
    for regex in [&*SYMBOL_FIRST, &*CODE_FIRST] {
        for captures in regex.captures_iter(text) {
            let whole = captures.get(0).expect("group 0");
            if followed_by_digit(text, whole.end()) {
                continue;
            }
            if let (Some(currency), Some(cents)) = (currency_code(&captures[1]), amount_cents(&captures[2])) {
                found.push(Entity {
                    value: EntityValue::Money(Money { cents, currency: currency.to_string() }),
                    start: whole.start(),
                    end: whole.end(),
                });
            }
        }
    }
    for captures in UNIT_AFTER.captures_iter(text) {
        let whole = captures.get(0).expect("group 0");
        if preceded_by_word_char(text, whole.start()) {
            continue;
        }
        let unit = captures[2].to_lowercase();
        let (Some(currency), Some(mut cents)) = (currency_code(&unit), amount_cents(&captures[1])) else { continue };
        if unit.starts_with("cent") {
            cents /= 100;
        }
        found.push(Entity {
            value: EntityValue::Money(Money { cents, currency: currency.to_string() }),
            start: whole.start(),
            end: whole.end(),
        });
    }
    found.sort_by_key(|e| e.start);
    found
}
