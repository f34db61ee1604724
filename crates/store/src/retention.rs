//! What the database keeps, and for how long: the rules, and what a batch of
//! pruning did.

use async_trait::async_trait;
use switchboard_domain::UnixMicros;

use crate::StoreResult;

/// How long each kind of row is kept, in microseconds counted from the row's
/// creation; `None` keeps it forever.
///
/// Events are pruned whole: an event goes with all its deliveries and their
/// attempts, so the delivery log and replay never see half of one. An event
/// with a pending delivery (waiting, in flight or retrying) is never pruned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Events whose deliveries all reached their bots.
    pub delivered: Option<i64>,
    /// Events with a dead-lettered delivery.
    pub dead_letters: Option<i64>,
    /// Chat messages, with their reactions.
    pub messages: Option<i64>,
}

impl Retention {
    /// Keeps everything.
    pub const FOREVER: Retention = Retention {
        delivered: None,
        dead_letters: None,
        messages: None,
    };
}

/// What one batch of pruning events did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunedEvents {
    /// Events looked at; fewer than the batch asked for means the pass
    /// reached the events still inside their window.
    pub examined: u32,
    /// The last event looked at: where the next batch of the same pass
    /// starts.
    pub next: Option<String>,
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

/// What one batch of pruning messages did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrunedMessages {
    pub messages: u64,
    pub reactions: u64,
}

/// The size of the database and the age of what it keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Bytes the database takes on disk.
    pub database_bytes: u64,
    /// Of those, bytes free for reuse (SQLite's free pages; 0 on PostgreSQL,
    /// whose free space is in its tables).
    pub free_bytes: u64,
    /// The creation time of the oldest event kept.
    pub oldest_event_at: Option<UnixMicros>,
    /// The creation time of the oldest message kept.
    pub oldest_message_at: Option<UnixMicros>,
}

/// Pruning, in batches small enough not to hold up the service.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Looks at up to `limit` events, oldest first, after the event `after`
    /// (from the oldest without it), and deletes those outside their window
    /// with their deliveries and attempts. It stops at the first event still
    /// inside every window. It also records that events before the newest
    /// one pruned are gone, so that a replay or a delivery log query
    /// reaching back before it is refused with that time.
    async fn prune_events(
        &self,
        now: UnixMicros,
        rules: Retention,
        after: Option<String>,
        limit: u32,
    ) -> StoreResult<PrunedEvents>;

    /// Deletes up to `limit` of the oldest messages created before
    /// `before`, with their reactions.
    async fn prune_messages(&self, before: UnixMicros, limit: u32) -> StoreResult<PrunedMessages>;

    /// Makes the space that pruned rows took reusable, where the database
    /// does not do so by itself (PostgreSQL: a `VACUUM` of the pruned
    /// tables, whether or not autovacuum is on; SQLite reuses freed pages at
    /// once).
    async fn reclaim_space(&self) -> StoreResult<()>;

    /// The database's size and the oldest rows it keeps.
    async fn storage_stats(&self) -> StoreResult<StorageStats>;
}
