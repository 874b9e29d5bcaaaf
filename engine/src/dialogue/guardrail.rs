//! The grounding check: a generated sentence may only state facts found in the evidence.
//!
//! A "fact" is anything a small model likes to invent: numbers (prices, amounts, data
//! sizes, dates, percentages), month and weekday names, plan names, and price words such as
//! "free" or "unlimited". Each one in a generated sentence must also appear in the evidence
//! (the retrieved passages and the customer's account data); otherwise the sentence fails.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+(?:[.,]\d+)*").unwrap());
static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z]+").unwrap());

/// Words that state a price, a limit or a date without a digit.
const CLAIM_WORDS: &[&str] = &[
    "free",
    "unlimited",
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "twelve",
    "fifteen",
    "twenty",
    "thirty",
    "hundred",
    "half",
    "double",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "annually",
];

/// Evidence prepared once for checking many sentences.
pub struct Evidence {
    numbers: HashSet<String>,
    words: HashSet<String>,
    text_lower: String,
    plan_names: Vec<String>,
}

impl Evidence {
    /// `plan_names` are the operator's plan names: a sentence naming one must find it in the evidence.
    pub fn new(texts: &[&str], plan_names: &[String]) -> Self {
        let joined = texts.join("\n");
        let numbers = NUMBER.find_iter(&joined).map(|m| normalise_number(m.as_str())).collect();
        let words = WORD.find_iter(&joined).map(|m| m.as_str().to_ascii_lowercase()).collect();
        Self {
            numbers,
            words,
            text_lower: joined.to_lowercase(),
            plan_names: plan_names.iter().map(|name| name.to_lowercase()).collect(),
        }
    }

    /// Returns the facts of `sentence` that the evidence does not contain (empty: grounded).
    pub fn unsupported_facts(&self, sentence: &str) -> Vec<String> {
        let mut missing = Vec::new();
        for number in NUMBER.find_iter(sentence) {
            let normalised = normalise_number(number.as_str());
            if !self.numbers.contains(&normalised) {
                missing.push(number.as_str().to_string());
            }
        }
        for word in WORD.find_iter(sentence) {
            let lower = word.as_str().to_ascii_lowercase();
            if CLAIM_WORDS.contains(&lower.as_str()) && !self.words.contains(&lower) {
                missing.push(word.as_str().to_string());
            }
        }
        let sentence_lower = sentence.to_lowercase();
        for plan in &self.plan_names {
            if contains_phrase(&sentence_lower, plan) && !contains_phrase(&self.text_lower, plan) {
                missing.push(plan.clone());
            }
        }
        // A plan-like name the operator does not have ("Gold Plan") is an invention too.
        for candidate in plan_like_names(sentence) {
            let lower = candidate.to_lowercase();
            if !self.text_lower.contains(&lower) {
                missing.push(candidate);
            }
        }
        missing
    }

    pub fn supports(&self, sentence: &str) -> bool {
        self.unsupported_facts(sentence).is_empty()
    }
}

/// Why a generated sentence is not faithful to its passages, beyond its numbers and names.
#[derive(Debug, Clone, PartialEq)]
pub enum Unfaithful {
    /// Words of substance the passages never use ("visit our website", "in the settings menu").
    Unsupported(Vec<String>),
    /// It affirms what the closest passage sentence denies, or denies what it affirms.
    Polarity { closest: String },
    /// It gives a plan a feature (5G, calls, hotspot) no passage sentence gives that plan, or
    /// takes away one the passages give it.
    PlanFeature { plan: String, feature: String },
    /// An address, a menu path or a name that is not in the passages.
    Invented(String),
}

/// The passages' sentences, prepared for checking what a generated sentence says with them.
pub struct Faithfulness {
    units: Vec<Unit>,
    words: HashSet<String>,
    text_lower: String,
    plan_names: Vec<String>,
}

struct Unit {
    lower: String,
    words: HashSet<String>,
    negated: bool,
}

/// Share of a sentence's words of substance that must appear in the passages.
const MIN_SUPPORTED_WORDS: f32 = 0.8;

