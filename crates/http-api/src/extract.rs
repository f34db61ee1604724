//! Extractors: who is calling ([`Auth`]), JSON bodies with field-naming errors
//! and a size limit ([`ApiJson`]), query strings ([`ApiQuery`]), and typed ids.

use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Query, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_domain::credentials::parse_presented;
use switchboard_domain::{Actor, ChannelId, CompanyId, FileId, MessageId, Principal, UserId};
use utoipa::IntoParams;

use crate::AppState;
use crate::error::{ApiError, excerpt};

/// The authenticated credential of the request. Read-only company keys are
/// refused on every method but `GET` and `HEAD`.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("the Authorization: Bearer <key> header is missing")
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|text| text.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <key>`")
            })?;
        let (_, hash) = parse_presented(token)
            .ok_or_else(|| ApiError::unauthorized("the key is not a switchboard key"))?;
        let principal = state
            .store
            .authenticate(&hash)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the key is unknown or was revoked"))?;
        if !principal.may_write() && !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(ApiError::forbidden("this company key is read-only"));
        }
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or_default();
        state
            .rate_limits
            .check(principal.credential.as_str(), parts.method.as_str(), route)
            .map_err(ApiError::too_many_requests)?;
        Ok(Auth(principal))
    }
}

impl Auth {
    /// The user this request acts as in conversations, from `userId` in the
    /// query or the body (a company key must give one; other credentials act
    /// as themselves).
    pub fn actor(
        &self,
        query_user: Option<&str>,
        body_user: Option<&str>,
    ) -> Result<Actor, ApiError> {
        // `userId=` with nothing after it is no userId.
        let query_user = query_user.filter(|user| !user.is_empty());
        let body_user = body_user.filter(|user| !user.is_empty());
        let user = match (query_user, body_user) {
            (Some(query), Some(body)) if query != body => {
                return Err(ApiError::validation(
                    "userId differs between the query string and the body",
                ));
            }
            (query, body) => query.or(body),
        };
        Ok(self.0.actor(user)?)
    }

    /// The caller's company.
    pub fn company(&self) -> &CompanyId {
        &self.0.company
    }
}

/// The user a conversation request acts as: the credential's own user, or
/// for a company key the one named by `userId` in the query.
pub struct Acting(pub Actor);

impl FromRequestParts<AppState> for Acting {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        let ApiQuery(acting) = ApiQuery::<ActingAs>::from_request_parts(parts, state).await?;
        Ok(Acting(auth.actor(acting.user_id.as_deref(), None)?))
    }
}

/// A conversation request with a JSON body: the acting user (from `userId`
/// in the query or the body, for a company key) and the body. The
/// credential is checked before the body is read.
pub struct ActingJson<T> {
    pub actor: Actor,
    pub body: T,
}

impl<T: DeserializeOwned + Serialize> FromRequest<AppState> for ActingJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let auth = Auth::from_request_parts(&mut parts, state).await?;
        let ApiQuery(acting) = ApiQuery::<ActingAs>::from_request_parts(&mut parts, state).await?;
        let json = ApiJson::<T>::from_request(Request::from_parts(parts, body), state).await?;
        let actor = auth.actor(acting.user_id.as_deref(), json.user_id.as_deref())?;
        Ok(ActingJson {
            actor,
            body: json.body,
        })
    }
}

/// A request made with a company key: what operator routes (people, bots,
/// keys, integrations) take. Any other credential is refused with 403 before
/// the body is read, so a malformed body never hides a missing permission.
pub struct CompanyKey {
    pub company: CompanyId,
}

impl FromRequestParts<AppState> for CompanyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        if !auth.0.is_company_key() {
            return Err(ApiError::forbidden("this route needs a company key"));
        }
        Ok(CompanyKey {
            company: auth.0.company,
        })
    }
}

/// A JSON object body of type `T`. `userId` is taken out of the body first
/// (it says who a company key acts as). Errors name the field.
pub struct ApiJson<T> {
    pub body: T,
    pub user_id: Option<String>,
}

impl<T: DeserializeOwned + Serialize> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.limits.max_body_bytes;
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|err| {
                if is_length_limit(&*err.into_inner()) {
                    ApiError::payload_too_large(limit)
                } else {
                    ApiError::validation("the request body could not be read")
                }
            })?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            &b"{}"[..]
        } else {
            if let Some(content_type) = content_type.filter(|given| !is_json(given)) {
                return Err(ApiError::unsupported_media_type(&content_type));
            }
            &bytes[..]
        };
        let mut value: Value = serde_json::from_slice(bytes)
            .map_err(|err| ApiError::validation(format!("the body is not valid JSON: {err}")))?;
        // A JSON `null` body is no body, as an empty one is.
        if value.is_null() {
            value = Value::Object(serde_json::Map::new());
        }
        let object = value
            .as_object_mut()
            .ok_or_else(|| ApiError::validation("the body must be a JSON object"))?;
        let user_id = match object.remove("userId") {
            None | Some(Value::Null) => None,
            Some(Value::String(user)) => Some(user),
            Some(_) => return Err(ApiError::validation("userId: must be a string")),
        };
        switchboard_protocol::js_json::integral_floats_as_integers(&mut value);
        let body: T = serde_path_to_error::deserialize(&value).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if path == "." {
                ApiError::validation(format!("body: {inner}"))
            } else {
                ApiError::validation(format!("{path}: {inner}"))
            }
        })?;
        // serde reads a struct from an array too (its fields in order), so
        // `{"set": ["Hello"]}` would set the first field: refused, as the
        // document's `type: object` says. A body without arrays (most
        // messages) has nothing to compare.
        if has_array(&value) {
            let read = serde_json::to_value(&body)
                .map_err(|err| ApiError::validation(format!("body: {err}")))?;
            if let Some(path) = array_read_as_object(&value, &read) {
                return Err(ApiError::validation(format!(
                    "{path}: must be an object, not an array"
                )));
            }
        }
        Ok(ApiJson { body, user_id })
    }
}

/// Whether `value` holds an array anywhere.
fn has_array(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Object(fields) => fields.values().any(has_array),
        _ => false,
    }
}

/// The path of the first place where the body `given` has an array and what
/// was read of it (`read`, written back as JSON) an object.
fn array_read_as_object(given: &Value, read: &Value) -> Option<String> {
    match (given, read) {
        (Value::Array(_), Value::Object(_)) => Some(String::new()),
        (Value::Object(given), Value::Object(read)) => given.iter().find_map(|(key, inner)| {
            let below = array_read_as_object(inner, read.get(key)?)?;
            Some(path_under(key, below))
        }),
        (Value::Array(given), Value::Array(read)) => {
            given
                .iter()
                .zip(read)
                .enumerate()
                .find_map(|(index, (inner, read))| {
                    let below = array_read_as_object(inner, read)?;
                    Some(path_under(&format!("[{index}]"), below))
                })
        }
        _ => None,
    }
}

/// `below`, a path inside the field or item `head`, as one path
/// (`set.subject`, `attachments[0]`, `elements[0].actions`).
fn path_under(head: &str, below: String) -> String {
    if below.is_empty() || below.starts_with('[') {
        format!("{head}{below}")
    } else {
        format!("{head}.{below}")
    }
}

/// Whether a `Content-Type` names JSON (`application/json`, `…+json`).
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Whether reading the body stopped at the size limit.
fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// A query string of type `T`, with errors in the contract's shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError::validation(format!(
                    "the query string is not valid: {}",
                    rejection.body_text()
                ))
            })
    }
}

/// `?userId=`: the user a company key acts as.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ActingAs {
    /// With a company key: the user to act as (required on conversation
    /// routes). Other credentials act as their own user: they may leave it
    /// out or name themselves; naming another user is refused (403). Empty
    /// counts as not given.
    #[param(pattern = "^[A-Za-z0-9_.:@-]{0,128}$")]
    pub user_id: Option<String>,
}

/// `?userId=&limit=&offset=` of list routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// With a company key: the user to act as (see [`ActingAs`]).
    #[param(pattern = "^[A-Za-z0-9_.:@-]{0,128}$")]
    pub user_id: Option<String>,
    /// Page size, 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Items to skip, 0–100000 (default 0).
    #[param(minimum = 0, maximum = 100000)]
    pub offset: Option<i64>,
}

impl ListParams {
    pub fn page(&self) -> Result<switchboard_store::Page, ApiError> {
        Ok(switchboard_domain::validation::page(
            self.limit,
            self.offset,
        )?)
    }
}

/// A channel id from the path; one that cannot exist is simply not found.
pub fn channel_id(text: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(text)
        .ok_or_else(|| ApiError::not_found(format!("channel `{}` was not found", excerpt(text))))
}

/// A message id from the path.
pub fn message_id(text: &str) -> Result<MessageId, ApiError> {
    MessageId::parse(text)
        .ok_or_else(|| ApiError::not_found(format!("message `{}` was not found", excerpt(text))))
}

/// A file id from the path.
pub fn file_id(text: &str) -> Result<FileId, ApiError> {
    FileId::parse(text)
        .ok_or_else(|| ApiError::not_found(format!("file `{}` was not found", excerpt(text))))
}

/// A user id from the path.
pub fn user_id(text: &str) -> Result<UserId, ApiError> {
    UserId::parse(text)
        .ok_or_else(|| ApiError::not_found(format!("user `{}` was not found", excerpt(text))))
}

/// A user id from a body field: malformed ones are a validation error naming the field.
pub fn user_id_field(field: &str, text: &str) -> Result<UserId, ApiError> {
    UserId::parse(text).ok_or_else(|| {
        ApiError::validation(format!("{field}: `{}` is not a user id", excerpt(text)))
    })
}
