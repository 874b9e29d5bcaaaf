//! Facts and checks: what reply templates and flow checks know about the customer's account.
//!
//! Facts are read from the account store (the system of record) and the conversation's
//! slots, never from model output. Checks evaluate a named condition for a flow node and may
//! fill slots (e.g. the one overdue bill becomes `bill_id`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::state::State;
use crate::identity::Requirements;
use accounts::domain::{Bill, BillStatus, Customer, Line, LineStatus, Plan};
use accounts::{AccountStore, BillId, CustomerId, LineId, PlanId};

/// What facts are computed from.
pub struct FactContext<'a> {
    pub store: &'a AccountStore,
    pub today: NaiveDate,
    pub state: &'a State,
    pub operator_name: &'a str,
    /// Facts set during this turn (a refusal's message, what the customer just gave).
    pub extra: &'a BTreeMap<String, String>,
    /// The assurance each kind of account fact needs.
    pub requirements: &'a Requirements,
}

/// The kind of account fact `name` discloses (its level is in `[identity.requirements]`);
/// `None` for facts about no account: the catalogue, the operator, what the customer typed.
pub fn fact_kind(name: &str) -> Option<&'static str> {
    Some(match name {
        "customer_first_name" | "customer_id" | "account_status" => "profile",
        "lines_list" | "line_id" | "line_phone" | "line_status" | "contract_end_date" => "lines",
        "plan_name" | "plan_price" | "refuel_price_per_gb" | "refuel_cost" => "plan",
        "data_used_gb" | "data_limit_gb" | "refuelled_note" | "data_left_text" => "usage",
        "bill_id" | "bill_amount" | "bill_due_date" | "bill_period" | "bill_status" | "bill_status_text"
        | "bill_items" | "bills_list" | "balance_total" | "balance_bills" | "balance_summary" => "bills",
        "payment_methods_list" | "payment_method_masked" | "other_payment_methods_note" => "payment_methods",
        _ => return None,
    })
}

/// The outcome of a check and the slots it fills.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub outcome: &'static str,
    pub fill: Vec<(String, Value)>,
}

impl CheckResult {
    fn is(outcome: &'static str) -> Self {
        Self { outcome, fill: Vec::new() }
    }
    fn filling(outcome: &'static str, slot: &str, value: Value) -> Self {
        Self { outcome, fill: vec![(slot.to_string(), value)] }
    }
}

/// Every check a flow may name.
pub const CHECKS: &[&str] = &[
    "overdue_bill",
    "chosen_bill_overdue",
    "payment_method",
    "bill_paid",
    "bill_to_explain",
    "outstanding_balance",
    "extendable_bill",
    "new_plan",
    "refuel_amount",
    "line_roaming",
    "line_status",
    "can_resume",
    "travelling",
    "data_exceeded",
    "suspended_line_to_resume",
    "queued_request",
];

/// Every fact a reply template or a flow's arguments may name ([`FactContext::fact`]).
pub const FACTS: &[&str] = &[
    "operator_name",
    "customer_first_name",
    "customer_id",
    "account_status",
    "lines_list",
    "line_id",
    "line_phone",
    "line_status",
    "contract_end_date",
    "plan_name",
    "plan_price",
    "refuel_price_per_gb",
    "plan_id",
    "new_plan_name",
    "new_plan_price",
    "new_plan_data",
    "plans_list",
    "data_gb",
    "refuel_cost",
    "data_used_gb",
    "data_limit_gb",
    "refuelled_note",
    "data_left_text",
    "bill_id",
    "bill_amount",
    "bill_due_date",
    "bill_period",
    "bill_status",
    "bill_status_text",
    "bill_items",
    "bills_list",
    "given_bill_id",
    "payment_methods_list",
    "payment_method_masked",
    "other_payment_methods_note",
    "payment_method",
    "balance_total",
    "balance_bills",
    "balance_summary",
    "question",
];

/// Facts the engine sets during a turn (beside [`FACTS`]): a refusal's message, what the
/// customer gave that was not found, a verification text's code and minutes; and
/// `preview_<field>`, the fields of an action's dry run.
pub const TURN_FACTS: &[&str] =
    &["refusal", "given_customer_id", "given_phone", "code", "code_minutes", "offered_task"];
