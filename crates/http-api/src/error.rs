//! `ApiError`: every failure of every route, answered with the contract's
//! error body `{type, message, requestId}`.
//!
//! Handlers return `ApiError`; the [`render_errors`] middleware writes the
//! body, adding the request id, and also turns the router's own failures
//! (unknown route, wrong method) into the same shape. Internal errors are
//! logged once, here, and answered with an opaque message.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_domain::actor::ActorError;
use switchboard_domain::{ValidationError, error_chain};
use switchboard_protocol::{ErrorBody, ErrorType};
use switchboard_store::StoreError;

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// A failed request: its status, error type and a message for the caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: ErrorType,
    pub message: String,
    /// Seconds to wait before retrying, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_type: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 `TooManyRequestsException`, retry after `wait`.
    pub fn too_many_requests(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(seconds.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorType::TooManyRequests,
                format!(
                    "too many requests with this key for this operation; retry in {} s",
                    seconds.max(1)
                ),
            )
        }
    }

    /// 400 `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorType::Validation, message)
    }

    /// 401 `UnauthorizedException`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorType::Unauthorized, message)
    }

    /// 403 `ForbiddenException`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, ErrorType::Forbidden, message)
    }

    /// 404 `NotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, ErrorType::NotFound, message)
    }

    /// 415 for a body that is not JSON.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::Validation,
            format!(
                "the body must be JSON (Content-Type: application/json), not `{}`",
                excerpt(content_type)
            ),
        )
    }

    /// 405 for a method the path does not take.
    pub fn method_not_allowed(method: &axum::http::Method) -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorType::Validation,
            format!("this route does not accept the method {method}"),
        )
    }

    /// 413 `PayloadTooLargeException`.
    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::PayloadTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// This error, telling the caller to retry after `seconds`.
    pub fn with_retry_after(self, seconds: u64) -> Self {
        ApiError {
            retry_after: Some(seconds.max(1)),
            ..self
        }
    }

    /// 409 `ConflictException`.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, ErrorType::Conflict, message)
    }

    /// 503 with `InternalServerException`: a part the server depends on is
    /// down; retrying later may help.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::InternalServer,
            message,
        )
    }

    /// 500 `InternalServerException`, after logging the cause.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error_chain(cause), "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::InternalServer,
            "the server failed to handle the request; quote the requestId when reporting it",
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::validation(err.to_string())
    }
}

impl From<ActorError> for ApiError {
    fn from(err: ActorError) -> Self {
        match err {
            // The request is well formed; this credential may not do it.
            ActorError::UserIdNotAllowed => ApiError::forbidden(err.to_string()),
            ActorError::UserIdRequired | ActorError::MalformedUserId(_) => {
                ApiError::validation(err.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound { .. } => ApiError::not_found(err.to_string()),
            StoreError::UnknownReference { .. } => ApiError::conflict(err.to_string()),
            StoreError::Forbidden(message) => ApiError::forbidden(message.clone()),
            StoreError::Invalid(invalid) => ApiError::validation(invalid.to_string()),
            StoreError::Conflict(message) => ApiError::conflict(message.clone()),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %error_chain(cause.as_ref()), "database unavailable");
                ApiError::unavailable("the database is unavailable; retry the request later")
            }
            StoreError::UploadsUnconfirmed(files) => ApiError::conflict(match files.first() {
                Some((at, file)) => format!(
                    "{at}: file `{}` has not been uploaded yet; PUT its bytes to its upload URL first",
                    file.id
                ),
                None => err.to_string(),
            }),
            StoreError::Backend(_) => ApiError::internal(&err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Writes the error body of every failed response, with the request id that
/// the request-id layer put on the request.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    let (mut parts, body) = response.into_parts();
    let error = match parts.extensions.get::<ApiError>() {
        Some(error) => error.clone(),
        // A handler that wrote its own JSON body (such as /health) keeps it.
        None if is_json => return Response::from_parts(parts, body),
        // What the router or an extractor said in plain text (a path segment
        // that is not UTF-8, say) becomes the message of the contract's body.
        None => {
            let mut error = fallback_error(status);
            if let Ok(said) = axum::body::to_bytes(body, 4096).await {
                let said = String::from_utf8_lossy(&said);
                if !said.trim().is_empty() {
                    error.message = said.trim().to_owned();
                }
            }
            error
        }
    };
    let retry_after = error.retry_after;
    let body = ErrorBody {
        error_type: error.error_type,
        message: bounded_message(error.message),
        request_id,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(seconds) = retry_after {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Most characters of the offending input an error message quotes.
const MAX_QUOTED_CHARS: usize = 100;
/// Most characters of an error message.
const MAX_MESSAGE_CHARS: usize = 500;

/// At most [`MAX_QUOTED_CHARS`] of `input`, for quoting it in a message (an
/// id of 10 kB is not sent back whole).
pub fn excerpt(input: &str) -> String {
    cut(input, MAX_QUOTED_CHARS)
}

/// A message cut to [`MAX_MESSAGE_CHARS`], whatever it quotes.
fn bounded_message(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        message
    } else {
        cut(&message, MAX_MESSAGE_CHARS)
    }
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The error for a failure the router or a layer produced without an `ApiError`.
fn fallback_error(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            ErrorType::Validation,
            "this route does not accept this method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            ErrorType::PayloadTooLarge,
            "the request body is too large",
        ),
        StatusCode::REQUEST_TIMEOUT => ApiError::new(
            status,
            ErrorType::InternalServer,
            "the request took too long",
        ),
        status if status.is_client_error() => {
            ApiError::new(status, ErrorType::Validation, "the request is not valid")
        }
        status => ApiError::new(
            status,
            ErrorType::InternalServer,
            "the server failed to handle the request",
        ),
    }
}
