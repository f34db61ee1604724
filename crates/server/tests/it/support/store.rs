//! The database a test's server uses: a SQLite file in its data directory
//! (the default), or — when the test command runs the suite again with
//! `TEST_STORE_BACKEND=postgres` — a fresh PostgreSQL database of its own,
//! migrated, and dropped when the test is done.

use switchboard_server::Config;
use switchboard_server::app::{self, Purpose};
use switchboard_store_postgres::test_database::TestDatabase;

/// Whether this run's servers use PostgreSQL.
pub fn postgres_run() -> bool {
    match std::env::var("TEST_STORE_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("TEST_STORE_BACKEND must be sqlite or postgres, not {other}"),
    }
}

/// One test's database.
pub struct TestStore {
    /// `database.url` for the server; `None` for the SQLite default.
    pub url: Option<String>,
    database: Option<TestDatabase>,
}

impl TestStore {
    /// The database of this run's backend.
    pub async fn create() -> TestStore {
        if postgres_run() {
            TestStore::postgres().await
        } else {
            TestStore {
                url: None,
                database: None,
            }
        }
    }

    /// A fresh, migrated PostgreSQL database, whatever the run's backend.
    pub async fn postgres() -> TestStore {
        let database = TestDatabase::create().await;
        let mut config = Config::default();
        config.database.url = Some(database.url.clone());
        app::open_database(&config, Purpose::Migrate)
            .await
            .expect("migrations apply")
            .close()
            .await;
        TestStore {
            url: Some(database.url.clone()),
            database: Some(database),
        }
    }

    /// A fresh PostgreSQL database without the schema.
    pub async fn empty_postgres() -> TestStore {
        let database = TestDatabase::create().await;
        TestStore {
            url: Some(database.url.clone()),
            database: Some(database),
        }
    }

    /// Points a configuration at this database.
    pub fn configure(&self, config: &mut Config) {
        if let Some(url) = &self.url {
            config.database.url = Some(url.clone());
        }
    }

    /// Runs `sql` on the database directly, as an operator's hand would (the
    /// SQLite file in `data_dir`, which no server may hold meanwhile); the
    /// rows it changed.
    pub async fn tamper(&self, data_dir: &std::path::Path, sql: &str) -> u64 {
        match &self.url {
            Some(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                let changed = sqlx::query(sql).execute(&mut conn).await.unwrap();
                changed.rows_affected()
            }
            None => {
                let file = data_dir.join("switchboard.db");
                let conn = rusqlite::Connection::open(file).unwrap();
                conn.execute(sql, []).unwrap() as u64
            }
        }
    }

    /// The environment setting that points a server process at this database.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match &self.url {
            Some(url) => vec![("SWITCHBOARD_DATABASE__URL", url.clone())],
            None => Vec::new(),
        }
    }
}
