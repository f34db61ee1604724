//! The switchboard model and its rules, free of I/O: typed ids, the
//! credential formats and their hashing, who a request acts as, the input
//! limits, and the access rules of channels and messages.
//!
//! Storage backends and the HTTP API both apply these rules, so they agree on
//! them by construction.

pub mod actor;
pub mod credentials;
pub mod ids;
pub mod limits;
pub mod patterns;
pub mod rules;
pub mod secret_box;
pub mod validation;

pub use actor::{Actor, Principal, PrincipalKind};
pub use ids::{
    ChannelId, CompanyId, CredentialId, EventId, FileId, IntegrationId, MessageId, UserId,
};
pub use validation::ValidationError;

/// Microseconds since the Unix epoch: how switchboard stores every instant.
pub type UnixMicros = i64;

/// The current time in microseconds since the Unix epoch.
pub fn now_micros() -> UnixMicros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as i64)
        .unwrap_or(0)
}

/// An error and its causes on one line, `: ` between them; a cause whose
/// text the line already holds (drivers often repeat their source) is left
/// out. For logs and for the command line's one-line errors.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// An error with a message and an optional cause.
    #[derive(Debug)]
    struct Failure(&'static str, Option<Box<Failure>>);

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|cause| cause as _)
        }
    }

    #[test]
    fn the_chain_names_each_cause_once() {
        let driver = Failure("role \"nobody\" does not exist", None);
        let database = Failure(
            "error returned from database: role \"nobody\" does not exist",
            Some(Box::new(driver)),
        );
        let opening = Failure(
            "could not open the PostgreSQL database (database.url)",
            Some(Box::new(database)),
        );
        assert_eq!(
            error_chain(&opening),
            "could not open the PostgreSQL database (database.url): \
             error returned from database: role \"nobody\" does not exist"
        );
    }
}
