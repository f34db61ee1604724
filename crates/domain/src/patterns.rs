//! The string rules of [`crate::validation`] written as JSON Schema
//! patterns, for the OpenAPI document. Each pattern accepts exactly the
//! strings its check accepts (the tests below hold them to it); lengths are
//! stated apart, as `minLength`/`maxLength` in characters.
//!
//! The patterns use only what ECMAScript, Python and Rust regular
//! expressions read alike: character classes written with `\xHH` and
//! `\uHHHH` escapes, never `\s` or `\S` (whose meanings differ between them).

/// The characters [`crate::validation`] takes for space: Unicode
/// `White_Space` and the byte-order mark U+FEFF.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// Control characters other than tab, line feed and carriage return:
/// refused in every text field.
pub fn is_refused_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// Class body: the refused control characters.
macro_rules! controls {
    () => {
        r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    };
}

/// Class body: the characters of [`is_space`].
macro_rules! spaces {
    () => {
        r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
    };
}

/// `http://` or `https://` in any case, then a host.
macro_rules! http_scheme_and_host {
    () => {
        concat!(r"[Hh][Tt][Tt][Pp][Ss]?://[^/", spaces!(), controls!(), "]")
    };
}

/// Text that may span lines: no control characters but tab and line breaks.
pub const TEXT: &str = concat!("^[^", controls!(), "]*$");

/// Text as [`TEXT`] that is not only spaces.
pub const NON_BLANK_TEXT: &str = concat!(
    "^[^",
    controls!(),
    "]*[^",
    controls!(),
    spaces!(),
    "][^",
    controls!(),
    "]*$"
);

/// A short single-line field such as a name: not blank, no line breaks.
pub const SHORT_FIELD: &str = concat!(
    r"^[^\n\r",
    controls!(),
    "]*[^",
    controls!(),
    spaces!(),
    r"][^\n\r",
    controls!(),
    "]*$"
);

/// A file name: a [`SHORT_FIELD`] without `/` or `\`; `.` and `..` are
/// refused apart (no pattern here can say so in every dialect).
pub const FILE_NAME: &str = concat!(
    r"^[^/\\\n\r",
    controls!(),
    "]*[^/\\\\",
    controls!(),
    spaces!(),
    r"][^/\\\n\r",
    controls!(),
    "]*$"
);

/// An email address: one `@`, a domain with a dot inside it, no spaces.
pub const EMAIL: &str = concat!(
    "^[^@",
    spaces!(),
    controls!(),
    "]+@[^@.",
    spaces!(),
    controls!(),
    "][^@",
    spaces!(),
    controls!(),
    r"]*\.[^@",
    spaces!(),
    controls!(),
    "]*[^@.",
    spaces!(),
    controls!(),
    "]$"
);

/// A phone number: `+` and 7–15 digits, with spaces, dashes, dots and
/// parentheses anywhere.
pub const PHONE: &str = r"^[ ().\-]*\+[ ().\-]*([0-9][ ().\-]*){7,15}$";

/// An absolute `http`/`https` URL without spaces.
pub const URL: &str = concat!(
    "^",
    http_scheme_and_host!(),
    "[^",
    spaces!(),
    controls!(),
    "]*$"
);

/// An SQS queue URL: a [`URL`] whose last path segment is a queue name
/// (1–80 letters, digits, `-`, `_`; `.fifo` for a FIFO queue).
pub const SQS_QUEUE_URL: &str = concat!(
    "^",
    http_scheme_and_host!(),
    "[^/",
    spaces!(),
    controls!(),
    "]*/([^",
    spaces!(),
    controls!(),
    r"]*/)?[A-Za-z0-9_\-]{1,80}(\.fifo)?/*$"
);

/// An AWS region name such as `eu-west-1`.
pub const AWS_REGION: &str = r"^[a-z0-9\-]{1,32}$";

/// An AWS access key id.
pub const AWS_ACCESS_KEY_ID: &str = "^[A-Za-z0-9]{1,128}$";

/// An AWS secret access key: visible ASCII.
pub const AWS_SECRET_ACCESS_KEY: &str = "^[!-~]{1,256}$";

/// A media type such as `image/png` or `text/plain; charset=utf-8`.
pub const CONTENT_TYPE: &str = r"^ *[A-Za-z0-9!#$&\^_.+\-]+/[A-Za-z0-9!#$&\^_.+\-]+ *(;[ -~]*)?$";

/// A reaction type such as `like` or `👍`: no spaces.
pub const REACTION_TYPE: &str = concat!("^[^", spaces!(), controls!(), "]+$");

/// An id of anything switchboard stores (user, channel, message, file, …).
pub const ID: &str = r"^[A-Za-z0-9_.:@\-]{1,128}$";

