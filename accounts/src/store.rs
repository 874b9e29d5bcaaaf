//! The account store: one tree per record type, JSON values in the tau2 record shape, in the
//! process's [`storage::Store`] (sled on one machine, PostgreSQL for several).
//!
//! Trees (all prefixed `accounts.`): `meta` (schema version, business date, confirmation key),
//! `plans`, `customers`, `lines`, `devices`, `bills`, `payments`, `phones` (phone digits to
//! customer id), `audit` (append-only, keyed by customer id and a monotonic sequence number),
//! `idempotency` (first outcome per idempotency key) and `confirmations` (used tokens).
//!
//! Every multi-record change runs in one transaction over these trees (sled's, flushed before
//! it returns; or a serializable PostgreSQL transaction), so an acknowledged change survives a
//! crash and a crash never leaves half a change.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use serde::de::DeserializeOwned;
use storage::{Bytes as IVec, Store, TransactionError, Tree, TxError, TxTree};

use super::audit::{AuditEntry, AuditKey, AuditResult};
use super::data::AccountsData;
use super::domain::{Bill, Customer, Device, Line, Payment, Plan, fold_name};
use super::ids::{BillId, CustomerId, LineId, PhoneNumber, PlanId};
use super::safety::Actor;
use super::{Error, Result};

/// Version of the on-disk layout this build writes.
pub const SCHEMA_VERSION: u32 = 1;

const META_SCHEMA_VERSION: &[u8] = b"schema_version";
const META_TODAY: &[u8] = b"today";
const META_CONFIRMATION_KEY: &[u8] = b"confirmation_key";

/// The trees, in the order transactions see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeName {
    Meta = 0,
    Plans,
    Customers,
    Lines,
    Devices,
    Bills,
    Payments,
    Phones,
    Audit,
    Idempotency,
    Confirmations,
}

const TREE_NAMES: [(TreeName, &str); 11] = [
    (TreeName::Meta, "accounts.meta"),
    (TreeName::Plans, "accounts.plans"),
    (TreeName::Customers, "accounts.customers"),
    (TreeName::Lines, "accounts.lines"),
    (TreeName::Devices, "accounts.devices"),
    (TreeName::Bills, "accounts.bills"),
    (TreeName::Payments, "accounts.payments"),
    (TreeName::Phones, "accounts.phones"),
    (TreeName::Audit, "accounts.audit"),
    (TreeName::Idempotency, "accounts.idempotency"),
    (TreeName::Confirmations, "accounts.confirmations"),
];

/// The record trees that an import replaces.
const DATA_TREES: [TreeName; 7] = [
    TreeName::Plans,
    TreeName::Customers,
    TreeName::Lines,
    TreeName::Devices,
    TreeName::Bills,
    TreeName::Payments,
    TreeName::Phones,
];

/// How an import treats what the store already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// The file becomes the whole account database (the audit log is kept). The default of
    /// `switchboard accounts import`: a tau2 `db.toml` is a complete database.
    #[default]
    Replace,
    /// Records of the file replace the stored records with the same id; others stay. The merged
    /// result must still be consistent (every reference resolves).
    Merge,
}

/// A storage failure seen while reading or writing records, inside or outside a transaction.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A concurrent transaction touched the same keys: the store retries the closure.
    Conflict,
    Storage(storage::Error),
    Corrupt(String),
}

impl From<storage::Error> for Fail {
    fn from(error: storage::Error) -> Self {
        match error {
            storage::Error::Conflict => Fail::Conflict,
            other => Fail::Storage(other),
        }
    }
}

impl From<Fail> for Error {
    fn from(fail: Fail) -> Self {
        match fail {
            // Only reachable outside transactions, where the store never reports conflicts.
            Fail::Conflict => Error::Corrupt("unexpected transaction conflict".into()),
            Fail::Storage(error) => Error::Storage(error),
            Fail::Corrupt(why) => Error::Corrupt(why),
        }
    }
}

