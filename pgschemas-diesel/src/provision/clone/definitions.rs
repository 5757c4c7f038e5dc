//! The definitions as the clone runs them: functions, views, indexes and statistics objects
//! made unqualified, functions' `search_path` settings pointed at the destination, and every
//! definition checked for what would still name the source (see `refs`).

use std::collections::HashMap;

use crate::error::CloneRefusal;
use crate::error::Result;
use crate::name::{SchemaName, quote_literal};

use super::clone_error;
use super::objects::{FunctionRow, Objects, PrefixedRow, ViewRow};
use super::order::Node;
use super::refs::{self, Findings};
use super::script::Script;

/// The statements of the definitions PostgreSQL prints whole, ready to run, and what the
/// check of all definitions found for a person to look at.
pub(super) struct Definitions {
    /// Functions (with their `search_path` rewrites), views and materialized views.
    nodes: HashMap<Node, Script>,
    pub(super) indexes: Vec<String>,
    pub(super) statistics: Vec<String>,
    /// What may still name the source (see [`CloneReport::warnings`](super::CloneReport)).
    pub(super) warnings: Vec<String>,
}

impl Definitions {
    /// Prepares the definitions of `objects`, read from `src` for `dst`.
    ///
    /// # Errors
    ///
    /// [`Error::Clone`](crate::Error::Clone) when PostgreSQL printed a definition in an
    /// unexpected form; [`Error::CloneNamesSource`](crate::Error::CloneNamesSource) when a
    /// definition names the source where the clone cannot rewrite it.
    pub(super) fn prepare(objects: &Objects, src: &SchemaName, dst: &SchemaName) -> Result<Self> {
        let mut findings = Findings::new(src);
        let mut nodes = HashMap::new();
        for f in &objects.functions {
            nodes.insert(Node::Proc(f.oid), function(f, src, dst, &mut findings)?);
        }
        for v in &objects.views {
            nodes.insert(Node::Rel(v.oid), view(v, &mut findings));
        }
        let indexes = unqualify_all(&objects.indexes, src, dst)?;
        let statistics = unqualify_all(&objects.statistics, src, dst)?;
        check_others(objects, &indexes, &statistics, &mut findings);
        Ok(Self {
            nodes,
            indexes,
            statistics,
            warnings: findings.finish(dst)?,
        })
    }

    /// The statement creating a function, view or materialized view.
    pub(super) fn node(&self, n: &Node) -> Option<&Script> {
        self.nodes.get(n)
    }
}

/// A function's definition, unqualified and checked, with its `search_path` rewrite.
fn function(
    f: &FunctionRow,
    src: &SchemaName,
    dst: &SchemaName,
    findings: &mut Findings<'_>,
) -> Result<Script> {
    let what = &f.printed.what;
    let def = unqualified(&f.printed, src, dst)?;
    findings.definition(what, &def);
    findings.body(what, &f.language, &f.body);
    Ok(function_script(f, def, src, findings))
}

/// A function's definition, followed, when its `search_path` setting names the source, by
/// the statement that sets it to the same path with the destination in the source's place.
/// Other settings stay as the definition prints them. A `search_path` that cannot be read
/// with certainty is refused through `findings`.
fn function_script(
    f: &FunctionRow,
    def: String,
    src: &SchemaName,
    findings: &mut Findings<'_>,
) -> Script {
    let what = &f.printed.what;
    let mut script = Script::from(def.as_str());
    for setting in f.settings.iter().flatten() {
        let Some(("search_path", value)) = setting.split_once('=') else {
            findings.setting(what, setting);
            continue;
        };
        let Some(names) = refs::parse_path(value) else {
            findings.unreadable_path(what, setting);
            continue;
        };
        if !names.iter().any(|n| n == src.as_str()) {
            continue;
        }
        // Right after the definition, before anything can call the function.
        script.push_sql(&format!(
            ";\nALTER {} {} SET search_path TO ",
            f.keyword, f.signature
        ));
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                script.push_sql(", ");
            }
            if n == src.as_str() {
                script.push_target_literal();
            } else {
                script.push_sql(&quote_literal(n));
            }
        }
    }
    script
}

