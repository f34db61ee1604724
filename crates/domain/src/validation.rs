//! Checks of client input that need no stored state. Every failure names the
//! field (as a JSON path such as `elements[0].actions[1].button.text`) and
//! says what is wrong.

use switchboard_protocol::Element;

use crate::limits::*;
use crate::patterns::{is_refused_control, is_space};

/// Input that breaks a rule; answered with 400 `ValidationException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The JSON path of the offending field.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with its field inside `prefix` (`set.`).
    pub fn within(self, prefix: &str) -> Self {
        ValidationError {
            field: format!("{prefix}{}", self.field),
            message: self.message,
        }
    }
}

type Checked<T = ()> = Result<T, ValidationError>;

/// Text of at most `max` characters, and not only whitespace when `required`.
pub fn text(field: &str, value: &str, max: usize) -> Checked {
    let count = value.chars().count();
    if count > max {
        return Err(ValidationError::new(
            field,
            format!("is {count} characters long; the limit is {max}"),
        ));
    }
    if value.chars().any(is_refused_control) {
        return Err(ValidationError::new(field, "contains control characters"));
    }
    Ok(())
}

/// [`text`] that is not only spaces.
pub fn non_blank_text(field: &str, value: &str, max: usize) -> Checked {
    if is_blank(value) {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    text(field, value, max)
}

/// Whether a text is empty or only spaces (as [`is_space`] counts them).
pub fn is_blank(value: &str) -> bool {
    value.chars().all(is_space)
}

/// A short single-line field such as a name (at most 255 characters, not blank).
pub fn short_field(field: &str, value: &str) -> Checked {
    if is_blank(value) {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.contains(['\n', '\r']) {
        return Err(ValidationError::new(field, "must be a single line"));
    }
    text(field, value, MAX_SHORT_FIELD_CHARS)
}

/// An email address (one `@`, a dot inside the domain, no spaces or control
/// characters, at most 255 characters); returns the form used to find people
/// (lower case).
pub fn email(field: &str, value: &str) -> Checked<String> {
    let valid = value.chars().count() <= MAX_SHORT_FIELD_CHARS
        && !value.contains(|c: char| is_space(c) || c.is_control())
        && matches!(value.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(value.to_lowercase())
    } else {
        Err(ValidationError::new(
            field,
            format!("`{value}` is not an email address"),
        ))
    }
}

/// A phone number in E.164 form (`+` and 7–15 digits); spaces, dashes and
/// parentheses are removed first.
pub fn phone(field: &str, value: &str) -> Checked<String> {
    let compact: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(compact)
    } else {
        Err(ValidationError::new(
            field,
            format!("`{value}` is not a phone number in international form such as +4930123456"),
        ))
    }
}

/// An absolute `http`/`https` URL.
pub fn url(field: &str, value: &str) -> Checked {
    let lower = value.to_ascii_lowercase();
    let has_host = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !has_host || value.contains(is_space) {
        return Err(ValidationError::new(
            field,
            format!("`{value}` is not an http or https URL"),
        ));
    }
    text(field, value, MAX_URL_CHARS)
}

/// An SQS queue URL: an http(s) URL whose last path segment is a queue name
/// (1–80 letters, digits, `-`, `_`, with `.fifo` for a FIFO queue).
pub fn sqs_queue_url(field: &str, value: &str) -> Checked {
    url(field, value)?;
    let path = value
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_host, path)| path)
        .unwrap_or("");
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    if stem.is_empty()
        || stem.len() > 80
        || !stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ValidationError::new(
            field,
            format!(
                "`{value}` is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE, .fifo for FIFO)"
            ),
        ));
    }
    Ok(())
}

/// An AWS region name such as `eu-west-1`: 1–32 lowercase letters, digits and `-`.
pub fn aws_region(field: &str, value: &str) -> Checked {
    let fine = (1..=32).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !fine {
        return Err(ValidationError::new(
            field,
            format!("`{value}` is not an AWS region name such as eu-west-1"),
        ));
    }
    Ok(())
}

