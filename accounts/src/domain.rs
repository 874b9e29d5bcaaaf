//! The telecom account domain in the shape of tau2-bench's telecom `db.toml`: plans, customers,
//! lines, devices, bills (and the payments this store records).
//!
//! Each record is parsed from a serde record in the file's shape (`*Record`) through `TryFrom`, so
//! a value of a domain type has been checked: ids are ids, money is whole cents, a line carries
//! a suspension date only while suspended, a bill's total is the sum of its line items. Domain
//! types serialize back to the same shape, which is also how the store keeps them and how
//! dotted paths (`bills.B1005.status`) read them.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::ids::{BillId, CustomerId, DeviceId, LineId, PaymentId, PhoneNumber, PlanId};
use super::money::{DataAmount, Money};

/// Why a record of the accounts file was refused; the message names the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{record}: {why}")]
pub struct InvalidRecord {
    pub record: String,
    pub why: String,
}

impl InvalidRecord {
    pub fn new(record: impl Into<String>, why: impl fmt::Display) -> Self {
        Self { record: record.into(), why: why.to_string() }
    }
}

fn normalize_word(raw: &str) -> String {
    raw.trim().to_lowercase().replace(['_', '-'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schemars(with = "String")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical spelling, as in the tau2 data.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            /// Case-insensitive; `_` and `-` count as spaces (`AWAITING_PAYMENT` is `Awaiting Payment`).
            fn from_str(raw: &str) -> Result<Self, String> {
                let wanted = normalize_word(raw);
                $(if wanted == normalize_word($text) { return Ok($name::$variant); })+
                let known: Vec<&str> = vec![$($text),+];
                Err(format!("unknown {} {:?} (expected one of: {})", $what, raw, known.join(", ")))
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                raw.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// Status of a customer account.
    AccountStatus, "account status", {
        Active => "Active",
        Suspended => "Suspended",
        PendingVerification => "Pending Verification",
        Closed => "Closed",
    }
);

word_enum!(
    /// Status of a line (the suspension date lives in [`LineState`]).
    LineStatus, "line status", {
        Active => "Active",
        Suspended => "Suspended",
        PendingActivation => "Pending Activation",
        Closed => "Closed",
    }
);

word_enum!(
    /// Status of a bill.
    BillStatus, "bill status", {
        Draft => "Draft",
        Issued => "Issued",
        Paid => "Paid",
        Overdue => "Overdue",
        AwaitingPayment => "Awaiting Payment",
        Disputed => "Disputed",
    }
);

word_enum!(
    /// Kind of a stored payment method.
    PaymentMethodKind, "payment method type", {
        CreditCard => "Credit Card",
        DebitCard => "Debit Card",
        PayPal => "PayPal",
    }
);

word_enum!(
    /// Kind of a device.
    DeviceType, "device type", {
        Phone => "phone",
        Router => "router",
        Tablet => "tablet",
        Watch => "watch",
        Other => "other",
    }
);

/// A plan: monthly allowance and prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PlanRecord", into = "PlanRecord")]
pub struct Plan {
    pub plan_id: PlanId,
    pub name: String,
    pub data_limit: DataAmount,
    pub price_per_month: Money,
    pub refuel_price_per_gb: Money,
}

/// A plan in the file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRecord {
    pub plan_id: String,
    pub name: String,
    pub data_limit_gb: f64,
    pub price_per_month: f64,
    pub data_refueling_price_per_gb: f64,
}

impl TryFrom<PlanRecord> for Plan {
    type Error = InvalidRecord;
    fn try_from(record: PlanRecord) -> Result<Self, InvalidRecord> {
        let name = format!("plan {}", record.plan_id);
        let invalid = |why: &dyn fmt::Display| InvalidRecord::new(&name, why);
        let plan_id = PlanId::parse(record.plan_id.clone()).map_err(|e| invalid(&e))?;
        let price_per_month = Money::from_dollars(record.price_per_month).map_err(|e| invalid(&e))?;
        let refuel_price_per_gb = Money::from_dollars(record.data_refueling_price_per_gb).map_err(|e| invalid(&e))?;
        if price_per_month.is_negative() || refuel_price_per_gb.is_negative() {
            return Err(invalid(&"prices cannot be negative"));
        }
        Ok(Plan {
            plan_id,
            name: non_empty_text(&name, "name", record.name)?,
            data_limit: DataAmount::from_gb(record.data_limit_gb).map_err(|e| invalid(&e))?,
            price_per_month,
            refuel_price_per_gb,
        })
    }
}

impl From<Plan> for PlanRecord {
    fn from(plan: Plan) -> Self {
        PlanRecord {
            plan_id: plan.plan_id.into(),
            name: plan.name,
            data_limit_gb: plan.data_limit.to_gb(),
            price_per_month: plan.price_per_month.to_dollars(),
            data_refueling_price_per_gb: plan.refuel_price_per_gb.to_dollars(),
        }
    }
}

/// Longest free text accepted in a record (names, descriptions, addresses).
pub const MAX_TEXT_CHARS: usize = 500;

fn non_empty_text(record: &str, field: &str, text: String) -> Result<String, InvalidRecord> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(InvalidRecord::new(record, format!("{field} is empty")));
    }
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        return Err(InvalidRecord::new(record, format!("{field} is longer than {MAX_TEXT_CHARS} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidRecord::new(record, format!("{field} contains control characters")));
    }
    Ok(trimmed.to_string())
}

/// A card or account expiry month, written `MM/YYYY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expiry {
    year: u16,
    month: u8,
}

impl Expiry {
    pub fn new(month: u8, year: u16) -> Option<Self> {
        ((1..=12).contains(&month) && (2000..=2200).contains(&year)).then_some(Self { year, month })
    }

    /// A method expiring in month M can still be used during M.
    pub fn is_expired_on(self, today: NaiveDate) -> bool {
        let today_month = (today.year(), today.month());
        (i32::from(self.year), u32::from(self.month)) < today_month
    }
}

impl FromStr for Expiry {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let fail = || format!("expiration date {raw:?} is not MM/YYYY");
        let (month, year) = raw.trim().split_once('/').ok_or_else(fail)?;
        if month.len() != 2 || year.len() != 4 {
            return Err(fail());
        }
        let month: u8 = month.parse().map_err(|_| fail())?;
        let year: u16 = year.parse().map_err(|_| fail())?;
        Expiry::new(month, year).ok_or_else(fail)
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{:04}", self.month, self.year)
    }
}

