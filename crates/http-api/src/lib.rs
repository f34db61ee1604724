//! The switchboard HTTP API: the x-bees-compatible conversation routes under
//! `/v2/conversations`, the administration routes under `/v2` (people, bots,
//! keys), `/health` and `/openapi.json`; and the web console at `/`
//! (`switchboard-console`), which speaks only this API.
//!
//! Guarantees:
//! - Every failure answers the contract's error body `{type, message,
//!   requestId}`; validation messages name the field.
//! - Every route is registered together with its OpenAPI description, so
//!   `/openapi.json` covers every route.
//! - Every request gets an `x-request-id` (kept when the client sends one),
//!   echoed in the response and recorded in the request's log span.
//! - Handlers hold no state of their own: everything goes through the
//!   [`Store`](switchboard_store::Store) in [`AppState`].

pub mod error;
pub mod extract;
pub mod feeds;
pub mod openapi_rules;
pub mod overload;
pub mod paths;
pub mod rate_limit;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;
use switchboard_domain::secret_box::SecretBox;
use switchboard_files::Files;
use switchboard_store::Store;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::rate_limit::{RateLimitSettings, RateLimits};
use crate::routes::*;

/// What every handler shares: a handle, cloned for every request and
/// extractor, to the one [`Shared`] of the process.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub limits: ApiLimits,
    pub rate_limits: Arc<RateLimits>,
    /// Seals integration secrets before they are stored.
    pub secrets: SecretBox,
    /// Renders the process's metrics for `/metrics`.
    pub metrics: PrometheusHandle,
    /// Where files' bytes go, and the URLs that move them.
    pub files: Files,
    /// What the people's live feeds of this process share.
    pub feeds: feeds::Feeds,
    /// `/openapi.json`, made on its first request.
    openapi: std::sync::OnceLock<serde_json::Value>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        limits: ApiLimits,
        secrets: SecretBox,
        metrics: PrometheusHandle,
        files: Files,
    ) -> Self {
        AppState(Arc::new(Shared {
            store,
            rate_limits: Arc::new(RateLimits::new(limits.rate_limit)),
            limits,
            secrets,
            metrics,
            files,
            feeds: feeds::Feeds::default(),
            openapi: std::sync::OnceLock::new(),
        }))
    }

    /// The OpenAPI document of this server (its limits stated), made once.
    pub fn openapi(&self) -> &serde_json::Value {
        self.openapi.get_or_init(|| {
            openapi(openapi_rules::Settings {
                max_file_bytes: self.files.settings().max_bytes,
            })
        })
    }
}

/// Limits of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiLimits {
    /// Largest accepted request body; larger ones answer 413.
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Longest an upload to or download from a file URL may take.
    pub transfer_timeout: Duration,
    /// Requests per credential and operation.
    pub rate_limit: RateLimitSettings,
    /// API requests handled at once (see [`overload`]).
    pub max_requests_in_flight: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(30),
            transfer_timeout: Duration::from_secs(15 * 60),
            rate_limit: RateLimitSettings::default(),
            max_requests_in_flight: 256,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard",
        description = "A self-hostable chat service that delivers every chat event to bots by webhook or AWS SQS \
                       and lets them answer through this API. Routes follow the Wildix x-bees conversations API.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "channels", description = "Conversations"),
        (name = "members", description = "Channel members"),
        (name = "messages", description = "Messages, reactions, buttons, typing"),
        (name = "files", description = "Files shared in channels: upload, attach, download"),
        (name = "users", description = "People of the company"),
        (name = "bots", description = "Bots of the company"),
        (name = "keys", description = "Company keys, bot keys, user tokens"),
        (name = "integrations", description = "Where bots' events are delivered, the delivery log, replay"),
        (name = "bot-events", description = "The pull transport: a bot fetches its events and acknowledges them"),
        (name = "operations", description = "Health and the API description"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every route with its OpenAPI description. API calls answer 503 past
/// `limits.request_timeout`; file transfers may take `limits.transfer_timeout`.
fn api_routes(limits: &ApiLimits) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(channels::router())
        .merge(members::router())
        .merge(messages::router())
        .merge(typing::router())
        .merge(person_events::router())
        .merge(users::router())
        .merge(bots::router())
        .merge(keys::router())
        .merge(integrations::router())
        .merge(bot_events::router())
        .merge(files::router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .merge(files::object_router().layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.transfer_timeout,
        )))
}

/// Longest client-sent `x-request-id` that is kept.
const MAX_CLIENT_REQUEST_ID: usize = 128;

/// Removes a client-sent `x-request-id` that is too long or not visible
/// ASCII, so the server makes its own; a short, printable one is kept.
async fn drop_unusable_request_id(
    mut request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let usable = request.headers().get("x-request-id").is_none_or(|id| {
        let id = id.as_bytes();
        !id.is_empty() && id.len() <= MAX_CLIENT_REQUEST_ID && id.iter().all(u8::is_ascii_graphic)
    });
    if !usable {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// A path the API does not have. Under `/v2/` the credential is checked
/// first: a client that probes its key with any GET must get 401 for a bad
/// key, never a 404 it could take for "the key works".
async fn no_such_route(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request<axum::body::Body>,
) -> axum::response::Response {
    if let Err(refused) = authenticated_under_v2(&state, request).await {
        return refused.into_response();
    }
    error::ApiError::not_found("no such route").into_response()
}

/// A method the path does not take; the credential is checked first, as for
/// [`no_such_route`].
async fn method_not_allowed(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request<axum::body::Body>,
) -> axum::response::Response {
    let method = request.method().clone();
    if let Err(refused) = authenticated_under_v2(&state, request).await {
        return refused.into_response();
    }
    error::ApiError::method_not_allowed(&method).into_response()
}

/// Refuses a request to a `/v2/` path without a valid credential.
async fn authenticated_under_v2(
    state: &AppState,
    request: Request<axum::body::Body>,
) -> Result<(), error::ApiError> {
    if !request.uri().path().starts_with("/v2/") {
        return Ok(());
    }
    let (mut parts, _) = request.into_parts();
    <extract::Auth as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts, state,
    )
    .await
    .map(|_| ())
}

/// The OpenAPI document of every route, with the rules of
/// [`openapi_rules`] added for a server with these settings.
pub fn openapi(settings: openapi_rules::Settings) -> serde_json::Value {
    let generated = api_routes(&ApiLimits::default()).split_for_parts().1;
    let mut document = serde_json::to_value(generated).expect("the OpenAPI document serializes");
    openapi_rules::apply(&mut document, settings);
    document
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_routes(&state.limits).split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    routes
        .merge(switchboard_console::router())
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(drop_unusable_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                        let id = request
                            .headers()
                            .get("x-request-id")
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default();
                        // Debug-formatted: quoted and escaped, so no value can fake a field.
                        tracing::info_span!("request", method = %request.method(), path = ?request.uri().path(), request_id = ?id)
                    })
                    .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros))
                    // Every answer is logged above, and a 500 with its cause where
                    // it is made: a refusal under overload is no error line each.
                    .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(axum::middleware::from_fn(error::render_errors))
                .layer(CatchPanicLayer::new())
                .layer(axum::middleware::from_fn_with_state(
                    overload::InFlight::new(state.limits.max_requests_in_flight),
                    overload::refuse_beyond_limit,
                )),
        )
}
