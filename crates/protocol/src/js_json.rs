//! Event bodies written exactly as JavaScript's `JSON.stringify` writes them,
//! so a receiver that checks `x-signature` over
//! `JSON.stringify(JSON.parse(body))` (Express's `express.json()`, then
//! re-serializing) gets the bytes that were signed.
//!
//! What differs from plain `serde_json`:
//! - **Key order.** JavaScript objects list keys that are canonical array
//!   indices (`"0"`, `"9"`, `"100"`: no sign, no leading zero, below
//!   2³² − 1) first, in ascending numeric order, then the others in insertion
//!   order. A map `{"+1": 1, "100": 1}` is written `{"100":1,"+1":1}`.
//! - **Numbers.** A float with an integral value in JavaScript's safe range is
//!   written as an integer (`1.0` → `1`), as JavaScript writes it.
//!
//! What already agrees: compact output, and string escaping (`"`, `\`, `\b`,
//! `\f`, `\n`, `\r`, `\t`, other control characters as lowercase `\u00xx`,
//! everything else — non-ASCII, emoji, U+2028, DEL — as is).

use std::cell::Cell;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::{Map, Number, Value};

/// Compact JSON of `value` in JavaScript's key order. Most values have no
/// digit-only key and no float, and are written once, as they are: the
/// writing itself notes whether it met either ([`Watchful`]), and only then
/// is the text read back and written again in JavaScript's order.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let (bytes, may_differ) = written(value)?;
    // serde_json writes only valid UTF-8.
    let text = String::from_utf8(bytes).expect("serde_json writes UTF-8");
    if !may_differ {
        return Ok(text);
    }
    let value: Value = serde_json::from_str(&text)?;
    serde_json::to_string(&in_javascript_order(value))
}

/// The compact JSON of `value`, and whether JavaScript may write it otherwise.
fn written<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::with_capacity(256);
    let may_differ = Cell::new(false);
    let watchful = Watchful {
        may_differ: &may_differ,
        key: None,
    };
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut bytes, watchful,
    ))?;
    Ok((bytes, may_differ.get()))
}

/// serde_json's compact writing, noting whether it wrote anything JavaScript
/// may write otherwise: an object key of digits only (JavaScript lists such
/// keys first) or a float (JavaScript writes `1.0` as `1`).
struct Watchful<'a> {
    may_differ: &'a Cell<bool>,
    /// Inside an object key: whether every character so far is a digit.
    key: Option<KeyDigits>,
}

#[derive(Clone, Copy)]
enum KeyDigits {
    NoneYet,
    OnlyDigits,
    Other,
}

impl Watchful<'_> {
    fn key_text(&mut self, text: &[u8]) {
        if let Some(key) = &mut self.key {
            let digits = !text.is_empty() && text.iter().all(u8::is_ascii_digit);
            *key = match (*key, digits) {
                (KeyDigits::Other, _) | (_, false) => KeyDigits::Other,
                _ => KeyDigits::OnlyDigits,
            };
        }
    }
}

/// Integers written inside a key (maps keyed by numbers) count as digits;
/// a negative one does not.
macro_rules! integer_writers {
    ($($method:ident: $type:ty),*) => {$(
        fn $method<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, value: $type) -> std::io::Result<()> {
            if self.key.is_some() {
                self.key_text(value.to_string().as_bytes());
            }
            CompactFormatter.$method(writer, value)
        }
    )*};
}

/// Floats (and numbers written as given) are written otherwise by
/// JavaScript when integral (`1.0` → `1`).
macro_rules! float_writers {
    ($($method:ident: $type:ty),*) => {$(
        fn $method<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, value: $type) -> std::io::Result<()> {
            self.may_differ.set(true);
            CompactFormatter.$method(writer, value)
        }
    )*};
}

impl Formatter for Watchful<'_> {
    integer_writers!(
        write_i8: i8, write_i16: i16, write_i32: i32, write_i64: i64, write_i128: i128,
        write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64, write_u128: u128
    );

    float_writers!(write_f32: f32, write_f64: f64, write_number_str: &str);

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        self.key_text(fragment.as_bytes());
        writer.write_all(fragment.as_bytes())
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        self.key_text(b"\\");
        CompactFormatter.write_char_escape(writer, escape)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.key = Some(KeyDigits::NoneYet);
        CompactFormatter.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        if let Some(KeyDigits::OnlyDigits) = self.key.take() {
            self.may_differ.set(true);
        }
        CompactFormatter.end_object_key(writer)
    }
}