impl Faithfulness {
    pub fn new(units: &[&str], plan_names: &[String]) -> Self {
        let units: Vec<Unit> = units
            .iter()
            .flat_map(|text| split_sentences(text))
            .map(|sentence| Unit {
                words: content_words(&sentence),
                negated: is_negated(&sentence),
                lower: sentence.to_lowercase(),
            })
            .collect();
        let words = units.iter().flat_map(|unit| unit.words.iter().cloned()).collect();
        let text_lower = units.iter().map(|unit| unit.lower.as_str()).collect::<Vec<_>>().join("\n");
        Self { units, words, text_lower, plan_names: plan_names.iter().map(|name| name.to_lowercase()).collect() }
    }

    /// `Ok` when the sentence says only what the passages say: its words of substance are
    /// theirs, its polarity is that of the passage sentence it is closest to, each plan keeps
    /// the features the passages give it, and every address, menu path or name is quoted.
    pub fn check(&self, sentence: &str) -> Result<(), Unfaithful> {
        let lower = sentence.to_lowercase();
        for token in INVENTABLE.find_iter(sentence) {
            let token = token.as_str().trim().trim_end_matches(['.', ',']).to_lowercase();
            if !token.is_empty() && !self.text_lower.contains(&token) {
                return Err(Unfaithful::Invented(token));
            }
        }
        let words = content_words(sentence);
        if !words.is_empty() {
            let missing: Vec<String> = words.iter().filter(|word| !self.words.contains(*word)).cloned().collect();
            let supported = 1.0 - missing.len() as f32 / words.len() as f32;
            if supported < MIN_SUPPORTED_WORDS {
                return Err(Unfaithful::Unsupported(missing));
            }
            // Clause by clause: "The data rolls over, so it's not possible to use unused data"
            // keeps a "not" overall but affirms what the passage denies in its first clause.
            for clause in CLAUSE.split(sentence) {
                let clause_words = content_words(clause);
                if clause_words.len() < 2 {
                    continue;
                }
                let closest = self
                    .units
                    .iter()
                    .max_by_key(|unit| unit.words.intersection(&clause_words).count())
                    .filter(|unit| unit.words.intersection(&clause_words).count() >= 2);
                if let Some(closest) = closest
                    && closest.negated != is_negated(clause)
                {
                    return Err(Unfaithful::Polarity { closest: closest.lower.clone() });
                }
            }
        }
        for plan in self.plan_names.iter().filter(|plan| contains_phrase(&lower, plan)) {
            for feature in FEATURES.iter().filter(|feature| contains_phrase(&lower, feature)) {
                let stated = self.units.iter().any(|unit| {
                    contains_phrase(&unit.lower, plan)
                        && contains_phrase(&unit.lower, feature)
                        && unit.negated == is_negated(sentence)
                });
                if !stated {
                    return Err(Unfaithful::PlanFeature { plan: plan.clone(), feature: (*feature).to_string() });
                }
            }
        }
        Ok(())
    }
}

/// What a plan has or lacks, as customers compare plans.
const FEATURES: &[&str] = &[
    "5g",
    "4g",
    "lte",
    "calls",
    "texts",
    "hotspot",
    "tethering",
    "roaming",
    "data only",
    "wi-fi calling",
    "rollover",
    "roll over",
];

/// Addresses, menu paths and capitalised names a model may invent.
static INVENTABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:https?://)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|example|io|co|app)\b(?:/\S*)?|\b[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*(?:\s*>\s*[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*)+|(?:[.!?]\s+|\s)(?:[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+)").unwrap()
});

static CLAUSE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[,;:]|\b(so|but|and|because|while|whereas|although|though)\b").unwrap());

static NEGATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(not|no|never|cannot|can't|don't|doesn't|isn't|aren't|won't|without|none|nothing|neither|nor)\b|n't\b",
    )
    .unwrap()
});

fn is_negated(sentence: &str) -> bool {
    NEGATION.find_iter(sentence).count() % 2 == 1
}

/// Words that carry content (lowercase, crudely stemmed), without function words.
fn content_words(text: &str) -> HashSet<String> {
    WORD.find_iter(text)
        .map(|m| m.as_str().to_ascii_lowercase())
        .filter(|word| word.len() >= 3 && !FUNCTION_WORDS.contains(&word.as_str()))
        .map(|word| stem(&word))
        .collect()
}

