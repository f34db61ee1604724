//! Opening a PostgreSQL database: `migrate` applies the schema; `serve`
//! refuses a database whose migrations are not exactly this build's.

use switchboard_store_postgres::test_database::TestDatabase;
use switchboard_store_postgres::{MigrationPolicy, PgOptions, PgStore};

async fn open(database: &TestDatabase, policy: MigrationPolicy) -> Result<PgStore, String> {
    switchboard_store_postgres::open(&PgOptions::new(&database.url), policy)
        .await
        .map_err(|err| {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        })
}

#[tokio::test]
async fn serve_refuses_an_unmigrated_database_and_migrate_makes_it_usable() {
    let database = TestDatabase::create().await;
    let refused = open(&database, MigrationPolicy::Require).await.unwrap_err();
    assert!(refused.contains("run `switchboard migrate`"), "{refused}");

    let migrated = open(&database, MigrationPolicy::Apply).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_name IN ('companies', 'messages', 'deliveries', 'delivery_lanes', 'files')",
    )
    .fetch_one(migrated.backend().pool())
    .await
    .unwrap();
    assert_eq!(tables, 5);
    migrated.close().await;
    // Applying again changes nothing; serving is now allowed.
    open(&database, MigrationPolicy::Apply)
        .await
        .unwrap()
        .close()
        .await;
    open(&database, MigrationPolicy::Require)
        .await
        .unwrap()
        .close()
        .await;
}

#[tokio::test]
async fn serve_refuses_migrations_it_does_not_know_or_that_changed() {
    let database = TestDatabase::create().await;
    let store = open(&database, MigrationPolicy::Apply).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(store.backend().pool())
    .await
    .unwrap();
    let refused = open(&database, MigrationPolicy::Require).await.unwrap_err();
    assert!(
        refused.contains("[9999]") && refused.contains("does not know"),
        "{refused}"
    );
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 9999")
        .execute(store.backend().pool())
        .await
        .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 1")
        .execute(store.backend().pool())
        .await
        .unwrap();
    let refused = open(&database, MigrationPolicy::Require).await.unwrap_err();
    assert!(
        refused.contains("migration 1") && refused.contains("differs"),
        "{refused}"
    );
    store.close().await;
}
