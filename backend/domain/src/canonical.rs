//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! Every payload Lading signs or hashes (transport documents, transition payloads, shipment
//! events, checkpoints) is serialised as JCS so that one value has exactly one byte form:
//!
//! - no insignificant whitespace;
//! - object members sorted by their names compared as arrays of UTF-16 code units (not UTF-8
//!   bytes, not code points: they differ for characters above U+FFFF);
//! - strings as ECMAScript `JSON.stringify` writes them: `"` and `\` escaped, U+0008, U+0009,
//!   U+000A, U+000C, U+000D as `\b \t \n \f \r`, every other character below U+0020 as `\u00xx`
//!   with lowercase hex, everything else (including `/`, U+007F, non-ASCII) as raw UTF-8;
//! - numbers as IEEE-754 doubles written by ECMAScript's Number-to-String rule (shortest
//!   round-trip digits; plain notation from 1e-7 up to below 1e21, exponent form `1e+21`,
//!   `5e-324` outside; `-0` written `0`). Integers outside ±2^53 lose precision, as in JCS;
//!   Lading's own payloads never carry such numbers.
//!
//! A byte string is *canonical* when it is valid UTF-8 JSON and canonicalising its parsed value
//! gives back the very same bytes. Duplicate member names therefore make input non-canonical.

use serde::Serialize;
use serde_json::Value;

/// Why a value could not be turned into canonical JSON, or bytes were not canonical.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("value cannot be represented as JSON: {0}")]
    Unrepresentable(String),
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("JSON is not in RFC 8785 canonical form")]
    NotCanonical,
}

impl CanonicalError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unrepresentable(_) => "unrepresentable_json",
            Self::NotJson(_) => "invalid_json",
            Self::NotCanonical => "non_canonical_json",
        }
    }
}

/// The RFC 8785 canonical bytes of `value`.
pub fn canonicalize(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    out
}

/// Serialises `v` and canonicalises the result.
pub fn to_canonical_vec<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, CanonicalError> {
    let value =
        serde_json::to_value(v).map_err(|e| CanonicalError::Unrepresentable(e.to_string()))?;
    Ok(canonicalize(&value))
}

/// True when `bytes` is JSON already in RFC 8785 canonical form.
pub fn is_canonical(bytes: &[u8]) -> bool {
    parse_canonical(bytes).is_ok()
}

/// Parses `bytes` as JSON and checks that they are canonical, in one pass over the input.
///
/// Verifiers use this on signed payloads: the parsed value is returned so the caller does not
/// parse twice.
pub fn parse_canonical(bytes: &[u8]) -> Result<Value, CanonicalError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| CanonicalError::NotJson(e.to_string()))?;
    if canonicalize(&value) == bytes {
        Ok(value)
    } else {
        Err(CanonicalError::NotCanonical)
    }
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // UTF-16 code-unit order equals UTF-8 byte order unless a name holds a character
            // above U+FFFF (4-byte UTF-8, lead byte 0xF0..): compare bytes then, which
            // allocates nothing, and code units otherwise.
            if members.iter().any(|(k, _)| k.bytes().any(|b| b >= 0xF0)) {
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            } else {
                members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out);
            }
            out.push(b'}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    // JCS numbers are IEEE-754 doubles; integers go through f64 like ECMAScript would.
    let f = if let Some(u) = n.as_u64() {
        u as f64
    } else if let Some(i) = n.as_i64() {
        i as f64
    } else {
        // serde_json numbers are always finite (no NaN or infinity in JSON).
        n.as_f64().unwrap_or(0.0)
    };
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(f).as_bytes());
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn canon_str(json_text: &str) -> String {
        let v: Value = serde_json::from_str(json_text).unwrap();
        String::from_utf8(canonicalize(&v)).unwrap()
    }

    fn number_of_bits(bits: u64) -> String {
        let v = Value::from(f64::from_bits(bits));
        String::from_utf8(canonicalize(&v)).unwrap()
    }

    /// RFC 8785 §3.2.2 input and §3.2.3 output.
    #[test]
    fn rfc8785_sample_object() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50,
                      2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(canon_str(input), expected);
        assert!(is_canonical(expected.as_bytes()));
        assert!(!is_canonical(input.as_bytes()));
    }

    /// RFC 8785 §3.2.3 property sorting example: names compared as UTF-16 code units.
    #[test]
    fn rfc8785_property_sorting() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canon_str(input), expected);
        // UTF-8 byte order would put U+FB33 before U+1F600: make sure we did not.
        let emoji = expected.find('😀').unwrap();
        let dalet = expected.find('\u{fb33}').unwrap();
        assert!(emoji < dalet);
    }

    /// RFC 8785 Appendix B: IEEE-754 bit patterns and their ECMAScript strings (each expected
    /// string also checked against node's `String(number)`, the ECMAScript rule itself).
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in cases {
            assert_eq!(number_of_bits(bits), expected, "bits {bits:#018x}");
        }
    }

    #[test]
    fn integers_are_written_like_doubles() {
        assert_eq!(
            canon_str("[1.0, -0.0, 100, 1e2, 10.5e1]"),
            "[1,0,100,100,105]"
        );
        // Beyond 2^53 an integer is rounded to the nearest double, as ECMAScript does.
        assert_eq!(canon_str("9007199254740993"), "9007199254740992");
        assert_eq!(canon_str("-12"), "-12");
    }

    #[test]
    fn control_characters_use_lowercase_escapes() {
        let v = json!({"s": "\u{0}\u{1f}\u{7f}\u{2028}/\t"});
        assert_eq!(
            String::from_utf8(canonicalize(&v)).unwrap(),
            "{\"s\":\"\\u0000\\u001f\u{7f}\u{2028}/\\t\"}"
        );
    }

    #[test]
    fn whitespace_duplicates_and_garbage_are_not_canonical() {
        assert!(is_canonical(br#"{"a":1,"b":[true]}"#));
        assert!(!is_canonical(br#"{"a":1, "b":[true]}"#));
        assert!(!is_canonical(br#"{"b":1,"a":2}"#));
        assert!(!is_canonical(br#"{"a":1,"a":1}"#));
        assert!(!is_canonical(br#"{"a":1.0}"#));
        assert!(!is_canonical(b"{\"a\":\"\\u0041\"}"));
        assert!(!is_canonical(b"not json"));
        assert_eq!(
            parse_canonical(b"[1,2]").map(|v| v == json!([1, 2])),
            Ok(true)
        );
        assert_eq!(
            parse_canonical(b"[1, 2]"),
            Err(CanonicalError::NotCanonical)
        );
    }

    #[test]
    fn serialize_then_canonicalize() {
        #[derive(Serialize)]
        struct S {
            z: u32,
            a: &'static str,
        }
        assert_eq!(
            to_canonical_vec(&S { z: 1, a: "x" }).unwrap(),
            br#"{"a":"x","z":1}"#.to_vec()
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Our writer agrees with an independent implementation, and its output is a fixed point.
        #[test]
        fn agrees_with_reference_and_is_idempotent(v in arb_json()) {
            let ours = canonicalize(&v);
            let reference = serde_json_canonicalizer::to_vec(&v).unwrap();
            prop_assert_eq!(&ours, &reference);
            prop_assert!(is_canonical(&ours));
        }
    }
}
