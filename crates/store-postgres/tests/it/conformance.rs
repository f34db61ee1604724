//! The store conformance suite on PostgreSQL: each check on a fresh database,
//! dropped after.

use switchboard_store_postgres::test_database::TestDatabase;
use switchboard_store_postgres::{MigrationPolicy, PgOptions, PgStore};

async fn fresh_store() -> (TestDatabase, PgStore) {
    let database = TestDatabase::create().await;
    let store =
        switchboard_store_postgres::open(&PgOptions::new(&database.url), MigrationPolicy::Apply)
            .await
            .expect("store opens");
    (database, store)
}

switchboard_store::conformance_tests!(fresh_store());