/// The prefix of the facts of an action's dry run (`preview_amount`).
pub const PREVIEW_FACT_PREFIX: &str = "preview_";

/// Whether a template or a flow may name `fact`.
pub fn is_known_fact(fact: &str) -> bool {
    FACTS.contains(&fact) || TURN_FACTS.contains(&fact) || fact.starts_with(PREVIEW_FACT_PREFIX)
}

/// Most data one refuel may add (policy), in GB.
pub const MAX_REFUEL_GB: f64 = 2.0;

impl FactContext<'_> {
    /// The conversation's customer, once the conversation is sure enough of them to disclose
    /// any account fact (by default: verified). A claim alone reads nothing.
    pub fn customer(&self) -> Option<Customer> {
        let needed = self.requirements.facts.values().min().copied().unwrap_or(crate::identity::Assurance::Verified);
        if self.state.assurance() < needed.max(crate::identity::Assurance::Claimed) {
            return None;
        }
        let id = CustomerId::parse(self.state.customer.as_ref()?.customer_id.clone()).ok()?;
        self.store.customer(&id).ok().flatten()
    }

    /// The line in focus, when it is the customer's own.
    pub fn line(&self) -> Option<Line> {
        let id = LineId::parse(self.state.global("line_id")?.to_string()).ok()?;
        if !self.customer()?.line_ids.contains(&id) {
            return None;
        }
        self.store.line(&id).ok().flatten()
    }

    pub fn lines(&self) -> Vec<Line> {
        let Some(customer) = self.customer() else { return Vec::new() };
        customer.line_ids.iter().filter_map(|id| self.store.line(id).ok().flatten()).collect()
    }

    pub fn bills(&self) -> Vec<Bill> {
        let Some(customer) = self.customer() else { return Vec::new() };
        let mut bills: Vec<Bill> =
            customer.bill_ids.iter().filter_map(|id| self.store.bill(id).ok().flatten()).collect();
        bills.sort_by_key(|bill| std::cmp::Reverse(bill.issue_date));
        bills
    }

    /// The bill in focus, when it is the customer's own.
    pub fn bill(&self) -> Option<Bill> {
        let id = BillId::parse(self.slot_str("bill_id")?).ok()?;
        if !self.customer()?.bill_ids.contains(&id) {
            return None;
        }
        self.store.bill(&id).ok().flatten()
    }

    pub fn plan(&self) -> Option<Plan> {
        self.store.plan(&self.line()?.plan_id).ok().flatten()
    }

    pub fn new_plan(&self) -> Option<Plan> {
        let id = PlanId::parse(self.slot_str("plan_id").or_else(|| self.slot_str("plan"))?).ok()?;
        self.store.plan(&id).ok().flatten()
    }

    fn plans(&self) -> Vec<Plan> {
        self.store.plans().unwrap_or_default()
    }

    fn slot_str(&self, slot: &str) -> Option<String> {
        match self.state.slot(slot)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }

    fn data_gb(&self) -> Option<f64> {
        match self.state.slot("data_gb")? {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => text.parse().ok(),
            _ => None,
        }
    }

    fn payment_method_masked(&self) -> Option<String> {
        let customer = self.customer()?;
        let chosen = self.slot_str("payment_method");
        let method = customer
            .payment_methods
            .iter()
            .find(|method| chosen.as_deref().is_some_and(|c| c == method.last_four.as_str()))
            .or_else(|| usable_methods(&customer, self.today).into_iter().next())?;
        Some(method.to_string())
    }

    /// A fact as text, for reply templates.
    pub fn fact(&self, name: &str) -> Option<String> {
        if let Some(value) = self.extra.get(name) {
            return Some(value.clone());
        }
        if let Some(kind) = fact_kind(name)
            && self.state.assurance() < self.requirements.fact(kind)
        {
            return None;
        }
        Some(match name {
            "operator_name" => self.operator_name.to_string(),
            "customer_first_name" => {
                self.customer()?.full_name.split_whitespace().next().unwrap_or_default().to_string()
            }
            "customer_id" => self.state.customer.as_ref()?.customer_id.clone(),
            "account_status" => self.customer()?.account_status.as_str().to_string(),
            "lines_list" => {
                let lines = self.lines();
                if lines.is_empty() {
                    return Some("You have no lines on this account.".into());
                }
                lines
                    .iter()
                    .map(|line| format!("{} ({})", line.phone_number, line.status().as_str().to_lowercase()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            "line_id" => self.line()?.line_id.to_string(),
            "line_phone" => self.line()?.phone_number.to_string(),
            "line_status" => self.line()?.status().as_str().to_string(),
            "contract_end_date" => self.line()?.contract_end_date?.to_string(),
            "plan_name" => self.plan()?.name,
            "plan_price" => self.plan()?.price_per_month.to_string(),
            "refuel_price_per_gb" => self.plan()?.refuel_price_per_gb.to_string(),
            "plan_id" => self.new_plan()?.plan_id.to_string(),
            "new_plan_name" => self.new_plan()?.name,
            "new_plan_price" => self.new_plan()?.price_per_month.to_string(),
            "new_plan_data" => describe_allowance(&self.new_plan()?),
            "plans_list" => self
                .plans()
                .iter()
                .map(|plan| format!("{}: {} for {}/month", plan.name, describe_allowance(plan), plan.price_per_month))
                .collect::<Vec<_>>()
                .join("; "),
            "data_gb" => format_gb(self.data_gb()?),
            "refuel_cost" => {
                let price = self.plan()?.refuel_price_per_gb.to_dollars();
                format!("${:.2}", (price * self.data_gb()? * 100.0).round() / 100.0)
            }
            "data_used_gb" => format_gb(self.line()?.data_used.to_gb()),
            "data_limit_gb" => format_gb(self.plan()?.data_limit.to_gb()),
            "refuelled_note" => {
                let refuelled = self.line()?.data_refuelled.to_gb();
                if refuelled > 0.0 {
                    format!(" (plus {} GB added this cycle)", format_gb(refuelled))
                } else {
                    String::new()
                }
            }
            "data_left_text" => {
                let line = self.line()?;
                let allowance = self.plan()?.data_limit.to_gb() + line.data_refuelled.to_gb();
                let left = allowance - line.data_used.to_gb();
                if left > 0.0 {
                    format!("You have {} GB left this cycle.", format_gb(left))
                } else {
                    "You've used all your data for this cycle; I can add up to 2 GB if you need more.".to_string()
                }
            }
            "bill_id" => self.bill()?.bill_id.to_string(),
            "bill_amount" => self.bill()?.total_due.to_string(),
            "bill_due_date" => self.bill()?.due_date.to_string(),
            "bill_period" => {
                let bill = self.bill()?;
                format!("{} to {}", bill.period_start, bill.period_end)
            }
            "bill_status" => self.bill()?.status.as_str().to_string(),
            "bill_status_text" => match self.bill()?.status {
                BillStatus::Paid => "paid".to_string(),
                BillStatus::Overdue => "overdue".to_string(),
                BillStatus::AwaitingPayment => "awaiting payment".to_string(),
                BillStatus::Issued => format!("due on {}", self.bill()?.due_date),
                BillStatus::Draft => "still a draft".to_string(),
                BillStatus::Disputed => "under dispute".to_string(),
            },
            "bill_items" => {
                let bill = self.bill()?;
                if bill.line_items.is_empty() {
                    "no charges yet".to_string()
                } else {
                    bill.line_items
                        .iter()
                        .map(|item| format!("{} {}", item.description, item.amount))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            }
            "bills_list" => {
                let bills = self.bills();
                bills
                    .iter()
                    .filter(|bill| bill.status != BillStatus::Draft)
                    .map(|bill| {
                        format!("{} ({}, {})", bill.bill_id, bill.total_due, bill.status.as_str().to_lowercase())
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            "given_bill_id" => self.slot_str("bill_id")?,
            "payment_methods_list" => {
                let customer = self.customer()?;
                usable_methods(&customer, self.today).iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
            }
            "payment_method_masked" => self.payment_method_masked()?,
            "other_payment_methods_note" => {
                let customer = self.customer()?;
                let chosen = self.slot_str("payment_method").unwrap_or_default();
                let others: Vec<String> = usable_methods(&customer, self.today)
                    .into_iter()
                    .filter(|method| method.last_four.as_str() != chosen)
                    .map(|method| method.to_string())
                    .collect();
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" (You can also use your {}.)", others.join(" or "))
                }
            }
            "payment_method" => self.slot_str("payment_method").unwrap_or_default(),
            "balance_total" => {
                let due: Vec<Bill> = self.bills().into_iter().filter(|b| is_unpaid(b.status)).collect();
                let total: f64 = due.iter().map(|b| b.total_due.to_dollars()).sum();
                format!("${total:.2}")
            }
            "balance_bills" => self
                .bills()
                .iter()
                .filter(|b| is_unpaid(b.status))
                .map(|b| {
                    format!(
                        "bill {} of {} ({}, due {})",
                        b.bill_id,
                        b.total_due,
                        b.status.as_str().to_lowercase(),
                        b.due_date
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            "balance_summary" => {
                let next = self.bills().into_iter().find(|b| b.status == BillStatus::Issued);
                match next {
                    Some(bill) if bill.due_date < self.today => {
                        format!(
                            "Bill {} ({}) is issued with a due date of {}.",
                            bill.bill_id, bill.total_due, bill.due_date
                        )
                    }
                    Some(bill) => {
                        format!("Your next bill, {}, is {} and due on {}.", bill.bill_id, bill.total_due, bill.due_date)
                    }
                    // Nothing coming up: the latest bill, so "how much is my bill?" is answered.
                    None => match self.bills().into_iter().next() {
                        Some(bill) => format!(
                            "Your latest bill, {} ({} to {}), was {} and is {}.",
                            bill.bill_id,
                            bill.period_start,
                            bill.period_end,
                            bill.total_due,
                            bill.status.as_str().to_lowercase()
                        ),
                        None => String::new(),
                    },
                }
            }
            "question" => return None,
            _ => return None,
        })
    }

    /// A fact as a typed value, for action arguments (`gb_amount` stays a number).
    pub fn fact_value(&self, name: &str) -> Option<Value> {
        match name {
            "data_gb" => self.data_gb().map(|gb| json!(gb)),
            "payment_method" => self.slot_str("payment_method").map(Value::String),
            _ => self.fact(name).map(Value::String),
        }
    }

    /// Evaluates a named check.
    pub fn check(&self, name: &str) -> Option<CheckResult> {
        Some(match name {
            "overdue_bill" => {
                if self.slot_str("bill_id").is_some() {
                    return self.check("chosen_bill_overdue").map(|result| match result.outcome {
                        "overdue" => CheckResult::is("one"),
                        other => CheckResult::is(other),
                    });
                }
                let overdue: Vec<Bill> =
                    self.bills().into_iter().filter(|bill| bill.status == BillStatus::Overdue).collect();
                match overdue.as_slice() {
                    [] => CheckResult::is("none"),
                    [bill] => CheckResult::filling("one", "bill_id", json!(bill.bill_id.to_string())),
                    _ => CheckResult::is("several"),
                }
            }
            "chosen_bill_overdue" => match self.bill() {
                Some(bill) if bill.status == BillStatus::Overdue => CheckResult::is("overdue"),
                Some(bill) if bill.status == BillStatus::AwaitingPayment => CheckResult::is("awaiting_payment"),
                Some(_) => CheckResult::is("not_overdue"),
                None => CheckResult::is("not_found"),
            },
            "payment_method" => {
                let customer = self.customer()?;
                let usable = usable_methods(&customer, self.today);
                if let Some(chosen) = self.slot_str("payment_method")
                    && usable.iter().any(|m| m.last_four.as_str() == chosen)
                {
                    return Some(CheckResult::is("one"));
                }
                // Several methods: propose the first; the confirmation names the others, and the
                // customer may pick another ("use my credit card") instead of saying yes.
                match usable.first() {
                    None => CheckResult::is("none"),
                    Some(method) => CheckResult::filling("one", "payment_method", json!(method.last_four.as_str())),
                }
            }
            "bill_paid" => match self.bill() {
                Some(bill) if bill.status == BillStatus::Paid => CheckResult::is("paid"),
                _ => CheckResult::is("not_paid"),
            },
            "bill_to_explain" => {
                if self.bill().is_some() {
                    return Some(CheckResult::is("one"));
                }
                let bills: Vec<Bill> =
                    self.bills().into_iter().filter(|bill| bill.status != BillStatus::Draft).collect();
                let chosen = bills
                    .iter()
                    .find(|bill| matches!(bill.status, BillStatus::Overdue | BillStatus::AwaitingPayment))
                    .or_else(|| bills.first());
                match chosen {
                    None => CheckResult::is("none"),
                    Some(bill) => CheckResult::filling(
                        if bills.len() > 1 { "several" } else { "one" },
                        "bill_id",
                        json!(bill.bill_id.to_string()),
                    ),
                }
            }
            "outstanding_balance" => {
                if self.bills().iter().any(|bill| is_unpaid(bill.status)) {
                    CheckResult::is("due")
                } else {
                    CheckResult::is("nothing_due")
                }
            }
            "extendable_bill" => {
                if let Some(bill) = self.bill() {
                    return Some(if matches!(bill.status, BillStatus::Issued | BillStatus::Overdue) {
                        CheckResult::is("one")
                    } else {
                        CheckResult::is("none")
                    });
                }
                let bills: Vec<Bill> = self
                    .bills()
                    .into_iter()
                    .filter(|bill| matches!(bill.status, BillStatus::Issued | BillStatus::Overdue))
                    .collect();
                match bills.as_slice() {
                    [] => CheckResult::is("none"),
                    [bill] => CheckResult::filling("one", "bill_id", json!(bill.bill_id.to_string())),
                    _ => CheckResult::is("several"),
                }
            }
            "new_plan" => match (self.new_plan(), self.line()) {
                (None, _) => CheckResult::is("unknown"),
                (Some(plan), Some(line)) if plan.plan_id == line.plan_id => CheckResult::is("same"),
                (Some(plan), _) => CheckResult::filling("ok", "plan_id", json!(plan.plan_id.to_string())),
            },
            "refuel_amount" => match self.data_gb() {
                Some(gb) if gb > MAX_REFUEL_GB + 1e-9 => CheckResult::is("too_much"),
                Some(gb) if gb <= 0.0 => CheckResult::is("not_positive"),
                Some(_) => CheckResult::is("ok"),
                None => CheckResult::is("not_positive"),
            },
            "line_roaming" => {
                if self.line()?.roaming_enabled {
                    CheckResult::is("enabled")
                } else {
                    CheckResult::is("disabled")
                }
            }
            "line_status" => match self.line()?.status() {
                LineStatus::Active => CheckResult::is("active"),
                LineStatus::Suspended => CheckResult::is("suspended"),
                LineStatus::PendingActivation | LineStatus::Closed => CheckResult::is("other"),
            },
            "can_resume" => {
                let line = self.line()?;
                if self.bills().iter().any(|bill| bill.status == BillStatus::Overdue) {
                    CheckResult::is("overdue_bill")
                } else if line.contract_end_date.is_some_and(|end| end < self.today) {
                    CheckResult::is("contract_ended")
                } else {
                    CheckResult::is("ok")
                }
            }
            "travelling" => {
                let location = self.slot_str("location").unwrap_or_default().to_lowercase();
                if is_abroad(&location) { CheckResult::is("abroad") } else { CheckResult::is("home") }
            }
            "suspended_line_to_resume" => {
                // After a payment: a suspended line of the customer that the policy lets resume.
                if self.state.stack.len() > 1 {
                    return Some(CheckResult::is("nested"));
                }
                let overdue_left = self.bills().iter().any(|bill| bill.status == BillStatus::Overdue);
                let resumable = self.lines().into_iter().find(|line| {
                    line.status() == LineStatus::Suspended && line.contract_end_date.is_none_or(|end| end >= self.today)
                });
                match resumable {
                    Some(line) if !overdue_left => {
                        CheckResult::filling("resumable", "line_id", json!(line.line_id.to_string()))
                    }
                    _ => CheckResult::is("none"),
                }
            }
            "queued_request" => {
                let queued =
                    self.state.globals.get("_queued").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty());
                CheckResult::is(if queued { "yes" } else { "no" })
            }
            "data_exceeded" => {
                let line = self.line()?;
                let allowance = self.plan()?.data_limit.to_gb() + line.data_refuelled.to_gb();
                if line.data_used.to_gb() >= allowance - 1e-9 {
                    CheckResult::is("exceeded")
                } else {
                    CheckResult::is("ok")
                }
            }
            _ => return None,
        })
    }
}

/// Whether a customer's answer about where they are means they are travelling.
pub fn is_abroad(location: &str) -> bool {
    let lower = location.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let names_a_place_abroad = PLACES_ABROAD.iter().any(|place| {
        let place_words: Vec<&str> = place.split(' ').collect();
        words.windows(place_words.len()).any(|window| window == place_words.as_slice())
    });
    let negated =
        ["not travel", "not abroad", "at home", "home country", "i'm home", "im home", "not outside", "no,", "nope"]
            .iter()
            .any(|phrase| lower.contains(phrase));
    if negated {
        return false;
    }
    if names_a_place_abroad {
        return true;
    }
    // A bare "no" answers the question; "no internet since I arrived in Portugal" does not.
    if lower.trim() == "no" || lower.starts_with("no ") {
        return false;
    }
    TRAVEL_WORDS.is_match(&lower) || words.first() == Some(&"yes") || words.first() == Some(&"yeah")
}

/// Words of travel, matched as whole words ("yesterday" is not "yes", "stripe" is not "trip").
static TRAVEL_WORDS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"\b(abroad|travel\w*|overseas|outside the (country|us|states)|vacation|holidays?|trip|foreign)\b",
    )
    .unwrap()
});

/// Countries and large cities outside the operator's home country (the demo operator is in the
/// United States), as lowercase words.
const PLACES_ABROAD: &[&str] = &[
    "mexico",
    "canada",
    "france",
    "spain",
    "portugal",
    "italy",
    "germany",
    "austria",
    "switzerland",
    "belgium",
    "netherlands",
    "holland",
    "ireland",
    "uk",
    "england",
    "scotland",
    "wales",
    "britain",
    "europe",
    "greece",
    "turkey",
    "poland",
    "czech",
    "hungary",
    "croatia",
    "sweden",
    "norway",
    "denmark",
    "finland",
    "iceland",
    "japan",
    "china",
    "korea",
    "india",
    "thailand",
    "vietnam",
    "singapore",
    "indonesia",
    "philippines",
    "australia",
    "new zealand",
    "brazil",
    "argentina",
    "chile",
    "peru",
    "colombia",
    "costa rica",
    "cuba",
    "egypt",
    "morocco",
    "south africa",
    "kenya",
    "israel",
    "dubai",
    "emirates",
    "qatar",
    "caribbean",
    "bahamas",
    "jamaica",
    "puerto vallarta",
    "cancun",
    "toronto",
    "vancouver",
    "montreal",
    "london",
    "paris",
    "madrid",
    "barcelona",
    "lisbon",
    "porto",
    "rome",
    "milan",
    "venice",
    "florence",
    "berlin",
    "munich",
    "amsterdam",
    "brussels",
    "dublin",
    "vienna",
    "prague",
    "zurich",
    "geneva",
    "athens",
    "istanbul",
    "tokyo",
    "osaka",
    "seoul",
    "beijing",
    "shanghai",
    "hong kong",
    "bangkok",
    "sydney",
    "melbourne",
    "rio",
    "lima",
    "bogota",
    "buenos aires",
    "mexico city",
    "cairo",
    "marrakech",
    "cape town",
    "tel aviv",
    "bali",
    "copenhagen",
    "stockholm",
    "oslo",
    "helsinki",
    "reykjavik",
    "warsaw",
    "krakow",
    "budapest",
    "bucharest",
    "edinburgh",
    "manchester",
    "glasgow",
    "lyon",
    "marseille",
    "naples",
    "frankfurt",
    "hamburg",
    "seville",
    "valencia",
    "mallorca",
    "ibiza",
    "santorini",
    "taipei",
    "taiwan",
    "hanoi",
    "manila",
    "jakarta",
    "kyoto",
    "delhi",
    "mumbai",
    "nairobi",
    "lagos",
    "nigeria",
    "ghana",
    "romania",
    "bulgaria",
    "serbia",
    "slovenia",
    "slovakia",
    "estonia",
    "latvia",
    "lithuania",
    "ukraine",
    "luxembourg",
    "monaco",
    "malta",
    "cyprus",
    "lebanon",
    "saudi",
    "pakistan",
    "bangladesh",
    "nepal",
    "malaysia",
    "cambodia",
    "guatemala",
    "honduras",
    "panama",
    "ecuador",
    "venezuela",
    "uruguay",
    "bolivia",
    "paraguay",
    "tunisia",
    "algeria",
    "ethiopia",
    "tanzania",
    "quebec",
    "calgary",
    "havana",
    "tijuana",
    "guadalajara",
    "aruba",
];

fn is_unpaid(status: BillStatus) -> bool {
    matches!(status, BillStatus::Issued | BillStatus::Overdue | BillStatus::AwaitingPayment)
}

fn usable_methods(customer: &Customer, today: NaiveDate) -> Vec<&accounts::domain::PaymentMethod> {
    customer.payment_methods.iter().filter(|method| !method.expiry.is_expired_on(today)).collect()
}

fn describe_allowance(plan: &Plan) -> String {
    let gb = plan.data_limit.to_gb();
    if gb >= 999.0 { "unlimited data".to_string() } else { format!("{} GB", format_gb(gb)) }
}

/// `2`, `1.5`, `0.25`.
pub fn format_gb(gb: f64) -> String {
    let text = format!("{gb:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    /// The names a `match name` arm of the function starting at `signature` handles.
    fn match_arms(signature: &str) -> Vec<String> {
        let source = include_str!("facts.rs");
        let start = source.find(signature).expect("the function");
        let body = &source[start..];
        let end = body[1..].find("\n    pub fn ").map_or(body.len(), |end| end + 1);
        let arm = regex::Regex::new(r#"(?m)^            "([a-z_]+)" =>"#).unwrap();
        arm.captures_iter(&body[..end]).map(|captures| captures[1].to_string()).collect()
    }

    #[test]
    fn the_lists_of_checks_and_facts_are_what_the_code_handles() {
        let mut checks = match_arms("pub fn check(&self");
        let mut listed: Vec<String> = super::CHECKS.iter().map(|name| name.to_string()).collect();
        checks.sort();
        listed.sort();
        assert_eq!(checks, listed, "CHECKS and the arms of FactContext::check");
        let mut facts = match_arms("pub fn fact(&self");
        let mut listed: Vec<String> = super::FACTS.iter().map(|name| name.to_string()).collect();
        facts.sort();
        listed.sort();
        assert_eq!(facts, listed, "FACTS and the arms of FactContext::fact");
    }

    use super::*;

    #[test]
    fn abroad_or_home() {
        assert!(is_abroad("abroad in France"));
        assert!(is_abroad("Yes, I'm on holiday in Spain"));
        assert!(is_abroad("I'm travelling"));
        assert!(!is_abroad("No, I'm at home"));
        assert!(!is_abroad("I don't know"));
        assert!(!is_abroad("no"));
        assert!(is_abroad("in Madrid, Spain"));
        assert!(is_abroad("Spain"));
        assert!(is_abroad("no internet since I arrived in Portugal"));
        assert!(!is_abroad("I'm in Springfield"));
        assert!(!is_abroad("Websites not open. Yesterday it was working good."));
        assert!(!is_abroad("I'm outside my house"));
        assert!(is_abroad("yes, in Lisbon"));
    }

    #[test]
    fn gigabytes_print_short() {
        assert_eq!(format_gb(2.0), "2");
        assert_eq!(format_gb(1.5), "1.5");
        assert_eq!(format_gb(0.25), "0.25");
    }
}
