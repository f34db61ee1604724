//! The pull transport: a bot whose integration is of `type: "pull"` fetches
//! its events (`GET /v2/bot/events`, long polling), then acknowledges those
//! it handled or releases those it could not. Events wait in the same lanes
//! as those the workers send, so channel order, the delivery log, replay,
//! pause and dead letters are the same as for webhooks:
//!
//! - a fetch leases each lane it takes for the visibility timeout and hands
//!   out only the lane's head, so a channel's next event waits until the
//!   one before it is acknowledged (two consumers never hold one event, nor
//!   two events of one channel);
//! - an event not acknowledged within its visibility timeout is handed out
//!   again; one handed out [`MAX_FETCHES`] times and never acknowledged is
//!   dead-lettered, as SQS's redrive policy does;
//! - a receipt holds its event only while its lease does: once the event
//!   was handed out again, acknowledging the old receipt does nothing and
//!   says so (`expired`).
//!
//! A bot key fetches its own bot's events; a company key names the bot
//! with `botId`.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchboard_domain::{IntegrationId, PrincipalKind, UserId, now_micros};
use switchboard_protocol::Timestamp;
use switchboard_protocol::api::{
    AcknowledgeEventsRequest, AcknowledgeEventsResponse, PulledEvent, PulledEventsResponse,
    ReleaseEventsRequest, ReleaseEventsResponse,
};
use switchboard_store::{
    Attempt, Claim, ClaimedDelivery, DeliveryState, Finished, PullScope, Target, Verdict, envelope,
};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::AppState;
use crate::error::{ApiError, ApiResult, excerpt};
use crate::extract::{ApiJson, ApiQuery, Auth};

/// Hand-outs of one event without an acknowledgement before it is
/// dead-lettered.
pub const MAX_FETCHES: u32 = 10;
/// Longest a fetch waits for events.
const MAX_WAIT_SECONDS: u64 = 20;
/// Most events one fetch hands out, and most receipts one call takes.
const MAX_EVENTS: u32 = 100;
/// Events a fetch hands out unless it asks for another number.
const DEFAULT_EVENTS: u32 = 10;
/// How long a fetched event is held unless the fetch says otherwise.
const DEFAULT_VISIBILITY_SECONDS: u32 = 30;
/// Longest an event may be held, and longest a release may put it off (12 h, as SQS).
const MAX_HOLD_SECONDS: u32 = 43_200;
/// How often a waiting fetch looks again without being woken: events held
/// by others come back when their visibility timeout passes, which nothing
/// signals.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// `?wait=&limit=&visibilityTimeout=&integrationId=&botId=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct FetchQuery {
    /// Seconds to wait for an event when none is there, 0–20 (default 0:
    /// answer at once).
    #[param(minimum = 0, maximum = 20)]
    pub wait: Option<u64>,
    /// Most events to hand out, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Seconds each event is held for this consumer before it is handed
    /// out again, 1–43200 (default 30).
    #[param(minimum = 1, maximum = 43200)]
    pub visibility_timeout: Option<u32>,
    /// Only this pull integration's events (default, or empty: all the
    /// bot's pull integrations).
    #[param(pattern = "^[A-Za-z0-9_.:@-]{0,128}$")]
    pub integration_id: Option<String>,
    /// With a company key: the bot whose events to fetch (required). A bot
    /// key may leave it out or name its own bot. Empty counts as not given.
    #[param(pattern = "^[A-Za-z0-9_.:@-]{0,128}$")]
    pub bot_id: Option<String>,
}

/// `?botId=` of acknowledgements and releases made with a company key.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerQuery {
    /// With a company key: the bot whose events these are (required). A
    /// bot key may leave it out or name its own bot. Empty counts as not given.
    #[param(pattern = "^[A-Za-z0-9_.:@-]{0,128}$")]
    pub bot_id: Option<String>,
}

