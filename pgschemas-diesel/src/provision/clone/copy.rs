//! Copying the rows (all of them, or the migration ledger's only) and the sequences'
//! positions from the source.

use std::fmt::Write as _;

use crate::name::SchemaName;

use super::objects::ColumnRow;

/// The columns a table's rows are copied by, and how each is read from the source: a value
/// of one of the source's own types goes through its text form into the clone's type.
#[derive(Default)]
pub(super) struct RowCopy<'a> {
    columns: Vec<&'a str>,
    exprs: Vec<String>,
}

impl<'a> RowCopy<'a> {
    /// Adds a column (not a generated one).
    pub(super) fn push(&mut self, c: &'a ColumnRow) {
        self.columns.push(&c.name);
        self.exprs.push(if c.local_type {
            format!("{}::text::{}", c.name, c.type_name)
        } else {
            c.name.clone()
        });
    }

    /// The `INSERT ... SELECT` copying the rows of the table `table` (quoted) from `src`;
    /// `None` when there is no column to copy.
    pub(super) fn sql(&self, table: &str, src: &SchemaName) -> Option<String> {
        if self.columns.is_empty() {
            return None;
        }
        Some(format!(
            "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}.{table}",
            self.columns.join(", "),
            self.exprs.join(", "),
            src.quoted(),
        ))
    }
}

/// One statement that runs every `INSERT ... SELECT` of `copies` (as data-modifying CTEs)
/// and every scalar `setval` subquery of `setvals`; foreign keys declared with the tables
/// are checked at its end.
pub(super) fn copy_statement(copies: &[String], setvals: &[String]) -> Option<String> {
    if copies.is_empty() && setvals.is_empty() {
        return None;
    }
    let mut sql = String::new();
    if !copies.is_empty() {
        sql.push_str("WITH ");
        for (i, c) in copies.iter().enumerate() {
            if i > 0 {
                sql.push_str(",\n     ");
            }
            write!(sql, "copy{i} AS ({c})").ok();
        }
        sql.push('\n');
    }
    sql.push_str("SELECT ");
    if setvals.is_empty() {
        sql.push('1');
    } else {
        sql.push_str(&setvals.join(",\n       "));
    }
    Some(sql)
}
