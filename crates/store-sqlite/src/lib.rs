//! The embedded switchboard backend: the store's logic on one SQLite file.
//!
//! - **One writer thread** owns the connection that writes and runs each
//!   change as plain synchronous calls into SQLite, with cached prepared
//!   statements: the store's logic is async code over a transaction trait,
//!   and on SQLite every statement completes at once, so the writer polls a
//!   change's future once and it is done. Nothing hops between threads per
//!   statement; a request crosses to the writer and back once.
//! - **Group commit**: the changes that arrive while the writer is busy are
//!   committed together with one fsync for the group (a change that fails is
//!   rolled back alone, see [`writer`]); each request is answered after the
//!   commit that holds it.
//! - **Readers**: a few threads with read-only connections run queries the
//!   same way, each in a snapshot that sees every answered change; they never
//!   block the writer (WAL journal). The lookup of a request's key, when
//!   the store keeps no answer for it (`switchboard_store_sql::auth_cache`),
//!   runs on the caller's own thread instead, on a connection of a small
//!   pool kept for it (see [`Backend::read_by_key`]); when all of those are
//!   busy it goes to the readers.
//! - **Checkpoints** (copying the WAL into the database file) run on a thread
//!   and connection of their own, never inside the writer's commits.
//! - `synchronous` is configurable: `full` (default) makes every commit durable
//!   against power loss; `normal` survives a crash of the process (committed
//!   transactions are in the WAL) but may lose the last commits on power loss.
//! - Migrations are embedded and applied at open; a database with migrations
//!   this build does not know is refused. A `CHECK` on a column that the
//!   hot paths write is written as equalities (`state = 'a' OR state =
//!   'b'`), not `IN ('a', 'b')`: SQLite checks an `IN` list by building a
//!   temporary index of its values in every statement that writes the
//!   column (migration 0012 says what that cost). For the same reason a
//!   statement that must read back the row it updates goes through
//!   [`Db::update_returning`](switchboard_store_sql::Db::update_returning)
//!   rather than `UPDATE … RETURNING`, for which SQLite makes and drops a
//!   temporary table each time.
//! - **How SQLite is compiled** (`.cargo/config.toml`, `LIBSQLITE3_FLAGS`):
//!   one page cache per connection and no memory statistics, so that
//!   fetching a page or allocating takes no global mutex (the bundled
//!   build's defaults took one on every page the writer touched).
//! - **One server per file.** A server opens its database with
//!   [`SqliteOptions::serve`]: it holds a lock on `<file>.lock` for as long as
//!   it runs (the kernel lets go of it when the process dies, even by
//!   SIGKILL), so a second server on the same file is refused with a message
//!   saying so. Holding the file alone, it knows that every delivery lease in
//!   it belongs to a process that is gone, and releases them at start:
//!   delivery resumes at once after a crash instead of after the lease.
//!   Administration commands (`company list`, `company new-key`) open the
//!   file without the lock and may run beside the server.
//! - **Hand-off.** Once the server's delivery workers ask for it
//!   ([`DeliveryStore::hand_off_to`](switchboard_store::DeliveryStore::hand_off_to)),
//!   a change that queues the first delivery of an idle lane leases the lane
//!   in its own transaction, and the writer hands the delivery to the workers
//!   after the commit: a message reaches its bot without a claim. (On
//!   PostgreSQL every instance's workers claim: a lane is any instance's.)
//!
//! Why threads and not an async driver: an async SQLite driver runs each
//! statement on a worker thread and wakes the caller when it is done, and
//! that hand-off, not SQLite, was most of the time a change took. Why not
//! the store's logic written twice, once blocking: one copy of every rule is
//! the point of the shared store; the transaction trait's futures cost one
//! allocation per change here.

mod checkpoint;
mod conn;
mod dialect;
mod migrate;
mod outbox;
mod readers;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use switchboard_store::OutboxSignal;
use switchboard_store::{StoreError, StoreResult};
use switchboard_store_sql::{Backend, BoxFuture, Outcome, SqlStore};
use tokio::sync::oneshot;

use crate::checkpoint::Checkpointer;
use crate::conn::{SqliteConn, run_to_end};
use crate::readers::Readers;
use crate::writer::{Change, Writer};
pub use migrate::MigrationError;

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
    /// Reader connections (at least 1), each with its thread.
    pub read_connections: u32,
    /// How long a statement waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// Opened by the server that runs on this file: hold it exclusively and
    /// release the delivery leases of the process before (see the crate
    /// docs).
    pub serve: bool,
}

