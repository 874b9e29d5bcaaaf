//! Where Switchboard keeps its state: one ordered key-value store with two backends.
//!
//! - **sled** (the default): an embedded database in the data directory, for one machine.
//! - **PostgreSQL**: a database several instances share. Trees are rows of one table
//!   (`switchboard_kv`: tree, key, value), keys compare byte by byte as they do in sled, and
//!   a transaction is a `SERIALIZABLE` PostgreSQL transaction retried on conflict, as sled
//!   retries its optimistic transactions.
//!
//! Every store of the project (accounts, conversations, the console, identity, WhatsApp) is
//! written against [`Store`] and [`Tree`], so one conformance suite (`tests/conformance.rs`)
//! holds both backends to the same behaviour. [`Store::lock`] serialises work on one key (a
//! conversation's turns) in this process and, with PostgreSQL, across every instance through an
//! advisory lock. [`Store::publish`] and [`Store::subscribe`] carry small notifications between
//! instances (`LISTEN`/`NOTIFY`), or within the process with sled.

mod local;
mod pg;
mod reads;
mod sled_backend;
pub mod testing;

use std::sync::Arc;

pub use local::{LocalGuard, LocalLocks};
pub use pg::{MIGRATIONS_LATEST, PostgresSettings};
pub use reads::{ReadScope, read_scope};

/// A value or key as stored.
pub type Bytes = Vec<u8>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error(
        "the database at {0} is in use by another process (one sled data directory serves one process; use PostgreSQL for several)"
    )]
    Locked(String),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// The database cannot be reached (at start or while serving): callers answer 503.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A concurrent transaction touched the same records; the transaction is retried.
    #[error("a concurrent change conflicted with this one")]
    Conflict,
    #[error(
        "the database was migrated by a newer Switchboard (schema {found}; this build knows up to {supported}): upgrade this instance, never downgrade the database"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("migrating the database: {0}")]
    Migration(String),
}

impl Error {
    /// True when retrying later may succeed (the database is down or restarting).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a transaction closure fails: it aborts with its own error, or a storage failure (a
/// conflict makes the store run the closure again).
#[derive(Debug)]
pub enum TxError<E> {
    Abort(E),
    Storage(Error),
}

impl<E> From<Error> for TxError<E> {
    fn from(error: Error) -> Self {
        TxError::Storage(error)
    }
}

/// How a transaction ended when it did not commit.
#[derive(Debug)]
pub enum TransactionError<E> {
    Abort(E),
    Storage(Error),
}

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sled,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone)]
enum Inner {
    Sled(sled_backend::SledStore),
    Postgres(Arc<pg::Pg>),
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Inner,
    locks: Arc<LocalLocks>,
    /// Put before every tree name, lock key and topic (see [`Store::namespaced`]).
    namespace: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).field("namespace", &self.namespace).finish()
    }
}

impl Store {
    /// A store on an open sled database.
    pub fn sled(db: sled::Db) -> Self {
        Store { inner: Inner::Sled(sled_backend::SledStore::new(db)), locks: Arc::default(), namespace: Arc::from("") }
    }

    /// Opens (creating) the sled database in `path`, flushing every `flush_every_ms`
    /// milliseconds besides the explicit flushes. A directory another process holds is
    /// [`Error::Locked`].
    pub fn open_sled(path: &std::path::Path, flush_every_ms: Option<u64>) -> Result<Self> {
        let db = sled::Config::new().path(path).flush_every_ms(flush_every_ms).open().map_err(|error| match error {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.raw_os_error() == Some(11) => {
                Error::Locked(path.display().to_string())
            }
            other => Error::Sled(other),
        })?;
        Ok(Self::sled(db))
    }

    /// A store in a temporary sled database, deleted when the last handle drops.
    pub fn temporary() -> Result<Self> {
        Ok(Self::sled(sled::Config::new().temporary(true).open()?))
    }

    /// Connects to PostgreSQL and brings its schema up to date (see [`Store::migrate`]).
    /// Unreachable is [`Error::Unavailable`]; a schema newer than this build is refused.
    pub fn postgres(settings: &PostgresSettings) -> Result<Self> {
        let pg = pg::Pg::connect(settings)?;
        pg.migrate()?;
        Ok(Store { inner: Inner::Postgres(Arc::new(pg)), locks: Arc::default(), namespace: Arc::from("") })
    }

    /// Connects to PostgreSQL without migrating: for `switchboard migrate` to report versions.
    pub fn postgres_unmigrated(settings: &PostgresSettings) -> Result<Self> {
        let pg = pg::Pg::connect(settings)?;
        Ok(Store { inner: Inner::Postgres(Arc::new(pg)), locks: Arc::default(), namespace: Arc::from("") })
    }

