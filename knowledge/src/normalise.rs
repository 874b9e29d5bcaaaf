//! Casual queries in the documents' words: chat spellings ("u", "ur", "pls", "b4"), missing
//! apostrophes ("dont", "whats"), data in gigs, and a few phrases customers use for what the
//! operator calls something else ("cancel my contract", "switch carriers"). Both the lexical
//! and the vector search read the normalised query; the customer's own text is kept for
//! everything else.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Chat words and their written forms (matched as whole words, any case).
const WORDS: &[(&str, &str)] = &[
    ("u", "you"),
    ("ur", "your"),
    ("r", "are"),
    ("y", "why"),
    ("pls", "please"),
    ("plz", "please"),
    ("thx", "thanks"),
    ("ty", "thank you"),
    ("b4", "before"),
    ("rn", "right now"),
    ("bc", "because"),
    ("cuz", "because"),
    ("coz", "because"),
    ("abt", "about"),
    ("w/o", "without"),
    ("w/", "with"),
    ("wanna", "want to"),
    ("gonna", "going to"),
    ("gotta", "have to"),
    ("dont", "don't"),
    ("cant", "can't"),
    ("wont", "won't"),
    ("doesnt", "doesn't"),
    ("dosnt", "doesn't"),
    ("isnt", "isn't"),
    ("didnt", "didn't"),
    ("im", "I'm"),
    ("ive", "I've"),
    ("whats", "what's"),
    ("hows", "how's"),
    ("wheres", "where's"),
    ("msg", "message"),
    ("msgs", "messages"),
    ("txt", "text"),
    ("txts", "texts"),
    ("pic", "picture"),
    ("pics", "pictures"),
    ("acct", "account"),
    ("acount", "account"),
    ("accnt", "account"),
    ("prob", "probably"),
    ("ppl", "people"),
    ("tho", "though"),
    ("idk", "I don't know"),
    ("2day", "today"),
    ("2moro", "tomorrow"),
    ("info", "information"),
    ("gig", "GB"),
    ("gigs", "GB"),
    ("gb's", "GB"),
    ("mb's", "MB"),
    ("intrnet", "internet"),
    ("internt", "internet"),
    ("phn", "phone"),
    ("num", "number"),
    ("nbr", "number"),
    ("bal", "balance"),
];

/// Phrases customers use, with the operator's words added after them.
const PHRASES: &[(&str, &str)] = &[
    (r"cancel(ling)? (my|the) contract", "early termination"),
    (r"(break|get out of|end) (my|the) contract", "early termination"),
    (r"switch(ing)? (carriers?|providers?|networks?|operators?)", "move number to another operator"),
    (
        r"(change|leave for|go to|move to) (another|a different|a new) (carrier|provider|network)",
        "move number to another operator",
    ),
    (r"keep my (phone )?number", "transfer number"),
    (r"top(ping)?[- ]?up", "refuel"),
    (r"(extra|more) (data|gb)", "refuel"),
    (r"(pay|paying) later|more time to pay|(pay|paying) late", "payment extension"),
    (r"(lost|stolen) (my )?phone", "suspend line"),
];

static WORD: LazyLock<Regex> = LazyLock::new(|| {
    let mut words: Vec<&str> = WORDS.iter().map(|(from, _)| *from).collect();
    words.sort_by_key(|word| std::cmp::Reverse(word.len()));
    let alternation = words.iter().map(|word| regex::escape(word)).collect::<Vec<_>>().join("|");
    Regex::new(&format!(r"(?i)(^|[^\w'/])({alternation})($|[^\w'/])")).expect("chat words")
});

static PHRASE: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    PHRASES
        .iter()
        .map(|(pattern, extra)| (Regex::new(&format!(r"(?i)\b{pattern}\b")).expect("phrase"), *extra))
        .collect()
});

/// The query in the documents' words (unchanged when there is nothing to normalise).
pub fn normalise_query(query: &str) -> String {
    // Twice: a match consumes the space after it, so "u r" needs a second pass for "r".
    let mut text = query.to_string();
    for _ in 0..2 {
        text = WORD
            .replace_all(&text, |caps: &Captures<'_>| {
                let word = caps[2].to_lowercase();
                let written = WORDS.iter().find(|(from, _)| *from == word).map_or(&caps[2], |(_, to)| *to);
                format!("{}{written}{}", &caps[1], &caps[3])
            })
            .into_owned();
    }
    let mut extra: Vec<&str> = Vec::new();
    for (pattern, words) in PHRASE.iter() {
        if pattern.is_match(&text) && !extra.contains(words) {
            extra.push(words);
        }
    }
    if extra.is_empty() { text } else { format!("{text} ({})", extra.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::normalise_query;

    #[test]
    fn chat_words_are_written_out() {
        assert_eq!(normalise_query("how many gigs do u get"), "how many GB do you get");
        assert_eq!(normalise_query("r u open? whats ur number"), "are you open? what's your number");
        assert_eq!(normalise_query("my intrnet dosnt work b4 i left"), "my internet doesn't work before i left");
        assert_eq!(normalise_query("I'm fine, you're right"), "I'm fine, you're right");
    }

    #[test]
    fn phrases_gain_the_operators_words() {
        assert_eq!(normalise_query("how do i cancel my contract"), "how do i cancel my contract (early termination)");
        assert_eq!(
            normalise_query("can i keep my number if i switch carriers"),
            "can i keep my number if i switch carriers (move number to another operator; transfer number)"
        );
        assert_eq!(normalise_query("late fee?"), "late fee?");
    }

    #[test]
    fn hostile_input_stays_bounded() {
        let long = "u ".repeat(5000);
        assert_eq!(normalise_query(&long).len(), "you ".repeat(5000).len());
        assert_eq!(normalise_query(""), "");
    }
}
