//! The action registry: the one door every account action goes through.
//!
//! [`ActionRegistry::run`] takes an [`ActionCall`] (request, actor, confirmation token,
//! idempotency key) and:
//! 1. for a write (change, money, handoff): requires an idempotency key; a key seen before
//!    returns the first outcome if the actor and arguments are the same, and
//!    [`Error::IdempotencyConflict`] otherwise;
//! 2. for a customer's change or money action: checks the confirmation token;
//! 3. when the action is hooked: checks the policy on the local records first (a dry run),
//!    then delivers it to the operator, whose answer becomes the result;
//! 4. checks the policy and applies the change, the audit entry, the idempotency record and
//!    the spent token in one transaction, flushed before returning. A refusal is recorded
//!    the same way (audit, idempotency, token) and changes no account record.
//!
//! Writes for one customer are serialized by an async lock, so a hooked action's dry run,
//! delivery and commit see the same records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{Local, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use storage::{TransactionError, TxError};

use super::actions::{ActionName, ActionOutput, ActionRequest, Refusal};
use super::audit::{AuditEntry, AuditResult};
use super::hooks::{HookBody, HookReply, Hooks};
use super::ids::{ConversationId, IdempotencyKey};
use super::policy::{self, Context, Stop};
use super::safety::{Actor, CheckedConfirmation, ConfirmationToken, Confirmations, fingerprint};
use super::store::{AccountStore, Fail, Source, TreeName, tx_fail};
use super::{Error, Result};

/// Where "today" comes from. The tau2 data is written for 2025-02-25 ([`TAU2_TODAY`]); the
/// demo seed for the real date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The machine's local date.
    #[default]
    System,
    /// A fixed business date.
    Fixed(NaiveDate),
}

impl Clock {
    pub fn today(self) -> NaiveDate {
        match self {
            Clock::System => Local::now().date_naive(),
            Clock::Fixed(date) => date,
        }
    }
}

/// The business date of the tau2-bench telecom policy ("The current time is 2025-02-25 12:08:00 EST").
pub const TAU2_TODAY: NaiveDate = match NaiveDate::from_ymd_opt(2025, 2, 25) {
    Some(date) => date,
    None => panic!("valid date"),
};

/// How a registry is set up.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The business date; `None`: the imported data's `[meta] today` if it has one, else the
    /// machine's date.
    pub today: Option<NaiveDate>,
    /// How long a confirmation token stays valid.
    pub confirmation_ttl: Duration,
    pub hooks: Hooks,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self { today: None, confirmation_ttl: Duration::from_secs(30 * 60), hooks: Hooks::none() }
    }
}

/// One request to run an action.
#[derive(Debug, Clone)]
pub struct ActionCall {
    pub request: ActionRequest,
    pub actor: Actor,
    /// Required for a customer's change and money actions.
    pub confirmation: Option<ConfirmationToken>,
    /// Required for change, money and handoff actions.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl ActionCall {
    /// A call without confirmation or idempotency key (enough for reads).
    pub fn new(request: ActionRequest, actor: Actor) -> Self {
        Self { request, actor, confirmation: None, idempotency_key: None }
    }

    pub fn with_idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    pub fn with_confirmation(mut self, token: ConfirmationToken) -> Self {
        self.confirmation = Some(token);
        self
    }
}

