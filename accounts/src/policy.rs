//! What each action checks and does: the operator's policy (tau2 telecom `main_policy.md`),
//! enforced here rather than left to the dialogue.
//!
//! Every function checks everything before it writes anything, and writes only through the
//! transaction's view, so a refusal leaves the store exactly as it was.
//!
//! Choices where the policy is silent, stated once:
//! - "Overdue" for `resume_line` means a bill with status Overdue or Awaiting Payment (payment
//!   requests are only sent for overdue bills, so a bill awaiting payment is still unpaid and
//!   overdue). The stored status decides, not the due date.
//! - A contract "not past" means its end date is today or later.
//! - Refuel: at most 2 GB per refuel (not per cycle), charged at the plan's price per GB,
//!   rounded half up to the cent, as a line item on the customer's Draft bill (a Draft bill for
//!   next month is created when there is none), as tau2 does.
//! - Payment and payment-request actions work on closed accounts (money can still be owed);
//!   every other change is refused on a closed account.
//! - Payment extension (`grant_payment_extension`, not a tau2 tool): tau2's
//!   `last_extension_date` is "used for quarterly limit check", so one extension per calendar
//!   quarter; it moves the due date to 14 days after the later of the due date and today, and
//!   an Overdue bill becomes Issued again.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

use super::actions::{
    ActionOutput, ActionRequest, BillArgs, BillsArgs, ChangePlanArgs, DataRefuelled, DataUsage, ExtensionGranted,
    LineArgs, LineStatusChanged, NameArgs, PaymentArgs, PaymentReceipt, PaymentRequested, PlanChanged, RefuelArgs,
    Refusal, RoamingSet, SuspendArgs, TransferArgs, Transferred,
};
use super::domain::{
    AccountStatus, Bill, BillStatus, Customer, Line, LineItem, LineState, LineStatus, Payment, PaymentMethod, Plan,
};
use super::ids::{BillId, CustomerId, LineId, PaymentId};
use super::money::{DataAmount, MAX_REFUEL, Money, RefuelAmount};
use super::safety::Actor;
use super::store::{AccountStore, Fail, Source, TreeName, TxView};

/// Bills returned by `get_bills_for_customer` when no limit is given.
pub const DEFAULT_BILLS_LIMIT: u32 = 12;

/// Days a payment extension adds.
pub const EXTENSION_DAYS: i64 = 14;

/// What the policy says to a customer after a transfer (tau2 policy wording).
pub const TRANSFER_MESSAGE: &str = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.";

/// The business time an action runs at, and who runs it.
pub(crate) struct Context<'a> {
    pub(crate) today: NaiveDate,
    pub(crate) now: NaiveDateTime,
    pub(crate) actor: &'a Actor,
}

/// Why an action stopped: refused by the policy, or the storage failed.
pub(crate) enum Stop {
    Refused(Refusal),
    Fail(Fail),
}

impl From<Fail> for Stop {
    fn from(fail: Fail) -> Self {
        Stop::Fail(fail)
    }
}

impl From<Refusal> for Stop {
    fn from(refusal: Refusal) -> Self {
        Stop::Refused(refusal)
    }
}

type Step<T> = Result<T, Stop>;

fn corrupt(why: String) -> Stop {
    Stop::Fail(Fail::Corrupt(why))
}

/// The customer named by the arguments, when the actor may act for them.
fn customer_for(src: &impl Source, ctx: &Context<'_>, customer_id: &CustomerId) -> Step<Customer> {
    if let Actor::Customer { customer_id: me, .. } = ctx.actor
        && me != customer_id
    {
        return Err(Refusal::NotYourAccount.into());
    }
    src.customer(customer_id)?.ok_or_else(|| Refusal::UnknownCustomer { customer_id: customer_id.clone() }.into())
}

fn not_on_account(ctx: &Context<'_>, refusal: Refusal) -> Stop {
    match ctx.actor {
        Actor::Customer { .. } => Refusal::NotYourAccount.into(),
        Actor::Agent { .. } | Actor::System => refusal.into(),
    }
}

fn owned_line(src: &impl Source, ctx: &Context<'_>, customer: &Customer, line_id: &LineId) -> Step<Line> {
    let line = src.line(line_id)?.ok_or_else(|| Stop::from(Refusal::UnknownLine { line_id: line_id.clone() }))?;
    if !customer.line_ids.contains(line_id) {
        return Err(not_on_account(
            ctx,
            Refusal::LineNotOnAccount { customer_id: customer.customer_id.clone(), line_id: line_id.clone() },
        ));
    }
    Ok(line)
}

