//! Failures inside a backend: a store error to return as it is, or a driver
//! error to classify by its code and kind (never by message text).

use switchboard_store::StoreError;

/// What backend functions return, so `?` works on both driver and store errors.
#[derive(Debug)]
pub enum Failure {
    Store(StoreError),
    Database(sqlx::Error),
}

pub type Outcome<T> = Result<T, Failure>;

impl Failure {
    /// A conflict between concurrent transactions that running the whole
    /// transaction again resolves: PostgreSQL's serialization failure or
    /// deadlock.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("40001" | "40P01")))
    }
}

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

/// Database error codes that mean "the database cannot serve now; retrying
/// may help". SQLite's are numbers: SQLITE_BUSY (5), SQLITE_LOCKED (6),
/// SQLITE_BUSY_SNAPSHOT (517) — another process holds the lock.
/// PostgreSQL's are five-character SQLSTATEs, taken by class: connection
/// exceptions (08), insufficient resources (53), operator intervention such
/// as a shutdown or a restart in progress (57), system errors (58), and
/// transaction conflicts that outlived their retries (40).
fn unavailable_code(code: &str) -> bool {
    match code.len() {
        5 => matches!(&code[..2], "08" | "53" | "57" | "58" | "40"),
        _ => matches!(code, "5" | "6" | "517"),
    }
}

fn classify(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("the object already exists".to_owned())
        }
        sqlx::Error::Database(db) if db.code().as_deref().is_some_and(unavailable_code) => {
            StoreError::Unavailable(Box::new(err))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(err)),
        _ => StoreError::Backend(Box::new(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::unavailable_code;

    #[test]
    fn codes_of_an_unreachable_or_locked_database_read_unavailable() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "40001", "40P01", "5", "6", "517",
        ] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22P02", "19", "2067", ""] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}
