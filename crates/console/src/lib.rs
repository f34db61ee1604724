//! The web console, served by the binary at `/` with every asset embedded:
//! no CDN, no build step, nothing to install. It is plain HTML, CSS and
//! JavaScript (`assets/`) that speaks only the public HTTP API, as any
//! client would:
//!
//! - **people** (a user token) chat: channels with unread counts, messages
//!   live from their feed (`GET /v2/conversations/events`), send, edit,
//!   delete, quotes, reactions, bots' buttons, files, typing, new group and
//!   direct channels, members;
//! - **operators** (a company key) run deliveries: bots and their
//!   integrations, the delivery log with every attempt, dead letters,
//!   replay, pause, resume, test, secret rotation, and a live panel from
//!   `/metrics`.
//!
//! Signing in: paste the credential, or open a link whose fragment carries
//! it (`/#token=…` for a person, `/#key=…` for an operator; `switchboard
//! demo` prints them). The fragment never reaches the server; the console
//! keeps the credential in the tab's session storage, so a reload keeps the
//! session and the place (the route is in the fragment too: `#/c/{channel}`,
//! `#/ops/{bot}/{integration}`), and closing the tab forgets it.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/console.js");
const STYLE: &str = include_str!("../assets/console.css");

/// Only the console's own files run; the API and presigned file URLs (which
/// may be another host's, such as S3) may be fetched; nothing may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src *; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `/` and the console's assets.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| asset(INDEX, "text/html; charset=utf-8")))
        .route(
            "/console/console.js",
            get(|| asset(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route(
            "/console/console.css",
            get(|| asset(STYLE, "text/css; charset=utf-8")),
        )
}

async fn asset(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // A new binary serves new files: the browser asks again each time.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}
