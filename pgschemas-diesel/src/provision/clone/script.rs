//! The clone script: SQL with the places where the destination schema's name goes.

use crate::name::{SchemaName, quote_literal};

/// SQL with the places where the destination schema's name goes, so one script serves
/// every clone.
#[derive(Debug, Clone, Default)]
pub(super) struct Script {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    /// The destination's name as a string constant (an entry of a `SET search_path TO` list).
    TargetLiteral,
}

impl Script {
    pub(super) fn push_sql(&mut self, sql: &str) {
        match self.parts.last_mut() {
            Some(Part::Sql(s)) => s.push_str(sql),
            _ => self.parts.push(Part::Sql(sql.to_owned())),
        }
    }

    pub(super) fn push_target_literal(&mut self) {
        self.parts.push(Part::TargetLiteral);
    }

    /// Adds one statement and its terminator.
    pub(super) fn statement(&mut self, sql: &str) {
        self.push_sql(sql);
        self.push_sql(";\n");
    }

    /// Adds each statement of `sqls` in turn.
    pub(super) fn statements<I>(&mut self, sqls: I)
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for sql in sqls {
            self.statement(sql.as_ref());
        }
    }

    /// Adds `other`, a statement with places for the destination's name, and a terminator.
    pub(super) fn script_statement(&mut self, other: &Script) {
        for p in &other.parts {
            match p {
                Part::Sql(sql) => self.push_sql(sql),
                Part::TargetLiteral => self.push_target_literal(),
            }
        }
        self.push_sql(";\n");
    }

    /// The SQL with `dst`'s name in its places.
    pub(super) fn render(&self, dst: &SchemaName) -> String {
        let target = quote_literal(dst.as_str());
        let mut out = String::new();
        for p in &self.parts {
            out.push_str(match p {
                Part::Sql(sql) => sql,
                Part::TargetLiteral => &target,
            });
        }
        out
    }
}

impl From<&str> for Script {
    fn from(sql: &str) -> Self {
        let mut s = Self::default();
        s.push_sql(sql);
        s
    }
}
