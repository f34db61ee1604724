//! What SQS errors mean for a delivery: retried (the queue is missing, access
//! is denied, the credentials are refused, throttling, 5xx, the network) or
//! dead-lettered at once (the message is larger than the queue takes). Each
//! reason is written for the operator reading the delivery log.

use std::time::Duration;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::policy::AttemptResult;
use crate::transport::Sent;

/// The verdict on an error code (and message) returned by SQS for a queue.
pub(crate) fn classify_code(code: &str, message: Option<&str>, queue_url: &str) -> AttemptResult {
    let detail = match message {
        Some(message) if !message.is_empty() => format!("{code}: {message}"),
        _ => code.to_owned(),
    };
    let failed = |reason: String| AttemptResult::Failed {
        reason,
        retry_after: None,
    };
    if is_too_large(code, message) {
        return AttemptResult::Rejected {
            reason: format!("the event is larger than the queue's maximum message size ({detail})"),
        };
    }
    match code {
        "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" | "NonExistentQueue" => {
            failed(format!(
                "the queue {queue_url} does not exist (check the queue URL and region) ({detail})"
            ))
        }
        "AccessDenied" | "AccessDeniedException" | "AuthorizationError" | "KmsAccessDenied" => {
            failed(format!(
                "access to the queue was denied: the credentials need sqs:SendMessage on {queue_url} ({detail})"
            ))
        }
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "ExpiredToken"
        | "InvalidSecurity" => failed(format!(
            "the credentials were refused: check accessKeyId and secretAccessKey ({detail})"
        )),
        "RequestThrottled" | "ThrottlingException" | "Throttling" | "KmsThrottled" => {
            failed(format!("SQS throttled the request ({detail})"))
        }
        _ => failed(format!("SQS refused the message ({detail})")),
    }
}

fn is_too_large(code: &str, message: Option<&str>) -> bool {
    let message = message.unwrap_or("").to_ascii_lowercase();
    (code.ends_with("TooLong") && !code.contains("BatchRequest"))
        || message.contains("must be shorter than")
        || message.contains("message too long")
}

/// Whether a whole batch was refused for its total size (the entries are then
/// sent one by one).
pub(crate) fn is_batch_too_long<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    err.code()
        .is_some_and(|code| code.contains("BatchRequestTooLong"))
}

/// The attempt an SDK error comes to.
pub(crate) fn sent_from_error<E>(
    err: &SdkError<E, HttpResponse>,
    queue_url: &str,
    timeout: Duration,
    duration: Duration,
) -> Sent
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err
        .raw_response()
        .map(|response| response.status().as_u16());
    let result = match err {
        SdkError::TimeoutError(_) => AttemptResult::Failed {
            reason: format!("SQS did not answer within {} ms", timeout.as_millis()),
            retry_after: None,
        },
        SdkError::DispatchFailure(failure) => AttemptResult::Failed {
            reason: if failure.is_timeout() {
                format!("SQS did not answer within {} ms", timeout.as_millis())
            } else {
                format!("could not reach SQS: {}", DisplayErrorContext(err))
            },
            retry_after: None,
        },
        _ => match err.code() {
            Some(code) => classify_code(code, err.message(), queue_url),
            None => AttemptResult::Failed {
                reason: match status {
                    Some(status) => {
                        format!("SQS answered HTTP {status}: {}", DisplayErrorContext(err))
                    }
                    None => format!("the SQS request failed: {}", DisplayErrorContext(err)),
                },
                retry_after: None,
            },
        },
    };
    Sent {
        result,
        status,
        duration,
        snippet: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/1/bots";

    fn reason(result: AttemptResult) -> String {
        match result {
            AttemptResult::Failed { reason, .. } => reason,
            other => panic!("expected a retried failure, got {other:?}"),
        }
    }

    #[test]
    fn operators_are_told_what_to_fix() {
        let missing = reason(classify_code(
            "AWS.SimpleQueueService.NonExistentQueue",
            Some("The specified queue does not exist."),
            QUEUE,
        ));
        assert!(missing.contains("does not exist") && missing.contains(QUEUE));
        let denied = reason(classify_code("AccessDenied", None, QUEUE));
        assert!(denied.contains("sqs:SendMessage"), "{denied}");
        let refused = reason(classify_code("InvalidClientTokenId", Some("bad"), QUEUE));
        assert!(refused.contains("accessKeyId"), "{refused}");
        let throttled = reason(classify_code("RequestThrottled", None, QUEUE));
        assert!(throttled.contains("throttled"), "{throttled}");
        let other = reason(classify_code("InternalError", Some("oops"), QUEUE));
        assert!(other.contains("InternalError: oops"), "{other}");
    }

    #[test]
    fn messages_over_the_size_limit_are_rejected_for_good() {
        for (code, message) in [
            (
                "InvalidParameterValue",
                Some(
                    "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.",
                ),
            ),
            ("MessageTooLong", None),
        ] {
            assert!(
                matches!(
                    classify_code(code, message, QUEUE),
                    AttemptResult::Rejected { .. }
                ),
                "{code}"
            );
        }
        assert!(!is_too_large(
            "AWS.SimpleQueueService.BatchRequestTooLong",
            None
        ));
    }
}
