//! What a database backend provides to the store: a way to run a change as
//! one committed transaction, a way to run a query, and the delivery
//! workers' side of the outbox (claims and outcomes), which each database
//! does its own way.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use switchboard_store::{DeliveryStore, StoreResult};

use crate::auth_cache::AuthCache;
use crate::db::Db;
use crate::failure::Outcome;
use crate::send::SendGroups;

/// A boxed future that may move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A database backend.
///
/// A change is handed over as a function of the open transaction, not run
/// by the caller, so that each backend runs it its own way:
///
/// - PostgreSQL opens a `SERIALIZABLE` transaction on a pooled connection,
///   runs the function, commits, and runs the function again from the start
///   when the database aborts the transaction for a conflict. The function
///   is therefore `Fn`: each run starts from the request as it came.
/// - SQLite hands the function to its writer thread, which runs the changes
///   waiting at that moment one after another in one transaction and commits
///   them together (a change that fails is rolled back alone).
///
/// Either way the caller is answered only after the commit that holds its
/// change, and what the transaction did ([`crate::db::Effects`]) takes
/// effect then: its events are counted and the delivery workers woken.
pub trait Backend: DeliveryStore + Send + Sync + 'static {
    /// The connection a change runs on, with its transaction open.
    type Writer: Db;
    /// The connection a query runs on.
    type Reader: Db;

    /// Runs `change` in a transaction and commits it.
    fn write<T, F>(&self, change: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut Self::Writer) -> BoxFuture<'t, Outcome<T>> + Send + Sync + 'static;

    /// Runs `query` on a read connection (it sees every answered change).
    fn read<T, F>(&self, query: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Self::Reader) -> BoxFuture<'t, Outcome<T>> + Send + 'static;

    /// Runs `query`, a lookup of a few rows by key that every request makes
    /// (authentication, when no answer is kept for its key: see
    /// [`crate::auth_cache`]), where it costs least: SQLite runs it on the calling
    /// thread when a connection for that is free, since handing a query of
    /// microseconds to a reader thread and waking the caller costs more than
    /// the query. Anything that may read many rows goes through
    /// [`Backend::read`], which never holds up the caller's thread.
    fn read_by_key<T, F>(&self, query: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Self::Reader) -> BoxFuture<'t, Outcome<T>> + Send + 'static,
    {
        self.read(query)
    }

    /// Whether sends are grouped, several in one change (see
    /// the `send` module): where each statement is a round trip and each
    /// commit a flush (PostgreSQL). SQLite's writer already commits the
    /// changes waiting together, and its statements take microseconds: each
    /// send is a change of its own there.
    fn groups_sends(&self) -> bool {
        false
    }

    /// Makes the space of deleted rows of `tables` reusable where the
    /// database does not do so by itself as rows go. SQLite reuses freed
    /// pages at once: nothing to do.
    fn reclaim_space(&self, tables: &[&str]) -> impl Future<Output = StoreResult<()>> + Send {
        let _ = tables;
        async { Ok(()) }
    }

    /// A count the backend raises whenever another process on the same
    /// database has changed credentials (revoked a key, deleted a bot), so
    /// that this one stops using the authentications it keeps
    /// ([`crate::auth_cache`]). `None` where no other process changes them
    /// (one SQLite server holds its file).
    fn credential_changes_elsewhere(&self) -> Option<Arc<AtomicU64>> {
        None
    }

    /// Tells the other processes on the same database, after the commit of
    /// a change to credentials, to stop using the authentications they keep.
    fn tell_credentials_changed(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Closes every connection.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The store: every storage trait, written once over a [`Backend`].
pub struct SqlStore<B> {
    pub(crate) backend: Arc<B>,
    pub(crate) auth: Arc<AuthCache>,
    /// Where sends wait to be grouped, if the backend groups them.
    pub(crate) sends: Option<Arc<SendGroups>>,
}

impl<B> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        SqlStore {
            backend: self.backend.clone(),
            auth: self.auth.clone(),
            sends: self.sends.clone(),
        }
    }
}

impl<B> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").finish_non_exhaustive()
    }
}

impl<B: Backend> SqlStore<B> {
    /// The store over `backend`; where the backend groups sends, this
    /// starts the task that runs them (on the current tokio runtime).
    pub fn new(backend: B) -> Self {
        let backend = Arc::new(backend);
        SqlStore {
            auth: Arc::new(AuthCache::new(backend.credential_changes_elsewhere())),
            sends: backend
                .groups_sends()
                .then(|| Arc::new(SendGroups::start(backend.clone()))),
            backend,
        }
    }

    /// After the commit of a change to credentials, before it is answered:
    /// no authentication kept here or in another process is used again.
    pub(crate) async fn credentials_changed(&self) {
        self.auth.credentials_changed();
        self.backend.tell_credentials_changed().await;
    }

    /// The backend, for what only it does.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

/// Runs `$body` as one change on `$store`'s backend, with the open
/// transaction as `$tx`. The listed variables are cloned into the change
/// (owned, since the backend may run it on another thread or more than
/// once, each run from the request as it came) and the body sees each as a
/// reference under the same name, as the method's own parameters.
macro_rules! change {
    ($store:expr, ($($owned:ident),* $(,)?), |$tx:ident| $body:expr) => {{
        $(let $owned = $owned.to_owned();)*
        $store
            .backend
            .write(move |$tx| {
                $(let $owned = ::std::clone::Clone::clone(&$owned);)*
                Box::pin(async move {
                    $(let $owned = &$owned;)*
                    $body
                })
            })
            .await
    }};
}

/// Runs `$body` as one query on `$store`'s backend, with the read connection
/// as `$conn`; the listed variables are moved in as with [`change!`].
macro_rules! query {
    ($store:expr, ($($owned:ident),* $(,)?), |$conn:ident| $body:expr) => {{
        $(let $owned = $owned.to_owned();)*
        $store
            .backend
            .read(move |$conn| {
                Box::pin(async move {
                    $(let $owned = &$owned;)*
                    $body
                })
            })
            .await
    }};
}
