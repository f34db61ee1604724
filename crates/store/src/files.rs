//! Files uploaded to channels. The bytes live in object storage; the store
//! keeps what they are, whose channel they belong to and whether they were
//! uploaded, and decides who may reach them.

use async_trait::async_trait;
use switchboard_domain::{Actor, ChannelId, CompanyId, FileId, MessageId, UnixMicros};
use switchboard_protocol::MessageAttachment;

use crate::error::StoreResult;

/// A file about to be uploaded, with the object key its bytes go under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFile {
    pub id: FileId,
    pub object_key: String,
    pub name: String,
    pub content_type: String,
    /// The upload may have at most this many bytes (exactly this many when
    /// `declared`).
    pub max_bytes: u64,
    pub declared: bool,
    pub upload_expires_at: UnixMicros,
}

/// A file of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub id: FileId,
    pub channel: ChannelId,
    pub object_key: String,
    pub name: String,
    pub content_type: String,
    pub max_bytes: u64,
    pub declared: bool,
    /// Set once the bytes are known to be stored.
    pub size: Option<u64>,
    pub created_at: UnixMicros,
    pub upload_expires_at: UnixMicros,
}

impl FileRecord {
    /// The attachment this file makes, once uploaded.
    pub fn attachment(&self) -> Option<MessageAttachment> {
        self.size.map(|size| MessageAttachment {
            id: self.id.as_str().to_owned(),
            fs_id: self.id.as_str().to_owned(),
            name: self.name.clone(),
            mime: self.content_type.clone(),
            size,
            width: None,
            height: None,
            extra: Default::default(),
        })
    }
}

/// Files of channels.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Records a file to be uploaded to the channel (members only).
    async fn create_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        file: NewFile,
    ) -> StoreResult<FileRecord>;

    /// A file of the channel (members only). Another channel's or company's
    /// file, or an unknown id, is not found.
    async fn get_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        file: &FileId,
    ) -> StoreResult<FileRecord>;

    /// A file of a channel of the company, for a company key that reads
    /// without acting as anyone (the company owns its files). Another
    /// channel's or company's file, or an unknown id, is not found.
    async fn get_company_file(
        &self,
        company: &CompanyId,
        channel: &ChannelId,
        file: &FileId,
    ) -> StoreResult<FileRecord>;

    /// Records that the file's bytes are stored, `size` of them. Recording it
    /// again changes nothing.
    async fn record_upload(&self, file: &FileId, size: u64) -> StoreResult<()>;

    /// A file attached to a live message of the channel, for a member.
    async fn message_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        file: &FileId,
    ) -> StoreResult<FileRecord>;

    /// Whether the message still exists (not deleted, nor its channel) and
    /// still carries the file stored under `object_key`: checked before
    /// every download.
    async fn still_attached(&self, message: &MessageId, object_key: &str) -> StoreResult<bool>;
}
