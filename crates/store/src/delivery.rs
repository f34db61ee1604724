//! Integrations (where a bot's events go) and the delivery outbox.
//!
//! Every chat change that bots should hear of stores one event and one
//! delivery per subscribed integration **in the transaction of the change**.
//! Deliveries of one integration and one channel form a *lane*; only a lane's
//! head (lowest `channelSeq` still pending) may be sent, which keeps channel
//! order. Workers [`claim`](DeliveryStore::claim) heads with a lease, send
//! without any transaction open, then [`finish`](DeliveryStore::finish) with
//! the outcome. A lease that runs out (the worker died) makes the head
//! claimable again: that is the crash recovery.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_domain::{CompanyId, EventId, IntegrationId, UnixMicros, UserId};
use switchboard_protocol::EventType;

use crate::error::StoreResult;

/// Whether an integration receives deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegrationState {
    /// Deliveries are sent.
    Active,
    /// Deliveries are kept and sent after a resume.
    Paused,
    /// Turned off by the server (410 Gone, or failing for too long); deliveries
    /// already queued are kept and sent after a resume; no new ones are queued.
    Disabled,
}

impl IntegrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationState::Active => "active",
            IntegrationState::Paused => "paused",
            IntegrationState::Disabled => "disabled",
        }
    }

    pub fn from_stored(text: &str) -> Self {
        match text {
            "active" => IntegrationState::Active,
            "paused" => IntegrationState::Paused,
            _ => IntegrationState::Disabled,
        }
    }
}

/// Delivery settings an integration may override; `None` means the server's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Request timeout in milliseconds.
    pub timeout_ms: Option<u32>,
    /// Delays between attempts in milliseconds.
    pub retry_schedule_ms: Option<Vec<u64>>,
    /// Most deliveries of this integration in flight at once.
    pub max_in_flight: Option<u32>,
    /// Full `members`/`users` lists in message and reaction events (else at
    /// most 50 entries each).
    pub full_member_lists: Option<bool>,
}

/// Where an integration's deliveries go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One signed `POST` per event to this URL.
    Webhook { url: String },
    /// Messages on an AWS SQS (or SQS-compatible) queue.
    Sqs(SqsQueue),
    /// Kept for the bot to fetch (`GET /v2/bot/events`): the deliveries wait
    /// in their lanes until a consumer claims them (see
    /// [`DeliveryStore::claim_pulled`]); the workers never send them.
    Pull,
}

impl Target {
    /// The integration type on the wire: `webhook`, `sqs` or `pull`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Webhook { .. } => "webhook",
            Target::Sqs(_) => "sqs",
            Target::Pull => "pull",
        }
    }
}

/// An SQS queue and the customer's credentials for it, but for the secret
/// access key, which travels sealed beside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SqsQueue {
    pub queue_url: String,
    pub region: String,
    pub access_key_id: String,
    /// An SQS-compatible server to use instead of AWS's regional endpoint.
    pub endpoint_url: Option<String>,
}

impl SqsQueue {
    /// A FIFO queue: its name ends in `.fifo`.
    pub fn is_fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }
}

/// A new integration. Its secrets arrive sealed.
#[derive(Clone, Debug)]
pub struct NewIntegration {
    pub bot: UserId,
    pub target: Target,
    /// The SQS secret access key, sealed; required for an SQS target.
    pub sealed_aws_secret: Option<String>,
    /// `None`: every event type.
    pub event_types: Option<Vec<EventType>>,
    pub sealed_secret: String,
    pub settings: DeliverySettings,
}

/// An integration as stored, without its secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    pub id: IntegrationId,
    pub company: CompanyId,
    pub bot: UserId,
    pub target: Target,
    pub event_types: Option<Vec<EventType>>,
    pub settings: DeliverySettings,
    pub state: IntegrationState,
    pub disabled_reason: Option<String>,
    /// Until when the previous secret still signs, during a rotation.
    pub previous_secret_until: Option<UnixMicros>,
    pub failing_since: Option<UnixMicros>,
    pub last_success_at: Option<UnixMicros>,
    pub created_at: UnixMicros,
    pub updated_at: UnixMicros,
}