fn owned_bill(src: &impl Source, ctx: &Context<'_>, customer: &Customer, bill_id: &BillId) -> Step<Bill> {
    let bill = src.bill(bill_id)?.ok_or_else(|| Stop::from(Refusal::UnknownBill { bill_id: bill_id.clone() }))?;
    if !customer.bill_ids.contains(bill_id) || bill.customer_id != customer.customer_id {
        return Err(not_on_account(
            ctx,
            Refusal::BillNotOnAccount { customer_id: customer.customer_id.clone(), bill_id: bill_id.clone() },
        ));
    }
    Ok(bill)
}

fn customer_bills(src: &impl Source, customer: &Customer) -> Step<Vec<Bill>> {
    let mut bills = Vec::with_capacity(customer.bill_ids.len());
    for bill_id in &customer.bill_ids {
        let bill = src
            .bill(bill_id)?
            .ok_or_else(|| corrupt(format!("bill {bill_id} of {} is missing", customer.customer_id)))?;
        bills.push(bill);
    }
    Ok(bills)
}

fn line_plan(src: &impl Source, line: &Line) -> Step<Plan> {
    src.plan(&line.plan_id)?.ok_or_else(|| Refusal::UnknownPlan { plan_id: line.plan_id.clone() }.into())
}

fn open_account(customer: &Customer) -> Step<()> {
    if customer.account_status == AccountStatus::Closed {
        return Err(Refusal::AccountClosed { customer_id: customer.customer_id.clone() }.into());
    }
    Ok(())
}

fn open_line(line: &Line) -> Step<()> {
    if line.status() == LineStatus::Closed {
        return Err(Refusal::LineClosed { line_id: line.line_id.clone() }.into());
    }
    Ok(())
}

fn last_day_of_month(date: NaiveDate) -> NaiveDate {
    let (year, month) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
    NaiveDate::from_ymd_opt(year, month, 1).and_then(|first| first.pred_opt()).unwrap_or(date)
}

fn first_day_of_next_quarter(date: NaiveDate) -> NaiveDate {
    let quarter_start_month = (date.month0() / 3) * 3 + 1;
    let (year, month) =
        if quarter_start_month + 3 > 12 { (date.year() + 1, 1) } else { (date.year(), quarter_start_month + 3) };
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(date)
}

fn same_quarter(a: NaiveDate, b: NaiveDate) -> bool {
    a.year() == b.year() && a.month0() / 3 == b.month0() / 3
}

/// Runs a read-only action against the stored records.
pub(crate) fn read(store: &AccountStore, ctx: &Context<'_>, request: &ActionRequest) -> Step<ActionOutput> {
    let src = store.source();
    match request {
        ActionRequest::GetCustomerByPhone(args) => {
            let Some(customer_id) = src.customer_id_by_phone(&args.phone_number)? else {
                return Err(Refusal::NoCustomerWithPhone { phone_number: args.phone_number.clone() }.into());
            };
            let customer = customer_for(src, ctx, &customer_id)?;
            Ok(ActionOutput::Customer(Box::new(customer)))
        }
        ActionRequest::GetCustomerById(args) => {
            Ok(ActionOutput::Customer(Box::new(customer_for(src, ctx, &args.customer_id)?)))
        }
        ActionRequest::GetCustomerByName(args) => get_customer_by_name(store, ctx, args),
        ActionRequest::GetBillsForCustomer(args) => get_bills(src, ctx, args),
        ActionRequest::GetLinesForCustomer(args) => {
            let customer = customer_for(src, ctx, &args.customer_id)?;
            let mut lines = Vec::with_capacity(customer.line_ids.len());
            for line_id in &customer.line_ids {
                lines.push(owned_line(src, ctx, &customer, line_id)?);
            }
            Ok(ActionOutput::Lines(lines))
        }
        ActionRequest::GetDataUsage(args) => get_data_usage(src, ctx, args),
        ActionRequest::ListPlans(_) => Ok(ActionOutput::Plans(store.plans().map_err(|e| corrupt(e.to_string()))?)),
        ActionRequest::GetPlan(args) => {
            let plan = src
                .plan(&args.plan_id)?
                .ok_or_else(|| Stop::from(Refusal::UnknownPlan { plan_id: args.plan_id.clone() }))?;
            Ok(ActionOutput::Plan(plan))
        }
        other => Err(corrupt(format!("{} is not a read action", other.name()))),
    }
}

