//! Failures inside the store: a store error to return as it is, or a
//! database error classified by its code and kind (never by message text).

use std::error::Error;

use switchboard_store::StoreError;

/// Why a store function stopped.
#[derive(Debug)]
pub enum Failure {
    /// Answer the caller with this error.
    Store(StoreError),
    /// The database refused or could not be reached.
    Database(DatabaseError),
}

pub type Outcome<T> = Result<T, Failure>;

/// What kind of refusal a database error is, as its backend classified it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseErrorKind {
    /// A unique key already holds the value.
    UniqueViolation,
    /// The transaction conflicted with a concurrent one and may succeed if
    /// run again from the start.
    Conflict,
    /// The database is unreachable, busy or out of resources.
    Unavailable,
    /// Anything else: a fault of the statement or the schema.
    Other,
}

/// A database error with its classification.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct DatabaseError {
    pub kind: DatabaseErrorKind,
    #[source]
    pub source: Box<dyn Error + Send + Sync>,
}

impl Failure {
    /// A database error of `kind`.
    pub fn database(
        kind: DatabaseErrorKind,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Failure::Database(DatabaseError {
            kind,
            source: source.into(),
        })
    }

    /// A fault inside the store (not the caller's, not the database's
    /// refusal), answered as an internal error with `message` in the log.
    pub fn backend(message: impl Into<String>) -> Self {
        Failure::Store(StoreError::Backend(message.into().into()))
    }

    /// Whether running the transaction again from the start may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Database(err) if err.kind == DatabaseErrorKind::Conflict)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        let kind = classify_sqlx(&err);
        Failure::database(kind, err)
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Failure::Store(err)
    }
}

impl From<switchboard_domain::ValidationError> for Failure {
    fn from(err: switchboard_domain::ValidationError) -> Self {
        Failure::Store(StoreError::Invalid(err))
    }
}

impl From<serde_json::Error> for Failure {
    fn from(err: serde_json::Error) -> Self {
        Failure::Store(StoreError::Backend(Box::new(err)))
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Store(err) => err,
            Failure::Database(err) => match err.kind {
                DatabaseErrorKind::UniqueViolation => {
                    StoreError::Conflict("the object already exists".to_owned())
                }
                DatabaseErrorKind::Conflict | DatabaseErrorKind::Unavailable => {
                    StoreError::Unavailable(Box::new(err))
                }
                DatabaseErrorKind::Other => StoreError::Backend(Box::new(err)),
            },
        }
    }
}

/// PostgreSQL's SQLSTATE classes of a database that is unreachable, shutting
/// down or out of resources (`08`, `53`, `57`, `58`).
fn unavailable_state(code: &str) -> bool {
    code.len() == 5 && matches!(&code[..2], "08" | "53" | "57" | "58")
}

/// Serialization failure and deadlock: run the transaction again.
fn conflict_state(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

fn classify_sqlx(err: &sqlx::Error) -> DatabaseErrorKind {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => DatabaseErrorKind::UniqueViolation,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if conflict_state(code) => DatabaseErrorKind::Conflict,
            Some(code) if unavailable_state(code) => DatabaseErrorKind::Unavailable,
            _ => DatabaseErrorKind::Other,
        },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => DatabaseErrorKind::Unavailable,
        _ => DatabaseErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_of_an_unreachable_or_conflicting_database_are_told_apart() {
        for code in ["08006", "08001", "57P01", "57P03", "53300"] {
            assert!(unavailable_state(code), "{code}");
        }
        for code in ["40001", "40P01"] {
            assert!(conflict_state(code) && !unavailable_state(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22P02", ""] {
            assert!(!unavailable_state(code) && !conflict_state(code), "{code}");
        }
    }
}