    /// The same database seen through a namespace: its trees, locks and topics are apart from
    /// every other namespace's (a scenario run on PostgreSQL gets one per scenario, as it gets
    /// a temporary database with sled).
    pub fn namespaced(&self, namespace: &str) -> Store {
        Store {
            inner: self.inner.clone(),
            locks: self.locks.clone(),
            namespace: Arc::from(format!("{}{namespace}/", self.namespace)),
        }
    }

    /// Applies the embedded migrations not yet applied; returns the schema version now.
    /// Refuses ([`Error::SchemaTooNew`]) a database a newer build migrated. sled has no
    /// schema of its own (each store keeps its version in its trees): always 0.
    pub fn migrate(&self) -> Result<i64> {
        match &self.inner {
            Inner::Sled(_) => Ok(0),
            Inner::Postgres(pg) => pg.migrate(),
        }
    }

    /// The applied schema version (0 for sled, or a PostgreSQL database never migrated).
    pub fn schema_version(&self) -> Result<i64> {
        match &self.inner {
            Inner::Sled(_) => Ok(0),
            Inner::Postgres(pg) => pg.schema_version(),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sled(_) => Backend::Sled,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Opens (creating) a tree. Names are the store's own (`accounts.bills`, `conversations`).
    pub fn tree(&self, name: &str) -> Result<Tree> {
        let name = format!("{}{name}", self.namespace);
        let backend = match &self.inner {
            Inner::Sled(store) => TreeBackend::Sled(store.tree(&name)?),
            Inner::Postgres(pg) => TreeBackend::Postgres(pg.clone()),
        };
        Ok(Tree { name: Arc::from(name), backend, store: self.clone() })
    }

    /// Runs `f` in one transaction over `trees` (all from this store): every write becomes
    /// visible together at commit, or none does. `f` may run several times (on conflicts), so
    /// it must act only through the transaction's trees, which it gets in the order given.
    pub fn transaction<T, E>(
        &self,
        trees: &[&Tree],
        f: impl Fn(&[TxTree<'_>]) -> Result<T, TxError<E>>,
    ) -> Result<T, TransactionError<E>> {
        match &self.inner {
            Inner::Sled(_) => sled_backend::transaction(trees, f),
            Inner::Postgres(pg) => pg.transaction(trees, f),
        }
    }

    /// A number never handed out before by this database (monotonic).
    pub fn generate_id(&self) -> Result<u64> {
        match &self.inner {
            Inner::Sled(store) => Ok(store.db().generate_id()?),
            Inner::Postgres(pg) => pg.generate_id(),
        }
    }

    /// Waits until no one else (in this process and, with PostgreSQL, in any instance on the
    /// database) holds `key`, then holds it until the guard drops. An instance that dies lets
    /// go with its connection.
    pub fn lock(&self, key: &str) -> Result<Lock<'_>> {
        let key = format!("{}{key}", self.namespace);
        let local = self.locks.hold(&key);
        let shared = match &self.inner {
            Inner::Sled(_) => None,
            Inner::Postgres(pg) => Some(pg.advisory_lock(&key)?),
        };
        Ok(Lock { _shared: shared, _local: local })
    }

    /// Sends `payload` to every subscriber of `topic` in every instance (at most 7,000 bytes;
    /// delivery is best effort: readers catch up from the logs after a reconnect).
    pub fn publish(&self, topic: &str, payload: &str) -> Result<()> {
        let topic = &format!("{}{topic}", self.namespace);
        match &self.inner {
            Inner::Sled(store) => {
                store.publish(topic, payload);
                Ok(())
            }
            Inner::Postgres(pg) => pg.publish(topic, payload),
        }
    }

    /// Receives what [`Store::publish`] sends on `topic`, from this instance and the others. An
    /// empty payload means notifications may have been lost (a reconnect): re-read the state.
    pub fn subscribe(&self, topic: &str) -> Result<tokio::sync::broadcast::Receiver<String>> {
        let topic = &format!("{}{topic}", self.namespace);
        match &self.inner {
            Inner::Sled(store) => Ok(store.subscribe(topic)),
            Inner::Postgres(pg) => pg.subscribe(topic),
        }
    }

    /// Makes every acknowledged write durable (sled flushes; PostgreSQL commits are).
    pub fn flush(&self) -> Result<()> {
        match &self.inner {
            Inner::Sled(store) => {
                store.db().flush()?;
                Ok(())
            }
            Inner::Postgres(_) => Ok(()),
        }
    }

    /// True when the database answers now.
    pub fn ping(&self) -> bool {
        match &self.inner {
            Inner::Sled(_) => true,
            Inner::Postgres(pg) => pg.ping(),
        }
    }

    /// Statements sent to the database so far (0 for sled): round trips per turn are measured
    /// with it.
    pub fn round_trips(&self) -> u64 {
        match &self.inner {
            Inner::Sled(_) => 0,
            Inner::Postgres(pg) => pg.round_trips(),
        }
    }
}

/// Holds a key of [`Store::lock`] until dropped.
pub struct Lock<'a> {
    // Dropped first: the database lock goes before this process's.
    _shared: Option<pg::AdvisoryLock>,
    _local: LocalGuard<'a>,
}

#[derive(Clone)]
enum TreeBackend {
    Sled(sled::Tree),
    Postgres(Arc<pg::Pg>),
}

/// A named, ordered map of byte keys to byte values in a [`Store`].
#[derive(Clone)]
pub struct Tree {
    name: Arc<str>,
    backend: TreeBackend,
    store: Store,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("name", &self.name).field("backend", &self.store.backend()).finish()
    }
}

impl Tree {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store this tree is in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        match &self.backend {
            TreeBackend::Sled(tree) => Ok(tree.get(key)?.map(|value| value.to_vec())),
            TreeBackend::Postgres(pg) => pg.get(&self.name, key.as_ref()),
        }
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Writes `value` under `key`.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        match &self.backend {
            TreeBackend::Sled(tree) => {
                tree.insert(key.as_ref(), value.as_ref())?;
                Ok(())
            }
            TreeBackend::Postgres(pg) => pg.insert(&self.name, key.as_ref(), value.as_ref()),
        }
    }

