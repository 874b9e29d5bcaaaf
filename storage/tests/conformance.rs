//! One suite, both backends: every test runs on a temporary sled store and on a fresh
//! PostgreSQL database (when `TEST_POSTGRES_URL` names a server; CI starts one).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use storage::{Backend, Error, Store, TransactionError, TxError, testing};

fn each(test: impl Fn(&Store)) {
    for store in testing::every_backend() {
        eprintln!("backend: {}", store.backend().as_str());
        test(&store);
    }
}

fn keys(entries: storage::Entries) -> Vec<Vec<u8>> {
    entries.keys().collect::<Result<_, _>>().unwrap()
}

#[test]
fn reads_see_writes_and_trees_are_separate() {
    each(|store| {
        let a = store.tree("a").unwrap();
        let b = store.tree("b").unwrap();
        assert_eq!(a.get(b"k").unwrap(), None);
        assert!(a.is_empty().unwrap());
        a.insert(b"k", b"one").unwrap();
        a.insert(b"k", b"two").unwrap();
        assert_eq!(a.get(b"k").unwrap().as_deref(), Some(&b"two"[..]));
        assert!(a.contains_key(b"k").unwrap());
        assert_eq!(b.get(b"k").unwrap(), None, "another tree does not see it");
        assert_eq!(a.len().unwrap(), 1);
        assert_eq!(a.remove(b"k").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(a.remove(b"k").unwrap(), None);
        assert!(a.is_empty().unwrap());
        // Empty keys and values, binary bytes and a large value round-trip.
        a.insert(b"", b"").unwrap();
        assert_eq!(a.get(b"").unwrap(), Some(Vec::new()));
        let big = vec![0xa5u8; 1 << 20];
        a.insert([0u8, 0xff, 0], &big).unwrap();
        assert_eq!(a.get([0u8, 0xff, 0]).unwrap(), Some(big));
        a.clear().unwrap();
        assert!(a.is_empty().unwrap());
        assert_eq!(a.first().unwrap(), None);
        assert_eq!(a.last().unwrap(), None);
    });
}

#[test]
fn scans_come_back_in_byte_order() {
    each(|store| {
        let tree = store.tree("order").unwrap();
        let inserted: [&[u8]; 8] = [b"b", b"a\xff", b"a", b"a\x00", b"ab", b"\xff", b"\x00", b"a\x00\x01"];
        for key in inserted {
            tree.insert(key, key).unwrap();
        }
        let mut expected: Vec<Vec<u8>> = inserted.iter().map(|key| key.to_vec()).collect();
        expected.sort();
        assert_eq!(keys(tree.iter().unwrap()), expected);
        let reversed: Vec<Vec<u8>> = tree.iter().unwrap().rev().map(|item| item.unwrap().0).collect();
        assert_eq!(reversed, expected.iter().rev().cloned().collect::<Vec<_>>());
        assert_eq!(
            keys(tree.scan_prefix(b"a").unwrap()),
            vec![b"a".to_vec(), b"a\x00".to_vec(), b"a\x00\x01".to_vec(), b"ab".to_vec(), b"a\xff".to_vec()]
        );
        assert_eq!(keys(tree.scan_prefix(b"a\x00").unwrap()), vec![b"a\x00".to_vec(), b"a\x00\x01".to_vec()]);
        assert_eq!(keys(tree.scan_prefix(b"\xff").unwrap()), vec![b"\xff".to_vec()]);
        assert_eq!(keys(tree.scan_prefix(b"").unwrap()).len(), 8);
        assert_eq!(keys(tree.range(b"a\x00", Some(b"ab")).unwrap()), vec![b"a\x00".to_vec(), b"a\x00\x01".to_vec()]);
        assert_eq!(keys(tree.range(b"b", None).unwrap()), vec![b"b".to_vec(), b"\xff".to_vec()]);
        assert_eq!(tree.first().unwrap().unwrap().0, b"\x00".to_vec());
        assert_eq!(tree.last().unwrap().unwrap(), (b"\xff".to_vec(), b"\xff".to_vec()));
        let values: Vec<Vec<u8>> = tree.scan_prefix(b"b").unwrap().values().map(Result::unwrap).collect();
        assert_eq!(values, vec![b"b".to_vec()]);
    });
}

#[test]
fn compare_and_swap_changes_only_what_it_expected() {
    each(|store| {
        let tree = store.tree("cas").unwrap();
        assert_eq!(tree.compare_and_swap(b"k", None, Some(b"1")).unwrap(), Ok(()));
        assert_eq!(tree.compare_and_swap(b"k", None, Some(b"2")).unwrap(), Err(Some(b"1".to_vec())));
        assert_eq!(tree.compare_and_swap(b"k", Some(b"0"), Some(b"2")).unwrap(), Err(Some(b"1".to_vec())));
        assert_eq!(tree.compare_and_swap(b"k", Some(b"1"), Some(b"2")).unwrap(), Ok(()));
        assert_eq!(tree.compare_and_swap(b"k", Some(b"1"), None).unwrap(), Err(Some(b"2".to_vec())));
        assert_eq!(tree.compare_and_swap(b"k", Some(b"2"), None).unwrap(), Ok(()));
        assert_eq!(tree.compare_and_swap(b"k", Some(b"2"), Some(b"3")).unwrap(), Err(None));
        assert_eq!(tree.get(b"k").unwrap(), None);
        assert!(tree.insert_new(b"k", b"first").unwrap());
        assert!(!tree.insert_new(b"k", b"second").unwrap());
        assert_eq!(tree.get(b"k").unwrap(), Some(b"first".to_vec()));
    });
}

#[test]
fn insert_new_lets_exactly_one_of_many_racers_win() {
    each(|store| {
        let tree = store.tree("race").unwrap();
        let wins = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for n in 0..8u8 {
                let (tree, wins) = (tree.clone(), wins.clone());
                scope.spawn(move || {
                    if tree.insert_new(b"once", [n]).unwrap() {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(wins.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn update_and_fetch_is_atomic_under_contention() {
    each(|store| {
        let tree = store.tree("counter").unwrap();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let tree = tree.clone();
                scope.spawn(move || {
                    for _ in 0..10 {
                        tree.update_and_fetch(b"n", |old| {
                            let n = old.map(|bytes| u64::from_be_bytes(bytes.try_into().unwrap())).unwrap_or(0);
                            Some((n + 1).to_be_bytes().to_vec())
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(tree.get(b"n").unwrap(), Some(40u64.to_be_bytes().to_vec()));
        assert_eq!(tree.update_and_fetch(b"n", |_| None).unwrap(), None);
        assert_eq!(tree.get(b"n").unwrap(), None);
    });
}

#[derive(Debug, PartialEq)]
struct Refused;

#[test]
fn transactions_commit_everything_or_nothing() {
    each(|store| {
        let bills = store.tree("bills").unwrap();
        let audit = store.tree("audit").unwrap();
        bills.insert(b"B1", b"unpaid").unwrap();
        // An abort after writes leaves no trace of them.
        let result = store.transaction(&[&bills, &audit], |trees| {
            trees[0].insert(b"B1", b"paid")?;
            trees[1].insert(b"1", b"paid B1")?;
            assert_eq!(trees[0].get(b"B1")?, Some(b"paid".to_vec()), "a transaction reads its own writes");
            Err::<(), _>(TxError::Abort(Refused))
        });
        assert!(matches!(result, Err(TransactionError::Abort(Refused))));
        assert_eq!(bills.get(b"B1").unwrap(), Some(b"unpaid".to_vec()));
        assert!(audit.is_empty().unwrap());
        // A commit shows every write.
        let id = store
            .transaction(&[&bills, &audit], |trees| {
                trees[0].insert(b"B1", b"paid")?;
                let id = trees[1].generate_id()?;
                trees[1].insert(id.to_be_bytes(), b"paid B1")?;
                trees[0].remove(b"B0")?;
                trees[1].flush_on_commit();
                Ok::<_, TxError<Refused>>(id)
            })
            .unwrap();
        assert_eq!(bills.get(b"B1").unwrap(), Some(b"paid".to_vec()));
        assert_eq!(audit.get(id.to_be_bytes()).unwrap(), Some(b"paid B1".to_vec()));
    });
}

/// PostgreSQL round trips of transactions: the `BEGIN` goes with the first read and the
/// writes with the `COMMIT` (a transaction that only writes is one round trip, an empty one
/// none), and a key written in a transaction with a quote, a backslash or any byte comes back.
#[test]
fn transactions_take_few_round_trips() {
    each(|store| {
        if store.backend() != Backend::Postgres {
            return;
        }
        let a = store.tree("a\\b'c").unwrap();
        let b = store.tree("b").unwrap();
        let key: &[u8] = b"k'\\\x00\xff";
        let counted = |run: &dyn Fn()| {
            let before = store.round_trips();
            run();
            store.round_trips() - before
        };
        let write_only = counted(&|| {
            store
                .transaction(&[&a, &b], |trees| {
                    trees[0].insert(key, b"1")?;
                    trees[1].insert(b"x", b"2")?;
                    trees[1].remove(b"gone")?;
                    Ok::<_, TxError<Refused>>(())
                })
                .unwrap()
        });
        // `remove` reads the old value: the read carries the BEGIN, the writes the COMMIT.
        assert_eq!(write_only, 2);
        let blind = counted(&|| {
            store
                .transaction(&[&a], |trees| {
                    trees[0].insert(b"y", b"3")?;
                    Ok::<_, TxError<Refused>>(())
                })
                .unwrap()
        });
        assert_eq!(blind, 1, "writes only: BEGIN, writes and COMMIT in one");
        let nothing = counted(&|| store.transaction(&[&a], |_| Ok::<_, TxError<Refused>>(())).unwrap());
        assert_eq!(nothing, 0);
        let read_twice = counted(&|| {
            store
                .transaction(&[&a, &b], |trees| {
                    assert_eq!(trees[0].get(key)?, Some(b"1".to_vec()));
                    assert_eq!(trees[1].get(b"x")?, Some(b"2".to_vec()));
                    trees[1].insert(b"x", b"4")?;
                    Ok::<_, TxError<Refused>>(())
                })
                .unwrap()
        });
        assert_eq!(read_twice, 3);
        assert_eq!(a.get(key).unwrap(), Some(b"1".to_vec()));
        assert_eq!((a.get(b"y").unwrap(), b.get(b"x").unwrap()), (Some(b"3".to_vec()), Some(b"4".to_vec())));
        // A statement that fails inside the transaction rolls it back and leaves the
        // connection usable.
        let failed = store.transaction(&[&a], |trees| {
            trees[0].insert(b"z", b"5")?;
            Err::<(), _>(TxError::Abort(Refused))
        });
        assert!(matches!(failed, Err(TransactionError::Abort(Refused))));
        assert_eq!(a.get(b"z").unwrap(), None);
    });
}

/// Inside a read scope a key is read from PostgreSQL once; the thread's own writes (plain or
/// in a transaction) are never served stale; another thread's write is seen by the next scope.
#[test]
fn a_read_scope_reads_each_key_once_and_never_serves_its_own_writes_stale() {
    each(|store| {
        let tree = store.tree("scoped").unwrap();
        tree.insert(b"k", b"1").unwrap();
        let before = store.round_trips();
        {
            let _scope = storage::read_scope();
            for _ in 0..3 {
                assert_eq!(tree.get(b"k").unwrap(), Some(b"1".to_vec()));
                assert_eq!(tree.get(b"absent").unwrap(), None);
            }
            if store.backend() == Backend::Postgres {
                assert_eq!(store.round_trips() - before, 2, "each key once");
            }
            tree.insert(b"k", b"2").unwrap();
            assert_eq!(tree.get(b"k").unwrap(), Some(b"2".to_vec()));
            store
                .transaction(&[&tree], |trees| {
                    trees[0].insert(b"k", b"3")?;
                    Ok::<_, TxError<Refused>>(())
                })
                .unwrap();
            assert_eq!(tree.get(b"k").unwrap(), Some(b"3".to_vec()));
            assert!(tree.compare_and_swap(b"k", Some(b"3"), Some(b"4")).unwrap().is_ok());
            assert_eq!(tree.get(b"k").unwrap(), Some(b"4".to_vec()));
            tree.remove(b"k").unwrap();
            assert_eq!(tree.get(b"k").unwrap(), None);
            tree.update_and_fetch(b"k", |_| Some(b"5".to_vec())).unwrap();
            assert_eq!(tree.get(b"k").unwrap(), Some(b"5".to_vec()));
            // Another thread's write is not this scope's business...
            std::thread::scope(|scope| {
                scope.spawn(|| tree.insert(b"k", b"6").unwrap());
            });
        }
        // ...but the next scope's.
        let _scope = storage::read_scope();
        assert_eq!(tree.get(b"k").unwrap(), Some(b"6".to_vec()));
    });
}

#[test]
fn concurrent_read_modify_write_transactions_lose_no_update() {
    each(|store| {
        let balance = store.tree("balance").unwrap();
        let log = store.tree("log").unwrap();
        balance.insert(b"C1", 0u64.to_be_bytes()).unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4u8 {
                let (store, balance, log) = (store.clone(), balance.clone(), log.clone());
                scope.spawn(move || {
                    for n in 0..8u8 {
                        store
                            .transaction(&[&balance, &log], |trees| {
                                let old = trees[0].get(b"C1")?.unwrap();
                                let value = u64::from_be_bytes(old.as_slice().try_into().unwrap());
                                trees[0].insert(b"C1", (value + 1).to_be_bytes())?;
                                trees[1].insert([thread, n], value.to_be_bytes())?;
                                Ok::<_, TxError<Refused>>(())
                            })
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(balance.get(b"C1").unwrap(), Some(32u64.to_be_bytes().to_vec()));
        // Every transaction saw a different balance: none read a value another overwrote.
        let mut seen: Vec<Vec<u8>> = log.iter().unwrap().values().map(Result::unwrap).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 32);
    });
}

#[test]
fn generated_ids_are_unique_and_increase() {
    each(|store| {
        let ids = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    for _ in 0..20 {
                        mine.push(store.generate_id().unwrap());
                    }
                    assert!(mine.windows(2).all(|pair| pair[0] < pair[1]), "ids increase for each caller");
                    ids.lock().unwrap().extend(mine);
                });
            }
        });
        let mut ids = ids.into_inner().unwrap();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 80);
    });
}

#[test]
fn a_lock_has_one_holder_at_a_time_and_other_keys_run_alongside() {
    each(|store| {
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    let _held = store.lock("conversation-1").unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
            let _other = store.lock("conversation-2").unwrap();
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn notifications_reach_subscribers() {
    each(|store| {
        let mut receiver = store.subscribe("queue").unwrap();
        let mut other = store.subscribe("elsewhere").unwrap();
        store.publish("queue", "conversation 7 changed").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), receiver.recv()).await });
        assert_eq!(got.unwrap().unwrap(), "conversation 7 changed");
        assert!(other.try_recv().is_err(), "another topic hears nothing");
    });
}

// PostgreSQL only: what several instances on one database need.

fn two_instances() -> Option<(Store, Store)> {
    let settings = testing::fresh_database()?;
    let first = Store::postgres(&settings).unwrap();
    let second = Store::postgres(&settings).unwrap();
    Some((first, second))
}

#[test]
fn instances_share_trees_locks_and_notifications() {
    let Some((a, b)) = two_instances() else { return };
    assert_eq!(a.backend(), Backend::Postgres);
    a.tree("t").unwrap().insert(b"k", b"from a").unwrap();
    assert_eq!(b.tree("t").unwrap().get(b"k").unwrap(), Some(b"from a".to_vec()));

    // A lock held by one instance holds up the other.
    let held = a.lock("conversation-9").unwrap();
    let taken = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        let (b, taken_there) = (&b, taken.clone());
        let waiter = scope.spawn(move || {
            let _lock = b.lock("conversation-9").unwrap();
            taken_there.store(1, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(taken.load(Ordering::SeqCst), 0, "the other instance waits");
        drop(held);
        waiter.join().unwrap();
    });
    assert_eq!(taken.load(Ordering::SeqCst), 1);

    let mut heard = b.subscribe("live").unwrap();
    a.publish("live", "reply on a").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let got = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), heard.recv()).await });
    assert_eq!(got.unwrap().unwrap(), "reply on a");
}

#[test]
fn a_dead_instance_lets_go_of_its_locks() {
    let Some(settings) = testing::fresh_database() else { return };
    let (a, b) = (Store::postgres(&settings).unwrap(), Store::postgres(&settings).unwrap());
    let held = a.lock("conversation-5").unwrap();
    // The instance's connections die with it (as on kill -9): the server ends its sessions.
    testing::execute(
        &settings,
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    );
    let start = std::time::Instant::now();
    let _lock = b.lock("conversation-5").unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(held);
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    if testing::server_url().is_none() {
        return;
    }
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let settings = storage::PostgresSettings {
        url: format!("postgres://nobody:secret-password@127.0.0.1:{port}/none"),
        acquire_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let error = Store::postgres(&settings).unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert!(!error.to_string().contains("secret-password"), "the password never shows: {error}");
    let error =
        Store::postgres(&storage::PostgresSettings { url: "mysql://x".into(), ..Default::default() }).unwrap_err();
    assert!(error.to_string().contains("postgres://"), "{error}");
}

#[test]
fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let Some(settings) = testing::fresh_database() else { return };
    let fresh = Store::postgres_unmigrated(&settings).unwrap();
    assert_eq!(fresh.schema_version().unwrap(), 0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| Store::postgres(&settings).unwrap());
        }
    });
    let store = Store::postgres(&settings).unwrap();
    assert_eq!(store.schema_version().unwrap(), storage::MIGRATIONS_LATEST);
    assert_eq!(store.migrate().unwrap(), storage::MIGRATIONS_LATEST);
    store.tree("kept").unwrap().insert(b"k", b"v").unwrap();
    assert_eq!(Store::postgres(&settings).unwrap().tree("kept").unwrap().get(b"k").unwrap(), Some(b"v".to_vec()));

    // A newer build migrated this database: this one refuses it, naming both versions.
    storage::testing::mark_migrated_by_newer_build(&settings, 99);
    match Store::postgres(&settings) {
        Err(Error::SchemaTooNew { found: 99, supported }) => assert_eq!(supported, storage::MIGRATIONS_LATEST),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn namespaces_keep_their_trees_locks_and_topics_apart() {
    each(|store| {
        let (one, two) = (store.namespaced("one"), store.namespaced("two"));
        one.tree("t").unwrap().insert(b"k", b"1").unwrap();
        assert_eq!(two.tree("t").unwrap().get(b"k").unwrap(), None);
        assert_eq!(store.tree("t").unwrap().get(b"k").unwrap(), None);
        assert_eq!(one.tree("t").unwrap().get(b"k").unwrap(), Some(b"1".to_vec()));
        // The same key in two namespaces is two locks.
        let _held = one.lock("c").unwrap();
        let _also = two.lock("c").unwrap();
        let mut heard = two.subscribe("topic").unwrap();
        one.publish("topic", "for one").unwrap();
        two.publish("topic", "for two").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), heard.recv()).await });
        assert_eq!(got.unwrap().unwrap(), "for two");
    });
}

#[test]
fn a_transaction_that_panics_leaves_nothing_open_behind() {
    let Some(settings) = testing::fresh_database() else { return };
    let (store, reader) = (Store::postgres(&settings).unwrap(), Store::postgres(&settings).unwrap());
    let tree = store.tree("p").unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.transaction(&[&tree], |trees| {
            trees[0].insert(b"half", b"x")?;
            trees[0].generate_id()?; // a statement inside the open transaction
            if trees.len() == 1 {
                panic!("the closure failed half-way");
            }
            Ok::<(), TxError<Refused>>(())
        });
    }));
    assert!(panicked.is_err());
    // Every later write is committed: no connection went back to the pool inside a transaction.
    for n in 0..24u8 {
        tree.insert([n], [n]).unwrap();
    }
    let seen = reader.tree("p").unwrap();
    assert_eq!(seen.get(b"half").unwrap(), None);
    assert_eq!(seen.len().unwrap(), 24);
}
