//! Object storage for the files people and bots share in channels.
//!
//! Files are stored under content-independent keys ([`ObjectKey`]) that leak
//! no channel, user or file name. Uploads and downloads go through URLs that
//! carry their own authority — no `Authorization` header — and expire.
//!
//! Two backends implement [`ObjectStorage`]: [`LocalDisk`] (the embedded
//! default: this server takes uploads and serves downloads itself, through
//! URLs it signs with [`UrlSigner`], streaming and cutting an upload off at
//! its limit) and [`S3Storage`] (uploads go straight to the bucket with S3
//! presigned URLs). [`Files`] ties a backend to the limits and URL lifetimes.
//!
//! Download URLs are always this server's own signed URLs, whatever the
//! backend: each names the message the file is attached to, so the server can
//! refuse it once the message is deleted. With S3 the server then sends the
//! client on to a presigned `GET` that lives a minute at most.

pub mod local_disk;
pub mod object_key;
pub mod s3;
pub mod signed_url;
pub mod storage;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use local_disk::LocalDisk;
pub use object_key::ObjectKey;
pub use s3::{S3Settings, S3Storage};
pub use signed_url::{Access, Grant, UrlError, UrlSigner};
pub use storage::{
    Download, ObjectStorage, StorageError, UploadBody, UploadLimit, content_disposition,
};

/// The longest a redirect to the storage service's own URL lives.
const MAX_REDIRECT_LIFETIME: Duration = Duration::from_secs(60);

/// Limits and URL lifetimes.
#[derive(Clone, Debug)]
pub struct FileSettings {
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// How long an upload URL may be used.
    pub upload_url_ttl: Duration,
    /// How long a download URL may be used.
    pub download_url_ttl: Duration,
}

/// An upload URL just made for a new file.
#[derive(Clone, Debug)]
pub struct NewUpload {
    pub key: ObjectKey,
    pub limit: UploadLimit,
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A backend with the limits, URL lifetimes and the key that signs URLs.
#[derive(Clone)]
pub struct Files {
    storage: Arc<dyn ObjectStorage>,
    signer: UrlSigner,
    object_urls: String,
    settings: FileSettings,
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

impl Files {
    /// `public_url` is how clients reach this server; download URLs start
    /// with it.
    pub fn new(
        storage: Arc<dyn ObjectStorage>,
        signer: UrlSigner,
        public_url: &str,
        settings: FileSettings,
    ) -> Self {
        Files {
            storage,
            signer,
            object_urls: format!("{}/files/", public_url.trim_end_matches('/')),
            settings,
        }
    }

    pub fn settings(&self) -> &FileSettings {
        &self.settings
    }

    pub fn storage(&self) -> &dyn ObjectStorage {
        self.storage.as_ref()
    }

    /// A new object key and the URL that uploads it: exactly `declared_size`
    /// bytes when given (the caller checked it against the limit), else at
    /// most the configured maximum.
    pub async fn new_upload(&self, declared_size: Option<u64>) -> Result<NewUpload, StorageError> {
        let key = ObjectKey::generate();
        let limit = match declared_size {
            Some(size) => UploadLimit {
                max_bytes: size,
                exact: true,
            },
            None => UploadLimit {
                max_bytes: self.settings.max_bytes,
                exact: false,
            },
        };
        let expires_at = unix_now() + self.settings.upload_url_ttl.as_secs().max(1) as i64;
        let url = self.storage.upload_url(&key, limit, expires_at).await?;
        Ok(NewUpload {
            key,
            limit,
            url,
            expires_at,
        })
    }

    /// A URL that downloads the object while `message_id` carries it, and
    /// when it expires (Unix seconds).
    pub fn download_url(
        &self,
        key: &ObjectKey,
        message_id: &str,
        file_name: &str,
        content_type: &str,
    ) -> (String, i64) {
        let expires_at = unix_now() + self.settings.download_url_ttl.as_secs().max(1) as i64;
        let grant = Grant {
            key: key.clone(),
            access: Access::Download {
                message_id: message_id.to_owned(),
                file_name: file_name.to_owned(),
                content_type: content_type.to_owned(),
            },
            expires_at,
        };
        let url = format!(
            "{}{}?{}",
            self.object_urls,
            key.as_str(),
            self.signer.query(&grant)
        );
        (url, expires_at)
    }

    /// What the URL of object `key` with this query grants, now.
    pub fn verify(&self, key: &str, query: &str) -> Result<Grant, UrlError> {
        self.signer.verify(key, query, unix_now())
    }

    /// How long a redirect made for a grant may live: a minute at most, and
    /// never past the grant.
    pub fn redirect_lifetime(&self, grant: &Grant) -> Duration {
        let left = grant.expires_at.saturating_sub(unix_now()).max(1) as u64;
        MAX_REDIRECT_LIFETIME.min(Duration::from_secs(left))
    }
}
