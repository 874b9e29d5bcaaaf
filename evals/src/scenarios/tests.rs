//! The simulated customer, the phone and the checks, against a scripted assistant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

/// One scripted reply and the account changes that come with it.
#[derive(Clone, Default)]
struct Step {
    turn: TurnView,
    set: Vec<(&'static str, Value)>,
}

/// An assistant that replies from a script, whatever the customer says.
struct Scripted {
    steps: Vec<Step>,
    accounts: BTreeMap<String, Value>,
}

struct Session {
    next: usize,
    accounts: BTreeMap<String, Value>,
}

impl Assistant for Scripted {
    type Session = Session;
    fn start(&self, _: &Scenario, accounts_file: &Path) -> Result<Session, AssistantError> {
        assert!(accounts_file.is_file());
        Ok(Session { next: 0, accounts: self.accounts.clone() })
    }
    fn respond(&self, session: &mut Session, text: &str) -> Result<TurnView, AssistantError> {
        assert!(!text.trim().is_empty(), "the customer never sends an empty message");
        let Some(step) = self.steps.get(session.next) else {
            return Ok(turn("Is there anything else I can help with?", None));
        };
        session.next += 1;
        for (path, value) in &step.set {
            session.accounts.insert(path.to_string(), value.clone());
        }
        Ok(step.turn.clone())
    }
    fn read_path(&self, session: &Session, path: &str) -> Result<Option<Value>, AssistantError> {
        if path == "explode.now" {
            return Err("the store is on fire".into());
        }
        Ok(session.accounts.get(path).cloned())
    }
}

fn turn(reply: &str, awaiting: Option<&str>) -> TurnView {
    TurnView { reply: reply.into(), awaiting: awaiting.map(str::to_string), ..TurnView::default() }
}

fn step(reply: &str, awaiting: Option<&str>) -> Step {
    Step { turn: turn(reply, awaiting), set: Vec::new() }
}

fn confirm_step(reply: &str, action: &str, args: Value) -> Step {
    let mut turn = turn(reply, Some("confirmation"));
    turn.pending_action = Some(PendingAction { name: action.into(), args });
    Step { turn, set: Vec::new() }
}

fn with_action(mut step: Step, name: &str, args: Value, status: &str) -> Step {
    step.turn.actions.push(ActionRun { name: name.into(), args, status: status.into() });
    step
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scenario from YAML whose accounts file is this crate's `Cargo.toml` (the script ignores it).
fn scenario(yaml: &str) -> Scenario {
    let text = format!("name: test\naccounts: Cargo.toml\n{yaml}");
    parse_scenario(Path::new("test.yaml"), &text, &crate_dir(), &crate_dir()).expect("a valid scenario")
}

fn play(yaml: &str, steps: Vec<Step>) -> ScenarioResult {
    play_with_accounts(yaml, steps, BTreeMap::new())
}

fn play_with_accounts(yaml: &str, steps: Vec<Step>, accounts: BTreeMap<String, Value>) -> ScenarioResult {
    run_scenario(&Scripted { steps, accounts }, &scenario(yaml))
}

fn said(result: &ScenarioResult) -> Vec<&str> {
    result.exchanges.iter().map(|exchange| exchange.customer.as_str()).collect()
}

#[track_caller]
fn assert_failure(result: &ScenarioResult, fragment: &str) {
    assert!(!result.passed, "expected a failure mentioning {fragment:?}\n{}", result.transcript());
    let why = result.why().unwrap();
    assert!(why.contains(fragment), "why {why:?} does not mention {fragment:?}");
}

// ------------------------------------------------------------------ the simulated customer

#[test]
fn slots_are_answered_from_customer_then_decisions_else_i_dont_know() {
    let result = play(
        "opening: hi\ncustomer: {phone_number: '555-123-1002', plan: null, data_gb: 1}\n\
         decisions: {plan: Premium Plan, data_gb: 2.0, location: France}",
        vec![
            step("Your number?", Some("phone_number")),
            step("Which plan?", Some("plan")),
            step("How much?", Some("data_gb")),
            step("Where are you?", Some("location")),
            step("Your customer id?", Some("customer_id")),
            step("Something odd?", Some("   ")),
        ],
    );
    assert_eq!(
        said(&result),
        ["hi", "555-123-1002", DONT_KNOW, "1", "France", DONT_KNOW, WHAT_ELSE],
        "{}",
        result.transcript()
    );
    assert!(result.passed);
    assert_eq!(result.end, EndReason::NothingMoreToSay);
    assert_eq!(result.exchanges[2].customer_note.as_deref(), Some("plan is null in the scenario"));
    assert_eq!(result.exchanges[5].customer_note.as_deref(), Some("the scenario has no customer_id"));
}

#[test]
fn numbers_are_said_without_a_trailing_zero() {
    let result = play(
        "opening: hi\ndecisions: {data_gb: 2.0, other: 1.5, flag: true}",
        vec![step("How much?", Some("data_gb")), step("Other?", Some("other")), step("Flag?", Some("flag"))],
    );
    assert_eq!(&said(&result)[1..4], ["2", "1.5", "true"]);
}

#[test]
fn confirmations_follow_decisions() {
    let steps = || {
        vec![
            confirm_step("Refuel 2 GB?", "refuel_data", json!({"gb_amount": 2.0})),
            confirm_step("Change plan?", "change_plan", json!({})),
            confirm_step("Resume?", "resume_line", json!({})),
        ]
    };
    let always_yes = play("opening: hi\ndecisions: {confirmation: yes}", steps());
    assert_eq!(&said(&always_yes)[1..4], ["yes", "yes", "yes"]);
    let always_no = play("opening: hi\ndecisions: {confirmation: false}", steps());
    assert_eq!(&said(&always_no)[1..4], ["no", "no", "no"]);
    let by_action = play("opening: hi\ndecisions: {confirmation: {refuel_data: yes, change_plan: no}}", steps());
    assert_eq!(&said(&by_action)[1..4], ["yes", "no", DONT_KNOW]);
    let none = play("opening: hi", steps());
    assert_eq!(&said(&none)[1..4], [DONT_KNOW, DONT_KNOW, DONT_KNOW]);
}

#[test]
fn what_else_is_asked_once_then_the_conversation_ends() {
    let result = play("opening: hi", vec![step("Done. Anything else?", None), step("Anything else?", None)]);
    assert_eq!(said(&result), ["hi", WHAT_ELSE]);
    assert_eq!(result.exchanges.len(), 2);
    assert_eq!(result.end, EndReason::NothingMoreToSay);
    // Once per conversation, even with questions in between.
    let result = play(
        "opening: hi\ncustomer: {line: L1}",
        vec![
            step("Anything else?", None),
            step("Which line?", Some("line")),
            step("Done.", None),
            step("never reached", Some("line")),
        ],
    );
    assert_eq!(said(&result), ["hi", WHAT_ELSE, "L1"]);
}

#[test]
fn a_handoff_ends_the_conversation() {
    let mut handoff = step("YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.", Some("phone_number"));
    handoff.turn.handoff = true;
    handoff.turn.intent = Some(("human_agent".into(), 0.9));
    let result = play("opening: hi\nexpect: {handoff: true}", vec![handoff, step("never", None)]);
    assert_eq!(result.exchanges.len(), 1);
    assert_eq!(result.end, EndReason::Handoff);
    assert!(result.passed, "{}", result.transcript());
    assert!(
        result.transcript().contains("[awaiting phone_number; handoff; intent human_agent 0.90]"),
        "{}",
        result.transcript()
    );
}

#[test]
fn max_turns_stops_a_conversation_that_goes_on() {
    let steps = vec![step("Your number?", Some("phone_number")); 10];
    let result = play("opening: hi\ncustomer: {phone_number: '1'}\nmax_turns: 3\nexpect: {handoff: true}", steps);
    assert_eq!(result.exchanges.len(), 3);
    assert_eq!(result.end, EndReason::MaxTurns);
    assert_failure(&result, "max_turns");
    let steps = vec![step("Your number?", Some("phone_number")); 30];
    let result = play("opening: hi\ncustomer: {phone_number: '1'}", steps);
    assert_eq!(result.exchanges.len(), DEFAULT_MAX_TURNS);
}

#[test]
fn a_pending_action_without_awaiting_gets_i_dont_know() {
    let mut odd = step("Hmm", None);
    odd.turn.pending_action = Some(PendingAction { name: "refuel_data".into(), args: json!({}) });
    let result = play("opening: hi\ndecisions: {confirmation: yes}", vec![odd]);
    assert_eq!(said(&result)[1], DONT_KNOW);
}

// ------------------------------------------------------------------ the simulated phone

const PHONE: &str = r#"
opening: my phone has no signal
device:
  state: {airplane_mode: "on", status_bar: "airplane mode, no signal", speed_test: "no connection", data_roaming: "off"}
  checks:
    check_status_bar: "Status bar: {status_bar}"
    check_network_status: "Airplane mode: {airplane_mode}, data roaming: {data_roaming}"
    run_speed_test:
      - when: {accounts: {lines.L1002.roaming_enabled: true}, state: {data_roaming: "on"}}
        say: "Speed test: excellent"
      - say: "Speed test: {speed_test}"
  actions:
    toggle_airplane_mode: {airplane_mode: "off", status_bar: "4 bars, LTE"}
    toggle_roaming: {data_roaming: "on"}
    reboot_device:
      - when: {accounts: {lines.L1002.status: Active}}
        set: {speed_test: "good"}
      - set: {}
"#;

#[test]
fn checks_report_the_phone_state_and_actions_change_it() {
    let steps = vec![
        step("Status bar?", Some("device:check_status_bar")),
        step("Network status?", Some("device:check_network_status")),
        step("Turn airplane mode off", Some("device:toggle_airplane_mode")),
        step("Status bar now?", Some("device:check_status_bar")),
        step("Check your SIM?", Some("device:check_sim_status")),
        step("Do something odd", Some("device:juggle_phone")),
    ];
    let result = play(
        &format!("{PHONE}expect: {{device_state: {{airplane_mode: 'OFF'}}, device_actions: [toggle_airplane_mode]}}"),
        steps,
    );
    assert_eq!(
        said(&result)[1..7],
        [
            "Status bar: airplane mode, no signal",
            "Airplane mode: on, data roaming: off",
            DONE,
            "Status bar: 4 bars, LTE",
            DONT_KNOW,
            DONT_KNOW,
        ],
        "{}",
        result.transcript()
    );
    assert!(result.passed, "{}", result.transcript());
    assert_eq!(
        result.exchanges[3].phone_note.as_deref(),
        Some("toggle_airplane_mode: airplane_mode=off, status_bar=4 bars, LTE")
    );
    assert!(result.transcript().contains("phone at the end"));
}

#[test]
fn when_conditions_read_the_accounts_and_the_phone() {
    let steps = || {
        vec![
            step("Speed test?", Some("device:run_speed_test")),
            step("Turn roaming on", Some("device:toggle_roaming")),
            Step {
                set: vec![("lines.L1002.roaming_enabled", json!(true))],
                ..step("Speed test again?", Some("device:run_speed_test"))
            },
            step("Speed test once more?", Some("device:run_speed_test")),
        ]
    };
    let result = play(PHONE, steps());
    // The line's roaming is turned on with the third reply, before the customer answers it.
    assert_eq!(
        said(&result)[1..5],
        ["Speed test: no connection", DONE, "Speed test: excellent", "Speed test: excellent"],
        "{}",
        result.transcript()
    );
}

#[test]
fn an_action_whose_rules_do_not_apply_changes_nothing_but_is_done() {
    let accounts = BTreeMap::from([("lines.L1002.status".to_string(), json!("Suspended"))]);
    let steps = vec![step("Reboot", Some("device:reboot_device")), step("Speed test?", Some("device:run_speed_test"))];
    let result =
        play_with_accounts(&format!("{PHONE}expect: {{device_state: {{speed_test: no connection}}}}"), steps, accounts);
    assert_eq!(said(&result)[1..3], [DONE, "Speed test: no connection"]);
    assert!(result.passed, "{}", result.transcript());
    let accounts = BTreeMap::from([("lines.L1002.status".to_string(), json!("active"))]);
    let steps = vec![step("Reboot", Some("device:reboot_device"))];
    let result = play_with_accounts(&format!("{PHONE}expect: {{device_state: {{speed_test: good}}}}"), steps, accounts);
    assert!(result.passed, "{}", result.transcript());
}

#[test]
fn device_actions_without_a_device_are_done_and_recorded() {
    let result = play(
        "opening: hi\nexpect: {device_actions: [reboot_device]}",
        vec![step("Reboot", Some("device:reboot_device"))],
    );
    assert_eq!(said(&result)[1], DONE);
    assert!(result.passed);
    let result = play(
        "opening: hi\nexpect: {device_actions: [reboot_device, toggle_data]}",
        vec![step("Reboot", Some("device:reboot_device"))],
    );
    assert_failure(&result, "never asked to toggle_data (asked: reboot_device)");
}

#[test]
fn reading_the_accounts_can_fail() {
    let yaml = "opening: hi\ndevice:\n  checks:\n    run_speed_test:\n      - when: {accounts: {explode.now: 1}}\n        say: fast\n";
    let result = play(yaml, vec![step("Speed test?", Some("device:run_speed_test"))]);
    assert_failure(&result, "reading explode.now from the accounts failed: the store is on fire");
}

// ------------------------------------------------------------------ expectations

#[test]
fn expected_actions_match_by_name_and_argument_subset() {
    let steps = vec![
        with_action(
            confirm_step("Pay?", "send_payment_request", json!({})),
            "get_customer_by_phone",
            json!({"phone_number": "555-123-1002"}),
            "done",
        ),
        with_action(
            step("Sent.", None),
            "send_payment_request",
            json!({"customer_id": "C1002", "bill_id": "B1005"}),
            "done",
        ),
        with_action(
            step("Refused.", None),
            "resume_line",
            json!({"customer_id": "C1002", "line_id": "L1009"}),
            "refused",
        ),
    ];
    let ok = play(
        "opening: hi\ndecisions: {confirmation: yes}\nexpect:\n  actions:\n    - {name: send_payment_request, args: {bill_id: B1005}}\n    - get_customer_by_phone\n  forbidden_actions: [resume_line, {name: send_payment_request, args: {bill_id: B1004}}]\n",
        steps.clone(),
    );
    assert!(ok.passed, "{}", ok.transcript());

    let wrong_args = play(
        "opening: hi\ndecisions: {confirmation: yes}\nexpect: {actions: [{name: send_payment_request, args: {bill_id: B1004}}]}",
        steps.clone(),
    );
    assert_failure(
        &wrong_args,
        r#"expected action send_payment_request {"bill_id":"B1004"} did not run; it was called with"#,
    );
    // A refused call is not a run.
    let refused = play("opening: hi\ndecisions: {confirmation: yes}\nexpect: {actions: [resume_line]}", steps.clone());
    assert_failure(&refused, "resume_line did not run; it was called with");
    let never = play("opening: hi\ndecisions: {confirmation: yes}\nexpect: {actions: [refuel_data]}", steps.clone());
    assert_failure(&never, "refuel_data did not run; actions that ran: get_customer_by_phone, send_payment_request");

    let forbidden = play(
        "opening: hi\ndecisions: {confirmation: yes}\nexpect: {forbidden_actions: [send_payment_request]}",
        steps.clone(),
    );
    assert_failure(&forbidden, "forbidden action send_payment_request ran with");
    let forbidden_args = play(
        "opening: hi\ndecisions: {confirmation: yes}\nexpect: {forbidden_actions: [{name: send_payment_request, args: {customer_id: c1002}}]}",
        steps,
    );
    assert_failure(&forbidden_args, "forbidden action send_payment_request");
}

#[test]
fn numbers_in_arguments_compare_by_value() {
    let steps =
        vec![with_action(step("Added.", None), "refuel_data", json!({"gb_amount": 2, "line_id": "L1"}), "done")];
    let result = play("opening: hi\nexpect: {actions: [{name: refuel_data, args: {gb_amount: 2.0}}]}", steps.clone());
    assert!(result.passed, "{}", result.transcript());
    let result = play("opening: hi\nexpect: {actions: [{name: refuel_data, args: {gb_amount: 1}}]}", steps);
    assert_failure(&result, "refuel_data");
}

#[test]
fn final_state_compares_leniently() {
    let accounts = BTreeMap::from([
        ("bills.B1005.status".to_string(), json!("Paid")),
        ("lines.L1002.roaming_enabled".to_string(), json!(true)),
        ("lines.L1002.data_refueling_gb".to_string(), json!(2.0)),
        ("lines.L1002.plan_id".to_string(), json!("P1002")),
    ]);
    let ok = play_with_accounts(
        "opening: hi\nexpect:\n  final_state:\n    bills.B1005.status: paid\n    lines.L1002.roaming_enabled: true\n    lines.L1002.data_refueling_gb: 2\n    lines.L1002.suspension_start_date: null\n",
        vec![],
        accounts.clone(),
    );
    assert!(ok.passed, "{}", ok.transcript());
    let bad = play_with_accounts(
        "opening: hi\nexpect:\n  final_state:\n    bills.B1005.status: Overdue\n    lines.L1002.roaming_enabled: 'false'\n    lines.L9.status: Active\n",
        vec![],
        accounts,
    );
    assert_failure(&bad, r#"final_state bills.B1005.status: expected "Overdue", found "Paid""#);
    assert_failure(&bad, "final_state lines.L1002.roaming_enabled: expected \"false\", found true");
    assert_failure(&bad, "final_state lines.L9.status: expected \"Active\", found nothing");
}

#[test]
fn replies_are_searched_case_insensitively() {
    let steps = vec![step("Your bill B1005 is now PAID. Thank you!", None)];
    let ok = play(
        "opening: hi\nexpect: {reply_mentions: [paid, b1005], reply_excludes: ['1990-11-22', 'refund']}",
        steps.clone(),
    );
    assert!(ok.passed, "{}", ok.transcript());
    let bad = play("opening: hi\nexpect: {reply_mentions: [transferred], reply_excludes: [thank YOU]}", steps);
    assert_failure(&bad, "no reply mentions \"transferred\"");
    assert_failure(&bad, "reply 1 mentions \"thank YOU\"");
}

#[test]
fn handoff_is_checked_both_ways() {
    let mut handoff = step("Transferring.", None);
    handoff.turn.handoff = true;
    let result = play("opening: hi\nexpect: {handoff: false}", vec![step("ok", Some("x")), handoff]);
    assert_failure(&result, "expected no handoff; reply 2 handed off");
    let result = play("opening: hi\nexpect: {handoff: true}", vec![step("ok", None)]);
    assert_failure(&result, "expected a handoff to a human; there was none");
}

#[test]
fn an_assistant_error_fails_the_scenario_with_its_message() {
    struct Broken;
    impl Assistant for Broken {
        type Session = ();
        fn start(&self, _: &Scenario, _: &Path) -> Result<(), AssistantError> {
            Ok(())
        }
        fn respond(&self, _: &mut (), _: &str) -> Result<TurnView, AssistantError> {
            Err("the engine broke".into())
        }
        fn read_path(&self, _: &(), _: &str) -> Result<Option<Value>, AssistantError> {
            Ok(None)
        }
    }
    let result = run_scenario(&Broken, &scenario("opening: hi"));
    assert_failure(&result, "the assistant failed on message 1: the engine broke");
    assert_eq!(result.end, EndReason::AssistantError);

    struct NoStart;
    impl Assistant for NoStart {
        type Session = ();
        fn start(&self, _: &Scenario, _: &Path) -> Result<(), AssistantError> {
            Err("bad accounts".into())
        }
        fn respond(&self, _: &mut (), _: &str) -> Result<TurnView, AssistantError> {
            unreachable!()
        }
        fn read_path(&self, _: &(), _: &str) -> Result<Option<Value>, AssistantError> {
            unreachable!()
        }
    }
    let result = run_scenario(&NoStart, &scenario("opening: hi"));
    assert_failure(&result, "the assistant could not start: bad accounts");
}

#[test]
fn the_report_has_the_json_shape_of_interfaces_md() {
    let report = run_all(
        &Scripted { steps: vec![step("Paid.", None)], accounts: BTreeMap::new() },
        &[
            scenario("opening: hi\nexpect: {reply_mentions: [paid]}"),
            Scenario { name: "second".into(), ..scenario("opening: hi\nexpect: {reply_mentions: [refund]}") },
        ],
        |_| {},
    );
    assert_eq!(report.n_passed(), 1);
    assert_eq!(report.n_failed(), 1);
    assert_eq!(
        report.to_json(),
        json!({"passed": 1, "failed": 1, "results": [
            {"name": "test", "passed": true, "why": null},
            {"name": "second", "passed": false, "why": "no reply mentions \"refund\""},
        ]})
    );
    let summary = report.summary();
    assert!(
        summary.contains("ok    test") && summary.contains("FAIL  second") && summary.contains("1 passed, 1 failed")
    );
    let transcript = report.results[1].transcript();
    assert!(transcript.contains("second (test.yaml): FAILED"), "{transcript}");
    assert!(transcript.contains("  1 customer: hi") && transcript.contains("assistant: Paid."), "{transcript}");
}

#[test]
fn lenient_equality() {
    let cases: &[(Value, Option<Value>, bool)] = &[
        (json!("Paid"), Some(json!("paid ")), true),
        (json!("Paid"), Some(json!("Overdue")), false),
        (json!(true), Some(json!(true)), true),
        (json!(true), Some(json!("on")), true),
        (json!("off"), Some(json!(false)), true),
        (json!(true), Some(json!("maybe")), false),
        (json!(2), Some(json!(2.0)), true),
        (json!(2.0), Some(json!("2")), true),
        (json!(0.1), Some(json!(0.30000000000000004 - 0.2)), true),
        (json!(2), Some(json!(2.5)), false),
        (json!(null), None, true),
        (json!(null), Some(json!(null)), true),
        (json!("x"), None, false),
        (json!(["a", 1]), Some(json!(["A", 1.0])), true),
        (json!({"a": 1}), Some(json!({"a": 1, "b": 2})), false),
        (json!(1), Some(json!({"a": 1})), false),
    ];
    for (expected, actual, equal) in cases {
        assert_eq!(lenient_eq(expected, actual.as_ref()), *equal, "{expected} vs {actual:?}");
    }
}

// ------------------------------------------------------------------ validation

#[track_caller]
fn invalid(yaml: &str, fragment: &str) {
    let error = parse_scenario(Path::new("bad.yaml"), yaml, &crate_dir(), &crate_dir()).unwrap_err().to_string();
    assert!(error.starts_with("bad.yaml: "), "the error names the file: {error}");
    assert!(error.contains(fragment), "{error:?} does not mention {fragment:?}");
}

#[test]
fn bad_files_are_refused_naming_the_file_and_the_field() {
    let head = "name: n\naccounts: Cargo.toml\nopening: hi\n";
    invalid("", "the file is empty");
    invalid("   \n", "the file is empty");
    invalid("just text", "invalid type");
    invalid("name: [unclosed", "");
    invalid("accounts: Cargo.toml\nopening: hi\n", "missing field `name`");
    invalid("name: ' '\naccounts: Cargo.toml\nopening: hi\n", "name: must not be empty");
    invalid("name: n\naccounts: Cargo.toml\nopening: '  '\n", "opening: must not be empty");
    invalid(&format!("{head}expct: {{}}\n"), "unknown field `expct`");
    invalid(&format!("{head}expect: {{action: []}}\n"), "unknown field `action`");
    invalid(
        "name: n\naccounts: no/such/db.toml\nopening: hi\n",
        "accounts: no/such/db.toml was found neither next to the scenario",
    );
    invalid("name: n\naccounts: ''\nopening: hi\n", "accounts: must name an accounts file");
    invalid("name: n\naccounts: /no/such/db.toml\nopening: hi\n", "accounts: /no/such/db.toml is not a file");
    invalid(&format!("{head}max_turns: 0\n"), "max_turns: must be between 1 and 200, not 0");
    invalid(&format!("{head}max_turns: 100000\n"), "max_turns");
    invalid(&format!("{head}today: 25/02/2025\n"), "today: must be a date YYYY-MM-DD");
    invalid(&format!("{head}customer: {{phone_number: ''}}\n"), "customer.phone_number: an empty answer");
    invalid(&format!("{head}customer: {{phone_number: [1, 2]}}\n"), "customer.phone_number: must be a single value");
    invalid(
        &format!("{head}decisions: {{confirmation: maybe}}\n"),
        "decisions.confirmation: must be yes, no, or a map",
    );
    invalid(&format!("{head}decisions: {{confirmation: {{refuel_data: sure}}}}\n"), "refuel_data: must be yes or no");
    invalid(
        &format!("{head}device: {{checks: {{check_status_bars: x}}}}\n"),
        "device.checks.check_status_bars: \"check_status_bars\" is not a tau2",
    );
    invalid(&format!("{head}device: {{actions: {{check_status_bar: {{}}}}}}\n"), "device.actions.check_status_bar");
    invalid(
        &format!("{head}device: {{checks: {{check_status_bar: 'bar: {{bars}}'}}}}\n"),
        "{bars} is not a phone field",
    );
    invalid(&format!("{head}device: {{checks: {{check_status_bar: 12}}}}\n"), "must be a text or a list");
    invalid(&format!("{head}device: {{checks: {{check_status_bar: [{{when: {{}}}}]}}}}\n"), "check_status_bar[0].say");
    invalid(
        &format!("{head}device: {{checks: {{check_status_bar: [{{say: x, then: y}}]}}}}\n"),
        "unknown key \"then\"",
    );
    invalid(
        &format!("{head}device: {{checks: {{check_status_bar: [{{say: x, when: {{phone: {{}}}}}}]}}}}\n"),
        "unknown key \"phone\"",
    );
    invalid(
        &format!("{head}device: {{checks: {{check_status_bar: [{{say: x, when: {{state: {{bars: 1}}}}}}]}}}}\n"),
        "when.state.bars: is not a phone field",
    );
    invalid(
        &format!("{head}device: {{checks: {{check_status_bar: [{{say: x, when: {{accounts: {{status: 1}}}}}}]}}}}\n"),
        "when.accounts.status: must be a dotted path",
    );
    invalid(
        &format!("{head}device: {{actions: {{reboot_device: [{{set: 3}}]}}}}\n"),
        "reboot_device[0].set: must be a map",
    );
    invalid(&format!("{head}device: {{state: {{apn: {{name: x}}}}}}\n"), "device.state.apn: must be a single value");
    invalid(&format!("{head}device: {{lamp: on}}\n"), "unknown field `lamp`");
    invalid(&format!("{head}expect: {{device_state: {{sim: active}}}}\n"), "expect.device_state: needs a device");
    invalid(&format!("{head}expect: {{device_actions: [fix_it]}}\n"), "expect.device_actions[0]");
    invalid(
        &format!("{head}expect: {{final_state: {{status: Paid}}}}\n"),
        "expect.final_state.status: must be a dotted path",
    );
    invalid(&format!("{head}expect: {{final_state: {{bills..status: Paid}}}}\n"), "must be a dotted path");
    invalid(&format!("{head}expect: {{actions: [{{args: {{}}}}]}}\n"), "expect.actions[0].name");
    invalid(&format!("{head}expect: {{actions: [{{name: x, args: 3}}]}}\n"), "expect.actions[0].args: must be a map");
    invalid(&format!("{head}expect: {{actions: [{{name: x, arg: {{}}}}]}}\n"), "unknown key \"arg\"");
    invalid(
        &format!("{head}expect: {{forbidden_actions: [3]}}\n"),
        "expect.forbidden_actions[0]: must be an action name",
    );
    invalid(&format!("{head}expect: {{reply_mentions: ['']}}\n"), "expect.reply_mentions[0]: must not be empty");
    invalid(&format!("{head}expect: {{handoff: perhaps}}\n"), "handoff");
}

#[test]
fn a_valid_file_keeps_everything() {
    let parsed = scenario(&format!(
        "opening: '  Hi there  '\ntoday: '2025-03-01'\nmax_turns: 7\ncustomer: {{full_name: Sarah Johnson}}\n\
         decisions: {{confirmation: {{refuel_data: yes}}, data_gb: 2}}\n{}",
        PHONE.trim_start().trim_start_matches("opening: my phone has no signal\n")
    ));
    assert_eq!(parsed.opening, "Hi there");
    assert_eq!(parsed.today.as_deref(), Some("2025-03-01"));
    assert_eq!(parsed.max_turns, 7);
    assert_eq!(parsed.confirmation, Some(Confirmation::ByAction(BTreeMap::from([("refuel_data".to_string(), true)]))));
    assert!(!parsed.decisions.contains_key("confirmation"));
    let device = parsed.device.unwrap();
    assert_eq!(device.checks["run_speed_test"].len(), 2);
    assert_eq!(device.actions["reboot_device"][1].set, BTreeMap::new());
    assert_eq!(device.actions["toggle_roaming"][0].when, Condition::default());
}

/// A folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("evals-scenarios-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn folders_are_read_in_order_with_accounts_next_to_the_file_first() {
    let dir = TempDir::new("folders");
    let scenarios = dir.0.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(scenarios.join("db.toml"), "").unwrap();
    std::fs::write(scenarios.join("b.yaml"), "name: second\naccounts: db.toml\nopening: hi\n").unwrap();
    std::fs::write(scenarios.join("a.yml"), "name: first\naccounts: db.toml\nopening: hi\n").unwrap();
    std::fs::write(scenarios.join("notes.md"), "not a scenario").unwrap();
    let loaded = load_paths(std::slice::from_ref(&scenarios)).unwrap();
    assert_eq!(loaded.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(loaded[0].accounts, scenarios.join("db.toml"));

    // Not next to the file: from the current directory (here: the crate, with its Cargo.toml).
    let parsed = parse_scenario(
        &scenarios.join("c.yaml"),
        "name: c\naccounts: Cargo.toml\nopening: hi",
        &scenarios,
        &crate_dir(),
    )
    .unwrap();
    assert_eq!(parsed.accounts, crate_dir().join("Cargo.toml"));

    // A single file works too; the same name twice does not.
    std::fs::write(dir.0.join("dup.yaml"), "name: first\naccounts: scenarios/db.toml\nopening: hi\n").unwrap();
    let error = load_paths(&[scenarios.clone(), dir.0.join("dup.yaml")]).unwrap_err().to_string();
    assert!(error.contains("scenario name \"first\" is used twice"), "{error}");
    assert_eq!(load_paths(&[dir.0.join("dup.yaml")]).unwrap().len(), 1);

    let empty = dir.0.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let error = load_paths(&[empty]).unwrap_err().to_string();
    assert!(error.contains("no scenario files"), "{error}");
    let error = load_paths(&[dir.0.join("missing")]).unwrap_err().to_string();
    assert!(error.starts_with("cannot read"), "{error}");
}

#[test]
fn huge_and_binary_files_are_refused() {
    let dir = TempDir::new("huge");
    let huge = dir.0.join("huge.yaml");
    std::fs::write(&huge, "a".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
    let error = load_file(&huge).unwrap_err().to_string();
    assert!(error.contains("larger than"), "{error}");
    let binary = dir.0.join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    assert!(load_file(&binary).is_err());
    let deep = dir.0.join("deep.yaml");
    std::fs::write(&deep, format!("name: {}", "[".repeat(10_000))).unwrap();
    assert!(load_file(&deep).is_err());
}

#[test]
fn placeholders_are_found() {
    assert_eq!(placeholders("Status: {status_bar}, {x} {} {a b} {unclosed"), ["status_bar", "x"]);
    let state = BTreeMap::from([("status_bar".to_string(), json!("4 bars")), ("n".to_string(), json!(3.0))]);
    assert_eq!(fill("Status: {status_bar} ({n}) {missing}", &state), "Status: 4 bars (3) unknown");
}