    /// Removes `key`; returns the value it had.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        match &self.backend {
            TreeBackend::Sled(tree) => Ok(tree.remove(key)?.map(|value| value.to_vec())),
            TreeBackend::Postgres(pg) => pg.remove(&self.name, key.as_ref()),
        }
    }

    /// Writes `new` under `key` only if it holds `old` now (`None`: absent / remove). On a
    /// mismatch nothing changes and the current value comes back as the error.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Bytes>>> {
        match &self.backend {
            TreeBackend::Sled(tree) => Ok(tree
                .compare_and_swap(key, old, new)?
                .map_err(|mismatch| mismatch.current.map(|value| value.to_vec()))),
            TreeBackend::Postgres(pg) => pg.compare_and_swap(&self.name, key.as_ref(), old, new),
        }
    }

    /// Writes `value` under `key` only if the key is absent; true when it did.
    pub fn insert_new(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.compare_and_swap(key, None, Some(value.as_ref()))?.is_ok())
    }

    /// Replaces the value under `key` by `f(current)` atomically (`None` removes); returns the
    /// new value. `f` may run several times.
    pub fn update_and_fetch(
        &self,
        key: impl AsRef<[u8]>,
        mut f: impl FnMut(Option<&[u8]>) -> Option<Bytes>,
    ) -> Result<Option<Bytes>> {
        match &self.backend {
            TreeBackend::Sled(tree) => Ok(tree.update_and_fetch(key, &mut f)?.map(|value| value.to_vec())),
            TreeBackend::Postgres(_) => {
                let key = key.as_ref();
                let f = std::cell::RefCell::new(f);
                let result = self.store.transaction(&[self], |trees| {
                    let current = trees[0].get(key)?;
                    let new = (f.borrow_mut())(current.as_deref());
                    match &new {
                        Some(value) => trees[0].insert(key, value)?,
                        None => {
                            trees[0].remove(key)?;
                        }
                    }
                    Ok::<_, TxError<std::convert::Infallible>>(new)
                });
                match result {
                    Ok(value) => Ok(value),
                    Err(TransactionError::Storage(error)) => Err(error),
                    Err(TransactionError::Abort(never)) => match never {},
                }
            }
        }
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> Result<Entries> {
        self.range_bytes(&[], None)
    }

    /// The entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Entries> {
        let prefix = prefix.as_ref();
        self.range_bytes(prefix, prefix_end(prefix).as_deref())
    }

    /// The entries with `start <= key < end` (`end` `None`: to the last), in key order.
    pub fn range(&self, start: impl AsRef<[u8]>, end: Option<&[u8]>) -> Result<Entries> {
        self.range_bytes(start.as_ref(), end)
    }

    fn range_bytes(&self, start: &[u8], end: Option<&[u8]>) -> Result<Entries> {
        match &self.backend {
            TreeBackend::Sled(tree) => {
                let iter = match end {
                    Some(end) => tree.range(start.to_vec()..end.to_vec()),
                    None => tree.range(start.to_vec()..),
                };
                Ok(Entries::sled(iter))
            }
            TreeBackend::Postgres(pg) => Ok(Entries::all(pg.range(&self.name, start, end)?)),
        }
    }

    pub fn first(&self) -> Result<Option<(Bytes, Bytes)>> {
        self.iter()?.next().transpose()
    }

    pub fn last(&self) -> Result<Option<(Bytes, Bytes)>> {
        match &self.backend {
            TreeBackend::Sled(tree) => Ok(tree.last()?.map(|(key, value)| (key.to_vec(), value.to_vec()))),
            TreeBackend::Postgres(pg) => pg.last(&self.name),
        }
    }

    pub fn len(&self) -> Result<usize> {
        match &self.backend {
            TreeBackend::Sled(tree) => Ok(tree.len()),
            TreeBackend::Postgres(pg) => pg.len(&self.name),
        }
    }

    pub fn is_empty(&self) -> Result<bool> {
        match &self.backend {
            TreeBackend::Sled(tree) => Ok(tree.is_empty()),
            TreeBackend::Postgres(pg) => Ok(pg.first_key(&self.name)?.is_none()),
        }
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<()> {
        match &self.backend {
            TreeBackend::Sled(tree) => Ok(tree.clear()?),
            TreeBackend::Postgres(pg) => pg.clear(&self.name),
        }
    }

    /// Makes this tree's acknowledged writes durable now.
    pub fn flush(&self) -> Result<()> {
        match &self.backend {
            TreeBackend::Sled(tree) => {
                tree.flush()?;
                Ok(())
            }
            TreeBackend::Postgres(_) => Ok(()),
        }
    }
}