/// Fetches the bot's events from its pull integrations, waiting up to
/// `wait` seconds for one. Each is held for this consumer until its
/// visibility timeout passes; acknowledge it once handled.
#[utoipa::path(get, path = "/v2/bot/events", tag = tags::BOT_EVENTS, params(FetchQuery),
    responses((status = 200, body = PulledEventsResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn fetch_events(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<FetchQuery>,
) -> ApiResult<Json<PulledEventsResponse>> {
    let bot = consumer(&auth, query.bot_id.as_deref())?;
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ApiError::validation(format!(
            "wait: must be between 0 and {MAX_WAIT_SECONDS} seconds"
        )));
    }
    let limit = query.limit.unwrap_or(DEFAULT_EVENTS);
    if !(1..=MAX_EVENTS).contains(&limit) {
        return Err(ApiError::validation(format!(
            "limit: must be between 1 and {MAX_EVENTS}"
        )));
    }
    let visibility = query
        .visibility_timeout
        .unwrap_or(DEFAULT_VISIBILITY_SECONDS);
    if !(1..=MAX_HOLD_SECONDS).contains(&visibility) {
        return Err(ApiError::validation(format!(
            "visibilityTimeout: must be between 1 and {MAX_HOLD_SECONDS} seconds"
        )));
    }
    let integration = query
        .integration_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| {
            IntegrationId::parse(id).ok_or_else(|| {
                ApiError::validation(format!(
                    "integrationId: `{}` is not an integration id",
                    excerpt(id)
                ))
            })
        })
        .transpose()?;
    // A bot with nothing to fetch from is told so at once, not kept waiting.
    let pulled = app
        .store
        .list_integrations(auth.company(), &bot)
        .await?
        .into_iter()
        .any(|kept| {
            kept.target == Target::Pull && integration.as_ref().is_none_or(|id| *id == kept.id)
        });
    if !pulled {
        return Err(ApiError::not_found(match &integration {
            Some(id) => format!("integrationId: the bot has no pull integration {id}"),
            None => {
                "the bot has no pull integration; create one with `\"type\": \"pull\"`".to_owned()
            }
        }));
    }
    let scope = PullScope {
        company: auth.company().clone(),
        bot,
        integration,
    };
    // The answer must leave before the request's own time runs out.
    let wait = Duration::from_secs(wait).min(
        app.limits
            .request_timeout
            .saturating_sub(Duration::from_secs(1)),
    );
    let deadline = Instant::now() + wait;
    let signal = app.store.outbox_signal();
    loop {
        // Registered before looking, so a commit in between is not missed.
        let woken = signal.consumers.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let events = hand_out(&app, &scope, limit, visibility).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if !events.is_empty() || left.is_zero() {
            return Ok(Json(PulledEventsResponse { events }));
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(left.min(LOOK_AGAIN)) => {}
        }
    }
}