fn stem(word: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(stripped) = word.strip_suffix(suffix)
            && stripped.len() >= 3
        {
            return stripped.to_string();
        }
    }
    word.to_string()
}

/// Words any answer may use without the passages using them.
const FUNCTION_WORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "you",
    "your",
    "yours",
    "are",
    "can",
    "will",
    "this",
    "that",
    "these",
    "those",
    "with",
    "from",
    "have",
    "has",
    "had",
    "not",
    "but",
    "all",
    "any",
    "each",
    "our",
    "its",
    "was",
    "were",
    "been",
    "being",
    "into",
    "also",
    "just",
    "only",
    "may",
    "might",
    "must",
    "should",
    "would",
    "could",
    "does",
    "did",
    "doing",
    "done",
    "get",
    "gets",
    "got",
    "here",
    "there",
    "then",
    "than",
    "when",
    "which",
    "who",
    "what",
    "how",
    "why",
    "where",
    "able",
    "sure",
    "yes",
    "please",
    "thank",
    "thanks",
    "help",
    "need",
    "needs",
    "want",
    "like",
    "one",
    "use",
    "using",
    "used",
    "make",
    "makes",
    "per",
    "about",
    "more",
    "less",
    "most",
    "least",
    "very",
    "much",
    "many",
    "some",
    "such",
    "own",
    "other",
    "another",
    "also",
    "via",
    "they",
    "them",
    "their",
    "it's",
    "don",
    "doesn",
    "isn",
    "aren",
    "won",
    "can't",
    "cannot",
    "never",
    "without",
    "none",
    "nothing",
    "always",
    "still",
    "yet",
    "already",
    "so",
    "if",
    "or",
    "an",
    "kestrel",
    "mobile",
    "customer",
    "customers",
    "we",
    "us",
];

/// The numbers of a text, normalised ("$40.00" gives "40").
pub fn numbers_in(text: &str) -> Vec<String> {
    NUMBER.find_iter(text).map(|m| normalise_number(m.as_str())).collect()
}

