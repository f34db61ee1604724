//! The one error body every API failure answers with.

use serde::{Deserialize, Serialize};

use crate::open_enum;

open_enum!(
    /// The error `type`, one per HTTP status class the API uses.
    ErrorType {
        Validation = "ValidationException",
        Unauthorized = "UnauthorizedException",
        Forbidden = "ForbiddenException",
        NotFound = "NotFoundException",
        Conflict = "ConflictException",
        PayloadTooLarge = "PayloadTooLargeException",
        TooManyRequests = "TooManyRequestsException",
        InternalServer = "InternalServerException",
    }
);

impl ErrorType {
    /// The HTTP status code this error type answers with.
    pub fn status(&self) -> u16 {
        match self {
            ErrorType::Validation => 400,
            ErrorType::Unauthorized => 401,
            ErrorType::Forbidden => 403,
            ErrorType::NotFound => 404,
            ErrorType::Conflict => 409,
            ErrorType::PayloadTooLarge => 413,
            ErrorType::TooManyRequests => 429,
            ErrorType::InternalServer | ErrorType::Other(_) => 500,
        }
    }
}

/// `{"type", "message", "requestId"}`: what went wrong, in words that name the field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    pub message: String,
    /// The id of the request, also in the `x-request-id` response header and the server's log.
    pub request_id: String,
}
