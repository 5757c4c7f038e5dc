//! The ledger of applied migrations each schema keeps ([`LEDGER_TABLE`]): where it is, its
//! DDL, and reading it, for one schema (a migration run, a plan) or many at once (a
//! migrator's settling read, `doctor`, the CLI's `list`), with one statement for both.

use std::collections::{BTreeSet, HashMap};

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Nullable, Text};

use super::LEDGER_TABLE;
use crate::error::{Error, Result};
use crate::error::{LedgerProblem, MigrationError, MigrationErrorKind};
use crate::name::SchemaName;

/// `schema`'s ledger, schema-qualified, so that it can never land in another schema.
pub(crate) fn ledger_table(schema: &SchemaName) -> String {
    format!("{}.{LEDGER_TABLE}", schema.quoted())
}

/// Creates `schema`'s ledger, diesel_migrations' own table, when it is missing.
pub(crate) fn create_ledger_sql(schema: &SchemaName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\
         version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        ledger_table(schema)
    )
}

/// What a read finds in one existing schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LedgerState {
    /// The schema has no relation of the ledger's name: nothing is applied yet.
    Missing,
    /// The versions in the ledger, exactly as stored (a `NULL` version names no migration
    /// and is left out).
    Read(BTreeSet<String>),
    /// A relation of the ledger's name is there, but it cannot be read as the ledger.
    Unreadable(LedgerProblem),
}

impl LedgerState {
    /// The versions applied to `schema`, `None` when it has no ledger yet; an error naming
    /// the schema when the ledger cannot be read.
    pub(crate) fn applied(
        self,
        schema: &SchemaName,
    ) -> Result<Option<BTreeSet<String>>, MigrationError> {
        match self {
            Self::Missing => Ok(None),
            Self::Read(versions) => Ok(Some(versions)),
            Self::Unreadable(problem) => Err(MigrationError::new(
                schema,
                MigrationErrorKind::Ledger(problem),
            )),
        }
    }
}

/// What the catalog says of one schema and its ledger, and the versions when they could be
/// read: a row of [`states_sql`].
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
struct SchemaState {
    #[diesel(sql_type = Text)]
    schema: String,
    /// The ledger's `pg_class.relkind`, `None` when there is none.
    #[diesel(sql_type = Nullable<Text>)]
    kind: Option<String>,
    /// `USAGE` on the schema.
    #[diesel(sql_type = Bool)]
    usable: bool,
    /// The `version` column's type, `None` when there is no such column.
    #[diesel(sql_type = Nullable<Text>)]
    version_type: Option<String>,
    /// The `version` column is `text` or `character varying`.
    #[diesel(sql_type = Bool)]
    version_text: bool,
    /// `SELECT` on the `version` column (or the table).
    #[diesel(sql_type = Bool)]
    selectable: bool,
    /// Row-level security applies to the ledger for this role.
    #[diesel(sql_type = Bool)]
    row_security: bool,
    /// The versions, read only when every fact above allows it.
    #[diesel(sql_type = Nullable<Array<Text>>)]
    versions: Option<Vec<String>>,
}

impl SchemaState {
    /// The ledger's state: the versions when the statement read them, else the first fact
    /// that kept it from reading them (the statement reads exactly when none does).
    fn ledger(self) -> LedgerState {
        let Some(kind) = self.kind else {
            return LedgerState::Missing;
        };
        if let Some(versions) = self.versions {
            return LedgerState::Read(versions.into_iter().collect());
        }
        let problem = match kind.as_str() {
            "r" | "p" if !self.usable => LedgerProblem::NoSchemaUsage,
            "r" | "p" => match self.version_type {
                None => LedgerProblem::NoVersionColumn,
                Some(found) if !self.version_text => LedgerProblem::VersionType { found },
                Some(_) if !self.selectable => LedgerProblem::NoSelect,
                Some(_) => LedgerProblem::RowSecurity,
            },
            other => LedgerProblem::NotATable {
                relkind: other.chars().next().unwrap_or('?'),
            },
        };
        LedgerState::Unreadable(problem)
    }
}

