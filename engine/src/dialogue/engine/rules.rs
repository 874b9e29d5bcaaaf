//! The keyword rules that correct or complete the intent model: travel, faults, bigger plans,
//! the price of data, cancellation, "I don't know", questions, corrections. Each rule is a
//! regular expression or a small function with one-line table tests below.

use inference::entities::{Entity, EntityValue};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

/// One of several values for a slot in a message: the first, unless the customer corrects
/// themselves ("2 GB... sorry, no, 1 GB, not 2"): then the last one not preceded by "not".
pub(super) fn choose_value(text: &str, candidates: Vec<(usize, Value)>) -> Option<Value> {
    if candidates.len() <= 1 {
        return candidates.into_iter().next().map(|(_, value)| value);
    }
    let lower = text.to_lowercase();
    if !CORRECTION.is_match(&lower) {
        return candidates.into_iter().next().map(|(_, value)| value);
    }
    let negated = |start: usize| {
        let before = lower[..start.min(lower.len())].trim_end();
        before.ends_with(" not") || before.ends_with("instead of") || before.ends_with("rather than")
    };
    let last = candidates.last().map(|(_, value)| value.clone());
    candidates.into_iter().rev().find(|(start, _)| !negated(*start)).map(|(_, value)| value).or(last)
}

pub(super) static CORRECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(no|not|sorry|actually|i mean|make (it|that)|instead|rather|wait|change (it|that) to)\b").unwrap()
});

pub(super) fn is_gibberish(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters == 0 {
        return !text.chars().any(|c| c.is_ascii_digit());
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let vowel_less = words
        .iter()
        .filter(|word| word.chars().filter(|c| c.is_alphabetic()).count() >= 4)
        .filter(|word| !word.to_lowercase().chars().any(|c| "aeiouy".contains(c)))
        .count();
    words.len() <= 3 && vowel_less == words.len() && !words.is_empty()
}

/// Intents that only give identifying details.
pub(super) const IDENTITY_INTENTS: &[&str] = &["give_phone_number", "give_customer_id", "give_name_and_dob"];

/// The message without its identifying details ("my number is ..."), when a request remains.
pub(super) fn without_identity(text: &str, entities: &[Entity]) -> Option<String> {
    let mut kept = String::new();
    let mut last = 0;
    for entity in entities {
        if matches!(
            entity.value,
            EntityValue::PhoneNumber(_)
                | EntityValue::Id { .. }
                | EntityValue::DateOfBirth(_)
                | EntityValue::FullName(_)
        ) {
            kept.push_str(&text[last..entity.start]);
            last = entity.end;
        }
    }
    kept.push_str(&text[last..]);
    let cleaned = IDENTITY_WORDS.replace_all(&kept, " ");
    let words: Vec<&str> = cleaned.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).collect();
    (words.len() >= 2 && last > 0).then(|| words.join(" "))
}

pub(super) static IDENTITY_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(my (phone )?(number|no\.?) is|phone( number)?|customer (id|number)|account (id|number)|it'?s|this is|for my number|for number|on number|(my )?number)\b").unwrap()
});

pub(super) static HUMAN_REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(real|actual|live) (person|human|agent)|\b(speak|talk|chat) (to|with) (a |an |someone|somebody|a real |an actual )?(human|person|agent|representative|operator|someone|somebody)|human agent|customer service rep|representative please|transfer me").unwrap()
});

/// Words of a wish to talk to a person.
pub(super) static NAMES_A_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(human|humans|person|people|agent|agents|representative|rep|operator|someone|somebody|staff|manager|supervisor|transfer)\b").unwrap()
});

/// Which request a mention of travel makes: a trip ahead asks for roaming; being abroad
/// without data is a data problem.
pub(super) fn travel_intent(lower: &str) -> Option<&'static str> {
    if !(crate::dialogue::facts::is_abroad(lower) || TRAVEL_WORDS.is_match(lower)) {
        return None;
    }
    if DATA_TROUBLE.is_match(lower) {
        Some("mobile_data_issue")
    } else if TRIP_AHEAD.is_match(lower) {
        Some("enable_roaming")
    } else {
        None
    }
}

