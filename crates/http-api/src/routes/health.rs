//! Health: whether the server and its database answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchboard_protocol::api::HealthResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::AppState;

/// `ok` with 200 when the database answers, `unavailable` with 503 otherwise. No credential needed.
#[utoipa::path(get, path = "/health", tag = tags::OPERATIONS, security(()),
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub async fn health(State(app): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let (status, text) = match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    (
        status,
        Json(HealthResponse {
            status: text.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }),
    )
}

/// This API's OpenAPI 3.1 document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = tags::OPERATIONS, security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(app.openapi().clone())
}

/// Metrics in the Prometheus text format: events created, delivery attempts by
/// outcome, delivery latency (queued → first 2xx), the outbox by state, and
/// disabled integrations. No credential needed; the numbers are totals of the
/// whole server.
#[utoipa::path(get, path = "/metrics", tag = tags::OPERATIONS, security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(
    State(app): State<AppState>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), crate::error::ApiError> {
    let stats = app
        .store
        .outbox_stats(switchboard_domain::now_micros())
        .await?;
    for (state, count) in [
        ("due", stats.due),
        ("waiting", stats.waiting),
        ("held", stats.held),
        ("dead", stats.dead),
    ] {
        metrics::gauge!("switchboard_outbox_deliveries", "state" => state).set(count as f64);
    }
    metrics::gauge!("switchboard_integrations_disabled").set(stats.disabled_integrations as f64);
    app.metrics.run_upkeep();
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        app.metrics.render(),
    ))
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics))
}
