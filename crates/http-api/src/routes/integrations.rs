//! Integrations of a bot: where its events are delivered, and the operations
//! on them (test, pause, resume, rotate the secret, the delivery log, replay).
//! Every route needs a company key.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchboard_domain::credentials::new_webhook_secret;
use switchboard_domain::limits::{
    MAX_DELIVERY_TIMEOUT_MS, MAX_IN_FLIGHT_PER_INTEGRATION, MAX_REPLAY_EVENT_IDS,
    MAX_RETRY_DELAY_MS, MAX_RETRY_DELAYS, MIN_DELIVERY_TIMEOUT_MS,
};
use switchboard_domain::{EventId, IntegrationId, UserId, now_micros, validation};
use switchboard_protocol::api::*;
use switchboard_protocol::{EventType, Timestamp};
use switchboard_store::{
    DeliveryLogQuery, DeliverySettings, DeliveryState, Integration, IntegrationPatch,
    IntegrationState, NewIntegration, ReplaySelection, SqsQueue, Target,
};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_unset, ok, tags};
use crate::AppState;
use crate::error::{ApiError, ApiResult, excerpt};
use crate::extract::{ApiJson, ApiQuery, CompanyKey};
use crate::paths::{BotPath, IntegrationPath};

/// Longest a rotated-out secret may keep signing.
const MAX_PREVIOUS_SECRET_SECONDS: u64 = 7 * 24 * 3_600;
/// How long a rotated-out secret keeps signing by default.
const DEFAULT_PREVIOUS_SECRET_SECONDS: u64 = 24 * 3_600;