/// The last four digits of a card or account number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LastFour(String);

impl LastFour {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.len() == 4 && trimmed.chars().all(|c| c.is_ascii_digit()) {
            Ok(Self(trimmed.to_string()))
        } else {
            Err(format!("account_number_last_4 {raw:?} is not four digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment method on file; displays masked: `Credit Card •••• 1235`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PaymentMethodRecord", into = "PaymentMethodRecord")]
pub struct PaymentMethod {
    pub kind: PaymentMethodKind,
    pub last_four: LastFour,
    pub expiry: Expiry,
}

impl PaymentMethod {
    /// `•••• 1235`
    pub fn masked_number(&self) -> String {
        format!("•••• {}", self.last_four.as_str())
    }
}

impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.masked_number())
    }
}

/// A payment method in the file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodRecord {
    pub method_type: String,
    pub account_number_last_4: String,
    pub expiration_date: String,
}

impl TryFrom<PaymentMethodRecord> for PaymentMethod {
    type Error = InvalidRecord;
    fn try_from(record: PaymentMethodRecord) -> Result<Self, InvalidRecord> {
        let invalid = |why: String| InvalidRecord::new("payment method", why);
        Ok(PaymentMethod {
            kind: record.method_type.parse().map_err(invalid)?,
            last_four: LastFour::parse(&record.account_number_last_4).map_err(invalid)?,
            expiry: record.expiration_date.parse().map_err(invalid)?,
        })
    }
}

impl From<PaymentMethod> for PaymentMethodRecord {
    fn from(method: PaymentMethod) -> Self {
        PaymentMethodRecord {
            method_type: method.kind.as_str().to_string(),
            account_number_last_4: method.last_four.0,
            expiration_date: method.expiry.to_string(),
        }
    }
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub street: String,
    pub city: String,
    pub state: String,
    pub zip_code: String,
}

