//! Failures inside the backend: a store error to return as it is, or a driver
//! error to classify by kind (never by message text).

use switchboard_store::StoreError;

/// What backend functions return, so `?` works on both driver and store errors.
#[derive(Debug)]
pub(crate) enum Failure {
    Store(StoreError),
    Database(sqlx::Error),
}

pub(crate) type Outcome<T> = Result<T, Failure>;

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        Failure::Database(err)
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
            Failure::Database(err) => classify(err),
        }
    }
}

fn classify(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("the object already exists".to_owned())
        }
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6" | "517")) => {
            // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT: another process holds the lock.
            StoreError::Unavailable(Box::new(err))
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(Box::new(err))
        }
        _ => StoreError::Backend(Box::new(err)),
    }
}
