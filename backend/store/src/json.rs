//! JSON that is already serialised. The write path serialises a document state once, stores
//! those bytes in a `text` column as they are (PostgreSQL does not parse them again), and the
//! HTTP face answers them as they came. Reading checks that the text is JSON, so a damaged
//! row is an error rather than a malformed answer.

use std::io::Write;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use serde::Serialize;
use serde_json::value::RawValue;

/// A JSON text known to be well formed.
#[derive(Debug, Clone, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// Serialises `value` (no parse of the result: serde_json wrote it).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }

    pub fn into_raw(self) -> Box<RawValue> {
        self.0
    }

    /// Deserialises the text into `T`.
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl ToSql<Text, Pg> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0.get().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Pg> for JsonText {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let text = std::str::from_utf8(value.as_bytes())?;
        Ok(Self(RawValue::from_string(text.to_owned())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_serde_wrote_and_parses_back() {
        let text = JsonText::of(&serde_json::json!({"b": 1, "a": [true, null]})).unwrap();
        assert_eq!(text.get(), r#"{"b":1,"a":[true,null]}"#);
        let back: serde_json::Value = text.parse().unwrap();
        assert_eq!(back["a"][0], true);
    }
}