/// Reads which of the schemas bound as `$1` exist and the state of each one's ledger, in one
/// statement; operators and functions are qualified, so that nothing on the caller's path can
/// capture them.
///
/// - Every fact is looked up per schema by a catalog index (the ledger by (name,
///   namespace), its `version` column by (relation, name)) in a scalar subquery, whatever
///   the catalog's statistics say (after thousands of `CREATE TABLE`s they are stale, and a
///   join would be planned as a nested loop over every ledger for every schema); `OFFSET 0`
///   keeps each level from being flattened into the next.
/// - A ledger is read only when the catalog says the read will succeed: a table (or
///   partitioned table), `USAGE` on the schema, a `version` column of type `text` or
///   `varchar`, `SELECT` on it, no row-level security in the way. So one bad ledger never
///   fails the statement, and the ones not read take no lock.
/// - The read is exact for every string: each version travels through `query_to_xml` as the
///   hexadecimal of its UTF-8 bytes behind an `x` (XML cannot mangle hexadecimal, and an
///   empty version still has a text node), one element per row, and is decoded back here.
fn states_sql() -> String {
    const TABLE_KINDS: &str = "ANY ('{r,p}'::pg_catalog.text[])";
    format!(
        "SELECT m.nspname AS schema, m.kind, m.usable, \
           pg_catalog.format_type(m.version_type, NULL) AS version_type, m.version_text, \
           m.selectable, m.row_security, \
           CASE WHEN m.kind OPERATOR(pg_catalog.=) {TABLE_KINDS} AND m.usable AND m.version_text \
                 AND m.selectable AND NOT m.row_security THEN ARRAY( \
             SELECT pg_catalog.convert_from(pg_catalog.decode( \
                      pg_catalog.substr(x::pg_catalog.text, 2), 'hex'), 'UTF8') \
             FROM pg_catalog.unnest(pg_catalog.xpath('/table/row/v/text()', \
               pg_catalog.query_to_xml(pg_catalog.format( \
                 'SELECT ''x'' OPERATOR(pg_catalog.||) pg_catalog.encode( \
                    pg_catalog.convert_to(version, ''UTF8''), ''hex'') AS v \
                  FROM %I.{LEDGER_TABLE} WHERE version IS NOT NULL', m.nspname), \
                 false, false, ''))) x) END AS versions \
         FROM (SELECT k.*, \
                 COALESCE(k.version_type OPERATOR(pg_catalog.=) ANY ( \
                   '{{pg_catalog.text,pg_catalog.varchar}}'::pg_catalog.regtype[]), false) \
                   AS version_text, \
                 CASE WHEN k.version_type IS NOT NULL THEN COALESCE( \
                   pg_catalog.has_column_privilege(k.ledger, 'version', 'SELECT'), false) \
                   ELSE false END AS selectable, \
                 CASE WHEN k.kind OPERATOR(pg_catalog.=) {TABLE_KINDS} THEN COALESCE( \
                   pg_catalog.row_security_active(k.ledger), false) \
                   ELSE false END AS row_security \
               FROM (SELECT s.*, \
                       (SELECT c.relkind::pg_catalog.text FROM pg_catalog.pg_class c \
                        WHERE c.oid OPERATOR(pg_catalog.=) s.ledger) AS kind, \
                       (SELECT a.atttypid FROM pg_catalog.pg_attribute a \
                        WHERE a.attrelid OPERATOR(pg_catalog.=) s.ledger \
                          AND a.attname OPERATOR(pg_catalog.=) 'version' \
                          AND NOT a.attisdropped) AS version_type \
                     FROM (SELECT n.nspname::pg_catalog.text AS nspname, \
                             pg_catalog.has_schema_privilege(n.oid, 'USAGE') AS usable, \
                             (SELECT c.oid FROM pg_catalog.pg_class c \
                              WHERE c.relname OPERATOR(pg_catalog.=) '{LEDGER_TABLE}' \
                                AND c.relnamespace OPERATOR(pg_catalog.=) n.oid) AS ledger \
                           FROM pg_catalog.pg_namespace n \
                           WHERE n.nspname OPERATOR(pg_catalog.=) ANY($1) OFFSET 0) s \
                     OFFSET 0) k \
               OFFSET 0) m"
    )
}

/// How many schemas' ledgers one statement reads. Reading a ledger takes two locks (its
/// table and its index) until the statement ends; PostgreSQL's lock table holds
/// `max_locks_per_transaction` × `max_connections` of them (6,400 by default) for every
/// session together, so no statement may need locks in proportion to the number of tenants.
pub(crate) const LEDGER_BATCH: usize = 500;

