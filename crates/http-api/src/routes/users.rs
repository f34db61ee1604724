//! People of the company: create, find, read, change; invite by email/phone.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchboard_domain::limits::MAX_INVITEES;
use switchboard_domain::validation;
use switchboard_protocol::api::*;
use switchboard_store::{USER_PROFILE_FIELDS, UserPatch, UserProfile};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_unset, invitees, tags};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Auth, CompanyKey};
use crate::paths::UserPath;

/// Creates a person (company key). Email and phone are unique in the company.
#[utoipa::path(post, path = "/v2/users", tag = tags::USERS, request_body = UserFields,
    responses((status = 200, body = UserResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn create_user(
    State(app): State<AppState>,
    operator: CompanyKey,
    request: ApiJson<UserFields>,
) -> ApiResult<Json<UserResponse>> {
    let company = &operator.company;
    let profile = profile("", &request.body)?;
    if profile.name.is_none() && profile.email.is_none() && profile.phone.is_none() {
        return Err(ApiError::validation(
            "body: a person needs at least a name, an email or a phone",
        ));
    }
    let user = app.store.create_user(company, profile).await?;
    Ok(Json(UserResponse { user }))
}

/// `?email=&limit=&offset=`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only the person with this email (case-insensitive).
    pub email: Option<String>,
    /// Page size, 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Items to skip, 0–100000 (default 0).
    #[param(minimum = 0, maximum = 100000)]
    pub offset: Option<i64>,
}

/// People and bots of the caller's company, by creation; `email` finds one person.
#[utoipa::path(get, path = "/v2/users", tag = tags::USERS, params(UserQuery),
    responses((status = 200, body = UsersResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_users(
    State(app): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> ApiResult<Json<UsersResponse>> {
    let email = query
        .email
        .as_deref()
        .map(|email| validation::email("email", email))
        .transpose()?;
    let page = validation::page(query.limit, query.offset)?;
    let users = app
        .store
        .list_users(auth.company(), email.as_deref(), page)
        .await?;
    Ok(Json(UsersResponse { users }))
}

/// A person or bot of the caller's company.
#[utoipa::path(get, path = "/v2/users/{userId}", tag = tags::USERS, params(("userId" = String, Path)),
    responses((status = 200, body = UserResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn get_user(
    State(app): State<AppState>,
    auth: Auth,
    UserPath { user }: UserPath,
) -> ApiResult<Json<UserResponse>> {
    let user = app.store.get_user(auth.company(), &user).await?;
    Ok(Json(UserResponse { user }))
}

/// Changes a person's profile (company key): `set` fields change, `unset` clears them.
#[utoipa::path(patch, path = "/v2/users/{userId}", tag = tags::USERS, params(("userId" = String, Path)),
    request_body = PatchUserRequest,
    responses((status = 200, body = UserResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn patch_user(
    State(app): State<AppState>,
    operator: CompanyKey,
    UserPath { user }: UserPath,
    request: ApiJson<PatchUserRequest>,
) -> ApiResult<Json<UserResponse>> {
    let company = &operator.company;
    let PatchUserRequest { set, unset } = request.body;
    let set = match set {
        Some(fields) => profile("set.", &fields)?,
        None => UserProfile::default(),
    };
    let unset = check_unset(&unset, USER_PROFILE_FIELDS, &set_fields(&set))?;
    let user = app
        .store
        .update_user(company, &user, UserPatch { set, unset })
        .await?;
    Ok(Json(UserResponse { user }))
}

/// Finds people by email or phone, creating those not found.
#[utoipa::path(post, path = "/v2/conversations/invite", tag = tags::USERS, request_body = InviteRequest,
    responses((status = 200, body = UsersResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn invite(
    State(app): State<AppState>,
    auth: Auth,
    request: ApiJson<InviteRequest>,
) -> ApiResult<Json<UsersResponse>> {
    if request.body.invitees.is_empty() {
        return Err(ApiError::validation("invitees: must not be empty"));
    }
    let list = invitees("invitees", &request.body.invitees, MAX_INVITEES)?;
    let users = app.store.invite(auth.company(), list).await?;
    Ok(Json(UsersResponse { users }))
}

/// Checks and normalises profile fields at `prefix`.
fn profile(prefix: &str, fields: &UserFields) -> Result<UserProfile, ApiError> {
    let field = |name: &str| format!("{prefix}{name}");
    let short = |name: &str, value: &Option<String>| -> Result<Option<String>, ApiError> {
        if let Some(value) = value {
            validation::short_field(&field(name), value)?;
        }
        Ok(value.clone())
    };
    Ok(UserProfile {
        name: short("name", &fields.name)?,
        email: fields
            .email
            .as_deref()
            .map(|email| validation::email(&field("email"), email))
            .transpose()?,
        phone: fields
            .phone
            .as_deref()
            .map(|phone| validation::phone(&field("phone"), phone))
            .transpose()?,
        picture: match &fields.picture {
            Some(url) => {
                validation::url(&field("picture"), url)?;
                Some(url.clone())
            }
            None => None,
        },
        locale: short("locale", &fields.locale)?,
        time_zone: short("timeZone", &fields.time_zone)?,
        pbx_domain: short("pbxDomain", &fields.pbx_domain)?,
        pbx_port: short("pbxPort", &fields.pbx_port)?,
        pbx_extension: short("pbxExtension", &fields.pbx_extension)?,
        pbx_serial: short("pbxSerial", &fields.pbx_serial)?,
        pbx_user_id: short("pbxUserId", &fields.pbx_user_id)?,
    })
}

fn set_fields(profile: &UserProfile) -> [(&'static str, bool); 11] {
    [
        ("name", profile.name.is_some()),
        ("email", profile.email.is_some()),
        ("phone", profile.phone.is_some()),
        ("picture", profile.picture.is_some()),
        ("locale", profile.locale.is_some()),
        ("timeZone", profile.time_zone.is_some()),
        ("pbxDomain", profile.pbx_domain.is_some()),
        ("pbxPort", profile.pbx_port.is_some()),
        ("pbxExtension", profile.pbx_extension.is_some()),
        ("pbxSerial", profile.pbx_serial.is_some()),
        ("pbxUserId", profile.pbx_user_id.is_some()),
    ]
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user, patch_user))
        .routes(routes!(invite))
}