/// The clauses of a message that may carry separate requests.
pub(super) fn split_clauses(text: &str) -> Vec<String> {
    let mut clauses = Vec::new();
    for sentence in crate::dialogue::guardrail::split_sentences(text) {
        for part in CLAUSE_BREAK.split(&sentence) {
            let part = part.trim().trim_matches(|c: char| c == ',' || c == ':' || c == ';').trim();
            if part.split_whitespace().count() >= 3 {
                clauses.push(part.to_string());
            }
        }
    }
    clauses
}

pub(super) static CLAUSE_BREAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:and then|oh and|and also|also|after that|once (?:that'?s|thats|that is) (?:sorted|done|fixed)|two things)\b|, and ").unwrap()
});

pub(super) static TRAVEL_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(abroad|overseas|travel(l)?ing|trip|vacation|holiday|landed|arrived|flying|flight)\b").unwrap()
});

pub(super) static TRIP_AHEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(going to|next (week|month)|travel(l)?ing to|trip to|before (i|we) (leave|go|fly)|will be in|heading to|flying to|on (monday|tuesday|wednesday|thursday|friday|saturday|sunday)|work (over )?there|roaming)\b").unwrap()
});

pub(super) static DATA_TROUBLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(can'?t|cannot|can not|unable to) (get online|connect|load|browse|use (my )?data)|no (internet|data|connection)|(data|internet)('s| is)? (not working|dead|down|doesn'?t work|does not work|isn'?t working|stopped)|(doesn'?t|does not|isn'?t|won'?t) (work|load|connect)").unwrap()
});

/// "help", "I need help", "hello?" — a request without a subject.
pub(super) static VAGUE_HELP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(help|help me|help please|please help|i need help|need help|can you help( me)?|i have a problem|problem|support|assist me)[.!?]*$").unwrap()
});

/// "upgrade this line to Unlimited Plus".
pub(super) static UPGRADE_TO_PLAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(upgrade|switch|move|change)\b.*\bto (the )?(unlimited|premium|basic|family|iot)").unwrap()
});

/// "I'd rather move to a bigger plan", "upgrade to a plan with more data".
pub(super) static BIGGER_PLAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(bigger|larger|higher|better|more data) plan|plan with more (data|gb|gigs)|upgrade (my |the )?plan|(change|switch|move) (to )?(a |my )?(different|new|another|other|bigger|better) plan").unwrap()
});

/// "2 GB", "2 more GB", "1.5 extra gigs".
pub(super) static DATA_QUANTITY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d+(?:\.\d+)?)\s*(?:more\s+|extra\s+)?(?:gb|gigs?|gigabytes?)\b").unwrap());

/// "How much would 2 more GB cost?"
pub(super) static PRICE_OF_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(cost|price|how much|charge)\b.*\b(more|extra|add|top|buy|get|refuel)\b|\b(more|extra|add|top|buy|get|refuel)\b.*\b(cost|price|how much|charge)\b").unwrap()
});

pub(super) static CANCEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(cancel (that|it|this)|cancel$|never ?mind|forget (it|that|about it)|changed my mind|stop (that|this|it)|don'?t do (it|that|this)|actually,? (cancel|stop)|scratch that)\b").unwrap()
});

pub(super) static DONT_KNOW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(i )?(don'?t|do not|dont) (know|remember|have (it|that|one))|not sure|no idea|can'?t remember|cannot remember|unknown|i forgot\b").unwrap()
});

/// Words that make a clause a request ("can you", "I need", "please", "turn off").
pub(super) static REQUEST_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(want|wanna|need|needs|please|pls|can you|could you|would you|would like|i'?d like|let me|help me|how (do|can) i|how much|what('?s| is| are)|turn (on|off)|switch (on|off)|cancel|pay|add|top up|topup|change|upgrade|downgrade|suspend|pause|resume|reactivate|enable|disable|activate|deactivate|transfer|refuel|replace|dispute|check|tell me|explain|also)\b",
    )
    .unwrap()
});

