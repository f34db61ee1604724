//! Files of channels: records of uploads and the checks that guard them.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use switchboard_domain::{Actor, ChannelId, CompanyId, FileId, MessageId, now_micros};
use switchboard_protocol::MessageAttachment;
use switchboard_store::{FileRecord, FileStore, NewFile, StoreError, StoreResult};

use crate::SqliteStore;
use crate::failure::{Failure, Outcome};
use crate::load;

const FILE_COLUMNS: &str = "id, channel_id, object_key, name, content_type, max_bytes, declared, size, \
     created_at, upload_expires_at";

#[derive(sqlx::FromRow)]
struct FileRow {
    id: String,
    channel_id: String,
    object_key: String,
    name: String,
    content_type: String,
    max_bytes: i64,
    declared: bool,
    size: Option<i64>,
    created_at: i64,
    upload_expires_at: i64,
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
    conn: &mut SqliteConnection,
    company: &CompanyId,
    channel: &ChannelId,
    file: &str,
) -> Outcome<Option<FileRecord>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE id = ? AND channel_id = ? AND company_id = ?"
    );
    let row = sqlx::query_as::<_, FileRow>(&sql)
        .bind(file)
        .bind(channel.as_str())
        .bind(company.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(FileRecord::from))
}

#[async_trait]
impl FileStore for SqliteStore {
    async fn create_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        file: NewFile,
    ) -> StoreResult<FileRecord> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::channel_as_member(&mut tx, actor, channel).await?;
        sqlx::query(
            "INSERT INTO files (id, company_id, channel_id, uploader_id, object_key, name, content_type, \
             max_bytes, declared, created_at, upload_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(file.id.as_str())
        .bind(actor.company.as_str())
        .bind(channel.as_str())
        .bind(actor.user.as_str())
        .bind(&file.object_key)
        .bind(&file.name)
        .bind(&file.content_type)
        .bind(file.max_bytes as i64)
        .bind(file.declared)
        .bind(now_micros())
        .bind(file.upload_expires_at)
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let record = file_of_channel(&mut tx, &actor.company, channel, file.id.as_str())
            .await?
            .ok_or_else(|| StoreError::not_found("file", &file.id))?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(record)
    }

    async fn get_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        file: &FileId,
    ) -> StoreResult<FileRecord> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        load::channel_as_member(&mut conn, actor, channel).await?;
        Ok(
            file_of_channel(&mut conn, &actor.company, channel, file.as_str())
                .await?
                .ok_or_else(|| StoreError::not_found("file", file))?,
        )
    }

    async fn get_company_file(
        &self,
        company: &CompanyId,
        channel: &ChannelId,
        file: &FileId,
    ) -> StoreResult<FileRecord> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        Ok(file_of_channel(&mut conn, company, channel, file.as_str())
            .await?
            .ok_or_else(|| StoreError::not_found("file", file))?)
    }

    async fn record_upload(&self, file: &FileId, size: u64) -> StoreResult<()> {
        sqlx::query("UPDATE files SET size = ?, uploaded_at = ? WHERE id = ? AND size IS NULL")
            .bind(size as i64)
            .bind(now_micros())
            .bind(file.as_str())
            .execute(&self.writer)
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    async fn message_file(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        file: &FileId,
    ) -> StoreResult<FileRecord> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        load::channel_as_member(&mut conn, actor, channel).await?;
        let row = load::live_message_row(&mut conn, channel, message).await?;
        if !carries(&row.attachments, file.as_str())? {
            return Err(StoreError::not_found("file", file));
        }
        Ok(
            file_of_channel(&mut conn, &actor.company, channel, file.as_str())
                .await?
                .ok_or_else(|| StoreError::not_found("file", file))?,
        )
    }

    async fn still_attached(&self, message: &MessageId, object_key: &str) -> StoreResult<bool> {
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT m.attachments, f.id FROM messages m \
             JOIN channels c ON c.id = m.channel_id AND c.deleted_at IS NULL \
             JOIN files f ON f.object_key = ? AND f.channel_id = m.channel_id AND f.size IS NOT NULL \
             WHERE m.id = ? AND m.deleted_at IS NULL",
        )
        .bind(object_key)
        .bind(message.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(Failure::from)?;
        let Some((attachments, file)) = found else {
            return Ok(false);
        };
        Ok(carries(&attachments, &file)?)
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
pub(crate) async fn resolve_attachments(
    conn: &mut SqliteConnection,
    actor: &Actor,
    channel: &ChannelId,
    field: &str,
    ids: &[String],
) -> Outcome<Vec<MessageAttachment>> {
    let mut attachments: Vec<MessageAttachment> = Vec::with_capacity(ids.len());
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
        let attachment = file.attachment().ok_or_else(|| {
            StoreError::Conflict(format!(
                "{at}: file `{id}` has not been uploaded yet; PUT its bytes to its upload URL first"
            ))
        })?;
        attachments.push(attachment);
    }
    Ok(attachments)
}