/// Aborts a transaction carrying `T`, or hands a storage failure (a conflict: a retry) to the store.
pub(crate) fn tx_fail<T: From<Fail>>(fail: Fail) -> TxError<T> {
    match fail {
        Fail::Conflict => TxError::Storage(storage::Error::Conflict),
        Fail::Storage(error) => TxError::Storage(error),
        corrupt @ Fail::Corrupt(_) => TxError::Abort(T::from(corrupt)),
    }
}

/// Somewhere records can be read from: the trees themselves or a transaction's view of them.
pub(crate) trait Source {
    fn raw(&self, tree: TreeName, key: &[u8]) -> Result<Option<IVec>, Fail>;

    fn get<V: DeserializeOwned>(&self, tree: TreeName, key: &[u8]) -> Result<Option<V>, Fail> {
        match self.raw(tree, key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| Fail::Corrupt(format!("{tree:?} record {}: {error}", String::from_utf8_lossy(key)))),
        }
    }

    fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, Fail> {
        self.get(TreeName::Customers, id.as_str().as_bytes())
    }
    fn line(&self, id: &LineId) -> Result<Option<Line>, Fail> {
        self.get(TreeName::Lines, id.as_str().as_bytes())
    }
    fn bill(&self, id: &BillId) -> Result<Option<Bill>, Fail> {
        self.get(TreeName::Bills, id.as_str().as_bytes())
    }
    fn plan(&self, id: &PlanId) -> Result<Option<Plan>, Fail> {
        self.get(TreeName::Plans, id.as_str().as_bytes())
    }
    /// The customer a phone number (contact number or line) belongs to.
    fn customer_id_by_phone(&self, phone: &PhoneNumber) -> Result<Option<CustomerId>, Fail> {
        self.get(TreeName::Phones, phone.key().as_bytes())
    }
}

/// A transaction's view of every tree; writes become visible together at commit.
pub(crate) struct TxView<'a> {
    trees: &'a [TxTree<'a>],
}

impl Source for TxView<'_> {
    fn raw(&self, tree: TreeName, key: &[u8]) -> Result<Option<IVec>, Fail> {
        Ok(self.trees[tree as usize].get(key)?)
    }
}

impl TxView<'_> {
    pub(crate) fn put<V: Serialize>(&self, tree: TreeName, key: &[u8], value: &V) -> Result<(), Fail> {
        let bytes =
            serde_json::to_vec(value).map_err(|error| Fail::Corrupt(format!("cannot encode record: {error}")))?;
        self.trees[tree as usize].insert(key, bytes)?;
        Ok(())
    }

    pub(crate) fn put_raw(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), Fail> {
        self.trees[tree as usize].insert(key, value)?;
        Ok(())
    }

    pub(crate) fn remove(&self, tree: TreeName, key: &[u8]) -> Result<(), Fail> {
        self.trees[tree as usize].remove(key)?;
        Ok(())
    }

    pub(crate) fn put_customer(&self, customer: &Customer) -> Result<(), Fail> {
        self.put(TreeName::Customers, customer.customer_id.as_str().as_bytes(), customer)
    }
    pub(crate) fn put_line(&self, line: &Line) -> Result<(), Fail> {
        self.put(TreeName::Lines, line.line_id.as_str().as_bytes(), line)
    }
    pub(crate) fn put_bill(&self, bill: &Bill) -> Result<(), Fail> {
        self.put(TreeName::Bills, bill.bill_id.as_str().as_bytes(), bill)
    }
    pub(crate) fn put_payment(&self, payment: &Payment) -> Result<(), Fail> {
        self.put(TreeName::Payments, payment.payment_id.as_str().as_bytes(), payment)
    }

    /// Appends an audit entry under a fresh, monotonic sequence number.
    pub(crate) fn append_audit(&self, mut entry: AuditEntry) -> Result<AuditEntry, Fail> {
        let sequence = self.trees[TreeName::Audit as usize].generate_id()?;
        entry.sequence = sequence;
        let key = AuditKey::new(entry.customer_id.as_ref(), sequence);
        self.put(TreeName::Audit, key.as_bytes(), &entry)?;
        Ok(entry)
    }

    /// Makes the commit durable before the transaction returns.
    pub(crate) fn flush_on_commit(&self) {
        self.trees[TreeName::Meta as usize].flush_on_commit();
    }
}

