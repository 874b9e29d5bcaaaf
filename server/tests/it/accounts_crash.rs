//! Crash safety: a child process streams payments into a store on disk and is killed with
//! SIGKILL in the middle; the reopened store must hold every payment the child acknowledged
//! and no half-applied change.
//!
//! The child is this test binary itself, re-run with a filter for `payment_stream_child` and
//! the store's path in `SWITCHBOARD_CRASH_CHILD_DIR` (without it, that test does nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use accounts::{
    AccountStore, AccountsData, ActionCall, ActionRegistry, ActionRequest, Actor, AuditResult, IdempotencyKey,
    ImportMode, RegistryOptions, TAU2_TODAY,
};
use serde_json::json;

const CHILD_ENV: &str = "SWITCHBOARD_CRASH_CHILD_DIR";
const N_CUSTOMERS: usize = 400;

/// Plans from tau2, then `n` customers with one line and one overdue $40 bill each.
pub(crate) fn stream_data(n: usize) -> AccountsData {
    let tau2 = super::accounts_domain::TAU2_DB;
    let plans_end = tau2.find("[[devices]]").unwrap();
    let mut text = tau2[..plans_end].to_string();
    for i in 0..n {
        text.push_str(&format!(
            r#"
[[lines]]
line_id = "L{i:05}"
phone_number = "555-{a:03}-{b:04}"
status = "Active"
plan_id = "P1001"
data_used_gb = 1.0
contract_end_date = "2027-01-31"

[[customers]]
customer_id = "C{i:05}"
full_name = "Stream Customer {i}"
date_of_birth = "1980-01-01"
email = "c{i}@example.net"
phone_number = "555-{c:03}-{b:04}"
account_status = "Active"
created_at = "2024-01-01T00:00:00"
line_ids = ["L{i:05}"]
bill_ids = ["B{i:05}"]
[[customers.payment_methods]]
method_type = "Credit Card"
account_number_last_4 = "4242"
expiration_date = "12/2030"
[customers.address]
street = "{i} Test St"
city = "Testville"
state = "CA"
zip_code = "90000"

[[bills]]
bill_id = "B{i:05}"
customer_id = "C{i:05}"
period_start = "2025-01-01"
period_end = "2025-01-31"
issue_date = "2025-01-05"
total_due = 40.0
due_date = "2025-01-19"
status = "Overdue"
[[bills.line_items]]
description = "Basic Plan"
amount = 40.0
date = "2025-01-05"
item_type = "Plan Charge"
"#,
            a = 100 + i / 10_000,
            b = i % 10_000,
            c = 200 + i / 10_000,
        ));
    }
    AccountsData::from_toml_str(&text).unwrap()
}

fn run(registry: &ActionRegistry, name: &str, args: serde_json::Value, key: String) -> serde_json::Value {
    let request = ActionRequest::parse(name, args).unwrap();
    let call = ActionCall::new(request, Actor::System).with_idempotency_key(IdempotencyKey::parse(key).unwrap());
    registry.run_blocking(call).unwrap().output.to_json()
}

/// The child: requests and takes payment for every bill, printing `ACK` after each payment
/// returns (that is, after its transaction was flushed).
#[test]
fn payment_stream_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let store = AccountStore::open_path(Path::new(&dir)).unwrap();
    let registry =
        ActionRegistry::new(store, RegistryOptions { today: Some(TAU2_TODAY), ..RegistryOptions::default() }).unwrap();
    for i in 0..N_CUSTOMERS {
        let args = json!({"customer_id": format!("C{i:05}"), "bill_id": format!("B{i:05}")});
        run(&registry, "send_payment_request", args.clone(), format!("request-{i}"));
        let receipt = run(&registry, "make_payment", args, format!("pay-{i}"));
        println!("ACK B{i:05} {}", receipt["payment_id"].as_str().unwrap());
    }
    println!("DONE");
}

fn crash_after(n_acks_before_kill: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = stream_data(N_CUSTOMERS);
    {
        let store = AccountStore::open_path(dir.path()).unwrap();
        store.import(&data, ImportMode::Replace).unwrap();
        store.flush().unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["accounts_crash::payment_stream_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    while acked.len() < n_acks_before_kill {
        let line = lines.next().expect("the child ended early").unwrap();
        assert_ne!(line, "DONE", "the child finished before the kill");
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (bill, payment) = rest.split_once(' ').unwrap();
            acked.insert(bill.to_string(), payment.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Whatever the child printed before it died was acknowledged too.
    for line in lines.map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (bill, payment) = rest.split_once(' ').unwrap();
            acked.insert(bill.to_string(), payment.to_string());
        }
    }

    let store = AccountStore::open_path(dir.path()).unwrap();
    let after = store.snapshot().unwrap();
    let audit = store.audit_all().unwrap();
    let done = |action: &str| -> BTreeSet<String> {
        audit
            .iter()
            .filter(|e| e.action == action && matches!(e.result, AuditResult::Done { .. }))
            .map(|e| e.args["bill_id"].as_str().unwrap().to_string())
            .collect()
    };
    let requested = done("send_payment_request");
    let paid_in_audit = done("make_payment");
    let payments_by_bill: BTreeMap<String, Vec<String>> =
        after.payments.values().fold(BTreeMap::new(), |mut map, p| {
            map.entry(p.bill_id.to_string()).or_default().push(p.payment_id.to_string());
            map
        });

    // No acknowledged payment is lost.
    for (bill, payment) in &acked {
        assert_eq!(store.read_path(&format!("bills.{bill}.status")).unwrap(), Some(json!("Paid")), "{bill}");
        assert_eq!(payments_by_bill.get(bill), Some(&vec![payment.clone()]), "{bill}");
    }
    // No half-applied change: each bill's status, payment records and audit entries agree.
    let mut n_paid = 0;
    for (bill_id, bill) in &after.bills {
        let id = bill_id.to_string();
        let n_payments = payments_by_bill.get(&id).map_or(0, Vec::len);
        match bill.status.as_str() {
            "Paid" => {
                n_paid += 1;
                assert_eq!(n_payments, 1, "{id}: one payment record");
                assert!(paid_in_audit.contains(&id) && requested.contains(&id), "{id}: audited");
            }
            "Awaiting Payment" => {
                assert_eq!(n_payments, 0, "{id}");
                assert!(requested.contains(&id) && !paid_in_audit.contains(&id), "{id}");
            }
            "Overdue" => {
                assert_eq!(n_payments, 0, "{id}");
                assert!(!requested.contains(&id) && !paid_in_audit.contains(&id), "{id}");
            }
            other => panic!("{id}: unexpected status {other}"),
        }
        assert_eq!(bill.total_due, data.bills[bill_id].total_due, "{id}: amount untouched");
    }
    eprintln!("killed after {} acknowledged payments; {n_paid} bills paid in the store", acked.len());
    assert!(n_paid >= acked.len());
    assert!(n_paid < N_CUSTOMERS, "the kill came in the middle of the stream");
    assert_eq!(after.customers, data.customers, "customers untouched");
    assert_eq!(after.lines, data.lines, "lines untouched");
}

#[test]
fn a_killed_payment_stream_loses_no_acknowledged_payment_and_leaves_no_half_change() {
    for n_acks in [5, 40, 90] {
        crash_after(n_acks);
    }
}