/// What a successful action returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    pub action: ActionName,
    pub output: ActionOutput,
    /// True when this is the stored first result of an earlier call with the same key.
    pub replayed: bool,
    /// The audit entry of a write.
    pub audit_sequence: Option<u64>,
    /// True when the operator's endpoint ran the action.
    pub via_hook: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum StoredOutcome {
    Done { output: serde_json::Value },
    Refused { refusal: Refusal },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdempotencyRecord {
    fingerprint: String,
    action: ActionName,
    outcome: StoredOutcome,
    audit_sequence: u64,
    via_hook: bool,
}

/// Why a write transaction stopped without committing the change.
enum TxAbort {
    Refused(Refusal),
    Replay(Box<IdempotencyRecord>),
    ConfirmationUsed,
    DryRun(Box<ActionOutput>),
    Error(Error),
}

impl From<Fail> for TxAbort {
    fn from(fail: Fail) -> Self {
        TxAbort::Error(fail.into())
    }
}

fn stop_to_tx(stop: Stop) -> TxError<TxAbort> {
    match stop {
        Stop::Refused(refusal) => TxError::Abort(TxAbort::Refused(refusal)),
        Stop::Fail(fail) => tx_fail(fail),
    }
}

fn abort<T>(reason: TxAbort) -> Result<T, TxError<TxAbort>> {
    Err(TxError::Abort(reason))
}

/// Runs account actions against a store under the policy.
pub struct ActionRegistry {
    store: AccountStore,
    today: Option<NaiveDate>,
    confirmations: Confirmations,
    hooks: Hooks,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for ActionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionRegistry").field("today", &self.today).field("hooks", &self.hooks).finish()
    }
}

impl ActionRegistry {
    pub fn new(store: AccountStore, options: RegistryOptions) -> Result<Self> {
        let today = match options.today {
            Some(today) => Some(today),
            None => store.data_today()?,
        };
        let confirmations = Confirmations::new(store.confirmation_key()?, options.confirmation_ttl);
        Ok(Self { store, today, confirmations, hooks: options.hooks, locks: Mutex::new(HashMap::new()) })
    }

    pub fn store(&self) -> &AccountStore {
        &self.store
    }

    pub fn clock(&self) -> Clock {
        self.today.map_or(Clock::System, Clock::Fixed)
    }

    /// The business date actions run under.
    pub fn today(&self) -> NaiveDate {
        self.clock().today()
    }

    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Mints the token that proves the customer in `conversation` confirmed exactly `request`.
    /// The dialogue calls this when the customer says yes to the pending action.
    pub fn confirm(&self, conversation: &ConversationId, request: &ActionRequest) -> ConfirmationToken {
        self.confirmations.mint(conversation, request, SystemTime::now())
    }