struct Trees {
    all: Vec<Tree>,
}

impl Source for Trees {
    fn raw(&self, tree: TreeName, key: &[u8]) -> Result<Option<IVec>, Fail> {
        Ok(self.all[tree as usize].get(key)?)
    }
}

/// The account store. Cheap to clone (trees are shared handles).
#[derive(Clone)]
pub struct AccountStore {
    db: Store,
    trees: Arc<Trees>,
}

impl std::fmt::Debug for AccountStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountStore").field("n_trees", &self.trees.all.len()).finish()
    }
}

impl AccountStore {
    /// Opens (creating or migrating as needed) the account trees in an open store.
    pub fn open(db: &Store) -> Result<Self> {
        let all = TREE_NAMES.iter().map(|(_, name)| db.tree(name)).collect::<storage::Result<Vec<_>>>()?;
        let store = AccountStore { db: db.clone(), trees: Arc::new(Trees { all }) };
        store.check_schema()?;
        Ok(store)
    }

    /// Opens the sled database at `path` (a directory) and the account trees in it.
    pub fn open_path(path: &Path) -> Result<Self> {
        let db = Store::open_sled(path, None).map_err(|error| match error {
            storage::Error::Locked(_) => Error::Locked(path.display().to_string()),
            other => Error::Storage(other),
        })?;
        Self::open(&db)
    }

    /// A store in a temporary sled database, deleted when the last handle drops.
    pub fn temporary() -> Result<Self> {
        Self::open(&Store::temporary()?)
    }

    /// A fresh temporary store holding `data`: what the scenario harness runs each scenario
    /// against.
    pub fn temporary_with(data: &AccountsData) -> Result<Self> {
        let store = Self::temporary()?;
        store.import(data, ImportMode::Replace)?;
        Ok(store)
    }

    /// A temporary copy of this store's account data (not its audit log).
    pub fn temporary_copy(&self) -> Result<Self> {
        Self::temporary_with(&self.snapshot()?)
    }

    pub(crate) fn tree(&self, name: TreeName) -> &Tree {
        &self.trees.all[name as usize]
    }

    pub(crate) fn source(&self) -> &impl Source {
        self.trees.as_ref()
    }

