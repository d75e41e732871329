//! SQL written by hand that the connection keeps prepared.
//!
//! diesel's `sql_query` is never kept prepared: every call is sent, parsed and analysed again.
//! [`Prepared`] is the same hand-written SQL with its binds, marked safe to keep: each
//! connection prepares a statement once per distinct SQL text (its binds are never part of
//! the text) and runs it again with new values. Whether PostgreSQL then plans each run for its
//! values or reuses a generic plan is the caller's choice (`plan_cache_mode`).

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Int8, Text, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A bind's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(String),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Sql(String),
    Bind(usize),
}

/// A statement of SQL text and binds, kept prepared by the connection that runs it.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    parts: Vec<Part>,
    values: Vec<Value>,
}

impl Prepared {
    /// `sql` with PostgreSQL's numbered placeholders (`$1` is `values[0]`; a number may appear
    /// more than once). The text must hold no `$` other than placeholders (no dollar quoting,
    /// no `$` in a literal): the statements of this crate are written so.
    pub(crate) fn numbered(sql: &str, values: Vec<Value>) -> Self {
        let mut parts = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let number = rest[at + 1..at + 1 + digits].parse::<usize>().ok();
            match number {
                Some(n) if (1..=values.len()).contains(&n) => {
                    parts.push(Part::Sql(rest[..at].to_owned()));
                    parts.push(Part::Bind(n - 1));
                }
                // Not a placeholder of ours: kept as text (PostgreSQL will say what is wrong).
                _ => parts.push(Part::Sql(rest[..at + 1 + digits].to_owned())),
            }
            rest = &rest[at + 1 + digits..];
        }
        parts.push(Part::Sql(rest.to_owned()));
        Self { parts, values }
    }
}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(text) => out.push_sql(text),
                Part::Bind(i) => match self.values.get(*i) {
                    Some(Value::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                    Some(Value::Int(v)) => out.push_bind_param::<Int8, _>(v)?,
                    None => {
                        return Err(diesel::result::Error::QueryBuilderError(
                            format!("placeholder ${} has no value", i + 1).into(),
                        ))
                    }
                },
            }
        }
        Ok(())
    }
}

// No static id: diesel keys the prepared statement by its SQL text and bind types.
impl QueryId for Prepared {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_of(p: &Prepared) -> String {
        diesel::debug_query::<Pg, _>(p).to_string()
    }

    #[test]
    fn each_use_of_a_placeholder_becomes_a_bind_of_its_value() {
        let p = Prepared::numbered(
            "SELECT $1, $2 WHERE a = $1 AND b < $10",
            vec![Value::Text("p".into()), Value::Int(7)],
        );
        // `$10` names no value: left as text.
        assert!(sql_of(&p).starts_with("SELECT $1, $2 WHERE a = $3 AND b < $10"));
        assert_eq!(
            p.parts
                .iter()
                .filter_map(|part| match part {
                    Part::Bind(i) => Some(*i),
                    Part::Sql(_) => None,
                })
                .collect::<Vec<_>>(),
            vec![0, 1, 0]
        );
    }
}
