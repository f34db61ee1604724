//! The switchboard wire protocol: every type a bot or client sees on the wire
//! (event envelope and event data, the chat resources, API request and response
//! bodies, the error body) and the two webhook signature schemes.
//!
//! Guarantees:
//! - The shapes follow the x-bees "Webhook & AWS SQS" chatbot contract; the
//!   official examples parse and serialize back to equal JSON.
//! - Enum-like strings are open ([`OpenEnum`](open_enum)): unknown values are kept.
//! - Resources keep unknown fields in `extra`, so a newer server's additions
//!   survive a round trip through an older client.
//! - Timestamps keep their exact text ([`Timestamp`]), so parsing and writing
//!   back never changes a value.
//!
//! This crate depends on serde and the HMAC primitives only: no runtime, no I/O.

pub mod api;
pub mod error;
pub mod events;
pub mod js_json;
pub mod open_enum;
pub mod resources;
pub mod signing;
pub mod timestamp;

pub use error::{ErrorBody, ErrorType};
pub use events::{Envelope, EventPayload, EventType};
pub use resources::*;
pub use timestamp::Timestamp;
