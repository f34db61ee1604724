//! The embedded default: objects as files under the data directory
//! (`files/objects/<2 hex>/<key>`). An upload is streamed to a temporary file
//! and cut off as soon as it passes its size limit; only a complete upload is
//! renamed into place, and never over an existing object (one object per
//! upload URL). Reads stream from the file.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::object_key::ObjectKey;

/// Why storing or reading an object failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such file")]
    NotFound,
    #[error("the file was already uploaded")]
    AlreadyExists,
    #[error("the upload is larger than the {max_bytes} bytes it may have")]
    TooLarge { max_bytes: u64 },
    #[error("file storage failed")]
    Io(#[source] std::io::Error),
}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        match err.kind() {
            ErrorKind::NotFound => StoreError::NotFound,
            ErrorKind::AlreadyExists => StoreError::AlreadyExists,
            _ => StoreError::Io(err),
        }
    }
}

/// Objects on local disk.
#[derive(Clone, Debug)]
pub struct LocalDisk {
    objects: PathBuf,
    incoming: PathBuf,
}

impl LocalDisk {
    /// Uses (and creates) `root/objects` and `root/incoming`.
    pub async fn open(root: &Path) -> std::io::Result<Self> {
        let disk = LocalDisk {
            objects: root.join("objects"),
            incoming: root.join("incoming"),
        };
        fs::create_dir_all(&disk.objects).await?;
        fs::create_dir_all(&disk.incoming).await?;
        Ok(disk)
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        // `obj_` + hex: the first two digits spread objects over 256 directories.
        self.objects.join(&key.as_str()[4..6]).join(key.as_str())
    }

    /// Streams `body` into the object `key`, at most `max_bytes` bytes;
    /// returns the size stored.
    pub async fn write(
        &self,
        key: &ObjectKey,
        max_bytes: u64,
        mut body: impl AsyncRead + Unpin,
    ) -> Result<u64, StoreError> {
        let target = self.path(key);
        if fs::try_exists(&target).await? {
            return Err(StoreError::AlreadyExists);
        }
        let temporary = self.incoming.join(format!(
            "{}.{}",
            key.as_str(),
            ObjectKey::generate().as_str()
        ));
        let written = self.receive(&temporary, max_bytes, &mut body).await;
        let size = match written {
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

    async fn receive(
        &self,
        temporary: &Path,
        max_bytes: u64,
        body: &mut (impl AsyncRead + Unpin),
    ) -> Result<u64, StoreError> {
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
            if size > max_bytes {
                return Err(StoreError::TooLarge { max_bytes });
            }
            file.write_all(&buffer[..read]).await?;
        }
        file.sync_all().await?;
        Ok(size)
    }

    /// The object's file, open for reading, and its size.
    pub async fn open_object(&self, key: &ObjectKey) -> Result<(File, u64), StoreError> {
        let file = File::open(self.path(key)).await?;
        let size = file.metadata().await?.len();
        Ok((file, size))
    }

    /// The object's size, if it was uploaded.
    pub async fn size(&self, key: &ObjectKey) -> Result<Option<u64>, StoreError> {
        match fs::metadata(self.path(key)).await {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::Io(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncSeekExt;

    #[tokio::test]
    async fn uploads_are_stored_once_within_their_limit_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let disk = LocalDisk::open(dir.path()).await.unwrap();
        let key = ObjectKey::generate();
        assert_eq!(disk.size(&key).await.unwrap(), None);
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let stored = disk.write(&key, 200_000, bytes.as_slice()).await.unwrap();
        assert_eq!(stored, 200_000);
        assert_eq!(disk.size(&key).await.unwrap(), Some(200_000));
        let (mut file, size) = disk.open_object(&key).await.unwrap();
        assert_eq!(size, 200_000);
        file.seek(std::io::SeekFrom::Start(150_000)).await.unwrap();
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).await.unwrap();
        assert_eq!(tail, bytes[150_000..]);
        assert!(matches!(
            disk.write(&key, 10, &b"again"[..]).await,
            Err(StoreError::AlreadyExists)
        ));
        // Nothing is left behind in the incoming directory.
        let mut incoming = fs::read_dir(dir.path().join("incoming")).await.unwrap();
        assert!(incoming.next_entry().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_upload_past_its_limit_is_cut_off_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let disk = LocalDisk::open(dir.path()).await.unwrap();
        let key = ObjectKey::generate();
        let too_much = vec![7u8; 100_001];
        assert!(matches!(
            disk.write(&key, 100_000, too_much.as_slice()).await,
            Err(StoreError::TooLarge { max_bytes: 100_000 })
        ));
        assert_eq!(disk.size(&key).await.unwrap(), None);
        let mut incoming = fs::read_dir(dir.path().join("incoming")).await.unwrap();
        assert!(incoming.next_entry().await.unwrap().is_none());
        assert!(matches!(
            disk.open_object(&key).await,
            Err(StoreError::NotFound)
        ));
    }
}
