//! The PostgreSQL backend: several switchboard processes sharing one
//! database, with the same behaviour as the embedded SQLite default.
//!
//! - **Changes** (every mutating method of the API's traits) run as one
//!   `SERIALIZABLE` transaction each. Where SQLite runs one writer at a time,
//!   PostgreSQL runs them side by side and aborts one of two that would not
//!   have been possible one after the other; the aborted one is run again
//!   from the start (for [`RERUN_BUDGET`] at most, with short random pauses), so
//!   every access rule checked inside a transaction holds as it does on SQLite.
//!   Every event of a channel takes the channel's next `channelSeq` by
//!   updating the channel row, so changes to one channel commit in the order
//!   of their events.
//! - **Delivery workers** of any number of instances claim lane heads with
//!   `FOR UPDATE SKIP LOCKED` and a lease, in `READ COMMITTED` transactions
//!   that lock the rows they change: two workers never hold one lane at once,
//!   and a lane whose lease ran out (its instance died) is claimed by another.
//!   Each integration's in-flight limit holds across instances (claims of one
//!   integration take a transaction-scoped advisory lock while they count).
//! - **Wake-ups**: a commit that queued deliveries sends `NOTIFY
//!   switchboard_outbox`; every instance `LISTEN`s and wakes its workers, so
//!   an event accepted by one instance is sent at once by any. A lost listener
//!   connection reconnects by itself; workers also poll every second.
//! - **Outages**: a request that cannot get a connection within
//!   [`PgOptions::acquire_timeout`] fails as unavailable (503); connections
//!   are re-established as the database comes back, without a restart.
//!
//! Migrations are embedded. Unlike the embedded SQLite default, a server on
//! PostgreSQL never changes the schema by itself: `switchboard migrate`
//! applies migrations ([`MigrationPolicy::Apply`]), and `serve` refuses a
//! database with migrations not yet applied, applied ones this build does not
//! know (written by a newer switchboard), or applied ones that differ from
//! this build's ([`MigrationPolicy::Require`]) — with several instances
//! behind a load balancer, a rolling upgrade must not migrate under the feet
//! of older instances.

mod db;
mod finish;
mod listener;
mod outbox;
mod transaction;

#[cfg(feature = "test-support")]
pub mod test_database;

use std::collections::BTreeMap;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use switchboard_store::OutboxSignal;
use switchboard_store::{StoreError, StoreResult};
use switchboard_store_sql::SqlStore;

pub(crate) use switchboard_store_sql::failure;
pub use transaction::RERUN_BUDGET;

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Whether opening may change the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPolicy {
    /// Apply migrations not yet applied (`switchboard migrate`).
    Apply,
    /// Refuse a schema that is not exactly this build's (`serve`).
    Require,
}

/// How to reach the database.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// `postgres://user@host:port/database`
    pub url: String,
    /// Connections of this process.
    pub max_connections: u32,
    /// How long a request waits for a connection (or for the database to
    /// answer a connection attempt) before failing with "unavailable".
    pub acquire_timeout: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the schema was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error("the database lacks migrations {0:?} of this build; run `switchboard migrate` first")]
    Unapplied(Vec<i64>),
    #[error(
        "the database has migrations {0:?} that this build does not know (applied by a newer switchboard?); \
         run that version, or restore a matching backup"
    )]
    Unknown(Vec<i64>),
    #[error(
        "migration {0} in the database differs from this build's (edited after it was applied?)"
    )]
    Changed(i64),
    #[error(
        "migration {0} failed part way when it was applied; repair the database before starting"
    )]
    Dirty(i64),
}

/// How long a pooled connection may sit idle before it is tested again when
/// taken. Within this, a connection cut since it was given back fails the one
/// request that takes it (503, to be retried, as during any outage) and is
/// dropped; after it, the test finds the cut and another connection is used.
const TEST_IDLE_CONNECTIONS_AFTER: Duration = Duration::from_secs(1);

/// The PostgreSQL store: the store's logic over [`PgBackend`].
pub type PgStore = SqlStore<PgBackend>;

/// What only PostgreSQL does for the store: the pool, serializable re-runs,
/// the delivery workers' claims, and wake-ups across instances.
#[derive(Debug)]
pub struct PgBackend {
    pool: PgPool,
    /// Woken when any instance commits deliveries (through the listener).
    outbox: Arc<OutboxSignal>,
    /// The `LISTEN` task, stopped by closing the store.
    listener: listener::Listener,
    /// Sends this instance's wake-ups to the others.
    notifier: listener::Notifier,
    /// Raised by the listener whenever any instance changed credentials.
    credential_changes: Arc<AtomicU64>,
}

