//! Full names: "my name is John Smith", "this is Jane Doe", "name: jane doe", or a reply that is
//! only a name (when the assistant asked for one, see [`parse_full_name`]).

use std::sync::LazyLock;

use regex::Regex;

use super::{Entity, EntityValue};

/// Explicit introductions, after which any case is accepted.
static EXPLICIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:my\s+(?:full\s+)?name\s+is|(?:full\s+)?name\s*(?:is|:)|name's|the\s+name\s+is)\s+")
        .expect("name regex")
});
/// Looser introductions, after which the name must be capitalised.
static LOOSE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:this\s+is|i\s+am|i'm|im|it's|it\s+is)\s+").expect("name regex"));

/// Words that end a name ("John Smith and my dob is ...").
const STOP_WORDS: &[&str] = &[
    "and", "born", "my", "dob", "date", "from", "with", "here", "calling", "speaking", "the", "i", "account", "phone",
    "number", "customer", "id", "please", "thanks", "thank", "but", "on", "at", "in", "of", "to", "is", "a", "an",
];

fn is_name_word(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_alphabetic)
        && word.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-' || c == '’' || c == '.')
        && word.chars().count() <= 30
}

fn title_case(word: &str) -> String {
    let mut out = String::new();
    let mut upper_next = true;
    for c in word.chars() {
        if upper_next {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper_next = c == '-' || c == '\'' || c == '’';
    }
    out
}

/// Reads up to four name words starting at `start`; returns (name, end) with at least two words.
fn read_name(text: &str, start: usize, need_capitals: bool) -> Option<(String, usize)> {
    let mut words = Vec::new();
    let mut end = start;
    let mut idx = start;
    for raw in text[start..].split_inclusive(char::is_whitespace) {
        let word = raw.trim_end();
        let clean = word.trim_end_matches([',', '.', '!', '?', ';']);
        let stops = clean.len() != word.len();
        if !is_name_word(clean) || STOP_WORDS.contains(&clean.to_lowercase().as_str()) {
            break;
        }
        if need_capitals && !clean.starts_with(char::is_uppercase) {
            break;
        }
        words.push(title_case(clean));
        end = idx + clean.len();
        idx += raw.len();
        if stops || words.len() == 4 {
            break;
        }
    }
    (words.len() >= 2).then(|| (words.join(" "), end))
}

pub(crate) fn find_full_names(text: &str) -> Vec<Entity> {
    let mut found = Vec::new();
    for (regex, need_capitals) in [(&*EXPLICIT, false), (&*LOOSE, true)] {
        for m in regex.find_iter(text) {
            if let Some((name, end)) = read_name(text, m.end(), need_capitals) {
                found.push(Entity { value: EntityValue::FullName(name), start: m.end(), end });
            }
        }
    }
    found
}

/// Reads a full name from a reply to "what is your full name?": an introduction ("my name is
/// ..."), or a message that is only two to four name words. Returns the name title-cased.
pub fn parse_full_name(text: &str) -> Option<String> {
    if let Some(EntityValue::FullName(name)) = find_full_names(text).into_iter().next().map(|entity| entity.value) {
        return Some(name);
    }
    let trimmed = text.trim().trim_end_matches(['.', '!']);
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    if !(2..=4).contains(&words.len()) {
        return None;
    }
    if words.iter().any(|w| !is_name_word(w) || STOP_WORDS.contains(&w.to_lowercase().as_str())) {
        return None;
    }
    Some(words.iter().map(|w| title_case(w)).collect::<Vec<_>>().join(" "))
}