/// A change to an integration; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IntegrationPatch {
    /// The webhook URL, or the SQS queue URL.
    pub url: Option<String>,
    /// SQS only: the queue's region.
    pub sqs_region: Option<String>,
    /// SQS only: the access key id.
    pub sqs_access_key_id: Option<String>,
    /// SQS only: the secret access key, sealed.
    pub sealed_aws_secret: Option<String>,
    /// SQS only: the SQS-compatible endpoint (`Some(None)` returns to AWS's).
    pub sqs_endpoint_url: Option<Option<String>>,
    pub event_types: Option<Option<Vec<EventType>>>,
    pub timeout_ms: Option<Option<u32>>,
    pub retry_schedule_ms: Option<Option<Vec<u64>>>,
    pub max_in_flight: Option<Option<u32>>,
    pub full_member_lists: Option<Option<bool>>,
}

/// The state of a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up on (dead-lettered); replay sends it again.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn from_stored(text: &str) -> Self {
        match text {
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            _ => DeliveryState::Pending,
        }
    }
}

/// One attempt to deliver, as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub attempted_at: UnixMicros,
    pub duration_us: i64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// `delivered`, `failed`, `throttled`, `gone`, `refused`…
    pub outcome: String,
    pub error: Option<String>,
    /// The start of the receiver's answer, capped.
    pub response_snippet: Option<String>,
}

/// A delivery in the log, with its attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: EventId,
    pub event_type: EventType,
    pub channel_id: Option<String>,
    pub channel_seq: i64,
    pub state: DeliveryState,
    pub created_at: UnixMicros,
    pub finished_at: Option<UnixMicros>,
    pub last_error: Option<String>,
    pub attempts: Vec<Attempt>,
}

/// A page of the delivery log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryLogQuery {
    /// Only deliveries in this state.
    pub state: Option<DeliveryState>,
    /// Only deliveries with a smaller id (the cursor of the previous page).
    pub before: Option<i64>,
    /// Only deliveries of events created at or after this time.
    pub since: Option<UnixMicros>,
    /// At most this many.
    pub limit: u32,
}

/// Which events to deliver again. A range reaching back before what
/// retention has pruned is refused (invalid, naming the oldest time kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplaySelection {
    /// Events that were delivered to the integration (or dead-lettered) in this range.
    Range {
        since: UnixMicros,
        until: UnixMicros,
    },
    /// These events, each of which must have been meant for the integration.
    Events(Vec<EventId>),
}

/// What a worker needs to send one delivery.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub delivery_id: i64,
    pub lease_until: UnixMicros,
    pub event_id: EventId,
    pub event_type: EventType,
    pub company: CompanyId,
    pub channel_id: Option<String>,
    pub channel_seq: i64,
    /// When the event happened.
    pub event_time: UnixMicros,
    /// When this delivery was queued (the event's time, or the replay's).
    pub queued_at: UnixMicros,
    /// The JSON of the envelope's `data`.
    pub data: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub integration: ClaimedIntegration,
}

impl ClaimedDelivery {
    /// The lane the delivery is sent in: its channel, or its event alone for
    /// an event outside channels.
    pub fn lane(&self) -> &str {
        self.channel_id.as_deref().unwrap_or(self.event_id.as_str())
    }

    /// A `chat:message:new` delivery to a webhook at an unused port, for
    /// the tests of the workers and the envelope: delivery `id` of event
    /// `evt_<id>` (channel seq `id`), in `channel` (or alone), to
    /// integration `integration` of company `co_1` and bot `usr_bot`.
    #[doc(hidden)]
    pub fn sample(id: i64, integration: &str, channel: Option<&str>) -> ClaimedDelivery {
        ClaimedDelivery {
            delivery_id: id,
            lease_until: 0,
            event_id: EventId::from_stored(format!("evt_{id}")),
            event_type: EventType::MessageNew,
            company: CompanyId::from_stored("co_1".to_owned()),
            channel_id: channel.map(str::to_owned),
            channel_seq: id,
            event_time: 1_719_844_426_953_123,
            queued_at: 0,
            data: "{}".to_owned(),
            attempts: 0,
            integration: ClaimedIntegration {
                id: IntegrationId::from_stored(integration.to_owned()),
                bot: UserId::from_stored("usr_bot".to_owned()),
                target: Target::Webhook {
                    url: "http://127.0.0.1:1/hook".to_owned(),
                },
                sealed_secret: String::new(),
                sealed_aws_secret: None,
                sealed_previous_secret: None,
                settings: DeliverySettings::default(),
                failing_since: None,
                last_success_at: None,
            },
        }
    }
}

