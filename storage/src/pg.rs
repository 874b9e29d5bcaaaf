//! The PostgreSQL backend.
//!
//! The project's stores are synchronous (they were written for sled, and the dialogue runs on
//! blocking threads), sqlx is asynchronous: the backend owns a small Tokio runtime that drives
//! the pool's connections, and each call waits for its statement on the calling thread (from
//! any thread, inside another runtime or not).
//!
//! Layout (migration 1): `switchboard_kv (tree, key, value)` with the primary key on
//! `(tree, key)`; `bytea` compares byte by byte, so prefix and range scans come back in sled's
//! order. `switchboard_ids` hands out ids. Migrations are embedded and applied at start (and
//! by `switchboard migrate`) under sqlx's advisory lock, so instances starting together
//! migrate once.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres, Row};
use tokio::sync::broadcast;

use super::{Bytes, Error, Result, TransactionError, Tree, TreeBackend, TxError, TxTree, reads};

/// The embedded migrations, in order. Append; never edit one that has shipped.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "key-value trees and ids", include_str!("../migrations/0001_kv.sql"))];

/// The newest schema version this build knows.
pub const MIGRATIONS_LATEST: i64 = 1;

/// The one channel notifications travel on; the topic is the payload's first line.
const CHANNEL: &str = "switchboard";

