//! The two webhook signature schemes of the wire contract.
//!
//! - **Standard Webhooks** (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64>`): HMAC-SHA256 keyed with the decoded bytes
//!   of a `whsec_…` secret over `"{id}.{timestamp}.{body}"`. During a secret
//!   rotation one header carries several signatures, space-separated.
//! - **x-bees body signature** (`x-signature: <hex>`): HMAC-SHA256 keyed with
//!   the whole secret string as UTF-8, over the body alone. The SQS attribute
//!   `X-SIGNATURE` is the same HMAC keyed with the integration's AWS secret
//!   access key, as x-bees signs SQS messages.
//!
//! Verification compares in constant time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of every webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Fewest random bytes a secret may hold.
pub const SECRET_MIN_BYTES: usize = 24;
/// Most random bytes a secret may hold.
pub const SECRET_MAX_BYTES: usize = 64;
/// How far a `webhook-timestamp` may be from now before verification refuses it.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 5 * 60;

/// A webhook signing secret: `whsec_` followed by the base64 of 24–64 random bytes.
///
/// `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`. A secret pasted without its prefix is accepted too.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| SignatureError::MalformedSecret)?;
        if !(SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&key.len()) {
            return Err(SignatureError::MalformedSecret);
        }
        Ok(WebhookSecret {
            text: format!("{SECRET_PREFIX}{encoded}"),
            key,
        })
    }

    /// A secret made of the given random bytes (24–64 of them).
    pub fn from_random_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        if !(SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&bytes.len()) {
            return Err(SignatureError::MalformedSecret);
        }
        Ok(WebhookSecret {
            text: format!("{SECRET_PREFIX}{}", BASE64.encode(bytes)),
            key: bytes.to_vec(),
        })
    }

    /// The secret as shown to its owner once (`whsec_…`).
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The `v1,<base64>` Standard Webhooks signature of one delivery.
    pub fn sign_standard(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            BASE64.encode(self.standard_mac(id, timestamp, body))
        )
    }

    /// The hex body signature sent as `x-signature`: keyed by the whole
    /// secret text.
    pub fn sign_body(&self, body: &[u8]) -> String {
        body_signature(self.text.as_bytes(), body)
    }

    fn standard_mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

/// The x-bees body signature: hex HMAC-SHA256 of `body` keyed by `key` —
/// the secret text for `x-signature`, the AWS secret access key for the SQS
/// `X-SIGNATURE` attribute.
pub fn body_signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `webhook-signature` header value for a delivery signed with every given
/// secret (more than one during a rotation), space-separated.
pub fn standard_signature_header(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign_standard(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a Standard Webhooks delivery: the timestamp is within `tolerance_seconds`
/// of `now_unix_seconds` and one of the `v1` signatures in the header matches.
pub fn verify_standard(
    secret: &WebhookSecret,
    id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix_seconds: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    if (now_unix_seconds - timestamp).abs() > tolerance_seconds {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    let expected = secret.standard_mac(id, timestamp, body);
    let matched = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, value)| BASE64.decode(value).ok())
        .any(|candidate| bool::from(candidate.as_slice().ct_eq(&expected)));
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Checks an `x-signature` hex body signature.
pub fn verify_body(
    secret: &WebhookSecret,
    body: &[u8],
    signature_hex: &str,
) -> Result<(), SignatureError> {
    verify_body_keyed(secret.text.as_bytes(), body, signature_hex)
}

/// Checks a hex body signature keyed by `key` (the SQS `X-SIGNATURE`
/// attribute is keyed by the AWS secret access key).
pub fn verify_body_keyed(
    key: &[u8],
    body: &[u8],
    signature_hex: &str,
) -> Result<(), SignatureError> {
    let given = hex::decode(signature_hex.trim()).map_err(|_| SignatureError::Mismatch)?;
    let expected = hex::decode(body_signature(key, body)).expect("we wrote hex");
    if bool::from(given.as_slice().ct_eq(&expected)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Why a secret or a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The secret is not `whsec_` + base64 of 24–64 bytes.
    MalformedSecret,
    /// `webhook-timestamp` is not a whole number of seconds.
    MalformedTimestamp,
    /// `webhook-timestamp` is too far from now (a replayed or delayed request).
    TimestampOutOfTolerance,
    /// No signature matches.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureError::MalformedSecret => {
                "the secret is not `whsec_` followed by the base64 of 24 to 64 bytes"
            }
            SignatureError::MalformedTimestamp => "webhook-timestamp is not a number of seconds",
            SignatureError::TimestampOutOfTolerance => "webhook-timestamp is too far from now",
            SignatureError::Mismatch => "no signature matches",
        })
    }
}