/// The integration a claimed delivery goes to.
#[derive(Clone, Debug)]
pub struct ClaimedIntegration {
    pub id: IntegrationId,
    pub bot: UserId,
    pub target: Target,
    pub sealed_secret: String,
    /// The SQS secret access key, sealed, for an SQS target.
    pub sealed_aws_secret: Option<String>,
    /// The previous secret, while a rotation lets it still sign.
    pub sealed_previous_secret: Option<String>,
    pub settings: DeliverySettings,
    pub failing_since: Option<UnixMicros>,
    pub last_success_at: Option<UnixMicros>,
}

/// One attempt's record and verdict, ready to be stored.
#[derive(Clone, Debug)]
pub struct Finished {
    pub claimed: ClaimedDelivery,
    pub attempt: Attempt,
    pub verdict: Verdict,
    /// More of the lane's claimed run follows this delivery (it was
    /// delivered or dead-lettered, and the worker goes on to the next): the
    /// lane moves to its next delivery but stays leased.
    pub lane_continues: bool,
}

impl Finished {
    /// When the attempt ended.
    pub fn ended_at(&self) -> UnixMicros {
        self.attempt.attempted_at + self.attempt.duration_us
    }

    /// What the verdict makes of the delivery: its state, when it finished
    /// (delivered or dead), and the error it shows. A retried or held
    /// delivery stays pending with the attempt's error or the reason.
    pub fn outcome(&self) -> (DeliveryState, Option<UnixMicros>, Option<&str>) {
        match &self.verdict {
            Verdict::Delivered => (DeliveryState::Delivered, Some(self.ended_at()), None),
            Verdict::Retry { .. } => (DeliveryState::Pending, None, self.attempt.error.as_deref()),
            Verdict::DeadLetter { reason } => (
                DeliveryState::Dead,
                Some(self.ended_at()),
                Some(reason.as_str()),
            ),
            Verdict::Disable { reason } => (DeliveryState::Pending, None, Some(reason.as_str())),
        }
    }

    /// The (integration, lane) of the delivery.
    pub fn lane(&self) -> (&str, &str) {
        (self.claimed.integration.id.as_str(), self.claimed.lane())
    }
}

/// A lane leased by this process, as the worker holding it knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLease {
    pub integration: String,
    pub lane: String,
    pub lease_until: UnixMicros,
}

/// What happened to a claimed delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The receiver took it.
    Delivered,
    /// Try again at this time (the lane waits until then).
    Retry { at: UnixMicros },
    /// Give up: the delivery is dead-lettered and its lane moves on.
    DeadLetter { reason: String },
    /// Turn the integration off; the delivery stays pending for a resume.
    Disable { reason: String },
}

/// How this process takes deliveries handed off at commit (see
/// [`DeliveryStore::hand_off_to`]).
#[derive(Clone, Debug)]
pub struct HandOff {
    /// The lease a handed-off delivery's lane is given.
    pub lease_micros: i64,
    /// The in-flight limit of an integration that sets none.
    pub default_max_in_flight: u32,
    /// Where the deliveries of each commit go, after the commit.
    pub deliveries: tokio::sync::mpsc::UnboundedSender<Vec<HandedOff>>,
}

/// A delivery handed to this process's workers by the transaction that
/// queued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandedOff {
    pub delivery_id: i64,
    pub lane: HandedLane,
}

/// How a handed-off delivery's lane stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandedLane {
    /// The lane was idle and is leased for this delivery until then.
    Leased { lease_until: UnixMicros },
    /// The lane is leased by this process's workers and the delivery comes
    /// right after `previous`, the last pending delivery before it. The run
    /// holding the lane may send it after `previous`, under its own lease,
    /// when `previous` is that run's last; otherwise it stays pending and
    /// is claimed as usual once the run's outcomes are stored.
    Behind { previous: i64 },
}

impl HandedOff {
    /// The lease the delivery was handed off with; 0 for one behind a held
    /// lane, which takes the lease of the run it joins.
    pub fn lease_until(&self) -> UnixMicros {
        match self.lane {
            HandedLane::Leased { lease_until } => lease_until,
            HandedLane::Behind { .. } => 0,
        }
    }
}

/// Which lanes a consumer of pull integrations claims: those of the bot's
/// pull integrations, or of the one it names. A bot of another company has
/// none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullScope {
    pub company: CompanyId,
    pub bot: UserId,
    pub integration: Option<IntegrationId>,
}

