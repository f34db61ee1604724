//! The embedded default: objects as files under the data directory
//! (`files/objects/<2 hex>/<key>`). An upload is streamed to a temporary file
//! and cut off as soon as it passes its size limit; only a complete upload is
//! linked into place, and never over an existing object (one object per
//! upload URL). Downloads are served from the file, in ranges if asked.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio::fs::{self, OpenOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::object_key::ObjectKey;
use crate::signed_url::{Access, Grant, UrlSigner};
use crate::storage::{Download, ObjectStorage, StorageError, UploadBody, UploadLimit};

/// Objects on local disk; this server takes the uploads and serves the
/// downloads, through URLs it signs itself.
#[derive(Clone, Debug)]
pub struct LocalDisk {
    objects: PathBuf,
    incoming: PathBuf,
    signer: UrlSigner,
    /// `{public URL}/files/`: where object URLs start.
    object_urls: String,
}

impl LocalDisk {
    /// Uses (and creates) `root/objects` and `root/incoming`; upload URLs
    /// start with `public_url` (how clients reach this server) and are signed
    /// by `signer`.
    pub async fn open(root: &Path, signer: UrlSigner, public_url: &str) -> std::io::Result<Self> {
        let disk = LocalDisk {
            objects: root.join("objects"),
            incoming: root.join("incoming"),
            signer,
            object_urls: format!("{}/files/", public_url.trim_end_matches('/')),
        };
        fs::create_dir_all(&disk.objects).await?;
        fs::create_dir_all(&disk.incoming).await?;
        Ok(disk)
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        // `obj_` + hex: the first two digits spread objects over 256 directories.
        self.objects.join(&key.as_str()[4..6]).join(key.as_str())
    }

    async fn receive_into(
        &self,
        temporary: &Path,
        limit: UploadLimit,
        body: &mut (impl AsyncRead + Unpin),
    ) -> Result<u64, StorageError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temporary)
            .await?;
        let mut buffer = vec![0u8; 64 * 1024];
        let mut size: u64 = 0;
        loop {
            let read = body.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            size += read as u64;
            if size > limit.max_bytes {
                return Err(StorageError::TooLarge {
                    max_bytes: limit.max_bytes,
                });
            }
            file.write_all(&buffer[..read]).await?;
        }
        if limit.exact && size != limit.max_bytes {
            return Err(StorageError::SizeMismatch {
                declared: limit.max_bytes,
                received: size,
            });
        }
        file.sync_all().await?;
        Ok(size)
    }
}

#[async_trait]
impl ObjectStorage for LocalDisk {
    async fn upload_url(
        &self,
        key: &ObjectKey,
        limit: UploadLimit,
        expires_at: i64,
    ) -> Result<String, StorageError> {
        let grant = Grant {
            key: key.clone(),
            access: Access::Upload {
                max_bytes: limit.max_bytes,
                exact: limit.exact,
            },
            expires_at,
        };
        Ok(format!(
            "{}{}?{}",
            self.object_urls,
            key.as_str(),
            self.signer.query(&grant)
        ))
    }

