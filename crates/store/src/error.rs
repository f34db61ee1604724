//! The error every store method returns.

use switchboard_domain::ValidationError;

/// An error of the boxed kind backends wrap their driver errors in.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result of every store method.
pub type StoreResult<T> = Result<T, StoreError>;

/// Why a store method did not do what was asked. The HTTP API maps each kind
/// to one status code; the messages are written for the API's caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist, belongs to another company, or the actor may
    /// not see it (not a member of its channel).
    #[error("{what} `{id}` was not found")]
    NotFound { what: &'static str, id: String },
    /// A field of the request names an object that does not exist, belongs
    /// to another company, or the actor may not see. Answered 409, naming
    /// the field: 404 speaks of the route's own object only.
    #[error("{field}: {message}")]
    UnknownReference { field: String, message: String },
    /// The actor sees the object but may not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// The request breaks a rule that needs stored state to check.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The change conflicts with what is stored (a duplicate, a reused key).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached or is overloaded; retrying may help.
    /// Files attached by a change whose bytes the store has not seen
    /// confirmed yet: the caller asks the object storage for their sizes and
    /// makes the change again with them (`confirmed_uploads`).
    #[error("{} attached file(s) have no confirmed upload yet", .0.len())]
    UploadsUnconfirmed(Vec<(String, crate::files::FileRecord)>),
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else the backend failed at.
    #[error("the storage backend failed")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// `NotFound` for an object kind and id.
    pub fn not_found(what: &'static str, id: impl std::fmt::Display) -> Self {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// `UnknownReference` for the field and what was not found.
    pub fn unknown_reference(field: impl Into<String>, message: impl Into<String>) -> Self {
        StoreError::UnknownReference {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `Invalid` for a field and message.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        StoreError::Invalid(ValidationError::new(field, message))
    }
}