/// A pulled delivery as the store has it now, for an acknowledgement.
#[derive(Clone, Debug)]
pub struct PulledDelivery {
    /// As a claim returned it, with `lease_until` 0: the acknowledging
    /// caller puts in the lease its consumer was given.
    pub claimed: ClaimedDelivery,
    pub state: DeliveryState,
}

/// What wakes those who wait for deliveries, after a commit that queued some.
#[derive(Debug, Default)]
pub struct OutboxSignal {
    /// The delivery workers: one permit, so a wake-up is never lost between
    /// two of their looks.
    pub workers: tokio::sync::Notify,
    /// Consumers long-polling pull integrations: every one waiting at once
    /// (each registers before it looks, so none misses a commit).
    pub consumers: tokio::sync::Notify,
    /// People's live feeds (`GET /v2/conversations/events`): every one
    /// waiting at once, after a commit of this process that recorded channel
    /// events. Feeds also look on a timer, for events of other instances.
    pub feeds: tokio::sync::Notify,
}

impl OutboxSignal {
    /// Deliveries were queued: wakes the workers and every waiting consumer.
    pub fn deliveries_queued(&self) {
        self.workers.notify_one();
        self.consumers.notify_waiters();
    }

    /// Events were recorded: wakes every waiting feed.
    pub fn events_recorded(&self) {
        self.feeds.notify_waiters();
    }
}

/// Counts of the outbox for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Pending deliveries whose lane is due now.
    pub due: u64,
    /// Pending deliveries waiting for a retry time or behind their lane's head.
    pub waiting: u64,
    /// Pending deliveries of paused or disabled integrations.
    pub held: u64,
    /// Dead-lettered deliveries.
    pub dead: u64,
    /// Integrations turned off by the server.
    pub disabled_integrations: u64,
}

/// Integrations of bots: the API's view.
#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Creates a webhook integration for a bot of the company.
    async fn create_integration(
        &self,
        company: &CompanyId,
        new: NewIntegration,
    ) -> StoreResult<Integration>;

    /// A bot's integrations, by creation.
    async fn list_integrations(
        &self,
        company: &CompanyId,
        bot: &UserId,
    ) -> StoreResult<Vec<Integration>>;

    /// One integration of the bot.
    async fn get_integration(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
    ) -> StoreResult<Integration>;

    /// Changes an integration's target, filter or settings.
    async fn update_integration(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        patch: IntegrationPatch,
    ) -> StoreResult<Integration>;

    /// Deletes an integration; its pending deliveries are dead-lettered.
    async fn delete_integration(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
    ) -> StoreResult<()>;

    /// Pauses (`Paused`) or resumes (`Active`, also re-enabling a disabled one).
    async fn set_integration_state(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        state: IntegrationState,
    ) -> StoreResult<Integration>;

    /// Replaces the secret; the previous one keeps signing until `previous_until`.
    async fn rotate_secret(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        sealed_secret: String,
        previous_until: UnixMicros,
    ) -> StoreResult<Integration>;

    /// Queues an `integration:test` event for this integration alone.
    async fn send_test_event(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
    ) -> StoreResult<EventId>;

    /// The delivery log, newest first: the page `query` asks for. A query
    /// reaching back before what retention has pruned is refused (invalid,
    /// naming the oldest time kept).
    async fn list_deliveries(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        query: DeliveryLogQuery,
    ) -> StoreResult<Vec<DeliveryRecord>>;

    /// Queues the selected events for delivery again, with their ids. Returns how many.
    async fn replay(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        selection: ReplaySelection,
    ) -> StoreResult<u64>;

    /// These deliveries of the bot's pull integrations as they are now, by
    /// id; ids of other deliveries (another bot's, another company's, a
    /// pushed integration's, or none) are left out.
    async fn pulled_deliveries(
        &self,
        company: &CompanyId,
        bot: &UserId,
        ids: &[i64],
    ) -> StoreResult<Vec<PulledDelivery>>;

    /// Logs that these deliveries were handed to a consumer at `at` (a
    /// `fetched` attempt each; the previous fetch of one fetched again was
    /// not acknowledged in time). How many times each had been fetched
    /// before, in order.
    async fn log_fetches(&self, ids: &[i64], at: UnixMicros) -> StoreResult<Vec<u32>>;
}

