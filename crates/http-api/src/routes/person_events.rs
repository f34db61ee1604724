//! A person's live feed, `GET /v2/conversations/events`: the events of the
//! channels they are a member of (and the `chat:member:removed` that takes
//! them out of one), as Server-Sent Events, as they are committed — what
//! the web console shows live.
//!
//! The stream:
//! - `event: ready` first, once the feed is open (`data: {"cursor": …,
//!   "userId": …}`, the person the feed is for), so a client knows from when
//!   on it hears everything;
//! - one event per channel event: `event:` the event type, `id:` the cursor
//!   to resume from, `data:` a [`PersonEventBody`];
//! - `event: typing` when someone starts or stops typing in one of the
//!   person's channels (`data:` a [`TypingChangeBody`]);
//! - a comment every 15 s, so proxies and clients see the stream alive.
//!
//! **Resuming.** A client that reconnects sends the last `id:` it got as
//! `Last-Event-ID` (browsers' `EventSource` does) or as `?cursor=`; without
//! either the feed starts now. The cursor is an opaque text. The feed reads
//! from a little before the cursor ([`LOOKBACK_MICROS`]), because a change
//! that began earlier may commit later (several instances on PostgreSQL),
//! so an event may come twice across a reconnection — never twice on one
//! stream: dedupe on the event's `id`. Events pruned by retention are gone.
//!
//! **Waking.** A commit of this process that records events wakes every
//! feed at once; feeds also look every second, for events committed by
//! other instances.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_domain::{Actor, ChannelId, now_micros};
use switchboard_protocol::api::{PersonEventBody, TypingChangeBody};
use switchboard_store::PersonEvent;
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::AppState;
use crate::error::{ApiError, ApiResult, excerpt};
use crate::extract::{ApiQuery, Auth};

/// How far before its cursor a feed reads again: longer than a change takes
/// from its start to its commit.
pub const LOOKBACK_MICROS: i64 = 2_000_000;

/// Events read from the store at once.
const PAGE: u32 = 200;

/// How often a feed looks for events committed by other instances.
const POLL: Duration = Duration::from_secs(1);

/// The least time between two looks of one feed: a burst of commits costs a
/// feed one read per interval, not one per commit.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// Server-Sent Events written ahead of a slow client.
const BUFFERED_EVENTS: usize = 64;

/// `?userId=&cursor=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// With a company key: the user whose feed this is (required).
    #[param(pattern = "^[A-Za-z0-9_.:@-]{0,128}$")]
    pub user_id: Option<String>,
    /// Resume after this `id:` of an earlier stream (`Last-Event-ID` wins
    /// when both are sent); without either, the feed starts now.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub cursor: Option<String>,
}

/// The events of the caller's channels, live, as Server-Sent Events
/// (`text/event-stream`): `ready` first, then each channel event named by
/// its type with the cursor as `id:`, and `typing` when typing changes.
/// Someone removed from a channel gets that `chat:member:removed`, and
/// nothing of the channel after it. Resumable with `Last-Event-ID` or `?cursor=`; an event may come twice
/// across a reconnection (dedupe on its `id`), never twice on one stream.
#[utoipa::path(get, path = "/v2/conversations/events", tag = tags::CHANNELS,
    params(FeedParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The last `id:` received, to resume after it")),
    responses((status = 200, content_type = "text/event-stream", body = String,
            description = "The feed: `event: ready`, then one Server-Sent Event per channel event (data: PersonEventBody) and `event: typing` (data: TypingChangeBody)"),
        (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn person_events(
    State(app): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<FeedParams>,
) -> ApiResult<Response> {
    let actor = auth.actor(params.user_id.as_deref(), None)?;
    let cursor = match headers.get("last-event-id") {
        Some(value) => Some(parse_cursor(
            "Last-Event-ID",
            value.to_str().unwrap_or("\u{fffd}"),
        )?),
        None => params
            .cursor
            .as_deref()
            .map(|text| parse_cursor("cursor", text))
            .transpose()?,
    };
    // Refusals (an unknown user, another company's) answer as errors, not
    // as an empty stream.
    app.store.person_events(&actor, now_micros(), 1).await?;
    let position = cursor.unwrap_or_else(now_micros);
    let (sender, receiver) = mpsc::channel(BUFFERED_EVENTS);
    let feed = Feed {
        typing: app.feeds.typing_changes(),
        app,
        actor,
        position,
        sent: HashMap::new(),
        sender,
    };
    tokio::spawn(feed.run());
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        Some((Ok::<_, Infallible>(event), receiver))
    });
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    // Proxies that buffer (nginx) pass the stream on as it comes.
    Ok(([("x-accel-buffering", "no")], sse).into_response())
}

fn parse_cursor(field: &str, text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|cursor| *cursor >= 0)
        .ok_or_else(|| {
            ApiError::validation(format!(
                "{field}: `{}` is not a cursor of this feed (the `id:` of one of its events)",
                excerpt(text)
            ))
        })
}

