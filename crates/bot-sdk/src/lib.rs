//! What a switchboard bot depends on, and nothing of the server:
//!
//! - [`Event`]: the envelope of every event, with its typed `data`
//!   ([`Event::payload`]; types this version does not know come through as
//!   raw JSON);
//! - [`Verifier`]: checks a delivery's signatures — Standard Webhooks
//!   (`webhook-*` headers, five minutes' tolerance, any of several
//!   signatures during a rotation) or the x-bees `x-signature` — on its own;
//! - [`webhook::router`]: an axum route that verifies each delivery, runs the
//!   bot's handler and answers 2xx, or 503 with `Retry-After` when the
//!   handler says to retry later;
//! - [`pull::Consumer`]: events fetched over the pull transport, for a bot
//!   with no public URL;
//! - [`sqs::Consumer`]: events read from an `sqs` integration's queue,
//!   verified, deleted once handled, kept invisible while a handler runs;
//! - [`Client`]: the API, with retries that honour `Retry-After`, an
//!   `Idempotency-Key` on every send, and errors carrying the error type and
//!   request id.
//!
//! Checking a delivery with the integration's secret:
//!
//! ```
//! use switchboard_bot_sdk::Verifier;
//! # use switchboard_bot_sdk::protocol::signing::WebhookSecret;
//! # let secret = WebhookSecret::from_random_bytes(&[7; 32]).unwrap();
//! # let body = br#"{"id":"evt_1","type":"integration:test","company":"c","time":1,"integrationId":"i","data":{}}"#;
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
//! # let mut headers = axum::http::HeaderMap::new();
//! # headers.insert("webhook-id", "evt_1".parse().unwrap());
//! # headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
//! # headers.insert("webhook-signature", secret.sign_standard("evt_1", now, body).parse().unwrap());
//! let verifier = Verifier::new(&[secret.expose()]).expect("a whsec_ secret");
//! let event = verifier.verify(&headers, body).expect("signed by the secret");
//! assert_eq!(event.event_type.as_str(), "integration:test");
//! ```

pub mod client;
pub mod pull;
pub mod sqs;
mod verify;
pub mod webhook;

pub use client::{ApiError, Client};
pub use switchboard_protocol as protocol;
pub use switchboard_protocol::{EventPayload, EventType};
pub use verify::{Verifier, VerifyError};

/// An event as a bot receives it: the contract's envelope, `data` as JSON.
pub type Event = switchboard_protocol::Envelope<serde_json::Value>;

/// What a bot's handler says of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Handled (or deliberately ignored): it is not sent again.
    Handled,
    /// Not now: the event comes again after this long.
    RetryLater(std::time::Duration),
}

/// Whether the bot wrote this event itself (`message.user.id == botId`):
/// bots receive their own messages and should drop them.
pub fn is_own(event: &Event) -> bool {
    let author = event
        .data
        .pointer("/message/user/id")
        .and_then(|v| v.as_str());
    author.is_some() && author == event.bot_id.as_deref()
}
