//! Several instances on one database: what one changes, the others honour.

use std::sync::Arc;
use std::time::Duration;

use switchboard_store_postgres::test_database::TestDatabase;
use switchboard_store_postgres::{MigrationPolicy, PgOptions};

#[tokio::test]
async fn a_key_revoked_on_one_instance_is_refused_by_the_other() {
    let database = TestDatabase::create().await;
    let open = || async {
        switchboard_store_postgres::open(&PgOptions::new(&database.url), MigrationPolicy::Apply)
            .await
            .expect("store opens")
    };
    let (first, second) = (open().await, open().await);
    // Well under the time an instance keeps an authentication: the other
    // instance is told, it does not wait for its copy to expire.
    let within = switchboard_store_sql::auth_cache::KEEP_FOR / 5;
    assert!(within >= Duration::from_secs(1));
    switchboard_store::conformance::credentials_revoked_on_another_instance(
        Arc::new(first.clone()),
        Arc::new(second.clone()),
        within,
    )
    .await;
    first.close().await;
    second.close().await;
}