/// The statement creating a view or materialized view, its definition checked.
fn view(v: &ViewRow, findings: &mut Findings<'_>) -> Script {
    let materialized = v.kind == "m";
    let kind = if materialized {
        "materialized view"
    } else {
        "view"
    };
    findings.definition(&format!("{kind} {}", v.name), &v.def);
    let def = v.def.trim_end().trim_end_matches(';');
    let with = v
        .options
        .as_ref()
        .map(|o| format!(" WITH ({o})"))
        .unwrap_or_default();
    let sql = if materialized {
        let data = if v.populated {
            "WITH DATA"
        } else {
            "WITH NO DATA"
        };
        format!(
            "CREATE MATERIALIZED VIEW {}{with} AS\n{def}\n{data}",
            v.name
        )
    } else {
        format!("CREATE VIEW {}{with} AS\n{def}", v.name)
    };
    Script::from(sql.as_str())
}

/// Checks, for what would still name the source, the definitions the clone runs as
/// PostgreSQL prints them: types, domain constraints, rules, policies, columns,
/// constraints, the (unqualified) indexes and statistics objects, triggers.
fn check_others(
    objects: &Objects,
    indexes: &[String],
    statistics: &[String],
    findings: &mut Findings<'_>,
) {
    let table_names: HashMap<i64, &str> = objects
        .tables
        .iter()
        .map(|t| (t.oid, t.name.as_str()))
        .collect();
    let table_name = |oid: &i64| table_names.get(oid).copied().unwrap_or("?");
    for l in objects
        .types
        .iter()
        .chain(&objects.domain_constraints)
        .chain(&objects.rules)
        .chain(&objects.policies)
    {
        findings.definition(&l.what, &l.sql);
    }
    for c in &objects.columns {
        let what = format!("column {}.{}", table_name(&c.rel), c.name);
        findings.definition(&what, &c.type_name);
        if let Some(e) = &c.expr {
            findings.definition(&what, e);
        }
    }
    for c in &objects.constraints {
        findings.definition(
            &format!("constraint {} on {}", c.name, table_name(&c.rel)),
            &c.def,
        );
    }
    let printed = objects.indexes.iter().chain(&objects.statistics);
    for (sql, row) in indexes.iter().chain(statistics).zip(printed) {
        findings.definition(&row.what, sql);
    }
    for t in &objects.triggers {
        let what = format!("trigger {} on {}", t.name, t.tbl);
        findings.definition(&what, &t.def);
        findings.trigger(&what, &t.def);
    }
}

fn unqualify_all(rows: &[PrefixedRow], src: &SchemaName, dst: &SchemaName) -> Result<Vec<String>> {
    rows.iter().map(|r| unqualified(r, src, dst)).collect()
}

/// `row`'s definition with the qualified prefix PostgreSQL printed made unqualified, or
/// [`Error::Clone`](crate::Error::Clone) when it was printed otherwise.
fn unqualified(row: &PrefixedRow, src: &SchemaName, dst: &SchemaName) -> Result<String> {
    unqualify(&row.def, &row.qualified, &row.local).ok_or_else(|| {
        clone_error(
            src,
            dst,
            CloneRefusal::UnexpectedDefinition {
                what: row.what.clone(),
                definition: row.def.clone(),
                qualified: row.qualified.clone(),
            },
        )
    })
}

/// Replaces the exact `qualified` prefix PostgreSQL generated with `local`.
fn unqualify(def: &str, qualified: &str, local: &str) -> Option<String> {
    def.strip_prefix(qualified)
        .map(|rest| format!("{local}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unqualify_only_rewrites_the_exact_prefix() {
        assert_eq!(
            unqualify(
                "CREATE OR REPLACE FUNCTION src.f()\n RETURNS int",
                "CREATE OR REPLACE FUNCTION src.f(",
                "CREATE OR REPLACE FUNCTION f(",
            )
            .as_deref(),
            Some("CREATE OR REPLACE FUNCTION f()\n RETURNS int")
        );
        assert!(
            unqualify(
                "CREATE INDEX x ON other.t USING btree (a)",
                "CREATE INDEX x ON src.t ",
                ""
            )
            .is_none()
        );
    }
}
