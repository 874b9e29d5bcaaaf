//! The sled backend: trees are sled trees, transactions sled's optimistic transactions, and
//! notifications stay in this process (one process owns a sled directory).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError as SledTxError, UnabortableTransactionError};
use tokio::sync::broadcast;

use super::{Error, TransactionError, Tree, TreeBackend, TxError, TxTree};

#[derive(Clone)]
pub(crate) struct SledStore {
    db: sled::Db,
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>,
}

impl SledStore {
    pub(crate) fn new(db: sled::Db) -> Self {
        SledStore { db, topics: Arc::default() }
    }

    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    pub(crate) fn tree(&self, name: &str) -> Result<sled::Tree, Error> {
        Ok(self.db.open_tree(name)?)
    }

    fn sender(&self, topic: &str) -> broadcast::Sender<String> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.entry(topic.to_string()).or_insert_with(|| broadcast::channel(1024).0).clone()
    }

    pub(crate) fn publish(&self, topic: &str, payload: &str) {
        let _ = self.sender(topic).send(payload.to_string());
    }

    pub(crate) fn subscribe(&self, topic: &str) -> broadcast::Receiver<String> {
        self.sender(topic).subscribe()
    }
}

/// A sled error inside a transaction, as this crate's error (a conflict retries).
pub(crate) fn unabortable(error: UnabortableTransactionError) -> Error {
    match error {
        UnabortableTransactionError::Conflict => Error::Conflict,
        UnabortableTransactionError::Storage(error) => Error::Sled(error),
    }
}

/// Why a closure stopped, carried through sled's abort.
enum Stop<E> {
    Abort(E),
    Storage(Error),
}

pub(crate) fn transaction<T, E>(
    trees: &[&Tree],
    f: impl Fn(&[TxTree<'_>]) -> Result<T, TxError<E>>,
) -> Result<T, TransactionError<E>> {
    let mut sled_trees = Vec::with_capacity(trees.len());
    for tree in trees {
        match &tree.backend {
            TreeBackend::Sled(tree) => sled_trees.push(tree.clone()),
            TreeBackend::Postgres(_) => {
                return Err(TransactionError::Storage(Error::Postgres(
                    "a PostgreSQL tree in a sled transaction".into(),
                )));
            }
        }
    }
    let result = Transactional::<Stop<E>>::transaction(sled_trees.as_slice(), |views| {
        let views: Vec<TxTree<'_>> = views.iter().map(TxTree::Sled).collect();
        f(&views).map_err(|error| match error {
            TxError::Abort(error) => ConflictableTransactionError::Abort(Stop::Abort(error)),
            TxError::Storage(Error::Conflict) => ConflictableTransactionError::Conflict,
            TxError::Storage(Error::Sled(error)) => ConflictableTransactionError::Storage(error),
            TxError::Storage(other) => ConflictableTransactionError::Abort(Stop::Storage(other)),
        })
    });
    result.map_err(|error| match error {
        SledTxError::Abort(Stop::Abort(error)) => TransactionError::Abort(error),
        SledTxError::Abort(Stop::Storage(error)) => TransactionError::Storage(error),
        SledTxError::Storage(error) => TransactionError::Storage(Error::Sled(error)),
    })
}
