//! Object storage for the files people and bots share in channels.
//!
//! Files are stored under content-independent keys ([`ObjectKey`]) that leak
//! no channel, user or file name. Uploads and downloads go through URLs that
//! carry their own authority — no `Authorization` header — and expire:
//! [`signed_url`] makes and checks the server's own HMAC-signed URLs for the
//! local-disk backend ([`local_disk`]), which streams bytes to and from disk
//! without holding a whole file in memory and cuts an upload off at its size
//! limit.
//!
//! The S3-compatible backend and the routes that use this crate come next.

pub mod local_disk;
pub mod object_key;
pub mod signed_url;

pub use local_disk::{LocalDisk, StoreError};
pub use object_key::ObjectKey;
pub use signed_url::{Access, Grant, UrlError, UrlSigner};
