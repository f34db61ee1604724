//! Credential formats: how keys and tokens look, are made, and are stored.
//!
//! | kind | format |
//! |---|---|
//! | company key | `wsk-v1-` + 93 ASCII letters and digits |
//! | bot key | `wsb-v1-` + 93 ASCII letters and digits |
//! | user token | `wsu-v1-` + 93 ASCII letters and digits |
//!
//! 93 alphanumerics carry about 553 bits of randomness, so a plain SHA-256 of
//! the key is a safe, fast lookup hash: only the hash is stored, and the key
//! itself is shown once to whoever created it.

use rand::Rng;
use rand::distributions::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// How many random characters follow a credential's prefix.
pub const SECRET_LENGTH: usize = 93;

/// What a credential acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// Acts for the whole company (`wsk-v1-…`).
    Company,
    /// Acts as one bot (`wsb-v1-…`).
    Bot,
    /// Acts as one person (`wsu-v1-…`).
    User,
}

impl CredentialKind {
    /// The prefix every credential of this kind starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            CredentialKind::Company => "wsk-v1-",
            CredentialKind::Bot => "wsb-v1-",
            CredentialKind::User => "wsu-v1-",
        }
    }

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Company => "company",
            CredentialKind::Bot => "bot",
            CredentialKind::User => "user",
        }
    }

    /// The kind named by [`CredentialKind::as_str`].
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "company" => Some(CredentialKind::Company),
            "bot" => Some(CredentialKind::Bot),
            "user" => Some(CredentialKind::User),
            _ => None,
        }
    }
}

/// The SHA-256 of a credential: what the database keeps instead of the credential.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct CredentialHash(pub [u8; 32]);

/// A credential just made: the secret to show once, and what to store.
pub struct NewCredential {
    pub kind: CredentialKind,
    /// Shown to the creator once; never stored, never logged.
    pub secret: SecretString,
    pub hash: CredentialHash,
    /// The last four characters, stored to tell keys apart in lists.
    pub last_four: String,
}

/// A new webhook signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_webhook_secret() -> switchboard_protocol::signing::WebhookSecret {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    switchboard_protocol::signing::WebhookSecret::from_random_bytes(&bytes)
        .expect("32 bytes is a valid length")
}

/// Makes a new random credential of the given kind.
pub fn generate(kind: CredentialKind) -> NewCredential {
    let random: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(SECRET_LENGTH)
        .map(char::from)
        .collect();
    from_text(kind, format!("{}{random}", kind.prefix()))
}

/// A credential from text that must already have the right format (for
/// example a company key fixed in configuration).
pub fn from_configured(kind: CredentialKind, text: &str) -> Result<NewCredential, FormatError> {
    match parse_presented(text) {
        Some((found, _)) if found == kind => Ok(from_text(kind, text.to_owned())),
        _ => Err(FormatError { kind }),
    }
}

fn from_text(kind: CredentialKind, text: String) -> NewCredential {
    let hash = hash(&text);
    let last_four = text[text.len() - 4..].to_owned();
    NewCredential {
        kind,
        secret: SecretString::from(text),
        hash,
        last_four,
    }
}

/// Recognises a presented bearer credential and hashes it for lookup; `None`
/// when it has no credential's format (so no lookup is needed).
pub fn parse_presented(text: &str) -> Option<(CredentialKind, CredentialHash)> {
    let kind = [
        CredentialKind::Company,
        CredentialKind::Bot,
        CredentialKind::User,
    ]
    .into_iter()
    .find(|kind| text.starts_with(kind.prefix()))?;
    let random = &text[kind.prefix().len()..];
    (random.len() == SECRET_LENGTH && random.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| (kind, hash(text)))
}

fn hash(text: &str) -> CredentialHash {
    CredentialHash(Sha256::digest(text.as_bytes()).into())
}

/// A configured credential that does not have its kind's format.
#[derive(Debug, thiserror::Error)]
#[error("must be `{}` followed by {SECRET_LENGTH} ASCII letters and digits", kind.prefix())]
pub struct FormatError {
    pub kind: CredentialKind,
}

impl NewCredential {
    /// The secret text, for the one response that shows it.
    pub fn reveal(&self) -> &str {
        self.secret.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_format() {
        for kind in [
            CredentialKind::Company,
            CredentialKind::Bot,
            CredentialKind::User,
        ] {
            let made = generate(kind);
            let text = made.reveal();
            assert_eq!(text.len(), 7 + 93);
            assert!(text.starts_with(kind.prefix()));
            assert_eq!(parse_presented(text), Some((kind, made.hash.clone())));
            assert_eq!(&text[text.len() - 4..], made.last_four);
        }
        assert_ne!(
            generate(CredentialKind::Company).hash,
            generate(CredentialKind::Company).hash
        );
    }

    #[test]
    fn malformed_credentials_are_not_recognised() {
        assert!(parse_presented("wsk-v1-short").is_none());
        assert!(parse_presented(&format!("wsk-v1-{}", "a".repeat(92) + "!")).is_none());
        assert!(parse_presented(&format!("wsx-v1-{}", "a".repeat(93))).is_none());
        assert!(parse_presented(&format!("wsk-v1-{}", "a".repeat(93))).is_some());
    }

    #[test]
    fn configured_keys_must_match_their_kind() {
        let company = format!("wsk-v1-{}", "A1".repeat(46) + "z");
        assert!(from_configured(CredentialKind::Company, &company).is_ok());
        assert!(from_configured(CredentialKind::Bot, &company).is_err());
        let err = from_configured(CredentialKind::Company, "secret")
            .err()
            .unwrap();
        assert!(err.to_string().contains("wsk-v1-"));
    }
}
