//! What the command line prints: results on standard output (a closed pipe —
//! `switchboard demo | head` — is not an error), failures on standard error
//! as one line with every cause, never a panic or a backtrace unless asked.

use std::io::Write;
use std::process::ExitCode;

use switchboard_domain::error_chain;

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
    let _ = writeln!(
        std::io::stderr().lock(),
        "error: {}",
        error_chain(err.as_ref())
    );
    if err.backtrace().status() == std::backtrace::BacktraceStatus::Captured {
        tracing::debug!("backtrace of the error:\n{}", err.backtrace());
    }
    ExitCode::FAILURE
}
