//! Primitive value types. Each one can only be built through parsing, so a value in hand is
//! valid, and each has exactly one textual form (parsing never normalises: input that is not
//! already in that form is refused, which keeps signed bytes and re-serialised bytes identical).
//!
//! | type | rule |
//! |---|---|
//! | [`PartyId`] | `^[a-z0-9][a-z0-9-]{1,62}$` (2 to 63 chars), e.g. `carrier-oceanic` |
//! | [`KeyId`] | 1 to 128 chars of `[A-Za-z0-9._:-]` |
//! | [`DocumentReference`] | DCSA `transportDocumentReference`: 1 to 20 chars of `[A-Za-z0-9._/-]` (DCSA allows any printable text; Lading keeps the URL-safe subset so a reference can be a path segment) |
//! | [`ContainerNumber`] | ISO 6346: owner code `[A-Z]{3}`, category `U`, `J` or `Z`, serial `[0-9]{6}`, check digit `[0-9]` verified (see below) |
//! | [`UnLocode`] | UN/LOCODE: country `[A-Z]{2}` then location `[A-Z2-9]{3}`, e.g. `NLRTM` |
//! | [`HsCode`] | 6 to 10 ASCII digits |
//! | [`NonEmptyText`] | 1 to 5000 chars (Unicode scalar values), no leading or trailing whitespace, no control characters but tab, LF and CR |
//! | [`EventId`] | 1 to 64 chars, no leading or trailing whitespace, no control characters |
//! | [`PositiveDecimal`] | a finite JSON number > 0 |
//! | [`Timestamp`] | `YYYY-MM-DDTHH:MM:SS.mmmZ`: RFC 3339, UTC, exactly 3 fraction digits, `Z` |
//! | [`Date`] | `YYYY-MM-DD` (RFC 3339 full-date, years 0000 to 9999) |
//!
//! ISO 6346 check digit: give each of the first 10 characters a value (digits their own value;
//! letters A=10, B=12, C=13, D=14, E=15, F=16, G=17, H=18, I=19, J=20, K=21, L=23, M=24, N=25,
//! O=26, P=27, Q=28, R=29, S=30, T=31, U=32, V=34, W=35, X=36, Y=37, Z=38, i.e. counting from 10
//! and skipping multiples of 11), multiply the value at position i (0-based) by 2^i, sum, take
//! the sum modulo 11 and then modulo 10. The result must equal the 11th character.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a primitive value did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct IdError {
    /// Human name of the type, e.g. "party id".
    pub what: &'static str,
    /// The refused input (cut to 100 chars).
    pub value: String,
    pub reason: &'static str,
    code: &'static str,
}

impl IdError {
    fn new(what: &'static str, code: &'static str, value: &str, reason: &'static str) -> Self {
        Self {
            what,
            value: value.chars().take(100).collect(),
            reason,
            code,
        }
    }

    /// Stable machine code, one per type (`invalid_party_id`, `invalid_container_number`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// Declares a string newtype whose only constructor is `check`.
macro_rules! string_type {
    ($(#[$meta:meta])* $name:ident, $what:literal, $code:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(CompactString);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            fn check(s: &str) -> Result<(), &'static str> {
                let f: fn(&str) -> Result<(), &'static str> = $check;
                f(s)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::check(s).map_err(|reason| IdError::new($what, $code, s, reason))?;
                Ok(Self(CompactString::new(s)))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::check(&s).map_err(|reason| IdError::new($what, $code, &s, reason))?;
                Ok(Self(CompactString::from(s)))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.into_string()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_from_str(deserializer)
            }
        }
    };
}

/// Deserialises a string through `FromStr`, lending it as `&str`: serde_json passes strings
/// straight from the input (or its escape buffer), so parsing one makes no `String` only to
/// copy it again. Refusals read as they would with `String`: "expected a string".
pub(crate) fn deserialize_from_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct ParseStr<T>(std::marker::PhantomData<T>);
    impl<T> serde::de::Visitor<'_> for ParseStr<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map_err(E::custom)
        }
    }
    deserializer.deserialize_str(ParseStr(std::marker::PhantomData))
}

