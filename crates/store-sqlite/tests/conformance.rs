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
    store.ping().await.expect("the readers answer");
    assert_eq!(store.company_count().await.expect("the writer goes on"), 0);
    assert_eq!(store.purge_expired(0).await.expect("changes commit"), 0);
}
