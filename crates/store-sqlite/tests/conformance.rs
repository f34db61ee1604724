//! The store conformance suite on SQLite: each check on a fresh database file.

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