fn all_bytes(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    s.bytes().all(ok)
}

string_type!(
    /// A party's identifier in Lading (carrier, shipper, bank, customs authority, ...).
    PartyId,
    "party id",
    "invalid_party_id",
    |s| {
        if !(2..=63).contains(&s.len()) {
            return Err("must be 2 to 63 characters");
        }
        if !matches!(s.as_bytes()[0], b'a'..=b'z' | b'0'..=b'9') {
            return Err("must start with a lowercase letter or digit");
        }
        if !all_bytes(s, |b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-')) {
            return Err("only lowercase letters, digits and '-' are allowed");
        }
        Ok(())
    }
);

string_type!(
    /// A signing key's identifier (the JWS `kid`).
    KeyId,
    "key id",
    "invalid_key_id",
    |s| {
        if !(1..=128).contains(&s.len()) {
            return Err("must be 1 to 128 characters");
        }
        // '#' lets a kid name a key of a party the way DID URLs do (`carrier-oceanic#2026`).
        if !all_bytes(s, |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-' | b'#')) {
            return Err("only A-Z, a-z, 0-9, '.', '_', ':', '-' and '#' are allowed");
        }
        Ok(())
    }
);

string_type!(
    /// DCSA `transportDocumentReference`, restricted to a URL-safe alphabet.
    DocumentReference,
    "document reference",
    "invalid_document_reference",
    |s| {
        if !(1..=20).contains(&s.len()) {
            return Err("must be 1 to 20 characters");
        }
        if !all_bytes(s, |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/')) {
            return Err("only A-Z, a-z, 0-9, '-', '_', '.' and '/' are allowed");
        }
        Ok(())
    }
);

string_type!(
    /// An ISO 6346 container number with a verified check digit, e.g. `CSQU3054383`.
    ContainerNumber,
    "container number",
    "invalid_container_number",
    |s| {
        let b = s.as_bytes();
        if b.len() != 11 {
            return Err("must be 11 characters");
        }
        if !b[..3].iter().all(u8::is_ascii_uppercase) {
            return Err("owner code must be 3 uppercase letters");
        }
        if !matches!(b[3], b'U' | b'J' | b'Z') {
            return Err("equipment category must be U, J or Z");
        }
        if !b[4..].iter().all(u8::is_ascii_digit) {
            return Err("serial number and check digit must be digits");
        }
        if iso6346_check_digit(&b[..10]) != b[10] - b'0' {
            return Err("check digit does not match (ISO 6346)");
        }
        Ok(())
    }
);

/// ISO 6346 value of one character: digits count as themselves, letters from A=10 upwards,
/// skipping multiples of 11.
fn iso6346_value(c: u8) -> u64 {
    if c.is_ascii_digit() {
        return u64::from(c - b'0');
    }
    let mut v = 10;
    for _ in b'A'..c {
        v += 1;
        if v % 11 == 0 {
            v += 1;
        }
    }
    v
}

/// ISO 6346 check digit of the first 10 characters (already known to be `[A-Z]{4}[0-9]{6}`).
fn iso6346_check_digit(first_ten: &[u8]) -> u8 {
    let sum: u64 = first_ten
        .iter()
        .enumerate()
        .map(|(i, &c)| iso6346_value(c) << i)
        .sum();
    // (sum mod 11) mod 10 is always < 10.
    (sum % 11 % 10) as u8
}

string_type!(
    /// A UN/LOCODE, e.g. `NLRTM` (Rotterdam).
    UnLocode,
    "UN/LOCODE",
    "invalid_unlocode",
    |s| {
        let b = s.as_bytes();
        if b.len() != 5 {
            return Err("must be 5 characters");
        }
        if !b[..2].iter().all(u8::is_ascii_uppercase) {
            return Err("country code must be 2 uppercase letters");
        }
        if !b[2..].iter().all(|c| matches!(c, b'A'..=b'Z' | b'2'..=b'9')) {
            return Err("location code must be 3 of A-Z and 2-9");
        }
        Ok(())
    }
);

