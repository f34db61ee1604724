//! Files: UploadFile, GetUploadedFileInfo and GetMessageFileDownloadUrl
//! (bearer credentials, channel members only), and the object URLs they hand
//! out, `PUT`/`GET /files/{key}`, which carry their own signed authority
//! instead of a credential.
//!
//! A file's upload is recorded the first time it is looked at after its
//! bytes are stored (asking the storage whether the object is there), so an
//! upload that went straight to S3, or one whose recording a crash cut off,
//! counts as soon as the object exists.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::TryStreamExt;
use switchboard_domain::{FileId, MessageId, validation};
use switchboard_files::{Access, Download, ObjectKey, StorageError, UploadLimit, UrlError};
use switchboard_protocol::Timestamp;
use switchboard_protocol::api::{
    FileResponse, FileUrlResponse, UploadFileRequest, UploadFileResponse,
};
use switchboard_store::{ConfirmedUpload, FileRecord, NewFile, StoreError, StoreResult};
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::AppState;
use crate::error::{ApiError, ApiResult, excerpt};
use crate::extract::{Acting, ActingAs, ActingJson, ApiQuery, Auth};
use crate::paths::{ChannelPath, FilePath, MessageFilePath};

/// Announces a file of the channel and answers where to `PUT` its bytes.
#[utoipa::path(post, path = "/v2/conversations/channels/{channelId}/files", tag = tags::FILES,
    params(("channelId" = String, Path), ActingAs),
    request_body = UploadFileRequest,
    responses((status = 200, body = UploadFileResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn upload_file(
    State(app): State<AppState>,
    ChannelPath { channel }: ChannelPath,
    ActingJson { actor, body }: ActingJson<UploadFileRequest>,
) -> ApiResult<Json<UploadFileResponse>> {
    validation::file_name("name", &body.name)?;
    let content_type = match body.content_type {
        Some(content_type) => {
            validation::content_type("contentType", &content_type)?;
            content_type
        }
        None => mime_guess::from_path(&body.name)
            .first_or_octet_stream()
            .essence_str()
            .to_owned(),
    };
    let max_bytes = app.files.settings().max_bytes;
    if let Some(size) = body.size
        && size > max_bytes
    {
        return Err(ApiError::validation(format!(
            "size: {size} bytes is more than the {max_bytes} bytes a file may have"
        )));
    }
    let upload = app
        .files
        .new_upload(body.size)
        .await
        .map_err(storage_failure)?;
    let expires_at = upload.expires_at * 1_000_000;
    let file = app
        .store
        .create_file(
            &actor,
            &channel,
            NewFile {
                id: FileId::generate(),
                object_key: upload.key.as_str().to_owned(),
                name: body.name,
                content_type,
                max_bytes: upload.limit.max_bytes,
                declared: upload.limit.exact,
                upload_expires_at: expires_at,
            },
        )
        .await?;
    Ok(Json(UploadFileResponse {
        file_id: file.id.into_string(),
        presigned_upload_url: upload.url,
        expires_at: Timestamp::from_unix_micros(expires_at),
    }))
}

/// The file as an attachment, once its bytes are uploaded (`file` is absent
/// before). A company key may leave out `userId`: the company reads its own
/// file without acting as a member.
#[utoipa::path(get, path = "/v2/conversations/channels/{channelId}/files/{fileId}", tag = tags::FILES,
    params(("channelId" = String, Path), ("fileId" = String, Path), ActingAs),
    responses((status = 200, body = FileResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn get_uploaded_file(
    State(app): State<AppState>,
    auth: Auth,
    FilePath { channel, file }: FilePath,
    ApiQuery(acting): ApiQuery<ActingAs>,
) -> ApiResult<Json<FileResponse>> {
    // A company key without userId reads what the company owns; with
    // userId, and with other credentials, the reader must be a member.
    let record = match acting.user_id.as_deref() {
        None if auth.0.is_company_key() => {
            app.store
                .get_company_file(auth.company(), &channel, &file)
                .await?
        }
        user => {
            let actor = auth.actor(user, None)?;
            app.store.get_file(&actor, &channel, &file).await?
        }
    };
    let record = confirm_upload(&app, record).await?;
    Ok(Json(FileResponse {
        file: record.attachment(),
    }))
}

/// A short-lived URL that downloads a file attached to the message; it stops
/// working when it expires or the message is deleted or no longer carries
/// the file.
#[utoipa::path(get, path = "/v2/conversations/channels/{channelId}/messages/{messageId}/files/{fileId}/url",
    tag = tags::FILES,
    params(("channelId" = String, Path), ("messageId" = String, Path), ("fileId" = String, Path), ActingAs),
    responses((status = 200, body = FileUrlResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn file_download_url(
    State(app): State<AppState>,
    Acting(actor): Acting,
    MessageFilePath {
        channel,
        message,
        file,
    }: MessageFilePath,
) -> ApiResult<Json<FileUrlResponse>> {
    let record = app
        .store
        .message_file(&actor, &channel, &message, &file)
        .await?;
    let (url, expires_at) = app.files.download_url(
        &stored_key(&record)?,
        message.as_str(),
        &record.name,
        &record.content_type,
    );
    Ok(Json(FileUrlResponse {
        url,
        expires_at: Timestamp::from_unix_micros(expires_at * 1_000_000),
    }))
}

/// Takes the bytes of a file: one `PUT` to the URL UploadFile answered. The
/// body is streamed to storage and cut off as soon as it passes the limit.
#[utoipa::path(put, path = "/files/{key}", tag = tags::FILES, security(()),
    params(("key" = String, Path, description = "The object key from the upload URL; keep the URL's query as it is")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "Stored"),
        (status = 403, description = "The URL was changed or expired", body = switchboard_protocol::ErrorBody),
        (status = 409, description = "The file was already uploaded", body = switchboard_protocol::ErrorBody),
        (status = 413, description = "Larger than the file may be", body = switchboard_protocol::ErrorBody)))]
pub async fn put_object(
    State(app): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let grant = app
        .files
        .verify(&key, query.as_deref().unwrap_or_default())
        .map_err(refused)?;
    let Access::Upload { max_bytes, exact } = grant.access else {
        return Err(ApiError::forbidden(
            "this URL is for downloading, not uploading",
        ));
    };
    let storage = app.files.storage();
    if storage
        .stored_size(&grant.key)
        .await
        .map_err(storage_failure)?
        .is_some()
    {
        return Err(ApiError::conflict(StorageError::AlreadyExists.to_string()));
    }
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(length) = declared_length {
        if length > max_bytes {
            return Err(too_large(max_bytes));
        }
        if exact && length != max_bytes {
            return Err(ApiError::validation(format!(
                "the upload has {length} bytes but the file was declared with {max_bytes}"
            )));
        }
    }
    let reader =
        tokio_util::io::StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    storage
        .receive(
            &grant.key,
            UploadLimit { max_bytes, exact },
            Box::pin(reader),
        )
        .await
        .map_err(|err| match err {
            StorageError::TooLarge { max_bytes } => too_large(max_bytes),
            StorageError::SizeMismatch { .. } => ApiError::validation(err.to_string()),
            StorageError::AlreadyExists => ApiError::conflict(err.to_string()),
            StorageError::NotReceivedHere | StorageError::NotFound => {
                ApiError::not_found(err.to_string())
            }
            StorageError::Backend(_) => storage_failure(err),
        })?;
    Ok(StatusCode::OK)
}

/// Serves the bytes of a file attached to a message, as the URL that
/// GetMessageFileDownloadUrl answered allows: with its name and type, in
/// ranges when asked, while the message carries the file.
#[utoipa::path(get, path = "/files/{key}", tag = tags::FILES, security(()),
    params(("key" = String, Path, description = "The object key from the download URL; keep the URL's query as it is"),
        ("Range" = Option<String>, Header, description = "`bytes=start-end`")),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for"),
        (status = 307, description = "On to the storage service's own short-lived URL"),
        (status = 403, description = "The URL was changed or expired", body = switchboard_protocol::ErrorBody),
        (status = 404, description = "The message was deleted or no longer carries the file", body = switchboard_protocol::ErrorBody)))]
