//! The account actions: names and arguments (tau2-bench telecom tool names where one exists),
//! typed results, and the typed reasons an action is refused.
//!
//! A request is `{"name": "refuel_data", "args": {"customer_id": "C1001", "line_id": "L1001",
//! "gb_amount": 2.0}}`, the same shape as a turn's `pending_action` (interfaces.md). Each
//! argument type derives a JSON Schema ([`ActionName::args_schema`]).

use std::fmt;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::domain::{Bill, BillStatus, Customer, Line, LineStatus, Plan};
use super::ids::{BillId, CustomerId, LineId, PaymentId, PhoneNumber, PlanId};
use super::money::{DataAmount, Money};
use super::{Error, Result};

/// What an action does to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Reads only; needs no confirmation and is not audited.
    Read,
    /// Changes the account; a customer must confirm it; audited; needs an idempotency key.
    Change,
    /// Moves or charges money; as `Change`.
    Money,
    /// Hands the conversation to a person; audited; needs no confirmation.
    Handoff,
}

impl ActionKind {
    /// Change, money and handoff actions are audited and idempotent.
    pub fn is_write(self) -> bool {
        !matches!(self, ActionKind::Read)
    }

    /// Change and money actions need the customer's confirmation.
    pub fn needs_confirmation(self) -> bool {
        matches!(self, ActionKind::Change | ActionKind::Money)
    }
}

/// Arguments naming a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerArgs {
    pub customer_id: CustomerId,
}

/// Arguments of `get_customer_by_phone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneArgs {
    /// Any common format; matched on the digits.
    pub phone_number: PhoneNumber,
}

/// Arguments of `get_customer_by_name`: the date of birth is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameArgs {
    pub full_name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub dob: String,
}

impl NameArgs {
    /// The date of birth, when `dob` is a `YYYY-MM-DD` date.
    pub fn date_of_birth(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(self.dob.trim(), "%Y-%m-%d").ok()
    }
}

/// Arguments of `get_bills_for_customer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BillsArgs {
    pub customer_id: CustomerId,
    /// Most bills returned, newest first (default 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// Arguments naming a customer's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineArgs {
    pub customer_id: CustomerId,
    pub line_id: LineId,
}

/// Arguments naming a customer's bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BillArgs {
    pub customer_id: CustomerId,
    pub bill_id: BillId,
}

/// Arguments of `make_payment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentArgs {
    pub customer_id: CustomerId,
    pub bill_id: BillId,
    /// Which method on file: its last four digits (`1235`) or its type (`Credit Card`,
    /// `PayPal`); may be left out when the customer has exactly one usable method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
}

/// Arguments of `refuel_data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuelArgs {
    pub customer_id: CustomerId,
    pub line_id: LineId,
    /// Gigabytes to add: more than 0, at most 2.
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 2))]
    pub gb_amount: f64,
}

/// Arguments of `change_plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanArgs {
    pub customer_id: CustomerId,
    pub line_id: LineId,
    pub plan_id: PlanId,
}

/// Arguments of `suspend_line`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendArgs {
    pub customer_id: CustomerId,
    pub line_id: LineId,
    /// Why the customer wants the line suspended (kept in the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Arguments naming a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    pub plan_id: PlanId,
}

/// No arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Arguments of `transfer_to_human_agents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferArgs {
    /// A summary of the customer's issue for the human agent.
    pub summary: String,
    /// The customer, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
}

/// Longest free text accepted in arguments (summaries, reasons, names).
pub const MAX_ARG_TEXT_CHARS: usize = 2000;

