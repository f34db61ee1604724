//! `LISTEN switchboard_outbox`: wakes this instance's delivery workers when
//! any instance commits deliveries.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The notification channel.
const CHANNEL: &str = "switchboard_outbox";

/// Sends the wake-up to every listening instance. Failing is harmless (the
/// workers poll), so it is only logged.
pub(crate) async fn notify(pool: &PgPool) {
    if let Err(err) = sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(pool)
        .await
    {
        tracing::debug!(error = %err, "could not notify the other instances");
    }
}

/// The task that listens.
#[derive(Debug)]
pub(crate) struct Listener {
    task: JoinHandle<()>,
}

impl Listener {
    /// Starts listening on a connection of its own (made with the pool's options).
    pub(crate) fn start(pool: &PgPool, outbox: &Arc<Notify>) -> Self {
        let task = tokio::spawn(listen(pool.clone(), Arc::downgrade(outbox)));
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

async fn listen(pool: PgPool, outbox: Weak<Notify>) {
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
            Ok(Some(_)) => {}
            // The connection was lost and is being remade: notifications sent
            // meanwhile are gone, so the workers look at the outbox once.
            Ok(None) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => {
                tracing::debug!(error = %err, "listener connection failed; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let Some(outbox) = outbox.upgrade() else {
            return;
        };
        outbox.notify_one();
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
