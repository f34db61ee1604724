//! The store conformance suite on SQLite (each check on a fresh database
//! file), and what only the SQLite writer does.

use switchboard_store_sqlite::{Durability, SqliteOptions, SqliteStore};

async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut options = SqliteOptions::new(dir.path().join("conformance.db"));
    options.durability = Durability::Normal;
    let store = switchboard_store_sqlite::open(&options)
        .await
        .expect("store opens");
    (dir, store)
}

switchboard_store::conformance_tests!(fresh_store());

/// A change that panics fails alone: the writer goes on with the next ones.
#[tokio::test]
async fn a_change_that_panics_fails_alone() {
    use switchboard_store::{MaintenanceStore, TenancyStore};
    use switchboard_store_sql::{Backend, Outcome};

    let (_dir, store) = fresh_store().await;
    let panicked: switchboard_store::StoreResult<()> = store
        .backend()
        .write(|_tx| -> switchboard_store_sql::BoxFuture<'_, Outcome<()>> {
            Box::pin(async { panic!("a fault of the store") })
        })
        .await;
    assert!(panicked.is_err(), "the caller is answered with an error");
    // A query that panics fails alone too, on a reader and on the caller's
    // thread, and every connection goes on.
    for _ in 0..8 {
        let read: switchboard_store::StoreResult<()> = store
            .backend()
            .read(
                |_conn| -> switchboard_store_sql::BoxFuture<'_, Outcome<()>> {
                    Box::pin(async { panic!("a fault of the store") })
                },
            )
            .await;
        assert!(read.is_err());
        let by_key: switchboard_store::StoreResult<()> = store
            .backend()
            .read_by_key(
                |_conn| -> switchboard_store_sql::BoxFuture<'_, Outcome<()>> {
                    Box::pin(async { panic!("a fault of the store") })
                },
            )
            .await;
        assert!(by_key.is_err());
    }
    store.ping().await.expect("the readers answer");
    assert_eq!(store.company_count().await.expect("the writer goes on"), 0);
    assert_eq!(store.purge_expired(0).await.expect("changes commit"), 0);
}

/// Changes committed together stay apart: among many changes sent at once,
/// one that writes and then fails leaves nothing behind, and every other
/// one commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_fails_in_a_group_is_rolled_back_alone() {
    use switchboard_store::{StoreError, TenancyStore};
    use switchboard_store_sql::{Backend, Db, Failure, args};

    let (_dir, store) = fresh_store().await;
    let store = std::sync::Arc::new(store);
    let changes = (0..200).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .backend()
                .write(move |tx| {
                    Box::pin(async move {
                        tx.execute(
                            "INSERT INTO companies (id, name, created_at) VALUES ($1, $2, 0)",
                            args![format!("company-{n}"), "a company"],
                        )
                        .await?;
                        if n % 7 == 3 {
                            return Err(Failure::Store(StoreError::Conflict("refused".into())));
                        }
                        Ok(n)
                    })
                })
                .await
        })
    });
    let mut committed = 0;
    for (n, change) in changes.collect::<Vec<_>>().into_iter().enumerate() {
        let outcome = change.await.expect("the change ran");
        assert_eq!(outcome.is_ok(), n % 7 != 3, "change {n}: {outcome:?}");
        committed += usize::from(outcome.is_ok());
    }
    assert_eq!(
        store.company_count().await.expect("count") as usize,
        committed,
        "exactly the changes that succeeded are in the database"
    );
}