/// The troubleshooting intent named by a message's fault words, if any.
pub(super) fn fault_intent(lower: &str) -> Option<&'static str> {
    if MMS_FAULT.is_match(lower) {
        Some("mms_issue")
    } else if NO_SERVICE_FAULT.is_match(lower) {
        Some("no_service")
    } else if DATA_FAULT.is_match(lower) {
        Some("mobile_data_issue")
    } else {
        None
    }
}

pub(super) static NO_SERVICE_FAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(no|without|zero|lost|losing|lose|without any) (phone |mobile |cell |cellular )?(service|signal|network|bars|reception|coverage)\b|\bcan'?t (make|place|receive|get) (any )?(phone )?calls\b|\bemergency calls only\b|\bsos only\b",
    )
    .unwrap()
});

pub(super) static DATA_FAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(internet|mobile data|data|4g|5g|lte|web ?sites?|browsing)\b[^.?!]{0,40}\b(dead|not working|isn'?t working|doesn'?t work|don'?t work|stopped|is down|gone|won'?t (load|open|work)|not (load|open)\w*|slow|crawling)\b|\bno (internet|mobile data|data connection)\b|\b(don'?t|doesn'?t|do not|does not) have (any )?(internet|data)\b",
    )
    .unwrap()
});

pub(super) static MMS_FAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(mms|picture messages?|photo messages?|multimedia messages?)\b|\bcan'?t send (a |any )?(photos?|pictures?|images?|videos?)\b|\b(photos?|pictures?|images?) (won'?t|will not|doesn'?t|don'?t) send\b",
    )
    .unwrap()
});

/// "Which plan is the cheapest?": the catalogue document has that answer in a sentence.
pub(super) static PLAN_SUPERLATIVE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(cheapest|least expensive|most affordable|lowest price)\b").unwrap());

/// Words by which a message is about the customer's own account or phone ("us" is left out: it
/// is as often the country).
pub(super) static FIRST_PERSON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(i|i'm|im|i've|i'd|i'll|me|my|mine|we|our)\b").unwrap());

/// A question about how something works or what it costs, rather than a request to do it.
pub(super) static HOW_IT_WORKS_QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(how (do|does|can|would|long|much)|what (is|are|does|do|happens)|where|when|why|which|is there|are there|does|do you)\b").unwrap()
});

pub(super) static QUESTION_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(what|how|why|when|where|which|who|is|are|can|could|do|does|will|would|should)\b").unwrap()
});

/// Verbs of a request to act on an account.
const ACT: &str = r"(pay|add|top|buy|refuel|change|switch|upgrade|downgrade|cancel|suspend|pause|resume|reactivate|unsuspend|turn|enable|disable|activate|deactivate|block|close|port|transfer|dispute|get|have|put|move|send|order|replace|set|sign|give|apply|remove|waive|fix|unlock|reset|extend|look|check|verify|connect|restore|reconnect|make sure|make)";

/// A request to act ("please top up my line", "can you turn on roaming", "I want to pay my
/// bill", "cancel my line"), as opposed to a question about how things work.
pub(super) static ASKS_TO_ACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(please|pls|plz|can you|could you|would you|will you|can u|could u|i want to|i wanna|i'd like to|id like to|i would like to|i need to|need you to|help me|let me|go ahead and|i'm trying to|im trying to|trying to)\b[^.?!]{{0,30}}\b{ACT}\b|(^|[.!?]\s*)(please |pls |ok |okay |now |so )?{ACT}\b[^.?!]{{0,20}}\b(my|our|the|this|a|an|it|me)\b|(^|[.!?,]\s*)((hi|hello|hey)[ ,!]+)?(can|could|may) (i|we) (please )?{ACT}\b(?P<rest>[^.?!]*)"
    ))
    .unwrap()
});

/// Whether a message asks to act. "Can I buy extra data?" asks; "can I keep my number if I
/// switch?" and "can I pay with my mom's card?" ask about the rules: a condition or someone
/// else's means makes a "can I" a question.
pub(super) fn asks_to_act(lower: &str) -> bool {
    ASKS_TO_ACT.captures_iter(lower).any(|caps| match caps.name("rest") {
        Some(rest) => !RULE_QUESTION.is_match(rest.as_str()),
        None => true,
    })
}