impl SqliteOptions {
    /// Options for a file with the defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            durability: Durability::Full,
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            serve: false,
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

/// The SQLite store: the store's logic over [`SqliteBackend`].
pub type SqliteStore = SqlStore<SqliteBackend>;

/// What only SQLite does for the store: the writer thread, the readers, and
/// the delivery workers' claims.
pub struct SqliteBackend {
    writer: Arc<Writer>,
    checkpointer: Arc<Checkpointer>,
    readers: Arc<Readers>,
    /// Woken after every commit that queued deliveries.
    outbox: Arc<OutboxSignal>,
    /// Idle read-only connections for lookups by key on the caller's thread.
    key_readers: Mutex<Vec<SqliteConn>>,
    /// The server's hold on the file (see [`SqliteOptions::serve`]), let go
    /// at close.
    server_lock: Mutex<Option<std::fs::File>>,
    /// Where the writer hands deliveries off to, once the workers ask.
    hand_off: Arc<OnceLock<switchboard_store::HandOff>>,
}

/// Opens (creating if needed) the database and applies migrations.
pub async fn open(options: &SqliteOptions) -> StoreResult<SqliteStore> {
    let options = options.clone();
    let backend = tokio::task::spawn_blocking(move || open_now(&options))
        .await
        .map_err(|err| StoreError::Unavailable(Box::new(err)))??;
    Ok(SqlStore::new(backend))
}

fn open_now(options: &SqliteOptions) -> StoreResult<SqliteBackend> {
    if let Some(dir) = options
        .path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|err| StoreError::Unavailable(Box::new(err)))?;
    }
    let server_lock = if options.serve {
        Some(hold_for_server(&options.path)?)
    } else {
        None
    };
    let unavailable = |err: rusqlite::Error| StoreError::Unavailable(Box::new(err));
    let mut writer = connect(&options.path, options, false).map_err(unavailable)?;
    migrate::apply(&mut writer).map_err(|err| StoreError::Backend(Box::new(err)))?;
    if options.serve {
        let released = outbox::release_leases(&writer).map_err(unavailable)?;
        if released > 0 {
            tracing::info!(
                lanes = released,
                "released the delivery leases of the server that ran before; those deliveries are attempted again now"
            );
        }
    }
    // Checkpoints are the checkpointer's, not the writer's.
    writer
        .pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(unavailable)?;
    let checkpoints = connect(&options.path, options, false).map_err(unavailable)?;
    let read_only = |count: u32| {
        (0..count.max(1))
            .map(|_| connect(&options.path, options, true).map(SqliteConn::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)
    };
    let readers = read_only(options.read_connections)?;
    let key_readers = read_only(options.read_connections)?;
    let outbox = Arc::new(OutboxSignal::default());
    let hand_off = Arc::new(OnceLock::new());
    let io = |err: std::io::Error| StoreError::Unavailable(Box::new(err));
    let checkpointer = Arc::new(Checkpointer::start(checkpoints).map_err(io)?);
    Ok(SqliteBackend {
        writer: Arc::new(
            Writer::start(
                SqliteConn::handing_off(writer, hand_off.clone()),
                outbox.clone(),
                checkpointer.poker(),
            )
            .map_err(io)?,
        ),
        checkpointer,
        readers: Arc::new(Readers::start(readers).map_err(io)?),
        outbox,
        key_readers: Mutex::new(key_readers),
        server_lock: Mutex::new(server_lock),
        hand_off,
    })
}

/// Takes the server's lock on `<file>.lock`, or says which file another
/// server holds.
fn hold_for_server(path: &Path) -> StoreResult<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|err| StoreError::Unavailable(Box::new(err)))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(
            format!(
                "another switchboard server is running on the database {} (it holds {}); \
                 stop it first, or give this server another data directory",
                path.display(),
                lock_path.display()
            )
            .into(),
        )),
        Err(std::fs::TryLockError::Error(err)) => Err(StoreError::Unavailable(Box::new(err))),
    }
}

