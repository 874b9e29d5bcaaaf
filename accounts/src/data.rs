//! A whole account database: what `switchboard accounts import FILE` reads, what the store
//! snapshots, what tests compare value for value.
//!
//! The file is the tau2-bench telecom `db.toml` shape (`[[plans]]`, `[[customers]]`, `[[lines]]`,
//! `[[devices]]`, `[[bills]]`) with two optional additions: `[meta] today = "YYYY-MM-DD"` (the
//! business date the data is written for; the tau2 policy says "the current time is
//! 2025-02-25") and `[[payments]]` (payments taken by this store, written by an export).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::domain::{Bill, Customer, Device, InvalidRecord, Line, Payment, Plan, parse_date};
use super::ids::{BillId, CustomerId, DeviceId, LineId, PaymentId, PlanId};
use super::{Error, Result};

/// Largest accounts file read (the tau2 file is 10 kB; an operator's export can be large).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Every record of an account database, keyed by id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountsData {
    /// The business date the data was written for (`[meta] today`), if the file says.
    pub today: Option<NaiveDate>,
    pub plans: BTreeMap<PlanId, Plan>,
    pub customers: BTreeMap<CustomerId, Customer>,
    pub lines: BTreeMap<LineId, Line>,
    pub devices: BTreeMap<DeviceId, Device>,
    pub bills: BTreeMap<BillId, Bill>,
    pub payments: BTreeMap<PaymentId, Payment>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    today: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta: Option<FileMeta>,
    #[serde(default)]
    plans: Vec<Plan>,
    #[serde(default)]
    devices: Vec<Device>,
    #[serde(default)]
    lines: Vec<Line>,
    #[serde(default)]
    customers: Vec<Customer>,
    #[serde(default)]
    bills: Vec<Bill>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    payments: Vec<Payment>,
}

fn keyed<K: Ord + Clone + std::fmt::Display, V>(
    kind: &str,
    records: Vec<V>,
    key: impl Fn(&V) -> &K,
) -> Result<BTreeMap<K, V>, InvalidRecord> {
    let mut map = BTreeMap::new();
    for record in records {
        let id = key(&record).clone();
        if map.insert(id.clone(), record).is_some() {
            return Err(InvalidRecord::new(format!("{kind} {id}"), "appears twice"));
        }
    }
    Ok(map)
}

