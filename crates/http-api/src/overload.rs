//! Overload is refused, not queued: at most `max_requests_in_flight` API
//! requests are handled at once, and one more is answered 503 with
//! `Retry-After` at once. Waiting requests would pile up inside the server
//! (memory) and in front of the database (latency for every request); a
//! refusal costs the client one quick retry. Every change waits for the
//! database inside a request, so this also bounds the changes waiting for
//! the database. `/health` and `/metrics` are never refused, so operators
//! and load balancers see an overloaded server as alive; nor are transfers
//! of file bytes (`/files/…`), which last as long as the transfer and are
//! bounded by `files.*` and the connection limit.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The requests handled at once, and the most allowed.
#[derive(Clone)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        InFlight {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

/// Runs the request if there is room, else answers 503 at once.
pub async fn refuse_beyond_limit(
    State(in_flight): State<InFlight>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if matches!(path, "/health" | "/metrics") || path.starts_with("/files/") {
        return next.run(request).await;
    }
    let Ok(_permit) = in_flight.permits.try_acquire() else {
        metrics::counter!("switchboard_http_refused_total", "reason" => "requests_in_flight")
            .increment(1);
        return ApiError::unavailable(format!(
            "the server is handling as many requests as it takes at once ({}); retry in a second",
            in_flight.limit
        ))
        .with_retry_after(1)
        .into_response();
    };
    next.run(request).await
}