impl std::error::Error for SignatureError {}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published example.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_standard_webhooks_example() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            secret.sign_standard(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn verifies_the_standard_webhooks_example() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let ts = SPEC_TIMESTAMP.to_string();
        verify_standard(
            &secret,
            SPEC_ID,
            &ts,
            SPEC_SIGNATURE,
            SPEC_BODY,
            SPEC_TIMESTAMP + 10,
            300,
        )
        .unwrap();
        assert_eq!(
            verify_standard(
                &secret,
                SPEC_ID,
                &ts,
                SPEC_SIGNATURE,
                br#"{"test": 2432232315}"#,
                SPEC_TIMESTAMP,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_standard(
                &secret,
                "msg_other",
                &ts,
                SPEC_SIGNATURE,
                SPEC_BODY,
                SPEC_TIMESTAMP,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_standard(
                &secret,
                SPEC_ID,
                &ts,
                SPEC_SIGNATURE,
                SPEC_BODY,
                SPEC_TIMESTAMP + 301,
                300
            ),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify_standard(
                &secret,
                SPEC_ID,
                "soon",
                SPEC_SIGNATURE,
                SPEC_BODY,
                SPEC_TIMESTAMP,
                300
            ),
            Err(SignatureError::MalformedTimestamp)
        );
    }

    #[test]
    fn a_rotation_header_verifies_with_either_secret() {
        let old = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let new = WebhookSecret::from_random_bytes(&[7u8; 32]).unwrap();
        let header = standard_signature_header(&[&new, &old], "evt_1", 100, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        verify_standard(&old, "evt_1", "100", &header, b"{}", 100, 300).unwrap();
        verify_standard(&new, "evt_1", "100", &header, b"{}", 100, 300).unwrap();
        let stranger = WebhookSecret::from_random_bytes(&[9u8; 32]).unwrap();
        assert_eq!(
            verify_standard(&stranger, "evt_1", "100", &header, b"{}", 100, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn body_signature_known_answer() {
        // HMAC-SHA256(key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", body = {"test": 2432232314}),
        // computed independently with `openssl dgst -sha256 -hmac`.
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let signature = secret.sign_body(SPEC_BODY);
        assert_eq!(signature, BODY_SIGNATURE_OF_SPEC_EXAMPLE);
        verify_body(&secret, SPEC_BODY, &signature).unwrap();
        assert_eq!(
            verify_body(&secret, b"{}", &signature),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_body(&secret, SPEC_BODY, "not hex"),
            Err(SignatureError::Mismatch)
        );
    }

    const BODY_SIGNATURE_OF_SPEC_EXAMPLE: &str =
        "80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c";

    #[test]
    fn secrets_outside_24_to_64_bytes_or_not_base64_are_refused() {
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ="),
            Err(SignatureError::MalformedSecret)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!"),
            Err(SignatureError::MalformedSecret)
        );
        assert!(WebhookSecret::from_random_bytes(&[0u8; 65]).is_err());
        let bare = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(bare.expose(), SPEC_SECRET);
        assert_eq!(format!("{bare:?}"), "WebhookSecret(redacted)");
    }
}