macro_rules! actions {
    ($( $variant:ident($args:ty) = $name:literal, $kind:ident, $description:literal; )+) => {
        /// An action with its arguments. Serializes as `{"name": ..., "args": {...}}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "name", content = "args", rename_all = "snake_case")]
        pub enum ActionRequest {
            $( $variant($args), )+
        }

        /// The name of an action.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ActionName {
            $( $variant, )+
        }

        impl ActionName {
            pub const ALL: &'static [ActionName] = &[$( ActionName::$variant, )+];

            /// The wire name (`refuel_data`).
            pub fn as_str(self) -> &'static str {
                match self { $( ActionName::$variant => $name, )+ }
            }

            pub fn kind(self) -> ActionKind {
                match self { $( ActionName::$variant => ActionKind::$kind, )+ }
            }

            /// One sentence on what the action does and what it checks.
            pub fn description(self) -> &'static str {
                match self { $( ActionName::$variant => $description, )+ }
            }

            /// JSON Schema of the arguments, generated from the Rust type.
            pub fn args_schema(self) -> serde_json::Value {
                match self { $( ActionName::$variant => schemars::schema_for!($args).to_value(), )+ }
            }
        }

        impl ActionRequest {
            pub fn name(&self) -> ActionName {
                match self { $( ActionRequest::$variant(_) => ActionName::$variant, )+ }
            }
        }
    };
}

actions! {
    GetCustomerByPhone(PhoneArgs) = "get_customer_by_phone", Read,
        "Finds the customer whose contact number or one of whose lines has this phone number.";
    GetCustomerById(CustomerArgs) = "get_customer_by_id", Read,
        "Finds a customer by id.";
    GetCustomerByName(NameArgs) = "get_customer_by_name", Read,
        "Finds customers by full name and date of birth (both required).";
    GetBillsForCustomer(BillsArgs) = "get_bills_for_customer", Read,
        "Lists a customer's bills, newest first.";
    GetLinesForCustomer(CustomerArgs) = "get_lines_for_customer", Read,
        "Lists a customer's lines with their plans.";
    GetDataUsage(LineArgs) = "get_data_usage", Read,
        "Data used, refuelled and allowed on a line in the current cycle.";
    ListPlans(NoArgs) = "list_plans", Read,
        "Lists every plan with its allowance and prices.";
    GetPlan(PlanArgs) = "get_plan", Read,
        "One plan with its allowance and prices.";
    SendPaymentRequest(BillArgs) = "send_payment_request", Change,
        "Sends a payment request for an overdue bill; at most one bill may await payment per customer.";
    MakePayment(PaymentArgs) = "make_payment", Money,
        "Pays a bill awaiting payment in full with a payment method on file; the bill becomes Paid.";
    RefuelData(RefuelArgs) = "refuel_data", Money,
        "Adds more than 0 and at most 2 GB to a line, charged at the plan's price per GB on the next bill.";
    ChangePlan(ChangePlanArgs) = "change_plan", Change,
        "Moves a line to another plan.";
    EnableRoaming(LineArgs) = "enable_roaming", Change,
        "Turns on data roaming on a line, at no cost.";
    DisableRoaming(LineArgs) = "disable_roaming", Change,
        "Turns off data roaming on a line.";
    SuspendLine(SuspendArgs) = "suspend_line", Change,
        "Suspends an active line.";
    ResumeLine(LineArgs) = "resume_line", Change,
        "Resumes a suspended line when no bill is overdue and its contract has not ended.";
    GrantPaymentExtension(BillArgs) = "grant_payment_extension", Change,
        "Moves an issued or overdue bill's due date 14 days out, at most once per calendar quarter.";
    TransferToHumanAgents(TransferArgs) = "transfer_to_human_agents", Handoff,
        "Hands the conversation to a human agent with a summary.";
}

impl fmt::Display for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ActionName {
    type Err = Error;
    fn from_str(raw: &str) -> Result<Self> {
        ActionName::ALL
            .iter()
            .copied()
            .find(|name| name.as_str() == raw)
            .ok_or_else(|| Error::UnknownAction(raw.chars().take(80).collect()))
    }
}

impl Serialize for ActionName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// An action as the dialogue and the console see it in a catalog.
#[derive(Debug, Clone, Serialize)]
pub struct ActionDescriptor {
    pub name: ActionName,
    pub kind: ActionKind,
    pub description: &'static str,
    pub args_schema: serde_json::Value,
}

/// Every action, with its kind and argument schema.
pub fn catalog() -> Vec<ActionDescriptor> {
    ActionName::ALL
        .iter()
        .map(|&name| ActionDescriptor {
            name,
            kind: name.kind(),
            description: name.description(),
            args_schema: name.args_schema(),
        })
        .collect()
}