/// What a claim of lane heads asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The time of the claim: lanes due by then are claimed.
    pub now: UnixMicros,
    /// Most lane heads to lease.
    pub limit: u32,
    /// How long each lease lasts.
    pub lease_micros: i64,
    /// The in-flight limit of an integration that sets none.
    pub default_max_in_flight: u32,
    /// Most deliveries claimed per lane: its head and then the pending
    /// deliveries behind it, in the order they are to be sent. The worker
    /// sends them one after another under the lane's one lease, so a busy
    /// lane costs one claim per run instead of one per event, and the lane
    /// still has one delivery in flight at a time.
    pub run: u32,
}

impl Claim {
    /// A claim of no lane: [`DeliveryStore::finish_and_claim`] with it only
    /// finishes.
    pub const NOTHING: Claim = Claim {
        now: 0,
        limit: 0,
        lease_micros: 0,
        default_max_in_flight: 0,
        run: 0,
    };
}

/// The outbox: the delivery workers' view.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Leases up to `claim.limit` lanes that are due, keeping each
    /// integration under its in-flight limit, and returns up to `claim.run`
    /// deliveries of each: the deliveries of one lane are consecutive, head
    /// first, in the order they are to be sent.
    async fn claim(&self, claim: Claim) -> StoreResult<Vec<ClaimedDelivery>>;

    /// Logs each attempt and applies its verdict, then claims as
    /// [`claim`](Self::claim) does with the slots the finished deliveries
    /// free, all in one transaction: the workers' loop in one step. A
    /// delivery whose lease was lost (claimed again after it ran out) is left
    /// alone. The claim sees the lanes as the outcomes left them (a delivered
    /// head's lane due again with its next delivery, behind lanes that were
    /// due before it). When the outcomes cannot be stored, nothing is claimed.
    async fn finish_and_claim(
        &self,
        finished: &[Finished],
        claim: Claim,
    ) -> StoreResult<Vec<ClaimedDelivery>>;

    /// [`finish_and_claim`](Self::finish_and_claim) claiming nothing.
    async fn finish(&self, finished: &[Finished]) -> StoreResult<()> {
        if finished.is_empty() {
            return Ok(());
        }
        self.finish_and_claim(finished, Claim::NOTHING)
            .await
            .map(drop)
    }

    /// Asks the store to hand this process's workers the deliveries its
    /// changes queue, after the commit, on `hand_off.deliveries`, so that
    /// they are sent without a claim: on an idle lane, leased in the
    /// transaction that queues its first delivery (within the integration's
    /// in-flight limit); on a lane this process's workers hold, behind the
    /// lane's last pending delivery ([`HandedLane::Behind`]). Only a store
    /// whose every change goes through this process can (SQLite). False
    /// when the store does not (the claims then find every delivery). Set
    /// once per store.
    fn hand_off_to(&self, hand_off: HandOff) -> bool {
        let _ = hand_off;
        false
    }

    /// The deliveries handed off, with their events and integrations, as a
    /// claim returns them (each alone in its run), in the order given; a
    /// delivery behind a held lane with no lease of its own (0).
    async fn handed_off(&self, handed: &[HandedOff]) -> StoreResult<Vec<ClaimedDelivery>> {
        let _ = handed;
        Ok(Vec::new())
    }

    /// Extends leases still held while their sends are in flight: each lane
    /// whose lease still ends exactly at `held.lease_until` (not lost to
    /// another worker) is leased until `until`. Whether each was extended,
    /// in order.
    async fn extend_leases(&self, held: &[HeldLease], until: UnixMicros) -> StoreResult<Vec<bool>>;

    /// Leases due lanes of pull integrations for a consumer that fetches
    /// them, as [`claim`](Self::claim) does for the workers: those of
    /// `scope`, up to `claim.limit` lanes within each integration's
    /// in-flight limit, each leased for `claim.lease_micros` (the visibility
    /// timeout) with its head alone, so a channel's next event is not handed
    /// out while an earlier one is held. The workers' claims never take the
    /// lanes of pull integrations.
    async fn claim_pulled(
        &self,
        scope: &PullScope,
        claim: Claim,
    ) -> StoreResult<Vec<ClaimedDelivery>>;

    /// When the next lane the workers send becomes due, if any is waiting.
    async fn next_due(&self) -> StoreResult<Option<UnixMicros>>;

    /// Counts for metrics.
    async fn outbox_stats(&self, now: UnixMicros) -> StoreResult<OutboxStats>;

    /// Signalled after every commit that queued deliveries, so workers and
    /// waiting consumers wake at once.
    fn outbox_signal(&self) -> Arc<OutboxSignal>;
}
