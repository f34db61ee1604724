//! Bots: a bot is a user with `bot: true` that acts through bot keys.

use axum::Json;
use axum::extract::State;
use switchboard_domain::validation;
use switchboard_protocol::User;
use switchboard_protocol::api::*;
use switchboard_store::BotProfile;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ok, tags};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, CompanyKey};
use crate::paths::BotPath;

/// The company's bots (company key).
#[utoipa::path(get, path = "/v2/users/bots", tag = tags::BOTS,
    responses((status = 200, body = BotListResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_bots(
    State(app): State<AppState>,
    operator: CompanyKey,
) -> ApiResult<Json<BotListResponse>> {
    let bots = app.store.list_bots(&operator.company).await?;
    Ok(Json(BotListResponse { bots }))
}

/// Creates a bot (company key). Give it a key with `POST /v2/users/bots/{botId}/keys`.
#[utoipa::path(post, path = "/v2/users/bots", tag = tags::BOTS, request_body = BotRequest,
    responses((status = 200, description = "The bot itself, as x-bees answers", body = User),
        (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn create_bot(
    State(app): State<AppState>,
    operator: CompanyKey,
    request: ApiJson<BotRequest>,
) -> ApiResult<Json<User>> {
    let company = &operator.company;
    let bot = app
        .store
        .create_bot(company, bot_profile(request.body)?)
        .await?;
    Ok(Json(bot))
}

/// One bot (company key).
#[utoipa::path(get, path = "/v2/users/bots/{botId}", tag = tags::BOTS, params(("botId" = String, Path)),
    responses((status = 200, description = "The bot itself, as x-bees answers", body = User),
        (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn get_bot(
    State(app): State<AppState>,
    operator: CompanyKey,
    BotPath { bot }: BotPath,
) -> ApiResult<Json<User>> {
    let bot = app.store.get_bot(&operator.company, &bot).await?;
    Ok(Json(bot))
}

/// Replaces a bot's profile (company key).
#[utoipa::path(put, path = "/v2/users/bots/{botId}", tag = tags::BOTS, params(("botId" = String, Path)),
    request_body = BotRequest,
    responses((status = 200, description = "The bot itself, as x-bees answers", body = User),
        (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn replace_bot(
    State(app): State<AppState>,
    operator: CompanyKey,
    BotPath { bot }: BotPath,
    request: ApiJson<BotRequest>,
) -> ApiResult<Json<User>> {
    let company = &operator.company;
    let bot = app
        .store
        .replace_bot(company, &bot, bot_profile(request.body)?)
        .await?;
    Ok(Json(bot))
}

/// Deletes a bot (company key): its keys stop working and it leaves its channels.
#[utoipa::path(delete, path = "/v2/users/bots/{botId}", tag = tags::BOTS, params(("botId" = String, Path)),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn delete_bot(
    State(app): State<AppState>,
    operator: CompanyKey,
    BotPath { bot }: BotPath,
) -> ApiResult<Json<OkResponse>> {
    app.store.delete_bot(&operator.company, &bot).await?;
    Ok(ok())
}

fn bot_profile(body: BotRequest) -> Result<BotProfile, ApiError> {
    if !body.unknown.is_empty() {
        let names: Vec<&str> = body.unknown.keys().map(String::as_str).collect();
        return Err(ApiError::validation(format!(
            "{}: not a field of a bot (known: name, picture, locale, timeZone, access, \
             integrationType, searchable)",
            names.join(", ")
        )));
    }
    validation::short_field("name", &body.name)?;
    if let Some(picture) = &body.picture {
        validation::url("picture", picture)?;
    }
    if let Some(locale) = &body.locale {
        validation::short_field("locale", locale)?;
    }
    if let Some(time_zone) = &body.time_zone {
        validation::short_field("timeZone", time_zone)?;
    }
    if let Some(access) = &body.access {
        validation::short_field("access", access)?;
    }
    if let Some(integration_type) = &body.integration_type {
        validation::short_field("integrationType", integration_type)?;
    }
    Ok(BotProfile {
        name: body.name,
        picture: body.picture,
        locale: body.locale,
        time_zone: body.time_zone,
        access: body.access,
        integration_type: body.integration_type,
        searchable: body.searchable,
    })
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_bots, create_bot))
        .routes(routes!(get_bot, replace_bot, delete_bot))
}