/// How a transaction that keeps conflicting gives up.
const MAX_ATTEMPTS: u32 = 200;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database` (never logged).
    pub url: String,
    /// Connections for statements and transactions; as many again hold conversation locks.
    pub pool_size: u32,
    /// How long a statement waits for a free connection, and a lock for its holder.
    pub acquire_timeout: Duration,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings { url: String::new(), pool_size: 16, acquire_timeout: Duration::from_secs(10) }
    }
}

pub(crate) struct Pg {
    runtime: Option<tokio::runtime::Runtime>,
    pool: PgPool,
    lock_pool: PgPool,
    round_trips: Arc<AtomicU64>,
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>,
    listening: Mutex<bool>,
    /// Notifications waiting to be sent by [`send_notices`].
    notices: tokio::sync::mpsc::UnboundedSender<String>,
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Maps a sqlx failure: lost or unreachable database is `Unavailable` (503, retry), a
/// serialization failure or deadlock is a `Conflict` (the transaction runs again).
fn map_error(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => Error::Unavailable(error.to_string()),
        sqlx::Error::Database(database) => match database.code().as_deref() {
            Some("40001" | "40P01" | "25P02") => Error::Conflict,
            Some(code) if code.starts_with("08") || code.starts_with("57P") || code == "53300" => {
                Error::Unavailable(database.message().to_string())
            }
            Some("55P03") => Error::Unavailable(format!("waited too long for a lock: {}", database.message())),
            _ => Error::Postgres(database.message().to_string()),
        },
        _ => Error::Postgres(error.to_string()),
    }
}

/// A connection idle for longer than this is checked (one round trip) before it is used again.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Pool options. sqlx checks every connection taken from the pool with a round trip of its own
/// by default, which doubles the round trips of a busy instance; here only connections idle
/// for [`CHECK_IDLE_AFTER`] are checked (those a lost database may have broken while nothing
/// used them), and one broken while in use fails its statement, which is reported unavailable.
fn pool_options(size: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Pg {
    pub(crate) fn connect(settings: &PostgresSettings) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("storage-postgres")
            .enable_all()
            .build()
            .map_err(|error| Error::Postgres(format!("starting the database runtime: {error}")))?;
        let not_postgres = || Error::Postgres("storage.postgres.url is not a postgres:// address".into());
        let url = settings.url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(not_postgres());
        }
        let options: PgConnectOptions = url.parse().map_err(|_| not_postgres())?;
        let options = options.application_name("switchboard");
        let pool_size = settings.pool_size.max(2);
        let timeout = settings.acquire_timeout;
        let (pool, lock_pool) = {
            let _entered = runtime.enter();
            let pool = pool_options(pool_size, timeout).connect_lazy_with(options.clone());
            let lock_timeout = format!("SET lock_timeout = '{}ms'", timeout.as_millis().max(1));
            let lock_pool = pool_options(pool_size, timeout)
                .after_connect(move |conn, _| {
                    let statement = lock_timeout.clone();
                    Box::pin(async move {
                        conn.execute(statement.as_str()).await?;
                        Ok(())
                    })
                })
                .connect_lazy_with(options);
            (pool, lock_pool)
        };
        let round_trips = Arc::new(AtomicU64::new(0));
        let (notices, queued) = tokio::sync::mpsc::unbounded_channel();
        runtime.spawn(send_notices(pool.clone(), queued, round_trips.clone()));
        let pg = Pg {
            runtime: Some(runtime),
            pool,
            lock_pool,
            round_trips,
            topics: Arc::default(),
            listening: Mutex::new(false),
            notices,
        };
        // Fail at start, clearly, when the database cannot be reached.
        pg.run(async { pg.pool.acquire().await.map(drop) }).map_err(map_error)?;
        Ok(pg)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives as long as the backend")
    }

    /// Runs `future` to completion on this thread, with the backend's runtime driving its I/O.
    ///
    /// The caller's thread may be a worker of another runtime, in the middle of one of its tasks:
    /// the future runs without that task's cooperative budget (an exhausted budget would hand
    /// the wake-up to a scheduler that is not running, as this thread is waiting here), and
    /// the wait is re-checked every few milliseconds, so a wake-up deferred that way (sqlx
    /// yields in a rare race of its pool) only delays the statement.
    fn run<F: Future>(&self, future: F) -> F::Output {
        let _entered = self.runtime().enter();
        let mut future = pin!(tokio::task::unconstrained(future));
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut context = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    fn counted(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    pub(crate) fn ping(&self) -> bool {
        self.counted();
        self.run(async { sqlx::query("SELECT 1").execute(&self.pool).await }).is_ok()
    }

    fn migrator() -> Migrator {
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, Cow::Borrowed(*sql), false)
            })
            .collect();
        Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
    }

    pub(crate) fn schema_version(&self) -> Result<i64> {
        self.counted();
        self.run(async {
            let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(map_error)?;
            if !exists {
                return Ok(0);
            }
            let version: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .map_err(map_error)?;
            Ok(version.unwrap_or(0))
        })
    }

    pub(crate) fn migrate(&self) -> Result<i64> {
        let found = self.schema_version()?;
        if found > MIGRATIONS_LATEST {
            return Err(Error::SchemaTooNew { found, supported: MIGRATIONS_LATEST });
        }
        self.run(async { Self::migrator().run(&self.pool).await }).map_err(|error| match error {
            sqlx::migrate::MigrateError::Execute(error) => map_error(error),
            sqlx::migrate::MigrateError::VersionMissing(found) => {
                Error::SchemaTooNew { found, supported: MIGRATIONS_LATEST }
            }
            other => Error::Migration(other.to_string()),
        })?;
        self.schema_version()
    }

    /// This backend's identity in the thread's read cache ([`crate::reads`]).
    fn identity(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    pub(crate) fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Bytes>> {
        if let Some(value) = reads::cached(self.identity(), tree, key) {
            return Ok(value);
        }
        self.counted();
        let value = self
            .run(
                sqlx::query_scalar("SELECT value FROM switchboard_kv WHERE tree = $1 AND key = $2")
                    .bind(tree)
                    .bind(key)
                    .fetch_optional(&self.pool),
            )
            .map_err(map_error)?;
        reads::remember(self.identity(), tree, key, &value);
        Ok(value)
    }

    pub(crate) fn insert(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        reads::forget(self.identity(), tree, key);
        self.counted();
        self.run(sqlx::query(UPSERT).bind(tree).bind(key).bind(value).execute(&self.pool)).map_err(map_error)?;
        Ok(())
    }

    pub(crate) fn remove(&self, tree: &str, key: &[u8]) -> Result<Option<Bytes>> {
        reads::forget(self.identity(), tree, key);
        self.counted();
        self.run(sqlx::query_scalar(DELETE).bind(tree).bind(key).fetch_optional(&self.pool)).map_err(map_error)
    }

    pub(crate) fn compare_and_swap(
        &self,
        tree: &str,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Bytes>>> {
        reads::forget(self.identity(), tree, key);
        self.counted();
        let swapped = self.run(async {
            let done = match (old, new) {
                (None, Some(new)) => sqlx::query(
                    "INSERT INTO switchboard_kv (tree, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(tree)
                .bind(key)
                .bind(new)
                .execute(&self.pool)
                .await?
                .rows_affected(),
                (Some(old), Some(new)) => {
                    sqlx::query("UPDATE switchboard_kv SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3")
                        .bind(tree)
                        .bind(key)
                        .bind(old)
                        .bind(new)
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                }
                (Some(old), None) => {
                    sqlx::query("DELETE FROM switchboard_kv WHERE tree = $1 AND key = $2 AND value = $3")
                        .bind(tree)
                        .bind(key)
                        .bind(old)
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                }
                (None, None) => 0,
            };
            Ok::<_, sqlx::Error>(done == 1)
        });
        if swapped.map_err(map_error)? {
            return Ok(Ok(()));
        }
        let current = self.get(tree, key)?;
        if old.is_none() && new.is_none() && current.is_none() {
            return Ok(Ok(()));
        }
        Ok(Err(current))
    }

    pub(crate) fn range(&self, tree: &str, start: &[u8], end: Option<&[u8]>) -> Result<Vec<(Bytes, Bytes)>> {
        self.counted();
        let rows =
            self.run(async {
                match end {
                    Some(end) => sqlx::query(
                        "SELECT key, value FROM switchboard_kv WHERE tree = $1 AND key >= $2 AND key < $3 ORDER BY key",
                    )
                    .bind(tree)
                    .bind(start)
                    .bind(end)
                    .fetch_all(&self.pool)
                    .await,
                    None => {
                        sqlx::query("SELECT key, value FROM switchboard_kv WHERE tree = $1 AND key >= $2 ORDER BY key")
                            .bind(tree)
                            .bind(start)
                            .fetch_all(&self.pool)
                            .await
                    }
                }
            });
        let rows = rows.map_err(map_error)?;
        rows.into_iter()
            .map(|row| Ok((row.try_get("key").map_err(map_error)?, row.try_get("value").map_err(map_error)?)))
            .collect()
    }

    pub(crate) fn last(&self, tree: &str) -> Result<Option<(Bytes, Bytes)>> {
        self.counted();
        let row = self
            .run(
                sqlx::query("SELECT key, value FROM switchboard_kv WHERE tree = $1 ORDER BY key DESC LIMIT 1")
                    .bind(tree)
                    .fetch_optional(&self.pool),
            )
            .map_err(map_error)?;
        row.map(|row| Ok((row.try_get("key").map_err(map_error)?, row.try_get("value").map_err(map_error)?)))
            .transpose()
    }

    pub(crate) fn first_key(&self, tree: &str) -> Result<Option<Bytes>> {
        self.counted();
        self.run(
            sqlx::query_scalar("SELECT key FROM switchboard_kv WHERE tree = $1 ORDER BY key LIMIT 1")
                .bind(tree)
                .fetch_optional(&self.pool),
        )
        .map_err(map_error)
    }

    pub(crate) fn len(&self, tree: &str) -> Result<usize> {
        self.counted();
        let count: i64 = self
            .run(
                sqlx::query_scalar("SELECT count(*) FROM switchboard_kv WHERE tree = $1")
                    .bind(tree)
                    .fetch_one(&self.pool),
            )
            .map_err(map_error)?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    pub(crate) fn clear(&self, tree: &str) -> Result<()> {
        reads::forget_all(self.identity(), Some(tree));
        self.counted();
        self.run(sqlx::query("DELETE FROM switchboard_kv WHERE tree = $1").bind(tree).execute(&self.pool))
            .map_err(map_error)?;
        Ok(())
    }

    pub(crate) fn generate_id(&self) -> Result<u64> {
        self.counted();
        let id: i64 = self
            .run(sqlx::query_scalar("SELECT nextval('switchboard_ids')").fetch_one(&self.pool))
            .map_err(map_error)?;
        Ok(id as u64)
    }

    /// Runs `f` in a `SERIALIZABLE` transaction on one connection; a serialization failure or
    /// deadlock (here or at commit) runs it again, after a short random pause.
    pub(crate) fn transaction<T, E>(
        &self,
        trees: &[&Tree],
        f: impl Fn(&[TxTree<'_>]) -> Result<T, TxError<E>>,
    ) -> Result<T, TransactionError<E>> {
        // Whatever it writes, the thread's cached reads of this database are not trusted after.
        reads::forget_all(self.identity(), None);
        let result = self.run_transaction(trees, f);
        reads::forget_all(self.identity(), None);
        result
    }

    fn run_transaction<T, E>(
        &self,
        trees: &[&Tree],
        f: impl Fn(&[TxTree<'_>]) -> Result<T, TxError<E>>,
    ) -> Result<T, TransactionError<E>> {
        for tree in trees {
            if !matches!(tree.backend, TreeBackend::Postgres(_)) {
                return Err(TransactionError::Storage(Error::Postgres(
                    "a sled tree in a PostgreSQL transaction".into(),
                )));
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let connection =
                self.run(self.pool.acquire()).map_err(|error| TransactionError::Storage(map_error(error)))?;
            let tx = PgTx {
                pg: self,
                connection: RefCell::new(Some(connection)),
                writes: RefCell::default(),
                open: std::cell::Cell::new(false),
            };
            let views: Vec<TxTree<'_>> =
                trees.iter().map(|tree| TxTree::Postgres { tx: &tx, name: tree.name() }).collect();
            let outcome = f(&views);
            drop(views);
            let outcome: Result<(), TxError<E>> = match outcome {
                Ok(value) => match tx.commit() {
                    Ok(()) => return Ok(value),
                    Err(error) => {
                        tx.rollback();
                        Err(TxError::Storage(error))
                    }
                },
                Err(error) => {
                    tx.rollback();
                    Err(error)
                }
            };
            drop(tx);
            match outcome {
                Err(TxError::Storage(Error::Conflict)) if attempt < MAX_ATTEMPTS => {
                    let pause = 1 + rand_millis(attempt.min(20) * 2);
                    std::thread::sleep(Duration::from_millis(pause));
                }
                Err(TxError::Storage(Error::Conflict)) => {
                    return Err(TransactionError::Storage(Error::Postgres(format!(
                        "a transaction conflicted {MAX_ATTEMPTS} times in a row"
                    ))));
                }
                Err(TxError::Storage(error)) => return Err(TransactionError::Storage(error)),
                Err(TxError::Abort(error)) => return Err(TransactionError::Abort(error)),
                Ok(()) => unreachable!("a committed transaction returned above"),
            }
        }
    }

    /// Takes the advisory lock of `key` on a connection of its own, held until the guard drops
    /// (or the connection dies with its instance).
    pub(crate) fn advisory_lock(self: &Arc<Self>, key: &str) -> Result<AdvisoryLock> {
        let id = lock_id(key);
        self.counted();
        let connection = self.run(async {
            let mut connection = self.lock_pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock($1)").bind(id).execute(&mut *connection).await?;
            Ok::<_, sqlx::Error>(connection)
        });
        Ok(AdvisoryLock { pg: self.clone(), id, connection: Some(connection.map_err(map_error)?) })
    }

    /// Queues a notification; [`send_notices`] sends it (with any others queued meanwhile)
    /// without the caller waiting for the database.
    pub(crate) fn publish(&self, topic: &str, payload: &str) -> Result<()> {
        self.notices
            .send(format!("{topic}\n{payload}"))
            .map_err(|_| Error::Unavailable("the notification sender stopped".into()))
    }

    pub(crate) fn subscribe(&self, topic: &str) -> Result<broadcast::Receiver<String>> {
        let receiver = {
            let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
            topics.entry(topic.to_string()).or_insert_with(|| broadcast::channel(1024).0).subscribe()
        };
        let mut listening = self.listening.lock().unwrap_or_else(PoisonError::into_inner);
        if !*listening {
            let mut listener = self
                .run(async {
                    let mut listener = PgListener::connect_with(&self.pool).await?;
                    listener.listen(CHANNEL).await?;
                    Ok::<_, sqlx::Error>(listener)
                })
                .map_err(map_error)?;
            let topics = self.topics.clone();
            self.runtime().spawn(async move {
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            let Some((topic, payload)) = notification.payload().split_once('\n') else { continue };
                            let sender = topics.lock().unwrap_or_else(PoisonError::into_inner).get(topic).cloned();
                            if let Some(sender) = sender {
                                let _ = sender.send(payload.to_string());
                            }
                        }
                        Ok(None) => {
                            // The connection was lost (the listener reconnects): what was sent
                            // meanwhile is gone, so every subscriber hears an empty payload,
                            // meaning "anything may have changed".
                            tracing::warn!("the notification connection was lost; reconnecting");
                            let senders: Vec<_> =
                                topics.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
                            for sender in senders {
                                let _ = sender.send(String::new());
                            }
                        }
                        Err(error) => {
                            tracing::warn!(error = %map_error(error), "listening for other instances' notifications; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
            *listening = true;
        }
        Ok(receiver)
    }
}

/// Sends queued notifications in order, those queued together in one statement (the same one
/// twice in a batch once). A failure is logged: the change is stored, and other instances' live
/// views catch up from the log at the next notification.
async fn send_notices(
    pool: PgPool,
    mut queued: tokio::sync::mpsc::UnboundedReceiver<String>,
    round_trips: Arc<AtomicU64>,
) {
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < 1000
            && let Ok(next) = queued.try_recv()
        {
            if !batch.contains(&next) {
                batch.push(next);
            }
        }
        round_trips.fetch_add(1, Ordering::Relaxed);
        let sent = sqlx::query("SELECT pg_notify($1, notice) FROM UNNEST($2::text[]) AS notice")
            .bind(CHANNEL)
            .bind(&batch)
            .execute(&pool)
            .await;
        if let Err(error) = sent {
            tracing::warn!(error = %map_error(error), n = batch.len(), "telling the other instances about changes failed");
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            {
                let _entered = runtime.enter();
                self.pool.close_event();
                self.lock_pool.close_event();
            }
            runtime.shutdown_background();
        }
    }
}

const UPSERT: &str = "INSERT INTO switchboard_kv (tree, key, value) VALUES ($1, $2, $3) \
                      ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM switchboard_kv WHERE tree = $1 AND key = $2 RETURNING value";
/// A transaction's writes as statements (empty without writes), each ended by `;`: the values
/// are literals, so that they go with the `COMMIT` in one round trip.
fn write_statements(writes: std::collections::BTreeMap<(String, Bytes), Option<Bytes>>) -> String {
    let (mut upserts, mut removals) = (Vec::new(), Vec::new());
    for ((tree, key), value) in &writes {
        match value {
            Some(value) => {
                upserts.push(format!("({}, {}, {})", text_literal(tree), bytea_literal(key), bytea_literal(value)))
            }
            None => removals.push(format!("({}, {})", text_literal(tree), bytea_literal(key))),
        }
    }
    let mut statements = String::new();
    if !upserts.is_empty() {
        statements.push_str("INSERT INTO switchboard_kv (tree, key, value) VALUES ");
        statements.push_str(&upserts.join(", "));
        statements.push_str(" ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value;");
    }
    if !removals.is_empty() {
        statements.push_str("DELETE FROM switchboard_kv WHERE (tree, key) IN (");
        statements.push_str(&removals.join(", "));
        statements.push_str(");");
    }
    statements
}

/// A text literal. Quotes are doubled; text with a backslash (which the server's
/// `standard_conforming_strings` could make special) goes as its UTF-8 bytes.
fn text_literal(text: &str) -> String {
    if text.contains('\\') {
        return format!("convert_from({}, 'UTF8')", bytea_literal(text.as_bytes()));
    }
    format!("'{}'", text.replace('\'', "''"))
}

/// A bytea literal: its bytes in hex, decoded by the server (no backslash, whatever its
/// settings).
fn bytea_literal(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut literal = String::with_capacity(bytes.len() * 2 + 20);
    literal.push_str("decode('");
    for byte in bytes {
        literal.push(char::from(HEX[usize::from(byte >> 4)]));
        literal.push(char::from(HEX[usize::from(byte & 15)]));
    }
    literal.push_str("', 'hex')");
    literal
}

/// A pseudo-random pause below `below` milliseconds (spreads retries of conflicting writers).
fn rand_millis(below: u32) -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    u64::from(nanos % below.max(1))
}

/// A key's advisory lock number: FNV-1a, stable across builds and instances.
fn lock_id(key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// An open PostgreSQL transaction (see [`Pg::transaction`]).
pub struct PgTx<'a> {
    pg: &'a Pg,
    connection: RefCell<Option<PoolConnection<Postgres>>>,
    /// The transaction's writes (`None`: removed), read back by its own reads and sent with the
    /// `COMMIT`.
    writes: RefCell<std::collections::BTreeMap<(String, Bytes), Option<Bytes>>>,
    /// From the `BEGIN` sent to its `COMMIT` or `ROLLBACK`: a connection dropped then (the
    /// closure panicked) is closed, never handed to the next user mid-transaction.
    open: std::cell::Cell<bool>,
}

/// Starts a transaction; sent with the transaction's first statement, not on its own.
const BEGIN: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE;";

impl PgTx<'_> {
    /// Runs one statement of the transaction (after its `BEGIN`, sent first if it was not).
    fn with<T>(
        &self,
        statement: impl AsyncFnOnce(&mut PoolConnection<Postgres>) -> Result<T, sqlx::Error>,
    ) -> Result<T> {
        if !self.open.get() {
            self.execute(BEGIN)?;
        }
        self.send(statement)
    }

    /// Sends one round trip on the transaction's connection.
    fn send<T>(
        &self,
        statement: impl AsyncFnOnce(&mut PoolConnection<Postgres>) -> Result<T, sqlx::Error>,
    ) -> Result<T> {
        self.pg.counted();
        let mut slot = self.connection.borrow_mut();
        let connection =
            slot.as_mut().ok_or_else(|| Error::Unavailable("the transaction's connection was lost".into()))?;
        self.pg.run(statement(connection)).map_err(map_error)
    }

    /// Runs statements given as text (the simple protocol: several may go in one round trip);
    /// one that contains the `BEGIN` opens the transaction.
    fn execute(&self, statements: &str) -> Result<()> {
        if statements.starts_with(BEGIN) {
            self.open.set(true);
        }
        self.send(async |connection| sqlx::raw_sql(statements).execute(&mut **connection).await.map(drop))
    }

    /// Sends the writes and the `COMMIT` in one round trip (with the `BEGIN` when nothing was
    /// read: a transaction that only writes is one round trip; none when it did nothing).
    fn commit(&self) -> Result<()> {
        let writes = write_statements(std::mem::take(&mut *self.writes.borrow_mut()));
        let statements = match (self.open.get(), writes.is_empty()) {
            (false, true) => return Ok(()),
            (false, false) => format!("{BEGIN}{writes}COMMIT"),
            (true, _) => format!("{writes}COMMIT"),
        };
        self.execute(&statements)?;
        self.open.set(false);
        Ok(())
    }

    /// Ends a failed transaction; a connection that cannot roll back is closed, not reused.
    fn rollback(&self) {
        if self.open.get() && self.execute("ROLLBACK").is_err() {
            self.discard();
        }
        self.open.set(false);
    }

    /// Closes the connection rather than returning it to the pool.
    fn discard(&self) {
        if let Some(mut connection) = self.connection.borrow_mut().take() {
            connection.close_on_drop();
            let _entered = self.pg.runtime().enter();
            drop(connection);
        }
    }

    pub(crate) fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Bytes>> {
        if let Some(written) = self.writes.borrow().get(&(tree.to_string(), key.to_vec())) {
            return Ok(written.clone());
        }
        if !self.open.get() {
            // The transaction's first statement carries its BEGIN (as text, in one round trip).
            let statements = format!(
                "{BEGIN}SELECT value FROM switchboard_kv WHERE tree = {} AND key = {}",
                text_literal(tree),
                bytea_literal(key)
            );
            self.open.set(true);
            return self.send(async |connection| {
                // (`RawSql::fetch_optional` is `fetch_one` in sqlx 0.8: it fails on no row.)
                let rows = sqlx::raw_sql(&statements).fetch_all(&mut **connection).await?;
                rows.first().map(|row| sqlx::Row::try_get::<Vec<u8>, _>(row, 0)).transpose()
            });
        }
        self.send(async |connection| {
            sqlx::query_scalar("SELECT value FROM switchboard_kv WHERE tree = $1 AND key = $2")
                .bind(tree)
                .bind(key)
                .fetch_optional(&mut **connection)
                .await
        })
    }

    pub(crate) fn insert(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.writes.borrow_mut().insert((tree.to_string(), key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    pub(crate) fn remove(&self, tree: &str, key: &[u8]) -> Result<Option<Bytes>> {
        let old = self.get(tree, key)?;
        self.writes.borrow_mut().insert((tree.to_string(), key.to_vec()), None);
        Ok(old)
    }

    pub(crate) fn generate_id(&self) -> Result<u64> {
        let id: i64 = self.with(async |connection| {
            sqlx::query_scalar("SELECT nextval('switchboard_ids')").fetch_one(&mut **connection).await
        })?;
        Ok(id as u64)
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if let Some(mut connection) = self.connection.get_mut().take() {
            if self.open.get() {
                connection.close_on_drop();
            }
            let _entered = self.pg.runtime().enter();
            drop(connection);
        }
    }
}

/// An advisory lock held on its own connection.
pub struct AdvisoryLock {
    pg: Arc<Pg>,
    id: i64,
    connection: Option<PoolConnection<Postgres>>,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let Some(mut connection) = self.connection.take() else { return };
        self.pg.counted();
        let id = self.id;
        let unlocked = self
            .pg
            .run(async { sqlx::query("SELECT pg_advisory_unlock($1)").bind(id).execute(&mut *connection).await });
        if unlocked.is_err() {
            // The session ends with the connection, and its locks with it.
            connection.close_on_drop();
        }
        let _entered = self.pg.runtime().enter();
        drop(connection);
    }
}

/// Creates database `name` through the server at `url` (for tests: one fresh database each).
pub(crate) fn create_database(url: &str, name: &str) -> Result<()> {
    let pg = Pg::connect(&PostgresSettings { url: url.to_string(), pool_size: 2, ..PostgresSettings::default() })?;
    let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', ""));
    pg.run(async { pg.pool.execute(statement.as_str()).await }).map_err(map_error)?;
    Ok(())
}

/// Runs one statement on the database at `url` (tests set up states no build writes).
pub(crate) fn execute(url: &str, statement: &str) -> Result<()> {
    let pg = Pg::connect(&PostgresSettings { url: url.to_string(), pool_size: 2, ..PostgresSettings::default() })?;
    pg.run(async { pg.pool.execute(statement).await }).map_err(map_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_are_stable_and_spread() {
        assert_eq!(lock_id("conversation"), lock_id("conversation"));
        assert_ne!(lock_id("a"), lock_id("b"));
        // FNV-1a of the empty string is its offset basis.
        assert_eq!(lock_id("") as u64, 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn literals_carry_any_bytes_and_quotes() {
        assert_eq!(text_literal("o'brien"), "'o''brien'");
        assert_eq!(text_literal("a\\b"), "convert_from(decode('615c62', 'hex'), 'UTF8')");
        assert_eq!(bytea_literal(&[0, 0xff, b'\'']), "decode('00ff27', 'hex')");
        assert_eq!(bytea_literal(&[]), "decode('', 'hex')");
    }

    #[test]
    fn writes_become_one_upsert_and_one_delete() {
        let mut writes = std::collections::BTreeMap::new();
        assert_eq!(write_statements(writes.clone()), "");
        writes.insert(("t".to_string(), b"k1".to_vec()), Some(b"v".to_vec()));
        writes.insert(("t".to_string(), b"k2".to_vec()), None);
        writes.insert(("u".to_string(), b"k".to_vec()), Some(Vec::new()));
        assert_eq!(
            write_statements(writes),
            "INSERT INTO switchboard_kv (tree, key, value) VALUES ('t', decode('6b31', 'hex'), decode('76', 'hex')), \
             ('u', decode('6b', 'hex'), decode('', 'hex')) ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value;\
             DELETE FROM switchboard_kv WHERE (tree, key) IN (('t', decode('6b32', 'hex')));"
        );
    }
}