impl UnLocode {
    /// The ISO 3166-1 alpha-2 country code (first two characters).
    pub fn country(&self) -> &str {
        &self.0[..2]
    }
}

string_type!(
    /// A Harmonized System commodity code of 6 to 10 digits.
    HsCode,
    "HS code",
    "invalid_hs_code",
    |s| {
        if !(6..=10).contains(&s.len()) || !all_bytes(s, |b| b.is_ascii_digit()) {
            return Err("must be 6 to 10 digits");
        }
        Ok(())
    }
);

/// Control characters other than tab, line feed and carriage return: U+0000 (which
/// PostgreSQL can store in neither `text` nor `jsonb`) and the rest of C0, DEL and C1, which no
/// trade document needs and which make text that looks the same compare differently.
fn has_forbidden_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

string_type!(
    /// Free text: non-empty, at most 5000 characters, no leading or trailing whitespace, no
    /// control characters but tab, line feed and carriage return.
    NonEmptyText,
    "text",
    "invalid_text",
    |s| {
        if s.is_empty() {
            return Err("must not be empty");
        }
        if s.trim() != s {
            return Err("must not start or end with whitespace");
        }
        if s.chars().count() > 5000 {
            return Err("must be at most 5000 characters");
        }
        if has_forbidden_control(s) {
            return Err("must not contain control characters (only tab, LF and CR are allowed)");
        }
        Ok(())
    }
);

string_type!(
    /// A shipment event's identifier, unique per actor: 1 to 64 characters, no whitespace at
    /// either end and no control characters at all (it is a key, not prose).
    EventId,
    "event id",
    "invalid_event_id",
    |s| {
        if s.is_empty() || s.chars().count() > 64 {
            return Err("must be 1 to 64 characters");
        }
        if s.trim() != s {
            return Err("must not start or end with whitespace");
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(())
    }
);

impl NonEmptyText {
    /// Length in characters (Unicode scalar values), as DCSA `maxLength` counts.
    pub fn char_len(&self) -> usize {
        self.0.chars().count()
    }
}

/// A weight or volume: a finite number greater than zero.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub struct PositiveDecimal(f64);

impl PositiveDecimal {
    pub fn new(value: f64) -> Result<Self, IdError> {
        if value.is_finite() && value > 0.0 {
            Ok(Self(value))
        } else {
            Err(IdError::new(
                "positive number",
                "invalid_positive_number",
                &value.to_string(),
                "must be finite and greater than zero",
            ))
        }
    }

    pub fn get(&self) -> f64 {
        self.0
    }
}

impl fmt::Debug for PositiveDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PositiveDecimal({})", self.0)
    }
}

impl fmt::Display for PositiveDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buffer = ryu_js::Buffer::new();
        f.write_str(buffer.format_finite(self.0))
    }
}

impl Serialize for PositiveDecimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for PositiveDecimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// An instant in UTC with millisecond precision, written `2026-11-23T12:00:00.000Z`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

impl Timestamp {
    /// The current time, truncated to milliseconds.
    pub fn now() -> Self {
        Self::from_datetime_truncated(Utc::now())
    }

    /// `t` truncated to whole milliseconds (sub-millisecond digits could not be written).
    pub fn from_datetime_truncated(t: DateTime<Utc>) -> Self {
        let millis = t.timestamp_millis();
        Self(Utc.timestamp_millis_opt(millis).single().unwrap_or(t))
    }