    fn context<'a>(&self, actor: &'a Actor) -> Context<'a> {
        let today = self.today();
        Context { today, now: today.and_time(Local::now().time()), actor }
    }

    /// Checks what an action would do, without doing it: the policy runs on the current
    /// records in a transaction that is always rolled back. `Ok(Err(refusal))` when the policy
    /// would refuse. The dialogue uses it before asking the customer to confirm a change.
    pub fn check(&self, actor: &Actor, request: &ActionRequest) -> Result<Result<ActionOutput, Refusal>> {
        let ctx = self.context(actor);
        self.dry_run(&ctx, request)
    }

    /// Runs one action; see the module docs for the order of checks. A refusal is
    /// `Err(Error::Refused(reason))`.
    pub async fn run(&self, call: ActionCall) -> Result<ActionOutcome> {
        let action = call.request.name();
        if action.kind().is_write() { self.run_write(call).await } else { self.run_read(call).await }
    }

    /// [`run`](Self::run) for synchronous callers (the dialogue engine on a blocking thread,
    /// the command line, the scenario harness). Must not be called from inside an async task;
    /// a hook delivery then runs on the current tokio runtime's handle, or on a small runtime
    /// of its own when there is none.
    pub fn run_blocking(&self, call: ActionCall) -> Result<ActionOutcome> {
        if !self.hooks.is_hooked(call.request.name()) {
            // Nothing to deliver: the future only ever waits for the per-customer lock.
            return block_on_parked(self.run(call));
        }
        super::hooks::block_on(self.run(call))?
    }

    async fn run_read(&self, call: ActionCall) -> Result<ActionOutcome> {
        let action = call.request.name();
        let ctx = self.context(&call.actor);
        let local = match policy::read(&self.store, &ctx, &call.request) {
            Ok(output) => output,
            Err(Stop::Refused(refusal)) => return Err(Error::Refused(refusal)),
            Err(Stop::Fail(fail)) => return Err(fail.into()),
        };
        if !self.hooks.is_hooked(action) {
            return Ok(ActionOutcome { action, output: local, replayed: false, audit_sequence: None, via_hook: false });
        }
        let body = HookBody { action, args: call.request.args_json(), actor: &call.actor, idempotency_key: None };
        let output = match self.hooks.deliver(&body).await? {
            HookReply::Done(None) => local,
            HookReply::Done(Some(value)) => ActionOutput::from_json(action, value)
                .map_err(|error| Error::HookBadResponse { action: action.to_string(), why: error.to_string() })?,
            HookReply::Declined { status, code, message } => {
                return Err(Error::Refused(Refusal::OperatorDeclined { status, operator_code: code, message }));
            }
        };
        Ok(ActionOutcome { action, output, replayed: false, audit_sequence: None, via_hook: true })
    }

    async fn lock_customer(&self, call: &ActionCall) -> tokio::sync::OwnedMutexGuard<()> {
        let key = policy::audited_customer(&call.actor, &call.request).map(String::from).unwrap_or_default();
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if locks.len() > 10_000 {
                locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            locks.entry(key).or_default().clone()
        };
        lock.lock_owned().await
    }

    async fn run_write(&self, call: ActionCall) -> Result<ActionOutcome> {
        let action = call.request.name();
        let key = call.idempotency_key.clone().ok_or(Error::IdempotencyKeyRequired { action: action.to_string() })?;
        let fingerprint = fingerprint(&call.actor, &call.request);
        let _guard = self.lock_customer(&call).await;

        if let Some(record) =
            self.store.source().get::<IdempotencyRecord>(TreeName::Idempotency, key.as_str().as_bytes())?
        {
            return replay(action, &key, &fingerprint, record);
        }
        let confirmation = self.check_confirmation(&call)?;
        if let Some(checked) = &confirmation
            && self.store.source().raw(TreeName::Confirmations, checked.nonce.as_bytes())?.is_some()
        {
            return Err(Error::ConfirmationUsed);
        }
        let ctx = self.context(&call.actor);
        let mut via_hook = false;
        let mut hook_output = None;
        if self.hooks.is_hooked(action) {
            if let Err(refusal) = self.dry_run(&ctx, &call.request)? {
                return self.record_refusal(&ctx, &call, &key, &fingerprint, confirmation.as_ref(), refusal, false);
            }
            let body =
                HookBody { action, args: call.request.args_json(), actor: &call.actor, idempotency_key: Some(&key) };
            via_hook = true;
            match self.hooks.deliver(&body).await? {
                HookReply::Done(value) => {
                    hook_output =
                        value.map(|value| ActionOutput::from_json(action, value)).transpose().map_err(|error| {
                            Error::HookBadResponse { action: action.to_string(), why: error.to_string() }
                        })?;
                }
                HookReply::Declined { status, code, message } => {
                    let refusal = Refusal::OperatorDeclined { status, operator_code: code, message };
                    return self.record_refusal(&ctx, &call, &key, &fingerprint, confirmation.as_ref(), refusal, true);
                }
            }
        }
        self.commit(&ctx, &call, &key, &fingerprint, confirmation.as_ref(), hook_output, via_hook)
    }

    fn check_confirmation(&self, call: &ActionCall) -> Result<Option<CheckedConfirmation>> {
        let Actor::Customer { conversation_id, .. } = &call.actor else {
            return Ok(None);
        };
        if !call.request.kind().needs_confirmation() {
            return Ok(None);
        }
        let token = call
            .confirmation
            .as_ref()
            .ok_or(Error::ConfirmationRequired { action: call.request.name().to_string() })?;
        self.confirmations.check(token, conversation_id, &call.request, SystemTime::now()).map(Some)
    }

    /// Checks the policy in a transaction that is always rolled back.
    fn dry_run(&self, ctx: &Context<'_>, request: &ActionRequest) -> Result<Result<ActionOutput, Refusal>> {
        let result = self.store.transaction(|tx| match policy::apply(tx, ctx, request) {
            Ok(output) => abort::<()>(TxAbort::DryRun(Box::new(output))),
            Err(stop) => Err(stop_to_tx(stop)),
        });
        match result {
            Ok(()) => Err(Error::Corrupt("a dry run committed".into())),
            Err(TransactionError::Abort(TxAbort::DryRun(output))) => Ok(Ok(*output)),
            Err(TransactionError::Abort(TxAbort::Refused(refusal))) => Ok(Err(refusal)),
            Err(TransactionError::Abort(TxAbort::Error(error))) => Err(error),
            Err(TransactionError::Abort(TxAbort::Replay(_) | TxAbort::ConfirmationUsed)) => {
                Err(Error::Corrupt("unexpected dry-run outcome".into()))
            }
            Err(TransactionError::Storage(error)) => Err(Error::Storage(error)),
        }
    }

    fn audit_entry(
        &self,
        ctx: &Context<'_>,
        call: &ActionCall,
        key: &IdempotencyKey,
        result: AuditResult,
        via_hook: bool,
    ) -> AuditEntry {
        AuditEntry {
            sequence: 0,
            at: Utc::now(),
            business_date: ctx.today,
            customer_id: policy::audited_customer(&call.actor, &call.request),
            actor: call.actor.clone(),
            action: call.request.name().to_string(),
            args: call.request.args_json(),
            idempotency_key: Some(key.clone()),
            result,
            via_hook,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        ctx: &Context<'_>,
        call: &ActionCall,
        key: &IdempotencyKey,
        fingerprint: &str,
        confirmation: Option<&CheckedConfirmation>,
        hook_output: Option<ActionOutput>,
        via_hook: bool,
    ) -> Result<ActionOutcome> {
        let action = call.request.name();
        let result = self.store.transaction(|tx| {
            if let Some(record) =
                tx.get::<IdempotencyRecord>(TreeName::Idempotency, key.as_str().as_bytes()).map_err(tx_fail)?
            {
                return abort(TxAbort::Replay(Box::new(record)));
            }
            if let Some(checked) = confirmation
                && tx.raw(TreeName::Confirmations, checked.nonce.as_bytes()).map_err(tx_fail)?.is_some()
            {
                return abort(TxAbort::ConfirmationUsed);
            }
            let local = policy::apply(tx, ctx, &call.request).map_err(stop_to_tx)?;
            let output = hook_output.clone().unwrap_or(local);
            let output_json = output.to_json();
            let entry = self.audit_entry(ctx, call, key, AuditResult::Done { output: output_json.clone() }, via_hook);
            let entry = tx.append_audit(entry).map_err(tx_fail)?;
            let record = IdempotencyRecord {
                fingerprint: fingerprint.to_string(),
                action,
                outcome: StoredOutcome::Done { output: output_json },
                audit_sequence: entry.sequence,
                via_hook,
            };
            tx.put(TreeName::Idempotency, key.as_str().as_bytes(), &record).map_err(tx_fail)?;
            if let Some(checked) = confirmation {
                tx.put_raw(TreeName::Confirmations, checked.nonce.as_bytes(), Utc::now().to_rfc3339().as_bytes())
                    .map_err(tx_fail)?;
            }
            tx.flush_on_commit();
            Ok((output, entry.sequence))
        });
        match result {
            Ok((output, sequence)) => {
                Ok(ActionOutcome { action, output, replayed: false, audit_sequence: Some(sequence), via_hook })
            }
            Err(TransactionError::Abort(TxAbort::Refused(refusal))) => {
                if via_hook {
                    tracing::error!(action = %action, code = refusal.code(), "the operator applied an action the local policy now refuses");
                }
                self.record_refusal(ctx, call, key, fingerprint, confirmation, refusal, via_hook)
            }
            Err(TransactionError::Abort(TxAbort::Replay(record))) => replay(action, key, fingerprint, *record),
            Err(TransactionError::Abort(TxAbort::ConfirmationUsed)) => Err(Error::ConfirmationUsed),
            Err(TransactionError::Abort(TxAbort::Error(error))) => Err(error),
            Err(TransactionError::Abort(TxAbort::DryRun(_))) => Err(Error::Corrupt("unexpected dry run".into())),
            Err(TransactionError::Storage(error)) => Err(Error::Storage(error)),
        }
    }

    /// Records a refusal (audit entry, idempotency record, spent token) and returns it as the error.
    #[allow(clippy::too_many_arguments)]
    fn record_refusal(
        &self,
        ctx: &Context<'_>,
        call: &ActionCall,
        key: &IdempotencyKey,
        fingerprint: &str,
        confirmation: Option<&CheckedConfirmation>,
        refusal: Refusal,
        via_hook: bool,
    ) -> Result<ActionOutcome> {
        let action = call.request.name();
        let result = self.store.transaction(|tx| {
            if let Some(record) =
                tx.get::<IdempotencyRecord>(TreeName::Idempotency, key.as_str().as_bytes()).map_err(tx_fail)?
            {
                return abort(TxAbort::Replay(Box::new(record)));
            }
            let audit = AuditResult::Refused { code: refusal.code().to_string(), message: refusal.customer_message() };
            let entry = tx.append_audit(self.audit_entry(ctx, call, key, audit, via_hook)).map_err(tx_fail)?;
            let record = IdempotencyRecord {
                fingerprint: fingerprint.to_string(),
                action,
                outcome: StoredOutcome::Refused { refusal: refusal.clone() },
                audit_sequence: entry.sequence,
                via_hook,
            };
            tx.put(TreeName::Idempotency, key.as_str().as_bytes(), &record).map_err(tx_fail)?;
            if let Some(checked) = confirmation {
                tx.put_raw(TreeName::Confirmations, checked.nonce.as_bytes(), Utc::now().to_rfc3339().as_bytes())
                    .map_err(tx_fail)?;
            }
            tx.flush_on_commit();
            Ok(())
        });
        match result {
            Ok(()) => Err(Error::Refused(refusal)),
            Err(TransactionError::Abort(TxAbort::Replay(record))) => replay(action, key, fingerprint, *record),
            Err(TransactionError::Abort(TxAbort::Error(error))) => Err(error),
            Err(TransactionError::Abort(_)) => Err(Error::Corrupt("unexpected refusal outcome".into())),
            Err(TransactionError::Storage(error)) => Err(Error::Storage(error)),
        }
    }
}

