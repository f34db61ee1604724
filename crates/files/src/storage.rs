//! The one trait both backends implement: where an upload goes, whether an
//! object is there and how large, and how a download is served.

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::object_key::ObjectKey;

/// How large an upload may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimit {
    pub max_bytes: u64,
    /// The upload must have exactly `max_bytes` bytes (its size was declared).
    pub exact: bool,
}

/// How a verified download is answered.
#[derive(Debug)]
pub enum Download {
    /// Serve this file from local disk (with ranges).
    File(PathBuf),
    /// Send the client on to this short-lived URL of the storage service.
    Redirect(String),
}

/// A request body being uploaded.
pub type UploadBody = Pin<Box<dyn AsyncRead + Send>>;

/// Why storing or reading an object failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such file")]
    NotFound,
    #[error("the file was already uploaded; ask for a new upload URL to upload another")]
    AlreadyExists,
    #[error("the upload is larger than the {max_bytes} bytes it may have")]
    TooLarge { max_bytes: u64 },
    #[error("the upload has {received} bytes but the file was declared with {declared}")]
    SizeMismatch { declared: u64, received: u64 },
    #[error("uploads do not come to this server; use the upload URL the API answered")]
    NotReceivedHere,
    #[error("file storage failed: {0}")]
    Backend(String),
}

impl From<std::io::Error> for StorageError {
    fn from(err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound,
            std::io::ErrorKind::AlreadyExists => StorageError::AlreadyExists,
            _ => StorageError::Backend(err.to_string()),
        }
    }
}

/// Where files' bytes are kept.
#[async_trait]
pub trait ObjectStorage: Send + Sync {
    /// A URL that takes one `PUT` of the object's bytes, without any other
    /// credential, until `expires_at` (Unix seconds).
    async fn upload_url(
        &self,
        key: &ObjectKey,
        limit: UploadLimit,
        expires_at: i64,
    ) -> Result<String, StorageError>;

    /// Stores an upload that was sent to this server (only backends whose
    /// upload URLs point here take one); returns the size stored.
    async fn receive(
        &self,
        key: &ObjectKey,
        limit: UploadLimit,
        body: UploadBody,
    ) -> Result<u64, StorageError>;

    /// The object's size, or `None` before it is uploaded.
    async fn stored_size(&self, key: &ObjectKey) -> Result<Option<u64>, StorageError>;

    /// Removes an object (an upload found over its limit after the fact).
    async fn discard(&self, key: &ObjectKey) -> Result<(), StorageError>;

    /// How to serve the object, named and typed as given, to a client whose
    /// download was verified; a redirect target is valid for `valid_for`.
    async fn download(
        &self,
        key: &ObjectKey,
        file_name: &str,
        content_type: &str,
        valid_for: Duration,
    ) -> Result<Download, StorageError>;

    /// Checks on start that the storage can be reached and used.
    async fn check(&self) -> Result<(), StorageError>;
}

/// `Content-Disposition` for a download: `attachment` with the name in
/// plain ASCII (others replaced by `_`) and in full as RFC 8187 UTF-8.
pub fn content_disposition(file_name: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    /// RFC 8187 `attr-char` is ALPHA / DIGIT / "!#$&+-.^_`|~"; all else is encoded.
    const NOT_ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let plain: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{plain}\"; filename*=UTF-8''{}",
        utf8_percent_encode(file_name, NOT_ATTR_CHAR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_carries_any_name_safely() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("Überblick \"Q3\".pdf"),
            "attachment; filename=\"_berblick _Q3_.pdf\"; filename*=UTF-8''%C3%9Cberblick%20%22Q3%22.pdf"
        );
    }
}
