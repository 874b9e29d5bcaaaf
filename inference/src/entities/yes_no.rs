//! Yes/no answers: "yes", "yep", "sure", "go ahead", "please do", "nope", "nah", "don't",
//! "not now", ... at the start of a message.

use super::{Entity, EntityValue};

/// Phrases, longest first where one starts another.
const PHRASES: &[(&str, bool, bool)] = &[
    // (phrase, is_yes, strict: only when nothing but punctuation or another answer follows)
    ("absolutely not", false, false),
    ("definitely not", false, false),
    ("of course not", false, false),
    ("no thank you", false, false),
    ("no thanks", false, false),
    ("no way", false, false),
    ("not now", false, false),
    ("not really", false, false),
    ("never mind", false, false),
    ("nevermind", false, false),
    ("please don't", false, false),
    ("please dont", false, false),
    ("don't", false, false),
    ("dont", false, false),
    ("do not", false, false),
    ("nope", false, false),
    ("nah", false, false),
    ("negative", false, true),
    ("cancel", false, true),
    ("stop", false, true),
    ("wrong", false, true),
    ("incorrect", false, true),
    ("no", false, true),
    ("n", false, true),
    ("yes please", true, false),
    ("yes", true, false),
    ("yeah", true, false),
    ("yea", true, false),
    ("yep", true, false),
    ("yup", true, false),
    ("ya", true, true),
    ("ye", true, true),
    ("y", true, true),
    ("sure", true, false),
    ("go ahead", true, false),
    ("go for it", true, false),
    ("do it", true, false),
    ("please do", true, false),
    ("please proceed", true, false),
    ("proceed", true, false),
    ("that's right", true, false),
    ("thats right", true, false),
    ("that is right", true, false),
    ("that's correct", true, false),
    ("correct", true, true),
    ("right", true, true),
    ("absolutely", true, false),
    ("of course", true, false),
    ("definitely", true, false),
    ("certainly", true, false),
    ("affirmative", true, false),
    ("confirm", true, true),
    ("confirmed", true, true),
    ("sounds good", true, false),
    ("alright", true, true),
    ("all right", true, true),
    ("okay", true, true),
    ("ok", true, true),
    ("k", true, true),
    ("👍", true, false),
];

/// Leading words that do not change the answer ("uh yes", "oh no", "well, sure").
const FILLERS: &[&str] = &["uh", "um", "umm", "oh", "well", "hmm", "ah", "erm", "so"];

/// Words after an answer that keep it an answer ("no thanks", "yes please", "ok do it").
const ANSWER_FOLLOWERS: &[&str] = &["please", "thanks", "thank", "sir", "maam", "ma'am", "that's", "thats"];

/// Longest message (in words) in which a non-strict phrase may be followed by other words.
const MAX_ANSWER_WORDS: usize = 6;

fn match_phrase(rest: &str) -> Option<(&'static str, bool, bool)> {
    let lower = rest.to_lowercase();
    PHRASES.iter().copied().find(|(phrase, _, _)| {
        lower.starts_with(phrase)
            && lower[phrase.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric() && c != '\'' && c != '’')
    })
}

fn skip_separators(text: &str, mut idx: usize) -> usize {
    while let Some(c) = text[idx..].chars().next() {
        if c.is_alphanumeric() || c == '👍' {
            break;
        }
        idx += c.len_utf8();
    }
    idx
}

pub(crate) fn find_yes_no(text: &str) -> Vec<Entity> {
    let mut start = skip_separators(text, 0);
    for _ in 0..3 {
        let word_end = text[start..].find(|c: char| !c.is_alphanumeric()).map_or(text.len(), |i| start + i);
        let word = text[start..word_end].to_lowercase();
        if FILLERS.contains(&word.as_str()) && match_phrase(&text[start..]).is_none() {
            start = skip_separators(text, word_end);
        } else {
            break;
        }
    }
    let Some((phrase, is_yes, strict)) = match_phrase(&text[start..]) else { return Vec::new() };
    let end = start + phrase.len();
    let after = text[end..].trim_start();
    let followed_by_break = after.is_empty() || after.starts_with(|c: char| ",.!;:-—".contains(c));
    let next_word: String =
        after.chars().take_while(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase();
    let followed_by_answer = ANSWER_FOLLOWERS.contains(&next_word.as_str()) || match_phrase(after).is_some();
    let n_words = text.split_whitespace().count();
    let accepted = followed_by_break || followed_by_answer || (!strict && n_words <= MAX_ANSWER_WORDS);
    if !accepted {
        return Vec::new();
    }
    vec![Entity { value: EntityValue::YesNo(is_yes), start, end }]
}

/// Reads a yes/no answer: `Some(true)` for yes, `Some(false)` for no, `None` otherwise.
pub fn parse_yes_no(text: &str) -> Option<bool> {
    find_yes_no(text).first().and_then(|e| match e.value {
        EntityValue::YesNo(answer) => Some(answer),
        _ => None,
    })
}