/// Which of `schemas` exist, and the state of each one's ledger, read [`LEDGER_BATCH`]
/// schemas per statement (each its own transaction, unless the caller holds one): the
/// ledgers are read server-side with `query_to_xml`, each only when the catalog says it can
/// be (see [`LedgerState`]), so one bad ledger is that schema's answer and the others are
/// read. A schema missing from the map does not exist.
///
/// # Errors
///
/// [`Error::Database`] when a statement fails as a whole (the connection, the server).
pub(crate) fn read_ledgers(
    conn: &mut PgConnection,
    schemas: &[&str],
) -> Result<HashMap<String, LedgerState>> {
    let mut states = HashMap::with_capacity(schemas.len());
    for batch in schemas.chunks(LEDGER_BATCH) {
        let rows: Vec<SchemaState> = diesel::sql_query(states_sql())
            .bind::<Array<Text>, _>(batch)
            .load(conn)
            .map_err(Error::from)?;
        states.extend(
            rows.into_iter()
                .map(|mut r| (std::mem::take(&mut r.schema), r.ledger())),
        );
    }
    Ok(states)
}

/// The state of `schema`'s ledger, in one statement (the batched read's, for one schema);
/// `None` when the schema does not exist.
pub(crate) fn read_ledger(
    conn: &mut PgConnection,
    schema: &SchemaName,
) -> Result<Option<LedgerState>, MigrationError> {
    let rows: Vec<SchemaState> = diesel::sql_query(states_sql())
        .bind::<Array<Text>, _>(&[schema.as_str()][..])
        .load(conn)
        .map_err(|e| MigrationError::db(schema, e))?;
    Ok(rows.into_iter().next().map(SchemaState::ledger))
}

/// What [`read_known_table`] returns.
#[derive(QueryableByName)]
struct TableRead {
    /// `pg_class.relkind` of the relation of the ledger's name.
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Bool)]
    row_security: bool,
    /// The `version` column's type, as `pg_typeof` names it (`None` in an empty ledger).
    #[diesel(sql_type = Nullable<Text>)]
    version_type: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    versions: Vec<String>,
}

/// The SQL of [`read_known_table`] for `schema`: the ledger read directly, beside the facts
/// that must still hold for the read to be the ledger's (a table, a text `version` column, no
/// row-level security). Only functions and index lookups by OID: PostgreSQL plans it as fast
/// as a plain `SELECT` (it is planned anew for every schema).
fn known_table_sql(schema: &SchemaName) -> String {
    let table = ledger_table(schema);
    let regclass = format!(
        "{}::pg_catalog.regclass",
        crate::name::quote_literal(&table)
    );
    format!(
        "SELECT (SELECT c.relkind::pg_catalog.text FROM pg_catalog.pg_class c \
                 WHERE c.oid OPERATOR(pg_catalog.=) {regclass}) AS kind, \
           pg_catalog.row_security_active({regclass}) AS row_security, \
           (SELECT pg_catalog.pg_typeof(l.version)::pg_catalog.text FROM {table} l LIMIT 1) \
             AS version_type, \
           ARRAY(SELECT l.version::pg_catalog.text FROM {table} l \
                 WHERE l.version IS NOT NULL) AS versions"
    )
}

/// The state of `schema`'s ledger when a batched read ([`read_ledgers`]) has just found it a
/// readable table: the same answer as [`read_ledger`] from a statement PostgreSQL plans in
/// a fraction of the time (it reads the table directly instead of through `query_to_xml`).
/// Should the ledger have changed since (dropped, replaced, its privileges revoked), the
/// statement fails or the facts beside the read refuse it: an error naming the schema, never
/// a read taken for the ledger's.
pub(crate) fn read_known_table(
    conn: &mut PgConnection,
    schema: &SchemaName,
) -> Result<LedgerState, MigrationError> {
    let read: TableRead = diesel::sql_query(known_table_sql(schema))
        .get_result(conn)
        .map_err(|e| MigrationError::db(schema, e))?;
    Ok(match read {
        TableRead { kind, .. } if kind != "r" && kind != "p" => {
            LedgerState::Unreadable(LedgerProblem::NotATable {
                relkind: kind.chars().next().unwrap_or('?'),
            })
        }
        TableRead {
            version_type: Some(found),
            ..
        } if found != "text" && found != "character varying" => {
            LedgerState::Unreadable(LedgerProblem::VersionType { found })
        }
        TableRead {
            row_security: true, ..
        } => LedgerState::Unreadable(LedgerProblem::RowSecurity),
        TableRead { versions, .. } => LedgerState::Read(versions.into_iter().collect()),
    })
}