/// An AWS access key id: 1–128 letters and digits.
pub fn aws_access_key_id(field: &str, value: &str) -> Checked {
    if !(1..=128).contains(&value.len()) || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            field,
            "is not an AWS access key id (1 to 128 letters and digits)",
        ));
    }
    Ok(())
}

/// An AWS secret access key: 1–256 visible ASCII characters. The value is
/// never echoed in the message.
pub fn aws_secret_access_key(field: &str, value: &str) -> Checked {
    if !(1..=256).contains(&value.len()) || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ValidationError::new(
            field,
            "is not an AWS secret access key (1 to 256 visible ASCII characters)",
        ));
    }
    Ok(())
}

/// Message text: at most [`MAX_MESSAGE_TEXT_CHARS`] characters.
pub fn message_text(field: &str, value: &str) -> Checked {
    text(field, value, MAX_MESSAGE_TEXT_CHARS)
}

/// Elements: at most [`MAX_ELEMENTS`], each with exactly one known kind; every
/// button has text and exactly one handler.
///
/// Several buttons of one message may carry the same `action` id: the id names
/// what the bot is asked to do, and two buttons may ask for the same thing
/// (the bot hears `chat:message:action` with that id whichever is pressed).
/// Refusing them would be a rule the OpenAPI document cannot state, so a
/// client built from the document could not know it.
pub fn elements(field: &str, elements: &[Element]) -> Checked {
    if elements.len() > MAX_ELEMENTS {
        return Err(ValidationError::new(
            field,
            format!(
                "has {} elements; the limit is {MAX_ELEMENTS}",
                elements.len()
            ),
        ));
    }
    for (index, element) in elements.iter().enumerate() {
        let at = format!("{field}[{index}]");
        if let Some(unknown) = element.extra.keys().next() {
            return Err(ValidationError::new(
                format!("{at}.{unknown}"),
                "is not a kind of element; the known kind is `actions`",
            ));
        }
        let Some(actions) = &element.actions else {
            return Err(ValidationError::new(at, "must have `actions`"));
        };
        if actions.is_empty() || actions.len() > MAX_ACTIONS_PER_ELEMENT {
            return Err(ValidationError::new(
                format!("{at}.actions"),
                format!("must hold 1 to {MAX_ACTIONS_PER_ELEMENT} actions"),
            ));
        }
        for (action_index, action) in actions.iter().enumerate() {
            let at = format!("{at}.actions[{action_index}]");
            if let Some(unknown) = action.extra.keys().next() {
                return Err(ValidationError::new(
                    format!("{at}.{unknown}"),
                    "is not a kind of action; the known kind is `button`",
                ));
            }
            let Some(button) = &action.button else {
                return Err(ValidationError::new(at, "must have `button`"));
            };
            let at = format!("{at}.button");
            non_blank_text(&format!("{at}.text"), &button.text, MAX_BUTTON_TEXT_CHARS)?;
            if let Some(variant) = &button.variant {
                short_field(&format!("{at}.variant"), variant)?;
            }
            if let Some(handler) = &button.handler {
                let at = format!("{at}.handler");
                let kinds = usize::from(handler.link.is_some())
                    + usize::from(handler.reply.is_some())
                    + usize::from(handler.action.is_some())
                    + handler.extra.len();
                if kinds != 1 {
                    return Err(ValidationError::new(
                        at,
                        "must have exactly one of `link`, `reply`, `action`",
                    ));
                }
                if let Some(unknown) = handler.extra.keys().next() {
                    return Err(ValidationError::new(
                        format!("{at}.{unknown}"),
                        "is not a kind of handler; use `link`, `reply` or `action`",
                    ));
                }
                if let Some(link) = &handler.link {
                    url(&format!("{at}.link.url"), &link.url)?;
                }
                if let Some(reply) = &handler.reply
                    && let Some(reply_text) = &reply.text
                {
                    message_text(&format!("{at}.reply.text"), reply_text)?;
                }
                if let Some(action) = &handler.action {
                    non_blank_text(&format!("{at}.action.id"), &action.id, MAX_ACTION_ID_CHARS)?;
                }
            }
        }
    }
    Ok(())
}