/// A customer: who they are, how they pay, what they own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CustomerRecord", into = "CustomerRecord")]
pub struct Customer {
    pub customer_id: CustomerId,
    pub full_name: String,
    pub date_of_birth: NaiveDate,
    pub email: String,
    pub phone_number: PhoneNumber,
    pub address: Address,
    pub account_status: AccountStatus,
    pub created_at: NaiveDateTime,
    pub payment_methods: Vec<PaymentMethod>,
    pub line_ids: Vec<LineId>,
    pub bill_ids: Vec<BillId>,
    pub last_extension_date: Option<NaiveDate>,
    pub goodwill_credit_used_this_year: Money,
}

/// A customer in the file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerRecord {
    pub customer_id: String,
    pub full_name: String,
    pub date_of_birth: String,
    pub email: String,
    pub phone_number: String,
    pub account_status: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_extension_date: Option<String>,
    #[serde(default)]
    pub goodwill_credit_used_this_year: f64,
    #[serde(default)]
    pub payment_methods: Vec<PaymentMethodRecord>,
    #[serde(default)]
    pub line_ids: Vec<String>,
    #[serde(default)]
    pub bill_ids: Vec<String>,
    pub address: Address,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(record: &str, field: &str, raw: &str) -> Result<NaiveDate, InvalidRecord> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| InvalidRecord::new(record, format!("{field} {raw:?} is not a date (YYYY-MM-DD)")))
}