impl AccountsData {
    /// Parses and checks a file in the tau2 `db.toml` shape.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let file: AccountsFile =
            toml::from_str(text).map_err(|error| Error::InvalidAccounts(error.message().trim().to_string()))?;
        let invalid = |error: InvalidRecord| Error::InvalidAccounts(error.to_string());
        let today = file
            .meta
            .and_then(|meta| meta.today)
            .map(|raw| parse_date("meta", "today", &raw))
            .transpose()
            .map_err(invalid)?;
        let data = AccountsData {
            today,
            plans: keyed("plan", file.plans, |plan| &plan.plan_id).map_err(invalid)?,
            customers: keyed("customer", file.customers, |customer| &customer.customer_id).map_err(invalid)?,
            lines: keyed("line", file.lines, |line| &line.line_id).map_err(invalid)?,
            devices: keyed("device", file.devices, |device| &device.device_id).map_err(invalid)?,
            bills: keyed("bill", file.bills, |bill| &bill.bill_id).map_err(invalid)?,
            payments: keyed("payment", file.payments, |payment| &payment.payment_id).map_err(invalid)?,
        };
        data.check_references().map_err(invalid)?;
        Ok(data)
    }

    /// Reads and parses a file (at most [`MAX_FILE_BYTES`]).
    pub fn from_file(path: &Path) -> Result<Self> {
        let metadata = std::fs::metadata(path)
            .map_err(|error| Error::InvalidAccounts(format!("cannot read {}: {error}", path.display())))?;
        if !metadata.is_file() {
            return Err(Error::InvalidAccounts(format!("{} is not a file", path.display())));
        }
        if metadata.len() > MAX_FILE_BYTES {
            return Err(Error::InvalidAccounts(format!(
                "{} is larger than {} MB",
                path.display(),
                MAX_FILE_BYTES / (1024 * 1024)
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|error| Error::InvalidAccounts(format!("cannot read {}: {error}", path.display())))?;
        Self::from_toml_str(&text).map_err(|error| match error {
            Error::InvalidAccounts(why) => Error::InvalidAccounts(format!("{}: {why}", path.display())),
            other => other,
        })
    }

    /// Writes the data back in the tau2 `db.toml` shape (plus `[meta]` and `[[payments]]` when set).
    pub fn to_toml_string(&self) -> Result<String> {
        let file = AccountsFile {
            meta: self.today.map(|today| FileMeta { today: Some(today.to_string()) }),
            plans: self.plans.values().cloned().collect(),
            devices: self.devices.values().cloned().collect(),
            lines: self.lines.values().cloned().collect(),
            customers: self.customers.values().cloned().collect(),
            bills: self.bills.values().cloned().collect(),
            payments: self.payments.values().cloned().collect(),
        };
        toml::to_string(&file).map_err(|error| Error::Corrupt(format!("cannot write accounts as TOML: {error}")))
    }

    /// Every collection as JSON objects keyed by id, in the file's record shape.
    pub fn to_json(&self) -> serde_json::Value {
        fn collection<K: ToString, V: Serialize>(map: &BTreeMap<K, V>) -> serde_json::Value {
            serde_json::Value::Object(
                map.iter()
                    .map(|(id, record)| {
                        (id.to_string(), serde_json::to_value(record).unwrap_or(serde_json::Value::Null))
                    })
                    .collect(),
            )
        }
        serde_json::json!({
            "plans": collection(&self.plans),
            "customers": collection(&self.customers),
            "lines": collection(&self.lines),
            "devices": collection(&self.devices),
            "bills": collection(&self.bills),
            "payments": collection(&self.payments),
        })
    }

    /// Checks what one record cannot check alone: references between records.
    fn check_references(&self) -> Result<(), InvalidRecord> {
        if self.plans.is_empty() {
            return Err(InvalidRecord::new("accounts file", "has no plans"));
        }
        let mut line_phones = BTreeMap::new();
        for line in self.lines.values() {
            let name = format!("line {}", line.line_id);
            if !self.plans.contains_key(&line.plan_id) {
                return Err(InvalidRecord::new(name, format!("plan {} does not exist", line.plan_id)));
            }
            if let Some(device_id) = &line.device_id
                && !self.devices.contains_key(device_id)
            {
                return Err(InvalidRecord::new(name, format!("device {device_id} does not exist")));
            }
            if let Some(other) = line_phones.insert(line.phone_number.key(), line.line_id.clone()) {
                return Err(InvalidRecord::new(
                    name,
                    format!("phone number {} is also line {other}'s", line.phone_number),
                ));
            }
        }
        let mut line_owner: BTreeMap<&LineId, &CustomerId> = BTreeMap::new();
        let mut customer_phones = BTreeMap::new();
        for customer in self.customers.values() {
            let name = format!("customer {}", customer.customer_id);
            if let Some(other) = customer_phones.insert(customer.phone_number.key(), customer.customer_id.clone()) {
                return Err(InvalidRecord::new(
                    name,
                    format!("phone number {} is also customer {other}'s", customer.phone_number),
                ));
            }
            for line_id in &customer.line_ids {
                if !self.lines.contains_key(line_id) {
                    return Err(InvalidRecord::new(name, format!("line {line_id} does not exist")));
                }
                if let Some(other) = line_owner.insert(line_id, &customer.customer_id) {
                    return Err(InvalidRecord::new(name, format!("line {line_id} also belongs to customer {other}")));
                }
            }
            for bill_id in &customer.bill_ids {
                let Some(bill) = self.bills.get(bill_id) else {
                    return Err(InvalidRecord::new(name, format!("bill {bill_id} does not exist")));
                };
                if bill.customer_id != customer.customer_id {
                    return Err(InvalidRecord::new(name, format!("bill {bill_id} is customer {}'s", bill.customer_id)));
                }
            }
        }
        for bill in self.bills.values() {
            let listed = self.customers.get(&bill.customer_id).is_some_and(|c| c.bill_ids.contains(&bill.bill_id));
            if !listed {
                return Err(InvalidRecord::new(
                    format!("bill {}", bill.bill_id),
                    format!("customer {} does not exist or does not list it in bill_ids", bill.customer_id),
                ));
            }
        }
        for payment in self.payments.values() {
            let name = format!("payment {}", payment.payment_id);
            let Some(bill) = self.bills.get(&payment.bill_id) else {
                return Err(InvalidRecord::new(name, format!("bill {} does not exist", payment.bill_id)));
            };
            if bill.customer_id != payment.customer_id {
                return Err(InvalidRecord::new(
                    name,
                    format!("bill {} is not customer {}'s", bill.bill_id, payment.customer_id),
                ));
            }
        }
        Ok(())
    }

    /// The customer owning a line, if any.
    pub fn owner_of_line(&self, line_id: &LineId) -> Option<&Customer> {
        self.customers.values().find(|customer| customer.line_ids.contains(line_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAU2: &str = include_str!("../../data/tau2-telecom/db.toml");

    #[test]
    fn the_tau2_file_parses() {
        let data = AccountsData::from_toml_str(TAU2).unwrap();
        assert_eq!(data.plans.len(), 5);
        assert_eq!(data.customers.len(), 4);
        assert_eq!(data.lines.len(), 9);
        assert_eq!(data.devices.len(), 9);
        assert_eq!(data.bills.len(), 6);
        assert_eq!(data.today, None);
        let bill = &data.bills[&BillId::parse("B1001").unwrap()];
        assert_eq!(bill.total_due.cents(), 16050);
    }

    #[test]
    fn the_tau2_file_round_trips() {
        let data = AccountsData::from_toml_str(TAU2).unwrap();
        let text = data.to_toml_string().unwrap();
        assert_eq!(AccountsData::from_toml_str(&text).unwrap(), data);
    }

    #[track_caller]
    fn check_refused(edit: impl Fn(String) -> String, expected: &str) {
        let text = edit(TAU2.to_string());
        let error = AccountsData::from_toml_str(&text).unwrap_err().to_string();
        assert!(error.contains(expected), "expected {expected:?} in {error:?}");
    }

    #[test]
    fn broken_files_are_refused_with_the_record_named() {
        check_refused(
            |t| t.replace("plan_id = \"P1003\"\ndevice_id = \"D1004\"", "plan_id = \"P9\"\ndevice_id = \"D1004\""),
            "line L1004: plan P9 does not exist",
        );
        check_refused(
            |t| t.replace("data_used_gb = 3.2", "data_used_gb = -3.2"),
            "line L1001: data amount -3.2 is negative",
        );
        check_refused(
            |t| t.replace("total_due = 160.5", "total_due = 160.505"),
            "bill B1001: amount 160.505 has a fraction of a cent",
        );
        check_refused(
            |t| t.replace("status = \"Overdue\"", "status = \"Late\""),
            "bill B1005: unknown bill status \"Late\"",
        );
        check_refused(
            |t| t.replace("bill_ids = [\"B1004\", \"B1005\"]", "bill_ids = [\"B1004\"]"),
            "bill B1005: customer C1002 does not exist or does not list it",
        );
        check_refused(
            |t| t.replace("line_ids = [\"L1009\"]", "line_ids = [\"L1009\", \"L1001\"]"),
            "line L1001 also belongs to customer C1001",
        );
        check_refused(
            |t| t.replace("date_of_birth = \"1985-06-15\"", "date_of_birth = \"15/06/1985\""),
            "customer C1001: date_of_birth \"15/06/1985\" is not a date",
        );
        check_refused(
            |t| t.replace("[[plans]]\nplan_id = \"P1002\"", "[[plans]]\nplan_id = \"P1001\""),
            "plan P1001: appears twice",
        );
        check_refused(
            |t| t.replace("zip_code = \"90210\"", "zip_code = \"90210\"\nplanet = \"Mars\""),
            "unknown field `planet`",
        );
    }

    #[test]
    fn empty_and_hostile_files_are_refused() {
        for text in ["", "\n\n", "[[plans]]", "plans = 5", "\u{0}\u{1}garbage", "[meta]\ntoday = \"tomorrow\"\n"] {
            assert!(AccountsData::from_toml_str(text).is_err(), "{text:?}");
        }
        let huge_name = TAU2.replace("John Smith", &"J".repeat(10_000));
        assert!(AccountsData::from_toml_str(&huge_name).unwrap_err().to_string().contains("full_name is longer"));
    }

    #[test]
    fn meta_today_is_read() {
        let text = format!("[meta]\ntoday = \"2025-02-25\"\n{TAU2}");
        let data = AccountsData::from_toml_str(&text).unwrap();
        assert_eq!(data.today, NaiveDate::from_ymd_opt(2025, 2, 25));
    }
}
