//! Computed answers on the demo catalogue, in customers' words (written for these tests; the
//! blind sets under `evals/answers/blind/` measure the same code on words no one here wrote).

use chrono::NaiveDate;
use inference::entities::{EntityExtractor, PlanCatalogEntry};
use knowledge::catalogue::{CATALOGUE_FILE, Catalogue};

use super::{Context, LineUsage, answer};

pub(crate) fn demo_catalogue() -> Catalogue {
    let (_, bytes) = knowledge::demo_pack::FILES.iter().find(|(name, _)| *name == CATALOGUE_FILE).expect("catalogue");
    Catalogue::parse(std::str::from_utf8(bytes).unwrap(), std::path::Path::new(CATALOGUE_FILE), None).unwrap()
}

fn ask(question: &str) -> String {
    ask_with(question, &Context::default())
}

fn ask_with(question: &str, context: &Context) -> String {
    let catalogue = demo_catalogue();
    let plans = catalogue
        .plans
        .iter()
        .map(|plan| PlanCatalogEntry { plan_id: plan.id.clone(), name: plan.name.clone() })
        .collect();
    let extractor = EntityExtractor::new(plans, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
    answer(&catalogue, &extractor, question, context).map(|answer| answer.text).unwrap_or_default()
}

#[track_caller]
fn says(question: &str, facts: &[&str]) {
    let reply = ask(question);
    for fact in facts {
        assert!(reply.contains(fact), "{question:?}: {fact:?} missing from {reply:?}");
    }
}

#[test]
fn filters_and_ranks() {
    says(
        "what plans come with 5G?",
        &["Premium Plan", "Unlimited Plus", "Family Share", "Not these: Basic Plan and IoT Basic"],
    );
    says("cheapest plan that has 12gb or more", &["cheapest plan with at least 12 GB is Premium Plan ($65"]);
    says("which plan has the lowest price for extra data", &["Unlimited Plus ($0.10 per GB"]);
    says("any plans under $50 a month?", &["IoT Basic", "Basic Plan", "Not these"]);
    says("which is the cheapest plan?", &["IoT Basic", "the cheapest plan with calls is Basic Plan ($40"]);
}

#[test]
fn compares_and_looks_up() {
    says("premium vs unlimited plus, what's the difference", &["$20 more a month", "Premium Plan (P1002) costs $65"]);
    says("how much data comes with iot basic", &["1 GB", "$15", "data only"]);
    says("does the basic plan's data roll over?", &["does not roll over"]);
}

#[test]
fn adds_up_lines() {
    says(
        "how much for 3 premium lines and one basic?",
        &["3 Premium Plan lines × $65 = $195", "Together: $235 a month"],
    );
    says("5 lines on family share, what would that cost", &["2 Family Share plans", "$240"]);
    says("if three of us share the family plan, how much each?", &["$40 each"]);
}

#[test]
fn prices_refuels() {
    says("how much would 5gb of extra data be on basic", &["5 GB of extra data costs 5 × $5 = $25", "3 refuels"]);
    says("3gb top up, cheaper on premium or unlimited plus?", &["$6", "$0.30", "cheaper on the Unlimited Plus"]);
    says("whats the biggest top up i can do at once", &["at most 2 GB per refuel"]);
}

#[test]
fn roaming_costs() {
    says("in peru next month, 30 mins of calls and 4 texts, what extra will i pay?", &["Zone 3", "$30", "$1", "$31"]);
    says("how much extra for 40 minutes of calls in canada", &["nothing extra ($0)"]);
    says("zone 1 vs zone 2 call rates", &["Zone 1", "$0.25 per minute"]);
    says("on premium, spain trip with 10 min of calls, whats my total bill", &["$2.50", "$65 + $2.50 = $67.50"]);
}

#[test]
fn contract_suspension_outage_goodwill_extension() {
    says("i want to cancel with 4 months left on my contract, what's the fee", &["4 × $10 = $40"]);
    says("how much to leave if i have 2 years left", &["24 × $10 = $240", "$200 maximum"]);
    says("suspending my unlimited plus line for 2 months, what will it cost", &["2 months × ($85 + $5) = $180"]);
    says("outage took out my basic line for 6 days, how much credit", &["$40 ÷ 30 × 6 days = $8"]);
    says("got $20 of goodwill already this year, how much more is possible", &["$30 left"]);
    says("bill due march 19, if i ask for an extension on march 25 when is it due", &["April 8"]);
    says("my bill is due on may 19. if i get an extension now what's the new due date", &["June 2"]);
}

#[test]
fn recommends_from_usage() {
    says("i use about 8gb a month and need calls, what's the cheapest?", &["Basic", "$40 + 3 GB extra × $5 = $55"]);
    says("me and my partner each use 10gb a month, both make calls. best setup?", &["$130"]);
    says("my tablet uses about 1.5gb a month, no calls. cheapest?", &["IoT Basic", "$20"]);
    says("5 of us, each about 3gb, all need calls: cheapest?", &["Family Share", "$160"]);
    says("need 5g, use about 16gb a month, which plan", &["Premium", "$67"]);
}

#[test]
fn recommends_from_the_customers_own_lines_when_verified() {
    let context = Context {
        own_usage: vec![
            LineUsage { label: "the line ending 2001".into(), data_gb: 12.0, calls: true },
            LineUsage { label: "the line ending 2002".into(), data_gb: 1.0, calls: true },
        ],
    };
    let reply = ask_with("which plan would fit me best?", &context);
    assert!(reply.contains("the line ending 2001 used 12 GB"), "{reply}");
    assert!(reply.contains("Total:"), "{reply}");
}

#[test]
fn fees() {
    says("is there a charge for a paper bill", &["Paper bill: $2 per month", "e-bills are free"]);
    says("whats the fee if my payment gets charged back", &["$15"]);
}

#[test]
fn questions_the_catalogue_does_not_answer_are_left_to_the_documents() {
    for question in
        ["how do i set up autopay", "will my phone work on a cruise ship", "hello", "", "what's the apn for mms"]
    {
        assert_eq!(ask(question), "", "{question:?}");
    }
    // Absurd amounts get no arithmetic.
    assert!(!ask("how much is 99999999999 gb of top up on basic").contains("99999999999"));
    // Hostile sizes do not crash.
    let long = "how much for 3 premium lines ".repeat(500);
    let _ = ask(&long);
    let many = "10gb, ".repeat(200) + " cheapest plan?";
    let _ = ask(&many);
}

#[test]
fn a_network_generation_is_not_an_amount_of_data() {
    // "5g" is the network unless usage follows it.
    let reply = ask("my son needs 5g and goes through about 4gb, what's the cheapest for him?");
    assert!(reply.contains("about 4 GB") && reply.contains("Premium") && !reply.contains("5 GB user"), "{reply}");
    let reply = ask("i use about 5g a month and need calls, cheapest?");
    assert!(reply.contains("5 GB"), "usage follows: {reply}");
}

#[test]
fn the_refuel_asked_for_is_priced_not_the_data_already_used() {
    says("my tablet on iot basic burned through its 1gb, how much would 2 more gb be", &["2 × $10 = $20"]);
    says("used my whole 15gb on premium, need another 3gb, price?", &["3 × $2 = $6"]);
}

#[test]
fn a_limit_under_an_amount_is_usage_too() {
    let reply = ask("cheapest setup: my phone uses roughly 4gb with calls, and a tracker under 1gb with no calls");
    assert!(reply.contains("IoT Basic") && reply.contains("Basic Plan"), "{reply}");
}

#[test]
fn calling_a_country_from_home_is_not_roaming() {
    assert_eq!(ask("how much is it to call mexico from home?"), "");
    says("how much are calls in mexico per minute when i'm travelling there", &["Zone"]);
}

#[test]
fn usage_said_in_passing_is_read() {
    // "only 2gb", "(3gb)", "6 phones, each ...": each person's use, as they put it.
    let reply = ask("the two of us: i go through 20gb a month, my brother only 3gb. we both call. cheapest?");
    assert!(reply.contains("20 GB") && reply.contains("3 GB") && !reply.contains("2 users of 20 GB"), "{reply}");
    let reply = ask("a phone (4gb, with calls) and a tablet (about 1gb, no calls), cheapest way?");
    assert!(reply.contains("4 GB") && reply.contains("1 GB") && reply.contains("IoT Basic"), "{reply}");
    let reply = ask("3 phones, each about 2gb a month, all with calls. cheapest?");
    assert!(reply.contains("$120"), "three lines: {reply}");
}

#[test]
fn a_total_is_given_once() {
    let reply = ask("4 of us, each about 3gb a month, all need calls, cheapest?");
    assert!(reply.contains("Separate lines"), "{reply}");
    assert_eq!(reply.matches("$160").count(), 1, "{reply}");
}
