//! The blind answer set's `dev` split (customer questions written from the demo pack by someone
//! who never read the engine) through the real engine, as `switchboard eval answers` runs it:
//! CI fails when answer accuracy drops below the floor. The `test` split is for reporting only
//! and is not run here.

use std::path::PathBuf;

use serde_json::Value;
use server::commands::answers;
use server::config::Settings;

use crate::support::shared;

/// The accuracy the dev split must keep (measured: 88 of 94, 93.6%, with the extractive
/// answers this test uses).
const DEV_FLOOR: f64 = 0.90;

fn blind(split: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../evals/answers/blind").join(format!("{split}.jsonl"))
}

#[test]
fn the_blind_dev_questions_are_answered_above_the_floor() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let report = answers::report(&Settings::for_data_dir(data_dir.path()), &blind("dev")).expect("the dev set runs");
    let accuracy = report.scores.accuracy();
    assert!(report.scores.n >= 90, "only {} questions", report.scores.n);
    assert!(
        accuracy >= DEV_FLOOR,
        "{} of {} answered right ({:.1}%), below the {:.0}% floor:\n{}",
        report.scores.passed,
        report.scores.n,
        accuracy * 100.0,
        DEV_FLOOR * 100.0,
        report.failures.join("\n")
    );
}

#[test]
fn bad_answer_files_are_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings::for_data_dir(dir.path());
    let cases: [(&str, &str); 4] =
        [("empty.jsonl", "no questions"), ("json.jsonl", "line 1"), ("kind.jsonl", "line 1"), ("huge.jsonl", "line 1")];
    std::fs::write(dir.path().join("empty.jsonl"), "\n\n").unwrap();
    std::fs::write(dir.path().join("json.jsonl"), "{not json\n").unwrap();
    std::fs::write(dir.path().join("kind.jsonl"), r#"{"id": "a", "question": "hi", "expect": []}"#).unwrap();
    let long = "x".repeat(evals::answers::MAX_QUESTION_CHARS + 1);
    std::fs::write(
        dir.path().join("huge.jsonl"),
        format!(r#"{{"id": "a", "question": "{long}", "kind": "lookup", "expect": [["x"]]}}"#),
    )
    .unwrap();
    for (file, said) in cases {
        let error = answers::report(&settings, &dir.path().join(file)).err().expect(file);
        assert!(error.downcast_ref::<server::BadInput>().is_some(), "{file}: {error:#}");
        assert!(error.to_string().contains(said), "{file}: {error}");
    }
    let missing = dir.path().join("missing.jsonl");
    let error = answers::report(&settings, &missing).err().expect("missing file");
    assert!(error.downcast_ref::<server::BadInput>().is_some(), "{error:#}");
}

fn reply(turn: &Value) -> &str {
    turn["reply"].as_str().unwrap_or_default()
}

#[test]
fn a_question_on_an_account_topic_is_answered_without_asking_who_the_customer_is() {
    let app = shared();
    let id = app.new_conversation();
    let turn = app.say(&id, "is there a fee if I pay my bill a few days late?");
    assert!(reply(&turn).contains("$10"), "{turn}");
    assert!(turn["awaiting"].is_null(), "no identity asked for a general question: {turn}");
    assert!(!turn["sources"].as_array().unwrap().is_empty(), "the answer cites its document: {turn}");
}

#[test]
fn a_computed_answer_shows_its_arithmetic_and_cites_the_catalogue_documents() {
    let app = shared();
    let id = app.new_conversation();
    let turn = app.say(&id, "we're 3 at home, each of us uses about 6gb a month and we all need calls. cheapest?");
    let text = reply(&turn);
    assert!(text.contains("Family Share") && text.contains("$120"), "18 GB fit one shared pool: {text}");
    assert!(text.contains("Total:"), "{text}");
    let documents: Vec<&str> =
        turn["sources"].as_array().unwrap().iter().filter_map(|s| s["document"].as_str()).collect();
    assert!(documents.iter().any(|d| d.contains("family-share")), "{documents:?}");
}

#[test]
fn a_question_the_documents_do_not_cover_gets_an_honest_reply_and_a_person_on_yes() {
    let app = shared();
    let id = app.new_conversation();
    let turn = app.say(&id, "do you have a student discount?");
    assert!(reply(&turn).contains("don't have that information"), "{turn}");
    assert!(!reply(&turn).contains('%'), "no invented discount: {turn}");
    let turn = app.say(&id, "yes please");
    assert_eq!(turn["handoff"], true, "{turn}");
}

#[test]
fn two_questions_in_one_message_get_two_answers() {
    let app = shared();
    let id = app.new_conversation();
    let turn = app.say(&id, "how much is a replacement sim card? and does unused data roll over to the next month?");
    let text = reply(&turn);
    assert!(text.contains("$10"), "{text}");
    assert!(text.contains("not roll over") || text.contains("does not roll"), "{text}");
}

#[test]
fn a_question_with_a_request_gets_the_answer_then_an_offer_and_yes_starts_the_flow() {
    let app = shared();
    let id = app.new_conversation();
    let turn =
        app.say(&id, "I want to suspend my Premium line for all of July and August. How much will I still pay for it?");
    let text = reply(&turn);
    assert!(text.contains("$140"), "2 months × ($65 + $5): {text}");
    assert!(text.contains("Would you like me to"), "{text}");
    assert!(turn["actions"].as_array().unwrap().is_empty(), "nothing runs on an offer: {turn}");
    let turn = app.say(&id, "yes");
    assert_eq!(turn["awaiting"], "phone_number", "the suspend flow starts by asking who the customer is: {turn}");
}

#[test]
fn long_and_empty_ish_messages_get_no_confident_wrong_fact() {
    let app = shared();
    for text in [
        "hmm",
        "???",
        &"tell me about plans and also data and also roaming and also bills ".repeat(50),
        "how much is 999999999999999999999 gb of top up on basic",
    ] {
        let id = app.new_conversation();
        let turn = app.say(&id, text);
        assert!(!reply(&turn).is_empty(), "{text:.40}: {turn}");
        assert!(turn["actions"].as_array().unwrap().is_empty(), "{turn}");
    }
}

#[test]
fn which_plan_fits_me_uses_the_verified_customers_own_lines_and_nothing_before_proof() {
    let app = shared();
    let id = app.new_conversation();
    // Before proof, the question gets a general answer at most: nothing of anyone's lines.
    let before = app.say(&id, "which plan fits me best for my usage?");
    for fact in ["2001", "2002", "6.1", "2.4"] {
        assert!(!reply(&before).contains(fact), "{fact} before proof: {before}");
    }
    let id = app.new_conversation();
    let turn = app.say(&id, "how much data have I used? my number is 555-010-2001");
    assert_eq!(turn["awaiting"], "verification_code", "{turn}");
    let turn = app.prove(&id, "555-010-2001");
    assert_eq!(app.get(&format!("/api/v1/conversations/{id}")).1["assurance"], "verified", "{turn}");
    // Amara Okafor: L2001 (Premium, 6.1 GB used) and L2002 (Basic, 2.4 GB used), both with calls.
    let turn = app.say(&id, "which plan fits me best for my usage?");
    let text = reply(&turn);
    assert!(text.contains("2001") && text.contains("2002"), "both of the customer's lines: {text}");
    assert!(text.contains("6.1") && text.contains("2.4"), "their data use this cycle: {text}");
    assert!(text.contains("Total:"), "the arithmetic is shown: {text}");
    for action in turn["actions"].as_array().unwrap() {
        assert!(!action["name"].as_str().unwrap().starts_with("change"), "nothing changes: {turn}");
    }
}