/// `value` with every object's keys in JavaScript's order and integral floats
/// as integers.
pub fn in_javascript_order(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut indices = Vec::new();
            let mut others = Vec::new();
            for (key, value) in map {
                let value = in_javascript_order(value);
                match array_index(&key) {
                    Some(index) => indices.push((index, key, value)),
                    None => others.push((key, value)),
                }
            }
            indices.sort_by_key(|(index, _, _)| *index);
            let mut ordered = Map::new();
            for (_, key, value) in indices {
                ordered.insert(key, value);
            }
            for (key, value) in others {
                ordered.insert(key, value);
            }
            Value::Object(ordered)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(in_javascript_order).collect()),
        Value::Number(number) => Value::Number(as_javascript_writes(number)),
        other => other,
    }
}

/// Makes every integral float of `value` an integer (`4.0` → `4`), as
/// JavaScript has no difference between them: a request written by
/// JavaScript or by Python's `json.dumps` may send `4.0` for a count.
pub fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Number(number) => *number = as_javascript_writes(number.clone()),
        _ => {}
    }
}

/// The numeric value of a key that JavaScript treats as an array index.
fn array_index(key: &str) -> Option<u32> {
    let canonical =
        key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit()));
    if key.is_empty() || !canonical {
        return None;
    }
    // The largest index is 2³² − 2; longer digit strings overflow here.
    key.parse::<u32>().ok().filter(|index| *index < u32::MAX)
}

/// Largest integer JavaScript represents exactly (2⁵³ − 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn as_javascript_writes(number: Number) -> Number {
    match number.as_f64() {
        Some(float)
            if !number.is_i64()
                && !number.is_u64()
                && float.fract() == 0.0
                && float.abs() <= MAX_SAFE_INTEGER =>
        {
            Number::from(float as i64)
        }
        _ => number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn array_index_keys_come_first_in_numeric_order() {
        let mut counts = Map::new();
        for key in [
            "+1",
            "100",
            "heart",
            "9",
            "0",
            "007",
            "-1",
            "4294967295",
            "4294967294",
        ] {
            counts.insert(key.to_owned(), json!(1));
        }
        let written = to_string(&json!({"reactionCounts": counts})).unwrap();
        assert_eq!(
            written,
            r#"{"reactionCounts":{"0":1,"9":1,"100":1,"4294967294":1,"+1":1,"heart":1,"007":1,"-1":1,"4294967295":1}}"#
        );
    }

    #[test]
    fn nested_objects_and_arrays_are_ordered_too() {
        let written =
            to_string(&json!({"b": [{"2": "x", "1": "y"}], "a": {"10": 1, "z": 2}})).unwrap();
        assert_eq!(written, r#"{"b":[{"1":"y","2":"x"}],"a":{"10":1,"z":2}}"#);
    }

    #[test]
    fn strings_are_escaped_as_javascript_escapes_them() {
        let text = "tab\there \"quoted\" back\\slash \u{1} \u{1f} \u{7f} é 👍 \u{2028}\n";
        assert_eq!(
            to_string(&json!({"text": text})).unwrap(),
            "{\"text\":\"tab\\there \\\"quoted\\\" back\\\\slash \\u0001 \\u001f \u{7f} é 👍 \u{2028}\\n\"}"
        );
    }

    #[test]
    fn what_javascript_writes_alike_is_written_once_as_it_is() {
        let may_differ = |value: Value| {
            let (bytes, may_differ) = written(&value).unwrap();
            assert_eq!(
                bytes,
                serde_json::to_vec(&value).unwrap(),
                "compact, as serde_json writes"
            );
            may_differ
        };
        for alike in [
            json!({"a": 1, "b": [true, false, null], "c": "x\"100\":1.5e3"}),
            json!({"reactionCounts": {"+1": 2, "heart": 1}, "n": -12}),
            json!({"1a": 1, "a1": 2, "": 3, "-1": 4, "1\n": 5}),
            json!(["100", 100, {"k": "100"}]),
        ] {
            assert!(!may_differ(alike.clone()), "{alike}");
        }
        for different in [
            json!({"100": 1}),
            json!({"a": {"0": 1}}),
            json!({"007": 1}),
            json!([1.5]),
            json!({"n": 1e3}),
        ] {
            assert!(may_differ(different.clone()), "{different}");
        }
        let by_number: std::collections::BTreeMap<u32, u8> = [(2, 1), (10, 1)].into();
        assert_eq!(to_string(&by_number).unwrap(), r#"{"2":1,"10":1}"#);
    }

    #[test]
    fn integral_floats_are_written_as_integers() {
        assert_eq!(
            to_string(&json!([1.0, 2.5, -3.0, 7])).unwrap(),
            "[1,2.5,-3,7]"
        );
    }
}
