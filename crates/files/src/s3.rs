//! S3-compatible object storage: clients upload straight to the bucket with
//! an S3 presigned `PUT`, and downloads, once this server has checked them,
//! are sent on to an S3 presigned `GET` that lives a minute at most.
//!
//! A declared size is signed into the upload URL as its `Content-Length`, so
//! the storage service itself refuses a body of any other length. Without a
//! declared size S3 cannot bound an upload; its size is checked when the file
//! is first looked at, and an object over the limit is removed then.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use secrecy::{ExposeSecret, SecretString};

use crate::object_key::ObjectKey;
use crate::storage::{
    Download, ObjectStorage, StorageError, UploadBody, UploadLimit, content_disposition,
};
use crate::unix_now;

/// Where the bucket is and how to reach it.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// Another S3-compatible service than AWS (`http://127.0.0.1:9000`).
    pub endpoint_url: Option<String>,
    /// Address buckets in the path (`host/bucket/key`) rather than the host name.
    pub force_path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

/// A bucket of an S3-compatible service.
#[derive(Clone, Debug)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Storage {
    pub fn new(settings: &S3Settings) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(Credentials::new(
                settings.access_key_id.clone(),
                settings.secret_access_key.expose_secret().to_owned(),
                None,
                None,
                "switchboard-files",
            ))
            .http_client(http)
            .force_path_style(settings.force_path_style);
        if let Some(endpoint) = &settings.endpoint_url {
            config = config.endpoint_url(endpoint.clone());
        }
        S3Storage {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
        }
    }
}

fn failed(operation: &str, err: impl std::error::Error) -> StorageError {
    StorageError::Backend(format!("S3 {operation}: {}", DisplayErrorContext(err)))
}

fn presigning(valid_for: Duration) -> Result<PresigningConfig, StorageError> {
    PresigningConfig::expires_in(valid_for.max(Duration::from_secs(1)))
        .map_err(|err| failed("presigning", err))
}

#[async_trait]
impl ObjectStorage for S3Storage {
    async fn upload_url(
        &self,
        key: &ObjectKey,
        limit: UploadLimit,
        expires_at: i64,
    ) -> Result<String, StorageError> {
        let valid_for = Duration::from_secs(expires_at.saturating_sub(unix_now()).max(1) as u64);
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_content_length(limit.exact.then_some(limit.max_bytes as i64))
            .presigned(presigning(valid_for)?)
            .await
            .map_err(|err| failed("presigning PutObject", err))?;
        Ok(presigned.uri().to_owned())
    }

    async fn receive(
        &self,
        _key: &ObjectKey,
        _limit: UploadLimit,
        _body: UploadBody,
    ) -> Result<u64, StorageError> {
        Err(StorageError::NotReceivedHere)
    }

    async fn stored_size(&self, key: &ObjectKey) -> Result<Option<u64>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(head) => Ok(Some(head.content_length().unwrap_or(0).max(0) as u64)),
            Err(err) if err.as_service_error().is_some_and(|err| err.is_not_found()) => Ok(None),
            Err(err) => Err(failed("HeadObject", err)),
        }
    }

    async fn discard(&self, key: &ObjectKey) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|err| failed("DeleteObject", err))?;
        Ok(())
    }

    async fn download(
        &self,
        key: &ObjectKey,
        file_name: &str,
        content_type: &str,
        valid_for: Duration,
    ) -> Result<Download, StorageError> {
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .response_content_type(content_type)
            .response_content_disposition(content_disposition(file_name))
            .presigned(presigning(valid_for)?)
            .await
            .map_err(|err| failed("presigning GetObject", err))?;
        Ok(Download::Redirect(presigned.uri().to_owned()))
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|err| failed(&format!("HeadBucket `{}`", self.bucket), err))?;
        Ok(())
    }
}