    /// Milliseconds since the Unix epoch; `None` when out of chrono's range or not 4-digit-year.
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        let t = Utc.timestamp_millis_opt(millis).single()?;
        let ts = Self(t);
        // Only years 0000..=9999 have the fixed-width textual form.
        (0..=9999)
            .contains(&chrono::Datelike::year(&t))
            .then_some(ts)
    }

    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl FromStr for Timestamp {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let err = |reason| IdError::new("timestamp", "invalid_timestamp", s, reason);
        let b = s.as_bytes();
        let shape_ok = b.len() == 24
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'.',
                23 => c == b'Z',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(err("must be YYYY-MM-DDTHH:MM:SS.mmmZ (UTC, milliseconds)"));
        }
        if &s[17..19] == "60" {
            return Err(err("leap seconds are not representable"));
        }
        // The shape is fixed, so the fields are read by position (no format interpreter: this
        // runs for every submission).
        let n = |from: usize, to: usize| digits(&b[from..to]);
        let naive = NaiveDate::from_ymd_opt(n(0, 4) as i32, n(5, 7), n(8, 10))
            .and_then(|d| d.and_hms_milli_opt(n(11, 13), n(14, 16), n(17, 19), n(20, 23)))
            .ok_or_else(|| err("not a valid date and time"))?;
        Ok(Timestamp(Utc.from_utc_datetime(&naive)))
    }
}

impl TryFrom<String> for Timestamp {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        let t = self.0;
        let year = t.year();
        if !(0..=9999).contains(&year) {
            return write!(f, "{}", t.format(TIMESTAMP_FORMAT));
        }
        // Written by position rather than through chrono's format interpreter: every
        // submission's canonical form writes its time.
        let mut out = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut out[0..4], year.unsigned_abs());
        put_digits(&mut out[5..7], t.month());
        put_digits(&mut out[8..10], t.day());
        put_digits(&mut out[11..13], t.hour());
        put_digits(&mut out[14..16], t.minute());
        put_digits(&mut out[17..19], t.second());
        put_digits(&mut out[20..23], t.timestamp_subsec_millis());
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer)
    }
}

/// A calendar date written `YYYY-MM-DD` (DCSA `format: date`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(NaiveDate);

impl Date {
    pub fn as_naive(&self) -> NaiveDate {
        self.0
    }

    /// `None` for years outside 0000..=9999, which have no fixed-width form.
    pub fn from_naive(d: NaiveDate) -> Option<Self> {
        (0..=9999)
            .contains(&chrono::Datelike::year(&d))
            .then_some(Self(d))
    }
}

impl FromStr for Date {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let err = |reason| IdError::new("date", "invalid_date", s, reason);
        let b = s.as_bytes();
        let shape_ok = b.len() == 10
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(err("must be YYYY-MM-DD"));
        }
        NaiveDate::from_ymd_opt(digits(&b[0..4]) as i32, digits(&b[5..7]), digits(&b[8..10]))
            .map(Self)
            .ok_or_else(|| err("not a valid calendar date"))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::Datelike;
        let year = self.0.year();
        if !(0..=9999).contains(&year) {
            return write!(f, "{}", self.0.format("%Y-%m-%d"));
        }
        let mut out = *b"0000-00-00";
        put_digits(&mut out[0..4], year.unsigned_abs());
        put_digits(&mut out[5..7], self.0.month());
        put_digits(&mut out[8..10], self.0.day());
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

/// The value of ASCII decimal digits (the caller checked they are digits).
fn digits(b: &[u8]) -> u32 {
    b.iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
}