/// Acknowledges handled events: each is delivered, and its channel's next
/// event can be handed out.
#[utoipa::path(post, path = "/v2/bot/events/ack", tag = tags::BOT_EVENTS, params(ConsumerQuery),
    request_body = AcknowledgeEventsRequest,
    responses((status = 200, body = AcknowledgeEventsResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn acknowledge_events(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<ConsumerQuery>,
    request: ApiJson<AcknowledgeEventsRequest>,
) -> ApiResult<Json<AcknowledgeEventsResponse>> {
    let bot = consumer(&auth, query.bot_id.as_deref())?;
    let (done, expired) = settle(
        &app,
        &auth,
        &bot,
        &request.body.receipts,
        Settlement::Acknowledged,
    )
    .await?;
    Ok(Json(AcknowledgeEventsResponse {
        acknowledged: done,
        expired,
    }))
}

/// Releases events the bot could not handle now: each is handed out again
/// after `retryAfterSeconds`, and its channel's later events wait for it.
#[utoipa::path(post, path = "/v2/bot/events/release", tag = tags::BOT_EVENTS, params(ConsumerQuery),
    request_body = ReleaseEventsRequest,
    responses((status = 200, body = ReleaseEventsResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn release_events(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<ConsumerQuery>,
    request: ApiJson<ReleaseEventsRequest>,
) -> ApiResult<Json<ReleaseEventsResponse>> {
    let bot = consumer(&auth, query.bot_id.as_deref())?;
    let delay = request.body.retry_after_seconds.unwrap_or(0);
    if delay > MAX_HOLD_SECONDS {
        return Err(ApiError::validation(format!(
            "retryAfterSeconds: must be between 0 and {MAX_HOLD_SECONDS}"
        )));
    }
    let (done, expired) = settle(
        &app,
        &auth,
        &bot,
        &request.body.receipts,
        Settlement::Released {
            delay_micros: i64::from(delay) * 1_000_000,
        },
    )
    .await?;
    Ok(Json(ReleaseEventsResponse {
        released: done,
        expired,
    }))
}

/// The bot whose events a request takes: a bot key's own, or the one a
/// company key names.
fn consumer(auth: &Auth, bot_id: Option<&str>) -> Result<UserId, ApiError> {
    match (&auth.0.kind, bot_id.filter(|id| !id.is_empty())) {
        (PrincipalKind::Bot(bot), None) => Ok(bot.clone()),
        (PrincipalKind::Bot(bot), Some(named)) if named == bot.as_str() => Ok(bot.clone()),
        (PrincipalKind::Bot(_), Some(_)) => Err(ApiError::forbidden(
            "botId: a bot key fetches its own bot's events only",
        )),
        (PrincipalKind::Company { .. }, Some(named)) => UserId::parse(named).ok_or_else(|| {
            ApiError::validation(format!("botId: `{}` is not a user id", excerpt(named)))
        }),
        (PrincipalKind::Company { .. }, None) => Err(ApiError::validation(
            "botId: is required with a company key (the bot whose events these are)",
        )),
        (PrincipalKind::User(_), _) => Err(ApiError::forbidden(
            "these routes need a bot key, or a company key and botId",
        )),
    }
}

/// Claims up to `limit` events for the consumer, logs each hand-out, and
/// dead-letters those handed out too often already.
async fn hand_out(
    app: &AppState,
    scope: &PullScope,
    limit: u32,
    visibility_seconds: u32,
) -> ApiResult<Vec<PulledEvent>> {
    let now = now_micros();
    let claimed = app
        .store
        .claim_pulled(
            scope,
            Claim {
                now,
                limit,
                lease_micros: i64::from(visibility_seconds) * 1_000_000,
                default_max_in_flight: switchboard_domain::limits::MAX_IN_FLIGHT_PER_INTEGRATION,
                run: 1,
            },
        )
        .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = claimed.iter().map(|c| c.delivery_id).collect();
    let fetched_before = app.store.log_fetches(&ids, now).await?;
    let mut events = Vec::with_capacity(claimed.len());
    let mut dead = Vec::new();
    for (delivery, before) in claimed.into_iter().zip(fetched_before) {
        if before >= MAX_FETCHES {
            dead.push(settled(
                delivery,
                now,
                "dead",
                Verdict::DeadLetter {
                    reason: format!(
                        "handed out {before} times and never acknowledged within its visibility timeout"
                    ),
                },
            ));
            continue;
        }
        let body = envelope::body(&delivery).map_err(|err| ApiError::internal(&err))?;
        let event = serde_json::from_slice(&body).map_err(|err| ApiError::internal(&err))?;
        events.push(PulledEvent {
            receipt: Receipt::of(&delivery, now).to_string(),
            receipt_expires_at: Timestamp::from_unix_micros(delivery.lease_until),
            event,
        });
    }
    metrics::counter!("switchboard_pull_events_total", "outcome" => "fetched")
        .increment(events.len() as u64);
    if !dead.is_empty() {
        metrics::counter!("switchboard_pull_events_total", "outcome" => "dead")
            .increment(dead.len() as u64);
        app.store.finish(&dead).await?;
    }
    Ok(events)
}

/// What a consumer says of events it was handed.
#[derive(Clone, Copy)]
enum Settlement {
    Acknowledged,
    Released { delay_micros: i64 },
}

/// Records the settlement of each receipt's event while the receipt still
/// holds it; how many were settled, and the receipts that no longer held
/// their event.
async fn settle(
    app: &AppState,
    auth: &Auth,
    bot: &UserId,
    receipts: &[String],
    settlement: Settlement,
) -> ApiResult<(u64, Vec<String>)> {
    if receipts.is_empty() || receipts.len() > MAX_EVENTS as usize {
        return Err(ApiError::validation(format!(
            "receipts: give 1 to {MAX_EVENTS} receipts"
        )));
    }
    // A receipt that is not one holds nothing: it is answered as expired.
    let parsed: Vec<Option<Receipt>> = receipts.iter().map(|text| Receipt::parse(text)).collect();
    let ids: Vec<i64> = parsed
        .iter()
        .flatten()
        .map(|receipt| receipt.delivery)
        .collect();
    let company = auth.company();
    let now = now_micros();
    let held = app.store.pulled_deliveries(company, bot, &ids).await?;
    let finished: Vec<Finished> = parsed
        .iter()
        .flatten()
        .filter_map(|receipt| {
            let pulled = held
                .iter()
                .find(|p| p.claimed.delivery_id == receipt.delivery)?;
            (pulled.state == DeliveryState::Pending).then_some(())?;
            let mut claimed = pulled.claimed.clone();
            claimed.lease_until = receipt.lease_until;
            let (outcome, verdict) = match settlement {
                Settlement::Acknowledged => ("acknowledged", Verdict::Delivered),
                Settlement::Released { delay_micros } => (
                    "released",
                    Verdict::Retry {
                        at: now + delay_micros,
                    },
                ),
            };
            let mut finished = settled(claimed, receipt.fetched_at, outcome, verdict);
            finished.attempt.duration_us = (now - receipt.fetched_at).max(0);
            Some(finished)
        })
        .collect();
    app.store.finish(&finished).await?;
    let after = app.store.pulled_deliveries(company, bot, &ids).await?;
    let mut done = 0;
    let mut expired = Vec::new();
    for (receipt, text) in parsed.iter().zip(receipts) {
        let Some(receipt) = receipt else {
            expired.push(text.clone());
            continue;
        };
        // The store took the outcome when it logged the attempt.
        let attempts = |list: &[switchboard_store::PulledDelivery]| {
            list.iter()
                .find(|p| p.claimed.delivery_id == receipt.delivery)
                .map(|p| p.claimed.attempts)
        };
        let settled_now = finished
            .iter()
            .any(|f| f.claimed.delivery_id == receipt.delivery)
            && attempts(&after) > attempts(&held);
        if settled_now {
            done += 1;
        } else {
            expired.push(text.clone());
        }
    }
    let outcome = match settlement {
        Settlement::Acknowledged => "acknowledged",
        Settlement::Released { .. } => "released",
    };
    metrics::counter!("switchboard_pull_events_total", "outcome" => outcome).increment(done);
    Ok((done, expired))
}

/// The outcome of a pulled delivery, as the store records it.
fn settled(claimed: ClaimedDelivery, at: i64, outcome: &str, verdict: Verdict) -> Finished {
    let error = match &verdict {
        Verdict::DeadLetter { reason } => Some(reason.clone()),
        _ => None,
    };
    Finished {
        claimed,
        attempt: Attempt {
            attempted_at: at,
            duration_us: 0,
            status_code: None,
            outcome: outcome.to_owned(),
            error,
            response_snippet: None,
        },
        verdict,
        lane_continues: false,
    }
}

/// Names one hand-out of an event: its delivery, the lease it was given
/// (which the acknowledgement must still find on the lane) and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Receipt {
    delivery: i64,
    lease_until: i64,
    fetched_at: i64,
}

impl Receipt {
    fn of(delivery: &ClaimedDelivery, fetched_at: i64) -> Self {
        Receipt {
            delivery: delivery.delivery_id,
            lease_until: delivery.lease_until,
            fetched_at,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix("r1.")?.split('.');
        let mut number = || parts.next()?.parse::<i64>().ok();
        let receipt = Receipt {
            delivery: number()?,
            lease_until: number()?,
            fetched_at: number()?,
        };
        parts.next().is_none().then_some(receipt)
    }
}

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "r1.{}.{}.{}",
            self.delivery, self.lease_until, self.fetched_at
        )
    }
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(fetch_events))
        .routes(routes!(acknowledge_events))
        .routes(routes!(release_events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_read_back_and_refuse_anything_else() {
        let receipt = Receipt {
            delivery: 42,
            lease_until: 1_700_000_030_000_000,
            fetched_at: 1_700_000_000_000_000,
        };
        assert_eq!(Receipt::parse(&receipt.to_string()), Some(receipt));
        for bad in [
            "",
            "r1.",
            "r1.1.2",
            "r1.1.2.3.4",
            "r2.1.2.3",
            "r1.a.2.3",
            "1.2.3",
        ] {
            assert_eq!(Receipt::parse(bad), None, "{bad}");
        }
    }
}
