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

use serde::Serialize;
use serde_json::{Map, Number, Value};

/// Compact JSON of `value` in JavaScript's key order. Most values have no
/// digit-only key and no fraction, and are written once, as they are.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let text = serde_json::to_string(value)?;
    if !may_differ_in_javascript(&text) {
        return Ok(text);
    }
    let value: Value = serde_json::from_str(&text)?;
    serde_json::to_string(&in_javascript_order(value))
}

/// Whether compact JSON `text` may be written otherwise by JavaScript: it
/// has an object key of digits only (`"100":`) or a number with a fraction
/// or an exponent. Reads the text once, skipping the insides of strings.
fn may_differ_in_javascript(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut index = 0;
    let mut in_string = false;
    while index < bytes.len() {
        let byte = bytes[index];
        if in_string {
            match byte {
                b'\\' => index += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => {
                    let digits = bytes[index + 1..]
                        .iter()
                        .take_while(|byte| byte.is_ascii_digit())
                        .count();
                    let after = index + 1 + digits;
                    if digits > 0
                        && bytes.get(after) == Some(&b'"')
                        && bytes.get(after + 1) == Some(&b':')
                    {
                        return true;
                    }
                    in_string = true;
                }
                b'.' => return true,
                b'e' | b'E' if index > 0 && bytes[index - 1].is_ascii_digit() => return true,
                _ => {}
            }
        }
        index += 1;
    }
    false
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
    fn what_javascript_writes_alike_is_recognised_without_parsing() {
        for alike in [
            r#"{"a":1,"b":[true,false,null],"c":"x\"100\":1.5e3"}"#,
            r#"{"reactionCounts":{"+1":2,"heart":1},"n":-12}"#,
        ] {
            assert!(!may_differ_in_javascript(alike), "{alike}");
        }
        for different in [
            r#"{"100":1}"#,
            r#"{"a":{"0":1}}"#,
            r#"[1.5]"#,
            r#"{"n":1e3}"#,
        ] {
            assert!(may_differ_in_javascript(different), "{different}");
        }
    }

    #[test]
    fn integral_floats_are_written_as_integers() {
        assert_eq!(
            to_string(&json!([1.0, 2.5, -3.0, 7])).unwrap(),
            "[1,2.5,-3,7]"
        );
    }
}