/// Writes `value` as decimal digits filling `out`, zero-padded (higher digits are dropped).
fn put_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn party_id_rules() {
        for ok in ["carrier-oceanic", "ab", "0x", "a-", &"a".repeat(63)] {
            assert!(ok.parse::<PartyId>().is_ok(), "{ok}");
        }
        for bad in [
            "a",
            "-ab",
            "Carrier",
            "carrier_x",
            "carrier x",
            "",
            &"a".repeat(64),
        ] {
            let e = bad.parse::<PartyId>().unwrap_err();
            assert_eq!(e.code(), "invalid_party_id", "{bad}");
        }
    }

    #[test]
    fn key_id_rules() {
        assert!("carrier-oceanic:2026.1_a".parse::<KeyId>().is_ok());
        assert!("k".parse::<KeyId>().is_ok());
        assert!("a".repeat(128).parse::<KeyId>().is_ok());
        assert!("a".repeat(129).parse::<KeyId>().is_err());
        assert!("".parse::<KeyId>().is_err());
        assert!("a/b".parse::<KeyId>().is_err());
        assert!("a b".parse::<KeyId>().is_err());
    }

    #[test]
    fn document_reference_rules() {
        assert!("HHL71800000".parse::<DocumentReference>().is_ok());
        assert!("ab-c_d.e/f".parse::<DocumentReference>().is_ok());
        assert!("A".repeat(20).parse::<DocumentReference>().is_ok());
        assert!("A".repeat(21).parse::<DocumentReference>().is_err());
        assert!(" ABC".parse::<DocumentReference>().is_err());
        assert!("AB C".parse::<DocumentReference>().is_err());
        assert!("AB?C".parse::<DocumentReference>().is_err());
        assert!("".parse::<DocumentReference>().is_err());
    }

    #[test]
    fn container_numbers_with_real_check_digits() {
        assert!("CSQU3054383".parse::<ContainerNumber>().is_ok());
        assert!("MSKU9070323".parse::<ContainerNumber>().is_ok());
        // DCSA's own example equipment reference.
        assert!("APZU4812090".parse::<ContainerNumber>().is_ok());
        let e = "CSQU3054384".parse::<ContainerNumber>().unwrap_err();
        assert_eq!(e.code(), "invalid_container_number");
        assert!(e.reason.contains("check digit"));
        assert!("CSQX3054383".parse::<ContainerNumber>().is_err());
        assert!("csqu3054383".parse::<ContainerNumber>().is_err());
        assert!("CSQU305438".parse::<ContainerNumber>().is_err());
        assert!("CSQU30543A3".parse::<ContainerNumber>().is_err());
    }

    #[test]
    fn iso6346_letter_values_skip_multiples_of_eleven() {
        let table = [
            10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 34,
            35, 36, 37, 38,
        ];
        for (c, expected) in (b'A'..=b'Z').zip(table) {
            assert_eq!(iso6346_value(c), expected, "{}", c as char);
        }
        assert_eq!(iso6346_value(b'7'), 7);
    }

    #[test]
    fn unlocode_rules() {
        let rtm: UnLocode = "NLRTM".parse().unwrap();
        assert_eq!(rtm.country(), "NL");
        assert!("SGSIN".parse::<UnLocode>().is_ok());
        assert!("DEHAM".parse::<UnLocode>().is_ok());
        assert!("USNY2".parse::<UnLocode>().is_ok());
        assert!("USNY1".parse::<UnLocode>().is_err());
        assert!("nlrtm".parse::<UnLocode>().is_err());
        assert!("NLRT".parse::<UnLocode>().is_err());
        assert!("N1RTM".parse::<UnLocode>().is_err());
    }

    #[test]
    fn hs_code_and_text_rules() {
        assert!("851713".parse::<HsCode>().is_ok());
        assert!("8517130000".parse::<HsCode>().is_ok());
        assert!("85171".parse::<HsCode>().is_err());
        assert!("85171300001".parse::<HsCode>().is_err());
        assert!("85171a".parse::<HsCode>().is_err());
        assert!("blue shoes".parse::<NonEmptyText>().is_ok());
        assert!("".parse::<NonEmptyText>().is_err());
        assert!(" x".parse::<NonEmptyText>().is_err());
        assert!("x\n".parse::<NonEmptyText>().is_err());
        assert!("é".repeat(5000).parse::<NonEmptyText>().is_ok());
        assert!("é".repeat(5001).parse::<NonEmptyText>().is_err());
    }

    #[test]
    fn positive_decimal_rules_and_json_form() {
        assert!(PositiveDecimal::new(0.0).is_err());
        assert!(PositiveDecimal::new(-1.0).is_err());
        assert!(PositiveDecimal::new(f64::NAN).is_err());
        assert!(PositiveDecimal::new(f64::INFINITY).is_err());
        let w: PositiveDecimal = serde_json::from_str("2400").unwrap();
        assert_eq!(w.get(), 2400.0);
        assert_eq!(serde_json::to_string(&w).unwrap(), "2400.0");
        assert!(serde_json::from_str::<PositiveDecimal>("0").is_err());
        assert!(serde_json::from_str::<PositiveDecimal>("\"12\"").is_err());
    }

    #[test]
    fn timestamp_exact_form() {
        let t: Timestamp = "2026-11-23T12:00:00.000Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-23T12:00:00.000Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-11-23T12:00:00.000Z\""
        );
        for bad in [
            "2026-11-23T12:00:00Z",
            "2026-11-23T12:00:00.0Z",
            "2026-11-23T12:00:00.0000Z",
            "2026-11-23T12:00:00.000+00:00",
            "2026-11-23t12:00:00.000Z",
            "2026-11-23 12:00:00.000Z",
            "2026-02-30T12:00:00.000Z",
            "2026-11-23T24:00:00.000Z",
            "2026-12-31T23:59:60.000Z",
        ] {
            assert_eq!(
                bad.parse::<Timestamp>().unwrap_err().code(),
                "invalid_timestamp",
                "{bad}"
            );
        }
        let now = Timestamp::now();
        assert_eq!(now.to_string().parse::<Timestamp>(), Ok(now));
        assert_eq!(
            Timestamp::from_unix_millis(t.unix_millis()),
            Some(t),
            "millisecond round trip"
        );
    }

    #[test]
    fn date_exact_form() {
        let d: Date = "2026-11-23".parse().unwrap();
        assert_eq!(d.to_string(), "2026-11-23");
        assert!("2026-1-23".parse::<Date>().is_err());
        assert!("2026-02-30".parse::<Date>().is_err());
        assert!("+2026-11-23".parse::<Date>().is_err());
        assert!("2026-11-23T00:00:00Z".parse::<Date>().is_err());
    }

    #[test]
    fn serde_refuses_invalid_values() {
        assert!(serde_json::from_str::<PartyId>("\"Bad Id\"").is_err());
        let p: PartyId = serde_json::from_str("\"shipper-acme\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"shipper-acme\"");
    }

    proptest! {
        /// Any ISO 6346 number with its computed check digit parses, and every other digit fails.
        #[test]
        fn container_check_digit_is_exactly_one_digit(
            owner in "[A-Z]{3}", cat in "[UJZ]", serial in "[0-9]{6}", digit in 0u8..10
        ) {
            let first = format!("{owner}{cat}{serial}");
            let expected = iso6346_check_digit(first.as_bytes());
            let candidate = format!("{first}{digit}");
            prop_assert_eq!(candidate.parse::<ContainerNumber>().is_ok(), digit == expected);
        }

        #[test]
        fn timestamp_display_parse_round_trip(millis in 0i64..253_402_300_799_999) {
            let t = Timestamp::from_unix_millis(millis).unwrap();
            prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        }

        /// Dates too: written and read by position, as chrono would.
        #[test]
        fn date_text_matches_chrono(days in 0i32..3_652_059) {
            let naive = NaiveDate::from_num_days_from_ce_opt(days + 1).unwrap();
            let d = Date::from_naive(naive).unwrap();
            let by_chrono = naive.format("%Y-%m-%d").to_string();
            prop_assert_eq!(d.to_string(), by_chrono.clone());
            prop_assert_eq!(by_chrono.parse::<Date>().unwrap(), d);
        }

        /// The positional writer and reader agree with chrono's format interpreter.
        #[test]
        fn timestamp_text_matches_chrono(millis in 0i64..253_402_300_799_999) {
            let t = Timestamp::from_unix_millis(millis).unwrap();
            let by_chrono = t.as_datetime().format(TIMESTAMP_FORMAT).to_string();
            prop_assert_eq!(t.to_string(), by_chrono.clone());
            let naive = chrono::NaiveDateTime::parse_from_str(
                &by_chrono[..23],
                "%Y-%m-%dT%H:%M:%S%.3f",
            )
            .unwrap();
            prop_assert_eq!(by_chrono.parse::<Timestamp>().unwrap().as_datetime().naive_utc(), naive);
        }
    }
}
