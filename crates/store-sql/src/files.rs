//! Files of channels: records of uploads and the checks that guard them.

use crate::db::Db;
use async_trait::async_trait;
use switchboard_domain::{Actor, ChannelId, CompanyId, FileId, MessageId, now_micros};
use switchboard_protocol::MessageAttachment;
use switchboard_store::{ConfirmedUpload, FileRecord, FileStore, NewFile, StoreError, StoreResult};

use crate::backend::{Backend, SqlStore};
use crate::failure::Outcome;
use crate::load;

const FILE_COLUMNS: &str = "id, channel_id, object_key, name, content_type, max_bytes, declared, size, \
     created_at, upload_expires_at";

stored_row! {
    pub struct FileRow {
        pub id: String,
        pub channel_id: String,
        pub object_key: String,
        pub name: String,
        pub content_type: String,
        pub max_bytes: i64,
        pub declared: bool,
        pub size: Option<i64>,
        pub created_at: i64,
        pub upload_expires_at: i64,
    }
}

impl From<FileRow> for FileRecord {
    fn from(row: FileRow) -> Self {
        FileRecord {
            id: FileId::from_stored(row.id),
            channel: ChannelId::from_stored(row.channel_id),
            object_key: row.object_key,
            name: row.name,
            content_type: row.content_type,
            max_bytes: row.max_bytes as u64,
            declared: row.declared,
            size: row.size.map(|size| size as u64),
            created_at: row.created_at,
            upload_expires_at: row.upload_expires_at,
        }
    }
}

/// The file of the actor's company and of this channel, if there is one.
async fn file_of_channel(
    conn: &mut impl Db,
    company: &CompanyId,
    channel: &ChannelId,
    file: &str,
) -> Outcome<Option<FileRecord>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE id = $1 AND channel_id = $2 AND company_id = $3"
    );
    let row = conn
        .fetch_optional::<FileRow>(&sql, args![file, channel.as_str(), company.as_str()])
        .await?;
    Ok(row.map(FileRecord::from))
}

#[async_trait]
impl<B: Backend> FileStore for SqlStore<B> {
    async fn create_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        file: NewFile,
    ) -> StoreResult<FileRecord> {
        change!(self, (actor, channel, file), |tx| {
            load::channel_as_member(tx, actor, channel).await?;
            tx.execute(
                "INSERT INTO files (id, company_id, channel_id, uploader_id, object_key, name, content_type, \
                 max_bytes, declared, created_at, upload_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                args![
                    file.id.as_str(),
                    actor.company.as_str(),
                    channel.as_str(),
                    actor.user.as_str(),
                    &file.object_key,
                    &file.name,
                    &file.content_type,
                    file.max_bytes as i64,
                    file.declared,
                    now_micros(),
                    file.upload_expires_at,
                ],
            )
            .await?;
            let record = file_of_channel(tx, &actor.company, channel, file.id.as_str())
                .await?
                .ok_or_else(|| StoreError::not_found("file", &file.id))?;
            Ok(record)
        })
    }

    async fn get_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        file: &FileId,
    ) -> StoreResult<FileRecord> {
        query!(self, (actor, channel, file), |conn| {
            load::channel_as_member(conn, actor, channel).await?;
            Ok(
                file_of_channel(conn, &actor.company, channel, file.as_str())
                    .await?
                    .ok_or_else(|| StoreError::not_found("file", file))?,
            )
        })
    }

    async fn get_company_file(
        &self,
        company: &CompanyId,
        channel: &ChannelId,
        file: &FileId,
    ) -> StoreResult<FileRecord> {
        query!(self, (company, channel, file), |conn| {
            Ok(file_of_channel(conn, company, channel, file.as_str())
                .await?
                .ok_or_else(|| StoreError::not_found("file", file))?)
        })
    }

    async fn record_upload(&self, file: &FileId, size: u64) -> StoreResult<()> {
        change!(self, (file, size), |tx| record_upload(
            tx,
            file.as_str(),
            *size
        )
        .await)
    }

    async fn message_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        file: &FileId,
    ) -> StoreResult<FileRecord> {
        query!(self, (actor, channel, message, file), |conn| {
            load::channel_as_member(conn, actor, channel).await?;
            let row = load::live_message_row(conn, channel, message).await?;
            if !carries(&row.attachments, file.as_str())? {
                return Err(StoreError::not_found("file", file).into());
            }
            Ok(
                file_of_channel(conn, &actor.company, channel, file.as_str())
                    .await?
                    .ok_or_else(|| StoreError::not_found("file", file))?,
            )
        })
    }

    async fn still_attached(&self, message: &MessageId, object_key: &str) -> StoreResult<bool> {
        query!(self, (message, object_key), |conn| {
            let found: Option<(String, String)> = conn.fetch_optional(
                "SELECT m.attachments, f.id FROM messages m \
             JOIN channels c ON c.id = m.channel_id AND c.deleted_at IS NULL \
             JOIN files f ON f.object_key = $1 AND f.channel_id = m.channel_id AND f.size IS NOT NULL \
             WHERE m.id = $2 AND m.deleted_at IS NULL",
                args![object_key, message.as_str()],
            )
        .await?;
            let Some((attachments, file)) = found else {
                return Ok(false);
            };
            carries(&attachments, &file)
        })
    }
}