/// The end of the key range that starts with `prefix` (`None`: no end).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Entries read from a tree, in key order (also from the end).
pub struct Entries {
    inner: Box<dyn DoubleEndedIterator<Item = Result<(Bytes, Bytes)>> + Send>,
}

impl Entries {
    fn sled(iter: sled::Iter) -> Self {
        Entries { inner: Box::new(iter.map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Error::from))) }
    }

    fn all(entries: Vec<(Bytes, Bytes)>) -> Self {
        Entries { inner: Box::new(entries.into_iter().map(Ok)) }
    }

    pub fn keys(self) -> impl DoubleEndedIterator<Item = Result<Bytes>> + Send {
        self.inner.map(|item| item.map(|(key, _)| key))
    }

    pub fn values(self) -> impl DoubleEndedIterator<Item = Result<Bytes>> + Send {
        self.inner.map(|item| item.map(|(_, value)| value))
    }
}

impl Iterator for Entries {
    type Item = Result<(Bytes, Bytes)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

impl DoubleEndedIterator for Entries {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back()
    }
}

/// A tree as a transaction sees it: its reads see the transaction's own writes.
pub enum TxTree<'a> {
    Sled(&'a sled::transaction::TransactionalTree),
    Postgres { tx: &'a pg::PgTx<'a>, name: &'a str },
}

impl TxTree<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        match self {
            TxTree::Sled(tree) => Ok(tree.get(key).map_err(sled_backend::unabortable)?.map(|value| value.to_vec())),
            TxTree::Postgres { tx, name } => tx.get(name, key.as_ref()),
        }
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        match self {
            TxTree::Sled(tree) => {
                tree.insert(key.as_ref(), value.as_ref()).map_err(sled_backend::unabortable)?;
                Ok(())
            }
            TxTree::Postgres { tx, name } => tx.insert(name, key.as_ref(), value.as_ref()),
        }
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        match self {
            TxTree::Sled(tree) => {
                Ok(tree.remove(key.as_ref()).map_err(sled_backend::unabortable)?.map(|value| value.to_vec()))
            }
            TxTree::Postgres { tx, name } => tx.remove(name, key.as_ref()),
        }
    }

    /// A number never handed out before by this database (monotonic).
    pub fn generate_id(&self) -> Result<u64> {
        match self {
            TxTree::Sled(tree) => Ok(tree.generate_id()?),
            TxTree::Postgres { tx, .. } => tx.generate_id(),
        }
    }

    /// Makes the commit durable before the transaction returns (PostgreSQL commits always are).
    pub fn flush_on_commit(&self) {
        if let TxTree::Sled(tree) = self {
            tree.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_are_the_next_key_range() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
