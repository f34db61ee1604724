//! What the command line prints: results on standard output (a closed pipe —
//! `switchboard demo | head` — is not an error), failures on standard error
//! as one line with every cause, never a panic or a backtrace unless asked.

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

/// Prints `text` and a newline on standard output; a reader that went away
/// is ignored (the process goes on serving).
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Reports a failed command on standard error — `error: ` and the error with
/// its causes on one line — and returns the exit code 1. The backtrace, when
/// one was captured (`RUST_BACKTRACE`), is logged at debug level only.
pub fn fail(err: &anyhow::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "error: {}", chain(err.as_ref()));
    if err.backtrace().status() == std::backtrace::BacktraceStatus::Captured {
        tracing::debug!("backtrace of the error:\n{}", err.backtrace());
    }
    ExitCode::FAILURE
}

/// An error and its causes on one line, `: ` between them; a cause whose text
/// the line already holds (drivers often repeat their source) is left out.
pub fn chain(err: &(dyn Error + 'static)) -> String {
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
    use super::*;

    #[test]
    fn the_chain_names_each_cause_once() {
        let err = anyhow::anyhow!("role \"nobody\" does not exist")
            .context("error returned from database: role \"nobody\" does not exist")
            .context("could not open the PostgreSQL database (database.url)");
        assert_eq!(
            chain(err.as_ref()),
            "could not open the PostgreSQL database (database.url): \
             error returned from database: role \"nobody\" does not exist"
        );
    }
}