static RULE_QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(if|when|whether|while|in the middle|still|without|after|before|instead|once|during|every|each time|more than|with (my|a|an) \w+'?s|with (a|my|someone|somebody) (friend|mom|mum|dad|parent|partner|wife|husband|else))\b").unwrap()
});

/// A question whose answer is a value of the customer's own account: what they owe, when their
/// bill is due, their usage, their plan, their contract end, a line's status. General questions
/// that merely say "my" ("what day does my data reset?") do not match.
pub(super) static ABOUT_OWN_ACCOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(how much|what)('?s| is| was| are)? (is |was )?(on )?(my|our) (\w+ )?(bill|balance|invoice|statement)\b",
        r"|\bwhen('?s| is| was) (my|our) (\w+ )?(bill|payment) due\b",
        r"|\bwhy (is|was|did|has) (my|our) (\w+ )?(bill|balance|invoice)\b",
        r"|\b(explain|check|see|show( me)?|look at|look up|pull up|read) (my|our) (\w+ )?(bill|balance|invoice|charges|statement|usage|account)\b",
        r"|\b(my|our) (\w+ )?(bill|balance) (went|looks|seems|jumped|doubled|is (so |too |really |way )?(high|higher|wrong|more|bigger|larger|huge))\b",
        r"|\b(do|did) i (still )?owe\b|\bhow much (do|did) i (owe|have to pay|need to pay)\b|\bam i (overdue|behind|late)\b",
        r"|\b(how much|what) (data )?(have|did) i (used|use)\b|\bhow much data (do i have|have i got|is|i have) (left|remaining)\b",
        r"|\bhow much data\b[^.?!]{0,40}\b(used|left|remaining)\b",
        r"|\b(how much|what)\b[^.?!]{0,20}\b(my|the|an?) (overdue|unpaid|outstanding|latest|last|current|next) (bill|balance|payment)\b",
        r"|\bi (think i |might )?(have|owe|got)\b[^.?!]{0,20}\b(overdue|unpaid|outstanding)\b",
        r"|\b(my|our) (data |current |monthly )?usage\b|\bhave i (used|gone over|run out)\b",
        r"|\b(what|which)('?s| is) (my|our) (current )?plan\b|\bplan (am i|i'm|im|we're|are we) on\b",
        r"|\bwhen (does|will|is) (my|our) contract (end|expire|finish|up)\b|\b(my|our) contract end date\b",
        r"|\bhow (long|many months) (is )?(left )?on (my|our) contract\b",
        r"|\b(is|why is|why was|why's|whys) (my|our) (line|account|number|phone|service|sim) (suspended|blocked|active|closed|cut off|disconnected|off|deactivated)\b",
        r"|\bstatus of (my|our)\b|\b(did|has|have) (my|our) (last )?payment (go|gone|been)\b",
        r"|\bis (roaming|data roaming) (on|enabled|active|turned on) (on|for) (my|our)\b|\bis my roaming\b",
    ))
    .unwrap()
});

/// A sentence that asks something, wherever the question words stand ("i have 9 months left,
/// how much to cancel", "whats the max refuel", "e bill vs paper bill").
pub(super) static ASKS_QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\?|\b(how (much|many|long|do|does|did|can|could|would|should|often|soon|to|is|are)|what|whats|what's|which|when|whens|where|wheres|why|who|is (it|there|that|this)|are (there|they|these)|do (you|u|i|we|all)|does|did|can (i|we|my|you|u)|could (i|we)|will (i|it|my|we|that|there)|would (i|it|that|there)|should (i|we)|am i|cheapest|cheaper|vs|versus|difference|any (plans?|way|fees?|charge))\b").unwrap()
});

/// Words of something going wrong ("won't send", "doesn't work", "no signal"): a problem to
/// troubleshoot, not a question about how things work.
pub(super) static PROBLEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(can'?t|cannot|won'?t|wont|doesn'?t|doesnt|dosn'?t|dosnt|don'?t|dont|isn'?t|isnt|aren'?t|not|no|never|stopped|broke\w*|fail\w*|error|problem|issue|trouble|dead|down|slow)\b").unwrap()
});