/// Parses `YYYY-MM-DDTHH:MM:SS` (a bare date means midnight).
pub fn parse_date_time(record: &str, field: &str, raw: &str) -> Result<NaiveDateTime, InvalidRecord> {
    let raw_trimmed = raw.trim();
    NaiveDateTime::parse_from_str(raw_trimmed, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(raw_trimmed, "%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|_| NaiveDate::parse_from_str(raw_trimmed, "%Y-%m-%d").map(|d| d.and_time(chrono::NaiveTime::MIN)))
        .map_err(|_| {
            InvalidRecord::new(record, format!("{field} {raw:?} is not a date and time (YYYY-MM-DDTHH:MM:SS)"))
        })
}

fn format_date_time(value: NaiveDateTime) -> String {
    value.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn unique_ids<T: Ord + Clone + fmt::Display>(record: &str, field: &str, ids: &[T]) -> Result<(), InvalidRecord> {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id.clone()) {
            return Err(InvalidRecord::new(record, format!("{field} lists {id} twice")));
        }
    }
    Ok(())
}

impl TryFrom<CustomerRecord> for Customer {
    type Error = InvalidRecord;
    fn try_from(record: CustomerRecord) -> Result<Self, InvalidRecord> {
        let name = format!("customer {}", record.customer_id);
        let invalid = |why: &dyn fmt::Display| InvalidRecord::new(&name, why);
        let customer_id = CustomerId::parse(record.customer_id.clone()).map_err(|e| invalid(&e))?;
        let email = non_empty_text(&name, "email", record.email)?;
        if !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(invalid(&format!("email {email:?} is not an email address")));
        }
        let address = Address {
            street: non_empty_text(&name, "address.street", record.address.street)?,
            city: non_empty_text(&name, "address.city", record.address.city)?,
            state: non_empty_text(&name, "address.state", record.address.state)?,
            zip_code: non_empty_text(&name, "address.zip_code", record.address.zip_code)?,
        };
        let payment_methods = record
            .payment_methods
            .into_iter()
            .map(|method| PaymentMethod::try_from(method).map_err(|e| invalid(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let line_ids = record
            .line_ids
            .into_iter()
            .map(|id| LineId::parse(id).map_err(|e| invalid(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let bill_ids = record
            .bill_ids
            .into_iter()
            .map(|id| BillId::parse(id).map_err(|e| invalid(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        unique_ids(&name, "line_ids", &line_ids)?;
        unique_ids(&name, "bill_ids", &bill_ids)?;
        let goodwill = Money::from_dollars(record.goodwill_credit_used_this_year).map_err(|e| invalid(&e))?;
        if goodwill.is_negative() {
            return Err(invalid(&"goodwill_credit_used_this_year cannot be negative"));
        }
        Ok(Customer {
            full_name: non_empty_text(&name, "full_name", record.full_name)?,
            date_of_birth: parse_date(&name, "date_of_birth", &record.date_of_birth)?,
            email,
            phone_number: PhoneNumber::parse(record.phone_number).map_err(|e| invalid(&e))?,
            address,
            account_status: record.account_status.parse().map_err(|e: String| invalid(&e))?,
            created_at: parse_date_time(&name, "created_at", &record.created_at)?,
            payment_methods,
            line_ids,
            bill_ids,
            last_extension_date: record
                .last_extension_date
                .map(|raw| parse_date(&name, "last_extension_date", &raw))
                .transpose()?,
            goodwill_credit_used_this_year: goodwill,
            customer_id,
        })
    }
}

impl From<Customer> for CustomerRecord {
    fn from(customer: Customer) -> Self {
        CustomerRecord {
            customer_id: customer.customer_id.into(),
            full_name: customer.full_name,
            date_of_birth: customer.date_of_birth.to_string(),
            email: customer.email,
            phone_number: customer.phone_number.into(),
            account_status: customer.account_status.as_str().to_string(),
            created_at: format_date_time(customer.created_at),
            last_extension_date: customer.last_extension_date.map(|date| date.to_string()),
            goodwill_credit_used_this_year: customer.goodwill_credit_used_this_year.to_dollars(),
            payment_methods: customer.payment_methods.into_iter().map(Into::into).collect(),
            line_ids: customer.line_ids.into_iter().map(Into::into).collect(),
            bill_ids: customer.bill_ids.into_iter().map(Into::into).collect(),
            address: customer.address,
        }
    }
}

/// A line's status together with what only some statuses carry: a suspended line knows since
/// when (when the data says), no other line has a suspension date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    Active,
    Suspended { since: Option<NaiveDate> },
    PendingActivation,
    Closed,
}

impl LineState {
    pub fn status(self) -> LineStatus {
        match self {
            LineState::Active => LineStatus::Active,
            LineState::Suspended { .. } => LineStatus::Suspended,
            LineState::PendingActivation => LineStatus::PendingActivation,
            LineState::Closed => LineStatus::Closed,
        }
    }

    pub fn suspension_start_date(self) -> Option<NaiveDate> {
        match self {
            LineState::Suspended { since } => since,
            LineState::Active | LineState::PendingActivation | LineState::Closed => None,
        }
    }
}

/// A line: a phone number on a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LineRecord", into = "LineRecord")]
pub struct Line {
    pub line_id: LineId,
    pub phone_number: PhoneNumber,
    pub state: LineState,
    pub plan_id: PlanId,
    pub device_id: Option<DeviceId>,
    pub data_used: DataAmount,
    pub data_refuelled: DataAmount,
    pub roaming_enabled: bool,
    pub contract_end_date: Option<NaiveDate>,
    pub last_plan_change_date: Option<NaiveDate>,
    pub last_sim_replacement_date: Option<NaiveDate>,
}

impl Line {
    pub fn status(&self) -> LineStatus {
        self.state.status()
    }

    /// True when the contract end date is before `today` (a contract ending today has not ended).
    pub fn contract_ended_on(&self, today: NaiveDate) -> bool {
        self.contract_end_date.is_some_and(|end| end < today)
    }
}

/// A line in the file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRecord {
    pub line_id: String,
    pub phone_number: String,
    pub status: String,
    pub plan_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default)]
    pub data_used_gb: f64,
    #[serde(default)]
    pub data_refueling_gb: f64,
    #[serde(default)]
    pub roaming_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_end_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_plan_change_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sim_replacement_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension_start_date: Option<String>,
}

impl TryFrom<LineRecord> for Line {
    type Error = InvalidRecord;
    fn try_from(record: LineRecord) -> Result<Self, InvalidRecord> {
        let name = format!("line {}", record.line_id);
        let invalid = |why: &dyn fmt::Display| InvalidRecord::new(&name, why);
        let optional_date = |field: &str, raw: &Option<String>| -> Result<Option<NaiveDate>, InvalidRecord> {
            raw.as_deref().map(|raw| parse_date(&name, field, raw)).transpose()
        };
        let status: LineStatus = record.status.parse().map_err(|e: String| invalid(&e))?;
        let suspension_start_date = optional_date("suspension_start_date", &record.suspension_start_date)?;
        let state = match (status, suspension_start_date) {
            (LineStatus::Suspended, since) => LineState::Suspended { since },
            (other, Some(_)) => {
                return Err(invalid(&format!("suspension_start_date is set but the status is {other}")));
            }
            (LineStatus::Active, None) => LineState::Active,
            (LineStatus::PendingActivation, None) => LineState::PendingActivation,
            (LineStatus::Closed, None) => LineState::Closed,
        };
        Ok(Line {
            line_id: LineId::parse(record.line_id.clone()).map_err(|e| invalid(&e))?,
            phone_number: PhoneNumber::parse(record.phone_number).map_err(|e| invalid(&e))?,
            state,
            plan_id: PlanId::parse(record.plan_id).map_err(|e| invalid(&e))?,
            device_id: record.device_id.map(DeviceId::parse).transpose().map_err(|e| invalid(&e))?,
            data_used: DataAmount::from_gb(record.data_used_gb).map_err(|e| invalid(&e))?,
            data_refuelled: DataAmount::from_gb(record.data_refueling_gb).map_err(|e| invalid(&e))?,
            roaming_enabled: record.roaming_enabled,
            contract_end_date: optional_date("contract_end_date", &record.contract_end_date)?,
            last_plan_change_date: optional_date("last_plan_change_date", &record.last_plan_change_date)?,
            last_sim_replacement_date: optional_date("last_sim_replacement_date", &record.last_sim_replacement_date)?,
        })
    }
}

impl From<Line> for LineRecord {
    fn from(line: Line) -> Self {
        LineRecord {
            line_id: line.line_id.into(),
            phone_number: line.phone_number.into(),
            status: line.state.status().as_str().to_string(),
            plan_id: line.plan_id.into(),
            device_id: line.device_id.map(Into::into),
            data_used_gb: line.data_used.to_gb(),
            data_refueling_gb: line.data_refuelled.to_gb(),
            roaming_enabled: line.roaming_enabled,
            contract_end_date: line.contract_end_date.map(|date| date.to_string()),
            last_plan_change_date: line.last_plan_change_date.map(|date| date.to_string()),
            last_sim_replacement_date: line.last_sim_replacement_date.map(|date| date.to_string()),
            suspension_start_date: line.state.suspension_start_date().map(|date| date.to_string()),
        }
    }
}

/// A device attached to a line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DeviceRecord", into = "DeviceRecord")]
pub struct Device {
    pub device_id: DeviceId,
    pub device_type: DeviceType,
    pub model: String,
    pub imei: Option<String>,
    pub is_esim_capable: bool,
    pub activated: bool,
    pub activation_date: Option<NaiveDateTime>,
    pub last_esim_transfer_date: Option<NaiveDateTime>,
}

/// A device in the file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    pub device_id: String,
    pub device_type: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
    #[serde(default)]
    pub is_esim_capable: bool,
    #[serde(default)]
    pub activated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_esim_transfer_date: Option<String>,
}

impl TryFrom<DeviceRecord> for Device {
    type Error = InvalidRecord;
    fn try_from(record: DeviceRecord) -> Result<Self, InvalidRecord> {
        let name = format!("device {}", record.device_id);
        let invalid = |why: &dyn fmt::Display| InvalidRecord::new(&name, why);
        if let Some(imei) = &record.imei
            && !(imei.len() >= 14 && imei.len() <= 16 && imei.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(invalid(&format!("imei {imei:?} is not 14 to 16 digits")));
        }
        let optional_time = |field: &str, raw: &Option<String>| {
            raw.as_deref().map(|raw| parse_date_time(&name, field, raw)).transpose()
        };
        Ok(Device {
            device_id: DeviceId::parse(record.device_id.clone()).map_err(|e| invalid(&e))?,
            device_type: record.device_type.parse().map_err(|e: String| invalid(&e))?,
            model: non_empty_text(&name, "model", record.model)?,
            imei: record.imei,
            is_esim_capable: record.is_esim_capable,
            activated: record.activated,
            activation_date: optional_time("activation_date", &record.activation_date)?,
            last_esim_transfer_date: optional_time("last_esim_transfer_date", &record.last_esim_transfer_date)?,
        })
    }
}

impl From<Device> for DeviceRecord {
    fn from(device: Device) -> Self {
        DeviceRecord {
            device_id: device.device_id.into(),
            device_type: device.device_type.as_str().to_string(),
            model: device.model,
            imei: device.imei,
            is_esim_capable: device.is_esim_capable,
            activated: device.activated,
            activation_date: device.activation_date.map(format_date_time),
            last_esim_transfer_date: device.last_esim_transfer_date.map(format_date_time),
        }
    }
}

/// One charge, fee, credit or payment on a bill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LineItemRecord", into = "LineItemRecord")]
pub struct LineItem {
    pub description: String,
    pub amount: Money,
    pub date: NaiveDate,
    pub item_type: String,
}

/// A line item in the file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineItemRecord {
    pub description: String,
    pub amount: f64,
    pub date: String,
    pub item_type: String,
}

impl TryFrom<LineItemRecord> for LineItem {
    type Error = InvalidRecord;
    fn try_from(record: LineItemRecord) -> Result<Self, InvalidRecord> {
        const NAME: &str = "line item";
        Ok(LineItem {
            description: non_empty_text(NAME, "description", record.description)?,
            amount: Money::from_dollars(record.amount).map_err(|e| InvalidRecord::new(NAME, e))?,
            date: parse_date(NAME, "date", &record.date)?,
            item_type: non_empty_text(NAME, "item_type", record.item_type)?,
        })
    }
}

impl From<LineItem> for LineItemRecord {
    fn from(item: LineItem) -> Self {
        LineItemRecord {
            description: item.description,
            amount: item.amount.to_dollars(),
            date: item.date.to_string(),
            item_type: item.item_type,
        }
    }
}

/// A bill. Its total is the sum of its line items whenever it has any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BillRecord", into = "BillRecord")]
pub struct Bill {
    pub bill_id: BillId,
    pub customer_id: CustomerId,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub issue_date: NaiveDate,
    pub total_due: Money,
    pub due_date: NaiveDate,
    pub line_items: Vec<LineItem>,
    pub status: BillStatus,
}

impl Bill {
    /// Adds a line item and its amount to the total; `None` on overflow (nothing changed then).
    pub fn add_line_item(&mut self, item: LineItem) -> Option<()> {
        let total = self.total_due.checked_add(item.amount)?;
        self.total_due = total;
        self.line_items.push(item);
        Some(())
    }
}

/// A bill in the file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillRecord {
    pub bill_id: String,
    pub customer_id: String,
    pub period_start: String,
    pub period_end: String,
    pub issue_date: String,
    pub total_due: f64,
    pub due_date: String,
    pub status: String,
    #[serde(default)]
    pub line_items: Vec<LineItemRecord>,
}

impl TryFrom<BillRecord> for Bill {
    type Error = InvalidRecord;
    fn try_from(record: BillRecord) -> Result<Self, InvalidRecord> {
        let name = format!("bill {}", record.bill_id);
        let invalid = |why: &dyn fmt::Display| InvalidRecord::new(&name, why);
        let line_items = record
            .line_items
            .into_iter()
            .map(|item| LineItem::try_from(item).map_err(|e| invalid(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let total_due = Money::from_dollars(record.total_due).map_err(|e| invalid(&e))?;
        if !line_items.is_empty() {
            let sum = Money::sum(line_items.iter().map(|item| &item.amount))
                .ok_or_else(|| invalid(&"line items overflow"))?;
            if sum != total_due {
                return Err(invalid(&format!("total_due {total_due} is not the sum of its line items ({sum})")));
            }
        }
        let period_start = parse_date(&name, "period_start", &record.period_start)?;
        let period_end = parse_date(&name, "period_end", &record.period_end)?;
        if period_end < period_start {
            return Err(invalid(&"period_end is before period_start"));
        }
        Ok(Bill {
            bill_id: BillId::parse(record.bill_id.clone()).map_err(|e| invalid(&e))?,
            customer_id: CustomerId::parse(record.customer_id).map_err(|e| invalid(&e))?,
            period_start,
            period_end,
            issue_date: parse_date(&name, "issue_date", &record.issue_date)?,
            total_due,
            due_date: parse_date(&name, "due_date", &record.due_date)?,
            line_items,
            status: record.status.parse().map_err(|e: String| invalid(&e))?,
        })
    }
}

impl From<Bill> for BillRecord {
    fn from(bill: Bill) -> Self {
        BillRecord {
            bill_id: bill.bill_id.into(),
            customer_id: bill.customer_id.into(),
            period_start: bill.period_start.to_string(),
            period_end: bill.period_end.to_string(),
            issue_date: bill.issue_date.to_string(),
            total_due: bill.total_due.to_dollars(),
            due_date: bill.due_date.to_string(),
            status: bill.status.as_str().to_string(),
            line_items: bill.line_items.into_iter().map(Into::into).collect(),
        }
    }
}

/// A payment taken by `make_payment` (not part of the tau2 data; kept by this store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PaymentRecord", into = "PaymentRecord")]
pub struct Payment {
    pub payment_id: PaymentId,
    pub customer_id: CustomerId,
    pub bill_id: BillId,
    pub amount: Money,
    /// The method, masked: `Credit Card •••• 1235`.
    pub method: String,
    pub paid_at: NaiveDateTime,
}

/// A payment in the file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRecord {
    pub payment_id: String,
    pub customer_id: String,
    pub bill_id: String,
    pub amount: f64,
    pub method: String,
    pub paid_at: String,
}

impl TryFrom<PaymentRecord> for Payment {
    type Error = InvalidRecord;
    fn try_from(record: PaymentRecord) -> Result<Self, InvalidRecord> {
        let name = format!("payment {}", record.payment_id);
        let invalid = |why: &dyn fmt::Display| InvalidRecord::new(&name, why);
        Ok(Payment {
            payment_id: PaymentId::parse(record.payment_id.clone()).map_err(|e| invalid(&e))?,
            customer_id: CustomerId::parse(record.customer_id).map_err(|e| invalid(&e))?,
            bill_id: BillId::parse(record.bill_id).map_err(|e| invalid(&e))?,
            amount: Money::from_dollars(record.amount).map_err(|e| invalid(&e))?,
            method: non_empty_text(&name, "method", record.method)?,
            paid_at: parse_date_time(&name, "paid_at", &record.paid_at)?,
        })
    }
}

impl From<Payment> for PaymentRecord {
    fn from(payment: Payment) -> Self {
        PaymentRecord {
            payment_id: payment.payment_id.into(),
            customer_id: payment.customer_id.into(),
            bill_id: payment.bill_id.into(),
            amount: payment.amount.to_dollars(),
            method: payment.method,
            paid_at: format_date_time(payment.paid_at),
        }
    }
}

/// Folds a name for matching: lowercase, common Latin diacritics removed, whitespace collapsed
/// (`"  José  GARCÍA "` matches `"jose garcia"`).
pub fn fold_name(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let plain = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
            'ç' | 'ć' | 'č' => "c",
            'ď' | 'đ' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
            'ł' | 'ľ' | 'ĺ' => "l",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
            'ř' | 'ŕ' => "r",
            'ś' | 'š' | 'ş' | 'ș' => "s",
            'ß' => "ss",
            'ť' | 'ţ' | 'ț' => "t",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            'æ' => "ae",
            'œ' => "oe",
            _ => {
                folded.push(c);
                continue;
            }
        };
        folded.push_str(plain);
    }
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_record() -> LineRecord {
        LineRecord {
            line_id: "L1".into(),
            phone_number: "555-123-2001".into(),
            status: "Active".into(),
            plan_id: "P1001".into(),
            device_id: None,
            data_used_gb: 3.2,
            data_refueling_gb: 0.0,
            roaming_enabled: false,
            contract_end_date: Some("2026-12-31".into()),
            last_plan_change_date: None,
            last_sim_replacement_date: None,
            suspension_start_date: None,
        }
    }

    #[test]
    fn statuses_parse_leniently_and_print_canonically() {
        assert_eq!("AWAITING_PAYMENT".parse::<BillStatus>().unwrap(), BillStatus::AwaitingPayment);
        assert_eq!(" pending verification ".parse::<AccountStatus>().unwrap(), AccountStatus::PendingVerification);
        assert_eq!(BillStatus::AwaitingPayment.to_string(), "Awaiting Payment");
        let error = "Lost".parse::<LineStatus>().unwrap_err();
        assert!(error.contains("unknown line status \"Lost\""), "{error}");
    }

    #[test]
    fn a_suspension_date_needs_a_suspended_line() {
        let mut record = line_record();
        record.suspension_start_date = Some("2025-02-01".into());
        let error = Line::try_from(record.clone()).unwrap_err();
        assert_eq!(error.to_string(), "line L1: suspension_start_date is set but the status is Active");
        record.status = "Suspended".into();
        let line = Line::try_from(record).unwrap();
        assert_eq!(line.state, LineState::Suspended { since: NaiveDate::from_ymd_opt(2025, 2, 1) });
    }

    #[test]
    fn lines_round_trip_through_their_record() {
        let line = Line::try_from(line_record()).unwrap();
        let json = serde_json::to_value(&line).unwrap();
        assert_eq!(json["data_used_gb"], 3.2);
        assert_eq!(json["status"], "Active");
        let back: Line = serde_json::from_value(json).unwrap();
        assert_eq!(back, line);
    }

    #[test]
    fn a_bill_total_must_match_its_items() {
        let record = BillRecord {
            bill_id: "B9".into(),
            customer_id: "C9".into(),
            period_start: "2025-01-01".into(),
            period_end: "2025-01-31".into(),
            issue_date: "2025-01-05".into(),
            total_due: 50.0,
            due_date: "2025-01-19".into(),
            status: "Issued".into(),
            line_items: vec![LineItemRecord {
                description: "Basic Plan".into(),
                amount: 40.0,
                date: "2025-01-05".into(),
                item_type: "Plan Charge".into(),
            }],
        };
        let error = Bill::try_from(record).unwrap_err();
        assert_eq!(error.to_string(), "bill B9: total_due $50.00 is not the sum of its line items ($40.00)");
    }

    #[test]
    fn payment_methods_display_masked() {
        let method = PaymentMethod::try_from(PaymentMethodRecord {
            method_type: "Credit Card".into(),
            account_number_last_4: "1235".into(),
            expiration_date: "12/2026".into(),
        })
        .unwrap();
        assert_eq!(method.to_string(), "Credit Card •••• 1235");
        assert!(!method.expiry.is_expired_on(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()));
        assert!(method.expiry.is_expired_on(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()));
        for bad in ["13/2026", "1/2026", "12-2026", "12/26", ""] {
            assert!(bad.parse::<Expiry>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_fold_for_matching() {
        assert_eq!(fold_name("  José  GARCÍA "), "jose garcia");
        assert_eq!(fold_name("Sarah Johnson"), "sarah johnson");
    }

    #[test]
    fn dates_parse_with_clear_errors() {
        assert!(parse_date("customer C1", "date_of_birth", "1990-11-22").is_ok());
        let error = parse_date("customer C1", "date_of_birth", "22/11/1990").unwrap_err();
        assert_eq!(error.to_string(), "customer C1: date_of_birth \"22/11/1990\" is not a date (YYYY-MM-DD)");
        assert!(parse_date_time("device D1", "activation_date", "2025-01-20T14:30:00").is_ok());
    }
}