/// The bot's integrations.
#[utoipa::path(get, path = "/v2/users/bots/{botId}/integrations", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path)),
    responses((status = 200, body = IntegrationListResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_integrations(
    State(app): State<AppState>,
    operator: CompanyKey,
    BotPath { bot }: BotPath,
) -> ApiResult<Json<IntegrationListResponse>> {
    let integrations = app.store.list_integrations(&operator.company, &bot).await?;
    Ok(Json(IntegrationListResponse {
        integrations: integrations.into_iter().map(view).collect(),
    }))
}

/// Creates a webhook or SQS integration. The signing secret is in this response only.
#[utoipa::path(post, path = "/v2/users/bots/{botId}/integrations", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path)), request_body = CreateIntegrationRequest,
    responses((status = 200, body = IntegrationResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn create_integration(
    State(app): State<AppState>,
    operator: CompanyKey,
    BotPath { bot }: BotPath,
    request: ApiJson<CreateIntegrationRequest>,
) -> ApiResult<Json<IntegrationResponse>> {
    let company = &operator.company;
    let body = request.body;
    let fields = IntegrationFields {
        url: body.url,
        queue_url: body.queue_url,
        region: body.region,
        access_key_id: body.access_key_id,
        secret_access_key: body.secret_access_key,
        endpoint_url: body.endpoint_url,
        event_types: body.event_types,
        timeout_ms: body.timeout_ms,
        retry_schedule_ms: body.retry_schedule_ms,
        max_in_flight: body.max_in_flight,
        full_member_lists: body.full_member_lists,
    };
    let kind = match body.integration_type.as_str() {
        "webhook" => Kind::Webhook,
        "sqs" => Kind::Sqs,
        "pull" => Kind::Pull,
        other => {
            return Err(ApiError::validation(format!(
                "type: `{other}` is not an integration type; use `webhook`, `sqs` or `pull`"
            )));
        }
    };
    let checked = check_fields("", kind, &fields)?;
    let required = |value: Option<String>, name: &str| {
        value.ok_or_else(|| {
            ApiError::validation(format!(
                "{name}: is required for {} integration",
                kind.article()
            ))
        })
    };
    let (target, aws_secret) = match kind {
        Kind::Webhook => (
            Target::Webhook {
                url: required(fields.url, "url")?,
            },
            None,
        ),
        Kind::Sqs => (
            Target::Sqs(SqsQueue {
                queue_url: required(fields.queue_url, "queueUrl")?,
                region: required(fields.region, "region")?,
                access_key_id: required(fields.access_key_id, "accessKeyId")?,
                endpoint_url: fields.endpoint_url,
            }),
            Some(required(fields.secret_access_key, "secretAccessKey")?),
        ),
        Kind::Pull => (Target::Pull, None),
    };
    let secret = new_webhook_secret();
    let new = NewIntegration {
        bot,
        target,
        sealed_aws_secret: aws_secret.map(|key| app.secrets.seal(&key)),
        event_types: checked.event_types,
        sealed_secret: app.secrets.seal(secret.expose()),
        settings: DeliverySettings {
            timeout_ms: fields.timeout_ms,
            retry_schedule_ms: fields.retry_schedule_ms,
            max_in_flight: fields.max_in_flight,
            full_member_lists: fields.full_member_lists,
        },
    };
    let integration = app.store.create_integration(company, new).await?;
    Ok(Json(IntegrationResponse {
        integration: view(integration),
        secret: Some(secret.expose().to_owned()),
    }))
}

/// One integration.
#[utoipa::path(get, path = "/v2/users/bots/{botId}/integrations/{integrationId}", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path), ("integrationId" = String, Path)),
    responses((status = 200, body = IntegrationResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn get_integration(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
) -> ApiResult<Json<IntegrationResponse>> {
    let integration = app
        .store
        .get_integration(&operator.company, &bot, &id)
        .await?;
    Ok(Json(IntegrationResponse {
        integration: view(integration),
        secret: None,
    }))
}

/// Changes the target (URL; or queue, region, credentials, endpoint), the
/// event types or the delivery settings. The type cannot change.
#[utoipa::path(patch, path = "/v2/users/bots/{botId}/integrations/{integrationId}", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path), ("integrationId" = String, Path)), request_body = UpdateIntegrationRequest,
    responses((status = 200, body = IntegrationResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn update_integration(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
    request: ApiJson<UpdateIntegrationRequest>,
) -> ApiResult<Json<IntegrationResponse>> {
    let company = &operator.company;
    let UpdateIntegrationRequest { set, unset } = request.body;
    let set = set.unwrap_or_default();
    // The type never changes, so the fields it allows can be checked first.
    let kind = match app.store.get_integration(company, &bot, &id).await?.target {
        Target::Webhook { .. } => Kind::Webhook,
        Target::Sqs(_) => Kind::Sqs,
        Target::Pull => Kind::Pull,
    };
    let checked = check_fields("set.", kind, &set)?;
    if set.access_key_id.is_some() && set.secret_access_key.is_none() {
        return Err(ApiError::validation(
            "set.secretAccessKey: give it with a new accessKeyId",
        ));
    }
    let unsettable = match kind {
        Kind::Webhook => WEBHOOK_INTEGRATION_UNSETTABLE,
        Kind::Sqs => SQS_INTEGRATION_UNSETTABLE,
        Kind::Pull => PULL_INTEGRATION_UNSETTABLE,
    };
    if let Some(name) = unset.iter().find(|name| {
        SQS_INTEGRATION_UNSETTABLE.contains(&name.as_str()) && !unsettable.contains(&name.as_str())
    }) {
        return Err(ApiError::conflict(format!(
            "unset: `{name}` is not a field of {} integration",
            kind.article()
        )));
    }
    let unset = check_unset(
        &unset,
        unsettable,
        &[
            ("endpointUrl", set.endpoint_url.is_some()),
            ("eventTypes", set.event_types.is_some()),
            ("timeoutMs", set.timeout_ms.is_some()),
            ("retryScheduleMs", set.retry_schedule_ms.is_some()),
            ("maxInFlight", set.max_in_flight.is_some()),
            ("fullMemberLists", set.full_member_lists.is_some()),
        ],
    )?;
    let cleared = |name: &str| unset.iter().any(|field| field == name);
    let patch = IntegrationPatch {
        url: set.url.or(set.queue_url),
        sqs_region: set.region,
        sqs_access_key_id: set.access_key_id,
        sealed_aws_secret: set.secret_access_key.map(|key| app.secrets.seal(&key)),
        sqs_endpoint_url: set
            .endpoint_url
            .map(Some)
            .or_else(|| cleared("endpointUrl").then_some(None)),
        event_types: checked
            .event_types
            .map(Some)
            .or_else(|| cleared("eventTypes").then_some(None)),
        timeout_ms: set
            .timeout_ms
            .map(Some)
            .or_else(|| cleared("timeoutMs").then_some(None)),
        retry_schedule_ms: set
            .retry_schedule_ms
            .map(Some)
            .or_else(|| cleared("retryScheduleMs").then_some(None)),
        max_in_flight: set
            .max_in_flight
            .map(Some)
            .or_else(|| cleared("maxInFlight").then_some(None)),
        full_member_lists: set
            .full_member_lists
            .map(Some)
            .or_else(|| cleared("fullMemberLists").then_some(None)),
    };
    let integration = app
        .store
        .update_integration(company, &bot, &id, patch)
        .await?;
    Ok(Json(IntegrationResponse {
        integration: view(integration),
        secret: None,
    }))
}

/// Deletes the integration; what it still had to deliver is dead-lettered.
#[utoipa::path(delete, path = "/v2/users/bots/{botId}/integrations/{integrationId}", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path), ("integrationId" = String, Path)),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn delete_integration(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
) -> ApiResult<Json<OkResponse>> {
    app.store
        .delete_integration(&operator.company, &bot, &id)
        .await?;
    Ok(ok())
}

/// Queues an `integration:test` event for this integration alone.
#[utoipa::path(post, path = "/v2/users/bots/{botId}/integrations/{integrationId}/test", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path), ("integrationId" = String, Path)),
    responses((status = 200, body = TestEventResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn test_integration(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
) -> ApiResult<Json<TestEventResponse>> {
    let event = app
        .store
        .send_test_event(&operator.company, &bot, &id)
        .await?;
    Ok(Json(TestEventResponse {
        event_id: event.into_string(),
    }))
}

/// Pauses deliveries; events keep being queued and are sent after a resume.
#[utoipa::path(post, path = "/v2/users/bots/{botId}/integrations/{integrationId}/pause", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path), ("integrationId" = String, Path)),
    responses((status = 200, body = IntegrationResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn pause_integration(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
) -> ApiResult<Json<IntegrationResponse>> {
    set_state(&app, &operator, &bot, &id, IntegrationState::Paused).await
}

/// Resumes a paused or disabled integration; what waited is sent at once.
#[utoipa::path(post, path = "/v2/users/bots/{botId}/integrations/{integrationId}/resume", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path), ("integrationId" = String, Path)),
    responses((status = 200, body = IntegrationResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn resume_integration(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
) -> ApiResult<Json<IntegrationResponse>> {
    set_state(&app, &operator, &bot, &id, IntegrationState::Active).await
}

/// Makes a new signing secret, shown in this response only. Deliveries carry
/// signatures by both secrets until the previous one expires.
#[utoipa::path(post, path = "/v2/users/bots/{botId}/integrations/{integrationId}/rotate-secret",
    tag = tags::INTEGRATIONS, params(("botId" = String, Path), ("integrationId" = String, Path)),
    request_body = RotateSecretRequest,
    responses((status = 200, body = IntegrationResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
    request: ApiJson<RotateSecretRequest>,
) -> ApiResult<Json<IntegrationResponse>> {
    let company = &operator.company;
    let seconds = request
        .body
        .previous_secret_valid_seconds
        .unwrap_or(DEFAULT_PREVIOUS_SECRET_SECONDS);
    if seconds > MAX_PREVIOUS_SECRET_SECONDS {
        return Err(ApiError::validation(format!(
            "previousSecretValidSeconds: must be at most {MAX_PREVIOUS_SECRET_SECONDS}"
        )));
    }
    let secret = new_webhook_secret();
    let until = now_micros() + (seconds as i64) * 1_000_000;
    let integration = app
        .store
        .rotate_secret(company, &bot, &id, app.secrets.seal(secret.expose()), until)
        .await?;
    Ok(Json(IntegrationResponse {
        integration: view(integration),
        secret: Some(secret.expose().to_owned()),
    }))
}

/// `?status=&limit=&cursor=&since=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this state: `pending`, `delivered` or `dead`.
    #[param(pattern = "^(pending|delivered|dead)$")]
    pub status: Option<String>,
    /// Page size, 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page (empty: the first page).
    #[param(pattern = "^[0-9]{0,18}$")]
    pub cursor: Option<String>,
    /// Only deliveries of events created at or after this time (RFC 3339).
    /// Refused with 400 when retention has pruned events after it.
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
}

/// The delivery log, newest first: each event with every attempt.
#[utoipa::path(get, path = "/v2/users/bots/{botId}/integrations/{integrationId}/deliveries",
    tag = tags::INTEGRATIONS,
    params(("botId" = String, Path), ("integrationId" = String, Path), DeliveryQuery),
    responses((status = 200, body = DeliveryListResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_deliveries(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryListResponse>> {
    let company = &operator.company;
    let state = match query.status.as_deref() {
        None => None,
        Some("pending") => Some(DeliveryState::Pending),
        Some("delivered") => Some(DeliveryState::Delivered),
        Some("dead") => Some(DeliveryState::Dead),
        Some(other) => {
            return Err(ApiError::validation(format!(
                "status: `{other}` is not a delivery status; use pending, delivered or dead"
            )));
        }
    };
    let page = validation::page(query.limit, None)?;
    // An empty cursor is no cursor: the first page. A cursor is at most 18
    // digits, so it always fits.
    let before = query
        .cursor
        .as_deref()
        .filter(|cursor| !cursor.is_empty())
        .map(|cursor| {
            cursor
                .parse::<i64>()
                .ok()
                .filter(|_| cursor.len() <= 18 && cursor.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "cursor: `{}` is not a cursor from this log",
                        excerpt(cursor)
                    ))
                })
        })
        .transpose()?;
    let records = app
        .store
        .list_deliveries(
            company,
            &bot,
            &id,
            DeliveryLogQuery {
                state,
                before,
                since: query.since.map(|since| since.unix_micros()),
                limit: page.limit,
            },
        )
        .await?;
    let next_cursor = (records.len() as u32 == page.limit)
        .then(|| records.last().map(|record| record.id.to_string()))
        .flatten();
    Ok(Json(DeliveryListResponse {
        deliveries: records
            .into_iter()
            .map(|record| DeliveryView {
                delivery_id: record.id.to_string(),
                event_id: record.event_id.into_string(),
                event_type: record.event_type.as_str().to_owned(),
                channel_seq: record.channel_id.as_ref().map(|_| record.channel_seq),
                channel_id: record.channel_id,
                status: record.state.as_str().to_owned(),
                created_at: Timestamp::from_unix_micros(record.created_at),
                finished_at: record.finished_at.map(Timestamp::from_unix_micros),
                last_error: record.last_error,
                attempts: record
                    .attempts
                    .into_iter()
                    .map(|attempt| AttemptView {
                        attempted_at: Timestamp::from_unix_micros(attempt.attempted_at),
                        duration_ms: attempt.duration_us as f64 / 1_000.0,
                        status_code: attempt.status_code,
                        outcome: attempt.outcome,
                        error: attempt.error,
                        response_snippet: attempt.response_snippet,
                    })
                    .collect(),
            })
            .collect(),
        next_cursor,
    }))
}

/// Delivers events again, with their original ids: those of a time range
/// (`since`, `until`) or the given `eventIds`.
#[utoipa::path(post, path = "/v2/users/bots/{botId}/integrations/{integrationId}/replay", tag = tags::INTEGRATIONS,
    params(("botId" = String, Path), ("integrationId" = String, Path)), request_body = ReplayRequest,
    responses((status = 200, body = ReplayResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn replay(
    State(app): State<AppState>,
    operator: CompanyKey,
    IntegrationPath { bot, id }: IntegrationPath,
    request: ApiJson<ReplayRequest>,
) -> ApiResult<Json<ReplayResponse>> {
    let company = &operator.company;
    let selection = match request.body {
        ReplayRequest {
            since: Some(since),
            until,
            event_ids: None,
        } => {
            let until = until
                .map(|until| until.unix_micros())
                .unwrap_or_else(now_micros);
            // `until` before `since` is an empty range: nothing to replay.
            ReplaySelection::Range {
                since: since.unix_micros(),
                until: until.max(since.unix_micros() - 1),
            }
        }
        ReplayRequest {
            since: None,
            until: None,
            event_ids: Some(event_ids),
        } => {
            if event_ids.is_empty() || event_ids.len() > MAX_REPLAY_EVENT_IDS {
                return Err(ApiError::validation(format!(
                    "eventIds: give 1 to {MAX_REPLAY_EVENT_IDS} event ids"
                )));
            }
            let ids = event_ids
                .iter()
                .enumerate()
                .map(|(index, event)| {
                    EventId::parse(event).ok_or_else(|| {
                        ApiError::validation(format!(
                            "eventIds[{index}]: `{event}` is not an event id"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            ReplaySelection::Events(ids)
        }
        _ => {
            return Err(ApiError::validation(
                "body: give either `since` (and `until`) or `eventIds`",
            ));
        }
    };
    let queued = app.store.replay(company, &bot, &id, selection).await?;
    Ok(Json(ReplayResponse { queued }))
}

async fn set_state(
    app: &AppState,
    operator: &CompanyKey,
    bot: &UserId,
    id: &IntegrationId,
    state: IntegrationState,
) -> ApiResult<Json<IntegrationResponse>> {
    let integration = app
        .store
        .set_integration_state(&operator.company, bot, id, state)
        .await?;
    Ok(Json(IntegrationResponse {
        integration: view(integration),
        secret: None,
    }))
}

/// What [`check_fields`] normalised.
struct CheckedFields {
    event_types: Option<Vec<EventType>>,
}

/// The kinds of integration, for checking which fields a body may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Webhook,
    Sqs,
    Pull,
}

impl Kind {
    fn article(self) -> &'static str {
        match self {
            Kind::Webhook => "a webhook",
            Kind::Sqs => "an SQS",
            Kind::Pull => "a pull",
        }
    }
}

fn check_fields(
    prefix: &str,
    kind: Kind,
    fields: &IntegrationFields,
) -> Result<CheckedFields, ApiError> {
    let webhook_only = [("url", fields.url.is_some())];
    let sqs_only = [
        ("queueUrl", fields.queue_url.is_some()),
        ("region", fields.region.is_some()),
        ("accessKeyId", fields.access_key_id.is_some()),
        ("secretAccessKey", fields.secret_access_key.is_some()),
        ("endpointUrl", fields.endpoint_url.is_some()),
    ];
    // What the server does when it sends: nothing of a pull integration's.
    let sent_only = [
        ("timeoutMs", fields.timeout_ms.is_some()),
        ("retryScheduleMs", fields.retry_schedule_ms.is_some()),
    ];
    let foreign: Vec<(&str, bool)> = match kind {
        Kind::Webhook => sqs_only.to_vec(),
        Kind::Sqs => webhook_only.to_vec(),
        Kind::Pull => [&webhook_only[..], &sqs_only, &sent_only].concat(),
    };
    if let Some((name, _)) = foreign.iter().find(|(_, given)| *given) {
        let message = format!(
            "{prefix}{name}: is not a field of {} integration",
            kind.article()
        );
        // On create the body names the type; on a change it is the stored
        // integration's, so the request conflicts with what exists.
        return Err(if prefix.is_empty() {
            ApiError::validation(message)
        } else {
            ApiError::conflict(message)
        });
    }
    let field = |name: &str| format!("{prefix}{name}");
    if let Some(url) = &fields.url {
        validation::url(&field("url"), url)?;
    }
    if let Some(url) = &fields.queue_url {
        validation::sqs_queue_url(&field("queueUrl"), url)?;
    }
    if let Some(region) = &fields.region {
        validation::aws_region(&field("region"), region)?;
    }
    if let Some(key_id) = &fields.access_key_id {
        validation::aws_access_key_id(&field("accessKeyId"), key_id)?;
    }
    if let Some(key) = &fields.secret_access_key {
        validation::aws_secret_access_key(&field("secretAccessKey"), key)?;
    }
    if let Some(url) = &fields.endpoint_url {
        validation::url(&field("endpointUrl"), url)?;
    }
    if let Some(timeout) = fields.timeout_ms
        && !(MIN_DELIVERY_TIMEOUT_MS..=MAX_DELIVERY_TIMEOUT_MS).contains(&timeout)
    {
        return Err(ApiError::validation(format!(
            "{prefix}timeoutMs: must be between {MIN_DELIVERY_TIMEOUT_MS} and {MAX_DELIVERY_TIMEOUT_MS}"
        )));
    }
    if let Some(max) = fields.max_in_flight
        && !(1..=MAX_IN_FLIGHT_PER_INTEGRATION).contains(&max)
    {
        return Err(ApiError::validation(format!(
            "{prefix}maxInFlight: must be between 1 and {MAX_IN_FLIGHT_PER_INTEGRATION}"
        )));
    }
    if let Some(schedule) = &fields.retry_schedule_ms
        && (schedule.len() > MAX_RETRY_DELAYS
            || schedule
                .iter()
                .any(|delay| !(1..=MAX_RETRY_DELAY_MS).contains(delay)))
    {
        return Err(ApiError::validation(format!(
            "{prefix}retryScheduleMs: give at most {MAX_RETRY_DELAYS} delays, each from 1 ms to {MAX_RETRY_DELAY_MS} ms (a day)"
        )));
    }
    let event_types = match &fields.event_types {
        None => None,
        Some(names) => Some(
            names
                .iter()
                .enumerate()
                .map(|(index, name)| match EventType::from(name.as_str()) {
                    EventType::Other(_) => Err(ApiError::validation(format!(
                        "{prefix}eventTypes[{index}]: `{name}` is not an event type"
                    ))),
                    known => Ok(known),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(CheckedFields { event_types })
}

fn view(integration: Integration) -> IntegrationView {
    let integration_type = integration.target.kind().to_owned();
    let (url, queue) = match integration.target {
        Target::Webhook { url } => (Some(url), None),
        Target::Sqs(queue) => (None, Some(queue)),
        Target::Pull => (None, None),
    };
    IntegrationView {
        integration_id: integration.id.into_string(),
        bot_id: integration.bot.into_string(),
        integration_type,
        url,
        fifo: queue.as_ref().map(SqsQueue::is_fifo),
        queue_url: queue.as_ref().map(|queue| queue.queue_url.clone()),
        region: queue.as_ref().map(|queue| queue.region.clone()),
        access_key_id: queue.as_ref().map(|queue| queue.access_key_id.clone()),
        endpoint_url: queue.and_then(|queue| queue.endpoint_url),
        event_types: integration
            .event_types
            .map(|types| types.iter().map(|t| t.as_str().to_owned()).collect()),
        state: integration.state.as_str().to_owned(),
        disabled_reason: integration.disabled_reason,
        timeout_ms: integration.settings.timeout_ms,
        retry_schedule_ms: integration.settings.retry_schedule_ms,
        max_in_flight: integration.settings.max_in_flight,
        full_member_lists: integration.settings.full_member_lists,
        previous_secret_expires_at: integration
            .previous_secret_until
            .filter(|until| *until > now_micros())
            .map(Timestamp::from_unix_micros),
        last_success_at: integration.last_success_at.map(Timestamp::from_unix_micros),
        failing_since: integration.failing_since.map(Timestamp::from_unix_micros),
        created_at: Timestamp::from_unix_micros(integration.created_at),
        updated_at: Timestamp::from_unix_micros(integration.updated_at),
    }
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_integrations, create_integration))
        .routes(routes!(
            get_integration,
            update_integration,
            delete_integration
        ))
        .routes(routes!(test_integration))
        .routes(routes!(pause_integration))
        .routes(routes!(resume_integration))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(replay))
}
