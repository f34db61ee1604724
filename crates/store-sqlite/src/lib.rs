//! The embedded switchboard backend: every storage trait on one SQLite file.
//!
//! - WAL journal; one writer connection (SQLite allows one writer at a time,
//!   so writes queue in the pool instead of failing with "database is busy")
//!   and a small pool of reader connections that never block the writer.
//! - Every mutating trait method is one transaction on the writer; access
//!   rules are checked on rows read inside it.
//! - `synchronous` is configurable: `full` (default) makes every commit durable
//!   against power loss; `normal` survives a crash of the process (committed
//!   transactions are in the WAL) but may lose the last commits on power loss.
//! - Migrations are embedded and applied at open; a database with migrations
//!   this build does not know is refused.

mod channels;
mod events;
mod files;
mod integrations;
mod load;
mod messages;
mod outbox;
mod tenancy;
mod users;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use switchboard_domain::UnixMicros;
use switchboard_store::{MaintenanceStore, StoreError, StoreResult};
use tokio::sync::Notify;

pub(crate) use switchboard_store_sql::failure::{self, Failure};
use switchboard_store_sql::rows;

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How durable each commit is; see the crate documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit.
    Full,
    /// fsync at checkpoints only; survives process crashes.
    Normal,
}

/// How to open the database.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// The database file; created with its directory when missing.
    pub path: PathBuf,
    pub durability: Durability,
    /// Reader connections (at least 1).
    pub read_connections: u32,
    /// How long a statement waits for a lock held by another process.
    pub busy_timeout: Duration,
}

impl SqliteOptions {
    /// Options for a file with the defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            durability: Durability::Full,
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// Options from a `sqlite://PATH` URL (or a bare path).
    pub fn from_url(url: &str) -> Self {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        SqliteOptions::new(path)
    }
}

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Woken after every commit that queued deliveries.
    outbox: Arc<Notify>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and applies migrations.
    pub async fn open(options: &SqliteOptions) -> StoreResult<Self> {
        if let Some(dir) = options
            .path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|err| StoreError::Unavailable(Box::new(err)))?;
        }
        let connect = SqliteConnectOptions::from_str("sqlite://")
            .map_err(Failure::from)?
            .filename(&options.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // Writes queue for the one writer by design; under load a wait of
            // a few seconds is expected, not worth a warning per request.
            .acquire_slow_threshold(Duration::from_secs(10))
            .connect_with(connect.clone())
            .await
            .map_err(Failure::from)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|err| StoreError::Backend(Box::new(err)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect.read_only(true))
            .await
            .map_err(Failure::from)?;
        Ok(SqliteStore {
            writer,
            reader,
            outbox: Arc::new(Notify::new()),
        })
    }

    /// Wakes the delivery workers after a commit that queued deliveries.
    pub(crate) fn wake_workers_if(&self, queued: bool) {
        if queued {
            self.outbox.notify_one();
        }
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn purge_expired(&self, now: UnixMicros) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let window = switchboard_domain::limits::IDEMPOTENCY_WINDOW_MICROS;
        let keys = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(now - window)
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        let typing = sqlx::query("DELETE FROM typing WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(keys.rows_affected() + typing.rows_affected())
    }
}