/// Polls a future on this thread, parking while it waits (enough for futures that only wait
/// on locks, not on I/O or timers).
fn block_on_parked<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => return output,
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

fn replay(
    action: ActionName,
    key: &IdempotencyKey,
    fingerprint: &str,
    record: IdempotencyRecord,
) -> Result<ActionOutcome> {
    if record.fingerprint != fingerprint || record.action != action {
        return Err(Error::IdempotencyConflict { key: key.to_string() });
    }
    match record.outcome {
        StoredOutcome::Done { output } => Ok(ActionOutcome {
            action,
            output: ActionOutput::from_json(action, output)
                .map_err(|error| Error::Corrupt(format!("stored result of {action}: {error}")))?,
            replayed: true,
            audit_sequence: Some(record.audit_sequence),
            via_hook: record.via_hook,
        }),
        StoredOutcome::Refused { refusal } => Err(Error::Refused(refusal)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::actions::ActionKind;
    use super::*;

    #[test]
    fn clocks() {
        assert_eq!(Clock::Fixed(TAU2_TODAY).today().to_string(), "2025-02-25");
        assert!(Clock::System.today().to_string().len() == 10);
    }

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_run_future_is_send() {
        let registry = ActionRegistry::new(AccountStore::temporary().unwrap(), RegistryOptions::default()).unwrap();
        let request = ActionRequest::parse("list_plans", serde_json::Value::Null).unwrap();
        let future = registry.run(ActionCall::new(request, Actor::System));
        assert_send(&future);
    }

    #[test]
    fn kinds_decide_confirmation() {
        assert!(ActionKind::Money.needs_confirmation());
        assert!(!ActionKind::Handoff.needs_confirmation());
        assert!(ActionKind::Handoff.is_write());
    }
}