/// Whether a message's attachments (as stored, JSON) include the file.
fn carries(attachments: &str, file: &str) -> Outcome<bool> {
    let attachments: Vec<MessageAttachment> = serde_json::from_str(attachments)?;
    Ok(attachments.iter().any(|attached| attached.id == file))
}

/// The attachments for these file ids, in order: each must be a file of the
/// actor's company and of this channel whose upload is recorded. `field`
/// names the list in errors (`attachments`, `set.attachments`).
///
/// A file whose upload is not recorded yet is recorded here when the caller
/// confirmed it in the object storage (`confirmed`); any left unconfirmed
/// fail the change with [`StoreError::UploadsUnconfirmed`], for the caller to
/// confirm them and make the change again.
pub(crate) async fn resolve_attachments(
    conn: &mut impl Db,
    actor: &Actor,
    channel: &ChannelId,
    field: &str,
    ids: &[String],
    confirmed: &[ConfirmedUpload],
) -> Outcome<Vec<MessageAttachment>> {
    let mut attachments: Vec<MessageAttachment> = Vec::with_capacity(ids.len());
    let mut unconfirmed = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let at = format!("{field}[{index}].id");
        if attachments.iter().any(|attached| &attached.id == id) {
            return Err(StoreError::invalid(at, format!("file `{id}` is attached twice")).into());
        }
        let file = file_of_channel(conn, &actor.company, channel, id)
            .await?
            .ok_or_else(|| {
                StoreError::unknown_reference(
                    &at,
                    format!("no file `{id}` was uploaded to this channel"),
                )
            })?;
        let mut file = file;
        if file.size.is_none()
            && let Some(upload) = confirmed.iter().find(|upload| upload.file == *id)
        {
            record_upload(conn, id, upload.size).await?;
            file.size = Some(upload.size);
        }
        match file.attachment() {
            Some(attachment) => attachments.push(attachment),
            None => unconfirmed.push((at, file)),
        }
    }
    if !unconfirmed.is_empty() {
        return Err(StoreError::UploadsUnconfirmed(unconfirmed).into());
    }
    Ok(attachments)
}

/// Records that a file's bytes are stored (once: a recorded size stays).
async fn record_upload(conn: &mut impl Db, file: &str, size: u64) -> Outcome<()> {
    let size = i64::try_from(size).map_err(|_| StoreError::invalid("size", "is too large"))?;
    conn.execute(
        "UPDATE files SET size = $1, uploaded_at = $2 WHERE id = $3 AND size IS NULL",
        args![size, now_micros(), file],
    )
    .await?;
    Ok(())
}
