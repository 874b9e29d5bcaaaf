//! Phone numbers: `555-123-2002`, `(555) 123-2002`, `5551232002`, `+1 555 123 2002`,
//! `555.123.2002`, and international numbers with a `+` country code.

use std::sync::LazyLock;

use regex::Regex;

use super::{Entity, EntityValue};

static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?:\+?1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-]?)\d{3}[\s.\-]?\d{4}
        | \+\d{1,3}(?:[\s.\-]?\d{2,4}){2,5}
        ",
    )
    .expect("phone regex")
});

/// Normalises a phone number: North American numbers become `555-123-2002`, others `+<digits>`.
/// Returns `None` when the text is not a plausible phone number.
pub fn normalize_phone_number(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let international = text.trim_start().starts_with('+');
    let national = match digits.len() {
        10 if !international => Some(digits.as_str()),
        11 if digits.starts_with('1') => Some(&digits[1..]),
        _ => None,
    };
    if let Some(national) = national {
        return Some(format!("{}-{}-{}", &national[..3], &national[3..6], &national[6..]));
    }
    (international && (8..=15).contains(&digits.len())).then(|| format!("+{digits}"))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub(crate) fn find_phone_numbers(text: &str) -> Vec<Entity> {
    let mut found = Vec::new();
    for m in PHONE.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        // Part of a longer token (an id such as B15551232002, a longer digit run, an amount).
        if before.is_some_and(|c| is_word_char(c) || matches!(c, '$' | '€' | '£' | '.' | ',' | '-' | '/'))
            || after.is_some_and(|c| is_word_char(c) || c == '/')
        {
            continue;
        }
        if after == Some('.') && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        if let Some(number) = normalize_phone_number(m.as_str()) {
            found.push(Entity { value: EntityValue::PhoneNumber(number), start: m.start(), end: m.end() });
        }
    }
    found
}