fn get_customer_by_name(store: &AccountStore, ctx: &Context<'_>, args: &NameArgs) -> Step<ActionOutput> {
    let Some(dob) = args.date_of_birth() else {
        return Ok(ActionOutput::Customers(Vec::new()));
    };
    let mut found = store.customers_by_name_and_dob(&args.full_name, dob).map_err(|e| corrupt(e.to_string()))?;
    if let Actor::Customer { customer_id: me, .. } = ctx.actor {
        found.retain(|customer| &customer.customer_id == me);
    }
    Ok(ActionOutput::Customers(found))
}

fn get_bills(src: &impl Source, ctx: &Context<'_>, args: &BillsArgs) -> Step<ActionOutput> {
    let customer = customer_for(src, ctx, &args.customer_id)?;
    let mut bills = customer_bills(src, &customer)?;
    bills.sort_by(|a, b| b.issue_date.cmp(&a.issue_date).then_with(|| b.bill_id.cmp(&a.bill_id)));
    bills.truncate(args.limit.unwrap_or(DEFAULT_BILLS_LIMIT) as usize);
    Ok(ActionOutput::Bills(bills))
}

fn get_data_usage(src: &impl Source, ctx: &Context<'_>, args: &LineArgs) -> Step<ActionOutput> {
    let customer = customer_for(src, ctx, &args.customer_id)?;
    let line = owned_line(src, ctx, &customer, &args.line_id)?;
    let plan = line_plan(src, &line)?;
    let allowance = plan.data_limit.checked_add(line.data_refuelled).unwrap_or(DataAmount::from_megabytes(u64::MAX));
    Ok(ActionOutput::DataUsage(DataUsage {
        line_id: line.line_id,
        data_used_gb: line.data_used,
        data_limit_gb: plan.data_limit,
        data_refueling_gb: line.data_refuelled,
        data_remaining_gb: allowance.saturating_sub(line.data_used),
        over_limit: line.data_used >= allowance,
        cycle_end_date: last_day_of_month(ctx.today),
        refuel_price_per_gb: plan.refuel_price_per_gb,
    }))
}

/// Runs a change, money or handoff action inside a transaction.
pub(crate) fn apply(tx: &TxView<'_>, ctx: &Context<'_>, request: &ActionRequest) -> Step<ActionOutput> {
    match request {
        ActionRequest::SendPaymentRequest(args) => send_payment_request(tx, ctx, args),
        ActionRequest::MakePayment(args) => make_payment(tx, ctx, args),
        ActionRequest::RefuelData(args) => refuel_data(tx, ctx, args),
        ActionRequest::ChangePlan(args) => change_plan(tx, ctx, args),
        ActionRequest::EnableRoaming(args) => set_roaming(tx, ctx, args, true),
        ActionRequest::DisableRoaming(args) => set_roaming(tx, ctx, args, false),
        ActionRequest::SuspendLine(args) => suspend_line(tx, ctx, args),
        ActionRequest::ResumeLine(args) => resume_line(tx, ctx, args),
        ActionRequest::GrantPaymentExtension(args) => grant_payment_extension(tx, ctx, args),
        ActionRequest::TransferToHumanAgents(args) => transfer(tx, ctx, args),
        other => Err(corrupt(format!("{} is a read action", other.name()))),
    }
}

fn send_payment_request(tx: &TxView<'_>, ctx: &Context<'_>, args: &BillArgs) -> Step<ActionOutput> {
    let customer = customer_for(tx, ctx, &args.customer_id)?;
    let mut bill = owned_bill(tx, ctx, &customer, &args.bill_id)?;
    if bill.status == BillStatus::AwaitingPayment {
        return Err(Refusal::PaymentAlreadyRequested { bill_id: bill.bill_id }.into());
    }
    if let Some(awaiting) = customer_bills(tx, &customer)?.into_iter().find(|b| b.status == BillStatus::AwaitingPayment)
    {
        return Err(Refusal::PaymentAlreadyRequested { bill_id: awaiting.bill_id }.into());
    }
    if bill.status != BillStatus::Overdue {
        return Err(Refusal::BillNotOverdue { bill_id: bill.bill_id, status: bill.status }.into());
    }
    bill.status = BillStatus::AwaitingPayment;
    tx.put_bill(&bill)?;
    Ok(ActionOutput::PaymentRequested(PaymentRequested {
        customer_id: customer.customer_id,
        bill_id: bill.bill_id,
        amount_due: bill.total_due,
        bill_status: bill.status,
    }))
}