impl ActionRequest {
    /// Parses an action from its name and JSON arguments (an absent `args` is `{}`).
    pub fn parse(name: &str, args: serde_json::Value) -> Result<Self> {
        let action: ActionName = name.parse()?;
        let args = if args.is_null() { serde_json::json!({}) } else { args };
        let request: ActionRequest = serde_json::from_value(serde_json::json!({"name": name, "args": args}))
            .map_err(|error| Error::InvalidArguments { action: action.as_str().to_string(), why: error.to_string() })?;
        request.check_text()?;
        Ok(request)
    }

    pub fn kind(&self) -> ActionKind {
        self.name().kind()
    }

    /// The arguments as JSON (the `args` of the wire shape).
    pub fn args_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value.get_mut("args").map(serde_json::Value::take).unwrap_or_else(|| serde_json::json!({}))
    }

    /// The customer the action concerns, when its arguments name one.
    pub fn customer_id(&self) -> Option<&CustomerId> {
        match self {
            ActionRequest::GetCustomerById(args) | ActionRequest::GetLinesForCustomer(args) => Some(&args.customer_id),
            ActionRequest::GetBillsForCustomer(args) => Some(&args.customer_id),
            ActionRequest::GetDataUsage(args)
            | ActionRequest::EnableRoaming(args)
            | ActionRequest::DisableRoaming(args)
            | ActionRequest::ResumeLine(args) => Some(&args.customer_id),
            ActionRequest::SendPaymentRequest(args) | ActionRequest::GrantPaymentExtension(args) => {
                Some(&args.customer_id)
            }
            ActionRequest::MakePayment(args) => Some(&args.customer_id),
            ActionRequest::RefuelData(args) => Some(&args.customer_id),
            ActionRequest::ChangePlan(args) => Some(&args.customer_id),
            ActionRequest::SuspendLine(args) => Some(&args.customer_id),
            ActionRequest::TransferToHumanAgents(args) => args.customer_id.as_ref(),
            ActionRequest::GetCustomerByPhone(_)
            | ActionRequest::GetCustomerByName(_)
            | ActionRequest::ListPlans(_)
            | ActionRequest::GetPlan(_) => None,
        }
    }

    /// Checks free-text arguments: not empty where required, not oversized, no control characters.
    fn check_text(&self) -> Result<()> {
        let check = |field: &str, text: &str, required: bool| -> Result<()> {
            let why = if required && text.trim().is_empty() {
                Some(format!("{field} is empty"))
            } else if text.chars().count() > MAX_ARG_TEXT_CHARS {
                Some(format!("{field} is longer than {MAX_ARG_TEXT_CHARS} characters"))
            } else if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
                Some(format!("{field} contains control characters"))
            } else {
                None
            };
            why.map_or(Ok(()), |why| Err(Error::InvalidArguments { action: self.name().as_str().to_string(), why }))
        };
        match self {
            ActionRequest::GetCustomerByName(args) => {
                check("full_name", &args.full_name, true)?;
                check("dob", &args.dob, true)?;
                if args.date_of_birth().is_none() {
                    let why = "dob is not a date (YYYY-MM-DD)".to_string();
                    return Err(Error::InvalidArguments { action: self.name().as_str().to_string(), why });
                }
                Ok(())
            }
            ActionRequest::MakePayment(PaymentArgs { payment_method: Some(method), .. }) => {
                check("payment_method", method, true)
            }
            ActionRequest::SuspendLine(SuspendArgs { reason: Some(reason), .. }) => check("reason", reason, false),
            ActionRequest::TransferToHumanAgents(args) => check("summary", &args.summary, true),
            _ => Ok(()),
        }
    }
}

/// Data usage of a line in the current cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataUsage {
    pub line_id: LineId,
    pub data_used_gb: DataAmount,
    pub data_limit_gb: DataAmount,
    pub data_refueling_gb: DataAmount,
    /// Allowance left: limit plus refuelled minus used, never below zero.
    pub data_remaining_gb: DataAmount,
    /// True when usage has reached the allowance (data connectivity is lost).
    pub over_limit: bool,
    pub cycle_end_date: NaiveDate,
    pub refuel_price_per_gb: Money,
}