pub async fn get_object(
    State(app): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> ApiResult<Response> {
    let grant = app
        .files
        .verify(&key, query.as_deref().unwrap_or_default())
        .map_err(refused)?;
    let Access::Download {
        message_id,
        file_name,
        content_type,
    } = &grant.access
    else {
        return Err(ApiError::forbidden(
            "this URL is for uploading, not downloading",
        ));
    };
    let message = MessageId::parse(message_id)
        .ok_or_else(|| ApiError::forbidden("the URL names no message"))?;
    if !app
        .store
        .still_attached(&message, grant.key.as_str())
        .await?
    {
        return Err(ApiError::not_found(
            "this file is no longer available here: the message that shared it was deleted or no longer carries it",
        ));
    }
    let download = app
        .files
        .storage()
        .download(
            &grant.key,
            file_name,
            content_type,
            app.files.redirect_lifetime(&grant),
        )
        .await
        .map_err(|err| match err {
            StorageError::NotFound => ApiError::not_found("the file's bytes are not in storage"),
            err => storage_failure(err),
        })?;
    match download {
        Download::Redirect(url) => Ok(Redirect::temporary(&url).into_response()),
        Download::File(path) => {
            let Ok(served) = ServeFile::new(path).oneshot(request).await;
            let mut response = served.into_response();
            if !response.status().is_success() {
                // 416 for a range outside the file, and the like.
                return Ok(response);
            }
            let headers = response.headers_mut();
            for (name, value) in [
                (header::CONTENT_TYPE, content_type.clone()),
                (
                    header::CONTENT_DISPOSITION,
                    switchboard_files::content_disposition(file_name),
                ),
                // The bytes are people's files, served from the API's own
                // origin: never sniffed, never run as a page, never cached
                // by shared caches.
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
                (header::CACHE_CONTROL, "private, max-age=60".to_owned()),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            Ok(response)
        }
    }
}

/// Checks that each file a message is to carry, at `field` (`attachments`,
/// `set.attachments`), is named by a file id. Whether it is a file of the
/// channel with its bytes stored is the store's to decide, in the change.
pub(crate) fn check_file_ids(field: &str, ids: &[String]) -> ApiResult<()> {
    for (index, id) in ids.iter().enumerate() {
        if FileId::parse(id).is_none() {
            return Err(ApiError::validation(format!(
                "{field}[{index}].id: `{}` is not a file id",
                excerpt(id)
            )));
        }
    }
    Ok(())
}

/// Runs a change that attaches files: once, and again with the uploads the
/// object storage confirms when the store found some not yet recorded (the
/// bytes go straight to the storage, so the store learns of them late).
pub(crate) async fn with_confirmed_uploads<T, Attempt, Change>(
    app: &AppState,
    mut attempt: Attempt,
) -> ApiResult<T>
where
    Attempt: FnMut(Vec<ConfirmedUpload>) -> Change,
    Change: Future<Output = StoreResult<T>>,
{
    match attempt(Vec::new()).await {
        Err(StoreError::UploadsUnconfirmed(files)) => {
            let mut confirmed = Vec::with_capacity(files.len());
            for (at, record) in files {
                let id = record.id.to_string();
                let Some(size) = stored_size(app, &record).await? else {
                    return Err(ApiError::conflict(format!(
                        "{at}: file `{id}` has not been uploaded yet; PUT its bytes to its upload URL first"
                    )));
                };
                confirmed.push(ConfirmedUpload { file: id, size });
            }
            Ok(attempt(confirmed).await?)
        }
        other => Ok(other?),
    }
}

/// The size of the file's bytes in the object storage, if they are stored
/// within its limit. An object over its limit (possible only where the
/// storage cannot bound an upload itself: S3 without a declared size) is
/// removed instead.
async fn stored_size(app: &AppState, record: &FileRecord) -> ApiResult<Option<u64>> {
    let key = stored_key(record)?;
    let storage = app.files.storage();
    let Some(size) = storage.stored_size(&key).await.map_err(storage_failure)? else {
        return Ok(None);
    };
    if size > record.max_bytes || (record.declared && size != record.max_bytes) {
        tracing::warn!(file = %record.id, size, max_bytes = record.max_bytes,
            "an upload broke its size limit; its object is removed");
        storage.discard(&key).await.map_err(storage_failure)?;
        return Ok(None);
    }
    Ok(Some(size))
}

/// The record with its upload recorded if the bytes are now stored.
async fn confirm_upload(app: &AppState, mut record: FileRecord) -> ApiResult<FileRecord> {
    if record.size.is_some() {
        return Ok(record);
    }
    let Some(size) = stored_size(app, &record).await? else {
        return Ok(record);
    };
    app.store.record_upload(&record.id, size).await?;
    record.size = Some(size);
    Ok(record)
}

fn stored_key(record: &FileRecord) -> ApiResult<ObjectKey> {
    ObjectKey::parse(&record.object_key).ok_or_else(|| {
        ApiError::internal(&StorageError::Backend(format!(
            "file `{}` has a stored object key of an unknown shape",
            record.id
        )))
    })
}

fn refused(err: UrlError) -> ApiError {
    ApiError::forbidden(match err {
        UrlError::Tampered => {
            "the URL's signature does not match: it was changed, or was not made by this server"
        }
        UrlError::Expired => "the URL expired; ask for a new one",
    })
}

fn too_large(max_bytes: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        switchboard_protocol::ErrorType::PayloadTooLarge,
        format!("the upload is larger than the {max_bytes} bytes this file may have"),
    )
}

fn storage_failure(err: StorageError) -> ApiError {
    tracing::error!(error = %err, "file storage failed");
    ApiError::unavailable("file storage is unavailable; retry later")
}

/// The API routes of this module, for [`crate::router`] (the object
/// transfers are [`object_router`]).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_file))
        .routes(routes!(get_uploaded_file))
        .routes(routes!(file_download_url))
}

/// The object transfers, which may take as long as a transfer may.
pub(crate) fn object_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_object, get_object))
}
