//! A fresh PostgreSQL database for one test, dropped when the test is done.
//!
//! The server is the one the test command expects on every machine
//! (`postgres://postgres@127.0.0.1:5432`, or `TEST_POSTGRES_URL`); databases
//! are named `switchboard_test_<random>` and dropped with `WITH (FORCE)`, so
//! connections a killed server left behind do not keep them.

use sqlx::{Connection, PgConnection};

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database that exists until dropped.
pub struct TestDatabase {
    name: String,
    /// `postgres://…/switchboard_test_…`
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database.
    pub async fn create() -> TestDatabase {
        let server = server_url();
        let name = format!("switchboard_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "PostgreSQL is not reachable at {server} ({err}); the tests need it: \
                     start it (`pg_ctlcluster 15 main start`, or `service postgresql start`) \
                     or point TEST_POSTGRES_URL at one"
                )
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        let _ = admin.close().await;
        TestDatabase {
            url: format!("{server}/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = server_url();
        let name = self.name.clone();
        // Dropped from async tests too: run on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&format!("{server}/postgres")).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
