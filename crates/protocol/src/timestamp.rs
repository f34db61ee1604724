//! RFC 3339 UTC timestamps that keep their exact text.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A resource timestamp such as `2024-07-01T14:06:43.386258Z`.
///
/// Switchboard writes UTC with exactly six fractional digits; parsers accept
/// 0–9 digits and any offset. The original text is kept, so a value read and
/// written back is byte-for-byte the same.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Timestamp {
    text: String,
    unix_micros: i64,
}

impl Timestamp {
    /// A timestamp from microseconds since the Unix epoch, written as switchboard writes them.
    pub fn from_unix_micros(unix_micros: i64) -> Self {
        let secs = unix_micros.div_euclid(1_000_000);
        let micros = unix_micros.rem_euclid(1_000_000);
        let at = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let text = match u32::try_from(at.year()) {
            // Digit by digit: every event carries a dozen timestamps, and
            // `format!` with padding was a measurable share of the writer.
            Ok(year) if year <= 9_999 => {
                let mut text = String::with_capacity(27);
                push_digits(&mut text, year, 4);
                text.push('-');
                push_digits(&mut text, u32::from(u8::from(at.month())), 2);
                text.push('-');
                push_digits(&mut text, u32::from(at.day()), 2);
                text.push('T');
                push_digits(&mut text, u32::from(at.hour()), 2);
                text.push(':');
                push_digits(&mut text, u32::from(at.minute()), 2);
                text.push(':');
                push_digits(&mut text, u32::from(at.second()), 2);
                text.push('.');
                push_digits(&mut text, micros as u32, 6);
                text.push('Z');
                text
            }
            _ => written_by_format(at, micros),
        };
        Timestamp { text, unix_micros }
    }

    /// Parses RFC 3339 text (0–9 fractional digits, any offset).
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError {
            text: text.to_owned(),
        })?;
        let nanos = at.unix_timestamp_nanos();
        Ok(Timestamp {
            text: text.to_owned(),
            unix_micros: (nanos / 1_000) as i64,
        })
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        self.unix_micros
    }

    /// The text as received or written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The text of a timestamp by `format!`: for years outside 0-9999, which
/// the digit-by-digit writer does not take.
fn written_by_format(at: OffsetDateTime, micros: i64) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        micros
    )
}

/// Appends `value` as exactly `width` decimal digits (zero-padded; `value`
/// must have no more digits than that).
fn push_digits(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.unix_micros
            .cmp(&other.unix_micros)
            .then_with(|| self.text.cmp(&other.text))
    }
}

/// Text that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError {
    text: String,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an RFC 3339 timestamp such as 2024-07-01T14:06:43.386258Z",
            self.text
        )
    }
}

impl std::error::Error for TimestampError {}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .examples([serde_json::json!("2024-07-01T14:06:43.386258Z")])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_six_fraction_digits_in_utc() {
        let at = Timestamp::from_unix_micros(1_719_842_803_386_258);
        assert_eq!(at.as_str(), "2024-07-01T14:06:43.386258Z");
        assert_eq!(
            Timestamp::from_unix_micros(0).as_str(),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn written_digit_by_digit_as_format_would() {
        for micros in [
            0i64,
            -1,
            -62_135_596_800_000_000, // 0001-01-01
            1,
            999_999,
            951_782_400_123_456,     // 2000-02-29
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
        ] {
            let at = OffsetDateTime::from_unix_timestamp(micros.div_euclid(1_000_000)).unwrap();
            let expected = written_by_format(at, micros.rem_euclid(1_000_000));
            assert_eq!(Timestamp::from_unix_micros(micros).as_str(), expected);
        }
    }

    #[test]
    fn keeps_received_text_and_accepts_zero_to_nine_digits() {
        for text in [
            "2022-06-06T13:52:46Z",
            "2022-06-06T13:52:46.29224Z",
            "2022-06-06T13:52:46.292240001Z",
            "2022-06-06T15:52:46.29224+02:00",
        ] {
            let at = Timestamp::parse(text).unwrap();
            assert_eq!(at.as_str(), text);
            assert_eq!(serde_json::to_string(&at).unwrap(), format!("\"{text}\""));
        }
        let a = Timestamp::parse("2022-06-06T13:52:46.29224Z").unwrap();
        let b = Timestamp::parse("2022-06-06T15:52:46.29224+02:00").unwrap();
        assert_eq!(a.unix_micros(), b.unix_micros());
    }

    #[test]
    fn refuses_text_that_is_not_a_timestamp() {
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }
}