/// A file's name as people see it: a short single line, and no path — `/`
/// and `\\` are refused so a name can never be taken for one.
pub fn file_name(field: &str, value: &str) -> Checked {
    short_field(field, value)?;
    if value.contains(['/', '\\']) || value == "." || value == ".." {
        return Err(ValidationError::new(
            field,
            "must be a file name without `/` or `\\`",
        ));
    }
    Ok(())
}

/// A media type such as `image/png` or `text/plain; charset=utf-8`: a type
/// and a subtype of token characters, then optional parameters, at most 255
/// characters of visible ASCII.
pub fn content_type(field: &str, value: &str) -> Checked {
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_matches(' ');
    let shaped = essence
        .split_once('/')
        .is_some_and(|(kind, subtype)| token(kind) && token(subtype));
    if !shaped
        || value.len() > MAX_SHORT_FIELD_CHARS
        || !value.bytes().all(|b| (b' '..=b'~').contains(&b))
    {
        return Err(ValidationError::new(
            field,
            format!("`{value}` is not a media type such as `image/png`"),
        ));
    }
    Ok(())
}

/// A reaction type such as `like` or `👍`: 1–64 characters, no whitespace.
pub fn reaction_type(field: &str, value: &str) -> Checked {
    if value.is_empty() || value.contains(is_space) {
        return Err(ValidationError::new(
            field,
            "must be a non-empty word without spaces",
        ));
    }
    text(field, value, MAX_REACTION_TYPE_CHARS)
}

/// The typing time-to-live in seconds, defaulted.
pub fn typing_ttl(field: &str, value: Option<u32>) -> Checked<u32> {
    let ttl = value.unwrap_or(DEFAULT_TYPING_TTL_SECONDS);
    if (1..=MAX_TYPING_TTL_SECONDS).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(ValidationError::new(
            field,
            format!("must be between 1 and {MAX_TYPING_TTL_SECONDS} seconds"),
        ))
    }
}