/// Picks the payment method: by last four digits or type when named, else the only usable one.
fn choose_method(customer: &Customer, requested: Option<&str>, today: NaiveDate) -> Result<PaymentMethod, Refusal> {
    let methods = &customer.payment_methods;
    if methods.is_empty() {
        return Err(Refusal::NoPaymentMethodOnFile);
    }
    let options = || methods.iter().map(ToString::to_string).collect::<Vec<_>>();
    let candidates: Vec<&PaymentMethod> = match requested {
        Some(requested) => {
            let digits: String = requested.chars().filter(char::is_ascii_digit).collect();
            let kind = requested.trim().parse().ok();
            methods
                .iter()
                .filter(|method| {
                    (digits.len() == 4 && method.last_four.as_str() == digits) || Some(method.kind) == kind
                })
                .collect()
        }
        None => {
            let usable: Vec<&PaymentMethod> = methods.iter().filter(|m| !m.expiry.is_expired_on(today)).collect();
            if usable.is_empty() { methods.iter().collect() } else { usable }
        }
    };
    match candidates.as_slice() {
        [] => {
            Err(Refusal::PaymentMethodNotOnFile { requested: requested.unwrap_or_default().chars().take(40).collect() })
        }
        [method] if method.expiry.is_expired_on(today) => {
            Err(Refusal::PaymentMethodExpired { method: method.to_string(), expiry: method.expiry.to_string() })
        }
        [method] => Ok((*method).clone()),
        _ if requested.is_none() => Err(Refusal::PaymentMethodAmbiguous { options: options() }),
        several => Err(Refusal::PaymentMethodAmbiguous { options: several.iter().map(ToString::to_string).collect() }),
    }
}

