//! URLs that carry their own authority: the server signs what a URL allows
//! (upload or download of one object, until when, how many bytes, under which
//! name and type) with HMAC-SHA256 under a key from configuration, and checks
//! the signature, in constant time, before serving. Any change to the URL
//! breaks the signature; an expired URL is refused even when intact.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::object_key::ObjectKey;

type HmacSha256 = Hmac<Sha256>;

/// What a URL allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// One `PUT` of at most `max_bytes` bytes (exactly that many when
    /// `exact`, for a file whose size was declared).
    Upload { max_bytes: u64, exact: bool },
    /// `GET` (with ranges) of the file attached to a message, served with this
    /// file name and content type while the message carries the file.
    Download {
        message_id: String,
        file_name: String,
        content_type: String,
    },
}

/// A signed permission on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub key: ObjectKey,
    pub access: Access,
    /// Unix seconds after which the URL is refused.
    pub expires_at: i64,
}

/// Why a URL is refused (both answer 403).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("the URL's signature does not match; it was changed or was not made by this server")]
    Tampered,
    #[error("the URL expired")]
    Expired,
}

/// Signs and checks URLs with the server's key.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(<redacted>)")
    }
}

impl UrlSigner {
    pub fn new(key: &[u8]) -> Self {
        UrlSigner { key: key.to_vec() }
    }

    /// The query string (without `?`) that grants this.
    pub fn query(&self, grant: &Grant) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        match &grant.access {
            Access::Upload { max_bytes, exact } => {
                query.append_pair("op", "put");
                query.append_pair("max", &max_bytes.to_string());
                query.append_pair("exact", if *exact { "1" } else { "0" });
            }
            Access::Download {
                message_id,
                file_name,
                content_type,
            } => {
                query.append_pair("op", "get");
                query.append_pair("msg", message_id);
                query.append_pair("name", file_name);
                query.append_pair("type", content_type);
            }
        }
        query.append_pair("exp", &grant.expires_at.to_string());
        query.append_pair("sig", &self.signature(grant));
        query.finish()
    }

    /// Checks the query of a URL for the object `key` at `now` (unix seconds)
    /// and returns what it grants.
    pub fn verify(&self, key: &str, query: &str, now: i64) -> Result<Grant, UrlError> {
        let key = ObjectKey::parse(key).ok_or(UrlError::Tampered)?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let one = |name: &str| -> Result<&str, UrlError> {
            let mut found = pairs.iter().filter(|(n, _)| n == name);
            match (found.next(), found.next()) {
                (Some((_, value)), None) => Ok(value.as_str()),
                _ => Err(UrlError::Tampered),
            }
        };
        let access = match one("op")? {
            "put" => Access::Upload {
                max_bytes: one("max")?.parse().map_err(|_| UrlError::Tampered)?,
                exact: match one("exact")? {
                    "1" => true,
                    "0" => false,
                    _ => return Err(UrlError::Tampered),
                },
            },
            "get" => Access::Download {
                message_id: one("msg")?.to_owned(),
                file_name: one("name")?.to_owned(),
                content_type: one("type")?.to_owned(),
            },
            _ => return Err(UrlError::Tampered),
        };
        let grant = Grant {
            key,
            access,
            expires_at: one("exp")?.parse().map_err(|_| UrlError::Tampered)?,
        };
        let given = URL_SAFE_NO_PAD
            .decode(one("sig")?)
            .map_err(|_| UrlError::Tampered)?;
        self.mac(&grant)
            .verify_slice(&given)
            .map_err(|_| UrlError::Tampered)?;
        if now > grant.expires_at {
            return Err(UrlError::Expired);
        }
        Ok(grant)
    }

    fn signature(&self, grant: &Grant) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(grant).finalize().into_bytes())
    }

    /// The MAC over every field of the grant, each length-prefixed so no two
    /// grants share a signed text.
    fn mac(&self, grant: &Grant) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        let mut field = |text: &str| {
            mac.update(&(text.len() as u64).to_be_bytes());
            mac.update(text.as_bytes());
        };
        field("switchboard-file-url-v1");
        field(grant.key.as_str());
        field(&grant.expires_at.to_string());
        match &grant.access {
            Access::Upload { max_bytes, exact } => {
                field("put");
                field(&max_bytes.to_string());
                field(if *exact { "exact" } else { "at-most" });
            }
            Access::Download {
                message_id,
                file_name,
                content_type,
            } => {
                field("get");
                field(message_id);
                field(file_name);
                field(content_type);
            }
        }
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn download(key: &ObjectKey) -> Grant {
        Grant {
            key: key.clone(),
            access: Access::Download {
                message_id: "msg_1".into(),
                file_name: "report Q3 &=.pdf".into(),
                content_type: "application/pdf".into(),
            },
            expires_at: 1_000,
        }
    }

    #[test]
    fn signed_urls_verify_until_they_expire() {
        let signer = UrlSigner::new(b"server key");
        let key = ObjectKey::generate();
        let grant = download(&key);
        let query = signer.query(&grant);
        assert_eq!(signer.verify(key.as_str(), &query, 999), Ok(grant.clone()));
        assert_eq!(signer.verify(key.as_str(), &query, 1_000), Ok(grant));
        assert_eq!(
            signer.verify(key.as_str(), &query, 1_001),
            Err(UrlError::Expired)
        );
        let upload = Grant {
            key: key.clone(),
            access: Access::Upload {
                max_bytes: 20 << 20,
                exact: false,
            },
            expires_at: 50,
        };
        let query = signer.query(&upload);
        assert_eq!(signer.verify(key.as_str(), &query, 10), Ok(upload));
    }

    #[test]
    fn any_change_to_a_url_is_refused() {
        let signer = UrlSigner::new(b"server key");
        let key = ObjectKey::generate();
        let query = signer.query(&download(&key));
        let other = ObjectKey::generate();
        assert_eq!(
            signer.verify(other.as_str(), &query, 0),
            Err(UrlError::Tampered),
            "another object"
        );
        for (from, to) in [
            ("exp=1000", "exp=9999"),
            ("op=get", "op=put"),
            ("msg=msg_1", "msg=msg_2"),
            ("type=application%2Fpdf", "type=text%2Fhtml"),
        ] {
            assert!(query.contains(from), "{query}");
            let changed = query.replace(from, to);
            assert_eq!(
                signer.verify(key.as_str(), &changed, 0),
                Err(UrlError::Tampered),
                "{from} → {to}"
            );
        }
        let doubled = format!("{query}&exp=1000");
        assert_eq!(
            signer.verify(key.as_str(), &doubled, 0),
            Err(UrlError::Tampered)
        );
        assert_eq!(
            UrlSigner::new(b"another key").verify(key.as_str(), &query, 0),
            Err(UrlError::Tampered),
            "another server's key"
        );
        assert_eq!(
            signer.verify("../secret", &query, 0),
            Err(UrlError::Tampered)
        );
    }
}