    /// Streams `body` to a temporary file, cut off past the limit; only a
    /// complete upload is linked into place, and never over an object.
    async fn receive(
        &self,
        key: &ObjectKey,
        limit: UploadLimit,
        mut body: UploadBody,
    ) -> Result<u64, StorageError> {
        let target = self.path(key);
        if fs::try_exists(&target).await? {
            return Err(StorageError::AlreadyExists);
        }
        let temporary = self.incoming.join(format!(
            "{}.{}",
            key.as_str(),
            ObjectKey::generate().as_str()
        ));
        let size = match self.receive_into(&temporary, limit, &mut body).await {
            Ok(size) => size,
            Err(err) => {
                let _ = fs::remove_file(&temporary).await;
                return Err(err);
            }
        };
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).await?;
        }
        // A hard link fails if the object exists, unlike a rename.
        let linked = fs::hard_link(&temporary, &target).await;
        let _ = fs::remove_file(&temporary).await;
        linked?;
        Ok(size)
    }

    async fn stored_size(&self, key: &ObjectKey) -> Result<Option<u64>, StorageError> {
        match fs::metadata(self.path(key)).await {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn discard(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match fs::remove_file(self.path(key)).await {
            Err(err) if err.kind() != ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }

    async fn download(
        &self,
        key: &ObjectKey,
        _file_name: &str,
        _content_type: &str,
        _valid_for: Duration,
    ) -> Result<Download, StorageError> {
        let path = self.path(key);
        if !fs::try_exists(&path).await? {
            return Err(StorageError::NotFound);
        }
        Ok(Download::File(path))
    }

    async fn check(&self) -> Result<(), StorageError> {
        let probe = self
            .incoming
            .join(format!("check.{}", ObjectKey::generate().as_str()));
        fs::write(&probe, b"").await.map_err(|err| {
            StorageError::Backend(format!(
                "cannot write to {}: {err}",
                self.incoming.display()
            ))
        })?;
        fs::remove_file(&probe).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn disk(dir: &Path) -> LocalDisk {
        LocalDisk::open(dir, UrlSigner::new(b"k"), "http://127.0.0.1:1/")
            .await
            .unwrap()
    }

    fn at_most(max_bytes: u64) -> UploadLimit {
        UploadLimit {
            max_bytes,
            exact: false,
        }
    }

    async fn assert_nothing_incoming(dir: &Path) {
        let mut incoming = fs::read_dir(dir.join("incoming")).await.unwrap();
        assert!(incoming.next_entry().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn uploads_are_stored_once_within_their_limit_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let disk = disk(dir.path()).await;
        disk.check().await.unwrap();
        let key = ObjectKey::generate();
        assert_eq!(disk.stored_size(&key).await.unwrap(), None);
        let url = disk.upload_url(&key, at_most(9), 100).await.unwrap();
        assert!(
            url.starts_with(&format!("http://127.0.0.1:1/files/{}?op=put", key.as_str())),
            "{url}"
        );
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let stored = disk
            .receive(
                &key,
                at_most(200_000),
                Box::pin(std::io::Cursor::new(bytes.clone())),
            )
            .await
            .unwrap();
        assert_eq!(stored, 200_000);
        assert_eq!(disk.stored_size(&key).await.unwrap(), Some(200_000));
        let Download::File(path) = disk
            .download(&key, "a", "b/c", Duration::ZERO)
            .await
            .unwrap()
        else {
            panic!("local disk serves files itself")
        };
        assert_eq!(fs::read(path).await.unwrap(), bytes);
        assert!(matches!(
            disk.receive(&key, at_most(10), Box::pin(&b"again"[..]))
                .await,
            Err(StorageError::AlreadyExists)
        ));
        assert_nothing_incoming(dir.path()).await;
    }

    #[tokio::test]
    async fn an_upload_past_its_limit_or_off_its_declared_size_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let disk = disk(dir.path()).await;
        let key = ObjectKey::generate();
        let too_much = vec![7u8; 100_001];
        assert!(matches!(
            disk.receive(
                &key,
                at_most(100_000),
                Box::pin(std::io::Cursor::new(too_much))
            )
            .await,
            Err(StorageError::TooLarge { max_bytes: 100_000 })
        ));
        let exact = UploadLimit {
            max_bytes: 10,
            exact: true,
        };
        assert!(matches!(
            disk.receive(&key, exact, Box::pin(&b"short"[..])).await,
            Err(StorageError::SizeMismatch {
                declared: 10,
                received: 5
            })
        ));
        assert_eq!(disk.stored_size(&key).await.unwrap(), None);
        assert_nothing_incoming(dir.path()).await;
        assert!(matches!(
            disk.download(&key, "a", "b/c", Duration::ZERO).await,
            Err(StorageError::NotFound)
        ));
        assert_eq!(
            disk.receive(&key, exact, Box::pin(&b"0123456789"[..]))
                .await
                .unwrap(),
            10
        );
        disk.discard(&key).await.unwrap();
        assert_eq!(disk.stored_size(&key).await.unwrap(), None);
    }
}