/// An `Idempotency-Key`: visible ASCII.
pub const IDEMPOTENCY_KEY: &str = "^[!-~]{1,255}$";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::validation;
    use rand::{Rng, SeedableRng};

    /// Characters on either side of every class boundary the checks draw.
    const ALPHABET: &[char] = &[
        'a', 'Z', '0', '9', '+', '-', '(', ')', '.', ' ', '@', '/', '\\', ':', ';', '=', '_', '!',
        '#', '^', '~', 'H', 'h', 'T', 't', 'p', 'P', 's', 'S', 'f', 'i', 'o', '\t', '\n', '\r',
        '\u{0}', '\u{7}', '\u{b}', '\u{c}', '\u{1c}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}',
        '\u{a0}', 'é', '\u{1680}', '\u{2000}', '\u{200a}', '\u{200b}', '\u{2028}', '\u{202f}',
        '\u{3000}', '\u{feff}', '😀',
    ];

    /// Strings made of [`ALPHABET`], and the same strings placed after
    /// `prefix` (so the rare shapes a check needs come up too).
    fn samples(prefixes: &[&str]) -> Vec<String> {
        let mut random = rand::rngs::StdRng::seed_from_u64(7);
        let mut out = Vec::new();
        for round in 0..40_000 {
            let length = random.gen_range(0..12);
            let tail: String = (0..length)
                .map(|_| ALPHABET[random.gen_range(0..ALPHABET.len())])
                .collect();
            let prefix = prefixes[round % prefixes.len()];
            out.push(format!("{prefix}{tail}"));
        }
        out
    }

    fn agrees(name: &str, pattern: &str, prefixes: &[&str], check: impl Fn(&str) -> bool) {
        let regex = regex::Regex::new(pattern).unwrap();
        let mut accepted = 0;
        for sample in samples(prefixes) {
            let by_check = check(&sample);
            assert_eq!(
                regex.is_match(&sample),
                by_check,
                "{name}: {sample:?} (check says {by_check})"
            );
            accepted += usize::from(by_check);
        }
        assert!(accepted > 100, "{name}: the samples hardly ever pass");
    }

    #[test]
    fn each_pattern_accepts_what_its_check_accepts() {
        agrees("TEXT", TEXT, &[""], |s| {
            validation::text("f", s, 100).is_ok()
        });
        agrees("NON_BLANK_TEXT", NON_BLANK_TEXT, &["", " "], |s| {
            validation::non_blank_text("f", s, 100).is_ok()
        });
        agrees("SHORT_FIELD", SHORT_FIELD, &["", " ", "a"], |s| {
            validation::short_field("f", s).is_ok()
        });
        agrees("FILE_NAME", FILE_NAME, &["", "a", "."], |s| {
            validation::file_name("f", s).is_ok() || s == "." || s == ".."
        });
        agrees("EMAIL", EMAIL, &["a@b.", "a@", "x", "a@b"], |s| {
            validation::email("f", s).is_ok()
        });
        agrees(
            "PHONE",
            PHONE,
            &["+1234567", "+", "(+49) 30 12", "+1-2.3"],
            |s| validation::phone("f", s).is_ok(),
        );
        agrees("URL", URL, &["http://", "HTTPS://a", "https://"], |s| {
            validation::url("f", s).is_ok()
        });
        agrees(
            "SQS_QUEUE_URL",
            SQS_QUEUE_URL,
            &[
                "http://h/",
                "https://h/a/q",
                "http://h/q.fifo",
                "http://h//",
            ],
            |s| validation::sqs_queue_url("f", s).is_ok(),
        );
        agrees("AWS_REGION", AWS_REGION, &["eu-", ""], |s| {
            validation::aws_region("f", s).is_ok()
        });
        agrees("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID, &["AK", ""], |s| {
            validation::aws_access_key_id("f", s).is_ok()
        });
        agrees(
            "AWS_SECRET_ACCESS_KEY",
            AWS_SECRET_ACCESS_KEY,
            &["", "k"],
            |s| validation::aws_secret_access_key("f", s).is_ok(),
        );
        agrees(
            "CONTENT_TYPE",
            CONTENT_TYPE,
            &["image/png", "text/plain;", " a/b ", "a/"],
            |s| validation::content_type("f", s).is_ok(),
        );
        agrees("REACTION_TYPE", REACTION_TYPE, &["", "+1"], |s| {
            validation::reaction_type("f", s).is_ok()
        });
        agrees("ID", ID, &["usr_", ""], |s| UserId::parse(s).is_some());
        agrees("IDEMPOTENCY_KEY", IDEMPOTENCY_KEY, &["", "k-"], |s| {
            validation::idempotency_key("f", s).is_ok()
        });
    }
}