fn make_payment(tx: &TxView<'_>, ctx: &Context<'_>, args: &PaymentArgs) -> Step<ActionOutput> {
    let customer = customer_for(tx, ctx, &args.customer_id)?;
    let mut bill = owned_bill(tx, ctx, &customer, &args.bill_id)?;
    if bill.status != BillStatus::AwaitingPayment {
        return Err(Refusal::BillNotAwaitingPayment { bill_id: bill.bill_id, status: bill.status }.into());
    }
    let method = choose_method(&customer, args.payment_method.as_deref(), ctx.today)?;
    let payment_id = loop {
        let candidate = PaymentId::parse(format!("PAY-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]))
            .map_err(|e| corrupt(e.to_string()))?;
        if tx.raw(TreeName::Payments, candidate.as_str().as_bytes())?.is_none() {
            break candidate;
        }
    };
    let payment = Payment {
        payment_id,
        customer_id: customer.customer_id.clone(),
        bill_id: bill.bill_id.clone(),
        amount: bill.total_due,
        method: method.to_string(),
        paid_at: ctx.now,
    };
    bill.status = BillStatus::Paid;
    tx.put_bill(&bill)?;
    tx.put_payment(&payment)?;
    Ok(ActionOutput::PaymentMade(PaymentReceipt {
        payment_id: payment.payment_id,
        customer_id: payment.customer_id,
        bill_id: payment.bill_id,
        amount: payment.amount,
        method: payment.method,
        bill_status: bill.status,
    }))
}

/// The customer's Draft bill, or a new one for next month (tau2 `_apply_one_time_charge`).
fn draft_bill(tx: &TxView<'_>, customer: &Customer, today: NaiveDate) -> Step<(Bill, bool)> {
    if let Some(draft) = customer_bills(tx, customer)?.into_iter().find(|bill| bill.status == BillStatus::Draft) {
        return Ok((draft, false));
    }
    let next_month = last_day_of_month(today).succ_opt().ok_or_else(|| corrupt("date out of range".into()))?;
    let bill_id = loop {
        let candidate = BillId::parse(format!("B{}", uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()))
            .map_err(|e| corrupt(e.to_string()))?;
        if tx.bill(&candidate)?.is_none() {
            break candidate;
        }
    };
    let bill = Bill {
        bill_id,
        customer_id: customer.customer_id.clone(),
        period_start: next_month,
        period_end: last_day_of_month(next_month),
        issue_date: next_month,
        total_due: Money::ZERO,
        due_date: next_month + Duration::days(14),
        line_items: Vec::new(),
        status: BillStatus::Draft,
    };
    Ok((bill, true))
}

fn refuel_data(tx: &TxView<'_>, ctx: &Context<'_>, args: &RefuelArgs) -> Step<ActionOutput> {
    let mut customer = customer_for(tx, ctx, &args.customer_id)?;
    open_account(&customer)?;
    let mut line = owned_line(tx, ctx, &customer, &args.line_id)?;
    open_line(&line)?;
    let amount = RefuelAmount::from_gb(args.gb_amount).ok_or_else(|| {
        Stop::from(Refusal::RefuelAmountOutOfRange {
            requested_gb: if args.gb_amount.is_finite() { args.gb_amount } else { 0.0 },
            max_gb: MAX_REFUEL.to_gb(),
        })
    })?;
    let plan = line_plan(tx, &line)?;
    let charge = plan
        .refuel_price_per_gb
        .per_gb_times(amount.amount())
        .ok_or_else(|| corrupt("refuel charge overflows".into()))?;
    let (mut bill, is_new) = draft_bill(tx, &customer, ctx.today)?;
    let item = LineItem {
        description: format!(
            "Data refueling: {} at {}/GB - Line {}",
            amount.amount(),
            plan.refuel_price_per_gb,
            line.phone_number
        ),
        amount: charge,
        date: ctx.today,
        item_type: "Charge".into(),
    };
    bill.add_line_item(item).ok_or_else(|| corrupt("bill total overflows".into()))?;
    line.data_refuelled =
        line.data_refuelled.checked_add(amount.amount()).ok_or_else(|| corrupt("data refuelled overflows".into()))?;
    if is_new {
        customer.bill_ids.push(bill.bill_id.clone());
        tx.put_customer(&customer)?;
    }
    tx.put_bill(&bill)?;
    tx.put_line(&line)?;
    Ok(ActionOutput::DataRefuelled(DataRefuelled {
        line_id: line.line_id,
        gb_amount: amount.amount(),
        price_per_gb: plan.refuel_price_per_gb,
        charge,
        bill_id: bill.bill_id,
        new_data_refueling_gb: line.data_refuelled,
    }))
}

fn change_plan(tx: &TxView<'_>, ctx: &Context<'_>, args: &ChangePlanArgs) -> Step<ActionOutput> {
    let customer = customer_for(tx, ctx, &args.customer_id)?;
    open_account(&customer)?;
    let mut line = owned_line(tx, ctx, &customer, &args.line_id)?;
    open_line(&line)?;
    let plan =
        tx.plan(&args.plan_id)?.ok_or_else(|| Stop::from(Refusal::UnknownPlan { plan_id: args.plan_id.clone() }))?;
    if line.plan_id == plan.plan_id {
        return Err(Refusal::SamePlan { line_id: line.line_id, plan_id: plan.plan_id }.into());
    }
    let old_plan_id = std::mem::replace(&mut line.plan_id, plan.plan_id.clone());
    line.last_plan_change_date = Some(ctx.today);
    tx.put_line(&line)?;
    Ok(ActionOutput::PlanChanged(PlanChanged {
        line_id: line.line_id,
        old_plan_id,
        new_plan_id: plan.plan_id,
        new_plan_name: plan.name,
        new_price_per_month: plan.price_per_month,
        new_data_limit_gb: plan.data_limit,
    }))
}

fn set_roaming(tx: &TxView<'_>, ctx: &Context<'_>, args: &LineArgs, enabled: bool) -> Step<ActionOutput> {
    let customer = customer_for(tx, ctx, &args.customer_id)?;
    open_account(&customer)?;
    let mut line = owned_line(tx, ctx, &customer, &args.line_id)?;
    open_line(&line)?;
    let changed = line.roaming_enabled != enabled;
    if changed {
        line.roaming_enabled = enabled;
        tx.put_line(&line)?;
    }
    Ok(ActionOutput::Roaming(RoamingSet {
        line_id: line.line_id,
        roaming_enabled: enabled,
        changed,
        charge: Money::ZERO,
    }))
}

fn suspend_line(tx: &TxView<'_>, ctx: &Context<'_>, args: &SuspendArgs) -> Step<ActionOutput> {
    let customer = customer_for(tx, ctx, &args.customer_id)?;
    open_account(&customer)?;
    let mut line = owned_line(tx, ctx, &customer, &args.line_id)?;
    if line.state != LineState::Active {
        return Err(Refusal::LineNotActive { status: line.status(), line_id: line.line_id }.into());
    }
    line.state = LineState::Suspended { since: Some(ctx.today) };
    tx.put_line(&line)?;
    Ok(ActionOutput::LineStatus(LineStatusChanged {
        line_id: line.line_id,
        status: line.state.status(),
        suspension_start_date: line.state.suspension_start_date(),
        note: "The line is suspended; a $5 monthly holding fee applies while it is suspended (at most 6 months)."
            .into(),
    }))
}

fn resume_line(tx: &TxView<'_>, ctx: &Context<'_>, args: &LineArgs) -> Step<ActionOutput> {
    let customer = customer_for(tx, ctx, &args.customer_id)?;
    open_account(&customer)?;
    let mut line = owned_line(tx, ctx, &customer, &args.line_id)?;
    if !matches!(line.state, LineState::Suspended { .. } | LineState::PendingActivation) {
        return Err(Refusal::LineNotSuspended { status: line.status(), line_id: line.line_id }.into());
    }
    if let Some(end) = line.contract_end_date.filter(|_| line.contract_ended_on(ctx.today)) {
        return Err(Refusal::ContractEnded { line_id: line.line_id, contract_end_date: end }.into());
    }
    let unpaid = customer_bills(tx, &customer)?
        .into_iter()
        .find(|bill| matches!(bill.status, BillStatus::Overdue | BillStatus::AwaitingPayment));
    if let Some(bill) = unpaid {
        return Err(Refusal::OverdueBillBlocksResume { line_id: line.line_id, bill_id: bill.bill_id }.into());
    }
    line.state = LineState::Active;
    tx.put_line(&line)?;
    Ok(ActionOutput::LineStatus(LineStatusChanged {
        line_id: line.line_id,
        status: line.state.status(),
        suspension_start_date: None,
        note: "The line is active again; the customer must reboot the device to get service back.".into(),
    }))
}

fn grant_payment_extension(tx: &TxView<'_>, ctx: &Context<'_>, args: &BillArgs) -> Step<ActionOutput> {
    let mut customer = customer_for(tx, ctx, &args.customer_id)?;
    open_account(&customer)?;
    let mut bill = owned_bill(tx, ctx, &customer, &args.bill_id)?;
    if !matches!(bill.status, BillStatus::Issued | BillStatus::Overdue) {
        return Err(Refusal::BillNotExtendable { bill_id: bill.bill_id, status: bill.status }.into());
    }
    if let Some(last) = customer.last_extension_date.filter(|&last| same_quarter(last, ctx.today)) {
        return Err(Refusal::ExtensionAlreadyUsed {
            last_extension_date: last,
            next_possible: first_day_of_next_quarter(ctx.today),
        }
        .into());
    }
    let old_due_date = bill.due_date;
    bill.due_date = old_due_date.max(ctx.today) + Duration::days(EXTENSION_DAYS);
    if bill.status == BillStatus::Overdue {
        bill.status = BillStatus::Issued;
    }
    customer.last_extension_date = Some(ctx.today);
    tx.put_bill(&bill)?;
    tx.put_customer(&customer)?;
    Ok(ActionOutput::ExtensionGranted(ExtensionGranted {
        bill_id: bill.bill_id,
        old_due_date,
        new_due_date: bill.due_date,
        bill_status: bill.status,
    }))
}

fn transfer(tx: &TxView<'_>, ctx: &Context<'_>, args: &TransferArgs) -> Step<ActionOutput> {
    if let Some(customer_id) = &args.customer_id {
        customer_for(tx, ctx, customer_id)?;
    }
    Ok(ActionOutput::Transferred(Transferred {
        summary: args.summary.trim().to_string(),
        message: TRANSFER_MESSAGE.into(),
    }))
}

/// The customer an audited action concerns (the actor's, for a customer actor).
pub(crate) fn audited_customer(actor: &Actor, request: &ActionRequest) -> Option<CustomerId> {
    request.customer_id().cloned().or_else(|| match actor {
        Actor::Customer { customer_id, .. } => Some(customer_id.clone()),
        Actor::Agent { .. } | Actor::System => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn calendar_helpers() {
        assert_eq!(last_day_of_month(date("2025-02-25")), date("2025-02-28"));
        assert_eq!(last_day_of_month(date("2024-02-10")), date("2024-02-29"));
        assert_eq!(last_day_of_month(date("2025-12-05")), date("2025-12-31"));
        assert_eq!(first_day_of_next_quarter(date("2025-02-25")), date("2025-04-01"));
        assert_eq!(first_day_of_next_quarter(date("2025-11-02")), date("2026-01-01"));
        assert!(same_quarter(date("2025-01-05"), date("2025-03-31")));
        assert!(!same_quarter(date("2025-03-31"), date("2025-04-01")));
        assert!(!same_quarter(date("2024-01-05"), date("2025-01-05")));
    }
}
