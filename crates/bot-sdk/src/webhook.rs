//! An axum route for webhook deliveries: it verifies each one, runs the
//! bot's handler and answers 2xx; a handler that says
//! [`Reply::RetryLater`] gets the event again later (503 with
//! `Retry-After`). A delivery that does not verify is answered 401 and the
//! handler never sees it. Handlers should answer within the integration's
//! timeout (10 s by default); longer work goes in a task of its own.
//!
//! ```no_run
//! use switchboard_bot_sdk::{Reply, Verifier, webhook};
//!
//! # async fn run() {
//! let verifier = Verifier::new(&["whsec_…"]).unwrap();
//! let app = webhook::router("/hook", verifier, |event| async move {
//!     println!("{} {}", event.event_type.as_str(), event.id);
//!     Reply::Handled
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::{Event, Reply, Verifier};

/// A router with one `POST` route at `path` taking deliveries.
pub fn router<F, Fut>(path: &str, verifier: Verifier, handler: F) -> Router
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let state = Arc::new((verifier, handler));
    Router::new()
        .route(path, post(take::<F, Fut>))
        .with_state(state)
}

async fn take<F, Fut>(
    State(state): State<Arc<(Verifier, F)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let (verifier, handler) = state.as_ref();
    let event = match verifier.verify(&headers, &body) {
        Ok(event) => event,
        Err(err) => return (StatusCode::UNAUTHORIZED, err.to_string()).into_response(),
    };
    match handler(event).await {
        Reply::Handled => StatusCode::NO_CONTENT.into_response(),
        Reply::RetryLater(after) => {
            let mut answer = StatusCode::SERVICE_UNAVAILABLE.into_response();
            if let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
                answer.headers_mut().insert("retry-after", value);
            }
            answer
        }
    }
}