/// One open feed, run as its own task until its client goes away or the
/// server stops.
struct Feed {
    app: AppState,
    actor: Actor,
    typing: broadcast::Receiver<crate::feeds::TypingChange>,
    /// The time of the newest event sent (or where the feed began): the
    /// cursor of the next event.
    position: i64,
    /// Events sent within [`LOOKBACK_MICROS`] of `position`, with their
    /// times, so a second read of that window sends none of them again.
    sent: HashMap<String, i64>,
    sender: mpsc::Sender<Event>,
}

/// The client went away.
struct Gone;

impl Feed {
    async fn run(mut self) {
        let _ = self.serve().await;
    }

    async fn serve(&mut self) -> Result<(), Gone> {
        let signal = self.app.store.outbox_signal();
        let mut closing = self.app.feeds.closing();
        let ready = serde_json::json!({
            "cursor": self.position.to_string(),
            "userId": self.actor.user.as_str(),
        });
        self.send(
            Event::default()
                .event("ready")
                .id(self.position.to_string())
                .data(ready.to_string()),
        )
        .await?;
        loop {
            // Registered before the look, so no commit between the two is missed.
            let committed = signal.feeds.notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            let looked = tokio::time::Instant::now();
            self.send_new_events().await?;
            let typing_change = tokio::select! {
                () = &mut committed => None,
                () = tokio::time::sleep(POLL) => None,
                change = self.typing.recv() => match change {
                    Ok(change) if change.company == self.actor.company => Some(change.channel),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => None,
                    Err(broadcast::error::RecvError::Closed) => return Err(Gone),
                },
                _ = closing.wait_for(|closing| *closing) => return Err(Gone),
                () = self.sender.closed() => return Err(Gone),
            };
            if let Some(channel) = typing_change {
                self.send_typing(&channel).await?;
            }
            tokio::time::sleep_until(looked + MIN_INTERVAL).await;
        }
    }

    /// Sends every event since a little before `position` not sent yet.
    async fn send_new_events(&mut self) -> Result<(), Gone> {
        let mut from = self.position - LOOKBACK_MICROS;
        loop {
            let page = match self.app.store.person_events(&self.actor, from, PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    // The database is away or the person is gone: the next look retries.
                    tracing::debug!(error = %err, "a person's feed could not read its events");
                    return Ok(());
                }
            };
            for event in &page {
                if !self.sent.contains_key(event.id.as_str()) {
                    self.send_event(event).await?;
                }
            }
            let horizon = self.position - LOOKBACK_MICROS;
            self.sent.retain(|_, at| *at >= horizon);
            let Some(last) = page.last() else { break };
            if page.len() < PAGE as usize {
                break;
            }
            // The next page starts at the last one's time (its events there
            // were sent); a page all of one instant moves on past it.
            from = if last.created_at > from {
                last.created_at
            } else {
                from + 1
            };
        }
        Ok(())
    }

    async fn send_event(&mut self, event: &PersonEvent) -> Result<(), Gone> {
        let body = PersonEventBody {
            id: event.id.as_str().to_owned(),
            event_type: event.event_type.as_str().to_owned(),
            company: self.actor.company.as_str().to_owned(),
            time: event.created_at / 1_000,
            channel_id: event.channel.as_str().to_owned(),
            channel_seq: event.channel_seq,
            data: serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null),
        };
        self.position = self.position.max(event.created_at);
        self.sent
            .insert(event.id.as_str().to_owned(), event.created_at);
        let data = serde_json::to_string(&body).unwrap_or_default();
        self.send(
            Event::default()
                .event(event.event_type.as_str())
                .id(self.position.to_string())
                .data(data),
        )
        .await
    }

    /// Sends who is typing in `channel` now, if the person is a member.
    async fn send_typing(&mut self, channel: &ChannelId) -> Result<(), Gone> {
        let Ok(typing) = self
            .app
            .store
            .list_typing(&self.actor, channel, now_micros())
            .await
        else {
            return Ok(());
        };
        let body = TypingChangeBody {
            channel_id: channel.as_str().to_owned(),
            typing: super::typing::indicators(typing),
        };
        let data = serde_json::to_string(&body).unwrap_or_default();
        self.send(Event::default().event("typing").data(data)).await
    }

    async fn send(&self, event: Event) -> Result<(), Gone> {
        self.sender.send(event).await.map_err(|_| Gone)
    }
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(person_events))
}
