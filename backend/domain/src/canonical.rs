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

/// Serialises `v` straight to its canonical bytes: the same bytes as canonicalising
/// `serde_json::to_value(v)`, without building the value.
pub fn to_canonical_vec<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(512);
    v.serialize(Canonical { out: &mut out })?;
    Ok(out)
}

/// The canonical bytes of one of Lading's own payload types: plain data with string keys,
/// which always serialises. Written straight from serde; should a type ever fail that, its
/// `serde_json::Value` is canonicalised instead (`serde_json` turns what it cannot represent
/// into `null`).
pub fn canonical_bytes_of<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    to_canonical_vec(v)
        .unwrap_or_else(|_| canonicalize(&serde_json::to_value(v).unwrap_or(Value::Null)))
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
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most strings need no escape: one branch-free pass (it vectorises) says so, and they are
    // copied whole.
    let plain = !bytes.iter().fold(false, |any, &b| {
        any | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
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

// ---------------------------------------------------------------------------------------------
// Straight to canonical bytes: a serde Serializer that writes RFC 8785 without building a
// `serde_json::Value` (no key strings, no hash maps). Each object's members are written to a
// scratch buffer, then copied out in canonical order. It gives the same bytes as
// `canonicalize(&serde_json::to_value(v))` (a property test holds it to that).

impl serde::ser::Error for CanonicalError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self::Unrepresentable(msg.to_string())
    }
}

struct Canonical<'a> {
    out: &'a mut Vec<u8>,
}

fn write_f64(f: f64, out: &mut Vec<u8>) {
    if f.is_finite() {
        let mut buffer = ryu_js::Buffer::new();
        out.extend_from_slice(buffer.format_finite(f).as_bytes());
    } else {
        // serde_json turns NaN and the infinities into null.
        out.extend_from_slice(b"null");
    }
}

fn unsupported(what: &str) -> CanonicalError {
    CanonicalError::Unrepresentable(format!("{what} has no canonical JSON form here"))
}

impl<'a> serde::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = serde::ser::Impossible<(), CanonicalError>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = serde::ser::Impossible<(), CanonicalError>;

    fn serialize_bool(self, v: bool) -> Result<(), CanonicalError> {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), CanonicalError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), CanonicalError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), CanonicalError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), CanonicalError> {
        // As ECMAScript would: through a double.
        write_f64(v as f64, self.out);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), CanonicalError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), CanonicalError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), CanonicalError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), CanonicalError> {
        write_f64(v as f64, self.out);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), CanonicalError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), CanonicalError> {
        write_f64(v, self.out);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), CanonicalError> {
        write_string(v.encode_utf8(&mut [0u8; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), CanonicalError> {
        write_string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CanonicalError> {
        // serde_json writes bytes as an array of numbers.
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            serde::ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        serde::ser::SerializeSeq::end(seq)
    }
    fn serialize_none(self) -> Result<(), CanonicalError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CanonicalError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CanonicalError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        // Externally tagged, as serde_json: {"Variant": value}.
        self.out.push(b'{');
        write_string(variant, self.out);
        self.out.push(b':');
        value.serialize(Canonical { out: self.out })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, CanonicalError> {
        self.out.push(b'[');
        Ok(Seq {
            out: self.out,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, CanonicalError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Seq<'a>, CanonicalError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, CanonicalError> {
        Err(unsupported("a tuple variant"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'a>, CanonicalError> {
        Ok(Object::new(self.out))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Object<'a>, CanonicalError> {
        Ok(Object::new(self.out))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, CanonicalError> {
        Err(unsupported("a struct variant"))
    }
}

struct Seq<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push(b',');
        }
        value.serialize(Canonical { out: self.out })
    }

    fn close(self) -> Result<(), CanonicalError> {
        self.out.push(b']');
        Ok(())
    }
}

impl serde::ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), CanonicalError> {
        self.element(v)
    }
    fn end(self) -> Result<(), CanonicalError> {
        self.close()
    }
}

impl serde::ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), CanonicalError> {
        self.element(v)
    }
    fn end(self) -> Result<(), CanonicalError> {
        self.close()
    }
}

impl serde::ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), CanonicalError> {
        self.element(v)
    }
    fn end(self) -> Result<(), CanonicalError> {
        self.close()
    }
}

/// An object being written: members go to `scratch`, and are copied to `out` sorted by name
/// when it ends. A name seen twice is refused (serde_json would keep the last one).
struct Object<'a> {
    out: &'a mut Vec<u8>,
    scratch: Vec<u8>,
    /// (name, value's range in `scratch`)
    members: Vec<(std::borrow::Cow<'static, str>, std::ops::Range<usize>)>,
    pending: Option<String>,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            scratch: Vec::new(),
            members: Vec::new(),
            pending: None,
        }
    }

    fn member<T: Serialize + ?Sized>(
        &mut self,
        name: std::borrow::Cow<'static, str>,
        value: &T,
    ) -> Result<(), CanonicalError> {
        let start = self.scratch.len();
        value.serialize(Canonical {
            out: &mut self.scratch,
        })?;
        self.members.push((name, start..self.scratch.len()));
        Ok(())
    }

    fn close(mut self) -> Result<(), CanonicalError> {
        // The same order as `write_value`: UTF-16 code units, which is byte order unless a
        // name holds a character above U+FFFF.
        if self
            .members
            .iter()
            .any(|(k, _)| k.bytes().any(|b| b >= 0xF0))
        {
            self.members
                .sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        } else {
            self.members
                .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        }
        if self.members.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(CanonicalError::Unrepresentable(
                "an object names a member twice".into(),
            ));
        }
        self.out.push(b'{');
        for (i, (name, range)) in self.members.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_string(name, self.out);
            self.out.push(b':');
            self.out.extend_from_slice(&self.scratch[range.clone()]);
        }
        self.out.push(b'}');
        Ok(())
    }
}

impl serde::ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        self.member(std::borrow::Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<(), CanonicalError> {
        self.close()
    }
}

impl serde::ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CanonicalError> {
        // Names must be strings; anything else is refused rather than guessed at.
        let mut name = Vec::new();
        key.serialize(Canonical { out: &mut name })?;
        let name: String = serde_json::from_slice(&name).map_err(|_| {
            CanonicalError::Unrepresentable("an object name is not a string".into())
        })?;
        self.pending = Some(name);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        let name = self
            .pending
            .take()
            .ok_or_else(|| CanonicalError::Unrepresentable("a value without a name".into()))?;
        self.member(std::borrow::Cow::Owned(name), value)
    }
    fn end(self) -> Result<(), CanonicalError> {
        self.close()
    }
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
        fn serialising_straight_to_canonical_bytes_agrees(v in arb_json()) {
            prop_assert_eq!(to_canonical_vec(&v).unwrap(), canonicalize(&v));
        }

        #[test]
        fn agrees_with_reference_and_is_idempotent(v in arb_json()) {
            let ours = canonicalize(&v);
            let reference = serde_json_canonicalizer::to_vec(&v).unwrap();
            prop_assert_eq!(&ours, &reference);
            prop_assert!(is_canonical(&ours));
        }
    }
}