/// Result of `send_payment_request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRequested {
    pub customer_id: CustomerId,
    pub bill_id: BillId,
    pub amount_due: Money,
    pub bill_status: BillStatus,
}

/// Result of `make_payment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentReceipt {
    pub payment_id: PaymentId,
    pub customer_id: CustomerId,
    pub bill_id: BillId,
    pub amount: Money,
    /// The method used, masked: `Credit Card •••• 1235`.
    pub method: String,
    pub bill_status: BillStatus,
}

/// Result of `refuel_data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRefuelled {
    pub line_id: LineId,
    pub gb_amount: DataAmount,
    pub price_per_gb: Money,
    pub charge: Money,
    /// The (draft) bill the charge was added to.
    pub bill_id: BillId,
    pub new_data_refueling_gb: DataAmount,
}

/// Result of `change_plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanChanged {
    pub line_id: LineId,
    pub old_plan_id: PlanId,
    pub new_plan_id: PlanId,
    pub new_plan_name: String,
    pub new_price_per_month: Money,
    pub new_data_limit_gb: DataAmount,
}

/// Result of `enable_roaming` and `disable_roaming`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoamingSet {
    pub line_id: LineId,
    pub roaming_enabled: bool,
    /// False when the line already was in that state.
    pub changed: bool,
    /// Always zero: roaming is switched at no cost.
    pub charge: Money,
}

/// Result of `suspend_line` and `resume_line`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineStatusChanged {
    pub line_id: LineId,
    pub status: LineStatus,
    pub suspension_start_date: Option<NaiveDate>,
    /// What the customer should know: the holding fee on suspension, the reboot after resuming.
    pub note: String,
}

/// Result of `grant_payment_extension`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtensionGranted {
    pub bill_id: BillId,
    pub old_due_date: NaiveDate,
    pub new_due_date: NaiveDate,
    pub bill_status: BillStatus,
}

/// Result of `transfer_to_human_agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transferred {
    pub summary: String,
    pub message: String,
}

/// The typed result of an action. Serializes as the result alone (no tag): the JSON a staff
/// request gets back and the JSON a hook may answer with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ActionOutput {
    Customer(Box<Customer>),
    Customers(Vec<Customer>),
    Bills(Vec<Bill>),
    Lines(Vec<Line>),
    DataUsage(DataUsage),
    Plans(Vec<Plan>),
    Plan(Plan),
    PaymentRequested(PaymentRequested),
    PaymentMade(PaymentReceipt),
    DataRefuelled(DataRefuelled),
    PlanChanged(PlanChanged),
    Roaming(RoamingSet),
    LineStatus(LineStatusChanged),
    ExtensionGranted(ExtensionGranted),
    Transferred(Transferred),
}