/// A connection with the store's settings: WAL journal (set by the writer,
/// kept by the file), the configured `synchronous`, foreign keys enforced.
fn connect(path: &Path, options: &SqliteOptions, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(options.busy_timeout)?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // When the WAL starts again from its beginning, a file larger than
        // this is cut back (see `checkpoint` for when it is cut whole).
        conn.pragma_update(None, "journal_size_limit", checkpoint::WAL_FILE_LIMIT)?;
    }
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", "-16000")?;
    Ok(conn)
}

/// Runs a query to its end on `conn`, in a read transaction of its own. A
/// query that panics (a fault of the store) fails alone: its caller is
/// answered with an error, and the connection goes on serving others.
fn read_now<T>(
    conn: &mut SqliteConn,
    query: impl for<'t> FnOnce(&'t mut SqliteConn) -> BoxFuture<'t, Outcome<T>>,
) -> StoreResult<T> {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conn.control("BEGIN").and_then(|()| {
            let outcome = run_to_end(query(conn));
            let _ = conn.control("COMMIT");
            outcome
        })
    }));
    match ran {
        Ok(outcome) => outcome.map_err(StoreError::from),
        Err(_) => {
            tracing::error!("a query panicked on SQLite; it is rolled back");
            if !conn.raw().is_autocommit() {
                let _ = conn.control("ROLLBACK");
            }
            Err(StoreError::Backend("the query failed on SQLite".into()))
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite store is closed or its thread failed".into())
}

impl Backend for SqliteBackend {
    type Writer = SqliteConn;
    type Reader = SqliteConn;

    async fn write<T, F>(&self, change: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut SqliteConn) -> BoxFuture<'t, Outcome<T>> + Send + Sync + 'static,
    {
        let (sender, receiver) = oneshot::channel::<StoreResult<T>>();
        let job = Box::new(QueuedChange {
            change,
            outcome: None,
            caller: sender,
        });
        if !self.writer.submit(job) {
            return Err(closed());
        }
        receiver.await.unwrap_or_else(|_| Err(closed()))
    }

    async fn read<T, F>(&self, query: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut SqliteConn) -> BoxFuture<'t, Outcome<T>> + Send + 'static,
    {
        let (sender, receiver) = oneshot::channel::<StoreResult<T>>();
        let read = Box::new(move |conn: &mut SqliteConn| {
            let _ = sender.send(read_now(conn, query));
        });
        if !self.readers.submit(read) {
            return Err(closed());
        }
        receiver.await.unwrap_or_else(|_| Err(closed()))
    }

    async fn read_by_key<T, F>(&self, query: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut SqliteConn) -> BoxFuture<'t, Outcome<T>> + Send + 'static,
    {
        let idle = self.key_readers.lock().expect("key readers").pop();
        let Some(mut conn) = idle else {
            return self.read(query).await;
        };
        let outcome = read_now(&mut conn, query);
        self.key_readers.lock().expect("key readers").push(conn);
        outcome
    }

    async fn close(&self) {
        let (writer, readers, checkpointer) = (
            self.writer.clone(),
            self.readers.clone(),
            self.checkpointer.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            readers.stop();
            writer.stop();
            checkpointer.stop();
        })
        .await;
        self.server_lock.lock().expect("server lock").take();
    }
}

/// A change on its way through the writer, with the outcome of its last run.
struct QueuedChange<T, F> {
    change: F,
    outcome: Option<Outcome<T>>,
    caller: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Change for QueuedChange<T, F>
where
    T: Send + 'static,
    F: for<'t> Fn(&'t mut SqliteConn) -> BoxFuture<'t, Outcome<T>> + Send + Sync + 'static,
{
    fn run(&mut self, conn: &mut SqliteConn) -> bool {
        // Cleared first: a run that panics leaves no outcome behind.
        self.outcome = None;
        let outcome = run_to_end((self.change)(conn));
        let succeeded = outcome.is_ok();
        self.outcome = Some(outcome);
        succeeded
    }

    fn answer(self: Box<Self>, commit: Result<(), String>) {
        let answer = match (self.outcome, commit) {
            (None, _) => Err(StoreError::Backend(
                "the change failed on the SQLite writer".into(),
            )),
            (Some(Err(failure)), _) => Err(failure.into()),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(why)) => Err(StoreError::Unavailable(why.into())),
        };
        let _ = self.caller.send(answer);
    }
}