/// An `Idempotency-Key`: 1–255 visible ASCII characters.
pub fn idempotency_key(field: &str, value: &str) -> Checked {
    if value.is_empty()
        || value.len() > MAX_IDEMPOTENCY_KEY_CHARS
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ValidationError::new(
            field,
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// Every name in `unset` is one of `allowed`.
pub fn unset_fields(field: &str, unset: &[String], allowed: &[&str]) -> Checked {
    for (index, name) in unset.iter().enumerate() {
        if !allowed.contains(&name.as_str()) {
            return Err(ValidationError::new(
                format!("{field}[{index}]"),
                format!("`{name}` cannot be unset; allowed: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

/// A page of a list: `limit` 1–100 (default 25), `offset` 0–100,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

/// Checks `limit` and `offset` as received.
pub fn page(limit: Option<i64>, offset: Option<i64>) -> Checked<Page> {
    let limit = limit.unwrap_or(i64::from(DEFAULT_PAGE_LIMIT));
    if !(1..=i64::from(MAX_PAGE_LIMIT)).contains(&limit) {
        return Err(ValidationError::new(
            "limit",
            format!("must be between 1 and {MAX_PAGE_LIMIT}, got {limit}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    if !(0..=i64::from(MAX_PAGE_OFFSET)).contains(&offset) {
        return Err(ValidationError::new(
            "offset",
            format!("must be between 0 and {MAX_PAGE_OFFSET}, got {offset}"),
        ));
    }
    Ok(Page {
        limit: limit as u32,
        offset: offset as u32,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_and_media_types_are_checked() {
        use super::*;
        assert!(file_name("name", "Q3 report (final).pdf").is_ok());
        for bad in ["", "  ", "../etc/passwd", "a\\b", "two\nlines", ".."] {
            assert!(file_name("name", bad).is_err(), "{bad:?}");
        }
        for good in [
            "image/png",
            "text/plain; charset=utf-8",
            "application/vnd.ms-excel",
        ] {
            assert!(content_type("contentType", good).is_ok(), "{good}");
        }
        for bad in [
            "png",
            "image/",
            "/png",
            "text/plain\r\nX-Evil: 1",
            "ima ge/png",
        ] {
            assert!(content_type("contentType", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sqs_fields_are_checked() {
        use super::*;
        assert!(
            sqs_queue_url("q", "https://sqs.eu-west-1.amazonaws.com/123456789012/bots").is_ok()
        );
        assert!(sqs_queue_url("q", "http://127.0.0.1:4566/000000000000/events.fifo").is_ok());
        assert!(sqs_queue_url("q", "https://sqs.eu-west-1.amazonaws.com").is_err());
        assert!(sqs_queue_url("q", "https://host/acct/bad name").is_err());
        assert!(sqs_queue_url("q", "https://host/acct/.fifo").is_err());
        assert!(aws_region("r", "eu-west-1").is_ok());
        assert!(aws_region("r", "EU WEST").is_err());
        assert!(aws_access_key_id("k", "AKIAIOSFODNN7EXAMPLE").is_ok());
        assert!(aws_access_key_id("k", "AKIA-1").is_err());
        let err = aws_secret_access_key("s", "has space").unwrap_err();
        assert!(!err.to_string().contains("has space"));
    }

    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Vec<Element> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn text_limit_counts_characters_not_bytes() {
        assert!(message_text("text", &"é".repeat(MAX_MESSAGE_TEXT_CHARS)).is_ok());
        let err = message_text("text", &"a".repeat(MAX_MESSAGE_TEXT_CHARS + 1)).unwrap_err();
        assert_eq!(err.field, "text");
        assert!(err.message.contains("10000"), "{err}");
    }

    #[test]
    fn elements_name_the_broken_field() {
        let ok = parse(
            json!([{"actions": [{"button": {"text": "Go", "handler": {"action": {"id": "go"}}}}]}]),
        );
        assert!(elements("elements", &ok).is_ok());
        let two_handlers = parse(json!([{"actions": [{"button": {"text": "Go",
            "handler": {"action": {"id": "go"}, "link": {"url": "https://x.y"}}}}]}]));
        assert_eq!(
            elements("elements", &two_handlers).unwrap_err().field,
            "elements[0].actions[0].button.handler"
        );
        let shared_id = parse(json!([{"actions": [
            {"button": {"text": "A", "handler": {"action": {"id": "x"}}}},
            {"button": {"text": "B", "handler": {"action": {"id": "x"}}}}]}]));
        assert!(elements("elements", &shared_id).is_ok());
        let bad_url = parse(
            json!([{"actions": [{"button": {"text": "A", "handler": {"link": {"url": "javascript:alert(1)"}}}}]}]),
        );
        assert_eq!(
            elements("elements", &bad_url).unwrap_err().field,
            "elements[0].actions[0].button.handler.link.url"
        );
        let unknown = parse(json!([{"carousel": []}]));
        assert_eq!(
            elements("elements", &unknown).unwrap_err().field,
            "elements[0].carousel"
        );
        let many = parse(json!(vec![
            json!({"actions": [{"button": {"text": "A"}}]});
            11
        ]));
        assert!(
            elements("elements", &many)
                .unwrap_err()
                .message
                .contains("limit is 10")
        );
    }

    #[test]
    fn emails_and_phones_are_normalised_or_refused() {
        assert_eq!(
            email("email", "Ann@Example.COM").unwrap(),
            "ann@example.com"
        );
        for bad in [
            " ann@example.com",
            "ann",
            "ann@",
            "@example.com",
            "a b@example.com",
            "ann@example",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
        assert_eq!(phone("phone", "+49 (30) 123-456").unwrap(), "+4930123456");
        assert!(phone("phone", "030123456").is_err());
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(
            page(None, None).unwrap(),
            Page {
                limit: 25,
                offset: 0
            }
        );
        assert_eq!(page(Some(0), None).unwrap_err().field, "limit");
        assert_eq!(page(Some(101), None).unwrap_err().field, "limit");
        assert_eq!(page(Some(5), Some(-1)).unwrap_err().field, "offset");
    }

    #[test]
    fn unset_names_only_allowed_fields() {
        let allowed = ["subject", "description"];
        assert!(unset_fields("unset", &["subject".into()], &allowed).is_ok());
        assert_eq!(
            unset_fields("unset", &["access".into()], &allowed)
                .unwrap_err()
                .field,
            "unset[0]"
        );
    }
}
