//! The company of a key, and credentials: company keys, bot keys and user tokens. A new credential is
//! shown once in the response that creates it; only its hash is stored.

use axum::Json;
use axum::extract::{Path, State};
use switchboard_domain::credentials;
use switchboard_domain::{CompanyId, CredentialId, validation};
use switchboard_protocol::api::*;
use switchboard_store::{CredentialInfo, CredentialOwner, NewCredentialRecord};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ok, tags};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, CompanyKey};
use crate::paths::{BotKeyPath, BotPath, UserPath, UserTokenPath};

/// The company the key belongs to. Companies are made on the server's
/// machine (`switchboard company create`), not over the API: every
/// credential of the API belongs to one company.
#[utoipa::path(get, path = "/v2/company", tag = tags::KEYS,
    responses((status = 200, body = CompanyResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn get_company(
    State(app): State<AppState>,
    operator: CompanyKey,
) -> ApiResult<Json<CompanyResponse>> {
    let company = app.store.get_company(&operator.company).await?;
    Ok(Json(CompanyResponse {
        company: CompanyView {
            id: company.id.into_string(),
            name: company.name,
            created_at: company.created_at,
        },
    }))
}

/// The company's live company keys, without their secrets.
#[utoipa::path(get, path = "/v2/company/keys", tag = tags::KEYS,
    responses((status = 200, body = KeyListResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_company_keys(
    State(app): State<AppState>,
    operator: CompanyKey,
) -> ApiResult<Json<KeyListResponse>> {
    list(&app, &operator.company, &CredentialOwner::Company).await
}

/// Creates a company key, optionally read-only. The key is shown once.
#[utoipa::path(post, path = "/v2/company/keys", tag = tags::KEYS,
    request_body(content = Option<CreateCompanyKeyRequest>, description = "May be left out: a read-write key without a name"),
    responses((status = 200, body = CreatedKeyResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn create_company_key(
    State(app): State<AppState>,
    operator: CompanyKey,
    request: ApiJson<CreateCompanyKeyRequest>,
) -> ApiResult<Json<CreatedKeyResponse>> {
    let company = &operator.company;
    if let Some(name) = &request.body.name {
        validation::short_field("name", name)?;
    }
    let read_only = request.body.read_only.unwrap_or(false);
    let (info, key) = create(
        &app,
        company,
        CredentialOwner::Company,
        request.body.name.clone(),
        read_only,
    )
    .await?;
    Ok(Json(CreatedKeyResponse {
        key_id: info.id.into_string(),
        key,
        created_at: info.created_at,
    }))
}

/// Revokes a company key. The last read-write key cannot be revoked.
#[utoipa::path(delete, path = "/v2/company/keys/{keyId}", tag = tags::KEYS, params(("keyId" = String, Path)),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn revoke_company_key(
    State(app): State<AppState>,
    operator: CompanyKey,
    Path(key): Path<String>,
) -> ApiResult<Json<OkResponse>> {
    revoke(&app, &operator.company, &CredentialOwner::Company, &key).await
}

/// The bot's live keys, without their secrets.
#[utoipa::path(get, path = "/v2/users/bots/{botId}/keys", tag = tags::KEYS, params(("botId" = String, Path)),
    responses((status = 200, body = KeyListResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_bot_keys(
    State(app): State<AppState>,
    operator: CompanyKey,
    BotPath { bot }: BotPath,
) -> ApiResult<Json<KeyListResponse>> {
    let company = &operator.company;
    app.store.get_bot(company, &bot).await?;
    list(&app, company, &CredentialOwner::Bot(bot)).await
}

/// Creates a bot key; it acts as the bot. The key is shown once.
#[utoipa::path(post, path = "/v2/users/bots/{botId}/keys", tag = tags::KEYS, params(("botId" = String, Path)),
    responses((status = 200, body = CreatedKeyResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn create_bot_key(
    State(app): State<AppState>,
    operator: CompanyKey,
    BotPath { bot }: BotPath,
) -> ApiResult<Json<CreatedKeyResponse>> {
    let company = &operator.company;
    let (info, key) = create(&app, company, CredentialOwner::Bot(bot), None, false).await?;
    Ok(Json(CreatedKeyResponse {
        key_id: info.id.into_string(),
        key,
        created_at: info.created_at,
    }))
}

/// Revokes a bot key.
#[utoipa::path(delete, path = "/v2/users/bots/{botId}/keys/{keyId}", tag = tags::KEYS,
    params(("botId" = String, Path), ("keyId" = String, Path)),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn revoke_bot_key(
    State(app): State<AppState>,
    operator: CompanyKey,
    BotKeyPath { bot, key }: BotKeyPath,
) -> ApiResult<Json<OkResponse>> {
    revoke(&app, &operator.company, &CredentialOwner::Bot(bot), &key).await
}

/// Creates a user token; it acts as the person (the web console uses one).
#[utoipa::path(post, path = "/v2/users/{userId}/tokens", tag = tags::KEYS, params(("userId" = String, Path)),
    responses((status = 200, body = CreatedTokenResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn create_user_token(
    State(app): State<AppState>,
    operator: CompanyKey,
    UserPath { user }: UserPath,
) -> ApiResult<Json<CreatedTokenResponse>> {
    let company = &operator.company;
    let (info, token) = create(
        &app,
        company,
        CredentialOwner::User(user.clone()),
        None,
        false,
    )
    .await?;
    Ok(Json(CreatedTokenResponse {
        token_id: info.id.into_string(),
        token,
        user_id: user.into_string(),
        created_at: info.created_at,
    }))
}

/// The person's live tokens, without their secrets.
#[utoipa::path(get, path = "/v2/users/{userId}/tokens", tag = tags::KEYS, params(("userId" = String, Path)),
    responses((status = 200, body = KeyListResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_user_tokens(
    State(app): State<AppState>,
    operator: CompanyKey,
    UserPath { user }: UserPath,
) -> ApiResult<Json<KeyListResponse>> {
    let company = &operator.company;
    app.store.get_user(company, &user).await?;
    list(&app, company, &CredentialOwner::User(user)).await
}

/// Revokes a user token.
#[utoipa::path(delete, path = "/v2/users/{userId}/tokens/{tokenId}", tag = tags::KEYS,
    params(("userId" = String, Path), ("tokenId" = String, Path)),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn revoke_user_token(
    State(app): State<AppState>,
    operator: CompanyKey,
    UserTokenPath { user, token }: UserTokenPath,
) -> ApiResult<Json<OkResponse>> {
    revoke(
        &app,
        &operator.company,
        &CredentialOwner::User(user),
        &token,
    )
    .await
}

async fn create(
    app: &AppState,
    company: &CompanyId,
    owner: CredentialOwner,
    name: Option<String>,
    read_only: bool,
) -> ApiResult<(CredentialInfo, String)> {
    let made = credentials::generate(owner.kind());
    let record = NewCredentialRecord {
        owner,
        hash: made.hash.clone(),
        last_four: made.last_four.clone(),
        name,
        read_only,
    };
    let info = app.store.create_credential(company, record).await?;
    Ok((info, made.reveal().to_owned()))
}

async fn list(
    app: &AppState,
    company: &CompanyId,
    owner: &CredentialOwner,
) -> ApiResult<Json<KeyListResponse>> {
    let keys = app.store.list_credentials(company, owner).await?;
    Ok(Json(KeyListResponse {
        keys: keys
            .into_iter()
            .map(|info| KeyInfo {
                key_id: info.id.into_string(),
                name: info.name,
                read_only: info.read_only,
                last_four: info.last_four,
                created_at: info.created_at,
            })
            .collect(),
    }))
}

async fn revoke(
    app: &AppState,
    company: &CompanyId,
    owner: &CredentialOwner,
    key: &str,
) -> ApiResult<Json<OkResponse>> {
    let id = CredentialId::parse(key)
        .ok_or_else(|| ApiError::not_found(format!("key `{key}` was not found")))?;
    app.store.revoke_credential(company, owner, &id).await?;
    Ok(ok())
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_company))
        .routes(routes!(list_company_keys, create_company_key))
        .routes(routes!(revoke_company_key))
        .routes(routes!(list_bot_keys, create_bot_key))
        .routes(routes!(revoke_bot_key))
        .routes(routes!(create_user_token, list_user_tokens))
        .routes(routes!(revoke_user_token))
}