/// "How do I ...?", "what should I check", "what do I do": asks for steps or the rules.
pub(super) static HOW_TO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bhow (do|can|would|should|to|does)\b|\bwhat (should|do|can) (i|we) (do|check|try)\b|\bwhat (steps|do i need)\b|\bwhere (do|can) i\b").unwrap()
});

pub(super) static BARE_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\d+(?:\.\d+)?)").unwrap());

#[cfg(test)]
#[rustfmt::skip]
mod tests {
    use serde_json::json;

    use super::*;

    /// Whether `rule` matches the lowercased `text`, as the engine applies the rules.
    #[track_caller]
    fn check(rule: &Regex, text: &str, expected: bool) {
        assert_eq!(rule.is_match(&text.to_lowercase()), expected, "{text:?}");
    }

    #[test] fn human_request_person() { check(&HUMAN_REQUEST, "Can I talk to a real person?", true) }
    #[test] fn human_request_agent() { check(&HUMAN_REQUEST, "transfer me to an agent", true) }
    #[test] fn human_request_not_a_person_word() { check(&HUMAN_REQUEST, "my person has no signal", false) }
    #[test] fn vague_help_alone() { check(&VAGUE_HELP, "help me", true) }
    #[test] fn vague_help_with_subject() { check(&VAGUE_HELP, "help me pay my bill", false) }
    #[test] fn upgrade_to_named_plan() { check(&UPGRADE_TO_PLAN, "upgrade this line to unlimited plus", true) }
    #[test] fn upgrade_without_plan() { check(&UPGRADE_TO_PLAN, "upgrade my phone", false) }
    #[test] fn bigger_plan() { check(&BIGGER_PLAN, "I'd rather move to a bigger plan", true) }
    #[test] fn bigger_plan_more_data() { check(&BIGGER_PLAN, "a plan with more data please", true) }
    #[test] fn bigger_plan_not_a_top_up() { check(&BIGGER_PLAN, "add 2 GB of data", false) }
    #[test] fn data_quantity_gb() { check(&DATA_QUANTITY, "2 more GB", true) }
    #[test] fn data_quantity_gigs() { check(&DATA_QUANTITY, "1.5 extra gigs", true) }
    #[test] fn data_quantity_none() { check(&DATA_QUANTITY, "more data", false) }
    #[test] fn price_of_data() { check(&PRICE_OF_DATA, "How much would 2 more GB cost?", true) }
    #[test] fn price_without_data_words() { check(&PRICE_OF_DATA, "what is my plan", false) }
    #[test] fn cancel_that() { check(&CANCEL, "never mind", true) }
    #[test] fn cancel_plan_is_a_request() { check(&CANCEL, "cancel my line", false) }
    #[test] fn dont_know() { check(&DONT_KNOW, "I don't remember", true) }
    #[test] fn dont_know_no_idea() { check(&DONT_KNOW, "no idea", true) }
    #[test] fn knows() { check(&DONT_KNOW, "I know it, it's 555-123-2002", false) }
    #[test] fn request_words() { check(&REQUEST_WORDS, "can you turn off roaming", true) }
    #[test] fn a_statement_is_no_request() { check(&REQUEST_WORDS, "the roaming switch is on", false) }
    #[test] fn no_service_fault() { check(&NO_SERVICE_FAULT, "My phone has had NO service all morning", true) }
    #[test] fn no_calls_fault() { check(&NO_SERVICE_FAULT, "I can't make calls", true) }
    #[test] fn service_question_no_fault() { check(&NO_SERVICE_FAULT, "what services do you offer", false) }
    #[test] fn data_fault() { check(&DATA_FAULT, "my mobile data is not working", true) }
    #[test] fn data_fault_slow() { check(&DATA_FAULT, "internet is so slow", true) }
    #[test] fn data_question_no_fault() { check(&DATA_FAULT, "how much data do I have", false) }
    #[test] fn mms_fault() { check(&MMS_FAULT, "I can't send pictures", true) }
    #[test] fn mms_named() { check(&MMS_FAULT, "picture messages fail", true) }
    #[test] fn texts_are_not_mms() { check(&MMS_FAULT, "I can't send texts", false) }
    #[test] fn travel_words() { check(&TRAVEL_WORDS, "I'm travelling next week", true) }
    #[test] fn trip_ahead() { check(&TRIP_AHEAD, "going to spain", true) }
    #[test] fn data_trouble() { check(&DATA_TROUBLE, "can't get online", true) }
    #[test] fn clause_break() { check(&CLAUSE_BREAK, "fix my data and then upgrade my plan", true) }
    #[test] fn plan_superlative() { check(&PLAN_SUPERLATIVE, "which plan is the cheapest?", true) }
    #[test] fn first_person() { check(&FIRST_PERSON, "can I keep my number", true) }
    #[test] fn impersonal() { check(&FIRST_PERSON, "what is the late fee", false) }
    #[test] fn how_it_works() { check(&HOW_IT_WORKS_QUESTION, "How do I get a new SIM?", true) }
    #[test] fn a_request_is_not_how_it_works() { check(&HOW_IT_WORKS_QUESTION, "I need a new SIM", false) }
    #[test] fn question_start() { check(&QUESTION_START, "is roaming free", true) }
    #[test] fn statement_start() { check(&QUESTION_START, "roaming is free", false) }
    #[test] fn bare_number() { check(&BARE_NUMBER, "make it 3", true) }
    #[test] fn request_please() { check(&ASKS_TO_ACT, "please top up my line with 2gb", true) }
    #[test] fn request_can_you() { check(&ASKS_TO_ACT, "can you turn on roaming for me", true) }
    #[test] fn request_want_to() { check(&ASKS_TO_ACT, "I want to pay my bill", true) }
    #[test] fn request_imperative() { check(&ASKS_TO_ACT, "Cancel my line.", true) }
    #[test] fn request_after_a_statement() { check(&ASKS_TO_ACT, "i'm off to spain. turn on roaming on my phone", true) }
    #[test] fn request_can_i_buy() { assert!(asks_to_act("can i buy some extra data? i'm nearly out")) }
    #[test] fn request_can_i_have_time() { assert!(asks_to_act("i get paid next week, can i have a few more days to pay my bill?")) }
    #[test] fn rule_can_i_if() { assert!(!asks_to_act("can i keep my number if i switch to another carrier?")) }
    #[test] fn rule_can_i_someone_elses() { assert!(!asks_to_act("can i pay with my moms credit card")) }
    #[test] fn rule_can_i_mid_contract() { assert!(!asks_to_act("can i switch plans in the middle of my contract?")) }
    #[test] fn own_family_line_usage() { check(&ABOUT_OWN_ACCOUNT, "I'd like to know how much data one of my family's lines has used.", true) }
    #[test] fn own_overdue_amount() { check(&ABOUT_OWN_ACCOUNT, "Hi, I think I have an overdue bill - how much is it?", true) }
    #[test] fn question_is_no_request() { check(&ASKS_TO_ACT, "how much is a 2gb top up on premium?", false) }
    #[test] fn can_i_is_no_request() { assert!(!asks_to_act("can i pay with my mom's credit card")) }
    #[test] fn how_do_i_is_no_request() { check(&ASKS_TO_ACT, "how do i set up autopay", false) }
    #[test] fn own_balance() { check(&ABOUT_OWN_ACCOUNT, "how much is my bill this month?", true) }
    #[test] fn own_owe() { check(&ABOUT_OWN_ACCOUNT, "what do i owe? how much do i owe", true) }
    #[test] fn own_usage() { check(&ABOUT_OWN_ACCOUNT, "how much data have i used", true) }
    #[test] fn names_a_person() { check(&NAMES_A_PERSON, "can i talk to someone about my bill", true) }
    #[test] fn cash_names_no_person() { check(&NAMES_A_PERSON, "do you take cash or cheques", false) }
    #[test] fn own_plan() { check(&ABOUT_OWN_ACCOUNT, "what plan am i on", true) }
    #[test] fn own_contract() { check(&ABOUT_OWN_ACCOUNT, "when does my contract end", true) }
    #[test] fn own_line_status() { check(&ABOUT_OWN_ACCOUNT, "why is my line suspended?", true) }
    #[test] fn own_bill_too_high() { check(&ABOUT_OWN_ACCOUNT, "why is my bill so high this month", true) }
    #[test] fn general_due_date_given() { check(&ABOUT_OWN_ACCOUNT, "my bill is due april 19, if i get an extension whats the new date", false) }
    #[test] fn general_reset_day() { check(&ABOUT_OWN_ACCOUNT, "what day of the month does my data reset", false) }
    #[test] fn general_dispute_rule() { check(&ABOUT_OWN_ACCOUNT, "do i still have to pay my bill by the due date", false) }
    #[test] fn general_plan_switch() { check(&ABOUT_OWN_ACCOUNT, "can i switch plans in the middle of my contract", false) }
    #[test] fn asks_mid_sentence() { check(&ASKS_QUESTION, "i have 9 months left, how much to cancel my line", true) }
    #[test] fn asks_whats() { check(&ASKS_QUESTION, "whats the most data i can add in one refuel", true) }
    #[test] fn tells_nothing_asked() { check(&ASKS_QUESTION, "my phone has had no signal since this morning", false) }
    #[test] fn problem_described() { check(&PROBLEM, "the phone simply won't send it", true) }
    #[test] fn no_problem_in_a_question() { check(&PROBLEM, "which 5g band does my phone need to support", false) }
    #[test] fn how_to_steps() { check(&HOW_TO, "phone says no service, what should i check", true) }
    #[test] fn how_to_not_a_fault_report() { check(&HOW_TO, "my phone has no service since this morning", false) }

