//! The account policy on the tau2 telecom data, table by table: every rule, the cases that
//! must be refused, and proof that a refusal leaves the store value for value unchanged.

use std::sync::Arc;

use accounts::{
    AccountStore, AccountsData, ActionCall, ActionOutcome, ActionRegistry, ActionRequest, Actor, AuditResult,
    ConfirmationToken, ConversationId, CustomerId, Error, IdempotencyKey, ImportMode, RegistryOptions, TAU2_TODAY,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The tau2-bench telecom database (`data/tau2-telecom/`, MIT).
pub const TAU2_DB: &str = include_str!("../../../data/tau2-telecom/db.toml");

pub fn tau2() -> AccountsData {
    AccountsData::from_toml_str(TAU2_DB).unwrap()
}

/// The tau2 data with `edit` applied to its text.
fn tau2_edited(edit: &[(&str, &str)]) -> AccountsData {
    let mut text = TAU2_DB.to_string();
    for (from, to) in edit {
        assert!(text.contains(from), "the tau2 file has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    AccountsData::from_toml_str(&text).unwrap()
}

pub fn registry_with(data: &AccountsData) -> ActionRegistry {
    let store = AccountStore::temporary_with(data).unwrap();
    ActionRegistry::new(store, RegistryOptions { today: Some(TAU2_TODAY), ..RegistryOptions::default() }).unwrap()
}

fn registry() -> ActionRegistry {
    registry_with(&tau2())
}

fn agent() -> Actor {
    Actor::agent("test-agent")
}

fn customer(id: &str) -> Actor {
    Actor::customer(CustomerId::parse(id).unwrap(), ConversationId::parse(format!("conv-{id}")).unwrap())
}

fn request(name: &str, args: Value) -> ActionRequest {
    ActionRequest::parse(name, args).unwrap()
}

/// Runs an action the way the dialogue does: a fresh idempotency key, and for a customer a
/// confirmation token minted for exactly this request.
fn run(registry: &ActionRegistry, actor: &Actor, name: &str, args: Value) -> Result<ActionOutcome, Error> {
    let request = request(name, args);
    let mut call = ActionCall::new(request.clone(), actor.clone()).with_idempotency_key(IdempotencyKey::random());
    if let Actor::Customer { conversation_id, .. } = actor {
        call = call.with_confirmation(registry.confirm(conversation_id, &request));
    }
    registry.run_blocking(call)
}

fn read(registry: &ActionRegistry, path: &str) -> Option<Value> {
    registry.store().read_path(path).unwrap()
}

#[track_caller]
fn check_refused_on(data: &AccountsData, actor: Actor, name: &str, args: Value, code: &str) {
    let registry = registry_with(data);
    check_refused_in(&registry, &actor, name, args, code);
}

#[track_caller]
fn check_refused_in(registry: &ActionRegistry, actor: &Actor, name: &str, args: Value, code: &str) {
    let before = registry.store().snapshot().unwrap();
    match run(registry, actor, name, args.clone()) {
        Err(Error::Refused(refusal)) => {
            assert_eq!(refusal.code(), code, "{name} {args}: {refusal}");
            assert!(!refusal.customer_message().is_empty());
        }
        other => panic!("{name} {args}: expected refusal {code}, got {other:?}"),
    }
    assert_eq!(registry.store().snapshot().unwrap(), before, "{name} {args} changed the store");
}

#[track_caller]
fn check_refused(actor: Actor, name: &str, args: Value, code: &str) {
    check_refused_on(&tau2(), actor, name, args, code);
}

/// Runs an action that must succeed and checks dotted paths afterwards.
#[track_caller]
fn check_done_in(registry: &ActionRegistry, actor: &Actor, name: &str, args: Value, expect: &[(&str, Value)]) -> Value {
    let outcome = run(registry, actor, name, args.clone()).unwrap_or_else(|error| panic!("{name} {args}: {error}"));
    for (path, value) in expect {
        assert_eq!(read(registry, path).as_ref(), Some(value), "{name} {args}: {path}");
    }
    outcome.output.to_json()
}

#[track_caller]
fn check_done(actor: Actor, name: &str, args: Value, expect: &[(&str, Value)]) -> Value {
    check_done_in(&registry(), &actor, name, args, expect)
}

// ---- look-ups ----

#[test]
fn customers_are_found_by_phone_id_and_name_with_dob() {
    let out = check_done(agent(), "get_customer_by_phone", json!({"phone_number": "555-123-2002"}), &[]);
    assert_eq!(out["customer_id"], "C1001");
    let out = check_done(agent(), "get_customer_by_phone", json!({"phone_number": "(555) 123 2004"}), &[]);
    assert_eq!(out["customer_id"], "C1002", "a line's number finds its owner");
    let out = check_done(agent(), "get_customer_by_id", json!({"customer_id": "C1003"}), &[]);
    assert_eq!(out["full_name"], "Michael Lee");
    let out =
        check_done(agent(), "get_customer_by_name", json!({"full_name": "sarah  JOHNSON", "dob": "1990-11-22"}), &[]);
    assert_eq!(out.as_array().unwrap().len(), 1);
    assert_eq!(out[0]["customer_id"], "C1002");
    let out =
        check_done(agent(), "get_customer_by_name", json!({"full_name": "Sarah Johnson", "dob": "1990-11-23"}), &[]);
    assert_eq!(out, json!([]), "the date of birth must match");
}

#[test]
fn unknown_ids_are_typed_refusals() {
    check_refused(agent(), "get_customer_by_phone", json!({"phone_number": "555-999-0000"}), "no_customer_with_phone");
    check_refused(agent(), "get_customer_by_id", json!({"customer_id": "C9999"}), "unknown_customer");
    check_refused(agent(), "get_plan", json!({"plan_id": "P9999"}), "unknown_plan");
    check_refused(agent(), "get_data_usage", json!({"customer_id": "C1001", "line_id": "L9999"}), "unknown_line");
    check_refused(agent(), "send_payment_request", json!({"customer_id": "C1002", "bill_id": "B9999"}), "unknown_bill");
    check_refused(
        agent(),
        "refuel_data",
        json!({"customer_id": "C9999", "line_id": "L1001", "gb_amount": 1.0}),
        "unknown_customer",
    );
    check_refused(
        agent(),
        "change_plan",
        json!({"customer_id": "C1001", "line_id": "L1001", "plan_id": "P9999"}),
        "unknown_plan",
    );
    check_refused(agent(), "resume_line", json!({"customer_id": "C1001", "line_id": "L0000"}), "unknown_line");
}

#[test]
fn malformed_arguments_are_errors_before_anything_runs() {
    for (name, args) in [
        ("get_customer_by_name", json!({"full_name": "Sarah Johnson", "dob": "22/11/1990"})),
        ("get_customer_by_name", json!({"full_name": "Sarah Johnson"})),
        ("refuel_data", json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": "two"})),
        ("refuel_data", json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": 1, "price": 0})),
        ("send_payment_request", json!({"customer_id": "", "bill_id": "B1005"})),
        ("send_payment_request", json!({"customer_id": "C1002; DROP", "bill_id": "B1005"})),
        ("transfer_to_human_agents", json!({"summary": ""})),
    ] {
        let error = ActionRequest::parse(name, args.clone()).unwrap_err();
        assert!(matches!(error, Error::InvalidArguments { .. }), "{name} {args}: {error}");
    }
    assert!(matches!(ActionRequest::parse("delete_everything", json!({})), Err(Error::UnknownAction(_))));
}

#[test]
fn bills_come_newest_first_with_a_limit() {
    let out = check_done(agent(), "get_bills_for_customer", json!({"customer_id": "C1001"}), &[]);
    let ids: Vec<&str> = out.as_array().unwrap().iter().map(|b| b["bill_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["B1003", "B1002", "B1001"]);
    let out = check_done(agent(), "get_bills_for_customer", json!({"customer_id": "C1001", "limit": 1}), &[]);
    assert_eq!(out.as_array().unwrap().len(), 1);
}

#[test]
fn data_usage_reports_the_allowance() {
    let out = check_done(agent(), "get_data_usage", json!({"customer_id": "C1001", "line_id": "L1001"}), &[]);
    assert_eq!(out["data_used_gb"], 3.2);
    assert_eq!(out["data_limit_gb"], 5.0);
    assert_eq!(out["data_remaining_gb"], 1.8);
    assert_eq!(out["over_limit"], false);
    assert_eq!(out["cycle_end_date"], "2025-02-28");
    assert_eq!(out["refuel_price_per_gb"], 5.0);
    let over = tau2_edited(&[("data_used_gb = 3.2", "data_used_gb = 5.4")]);
    let out = check_done_in(
        &registry_with(&over),
        &agent(),
        "get_data_usage",
        json!({"customer_id": "C1001", "line_id": "L1001"}),
        &[],
    );
    assert_eq!(out["over_limit"], true);
    assert_eq!(out["data_remaining_gb"], 0.0);
}

#[test]
fn plans_are_the_tau2_plans() {
    let out = check_done(agent(), "list_plans", json!({}), &[]);
    let plans: Vec<(String, f64, f64)> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["price_per_month"].as_f64().unwrap(),
                p["data_refueling_price_per_gb"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(plans.len(), 5);
    assert!(plans.contains(&("Unlimited Plus".into(), 85.0, 0.1)));
    let out = check_done(agent(), "get_plan", json!({"plan_id": "P1005"}), &[]);
    assert_eq!(out["name"], "IoT Basic");
}

// ---- overdue bill payment ----

#[test]
fn payment_requests_only_for_overdue_bills() {
    check_done(
        agent(),
        "send_payment_request",
        json!({"customer_id": "C1002", "bill_id": "B1005"}),
        &[("bills.B1005.status", json!("Awaiting Payment"))],
    );
    check_refused(
        agent(),
        "send_payment_request",
        json!({"customer_id": "C1001", "bill_id": "B1002"}),
        "bill_not_overdue",
    );
    check_refused(
        agent(),
        "send_payment_request",
        json!({"customer_id": "C1001", "bill_id": "B1001"}),
        "bill_not_overdue",
    );
    check_refused(
        agent(),
        "send_payment_request",
        json!({"customer_id": "C1001", "bill_id": "B1003"}),
        "bill_not_overdue",
    );
    check_refused(
        agent(),
        "send_payment_request",
        json!({"customer_id": "C1003", "bill_id": "B1006"}),
        "bill_not_overdue",
    );
    check_refused(
        agent(),
        "send_payment_request",
        json!({"customer_id": "C1001", "bill_id": "B1005"}),
        "bill_not_on_account",
    );
}

#[test]
fn at_most_one_bill_awaits_payment() {
    let data = tau2_edited(&[(
        "total_due = 425.0\ndue_date = \"2025-01-19\"\nstatus = \"Paid\"",
        "total_due = 425.0\ndue_date = \"2025-01-19\"\nstatus = \"Overdue\"",
    )]);
    let registry = registry_with(&data);
    check_done_in(
        &registry,
        &agent(),
        "send_payment_request",
        json!({"customer_id": "C1002", "bill_id": "B1005"}),
        &[],
    );
    check_refused_in(
        &registry,
        &agent(),
        "send_payment_request",
        json!({"customer_id": "C1002", "bill_id": "B1004"}),
        "payment_already_requested",
    );
    check_refused_in(
        &registry,
        &agent(),
        "send_payment_request",
        json!({"customer_id": "C1002", "bill_id": "B1005"}),
        "payment_already_requested",
    );
    // Once paid, the other overdue bill can be requested.
    check_done_in(
        &registry,
        &agent(),
        "make_payment",
        json!({"customer_id": "C1002", "bill_id": "B1005", "payment_method": "5678"}),
        &[],
    );
    check_done_in(
        &registry,
        &agent(),
        "send_payment_request",
        json!({"customer_id": "C1002", "bill_id": "B1004"}),
        &[("bills.B1004.status", json!("Awaiting Payment"))],
    );
}

#[test]
fn the_overdue_bill_flow_pays_with_a_method_on_file() {
    let registry = registry();
    let sarah = customer("C1002");
    check_refused_in(
        &registry,
        &sarah,
        "make_payment",
        json!({"customer_id": "C1002", "bill_id": "B1005", "payment_method": "1234"}),
        "bill_not_awaiting_payment",
    );
    let out = check_done_in(
        &registry,
        &sarah,
        "send_payment_request",
        json!({"customer_id": "C1002", "bill_id": "B1005"}),
        &[],
    );
    assert_eq!(out["amount_due"], 425.0);
    check_refused_in(
        &registry,
        &sarah,
        "make_payment",
        json!({"customer_id": "C1002", "bill_id": "B1005"}),
        "payment_method_ambiguous",
    );
    check_refused_in(
        &registry,
        &sarah,
        "make_payment",
        json!({"customer_id": "C1002", "bill_id": "B1005", "payment_method": "9999"}),
        "payment_method_not_on_file",
    );
    let receipt = check_done_in(
        &registry,
        &sarah,
        "make_payment",
        json!({"customer_id": "C1002", "bill_id": "B1005", "payment_method": "debit card"}),
        &[("bills.B1005.status", json!("Paid"))],
    );
    assert_eq!(receipt["amount"], 425.0);
    assert_eq!(receipt["method"], "Debit Card •••• 1234");
    let payment_id = receipt["payment_id"].as_str().unwrap();
    assert_eq!(read(&registry, &format!("payments.{payment_id}.bill_id")), Some(json!("B1005")));
    check_refused_in(
        &registry,
        &sarah,
        "make_payment",
        json!({"customer_id": "C1002", "bill_id": "B1005", "payment_method": "1234"}),
        "bill_not_awaiting_payment",
    );
    check_refused_in(
        &registry,
        &sarah,
        "make_payment",
        json!({"customer_id": "C1002", "bill_id": "B1004", "payment_method": "1234"}),
        "bill_not_awaiting_payment",
    );
}

#[test]
fn an_expired_method_cannot_pay() {
    let data = tau2_edited(&[(
        "total_due = 70.0\ndue_date = \"2025-02-19\"\nstatus = \"Disputed\"",
        "total_due = 70.0\ndue_date = \"2025-02-19\"\nstatus = \"Awaiting Payment\"",
    )]);
    let store = AccountStore::temporary_with(&data).unwrap();
    let later = "2025-07-01".parse().unwrap();
    let registry =
        ActionRegistry::new(store, RegistryOptions { today: Some(later), ..RegistryOptions::default() }).unwrap();
    check_refused_in(
        &registry,
        &agent(),
        "make_payment",
        json!({"customer_id": "C1003", "bill_id": "B1006"}),
        "payment_method_expired",
    );
    check_refused_in(
        &registry,
        &agent(),
        "make_payment",
        json!({"customer_id": "C1003", "bill_id": "B1006", "payment_method": "PayPal"}),
        "payment_method_expired",
    );
}

// ---- refuel ----

#[test]
fn refuel_charges_the_plan_rate_on_the_draft_bill() {
    let out = check_done(
        agent(),
        "refuel_data",
        json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": 2.0}),
        &[
            ("lines.L1001.data_refueling_gb", json!(2.0)),
            ("bills.B1003.total_due", json!(10.0)),
            ("bills.B1003.line_items.0.amount", json!(10.0)),
        ],
    );
    assert_eq!(out["charge"], 10.0);
    assert_eq!(out["bill_id"], "B1003");
    // Sarah has no draft bill: one is created for next month and listed on her account.
    let registry = registry();
    let out = check_done_in(
        &registry,
        &agent(),
        "refuel_data",
        json!({"customer_id": "C1002", "line_id": "L1004", "gb_amount": 0.5}),
        &[("lines.L1004.data_refueling_gb", json!(0.5))],
    );
    assert_eq!(out["charge"], 0.05, "0.5 GB at $0.10/GB");
    let bill_id = out["bill_id"].as_str().unwrap().to_string();
    assert_eq!(read(&registry, &format!("bills.{bill_id}.status")), Some(json!("Draft")));
    assert_eq!(read(&registry, &format!("bills.{bill_id}.period_start")), Some(json!("2025-03-01")));
    let bill_ids = read(&registry, "customers.C1002.bill_ids").unwrap();
    assert!(bill_ids.as_array().unwrap().contains(&json!(bill_id)));
}

#[test]
fn refuel_outside_zero_to_two_gb_is_refused() {
    for gb in [5.0, -1.0, 0.0, 2.0001, 3.0, 1e300, -0.0] {
        check_refused(
            agent(),
            "refuel_data",
            json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": gb}),
            "refuel_amount_out_of_range",
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Any amount: done and charged at the plan's rate exactly when 0 < gb <= 2, otherwise
    /// refused with the store unchanged.
    #[test]
    fn refuel_property(gb in prop_oneof![-3.0_f64..5.0, 0.0_f64..=2.0, Just(2.0), Just(0.001)], line in prop::sample::select(vec![("C1001", "L1001", 500_i64), ("C1002", "L1006", 10), ("C1001", "L1002", 200)])) {
        let (customer_id, line_id, cents_per_gb) = line;
        let registry = registry();
        let before = registry.store().snapshot().unwrap();
        let result = run(&registry, &agent(), "refuel_data", json!({"customer_id": customer_id, "line_id": line_id, "gb_amount": gb}));
        let megabytes = (gb * 1000.0).round();
        if gb > 0.0 && gb <= 2.0 && megabytes >= 1.0 {
            let out = result.unwrap().output.to_json();
            let expected_cents = ((cents_per_gb as f64) * megabytes / 1000.0).round();
            prop_assert_eq!((out["charge"].as_f64().unwrap() * 100.0).round(), expected_cents);
            prop_assert_eq!(out["new_data_refueling_gb"].as_f64().unwrap(), megabytes / 1000.0);
        } else {
            let is_range_refusal = matches!(&result, Err(Error::Refused(r)) if r.code() == "refuel_amount_out_of_range");
            prop_assert!(is_range_refusal, "{:?}", result);
            prop_assert_eq!(registry.store().snapshot().unwrap(), before);
        }
    }
}

// ---- plans, roaming, suspension ----

#[test]
fn plan_changes() {
    let out = check_done(
        agent(),
        "change_plan",
        json!({"customer_id": "C1001", "line_id": "L1001", "plan_id": "P1002"}),
        &[("lines.L1001.plan_id", json!("P1002")), ("lines.L1001.last_plan_change_date", json!("2025-02-25"))],
    );
    assert_eq!(out["new_price_per_month"], 65.0);
    check_refused(
        agent(),
        "change_plan",
        json!({"customer_id": "C1001", "line_id": "L1001", "plan_id": "P1001"}),
        "same_plan",
    );
    check_refused(
        agent(),
        "change_plan",
        json!({"customer_id": "C1001", "line_id": "L1004", "plan_id": "P1002"}),
        "line_not_on_account",
    );
}

#[test]
fn roaming_is_enabled_at_no_cost() {
    let registry = registry();
    let bills_before = registry.store().snapshot().unwrap().bills;
    let out = check_done_in(
        &registry,
        &agent(),
        "enable_roaming",
        json!({"customer_id": "C1001", "line_id": "L1001"}),
        &[("lines.L1001.roaming_enabled", json!(true))],
    );
    assert_eq!(out["charge"], 0.0);
    assert_eq!(out["changed"], true);
    assert_eq!(registry.store().snapshot().unwrap().bills, bills_before, "no charge anywhere");
    // Already on: nothing changes.
    let before = registry.store().snapshot().unwrap();
    let out =
        check_done_in(&registry, &agent(), "enable_roaming", json!({"customer_id": "C1002", "line_id": "L1004"}), &[]);
    assert_eq!(out["changed"], false);
    assert_eq!(registry.store().snapshot().unwrap(), before);
    check_done_in(
        &registry,
        &agent(),
        "disable_roaming",
        json!({"customer_id": "C1001", "line_id": "L1002"}),
        &[("lines.L1002.roaming_enabled", json!(false))],
    );
}

#[test]
fn only_an_active_line_is_suspended() {
    check_done(
        agent(),
        "suspend_line",
        json!({"customer_id": "C1001", "line_id": "L1001", "reason": "travelling for three months"}),
        &[("lines.L1001.status", json!("Suspended")), ("lines.L1001.suspension_start_date", json!("2025-02-25"))],
    );
    check_refused(agent(), "suspend_line", json!({"customer_id": "C1001", "line_id": "L1003"}), "line_not_active");
    check_refused(agent(), "suspend_line", json!({"customer_id": "C1003", "line_id": "L1009"}), "line_not_active");
}

// ---- resume ----

#[test]
fn resume_when_nothing_is_overdue_and_the_contract_runs() {
    let registry = registry();
    let out = check_done_in(
        &registry,
        &agent(),
        "resume_line",
        json!({"customer_id": "C1001", "line_id": "L1003"}),
        &[("lines.L1003.status", json!("Active"))],
    );
    assert!(out["note"].as_str().unwrap().contains("reboot"));
    assert_eq!(read(&registry, "lines.L1003.suspension_start_date"), None);
    check_refused_in(
        &registry,
        &agent(),
        "resume_line",
        json!({"customer_id": "C1001", "line_id": "L1001"}),
        "line_not_suspended",
    );
}

#[test]
fn an_overdue_bill_blocks_resuming() {
    let overdue = tau2_edited(&[(
        "total_due = 150.0\ndue_date = \"2025-02-19\"\nstatus = \"Issued\"",
        "total_due = 150.0\ndue_date = \"2025-02-19\"\nstatus = \"Overdue\"",
    )]);
    check_refused_on(
        &overdue,
        agent(),
        "resume_line",
        json!({"customer_id": "C1001", "line_id": "L1003"}),
        "overdue_bill_blocks_resume",
    );
}

#[test]
fn an_ended_contract_blocks_resuming_even_when_paid() {
    let ended = tau2_edited(&[("contract_end_date = \"2026-06-30\"", "contract_end_date = \"2025-01-31\"")]);
    check_refused_on(
        &ended,
        agent(),
        "resume_line",
        json!({"customer_id": "C1001", "line_id": "L1003"}),
        "contract_ended",
    );
    // Ending today is not past.
    let today = tau2_edited(&[("contract_end_date = \"2026-06-30\"", "contract_end_date = \"2025-02-25\"")]);
    check_done_in(
        &registry_with(&today),
        &agent(),
        "resume_line",
        json!({"customer_id": "C1001", "line_id": "L1003"}),
        &[("lines.L1003.status", json!("Active"))],
    );
    // The clock matters: on the machine's date (2026 or later) the tau2 contract has ended.
    let store = AccountStore::temporary_with(&tau2()).unwrap();
    let late = ActionRegistry::new(
        store,
        RegistryOptions { today: Some("2026-07-01".parse().unwrap()), ..RegistryOptions::default() },
    )
    .unwrap();
    check_refused_in(
        &late,
        &agent(),
        "resume_line",
        json!({"customer_id": "C1001", "line_id": "L1003"}),
        "contract_ended",
    );
}

#[test]
fn pay_the_overdue_bill_then_resume() {
    // Sarah's line L1005 suspended for her overdue bill B1005.
    let data = tau2_edited(&[(
        "line_id = \"L1005\"\nphone_number = \"555-123-2005\"\nstatus = \"Active\"",
        "line_id = \"L1005\"\nphone_number = \"555-123-2005\"\nstatus = \"Suspended\"\nsuspension_start_date = \"2025-02-20\"",
    )]);
    let registry = registry_with(&data);
    let sarah = customer("C1002");
    let line = json!({"customer_id": "C1002", "line_id": "L1005"});
    check_refused_in(&registry, &sarah, "resume_line", line.clone(), "overdue_bill_blocks_resume");
    check_done_in(&registry, &sarah, "send_payment_request", json!({"customer_id": "C1002", "bill_id": "B1005"}), &[]);
    check_refused_in(&registry, &sarah, "resume_line", line.clone(), "overdue_bill_blocks_resume");
    check_done_in(
        &registry,
        &sarah,
        "make_payment",
        json!({"customer_id": "C1002", "bill_id": "B1005", "payment_method": "5678"}),
        &[("bills.B1005.status", json!("Paid"))],
    );
    check_done_in(&registry, &sarah, "resume_line", line, &[("lines.L1005.status", json!("Active"))]);
}

// ---- payment extension ----

#[test]
fn one_payment_extension_per_quarter() {
    let out = check_done(
        agent(),
        "grant_payment_extension",
        json!({"customer_id": "C1001", "bill_id": "B1002"}),
        &[("bills.B1002.due_date", json!("2025-03-11")), ("customers.C1001.last_extension_date", json!("2025-02-25"))],
    );
    assert_eq!(out["old_due_date"], "2025-02-19");
    // Sarah had one on 2025-01-05, in this quarter.
    check_refused(
        agent(),
        "grant_payment_extension",
        json!({"customer_id": "C1002", "bill_id": "B1005"}),
        "extension_already_used",
    );
    check_refused(
        agent(),
        "grant_payment_extension",
        json!({"customer_id": "C1001", "bill_id": "B1001"}),
        "bill_not_extendable",
    );
    // Next quarter it is possible again, and an overdue bill becomes issued.
    let store = AccountStore::temporary_with(&tau2()).unwrap();
    let april = ActionRegistry::new(
        store,
        RegistryOptions { today: Some("2025-04-02".parse().unwrap()), ..RegistryOptions::default() },
    )
    .unwrap();
    check_done_in(
        &april,
        &agent(),
        "grant_payment_extension",
        json!({"customer_id": "C1002", "bill_id": "B1005"}),
        &[("bills.B1005.status", json!("Issued")), ("bills.B1005.due_date", json!("2025-04-16"))],
    );
}

// ---- who may act ----

#[test]
fn a_customer_acts_only_on_their_own_lines_and_bills() {
    let john = customer("C1001");
    check_refused(
        john.clone(),
        "refuel_data",
        json!({"customer_id": "C1002", "line_id": "L1004", "gb_amount": 1.0}),
        "not_your_account",
    );
    check_refused(
        john.clone(),
        "refuel_data",
        json!({"customer_id": "C1001", "line_id": "L1004", "gb_amount": 1.0}),
        "not_your_account",
    );
    check_refused(john.clone(), "resume_line", json!({"customer_id": "C1001", "line_id": "L1009"}), "not_your_account");
    check_refused(
        john.clone(),
        "send_payment_request",
        json!({"customer_id": "C1001", "bill_id": "B1005"}),
        "not_your_account",
    );
    check_refused(john.clone(), "get_bills_for_customer", json!({"customer_id": "C1002"}), "not_your_account");
    check_refused(
        john.clone(),
        "get_data_usage",
        json!({"customer_id": "C1002", "line_id": "L1004"}),
        "not_your_account",
    );
    check_refused(john.clone(), "get_customer_by_phone", json!({"phone_number": "555-123-1002"}), "not_your_account");
    let out = check_done(john, "get_customer_by_name", json!({"full_name": "Sarah Johnson", "dob": "1990-11-22"}), &[]);
    assert_eq!(out, json!([]), "a customer does not find other customers");
    // An agent is held to consistency: the line must be on the named account.
    check_refused(
        agent(),
        "enable_roaming",
        json!({"customer_id": "C1001", "line_id": "L1004"}),
        "line_not_on_account",
    );
}

#[test]
fn a_customer_change_needs_a_confirmation_for_exactly_that_request() {
    let registry = registry();
    let john = customer("C1001");
    let Actor::Customer { conversation_id, .. } = &john else { unreachable!() };
    let refuel = |gb: f64| request("refuel_data", json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": gb}));
    let before = registry.store().snapshot().unwrap();
    let n_audit = registry.store().audit_all().unwrap().len();

    let no_token = ActionCall::new(refuel(1.0), john.clone()).with_idempotency_key(IdempotencyKey::random());
    assert!(matches!(registry.run_blocking(no_token), Err(Error::ConfirmationRequired { .. })));

    let token_for_two = registry.confirm(conversation_id, &refuel(2.0));
    let wrong_args = ActionCall::new(refuel(1.0), john.clone())
        .with_idempotency_key(IdempotencyKey::random())
        .with_confirmation(token_for_two);
    assert!(matches!(registry.run_blocking(wrong_args), Err(Error::ConfirmationInvalid { .. })));

    let other_conversation = registry.confirm(&ConversationId::parse("someone-else").unwrap(), &refuel(1.0));
    let stolen = ActionCall::new(refuel(1.0), john.clone())
        .with_idempotency_key(IdempotencyKey::random())
        .with_confirmation(other_conversation);
    assert!(matches!(registry.run_blocking(stolen), Err(Error::ConfirmationInvalid { .. })));

    let forged = ActionCall::new(refuel(1.0), john.clone())
        .with_idempotency_key(IdempotencyKey::random())
        .with_confirmation(ConfirmationToken::from_text("yes"));
    assert!(matches!(registry.run_blocking(forged), Err(Error::ConfirmationInvalid { .. })));

    assert_eq!(registry.store().snapshot().unwrap(), before);
    assert_eq!(registry.store().audit_all().unwrap().len(), n_audit);

    let token = registry.confirm(conversation_id, &refuel(1.0));
    let call = ActionCall::new(refuel(1.0), john.clone())
        .with_idempotency_key(IdempotencyKey::random())
        .with_confirmation(token.clone());
    registry.run_blocking(call).unwrap();
    let again =
        ActionCall::new(refuel(1.0), john).with_idempotency_key(IdempotencyKey::random()).with_confirmation(token);
    assert!(matches!(registry.run_blocking(again), Err(Error::ConfirmationUsed)), "a token works once");
    assert_eq!(read(&registry, "lines.L1001.data_refueling_gb"), Some(json!(1.0)));
}

#[test]
fn agents_and_reads_need_no_confirmation_but_writes_need_a_key() {
    let registry = registry();
    let call = ActionCall::new(request("enable_roaming", json!({"customer_id": "C1001", "line_id": "L1001"})), agent());
    assert!(matches!(registry.run_blocking(call), Err(Error::IdempotencyKeyRequired { .. })));
    let read = ActionCall::new(request("get_bills_for_customer", json!({"customer_id": "C1001"})), customer("C1001"));
    registry.run_blocking(read).unwrap();
}

// ---- idempotency ----

#[test]
fn a_retried_request_executes_once_and_returns_the_first_result() {
    let registry = registry();
    let john = customer("C1001");
    let Actor::Customer { conversation_id, .. } = &john else { unreachable!() };
    let refuel = request("refuel_data", json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": 1.0}));
    let key = IdempotencyKey::parse("conv-C1001:turn-4").unwrap();
    let call = ActionCall::new(refuel.clone(), john.clone())
        .with_idempotency_key(key.clone())
        .with_confirmation(registry.confirm(conversation_id, &refuel));
    let first = registry.run_blocking(call.clone()).unwrap();
    let second = registry.run_blocking(call.clone()).unwrap();
    assert!(!first.replayed && second.replayed);
    assert_eq!(first.output, second.output);
    assert_eq!(first.audit_sequence, second.audit_sequence);
    assert_eq!(read(&registry, "lines.L1001.data_refueling_gb"), Some(json!(1.0)), "refuelled once");
    assert_eq!(registry.store().audit_for_customer(&CustomerId::parse("C1001").unwrap()).unwrap().len(), 1);

    // Same key, other arguments: a typed conflict, nothing changes.
    let before = registry.store().snapshot().unwrap();
    let other = request("refuel_data", json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": 2.0}));
    let conflicting = ActionCall::new(other.clone(), john.clone())
        .with_idempotency_key(key.clone())
        .with_confirmation(registry.confirm(conversation_id, &other));
    assert!(matches!(registry.run_blocking(conflicting), Err(Error::IdempotencyConflict { .. })));
    // Same key, same arguments, another actor: also a conflict.
    let by_agent = ActionCall::new(refuel, agent()).with_idempotency_key(key);
    assert!(matches!(registry.run_blocking(by_agent), Err(Error::IdempotencyConflict { .. })));
    assert_eq!(registry.store().snapshot().unwrap(), before);
}

#[test]
fn a_retried_refusal_returns_the_same_refusal() {
    let registry = registry();
    let call = ActionCall::new(request("resume_line", json!({"customer_id": "C1001", "line_id": "L1001"})), agent())
        .with_idempotency_key(IdempotencyKey::random());
    let first = registry.run_blocking(call.clone()).unwrap_err();
    let second = registry.run_blocking(call).unwrap_err();
    assert_eq!(first.to_string(), second.to_string());
    assert_eq!(registry.store().audit_all().unwrap().len(), 1, "one audit entry for one request");
}

#[test]
fn concurrent_payment_requests_leave_at_most_one_awaiting() {
    let data = tau2_edited(&[(
        "total_due = 425.0\ndue_date = \"2025-01-19\"\nstatus = \"Paid\"",
        "total_due = 425.0\ndue_date = \"2025-01-19\"\nstatus = \"Overdue\"",
    )]);
    for _ in 0..5 {
        let store = AccountStore::temporary_with(&data).unwrap();
        // Two registries over one store: only sled's transactions stand between them.
        let registries: Vec<Arc<ActionRegistry>> = (0..2)
            .map(|_| {
                Arc::new(
                    ActionRegistry::new(
                        store.clone(),
                        RegistryOptions { today: Some(TAU2_TODAY), ..RegistryOptions::default() },
                    )
                    .unwrap(),
                )
            })
            .collect();
        let handles: Vec<_> = ["B1004", "B1005"]
            .into_iter()
            .zip(registries)
            .map(|(bill, registry)| {
                std::thread::spawn(move || {
                    run(&registry, &agent(), "send_payment_request", json!({"customer_id": "C1002", "bill_id": bill}))
                        .is_ok()
                })
            })
            .collect();
        let n_done = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(n_done, 1);
        let awaiting =
            store.snapshot().unwrap().bills.values().filter(|b| b.status.as_str() == "Awaiting Payment").count();
        assert_eq!(awaiting, 1);
    }
}

// ---- audit ----

#[test]
fn the_audit_log_records_who_what_and_the_result_per_customer() {
    let registry = registry();
    let john = customer("C1001");
    run(&registry, &john, "enable_roaming", json!({"customer_id": "C1001", "line_id": "L1001"})).unwrap();
    run(&registry, &john, "resume_line", json!({"customer_id": "C1001", "line_id": "L1001"})).unwrap_err();
    run(&registry, &agent(), "send_payment_request", json!({"customer_id": "C1002", "bill_id": "B1005"})).unwrap();
    run(
        &registry,
        &agent(),
        "transfer_to_human_agents",
        json!({"summary": "wants a new contract", "customer_id": "C1001"}),
    )
    .unwrap();
    let log = registry.store().audit_for_customer(&CustomerId::parse("C1001").unwrap()).unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["enable_roaming", "resume_line", "transfer_to_human_agents"]);
    assert_eq!(log[0].actor, john);
    assert_eq!(log[0].args, json!({"customer_id": "C1001", "line_id": "L1001"}));
    assert!(matches!(&log[0].result, AuditResult::Done { output } if output["roaming_enabled"] == true));
    assert!(matches!(&log[1].result, AuditResult::Refused { code, .. } if code == "line_not_suspended"));
    assert_eq!(log[0].business_date, TAU2_TODAY);
    assert!(log.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let sarah = registry.store().audit_for_customer(&CustomerId::parse("C1002").unwrap()).unwrap();
    assert_eq!(sarah.len(), 1);
    assert_eq!(sarah[0].actor, agent());
}

// ---- store ----

#[test]
fn dotted_paths_read_the_records() {
    let registry = registry();
    assert_eq!(read(&registry, "bills.B1005.status"), Some(json!("Overdue")));
    assert_eq!(read(&registry, "lines.L1002.roaming_enabled"), Some(json!(true)));
    assert_eq!(read(&registry, "customers.C1001.payment_methods.0.account_number_last_4"), Some(json!("1235")));
    assert_eq!(read(&registry, "plans.P1003.data_refueling_price_per_gb"), Some(json!(0.1)));
    for missing in [
        "",
        "bills",
        "bills.B9999.status",
        "bills.B1005.nope",
        "lines.L1002.roaming_enabled.x",
        "customers.C1001.payment_methods.7",
        "../../etc/passwd",
        "audit.C1001",
    ] {
        assert_eq!(read(&registry, missing), None, "{missing:?}");
    }
}

#[test]
fn imports_replace_or_merge_and_bad_files_change_nothing() {
    let store = AccountStore::temporary().unwrap();
    assert!(store.is_empty().unwrap());
    assert!(store.seed_if_empty(&tau2()).unwrap());
    assert!(!store.seed_if_empty(&AccountsData::from_toml_str(prompts::DEMO_ACCOUNTS).unwrap()).unwrap());
    assert_eq!(store.snapshot().unwrap(), tau2());

    let cheaper = tau2_edited(&[("price_per_month = 40.0", "price_per_month = 35.0")]);
    let mut only_plan = AccountsData { today: None, ..AccountsData::default() };
    let basic = cheaper.plans.values().next().unwrap().clone();
    only_plan.plans.insert(basic.plan_id.clone(), basic);
    store.import(&only_plan, ImportMode::Merge).unwrap();
    assert_eq!(store.read_path("plans.P1001.price_per_month").unwrap(), Some(json!(35.0)));
    assert_eq!(store.snapshot().unwrap().customers.len(), 4, "merge keeps the rest");

    let before = store.snapshot().unwrap();
    let mut dangling = AccountsData::default();
    let mut line = before.lines.values().next().unwrap().clone();
    line.plan_id = "P4242".parse().unwrap();
    dangling.lines.insert(line.line_id.clone(), line);
    assert!(store.import(&dangling, ImportMode::Merge).is_err());
    assert_eq!(store.snapshot().unwrap(), before);

    let demo = AccountsData::from_toml_str(prompts::DEMO_ACCOUNTS).unwrap();
    store.import(&demo, ImportMode::Replace).unwrap();
    assert_eq!(store.snapshot().unwrap(), demo);
    assert_eq!(store.customer_by_phone(&"555-123-2002".parse().unwrap()).unwrap(), None, "old phone index gone");
}

/// Opens the store at `path`, waiting while a just-dropped handle's sled flusher thread still
/// holds the directory's lock (sled lets go of it a moment after the last handle drops).
fn reopen(path: &std::path::Path) -> Result<AccountStore, Error> {
    let started = std::time::Instant::now();
    loop {
        match AccountStore::open_path(path) {
            Err(error) if error.to_string().contains("lock") && started.elapsed().as_secs() < 30 => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

#[test]
fn the_store_survives_reopening_and_checks_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = AccountStore::open_path(dir.path()).unwrap();
        store.import(&tau2(), ImportMode::Replace).unwrap();
        assert_eq!(store.schema_version().unwrap(), accounts::store::SCHEMA_VERSION);
    }
    {
        let store = reopen(dir.path()).unwrap();
        assert_eq!(store.snapshot().unwrap(), tau2());
    }
    {
        let started = std::time::Instant::now();
        let db = loop {
            match storage::Store::open_sled(dir.path(), None) {
                Err(storage::Error::Locked(_)) if started.elapsed().as_secs() < 30 => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                result => break result.unwrap(),
            }
        };
        db.tree("accounts.meta").unwrap().insert("schema_version", 99_u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
        drop(db);
        let error = reopen(dir.path()).unwrap_err();
        assert!(matches!(error, Error::SchemaTooNew { found: 99, .. }), "{error}");
    }
}

#[test]
fn a_temporary_copy_is_independent() {
    let registry = registry();
    let copy = registry.store().temporary_copy().unwrap();
    run(&registry, &agent(), "enable_roaming", json!({"customer_id": "C1001", "line_id": "L1001"})).unwrap();
    assert_eq!(copy.read_path("lines.L1001.roaming_enabled").unwrap(), Some(json!(false)));
}

#[test]
fn identity_verification_matches_name_and_date_of_birth() {
    let store = AccountStore::temporary_with(&tau2()).unwrap();
    let c1002 = CustomerId::parse("C1002").unwrap();
    assert!(store.identity_matches(&c1002, "sarah johnson", "1990-11-22".parse().unwrap()).unwrap());
    assert!(!store.identity_matches(&c1002, "Sarah Jonson", "1990-11-22".parse().unwrap()).unwrap());
    assert!(!store.identity_matches(&c1002, "Sarah Johnson", "1990-11-21".parse().unwrap()).unwrap());
}

// ---- the demo seed covers every flow ----

#[test]
fn the_demo_seed_has_a_case_for_every_flow() {
    let demo = AccountsData::from_toml_str(prompts::DEMO_ACCOUNTS).unwrap();
    assert_eq!(demo.today, None, "the demo runs on the real date");
    let plans: Vec<(&str, &str, i64, i64)> = demo
        .plans
        .values()
        .map(|p| (p.plan_id.as_str(), p.name.as_str(), p.price_per_month.cents(), p.refuel_price_per_gb.cents()))
        .collect();
    assert_eq!(
        plans,
        [
            ("P1001", "Basic Plan", 4000, 500),
            ("P1002", "Premium Plan", 6500, 200),
            ("P1003", "Unlimited Plus", 8500, 10),
            ("P1004", "Family Share", 12000, 300),
            ("P1005", "IoT Basic", 1500, 1000)
        ]
    );
    let registry =
        ActionRegistry::new(AccountStore::temporary_with(&demo).unwrap(), RegistryOptions::default()).unwrap();
    let a = |id: &str| customer(id);
    // Overdue bill: request, then pay with the only card.
    check_done_in(
        &registry,
        &a("C2001"),
        "send_payment_request",
        json!({"customer_id": "C2001", "bill_id": "B2002"}),
        &[],
    );
    check_done_in(
        &registry,
        &a("C2001"),
        "make_payment",
        json!({"customer_id": "C2001", "bill_id": "B2002"}),
        &[("bills.B2002.status", json!("Paid"))],
    );
    // Suspended, resumable.
    check_done_in(
        &registry,
        &a("C2002"),
        "resume_line",
        json!({"customer_id": "C2002", "line_id": "L2003"}),
        &[("lines.L2003.status", json!("Active"))],
    );
    // Suspended, contract ended.
    check_refused_in(
        &registry,
        &a("C2003"),
        "resume_line",
        json!({"customer_id": "C2003", "line_id": "L2004"}),
        "contract_ended",
    );
    // Over the data limit: refuel.
    let usage = check_done_in(
        &registry,
        &a("C2004"),
        "get_data_usage",
        json!({"customer_id": "C2004", "line_id": "L2005"}),
        &[],
    );
    assert_eq!(usage["over_limit"], true);
    check_done_in(
        &registry,
        &a("C2004"),
        "refuel_data",
        json!({"customer_id": "C2004", "line_id": "L2005", "gb_amount": 1.0}),
        &[("lines.L2005.data_refueling_gb", json!(1.0))],
    );
    let found = check_done_in(
        &registry,
        &agent(),
        "get_customer_by_name",
        json!({"full_name": "Tomas Herrera", "dob": "1985-05-23"}),
        &[],
    );
    assert_eq!(found[0]["customer_id"], "C2004", "accents are ignored");
    // Traveller without roaming.
    check_done_in(
        &registry,
        &a("C2005"),
        "enable_roaming",
        json!({"customer_id": "C2005", "line_id": "L2006"}),
        &[("lines.L2006.roaming_enabled", json!(true))],
    );
    // Overdue bill blocks resume; the expired card is skipped when paying.
    check_refused_in(
        &registry,
        &a("C2006"),
        "resume_line",
        json!({"customer_id": "C2006", "line_id": "L2009"}),
        "overdue_bill_blocks_resume",
    );
    check_done_in(
        &registry,
        &a("C2006"),
        "send_payment_request",
        json!({"customer_id": "C2006", "bill_id": "B2009"}),
        &[],
    );
    let receipt =
        check_done_in(&registry, &a("C2006"), "make_payment", json!({"customer_id": "C2006", "bill_id": "B2009"}), &[]);
    assert_eq!(receipt["method"], "Debit Card •••• 6610");
    check_done_in(
        &registry,
        &a("C2006"),
        "resume_line",
        json!({"customer_id": "C2006", "line_id": "L2009"}),
        &[("lines.L2009.status", json!("Active"))],
    );
    // One bill already awaiting payment.
    check_refused_in(
        &registry,
        &a("C2008"),
        "send_payment_request",
        json!({"customer_id": "C2008", "bill_id": "B2012"}),
        "payment_already_requested",
    );
    // Pending verification, nothing on the account.
    let lines = check_done_in(&registry, &agent(), "get_lines_for_customer", json!({"customer_id": "C2007"}), &[]);
    assert_eq!(lines, json!([]));
}

// ---- the command line ----

#[test]
fn the_import_command_loads_a_file_and_reports_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let settings = server::config::Settings::for_data_dir(dir.path());
    let file = dir.path().join("db.toml");
    std::fs::write(&file, TAU2_DB).unwrap();
    server::commands::accounts::import(&settings, &file).unwrap();
    {
        let db = storage::Store::open_sled(&dir.path().join("db"), None).unwrap();
        let store = AccountStore::open(&db).unwrap();
        assert_eq!(store.snapshot().unwrap(), tau2());
    }
    for bad in ["", "[[plans]]\nplan_id = 3", &TAU2_DB.replace("P1001", "P 1001")] {
        std::fs::write(&file, bad).unwrap();
        let error = server::commands::accounts::import(&settings, &file).unwrap_err();
        assert!(error.downcast_ref::<server::BadInput>().is_some(), "{error:#}");
    }
    let missing = server::commands::accounts::import(&settings, &dir.path().join("nope.toml")).unwrap_err();
    assert!(missing.downcast_ref::<server::BadInput>().is_some());
    let db = storage::Store::open_sled(&dir.path().join("db"), None).unwrap();
    assert_eq!(AccountStore::open(&db).unwrap().snapshot().unwrap(), tau2(), "bad files left the store alone");
}

#[test]
fn the_registry_is_wired_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tau2.toml");
    std::fs::write(&file, TAU2_DB).unwrap();
    let mut settings = server::config::Settings::for_data_dir(dir.path());
    settings.accounts.seed = file.display().to_string();
    settings.accounts.today = Some(TAU2_TODAY);
    let db = storage::Store::temporary().unwrap();
    let registry = accounts::open_registry(&db, &settings.accounts, &settings.hooks).unwrap();
    assert_eq!(registry.today(), TAU2_TODAY);
    assert_eq!(registry.store().snapshot().unwrap(), tau2());
    // The seed only fills an empty store.
    settings.accounts.seed = "demo".into();
    let again = accounts::open_registry(&db, &settings.accounts, &settings.hooks).unwrap();
    assert_eq!(again.store().snapshot().unwrap().customers.len(), 4);

    let demo =
        accounts::open_registry(&storage::Store::temporary().unwrap(), &settings.accounts, &settings.hooks).unwrap();
    assert_eq!(demo.store().snapshot().unwrap().customers.len(), 8);

    settings.accounts.seed = dir.path().join("missing.toml").display().to_string();
    let error = accounts::open_registry(&storage::Store::temporary().unwrap(), &settings.accounts, &settings.hooks)
        .unwrap_err();
    assert!(matches!(error, Error::InvalidAccounts(_)), "{error}");
}