/// Connects, then applies or checks the migrations as `policy` says.
pub async fn open(options: &PgOptions, policy: MigrationPolicy) -> StoreResult<PgStore> {
    let connect: PgConnectOptions = options
        .url
        .parse::<PgConnectOptions>()
        .map_err(|err: sqlx::Error| StoreError::Backend(Box::new(err)))?
        // A COMMIT that fails for a serialization conflict ends the
        // transaction; the driver's ROLLBACK after it draws a harmless
        // "no transaction in progress" warning per retry. Errors still come through.
        .options([("client_min_messages", "error")]);
    // One connection first: the pool would report any failure to connect
    // as a timeout, where this says what went wrong (refused, no such
    // role or database, wrong password).
    match tokio::time::timeout(options.acquire_timeout, connect.connect()).await {
        Ok(Ok(first)) => drop(first),
        Ok(Err(err)) => {
            return Err(StoreError::Unavailable(Box::new(Unreachable::new(
                &connect, err,
            ))));
        }
        Err(_) => {
            return Err(StoreError::Unavailable(Box::new(Unreachable::new(
                &connect,
                sqlx::Error::PoolTimedOut,
            ))));
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        // The pool tests every connection when it is given back (a round
        // trip), so one taken again soon after needs no second test: a
        // round trip per request saved under load. One that sat idle for
        // longer may have been cut meanwhile and is tested before use.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= TEST_IDLE_CONNECTIONS_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(connect)
        .await
        .map_err(|err| StoreError::Unavailable(Box::new(err)))?;
    match policy {
        MigrationPolicy::Apply => MIGRATOR
            .run(&pool)
            .await
            .map_err(|err| StoreError::Backend(Box::new(err)))?,
        MigrationPolicy::Require => check_schema(&pool)
            .await?
            .map_err(|err| StoreError::Backend(Box::new(err)))?,
    }
    let outbox = Arc::new(OutboxSignal::default());
    let credential_changes = Arc::new(AtomicU64::new(0));
    let tag = listener::InstanceTag::new();
    let listener =
        listener::Listener::start(&pool, &outbox, credential_changes.clone(), tag.clone());
    let notifier = listener::Notifier::start(&pool, tag);
    Ok(SqlStore::new(PgBackend {
        pool,
        outbox,
        listener,
        notifier,
        credential_changes,
    }))
}

impl PgBackend {
    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Wakes the workers of every instance after a commit that queued
    /// deliveries: this one's at once, the others' through `NOTIFY` soon
    /// after ([`listener::Notifier`]). A lost notification costs at most the
    /// workers' poll interval.
    pub(crate) fn wake_workers(&self) {
        self.outbox.deliveries_queued();
        self.notifier.wake_others();
    }
}

/// PostgreSQL could not be connected to: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe_unreachable(.host, .port, .cause))]
pub struct Unreachable {
    host: String,
    port: u16,
    #[source]
    cause: sqlx::Error,
}

impl Unreachable {
    fn new(options: &PgConnectOptions, cause: sqlx::Error) -> Self {
        Unreachable {
            host: options.get_host().to_owned(),
            port: options.get_port(),
            cause,
        }
    }
}

fn describe_unreachable(host: &str, port: &u16, cause: &sqlx::Error) -> String {
    match cause {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            format!("could not connect to PostgreSQL at {host}:{port} (is it running there?)")
        }
        sqlx::Error::PoolTimedOut => format!(
            "no answer from PostgreSQL at {host}:{port} within database.acquire_timeout \
             (is it running there and reachable?)"
        ),
        _ => format!("PostgreSQL at {host}:{port} refused the connection"),
    }
}

/// Compares the migrations recorded in the database with this build's.
async fn check_schema(pool: &PgPool) -> StoreResult<Result<(), SchemaError>> {
    let recorded: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(|err| StoreError::Unavailable(Box::new(err)))?;
    let applied: Vec<(i64, bool, Vec<u8>)> = if recorded {
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(|err| StoreError::Unavailable(Box::new(err)))?
    } else {
        Vec::new()
    };
    Ok(compare(&applied))
}

fn compare(applied: &[(i64, bool, Vec<u8>)]) -> Result<(), SchemaError> {
    let known: BTreeMap<i64, &[u8]> = MIGRATOR
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
        .map(|migration| (migration.version, migration.checksum.as_ref()))
        .collect();
    let unknown: Vec<i64> = applied
        .iter()
        .map(|(version, _, _)| *version)
        .filter(|version| !known.contains_key(version))
        .collect();
    if !unknown.is_empty() {
        return Err(SchemaError::Unknown(unknown));
    }
    for (version, success, checksum) in applied {
        if !success {
            return Err(SchemaError::Dirty(*version));
        }
        if known
            .get(version)
            .is_some_and(|known| *known != checksum.as_slice())
        {
            return Err(SchemaError::Changed(*version));
        }
    }
    let unapplied: Vec<i64> = known
        .keys()
        .copied()
        .filter(|version| !applied.iter().any(|(applied, _, _)| applied == version))
        .collect();
    if !unapplied.is_empty() {
        return Err(SchemaError::Unapplied(unapplied));
    }
    Ok(())
}