    #[test] fn correction_words() { check(&CORRECTION, "sorry, 1 GB not 2", true) }

    #[test] fn travel_with_data_trouble() { assert_eq!(travel_intent("i'm abroad and can't get online"), Some("mobile_data_issue")) }
    #[test] fn travel_ahead() { assert_eq!(travel_intent("i'm travelling to france next week"), Some("enable_roaming")) }
    #[test] fn no_travel() { assert_eq!(travel_intent("my data is slow"), None) }
    #[test] fn fault_mms_first() { assert_eq!(fault_intent("no signal and i can't send pictures"), Some("mms_issue")) }
    #[test] fn fault_no_service() { assert_eq!(fault_intent("no signal since this morning"), Some("no_service")) }
    #[test] fn fault_data() { assert_eq!(fault_intent("mobile data stopped"), Some("mobile_data_issue")) }
    #[test] fn no_fault() { assert_eq!(fault_intent("what plans do you have"), None) }
    #[test] fn gibberish_keys() { assert!(is_gibberish("xkcd qwrt")) }
    #[test] fn gibberish_symbols() { assert!(is_gibberish("?!?")) }
    #[test] fn digits_are_not_gibberish() { assert!(!is_gibberish("555-123-2002")) }
    #[test] fn words_are_not_gibberish() { assert!(!is_gibberish("pay my bill")) }
    #[test] fn clauses_split() { assert_eq!(split_clauses("Fix my data and then upgrade my plan please."), ["Fix my data", "upgrade my plan please."]) }
    #[test] fn short_clauses_dropped() { assert_eq!(split_clauses("yes and also no"), Vec::<String>::new()) }
    #[test] fn first_value_without_correction() { assert_eq!(choose_value("2 GB and 3 GB", vec![(0, json!(2)), (9, json!(3))]), Some(json!(2))) }
    #[test] fn last_value_after_correction() { assert_eq!(choose_value("2 GB... sorry, no, 1 GB, not 2", vec![(0, json!(2)), (19, json!(1)), (29, json!(2))]), Some(json!(1))) }
    #[test] fn one_value() { assert_eq!(choose_value("1 GB", vec![(0, json!(1))]), Some(json!(1))) }
}