impl ActionOutput {
    /// Reads the result JSON of `action` (from a hook response or the idempotency record).
    pub fn from_json(action: ActionName, value: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value;
        Ok(match action {
            ActionName::GetCustomerByPhone | ActionName::GetCustomerById => {
                ActionOutput::Customer(Box::new(from_value(value)?))
            }
            ActionName::GetCustomerByName => ActionOutput::Customers(from_value(value)?),
            ActionName::GetBillsForCustomer => ActionOutput::Bills(from_value(value)?),
            ActionName::GetLinesForCustomer => ActionOutput::Lines(from_value(value)?),
            ActionName::GetDataUsage => ActionOutput::DataUsage(from_value(value)?),
            ActionName::ListPlans => ActionOutput::Plans(from_value(value)?),
            ActionName::GetPlan => ActionOutput::Plan(from_value(value)?),
            ActionName::SendPaymentRequest => ActionOutput::PaymentRequested(from_value(value)?),
            ActionName::MakePayment => ActionOutput::PaymentMade(from_value(value)?),
            ActionName::RefuelData => ActionOutput::DataRefuelled(from_value(value)?),
            ActionName::ChangePlan => ActionOutput::PlanChanged(from_value(value)?),
            ActionName::EnableRoaming | ActionName::DisableRoaming => ActionOutput::Roaming(from_value(value)?),
            ActionName::SuspendLine | ActionName::ResumeLine => ActionOutput::LineStatus(from_value(value)?),
            ActionName::GrantPaymentExtension => ActionOutput::ExtensionGranted(from_value(value)?),
            ActionName::TransferToHumanAgents => ActionOutput::Transferred(from_value(value)?),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Why an action was refused: a policy precondition failed, or an id does not exist or is not
/// the customer's. Each reason carries what the dialogue needs to explain it
/// ([`Refusal::customer_message`]); a refusal never changes the accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    UnknownCustomer {
        customer_id: CustomerId,
    },
    NoCustomerWithPhone {
        phone_number: PhoneNumber,
    },
    UnknownLine {
        line_id: LineId,
    },
    UnknownBill {
        bill_id: BillId,
    },
    UnknownPlan {
        plan_id: PlanId,
    },
    /// A customer tried to act on (or read) another customer's account, line or bill.
    NotYourAccount,
    LineNotOnAccount {
        customer_id: CustomerId,
        line_id: LineId,
    },
    BillNotOnAccount {
        customer_id: CustomerId,
        bill_id: BillId,
    },
    AccountClosed {
        customer_id: CustomerId,
    },
    BillNotOverdue {
        bill_id: BillId,
        status: BillStatus,
    },
    PaymentAlreadyRequested {
        bill_id: BillId,
    },
    BillNotAwaitingPayment {
        bill_id: BillId,
        status: BillStatus,
    },
    NoPaymentMethodOnFile,
    PaymentMethodNotOnFile {
        requested: String,
    },
    PaymentMethodAmbiguous {
        options: Vec<String>,
    },
    PaymentMethodExpired {
        method: String,
        expiry: String,
    },
    RefuelAmountOutOfRange {
        requested_gb: f64,
        max_gb: f64,
    },
    LineClosed {
        line_id: LineId,
    },
    LineNotActive {
        line_id: LineId,
        status: LineStatus,
    },
    LineNotSuspended {
        line_id: LineId,
        status: LineStatus,
    },
    OverdueBillBlocksResume {
        line_id: LineId,
        bill_id: BillId,
    },
    ContractEnded {
        line_id: LineId,
        contract_end_date: NaiveDate,
    },
    SamePlan {
        line_id: LineId,
        plan_id: PlanId,
    },
    BillNotExtendable {
        bill_id: BillId,
        status: BillStatus,
    },
    ExtensionAlreadyUsed {
        last_extension_date: NaiveDate,
        next_possible: NaiveDate,
    },
    /// The operator's system (a hook) declined the action.
    OperatorDeclined {
        status: u16,
        operator_code: String,
        message: String,
    },
}

impl Refusal {
    /// A stable snake_case code (`contract_ended`).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownCustomer { .. } => "unknown_customer",
            Refusal::NoCustomerWithPhone { .. } => "no_customer_with_phone",
            Refusal::UnknownLine { .. } => "unknown_line",
            Refusal::UnknownBill { .. } => "unknown_bill",
            Refusal::UnknownPlan { .. } => "unknown_plan",
            Refusal::NotYourAccount => "not_your_account",
            Refusal::LineNotOnAccount { .. } => "line_not_on_account",
            Refusal::BillNotOnAccount { .. } => "bill_not_on_account",
            Refusal::AccountClosed { .. } => "account_closed",
            Refusal::BillNotOverdue { .. } => "bill_not_overdue",
            Refusal::PaymentAlreadyRequested { .. } => "payment_already_requested",
            Refusal::BillNotAwaitingPayment { .. } => "bill_not_awaiting_payment",
            Refusal::NoPaymentMethodOnFile => "no_payment_method_on_file",
            Refusal::PaymentMethodNotOnFile { .. } => "payment_method_not_on_file",
            Refusal::PaymentMethodAmbiguous { .. } => "payment_method_ambiguous",
            Refusal::PaymentMethodExpired { .. } => "payment_method_expired",
            Refusal::RefuelAmountOutOfRange { .. } => "refuel_amount_out_of_range",
            Refusal::LineClosed { .. } => "line_closed",
            Refusal::LineNotActive { .. } => "line_not_active",
            Refusal::LineNotSuspended { .. } => "line_not_suspended",
            Refusal::OverdueBillBlocksResume { .. } => "overdue_bill_blocks_resume",
            Refusal::ContractEnded { .. } => "contract_ended",
            Refusal::SamePlan { .. } => "same_plan",
            Refusal::BillNotExtendable { .. } => "bill_not_extendable",
            Refusal::ExtensionAlreadyUsed { .. } => "extension_already_used",
            Refusal::OperatorDeclined { .. } => "operator_declined",
        }
    }