/// A condition that `schema`'s ledger is still what a batched read found: a table (or
/// partitioned table) without row-level security for this role, its `version` column text
/// or `varchar`, holding exactly the versions `applied`, and `schema` the current schema.
/// Written for a statement of its own after the schema's lock, so that its snapshot sees
/// whatever committed before the lock was granted: that holds at `READ COMMITTED` only (at a
/// stricter isolation level, set by `default_transaction_isolation`, the transaction's
/// snapshot is the lock statement's, taken before the lock was granted), so the condition
/// also requires it. It raises when any of this is false, or
/// fails when the ledger is gone, so that the caller's transaction aborts. The versions are
/// compared as the hexadecimal of their UTF-8 bytes, sorted in byte order: no quoting, no
/// collation, no setting changes what they mean.
pub(crate) fn ledger_unchanged_sql(schema: &SchemaName, applied: &BTreeSet<String>) -> String {
    let table = ledger_table(schema);
    let regclass = format!(
        "{}::pg_catalog.regclass",
        crate::name::quote_literal(&table)
    );
    let mut hex: Vec<String> = applied
        .iter()
        .map(|v| v.bytes().map(|b| format!("{b:02x}")).collect())
        .collect();
    hex.sort();
    // Each element quoted: an empty version's hexadecimal is the empty string, which an
    // array literal takes only as `""`.
    let hex: Vec<String> = hex.iter().map(|h| format!("\"{h}\"")).collect();
    let expected = if hex.is_empty() {
        "NULL::pg_catalog.text[]".to_owned()
    } else {
        format!("'{{{}}}'::pg_catalog.text[]", hex.join(","))
    };
    let condition = format!(
        "pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.=) 'read committed' \
         AND pg_catalog.current_schema() OPERATOR(pg_catalog.=) {schema_literal} \
         AND (SELECT c.relkind FROM pg_catalog.pg_class c \
              WHERE c.oid OPERATOR(pg_catalog.=) {regclass}) \
             OPERATOR(pg_catalog.=) ANY ('{{r,p}}'::pg_catalog.\"char\"[]) \
         AND NOT pg_catalog.row_security_active({regclass}) \
         AND COALESCE((SELECT pg_catalog.pg_typeof(l.version) FROM {table} l LIMIT 1) \
             OPERATOR(pg_catalog.=) ANY ('{{pg_catalog.text,pg_catalog.varchar}}'::pg_catalog.regtype[]), true) \
         AND (SELECT pg_catalog.array_agg(DISTINCT x.h ORDER BY x.h) FROM ( \
               SELECT pg_catalog.encode(pg_catalog.convert_to(l.version::pg_catalog.text, 'UTF8'), \
                        'hex') COLLATE \"C\" AS h \
               FROM {table} l WHERE l.version IS NOT NULL) x) \
             IS NOT DISTINCT FROM {expected}",
        schema_literal = crate::name::quote_literal(schema.as_str()),
    );
    format!(
        "SELECT {}",
        crate::checkout::raise_unless(
            &condition,
            &format!("pgschemas_diesel: the ledger of {schema} is not what the batched read found"),
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_is_always_schema_qualified() {
        let t1 = SchemaName::new("t1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ledger_table(&t1), r#""t1".__diesel_schema_migrations"#);
        assert!(create_ledger_sql(&t1).starts_with(
            r#"CREATE TABLE IF NOT EXISTS "t1".__diesel_schema_migrations (version VARCHAR(50)"#
        ));
    }

    #[test]
    fn the_unchanged_check_compares_hexadecimal_in_byte_order() {
        let t1 = SchemaName::new("t1").unwrap_or_else(|e| panic!("{e}"));
        let applied: BTreeSet<String> = ["b", "a'\\,}", ""]
            .iter()
            .map(|v| (*v).to_owned())
            .collect();
        let sql = ledger_unchanged_sql(&t1, &applied);
        assert!(
            sql.contains(r#"'{"","61275c2c7d","62"}'::pg_catalog.text[]"#),
            "{sql}"
        );
        assert!(!sql.contains(" = "), "no unqualified operator: {sql}");
        let empty = ledger_unchanged_sql(&t1, &BTreeSet::new());
        assert!(
            empty.contains("IS NOT DISTINCT FROM NULL::pg_catalog.text[]"),
            "{empty}"
        );
    }

    #[test]
    fn the_known_table_read_is_qualified() {
        let t1 = SchemaName::new("t1").unwrap_or_else(|e| panic!("{e}"));
        let sql = known_table_sql(&t1);
        assert!(!sql.contains(" = "), "no unqualified operator: {sql}");
        assert!(
            sql.contains(r#"FROM "t1".__diesel_schema_migrations l"#),
            "{sql}"
        );
        assert!(sql.contains(r#"'"t1".__diesel_schema_migrations'::pg_catalog.regclass"#));
    }

    #[test]
    fn the_ledger_query_qualifies_its_operators() {
        let sql = states_sql();
        assert!(!sql.contains(" = "), "no unqualified operator: {sql}");
        assert!(!sql.contains(" IN "), "no unqualified operator: {sql}");
        assert!(sql.contains("FROM %I.__diesel_schema_migrations WHERE"));
        assert!(
            !sql.contains("string_agg"),
            "no delimiter to collide with: {sql}"
        );
    }

    /// A table with a text `version` column the role can read, and the versions read.
    fn readable(versions: &[&str]) -> SchemaState {
        SchemaState {
            schema: "t1".to_owned(),
            kind: Some("r".to_owned()),
            usable: true,
            version_type: Some("character varying(50)".to_owned()),
            version_text: true,
            selectable: true,
            row_security: false,
            versions: Some(versions.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn each_catalog_fact_names_what_keeps_the_ledger_from_being_read() {
        let unread = |f: fn(&mut SchemaState)| {
            let mut state = readable(&[]);
            state.versions = None;
            f(&mut state);
            state.ledger()
        };
        let problem = LedgerState::Unreadable;
        let cases: [(LedgerState, LedgerState); 10] = [
            (
                readable(&["1,2", "a&b", ""]).ledger(),
                LedgerState::Read(["", "1,2", "a&b"].map(str::to_owned).into()),
            ),
            (
                unread(|s| {
                    s.kind = None;
                    s.version_type = None;
                }),
                LedgerState::Missing,
            ),
            (
                unread(|s| s.kind = Some("v".to_owned())),
                problem(LedgerProblem::NotATable { relkind: 'v' }),
            ),
            (
                unread(|s| s.kind = Some("f".to_owned())),
                problem(LedgerProblem::NotATable { relkind: 'f' }),
            ),
            (
                unread(|s| {
                    s.kind = Some("p".to_owned());
                    s.selectable = false;
                }),
                problem(LedgerProblem::NoSelect),
            ),
            (
                unread(|s| s.usable = false),
                problem(LedgerProblem::NoSchemaUsage),
            ),
            (
                unread(|s| {
                    s.version_type = None;
                    s.version_text = false;
                    s.selectable = false;
                }),
                problem(LedgerProblem::NoVersionColumn),
            ),
            (
                unread(|s| {
                    s.version_type = Some("integer".to_owned());
                    s.version_text = false;
                }),
                problem(LedgerProblem::VersionType {
                    found: "integer".to_owned(),
                }),
            ),
            (
                unread(|s| s.selectable = false),
                problem(LedgerProblem::NoSelect),
            ),
            (
                unread(|s| s.row_security = true),
                problem(LedgerProblem::RowSecurity),
            ),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn an_unreadable_ledger_is_an_error_naming_the_schema() {
        let t1 = SchemaName::new("t1").unwrap_or_else(|e| panic!("{e}"));
        let state = LedgerState::Unreadable(LedgerProblem::NotATable { relkind: 'v' });
        let err = state.applied(&t1).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                r#"cannot read the ledger of schema "t1": it is a view, not a table of the schema; nothing was migrated"#
            )
        );
        assert_eq!(LedgerState::Missing.applied(&t1).ok(), Some(None));
    }
}
