//! Signature checks of deliveries, usable on their own.

use axum::http::HeaderMap;
use switchboard_protocol::signing::{WebhookSecret, verify_body, verify_standard};

use crate::Event;

/// How far a Standard Webhooks timestamp may be from now (the scheme's five minutes).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a delivery was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the delivery carries no signature (webhook-signature or x-signature)")]
    Unsigned,
    #[error("no signature matches a known secret, or the timestamp is too far from now")]
    Mismatch,
    #[error("the body is not an event: {0}")]
    NotAnEvent(#[source] serde_json::Error),
    #[error("`{0}` is not a whsec_ secret")]
    BadSecret(String),
}

/// Checks deliveries against the integration's secrets: the current one
/// and, during a rotation, the previous one too.
#[derive(Clone, Debug)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
}

impl Verifier {
    /// A verifier of these `whsec_…` secrets.
    pub fn new(secrets: &[&str]) -> Result<Self, VerifyError> {
        let secrets = secrets
            .iter()
            .map(|text| {
                WebhookSecret::parse(text)
                    .map_err(|_| VerifyError::BadSecret(text.chars().take(10).collect()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verifier { secrets })
    }

    /// The event, once one of its signatures matches: the Standard Webhooks
    /// headers when present (each `v1,` signature is tried, the timestamp
    /// must be within [`TOLERANCE_SECONDS`]), else `x-signature` over the body.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Event, VerifyError> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or(0);
        let signed = match (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            header("x-signature"),
        ) {
            (Some(id), Some(timestamp), Some(signature), _) => self.secrets.iter().any(|secret| {
                verify_standard(
                    secret,
                    id,
                    timestamp,
                    signature,
                    body,
                    now,
                    TOLERANCE_SECONDS,
                )
                .is_ok()
            }),
            (_, _, _, Some(signature)) => self
                .secrets
                .iter()
                .any(|secret| verify_body(secret, body, signature).is_ok()),
            _ => return Err(VerifyError::Unsigned),
        };
        if !signed {
            return Err(VerifyError::Mismatch);
        }
        serde_json::from_slice(body).map_err(VerifyError::NotAnEvent)
    }
}