    /// Runs `f` in one transaction over every tree. `f` may run several times (on conflicts),
    /// so it must only act through the view.
    pub(crate) fn transaction<T, A>(
        &self,
        f: impl Fn(&TxView<'_>) -> Result<T, TxError<A>>,
    ) -> Result<T, TransactionError<A>> {
        let trees: Vec<&Tree> = self.trees.all.iter().collect();
        self.db.transaction(&trees, |trees| f(&TxView { trees }))
    }

    fn check_schema(&self) -> Result<()> {
        let meta = self.tree(TreeName::Meta);
        let stored = meta.get(META_SCHEMA_VERSION)?.map(|bytes| {
            let array: [u8; 4] = bytes.as_slice().try_into().unwrap_or([0; 4]);
            u32::from_be_bytes(array)
        });
        let mut version = stored.unwrap_or(SCHEMA_VERSION);
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew { found: version, supported: SCHEMA_VERSION });
        }
        while version < SCHEMA_VERSION {
            self.migrate_from(version)?;
            version += 1;
            meta.insert(META_SCHEMA_VERSION, version.to_be_bytes())?;
        }
        if stored != Some(SCHEMA_VERSION) {
            meta.insert(META_SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes())?;
        }
        if meta.get(META_CONFIRMATION_KEY)?.is_none() {
            let key: [u8; 32] = rand::random();
            // Another opener may have won the race; either key is fine as long as there is one.
            let _ = meta.compare_and_swap(META_CONFIRMATION_KEY, None as Option<&[u8]>, Some(&key[..]))?;
        }
        meta.flush()?;
        Ok(())
    }

    /// The migration hook: turns a store of schema `from` into schema `from + 1`.
    fn migrate_from(&self, from: u32) -> Result<()> {
        match from {
            // Schema 0 never existed on disk; nothing to do. New steps go here, one arm each.
            0 => Ok(()),
            other => Err(Error::Corrupt(format!("no migration from account schema {other}"))),
        }
    }

    /// The stored schema version.
    pub fn schema_version(&self) -> Result<u32> {
        let bytes = self.tree(TreeName::Meta).get(META_SCHEMA_VERSION)?;
        let array: [u8; 4] = bytes.as_deref().and_then(|b| b.try_into().ok()).unwrap_or([0; 4]);
        Ok(u32::from_be_bytes(array))
    }

    /// The key confirmation tokens are signed with (random per store, kept in `meta`).
    pub(crate) fn confirmation_key(&self) -> Result<Vec<u8>> {
        let key = self.tree(TreeName::Meta).get(META_CONFIRMATION_KEY)?;
        key.map(|k| k.to_vec()).ok_or_else(|| Error::Corrupt("the confirmation key is missing".into()))
    }

    /// The business date the imported data was written for (`[meta] today`), if any.
    pub fn data_today(&self) -> Result<Option<NaiveDate>> {
        let raw = self.tree(TreeName::Meta).get(META_TODAY)?;
        raw.map(|bytes| {
            std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| Error::Corrupt("meta today is not a date".into()))
        })
        .transpose()
    }

    /// True when the store holds no plans (nothing was imported yet).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.tree(TreeName::Plans).is_empty()?)
    }

    /// Imports `data` if the store is empty (the `accounts.seed` at start); returns whether it did.
    pub fn seed_if_empty(&self, data: &AccountsData) -> Result<bool> {
        if !self.is_empty()? {
            return Ok(false);
        }
        self.import(data, ImportMode::Replace)?;
        Ok(true)
    }

    /// Loads an account database in one transaction (see [`ImportMode`]). Not meant to run
    /// while actions run: the command-line import opens the store alone.
    pub fn import(&self, data: &AccountsData, mode: ImportMode) -> Result<()> {
        let data = match mode {
            ImportMode::Replace => data.clone(),
            ImportMode::Merge => {
                let mut merged = self.snapshot()?;
                merged.today = data.today.or(merged.today);
                merged.plans.extend(data.plans.clone());
                merged.customers.extend(data.customers.clone());
                merged.lines.extend(data.lines.clone());
                merged.devices.extend(data.devices.clone());
                merged.bills.extend(data.bills.clone());
                merged.payments.extend(data.payments.clone());
                // Re-check references of the merged whole through the file parser's checks.
                AccountsData::from_toml_str(&merged.to_toml_string()?)?
            }
        };
        let mut old_keys = Vec::new();
        for tree in DATA_TREES {
            for key in self.tree(tree).iter()?.keys() {
                old_keys.push((tree, key?));
            }
        }
        let mut phones: Vec<(String, &CustomerId)> = Vec::new();
        for customer in data.customers.values() {
            for line_id in &customer.line_ids {
                if let Some(line) = data.lines.get(line_id) {
                    phones.push((line.phone_number.key(), &customer.customer_id));
                }
            }
        }
        // Contact numbers last: they win over another customer's line number.
        for customer in data.customers.values() {
            phones.push((customer.phone_number.key(), &customer.customer_id));
        }
        let result = self.transaction(|tx| {
            let write = || -> Result<(), Fail> {
                for (tree, key) in &old_keys {
                    tx.remove(*tree, key)?;
                }
                for plan in data.plans.values() {
                    tx.put(TreeName::Plans, plan.plan_id.as_str().as_bytes(), plan)?;
                }
                for customer in data.customers.values() {
                    tx.put_customer(customer)?;
                }
                for line in data.lines.values() {
                    tx.put_line(line)?;
                }
                for device in data.devices.values() {
                    tx.put(TreeName::Devices, device.device_id.as_str().as_bytes(), device)?;
                }
                for bill in data.bills.values() {
                    tx.put_bill(bill)?;
                }
                for payment in data.payments.values() {
                    tx.put_payment(payment)?;
                }
                for (digits, customer_id) in &phones {
                    tx.put(TreeName::Phones, digits.as_bytes(), customer_id)?;
                }
                match data.today {
                    Some(today) => tx.put_raw(TreeName::Meta, META_TODAY, today.to_string().as_bytes())?,
                    None => tx.remove(TreeName::Meta, META_TODAY)?,
                }
                tx.flush_on_commit();
                Ok(())
            };
            write().map_err(tx_fail::<Error>)
        });
        result.map_err(|error| match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => Error::Storage(error),
        })
    }

    /// Every account record (plans, customers, lines, devices, bills, payments and the data's
    /// business date), value for value: compare two snapshots to prove nothing changed. The
    /// audit log, idempotency records and spent confirmation tokens are not part of it (a
    /// refusal is audited).
    pub fn snapshot(&self) -> Result<AccountsData> {
        fn all<K: Ord, V: DeserializeOwned>(
            tree: &Tree,
            key: impl Fn(&V) -> K,
        ) -> Result<std::collections::BTreeMap<K, V>> {
            let mut map = std::collections::BTreeMap::new();
            for entry in tree.iter()? {
                let (id, bytes) = entry?;
                let value: V = serde_json::from_slice(&bytes)
                    .map_err(|error| Error::Corrupt(format!("record {}: {error}", String::from_utf8_lossy(&id))))?;
                map.insert(key(&value), value);
            }
            Ok(map)
        }
        Ok(AccountsData {
            today: self.data_today()?,
            plans: all(self.tree(TreeName::Plans), |plan: &Plan| plan.plan_id.clone())?,
            customers: all(self.tree(TreeName::Customers), |c: &Customer| c.customer_id.clone())?,
            lines: all(self.tree(TreeName::Lines), |line: &Line| line.line_id.clone())?,
            devices: all(self.tree(TreeName::Devices), |device: &Device| device.device_id.clone())?,
            bills: all(self.tree(TreeName::Bills), |bill: &Bill| bill.bill_id.clone())?,
            payments: all(self.tree(TreeName::Payments), |payment: &Payment| payment.payment_id.clone())?,
        })
    }

    /// Reads a dotted path into the records, as scenario `final_state` checks write them:
    /// `bills.B1005.status` is `"Paid"`, `lines.L1002.roaming_enabled` is `true`,
    /// `customers.C1001.payment_methods.0.method_type` walks into a list. The first segment is
    /// a collection (`plans`, `customers`, `lines`, `devices`, `bills`, `payments`), the second
    /// an id; `None` when any segment does not exist.
    pub fn read_path(&self, path: &str) -> Result<Option<serde_json::Value>> {
        let mut segments = path.trim().split('.');
        let (Some(collection), Some(id)) = (segments.next(), segments.next()) else {
            return Ok(None);
        };
        let tree = match collection {
            "plans" => TreeName::Plans,
            "customers" => TreeName::Customers,
            "lines" => TreeName::Lines,
            "devices" => TreeName::Devices,
            "bills" => TreeName::Bills,
            "payments" => TreeName::Payments,
            _ => return Ok(None),
        };
        let Some(mut value) = self.source().get::<serde_json::Value>(tree, id.as_bytes())? else {
            return Ok(None);
        };
        for segment in segments {
            let next = match &mut value {
                serde_json::Value::Object(map) => map.remove(segment),
                serde_json::Value::Array(items) => {
                    segment.parse::<usize>().ok().filter(|&idx| idx < items.len()).map(|idx| items.swap_remove(idx))
                }
                _ => None,
            };
            match next {
                Some(next) => value = next,
                None => return Ok(None),
            }
        }
        Ok(Some(value))
    }

    pub fn customer(&self, id: &CustomerId) -> Result<Option<Customer>> {
        Ok(self.source().customer(id)?)
    }

    pub fn line(&self, id: &LineId) -> Result<Option<Line>> {
        Ok(self.source().line(id)?)
    }

    pub fn bill(&self, id: &BillId) -> Result<Option<Bill>> {
        Ok(self.source().bill(id)?)
    }

    pub fn plan(&self, id: &PlanId) -> Result<Option<Plan>> {
        Ok(self.source().plan(id)?)
    }

    /// Every plan, by id.
    pub fn plans(&self) -> Result<Vec<Plan>> {
        let mut plans = Vec::new();
        for entry in self.tree(TreeName::Plans).iter()? {
            let (_, bytes) = entry?;
            plans.push(serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("plan record: {e}")))?);
        }
        Ok(plans)
    }

    /// The customer whose contact number or line has this number.
    pub fn customer_by_phone(&self, phone: &PhoneNumber) -> Result<Option<Customer>> {
        let source = self.source();
        match source.customer_id_by_phone(phone)? {
            Some(id) => Ok(source.customer(&id)?),
            None => Ok(None),
        }
    }

    /// Customers with this full name (case and accents ignored) and this date of birth.
    pub fn customers_by_name_and_dob(&self, full_name: &str, date_of_birth: NaiveDate) -> Result<Vec<Customer>> {
        let wanted = fold_name(full_name);
        let mut found = Vec::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        for entry in self.tree(TreeName::Customers).iter()? {
            let (_, bytes) = entry?;
            let customer: Customer =
                serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("customer record: {e}")))?;
            if customer.date_of_birth == date_of_birth && fold_name(&customer.full_name) == wanted {
                found.push(customer);
            }
        }
        Ok(found)
    }

    /// Customers with this full name (case and accents ignored), whatever their date of birth.
    pub fn customers_by_name(&self, full_name: &str) -> Result<Vec<Customer>> {
        let wanted = fold_name(full_name);
        let mut found = Vec::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        for entry in self.tree(TreeName::Customers).iter()? {
            let (_, bytes) = entry?;
            let customer: Customer =
                serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("customer record: {e}")))?;
            if fold_name(&customer.full_name) == wanted {
                found.push(customer);
            }
        }
        Ok(found)
    }

    /// True when the customer exists and both the name (case and accents ignored) and the date
    /// of birth match: the verification step after identifying a caller by phone or id.
    pub fn identity_matches(
        &self,
        customer_id: &CustomerId,
        full_name: &str,
        date_of_birth: NaiveDate,
    ) -> Result<bool> {
        Ok(self
            .customer(customer_id)?
            .is_some_and(|c| c.date_of_birth == date_of_birth && fold_name(&c.full_name) == fold_name(full_name)))
    }

    /// Audits something done about a customer outside the action registry (an agent verifying
    /// a customer out of band, unlocking their verification), durably, with its reason in `args`.
    pub fn audit_event(
        &self,
        customer_id: &CustomerId,
        actor: Actor,
        action: &str,
        args: serde_json::Value,
        business_date: NaiveDate,
    ) -> Result<AuditEntry> {
        let entry = AuditEntry {
            sequence: 0,
            at: chrono::Utc::now(),
            business_date,
            customer_id: Some(customer_id.clone()),
            actor,
            action: action.to_string(),
            args,
            idempotency_key: None,
            result: AuditResult::Done { output: serde_json::Value::Null },
            via_hook: false,
        };
        let result = self.transaction(|tx| {
            let entry = tx.append_audit(entry.clone()).map_err(tx_fail::<Error>)?;
            tx.flush_on_commit();
            Ok(entry)
        });
        result.map_err(|error| match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => Error::Storage(error),
        })
    }

    /// The customer's audit log, oldest first.
    pub fn audit_for_customer(&self, customer_id: &CustomerId) -> Result<Vec<AuditEntry>> {
        let prefix = AuditKey::prefix(Some(customer_id));
        self.read_audit(self.tree(TreeName::Audit).scan_prefix(prefix)?)
    }

    /// The whole audit log, ordered by customer then time.
    pub fn audit_all(&self) -> Result<Vec<AuditEntry>> {
        self.read_audit(self.tree(TreeName::Audit).iter()?)
    }

    fn read_audit(&self, entries: storage::Entries) -> Result<Vec<AuditEntry>> {
        let mut log = Vec::new();
        for entry in entries {
            let (_, bytes) = entry?;
            log.push(serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("audit record: {e}")))?);
        }
        log.sort_by_key(|entry: &AuditEntry| entry.sequence);
        Ok(log)
    }

    /// Flushes every pending write to disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}