/// "40", "40.00", "40.0" and "1,000" compare equal to "40" and "1000".
fn normalise_number(raw: &str) -> String {
    let without_commas: String = if raw.matches(',').count() >= 1
        && !raw.contains('.')
        && raw.rsplit(',').next().is_some_and(|t| t.len() == 3)
    {
        raw.replace(',', "")
    } else {
        raw.replace(',', ".")
    };
    match without_commas.parse::<f64>() {
        Ok(value) => {
            let text = format!("{value:.4}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        Err(_) => without_commas,
    }
}

fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    haystack.match_indices(phrase).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Capitalised names followed by "Plan" ("Gold Plan", "Super Saver Plan").
fn plan_like_names(sentence: &str) -> Vec<String> {
    static PLAN_NAME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b((?:[A-Z][A-Za-z0-9+]*\s+){1,3}Plan)\b").unwrap());
    PLAN_NAME
        .captures_iter(sentence)
        .map(|c| c[1].to_string())
        .filter(|name| {
            let first = name.split_whitespace().next().unwrap_or("");
            !matches!(first, "The" | "A" | "An" | "Your" | "This" | "That" | "Our" | "Each" | "Any" | "My")
        })
        .collect()
}

/// Splits text into sentences (on `.`, `!`, `?` and line breaks, keeping decimals whole).
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (idx, &ch) in chars.iter().enumerate() {
        if ch == '\n' {
            push_sentence(&mut sentences, &mut current);
            continue;
        }
        current.push(ch);
        let next = chars.get(idx + 1).copied();
        let prev = if idx > 0 { chars.get(idx - 1).copied() } else { None };
        let is_decimal_point =
            ch == '.' && prev.is_some_and(|c| c.is_ascii_digit()) && next.is_some_and(|c| c.is_ascii_digit());
        if matches!(ch, '.' | '!' | '?') && !is_decimal_point && next.is_none_or(char::is_whitespace) {
            push_sentence(&mut sentences, &mut current);
        }
    }
    push_sentence(&mut sentences, &mut current);
    sentences
}

fn push_sentence(sentences: &mut Vec<String>, current: &mut String) {
    let trimmed = current.trim();
    if !trimmed.is_empty() {
        sentences.push(trimmed.to_string());
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLANS: &str = "Basic Plan: 5 GB of data for $40 per month. Premium Plan: 15 GB for $65 per month. \
        Unlimited Plus: 999 GB for $85.00 per month.";

    fn evidence() -> Evidence {
        Evidence::new(
            &[PLANS],
            &["Basic Plan".into(), "Premium Plan".into(), "Unlimited Plus".into(), "Family Share".into()],
        )
    }

    #[track_caller]
    fn check(sentence: &str, grounded: bool) {
        assert_eq!(evidence().supports(sentence), grounded, "{sentence}: {:?}", evidence().unsupported_facts(sentence));
    }

    #[test]
    fn grounded_sentences_pass() {
        check("The Basic Plan costs $40 per month.", true);
        check("Premium Plan gives you 15 GB for $65.", true);
        check("Unlimited Plus is $85 a month.", true);
        check("You can pick the plan that suits you.", true);
    }

    #[test]
    fn invented_facts_fail() {
        check("10GB for 10 USD/month", false);
        check("The cheapest plan is 100 USD/month.", false);
        check("It is 100% free.", false);
        check("The Family Share plan costs $120.", false);
        check("Try our Gold Plan for $40.", false);
        check("Your bill is due on March 3.", false);
    }

    #[test]
    fn numbers_compare_by_value() {
        check("Unlimited Plus costs 85 dollars.", true);
        check("The Basic Plan costs $40.00.", true);
    }

    fn faithfulness() -> Faithfulness {
        Faithfulness::new(
            &[
                "The Premium Plan gives you 15 GB of 5G data per month. The Basic Plan runs on the 4G LTE network, with no 5G.",
                "Unused data does not roll over to the next month.",
                "Open the Kestrel app and go to Billing > AutoPay. Turn AutoPay on.",
            ],
            &["Basic Plan".into(), "Premium Plan".into()],
        )
    }

    #[test]
    fn faithful_rephrasings_pass() {
        let check = faithfulness();
        assert_eq!(check.check("The Premium Plan has 5G data."), Ok(()));
        assert_eq!(check.check("Unused data doesn't roll over."), Ok(()));
        assert_eq!(check.check("In the Kestrel app, go to Billing > AutoPay and turn AutoPay on."), Ok(()));
    }

    #[test]
    fn reversed_polarity_fails() {
        assert!(matches!(
            faithfulness().check("Unused data rolls over to the next month."),
            Err(Unfaithful::Polarity { .. })
        ));
    }

    #[test]
    fn a_reversed_clause_fails_even_when_another_clause_says_not() {
        let result =
            faithfulness().check("The data rolls over to the next month, so it's not possible to use unused data.");
        assert!(matches!(result, Err(Unfaithful::Polarity { .. })), "{result:?}");
    }

    #[test]
    fn a_feature_given_to_the_wrong_plan_fails() {
        let result = faithfulness().check("The Basic Plan gives you 5G data.");
        assert!(matches!(result, Err(Unfaithful::PlanFeature { .. }) | Err(Unfaithful::Polarity { .. })), "{result:?}");
    }

    #[test]
    fn invented_addresses_paths_and_steps_fail() {
        let check = faithfulness();
        assert!(matches!(
            check.check("Visit www.kestrel-pay.com to set up automatic payments."),
            Err(Unfaithful::Invented(_))
        ));
        assert!(matches!(check.check("Go to Settings > Payments in the app."), Err(Unfaithful::Invented(_))));
        assert!(matches!(
            check.check("Call the billing hotline, press nine, then confirm your mailing address."),
            Err(Unfaithful::Unsupported(_))
        ));
    }

    #[test]
    fn sentences_split_without_breaking_decimals() {
        assert_eq!(
            split_sentences("It costs $0.10 per GB. Refuel up to 2 GB!\nThanks"),
            vec!["It costs $0.10 per GB.", "Refuel up to 2 GB!", "Thanks"]
        );
    }
}
