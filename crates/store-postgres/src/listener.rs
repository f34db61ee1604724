//! Notifications between instances: `NOTIFY switchboard_outbox` when this instance
//! commits deliveries, `LISTEN` to wake this instance's delivery workers when
//! any instance does; and `NOTIFY switchboard_credentials` when it revokes a
//! key or deletes a bot, `LISTEN` to stop using the authentications this
//! instance keeps (`switchboard_store_sql::auth_cache`) when any instance
//! does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use switchboard_store::OutboxSignal;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The notification channel of committed deliveries.
const CHANNEL: &str = "switchboard_outbox";

/// The notification channel of changed credentials.
const CREDENTIALS: &str = "switchboard_credentials";

/// Tells every instance (this one too) that credentials changed; a failure
/// is logged, and the other instances' kept authentications then end
/// within their time.
pub(crate) async fn tell_credentials_changed(pool: &PgPool) {
    if let Err(err) = notify(pool, CREDENTIALS, "").await {
        tracing::warn!(error = %err, "could not tell the other instances that credentials changed");
    }
}

/// One notification on `channel`, to every listening instance, naming the
/// instance that sends it (`payload`, its [`InstanceTag`]) or none (empty).
async fn notify(pool: &PgPool, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await
        .map(drop)
}

/// What names this instance in the wake-ups it sends, so that its listener
/// passes over its own: its workers were woken at once when it committed,
/// and a second wake-up per change would only cost them a claim that finds
/// nothing (a transaction of several statements) on a busy database.
#[derive(Clone, Debug)]
pub(crate) struct InstanceTag(Arc<str>);

impl InstanceTag {
    pub(crate) fn new() -> Self {
        InstanceTag(format!("{:032x}", rand::random::<u128>()).into())
    }
}

/// Tells the other instances that deliveries were committed, one `NOTIFY`
/// at a time, without holding up the change that asked.
///
/// PostgreSQL commits transactions that notify one after another: each takes
/// a database-wide lock that it holds through its commit's flush to disk. A
/// `NOTIFY` per change therefore allowed one change with deliveries per
/// flush, for the whole database. Here the wake-ups asked for while one is
/// being sent are sent together as the next one, so a busy instance sends
/// about one per flush and a quiet one sends each at once. A listener needs
/// no more: a wake-up only makes its workers look at the outbox.
#[derive(Debug)]
pub(crate) struct Notifier {
    wanted: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Notifier {
    pub(crate) fn start(pool: &PgPool, tag: InstanceTag) -> Self {
        let wanted = Arc::new(Notify::new());
        let task = tokio::spawn(send_wake_ups(pool.clone(), wanted.clone(), tag));
        Notifier { wanted, task }
    }

    /// Asks for a wake-up of the other instances; it is sent soon after.
    pub(crate) fn wake_others(&self) {
        self.wanted.notify_one();
    }

    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn send_wake_ups(pool: PgPool, wanted: Arc<Notify>, tag: InstanceTag) {
    loop {
        // Wake-ups asked for while the last one was sent left one permit.
        wanted.notified().await;
        match notify(&pool, CHANNEL, &tag.0).await {
            Ok(()) => {}
            Err(sqlx::Error::PoolClosed) => return,
            // Failing is harmless (the workers of every instance also poll),
            // so it is only logged.
            Err(err) => tracing::debug!(error = %err, "could not notify the other instances"),
        }
    }
}

/// The task that listens.
#[derive(Debug)]
pub(crate) struct Listener {
    task: JoinHandle<()>,
}

impl Listener {
    /// Starts listening on a connection of its own (made with the pool's
    /// options); `credential_changes` is raised on every change of
    /// credentials any instance tells of, and the workers are woken by the
    /// deliveries of every instance but the one `tag` names (this one).
    pub(crate) fn start(
        pool: &PgPool,
        outbox: &Arc<OutboxSignal>,
        credential_changes: Arc<AtomicU64>,
        tag: InstanceTag,
    ) -> Self {
        let task = tokio::spawn(listen(
            pool.clone(),
            Arc::downgrade(outbox),
            credential_changes,
            tag,
        ));
        Listener { task }
    }

    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(
    pool: PgPool,
    outbox: Weak<OutboxSignal>,
    credential_changes: Arc<AtomicU64>,
    tag: InstanceTag,
) {
    let mut listener = loop {
        match subscribe(&pool).await {
            Ok(listener) => break listener,
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => {
                tracing::warn!(error = %err, "could not listen for deliveries of other instances; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) if notification.channel() == CREDENTIALS => {
                credential_changes.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            Ok(Some(notification)) if notification.payload() == &*tag.0 => continue,
            Ok(Some(_)) => {}
            // The connection was lost and is being remade: notifications sent
            // meanwhile are gone, so the workers look at the outbox once, and
            // no authentication kept from before is trusted.
            Ok(None) => {
                credential_changes.fetch_add(1, Ordering::SeqCst);
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => {
                tracing::debug!(error = %err, "listener connection failed; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let Some(outbox) = outbox.upgrade() else {
            return;
        };
        outbox.deliveries_queued();
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL, CREDENTIALS]).await?;
    Ok(listener)
}