    /// True for the reasons that mean "this id does not exist".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownCustomer { .. }
                | Refusal::NoCustomerWithPhone { .. }
                | Refusal::UnknownLine { .. }
                | Refusal::UnknownBill { .. }
                | Refusal::UnknownPlan { .. }
        )
    }

    /// A sentence the assistant can say to the customer.
    pub fn customer_message(&self) -> String {
        match self {
            Refusal::UnknownCustomer { customer_id } => {
                format!("I couldn't find a customer with the id {customer_id}.")
            }
            Refusal::NoCustomerWithPhone { phone_number } => {
                format!("I couldn't find an account with the phone number {phone_number}.")
            }
            Refusal::UnknownLine { line_id } => format!("I couldn't find a line with the id {line_id}."),
            Refusal::UnknownBill { bill_id } => format!("I couldn't find a bill with the id {bill_id}."),
            Refusal::UnknownPlan { plan_id } => format!("I couldn't find a plan with the id {plan_id}."),
            Refusal::NotYourAccount => "I can only look at and change your own account, lines and bills.".into(),
            Refusal::LineNotOnAccount { line_id, .. } => format!("Line {line_id} is not on this account."),
            Refusal::BillNotOnAccount { bill_id, .. } => format!("Bill {bill_id} is not on this account."),
            Refusal::AccountClosed { .. } => "This account is closed, so I can't make changes to it.".into(),
            Refusal::BillNotOverdue { bill_id, status } => format!(
                "Bill {bill_id} is not overdue (its status is {status}), so I can't send a payment request for it."
            ),
            Refusal::PaymentAlreadyRequested { bill_id } => format!(
                "A payment request for bill {bill_id} is already waiting; only one bill can await payment at a time."
            ),
            Refusal::BillNotAwaitingPayment { bill_id, status } => format!(
                "Bill {bill_id} has no payment request waiting (its status is {status}), so there is nothing to pay on it right now."
            ),
            Refusal::NoPaymentMethodOnFile => {
                "There is no payment method on file for this account, so I can't take a payment.".into()
            }
            Refusal::PaymentMethodNotOnFile { .. } => "I couldn't find that payment method on your account.".into(),
            Refusal::PaymentMethodAmbiguous { options } => {
                format!("Which payment method should I use: {}?", options.join(" or "))
            }
            Refusal::PaymentMethodExpired { method, expiry } => {
                format!("The {method} on file expired in {expiry}; please use another payment method.")
            }
            Refusal::RefuelAmountOutOfRange { requested_gb, max_gb } => format!(
                "I can add more than 0 and at most {max_gb} GB of data at a time, so I can't add {requested_gb} GB."
            ),
            Refusal::LineClosed { line_id } => format!("Line {line_id} is closed, so I can't change it."),
            Refusal::LineNotActive { line_id, status } => {
                format!("Only an active line can be suspended, and line {line_id} is {status}.")
            }
            Refusal::LineNotSuspended { line_id, status } => {
                format!("Line {line_id} is not suspended (it is {status}), so there is nothing to resume.")
            }
            Refusal::OverdueBillBlocksResume { line_id, bill_id } => {
                format!("Line {line_id} can be resumed once the overdue bill {bill_id} is paid.")
            }
            Refusal::ContractEnded { line_id, contract_end_date } => format!(
                "The contract for line {line_id} ended on {contract_end_date}, so I'm not allowed to resume it."
            ),
            Refusal::SamePlan { line_id, plan_id } => format!("Line {line_id} is already on plan {plan_id}."),
            Refusal::BillNotExtendable { bill_id, status } => {
                format!("Bill {bill_id} is {status}; only an issued or overdue bill can get a payment extension.")
            }
            Refusal::ExtensionAlreadyUsed { last_extension_date, next_possible } => format!(
                "A payment extension was already granted this quarter (on {last_extension_date}); the next one is possible from {next_possible}."
            ),
            Refusal::OperatorDeclined { message, .. } => format!("Our billing system declined the request: {message}"),
        }
    }

    /// The reason's fields as JSON (for the HTTP error body and the audit log).
    pub fn details(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.customer_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_use_the_pending_action_shape() {
        let request = ActionRequest::parse(
            "refuel_data",
            serde_json::json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": 2.0}),
        )
        .unwrap();
        assert_eq!(request.name(), ActionName::RefuelData);
        assert_eq!(request.kind(), ActionKind::Money);
        let wire = serde_json::to_value(&request).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"name": "refuel_data", "args": {"customer_id": "C1001", "line_id": "L1001", "gb_amount": 2.0}})
        );
        assert_eq!(request.args_json()["gb_amount"], 2.0);
        assert_eq!(ActionRequest::parse("list_plans", serde_json::Value::Null).unwrap().name(), ActionName::ListPlans);
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        let check = |name: &str, args: serde_json::Value, expected: &str| {
            let error = ActionRequest::parse(name, args).unwrap_err().to_string();
            assert!(error.contains(expected), "{name}: expected {expected:?} in {error:?}");
        };
        check("pay_everything", serde_json::json!({}), "unknown action");
        check("get_customer_by_id", serde_json::json!({}), "missing field `customer_id`");
        check("get_customer_by_id", serde_json::json!({"customer_id": "C1 OR 1=1"}), "customer id");
        check("get_customer_by_id", serde_json::json!({"customer_id": "C1", "admin": true}), "unknown field `admin`");
        check(
            "refuel_data",
            serde_json::json!({"customer_id": "C1", "line_id": "L1", "gb_amount": "lots"}),
            "invalid type",
        );
        check("get_customer_by_name", serde_json::json!({"full_name": " ", "dob": "1990-01-01"}), "full_name is empty");
        check("transfer_to_human_agents", serde_json::json!({"summary": "x".repeat(5000)}), "longer than");
        check("get_customer_by_phone", serde_json::json!({"phone_number": "call me"}), "phone number");
    }

    #[test]
    fn every_action_has_a_schema_and_tau2_names() {
        let names: Vec<&str> = ActionName::ALL.iter().map(|name| name.as_str()).collect();
        for tau2 in [
            "get_customer_by_phone",
            "get_customer_by_id",
            "get_customer_by_name",
            "get_bills_for_customer",
            "send_payment_request",
            "make_payment",
            "get_data_usage",
            "refuel_data",
            "change_plan",
            "enable_roaming",
            "disable_roaming",
            "suspend_line",
            "resume_line",
            "transfer_to_human_agents",
        ] {
            assert!(names.contains(&tau2), "{tau2}");
        }
        for descriptor in catalog() {
            let schema = &descriptor.args_schema;
            assert_eq!(schema["type"], "object", "{}", descriptor.name);
        }
        let refuel = ActionName::RefuelData.args_schema();
        assert_eq!(refuel["properties"]["gb_amount"]["maximum"], 2);
        assert_eq!(refuel["required"], serde_json::json!(["customer_id", "line_id", "gb_amount"]));
    }

    #[test]
    fn refusals_explain_themselves() {
        let refusal = Refusal::ContractEnded {
            line_id: LineId::parse("L1").unwrap(),
            contract_end_date: NaiveDate::from_ymd_opt(2025, 1, 31).unwrap(),
        };
        assert_eq!(refusal.code(), "contract_ended");
        assert!(refusal.customer_message().contains("ended on 2025-01-31"));
        assert_eq!(refusal.details()["code"], "contract_ended");
        let back: Refusal = serde_json::from_value(refusal.details()).unwrap();
        assert_eq!(back, refusal);
    }
}
