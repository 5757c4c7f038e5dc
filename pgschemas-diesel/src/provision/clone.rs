//! Cloning a schema by reading PostgreSQL's catalogs.
//!
//! The method: read every definition with `pg_get_*def` while the transaction's path is the
//! source alone, so objects of the source come out unqualified and everything else qualified;
//! then run the definitions while the path is the destination alone, so the unqualified names
//! land in the clone. The only text rewritten is the qualified name some `pg_get_*def`
//! functions always print (functions, indexes, statistics), and only by matching the exact
//! prefix PostgreSQL generates. The destination's name appears in the path statement and in
//! the `search_path` settings of functions that named the source there (`SET search_path FROM
//! CURRENT`), which are rewritten to name the destination; the script keeps those places
//! open, so a script read once can be replayed for any number of clones. What would still
//! name the source after that (a qualified name in a function body, a string naming it) is
//! refused before anything is created (see `refs`).

mod refs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Oid, Text};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::name::{SchemaName, quote_literal};
use crate::path::SearchPath;

use super::txn::{
    atomic, create_schema_sql, in_schema, lock_sql, map_create_error, set_local_path_sql,
    shared_lock_sql,
};

/// Transaction-local settings holding the caller's values while a clone runs.
const CLONE_PATH: &str = "pgschemas.clone_path";
const CLONE_BODIES: &str = "pgschemas.clone_bodies";

/// The ledger table diesel_migrations keeps in every migrated schema.
const LEDGER: &str = "__diesel_schema_migrations";

/// What [`clone_schema`] created: how many objects of each kind, and what to look at.
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::{clone_schema, Config, SchemaName};
///
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/app")?;
/// let report = clone_schema(
///     &mut conn,
///     &Config::default(),
///     &SchemaName::new("sample")?,
///     &SchemaName::new("customer1")?,
///     false,
/// )?;
/// println!("{} tables, {} views", report.tables, report.views);
/// for warning in &report.warnings {
///     eprintln!("check by hand: {warning}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloneReport {
    /// Tables (the migration ledger included).
    pub tables: usize,
    /// Sequences, identity sequences included.
    pub sequences: usize,
    /// Views.
    pub views: usize,
    /// Materialized views.
    pub materialized_views: usize,
    /// Functions and procedures.
    pub functions: usize,
    /// Triggers (not counting the internal ones behind foreign keys).
    pub triggers: usize,
    /// Indexes created on their own (not counting those behind constraints).
    pub indexes: usize,
    /// Table constraints: primary key, unique, check, exclusion and foreign key.
    pub constraints: usize,
    /// Enum, domain and composite types.
    pub types: usize,
    /// Row-level security policies.
    pub policies: usize,
    /// Rewrite rules (not counting views' own).
    pub rules: usize,
    /// Extended statistics objects.
    pub statistics: usize,
    /// Comments.
    pub comments: usize,
    /// Whether table rows were copied.
    pub with_data: bool,
    /// The migration versions the clone counts as applied (the source's ledger, copied even
    /// without data).
    pub migrations: Vec<String>,
    /// What was copied as written although it may still name the source schema, for a person
    /// to check: a string with the source's name in a function body (dynamic SQL,
    /// `set_config`), a `SET search_path` to it inside a body, a function setting other than
    /// `search_path` naming it, a trigger passing it as an argument. Definitions that
    /// certainly name it are refused instead ([`Error::CloneNamesSource`]), and
    /// [`Provisioner`](crate::Provisioner), which has nobody to read this list, refuses
    /// these too.
    pub warnings: Vec<String>,
}

/// Creates `dst` as a copy of `src`: tables (columns, types, defaults, `NOT NULL`, generated
/// and identity columns), the source's own sequences at their current values, indexes,
/// primary key/unique/check/exclusion constraints, foreign keys (those inside the schema
/// point into the clone, those to other schemas are kept), views, materialized views,
/// functions, triggers, rules, policies, statistics objects, enum/domain/composite types,
/// comments, optionally the rows, and always the migration ledger's rows, so the clone
/// counts as migrated.
///
/// Everything happens in one transaction (a savepoint when `conn` is already in one): if any
/// step fails, `dst` does not exist afterwards. The catalogs are read in about twenty
/// queries; the DDL goes to the server as one script. Ownership and privileges are not
/// copied: the clone belongs to the connected role. Requires PostgreSQL 14 or newer.
///
/// Names of `src`'s own objects come out unqualified and so point into the clone. A
/// function's `search_path` setting that names `src` (what `SET search_path FROM CURRENT` in
/// a migration of `src` stores) is set to the same path with `dst` in `src`'s place; its
/// other settings are kept. What would still name `src` in the copy is refused before
/// anything is created: a function body with a qualified name in `src` (`src.t`, `"src".t`,
/// also inside a string), any other definition that PostgreSQL still prints with `src` (a
/// string cast to `regclass`, a function of `src` shadowed by a built-in one), a
/// `search_path` setting that cannot be read with certainty. What might name `src` but
/// cannot be told for sure is copied as written and listed in the report's
/// [`warnings`](CloneReport::warnings). The scan is lexical: a table, column alias or
/// string value spelled like the source schema reads as a mention of it too, so a reference
/// schema is best given a name that its definitions never use for anything else.
///
/// # Errors
///
/// - [`Error::InvalidSchemaName`] / [`Error::NameClash`]: `dst` fails
///   [`Config::check_tenant_name`] (the configured clone reference is allowed);
/// - [`Error::SchemaNotFound`]: `src` does not exist;
/// - [`Error::SchemaExists`]: `dst` exists;
/// - [`Error::Clone`]: `src` holds something the clone cannot reproduce (partitioned,
///   inherited, typed or foreign tables, range/base types, aggregates, operators,
///   collations, text search objects, extensions installed into it); nothing was created;
/// - [`Error::CloneNamesSource`]: definitions in `src` name `src` where the clone cannot
///   rewrite it (each one listed); nothing was created;
/// - [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::{clone_schema, Config, SchemaName};
///
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/app")?;
/// let config = Config::builder().clone_reference("sample").build()?;
/// let src = SchemaName::new("sample")?;
/// clone_schema(&mut conn, &config, &src, &SchemaName::new("customer1")?, true)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn clone_schema(
    conn: &mut PgConnection,
    config: &Config,
    src: &SchemaName,
    dst: &SchemaName,
    with_data: bool,
) -> Result<CloneReport> {
    if config.clone_reference() != Some(dst) {
        config.check_tenant_name(dst.as_str())?;
    }
    if src == dst {
        return Err(Error::SchemaExists {
            schema: dst.to_string(),
        });
    }
    let first = format!(
        "{}; {}; {}",
        lock_sql(dst),
        shared_lock_sql(src),
        create_schema_sql(dst)
    );
    atomic(conn, &first, map_create_error(dst), |conn| {
        let template =
            Template::read(conn, src, dst, with_data)?.ok_or_else(|| Error::SchemaNotFound {
                schema: src.to_string(),
            })?;
        template.apply(conn, dst, None)?;
        Ok(template.report.clone())
    })
}

/// A clone script read from a source schema, replayable into any new schema.
#[derive(Debug)]
pub(crate) struct Template {
    pub(crate) source: SchemaName,
    /// What identifies the source's state: its OID and its ledger.
    pub(crate) fingerprint: Fingerprint,
    /// Everything after the path statement.
    body: Script,
    pub(crate) report: CloneReport,
}

/// The identity of a source schema's state, checked before a cached script is replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    oid: u32,
    has_ledger: bool,
    /// The ledger's versions, comma-joined (when read and not empty).
    ledger: Option<String>,
}

#[derive(QueryableByName)]
struct FingerprintRow {
    #[diesel(sql_type = Nullable<Oid>)]
    oid: Option<u32>,
    #[diesel(sql_type = Nullable<Text>)]
    ledger: Option<String>,
    #[diesel(sql_type = Bool)]
    has_ledger: bool,
}

impl Fingerprint {
    /// Reads the source's fingerprint in one round trip; `None` when the schema does not
    /// exist. With `read_ledger`, the ledger table must exist (reading it fails otherwise).
    fn read(conn: &mut PgConnection, src: &SchemaName, read_ledger: bool) -> Result<Option<Self>> {
        let ledger_expr = if read_ledger {
            format!(
                "(SELECT pg_catalog.string_agg(version::text, ',' ORDER BY version) FROM {}.{LEDGER})",
                src.quoted()
            )
        } else {
            "NULL::text".to_owned()
        };
        let row: FingerprintRow = diesel::sql_query(format!(
            "SELECT n.oid, {ledger_expr} AS ledger, \
             EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid \
                     AND c.relname = '{LEDGER}' AND c.relkind = 'r') AS has_ledger \
             FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1"
        ))
        .bind::<Text, _>(src.as_str())
        .get_result(conn)
        .map_err(|e| Error::db(src.as_str(), e))?;
        Ok(row.oid.map(|oid| Self {
            oid,
            has_ledger: row.has_ledger,
            ledger: row.ledger,
        }))
    }
}

impl Template {
    /// Refuses, for a clone nobody reviews (a tenant created by a
    /// [`Provisioner`](crate::Provisioner)), what the report would only list as warnings.
    pub(crate) fn refuse_warnings(&self, dst: &SchemaName) -> Result<()> {
        if self.report.warnings.is_empty() {
            return Ok(());
        }
        Err(Error::CloneNamesSource {
            source_schema: self.source.to_string(),
            schema: dst.to_string(),
            found: self.report.warnings.clone(),
        })
    }

    /// Whether the source still matches this script (one round trip). `None`: the source
    /// is gone.
    pub(crate) fn is_current(&self, conn: &mut PgConnection) -> Result<Option<bool>> {
        Ok(
            Fingerprint::read(conn, &self.source, self.fingerprint.has_ledger)?
                .map(|f| f == self.fingerprint),
        )
    }

    /// Reads `src`'s catalogs and builds the script; `None` when `src` does not exist.
    ///
    /// Sets the transaction's path to `src` while reading and restores the previous path
    /// (and `check_function_bodies`) when the script has run.
    pub(crate) fn read(
        conn: &mut PgConnection,
        src: &SchemaName,
        dst: &SchemaName,
        with_data: bool,
    ) -> Result<Option<Self>> {
        read_template(conn, src, dst, with_data).map_err(in_schema(src))
    }

    /// Runs the script into `dst`, which exists and is empty, in one round trip. Leaves the
    /// transaction's path at `final_path`, or as it was when `None`.
    pub(crate) fn apply(
        &self,
        conn: &mut PgConnection,
        dst: &SchemaName,
        final_path: Option<&SearchPath>,
    ) -> Result<()> {
        let restore_path = match final_path {
            Some(p) => set_local_path_sql(p.as_sql_value()),
            None => format!(
                "SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('{CLONE_PATH}'), true)"
            ),
        };
        let script = format!(
            "SELECT pg_catalog.set_config('{CLONE_PATH}', pg_catalog.current_setting('search_path'), true);\n\
             SELECT pg_catalog.set_config('{CLONE_BODIES}', pg_catalog.current_setting('check_function_bodies'), true);\n\
             {};\nSET LOCAL check_function_bodies = off;\n{}\n\
             SELECT pg_catalog.set_config('check_function_bodies', pg_catalog.current_setting('{CLONE_BODIES}'), true);\n\
             {restore_path}",
            set_local_path_sql(&dst.quoted()),
            self.body.render(dst),
        );
        conn.batch_execute(&script)
            .map_err(|e| Error::db(dst.as_str(), e))
    }
}

/// SQL with the places where the destination schema's name goes, so one script serves
/// every clone.
#[derive(Debug, Clone, Default)]
struct Script {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    /// The destination's name as a string constant (an entry of a `SET search_path TO` list).
    TargetLiteral,
}

impl Script {
    fn push_sql(&mut self, sql: &str) {
        match self.parts.last_mut() {
            Some(Part::Sql(s)) => s.push_str(sql),
            _ => self.parts.push(Part::Sql(sql.to_owned())),
        }
    }

    fn push_target_literal(&mut self) {
        self.parts.push(Part::TargetLiteral);
    }

    fn append(&mut self, other: &Script) {
        for p in &other.parts {
            match p {
                Part::Sql(sql) => self.push_sql(sql),
                Part::TargetLiteral => self.push_target_literal(),
            }
        }
    }

    fn render(&self, dst: &SchemaName) -> String {
        let target = quote_literal(dst.as_str());
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Sql(sql) => out.push_str(sql),
                Part::TargetLiteral => out.push_str(&target),
            }
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

/// A function's definition, followed, when its `search_path` setting names the source, by
/// the statement that sets it to the same path with the destination in the source's place.
/// Other settings stay as the definition prints them. A `search_path` that cannot be read
/// with certainty is refused through `findings`.
fn function_script(
    f: &FunctionRow,
    def: String,
    src: &SchemaName,
    what: &str,
    findings: &mut refs::Findings<'_>,
) -> Script {
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

// ---------------------------------------------------------------------------------------
// Catalog rows
// ---------------------------------------------------------------------------------------

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    sql: String,
}

/// A statement and what it creates, for messages.
#[derive(QueryableByName)]
struct Labeled {
    #[diesel(sql_type = Text)]
    sql: String,
    #[diesel(sql_type = Text)]
    what: String,
}

#[derive(QueryableByName)]
struct SequenceRow {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    create: String,
    #[diesel(sql_type = Text)]
    setval: String,
    #[diesel(sql_type = Nullable<Text>)]
    owned_by: Option<String>,
}

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    relname: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    persistence: String,
    #[diesel(sql_type = Nullable<Text>)]
    options: Option<String>,
    #[diesel(sql_type = Text)]
    replident: String,
    #[diesel(sql_type = Nullable<Text>)]
    replident_index: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    cluster_index: Option<String>,
    #[diesel(sql_type = Bool)]
    rls: bool,
    #[diesel(sql_type = Bool)]
    force_rls: bool,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = BigInt)]
    rel: i64,
    #[diesel(sql_type = Integer)]
    attnum: i32,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    type_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    collation: Option<String>,
    #[diesel(sql_type = Bool)]
    not_null: bool,
    #[diesel(sql_type = Text)]
    identity: String,
    #[diesel(sql_type = Text)]
    generated: String,
    #[diesel(sql_type = Nullable<Text>)]
    expr: Option<String>,
    #[diesel(sql_type = Nullable<Array<BigInt>>)]
    expr_procs: Option<Vec<i64>>,
    #[diesel(sql_type = Nullable<Text>)]
    identity_options: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    identity_setval: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    storage: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    compression: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    stattarget: Option<i32>,
    /// The column's type (or its element type) is defined in the source schema.
    #[diesel(sql_type = Bool)]
    local_type: bool,
}

#[derive(QueryableByName)]
struct SerialRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    rel: i64,
    #[diesel(sql_type = Integer)]
    attnum: i32,
    #[diesel(sql_type = Text)]
    type_name: String,
}

#[derive(QueryableByName)]
struct ConstraintRow {
    #[diesel(sql_type = BigInt)]
    rel: i64,
    /// The referenced table of a foreign key (0 otherwise).
    #[diesel(sql_type = BigInt)]
    refrel: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    def: String,
    #[diesel(sql_type = Bool)]
    validated: bool,
    /// A foreign key's referenced key is a primary key or unique constraint (not a bare
    /// unique index, which is created after the tables).
    #[diesel(sql_type = Bool)]
    key_is_constraint: bool,
    #[diesel(sql_type = Nullable<Array<BigInt>>)]
    procs: Option<Vec<i64>>,
}

#[derive(QueryableByName)]
struct PrefixedRow {
    #[diesel(sql_type = Text)]
    def: String,
    #[diesel(sql_type = Text)]
    qualified: String,
    #[diesel(sql_type = Text)]
    local: String,
    #[diesel(sql_type = Text)]
    what: String,
}

#[derive(QueryableByName)]
struct FunctionRow {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    def: String,
    #[diesel(sql_type = Text)]
    qualified: String,
    #[diesel(sql_type = Text)]
    local: String,
    #[diesel(sql_type = Text)]
    signature: String,
    /// `FUNCTION` or `PROCEDURE`.
    #[diesel(sql_type = Text)]
    keyword: String,
    /// `proconfig`: the function's own settings, `name=value` each.
    #[diesel(sql_type = Nullable<Array<Text>>)]
    settings: Option<Vec<String>>,
    /// `prosrc`: the body as written (empty for SQL-standard bodies, which the definition
    /// prints).
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Text)]
    language: String,
}

#[derive(QueryableByName)]
struct ViewRow {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    def: String,
    #[diesel(sql_type = Nullable<Text>)]
    options: Option<String>,
    #[diesel(sql_type = Bool)]
    populated: bool,
}

#[derive(QueryableByName)]
struct DependRow {
    /// `true`: the dependent node is a function; `false`: a view or materialized view.
    #[diesel(sql_type = Bool)]
    node_is_proc: bool,
    #[diesel(sql_type = BigInt)]
    node: i64,
    #[diesel(sql_type = Bool)]
    dep_is_proc: bool,
    #[diesel(sql_type = BigInt)]
    dep: i64,
}

#[derive(QueryableByName)]
struct ClassKind {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    kind: String,
}

#[derive(QueryableByName)]
struct TriggerRow {
    #[diesel(sql_type = Text)]
    def: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Text)]
    enabled: String,
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// `$1` everywhere below is the source namespace's OID.
const UNSUPPORTED: &str = "
SELECT what AS sql FROM (
  SELECT CASE c.relkind WHEN 'p' THEN 'partitioned table ' WHEN 'f' THEN 'foreign table '
         ELSE 'partitioned index ' END || quote_ident(c.relname) AS what
    FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind IN ('p', 'f', 'I')
  UNION ALL SELECT 'typed table ' || quote_ident(c.relname)
    FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r' AND c.reloftype <> 0
  UNION ALL SELECT 'inheritance (table ' || quote_ident(c.relname) || ')'
    FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
    WHERE c.relnamespace = $1 OR p.relnamespace = $1
  UNION ALL SELECT CASE t.typtype WHEN 'r' THEN 'range type ' WHEN 'm' THEN 'multirange type '
         WHEN 'p' THEN 'pseudo-type ' ELSE 'base type ' END || quote_ident(t.typname)
    FROM pg_catalog.pg_type t
    WHERE t.typnamespace = $1 AND t.typtype IN ('b', 'r', 'm', 'p')
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  UNION ALL SELECT 'aggregate ' || quote_ident(p.proname)
    FROM pg_catalog.pg_proc p WHERE p.pronamespace = $1 AND p.prokind = 'a'
  UNION ALL SELECT 'operator ' || o.oprname FROM pg_catalog.pg_operator o WHERE o.oprnamespace = $1
  UNION ALL SELECT 'operator class ' || quote_ident(opcname) FROM pg_catalog.pg_opclass WHERE opcnamespace = $1
  UNION ALL SELECT 'operator family ' || quote_ident(opfname) FROM pg_catalog.pg_opfamily WHERE opfnamespace = $1
  UNION ALL SELECT 'collation ' || quote_ident(collname) FROM pg_catalog.pg_collation WHERE collnamespace = $1
  UNION ALL SELECT 'conversion ' || quote_ident(conname) FROM pg_catalog.pg_conversion WHERE connamespace = $1
  UNION ALL SELECT 'text search configuration ' || quote_ident(cfgname) FROM pg_catalog.pg_ts_config WHERE cfgnamespace = $1
  UNION ALL SELECT 'text search dictionary ' || quote_ident(dictname) FROM pg_catalog.pg_ts_dict WHERE dictnamespace = $1
  UNION ALL SELECT 'text search parser ' || quote_ident(prsname) FROM pg_catalog.pg_ts_parser WHERE prsnamespace = $1
  UNION ALL SELECT 'text search template ' || quote_ident(tmplname) FROM pg_catalog.pg_ts_template WHERE tmplnamespace = $1
  UNION ALL SELECT 'extension ' || quote_ident(extname) FROM pg_catalog.pg_extension WHERE extnamespace = $1
) u ORDER BY 1";

/// Enums first, then domains and composite types in creation order.
const TYPES: &str = "
SELECT CASE t.typtype
  WHEN 'e' THEN 'CREATE TYPE ' || quote_ident(t.typname) || ' AS ENUM (' || coalesce((
      SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
      FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '') || ')'
  WHEN 'd' THEN 'CREATE DOMAIN ' || quote_ident(t.typname) || ' AS '
      || pg_catalog.format_type(t.typbasetype, t.typtypmod)
      || coalesce((SELECT ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
           FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
           WHERE co.oid = t.typcollation AND t.typcollation <> 0
             AND t.typcollation <> (SELECT b.typcollation FROM pg_catalog.pg_type b WHERE b.oid = t.typbasetype)), '')
      || coalesce(' DEFAULT ' || pg_catalog.pg_get_expr(t.typdefaultbin, 'pg_catalog.pg_type'::pg_catalog.regclass), '')
      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
  ELSE 'CREATE TYPE ' || quote_ident(t.typname) || ' AS (' || coalesce((
      SELECT string_agg(quote_ident(a.attname) || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
          || coalesce((SELECT ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
               FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
               JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
               WHERE co.oid = a.attcollation AND a.attcollation <> 0 AND a.attcollation <> at.typcollation), ''),
          ', ' ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '') || ')'
  END AS sql,
  CASE t.typtype WHEN 'd' THEN 'domain ' ELSE 'type ' END || quote_ident(t.typname) AS what
FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_class r ON r.oid = t.typrelid
WHERE t.typnamespace = $1 AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND r.relkind = 'c'))
ORDER BY t.typtype <> 'e', t.oid";

const DOMAIN_CONSTRAINTS: &str = "
SELECT 'ALTER DOMAIN ' || quote_ident(t.typname) || ' ADD CONSTRAINT ' || quote_ident(co.conname) || ' '
       || pg_catalog.pg_get_constraintdef(co.oid) AS sql,
       'constraint ' || quote_ident(co.conname) || ' of domain ' || quote_ident(t.typname) AS what
FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_type t ON t.oid = co.contypid
WHERE t.typnamespace = $1 AND co.contype = 'c' ORDER BY co.oid";

/// Sequences that are not identity sequences (those come with their columns).
const SEQUENCES: &str = "
SELECT c.oid::int8 AS oid, 'CREATE ' || CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END || 'SEQUENCE '
       || quote_ident(c.relname) || ' AS ' || pg_catalog.format_type(s.seqtypid, NULL)
       || ' INCREMENT BY ' || s.seqincrement || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax
       || ' START WITH ' || s.seqstart || ' CACHE ' || s.seqcache
       || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END AS create,
       '(SELECT pg_catalog.setval(' || quote_literal(quote_ident(c.relname)) || '::pg_catalog.regclass, last_value, is_called) FROM '
       || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ')' AS setval,
       (SELECT 'ALTER SEQUENCE ' || quote_ident(c.relname) || ' OWNED BY ' || quote_ident(t.relname) || '.' || quote_ident(a.attname)
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
          JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
          WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a'
            AND t.relnamespace = c.relnamespace LIMIT 1) AS owned_by
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relnamespace = $1 AND c.relkind = 'S'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'i')
ORDER BY c.oid";

/// Sequences that a `serial` column would create exactly as they are: owned by the column,
/// named as PostgreSQL names them, default options, the column's default `nextval` of it.
/// Such a column is cloned as `serial`, which creates the sequence with the table.
const SERIALS: &str = "
SELECT sc.oid::int8 AS seq, a.attrelid::int8 AS rel, a.attnum::int4 AS attnum,
       CASE a.atttypid WHEN 'pg_catalog.int2'::pg_catalog.regtype THEN 'smallserial'
                       WHEN 'pg_catalog.int4'::pg_catalog.regtype THEN 'serial' ELSE 'bigserial' END AS type_name
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class sc ON sc.oid = s.seqrelid
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = sc.oid
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a'
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE sc.relnamespace = $1 AND t.relnamespace = $1 AND t.relkind = 'r'
  AND a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype,
                     'pg_catalog.int8'::pg_catalog.regtype)
  AND s.seqtypid = a.atttypid AND a.attnotnull AND a.attidentity = '' AND a.attgenerated = ''
  AND s.seqstart = 1 AND s.seqincrement = 1 AND s.seqmin = 1 AND s.seqcache = 1 AND NOT s.seqcycle
  AND s.seqmax = CASE a.atttypid WHEN 'pg_catalog.int2'::pg_catalog.regtype THEN 32767
                                 WHEN 'pg_catalog.int4'::pg_catalog.regtype THEN 2147483647
                                 ELSE 9223372036854775807 END
  AND sc.relname::text = t.relname || '_' || a.attname || '_seq'
  AND sc.relpersistence = t.relpersistence
  AND pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)
      = 'nextval(' || quote_literal(quote_ident(sc.relname)) || '::regclass)'";

const TABLES: &str = "
SELECT c.oid::int8 AS oid, c.relname::text AS relname, quote_ident(c.relname) AS name,
       c.relpersistence::text AS persistence,
       (SELECT string_agg(quote_ident(option_name) || '=' || quote_literal(option_value), ', ')
          FROM pg_catalog.pg_options_to_table(c.reloptions)) AS options,
       c.relreplident::text AS replident,
       (SELECT quote_ident(i.relname) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
          WHERE x.indrelid = c.oid AND x.indisreplident LIMIT 1) AS replident_index,
       (SELECT quote_ident(i.relname) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
          WHERE x.indrelid = c.oid AND x.indisclustered LIMIT 1) AS cluster_index,
       c.relrowsecurity AS rls, c.relforcerowsecurity AS force_rls,
       pg_catalog.pg_relation_size(c.oid) AS bytes
FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r' ORDER BY c.oid";

const COLUMNS: &str = "
SELECT a.attrelid::int8 AS rel, a.attnum::int4 AS attnum, quote_ident(a.attname) AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation,
       a.attnotnull AS not_null, a.attidentity::text AS identity, a.attgenerated::text AS generated,
       pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS expr,
       (SELECT array_agg(d.refobjid::int8) FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
            AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass) AS expr_procs,
       'SEQUENCE NAME ' || quote_ident(s.relname) || ' INCREMENT BY ' || s.seqincrement
         || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax || ' START WITH ' || s.seqstart
         || ' CACHE ' || s.seqcache || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END AS identity_options,
       '(SELECT pg_catalog.setval(' || quote_literal(quote_ident(s.relname)) || '::pg_catalog.regclass, last_value, is_called) FROM '
         || quote_ident(n.nspname) || '.' || quote_ident(s.relname) || ')' AS identity_setval,
       CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN'
            WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END AS storage,
       CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression,
       NULLIF(a.attstattarget, -1)::int4 AS stattarget,
       (t.typnamespace = $1 OR EXISTS (SELECT 1 FROM pg_catalog.pg_type el
                                       WHERE el.oid = t.typelem AND el.typnamespace = $1)) AS local_type
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN LATERAL (
    SELECT sc.relname, sq.seqincrement, sq.seqmin, sq.seqmax, sq.seqstart, sq.seqcache, sq.seqcycle
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class sc ON sc.oid = d.objid
    JOIN pg_catalog.pg_sequence sq ON sq.seqrelid = sc.oid
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'i'
    LIMIT 1) s ON a.attidentity <> ''
WHERE c.relnamespace = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

const CONSTRAINTS: &str = "
SELECT co.conrelid::int8 AS rel, co.confrelid::int8 AS refrel, co.contype::text AS kind, quote_ident(co.conname) AS name,
       pg_catalog.pg_get_constraintdef(co.oid) AS def, co.convalidated AS validated,
       (co.contype <> 'f' OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = co.conindid
                                     AND k.conrelid = co.confrelid AND k.contype IN ('p', 'u'))) AS key_is_constraint,
       (SELECT array_agg(d.refobjid::int8) FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = co.oid
            AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass) AS procs
FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_class c ON c.oid = co.conrelid
WHERE c.relnamespace = $1 AND c.relkind = 'r' AND co.contype IN ('p', 'u', 'x', 'c', 'f')
ORDER BY co.conrelid, CASE co.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 WHEN 'c' THEN 3 ELSE 4 END, co.oid";

/// Valid indexes that no primary key, unique or exclusion constraint owns, on tables and
/// materialized views (an invalid index is the leftover of a failed build).
const INDEXES: &str = "
SELECT pg_catalog.pg_get_indexdef(x.indexrelid) AS def,
       'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(i.relname)
         || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(t.relname) || ' ' AS qualified,
       'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(i.relname)
         || ' ON ' || quote_ident(t.relname) || ' ' AS local,
       'index ' || quote_ident(i.relname) AS what
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE t.relnamespace = $1 AND t.relkind IN ('r', 'm') AND x.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co
                  WHERE co.conindid = x.indexrelid AND co.conrelid = x.indrelid AND co.contype IN ('p', 'u', 'x'))
ORDER BY x.indexrelid";

const FUNCTIONS: &str = "
SELECT p.oid::int8 AS oid, pg_catalog.pg_get_functiondef(p.oid) AS def,
       'CREATE OR REPLACE ' || CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END
         || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' AS qualified,
       'CREATE OR REPLACE ' || CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END
         || quote_ident(p.proname) || '(' AS local,
       quote_ident(p.proname) || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS signature,
       CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS keyword,
       p.proconfig AS settings, p.prosrc AS body, l.lanname::text AS language
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = $1 AND p.prokind IN ('f', 'p', 'w')
ORDER BY p.oid";

const VIEWS: &str = "
SELECT c.oid::int8 AS oid, c.relkind::text AS kind, quote_ident(c.relname) AS name,
       pg_catalog.pg_get_viewdef(c.oid) AS def,
       (SELECT string_agg(quote_ident(option_name) || '=' || quote_literal(option_value), ', ')
          FROM pg_catalog.pg_options_to_table(c.reloptions)) AS options,
       c.relispopulated AS populated
FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind IN ('v', 'm') ORDER BY c.oid";

/// Every class of the source with its kind, for classifying dependencies.
const CLASSES: &str = "
SELECT c.oid::int8 AS oid, c.relkind::text AS kind FROM pg_catalog.pg_class c WHERE c.relnamespace = $1";

/// What functions, views and materialized views of the source depend on: classes and
/// functions, directly or through a table's row type (or an array of it).
const DEPENDENCIES: &str = "
SELECT DISTINCT false AS node_is_proc, rw.ev_class::int8 AS node,
       d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AS dep_is_proc, d.refobjid::int8 AS dep
FROM pg_catalog.pg_rewrite rw
JOIN pg_catalog.pg_class c ON c.oid = rw.ev_class
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
WHERE c.relnamespace = $1 AND c.relkind IN ('v', 'm') AND d.refobjid <> rw.ev_class
  AND d.refclassid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass)
UNION
SELECT true, p.oid::int8, d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass, d.refobjid::int8
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
WHERE p.pronamespace = $1 AND d.refobjid <> p.oid
  AND d.refclassid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass)
UNION
SELECT true, p.oid::int8, false, coalesce(nullif(t.typrelid, 0), el.typrelid)::int8
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
JOIN pg_catalog.pg_type t ON d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = d.refobjid
LEFT JOIN pg_catalog.pg_type el ON el.oid = t.typelem
WHERE p.pronamespace = $1 AND coalesce(nullif(t.typrelid, 0), el.typrelid) <> 0";

const TRIGGERS: &str = "
SELECT pg_catalog.pg_get_triggerdef(t.oid, true) AS def, quote_ident(t.tgname) AS name,
       quote_ident(c.relname) AS tbl, t.tgenabled::text AS enabled
FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = $1 AND NOT t.tgisinternal ORDER BY t.oid";

const RULES: &str = "
SELECT rtrim(pg_catalog.pg_get_ruledef(r.oid, true), ';')
       || CASE WHEN r.ev_enabled = 'D' THEN '; ALTER TABLE ' || quote_ident(c.relname) || ' DISABLE RULE ' || quote_ident(r.rulename) ELSE '' END AS sql,
       'rule ' || quote_ident(r.rulename) || ' on ' || quote_ident(c.relname) AS what
FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = $1 AND r.rulename <> '_RETURN' ORDER BY r.oid";

const POLICIES: &str = "
SELECT 'CREATE POLICY ' || quote_ident(p.polname) || ' ON ' || quote_ident(c.relname)
       || ' AS ' || CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END
       || ' FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                   WHEN 'd' THEN 'DELETE' ELSE 'ALL' END
       || ' TO ' || CASE WHEN p.polroles = '{0}' THEN 'PUBLIC' ELSE (
            SELECT string_agg(quote_ident(r.rolname), ', ') FROM pg_catalog.pg_roles r WHERE r.oid = ANY (p.polroles)) END
       || coalesce(' USING (' || pg_catalog.pg_get_expr(p.polqual, p.polrelid) || ')', '')
       || coalesce(' WITH CHECK (' || pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) || ')', '') AS sql,
       'policy ' || quote_ident(p.polname) || ' on ' || quote_ident(c.relname) AS what
FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = $1 ORDER BY p.oid";

const STATISTICS: &str = "
SELECT pg_catalog.pg_get_statisticsobjdef(s.oid) AS def,
       'CREATE STATISTICS ' || quote_ident(n.nspname) || '.' || quote_ident(s.stxname) || ' ' AS qualified,
       'CREATE STATISTICS ' || quote_ident(s.stxname) || ' ' AS local,
       'statistics object ' || quote_ident(s.stxname) AS what
FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
WHERE s.stxnamespace = $1 ORDER BY s.oid";

/// Comments on the source's objects, each kind driven from its catalog (filtered by the
/// namespace) into `pg_description`'s primary key.
const COMMENTS: &str = "
SELECT 'COMMENT ON ' || target || ' IS ' || quote_literal(description) AS sql FROM (
  SELECT 1 AS k, c.oid AS o, 0 AS sub,
         CASE c.relkind WHEN 'r' THEN 'TABLE ' WHEN 'v' THEN 'VIEW ' WHEN 'm' THEN 'MATERIALIZED VIEW '
                        WHEN 'S' THEN 'SEQUENCE ' ELSE 'INDEX ' END || quote_ident(c.relname) AS target, d.description
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_description d
      ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0
    WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'v', 'm', 'S', 'i')
  UNION ALL
  SELECT 1, c.oid, a.attnum, 'COLUMN ' || quote_ident(c.relname) || '.' || quote_ident(a.attname), d.description
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_description d
      ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid > 0
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
    WHERE c.relnamespace = $1
  UNION ALL
  SELECT 2, t.oid, 0, CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || quote_ident(t.typname), d.description
    FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_description d
      ON d.objoid = t.oid AND d.classoid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objsubid = 0
    WHERE t.typnamespace = $1
  UNION ALL
  SELECT 3, p.oid, 0, CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END || quote_ident(p.proname)
         || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', d.description
    FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_description d
      ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objsubid = 0
    WHERE p.pronamespace = $1
  UNION ALL
  SELECT 4, co.oid, 0, 'CONSTRAINT ' || quote_ident(co.conname) || ' ON ' || CASE WHEN co.contypid <> 0
           THEN 'DOMAIN ' || (SELECT quote_ident(t.typname) FROM pg_catalog.pg_type t WHERE t.oid = co.contypid)
           ELSE (SELECT quote_ident(c.relname) FROM pg_catalog.pg_class c WHERE c.oid = co.conrelid) END, d.description
    FROM pg_catalog.pg_constraint co
    JOIN pg_catalog.pg_description d
      ON d.objoid = co.oid AND d.classoid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objsubid = 0
    WHERE co.connamespace = $1
  UNION ALL
  SELECT 5, tg.oid, 0, 'TRIGGER ' || quote_ident(tg.tgname) || ' ON ' || quote_ident(c.relname), d.description
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = c.oid
    JOIN pg_catalog.pg_description d
      ON d.objoid = tg.oid AND d.classoid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND d.objsubid = 0
    WHERE c.relnamespace = $1
  UNION ALL
  SELECT 6, p.oid, 0, 'POLICY ' || quote_ident(p.polname) || ' ON ' || quote_ident(c.relname), d.description
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid
    JOIN pg_catalog.pg_description d
      ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objsubid = 0
    WHERE c.relnamespace = $1
  UNION ALL
  SELECT 7, r.oid, 0, 'RULE ' || quote_ident(r.rulename) || ' ON ' || quote_ident(c.relname), d.description
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid AND r.rulename <> '_RETURN'
    JOIN pg_catalog.pg_description d
      ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objsubid = 0
    WHERE c.relnamespace = $1
  UNION ALL
  SELECT 8, s.oid, 0, 'STATISTICS ' || quote_ident(s.stxname), d.description
    FROM pg_catalog.pg_statistic_ext s
    JOIN pg_catalog.pg_description d
      ON d.objoid = s.oid AND d.classoid = 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass AND d.objsubid = 0
    WHERE s.stxnamespace = $1
) x ORDER BY k, o, sub";

fn load<T: QueryableByName<diesel::pg::Pg> + 'static>(
    conn: &mut PgConnection,
    sql: &str,
    nsp: u32,
) -> Result<Vec<T>> {
    diesel::sql_query(sql)
        .bind::<Oid, _>(nsp)
        .load(conn)
        .map_err(Error::from)
}

/// Replaces the exact `qualified` prefix PostgreSQL generated with `local`.
fn unqualify(def: &str, qualified: &str, local: &str) -> Option<String> {
    def.strip_prefix(qualified)
        .map(|rest| format!("{local}{rest}"))
}

/// A function, view or materialized view: what gets ordered by dependencies.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Node {
    Proc(i64),
    Rel(i64),
}

fn read_template(
    conn: &mut PgConnection,
    src: &SchemaName,
    dst: &SchemaName,
    with_data: bool,
) -> Result<Option<Template>> {
    let Some(mut fingerprint) = Fingerprint::read(conn, src, false)? else {
        return Ok(None);
    };
    if fingerprint.has_ledger {
        match Fingerprint::read(conn, src, true)? {
            Some(f) => fingerprint = f,
            None => return Ok(None),
        }
    }
    let clone_error = |reason: String| Error::Clone {
        source_schema: src.to_string(),
        schema: dst.to_string(),
        reason,
    };
    let unqualify = |def: &str, qualified: &str, local: &str, what: &str| {
        unqualify(def, qualified, local).ok_or_else(|| {
            clone_error(format!(
                "PostgreSQL printed the definition of {what} in an unexpected form ({def:?} does not start with {qualified:?})"
            ))
        })
    };
    let nsp = fingerprint.oid;
    let unsupported: Vec<Line> = load(conn, UNSUPPORTED, nsp)?;
    if !unsupported.is_empty() {
        return Err(clone_error(format!(
            "it holds objects the clone does not reproduce: {}",
            unsupported
                .into_iter()
                .map(|l| l.sql)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Definitions are read while the path is the source alone: objects of the source come
    // out unqualified, everything else qualified.
    conn.batch_execute(&format!(
        "SELECT pg_catalog.set_config('{CLONE_PATH}', pg_catalog.current_setting('search_path'), true); {}",
        set_local_path_sql(&src.quoted())
    ))
    .map_err(Error::from)?;

    let types: Vec<Labeled> = load(conn, TYPES, nsp)?;
    let domain_constraints: Vec<Labeled> = load(conn, DOMAIN_CONSTRAINTS, nsp)?;
    let sequences: Vec<SequenceRow> = load(conn, SEQUENCES, nsp)?;
    let serials: Vec<SerialRow> = load(conn, SERIALS, nsp)?;
    let tables: Vec<TableRow> = load(conn, TABLES, nsp)?;
    let columns: Vec<ColumnRow> = load(conn, COLUMNS, nsp)?;
    let constraints: Vec<ConstraintRow> = load(conn, CONSTRAINTS, nsp)?;
    let indexes: Vec<PrefixedRow> = load(conn, INDEXES, nsp)?;
    let functions: Vec<FunctionRow> = load(conn, FUNCTIONS, nsp)?;
    let views: Vec<ViewRow> = load(conn, VIEWS, nsp)?;
    let classes: Vec<ClassKind> = load(conn, CLASSES, nsp)?;
    let depends: Vec<DependRow> = load(conn, DEPENDENCIES, nsp)?;
    let triggers: Vec<TriggerRow> = load(conn, TRIGGERS, nsp)?;
    let rules: Vec<Labeled> = load(conn, RULES, nsp)?;
    let policies: Vec<Labeled> = load(conn, POLICIES, nsp)?;
    let statistics: Vec<PrefixedRow> = load(conn, STATISTICS, nsp)?;
    let comments: Vec<Line> = load(conn, COMMENTS, nsp)?;
    conn.batch_execute(&format!(
        "SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('{CLONE_PATH}'), true)"
    ))
    .map_err(Error::from)?;

    let mut report = CloneReport {
        with_data,
        migrations: fingerprint
            .ledger
            .as_deref()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        ..CloneReport::default()
    };

    // Order functions, views and materialized views by their dependencies; those that need
    // the source's tables (or depend on something that does) come after the tables.
    let class_kind: HashMap<i64, char> = classes
        .iter()
        .map(|c| (c.oid, c.kind.chars().next().unwrap_or('?')))
        .collect();
    let mut nodes: BTreeSet<Node> = functions.iter().map(|f| Node::Proc(f.oid)).collect();
    nodes.extend(views.iter().map(|v| Node::Rel(v.oid)));
    let mut edges: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
    let mut needs_tables: BTreeSet<Node> = BTreeSet::new();
    for d in &depends {
        let node = if d.node_is_proc {
            Node::Proc(d.node)
        } else {
            Node::Rel(d.node)
        };
        if !nodes.contains(&node) {
            continue;
        }
        let dep = if d.dep_is_proc {
            Node::Proc(d.dep)
        } else {
            Node::Rel(d.dep)
        };
        if nodes.contains(&dep) {
            edges.entry(node).or_default().insert(dep);
        } else if let Node::Rel(oid) = dep
            && matches!(class_kind.get(&oid), Some('r' | 'S' | 'i'))
        {
            needs_tables.insert(node);
        }
    }
    let order = topological(&nodes, &edges);
    let mut late: BTreeSet<Node> = BTreeSet::new();
    for n in &order {
        let depends_on_late = edges
            .get(n)
            .is_some_and(|deps| deps.iter().any(|d| late.contains(d)));
        if matches!(n, Node::Rel(_)) || needs_tables.contains(n) || depends_on_late {
            late.insert(*n);
        }
    }
    let late_procs: BTreeSet<i64> = late
        .iter()
        .filter_map(|n| match n {
            Node::Proc(oid) => Some(*oid),
            Node::Rel(_) => None,
        })
        .collect();
    let calls_late = |procs: &Option<Vec<i64>>| {
        procs
            .as_ref()
            .is_some_and(|p| p.iter().any(|oid| late_procs.contains(oid)))
    };

    // Whatever still names the source once printed with the source on the path is refused
    // (or, where the clone cannot tell, reported) before anything is created.
    let mut findings = refs::Findings::new(src);
    let mut function_sql: HashMap<i64, Script> = HashMap::new();
    for f in &functions {
        let what = format!("{} {}", f.keyword.to_ascii_lowercase(), f.signature);
        let def = unqualify(&f.def, &f.qualified, &f.local, &what)?;
        findings.definition(&what, &def);
        findings.body(&what, &f.language, &f.body);
        function_sql.insert(f.oid, function_script(f, def, src, &what, &mut findings));
    }
    let mut view_sql: HashMap<i64, String> = HashMap::new();
    for v in &views {
        let kind = if v.kind == "m" {
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
        let sql = if v.kind == "m" {
            report.materialized_views += 1;
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
            report.views += 1;
            format!("CREATE VIEW {}{with} AS\n{def}", v.name)
        };
        view_sql.insert(v.oid, sql);
    }
    let index_sql = indexes
        .iter()
        .map(|i| unqualify(&i.def, &i.qualified, &i.local, &i.what))
        .collect::<Result<Vec<_>>>()?;
    let statistics_sql = statistics
        .iter()
        .map(|st| unqualify(&st.def, &st.qualified, &st.local, &st.what))
        .collect::<Result<Vec<_>>>()?;
    let table_names: HashMap<i64, &str> = tables.iter().map(|t| (t.oid, t.name.as_str())).collect();
    let table_name = |oid: &i64| table_names.get(oid).copied().unwrap_or("?");
    for l in types
        .iter()
        .chain(&domain_constraints)
        .chain(&rules)
        .chain(&policies)
    {
        findings.definition(&l.what, &l.sql);
    }
    for c in &columns {
        let what = format!("column {}.{}", table_name(&c.rel), c.name);
        findings.definition(&what, &c.type_name);
        if let Some(e) = &c.expr {
            findings.definition(&what, e);
        }
    }
    for c in &constraints {
        findings.definition(
            &format!("constraint {} on {}", c.name, table_name(&c.rel)),
            &c.def,
        );
    }
    for (sql, row) in index_sql
        .iter()
        .chain(&statistics_sql)
        .zip(indexes.iter().chain(&statistics))
    {
        findings.definition(&row.what, sql);
    }
    for t in &triggers {
        let what = format!("trigger {} on {}", t.name, t.tbl);
        findings.definition(&what, &t.def);
        findings.trigger(&what, &t.def);
    }
    report.warnings = findings.finish(dst)?;

    let node_sql = |n: &Node| -> Option<Script> {
        match n {
            Node::Proc(oid) => function_sql.get(oid).cloned(),
            Node::Rel(oid) => view_sql.get(oid).map(|v| Script::from(v.as_str())),
        }
    };

    let mut s = Script::default();
    let push = |s: &mut Script, stmt: &str| {
        s.push_sql(stmt);
        s.push_sql(";\n");
    };
    let push_script = |s: &mut Script, stmt: &Script| {
        s.append(stmt);
        s.push_sql(";\n");
    };

    // 1. Types, sequences, functions that need no table, domain constraints.
    for t in &types {
        push(&mut s, &t.sql);
    }
    report.types = types.len();
    // Sequences a `serial` column recreates come with their tables.
    let serial_seqs: BTreeSet<i64> = serials.iter().map(|x| x.seq).collect();
    let serial_cols: HashMap<(i64, i32), &str> = serials
        .iter()
        .map(|x| ((x.rel, x.attnum), x.type_name.as_str()))
        .collect();
    for q in sequences.iter().filter(|q| !serial_seqs.contains(&q.oid)) {
        push(&mut s, &q.create);
    }
    report.sequences = sequences.len();
    for n in order.iter().filter(|n| !late.contains(n)) {
        if let Some(sql) = node_sql(n) {
            push_script(&mut s, &sql);
        }
    }
    report.functions = functions.len();
    for c in &domain_constraints {
        push(&mut s, &c.sql);
    }

    // 2. Tables, with their columns and their own constraints except foreign keys.
    let mut by_table: BTreeMap<i64, Vec<&ColumnRow>> = BTreeMap::new();
    for c in &columns {
        by_table.entry(c.rel).or_default().push(c);
    }
    let mut constraints_by_table: BTreeMap<i64, Vec<&ConstraintRow>> = BTreeMap::new();
    for c in &constraints {
        constraints_by_table.entry(c.rel).or_default().push(c);
    }
    report.constraints = constraints.len();
    // Tables in foreign-key order, so a key can be declared with its table (PostgreSQL then
    // skips validating it) and rows copied in that order satisfy it. Keys that point
    // forward (cycles) are added after the rows. With many rows to copy, per-row checks
    // cost more than one validation: past 8 MiB of source rows, keys are added afterwards.
    let inline_fks = !with_data || tables.iter().map(|t| t.bytes).sum::<i64>() <= 8 << 20;
    let src_tables: BTreeSet<i64> = tables.iter().map(|t| t.oid).collect();
    let tables = order_tables(&tables, &constraints);
    let mut created: BTreeSet<i64> = BTreeSet::new();
    let mut deferred: Vec<String> = Vec::new();
    let mut foreign_keys: Vec<String> = Vec::new();
    let mut after_tables: Vec<String> = Vec::new();
    let mut setvals: Vec<String> = sequences.iter().map(|q| q.setval.clone()).collect();
    let mut copies: Vec<String> = Vec::new();
    for t in &tables {
        report.tables += 1;
        created.insert(t.oid);
        let cols = by_table.get(&t.oid).map(Vec::as_slice).unwrap_or(&[]);
        let mut parts: Vec<String> = Vec::with_capacity(cols.len() + 4);
        // Columns to copy, and how to read them from the source: a value of one of the
        // source's own types goes through its text form into the clone's type.
        let mut copy_cols: Vec<&str> = Vec::new();
        let mut copy_exprs: Vec<String> = Vec::new();
        for c in cols {
            let serial = serial_cols.get(&(c.rel, c.attnum)).copied();
            let mut p = format!("{} {}", c.name, serial.unwrap_or(&c.type_name));
            if let Some(comp) = &c.compression {
                write!(p, " COMPRESSION {comp}").ok();
            }
            if let Some(coll) = &c.collation {
                write!(p, " COLLATE {coll}").ok();
            }
            if c.generated == "s" {
                if let Some(e) = &c.expr {
                    write!(p, " GENERATED ALWAYS AS ({e}) STORED").ok();
                }
            } else {
                copy_cols.push(&c.name);
                copy_exprs.push(if c.local_type {
                    format!("{}::text::{}", c.name, c.type_name)
                } else {
                    c.name.clone()
                });
                if !c.identity.is_empty() {
                    let kind = if c.identity == "a" {
                        "ALWAYS"
                    } else {
                        "BY DEFAULT"
                    };
                    write!(p, " GENERATED {kind} AS IDENTITY").ok();
                    if let Some(o) = &c.identity_options {
                        write!(p, " ({o})").ok();
                        report.sequences += 1;
                    }
                    if let Some(sv) = &c.identity_setval {
                        setvals.push(sv.clone());
                    }
                } else if serial.is_some() {
                    // `serial` brings its own default.
                } else if let Some(e) = &c.expr {
                    if calls_late(&c.expr_procs) {
                        deferred.push(format!(
                            "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {e}",
                            t.name, c.name
                        ));
                    } else {
                        write!(p, " DEFAULT {e}").ok();
                    }
                }
            }
            if c.not_null {
                p.push_str(" NOT NULL");
            }
            parts.push(p);
            if let Some(st) = &c.storage {
                after_tables.push(format!(
                    "ALTER TABLE {} ALTER COLUMN {} SET STORAGE {st}",
                    t.name, c.name
                ));
            }
            if let Some(n) = c.stattarget {
                after_tables.push(format!(
                    "ALTER TABLE {} ALTER COLUMN {} SET STATISTICS {n}",
                    t.name, c.name
                ));
            }
        }
        let mut fks: Vec<String> = Vec::new();
        for c in constraints_by_table
            .get(&t.oid)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let clause = format!("CONSTRAINT {} {}", c.name, c.def);
            if c.kind == "f" {
                let target_exists = c.refrel == t.oid
                    || created.contains(&c.refrel)
                    || !src_tables.contains(&c.refrel);
                if inline_fks && c.validated && c.key_is_constraint && target_exists {
                    parts.push(clause);
                } else {
                    fks.push(format!("ADD {clause}"));
                }
            } else if calls_late(&c.procs) || !c.validated {
                // A `NOT VALID` check only keeps that meaning when added after the rows.
                deferred.push(format!("ALTER TABLE {} ADD {clause}", t.name));
            } else {
                parts.push(clause);
            }
        }
        if !fks.is_empty() {
            foreign_keys.push(format!("ALTER TABLE {} {}", t.name, fks.join(", ")));
        }
        let unlogged = if t.persistence == "u" {
            "UNLOGGED "
        } else {
            ""
        };
        let with = t
            .options
            .as_ref()
            .map(|o| format!(" WITH ({o})"))
            .unwrap_or_default();
        push(
            &mut s,
            &format!(
                "CREATE {unlogged}TABLE {} (\n  {}\n){with}",
                t.name,
                parts.join(",\n  ")
            ),
        );
        let is_ledger = t.relname == LEDGER;
        if (with_data || is_ledger) && !copy_cols.is_empty() {
            copies.push(format!(
                "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}.{}",
                t.name,
                copy_cols.join(", "),
                copy_exprs.join(", "),
                src.quoted(),
                t.name
            ));
        }
        match t.replident.as_str() {
            "f" => after_tables.push(format!("ALTER TABLE {} REPLICA IDENTITY FULL", t.name)),
            "n" => after_tables.push(format!("ALTER TABLE {} REPLICA IDENTITY NOTHING", t.name)),
            "i" => {
                if let Some(i) = &t.replident_index {
                    after_tables.push(format!(
                        "ALTER TABLE {} REPLICA IDENTITY USING INDEX {i}",
                        t.name
                    ));
                }
            }
            _ => {}
        }
        if let Some(i) = &t.cluster_index {
            after_tables.push(format!("ALTER TABLE {} CLUSTER ON {i}", t.name));
        }
        if t.rls {
            after_tables.push(format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY", t.name));
        }
        if t.force_rls {
            after_tables.push(format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", t.name));
        }
    }
    for q in sequences.iter().filter(|q| !serial_seqs.contains(&q.oid)) {
        if let Some(o) = &q.owned_by {
            push(&mut s, o);
        }
    }

    // 3. Rows (all of them, or the ledger's only) and the sequences' positions, in one
    // statement: one data-modifying CTE per table, one scalar `setval` per sequence
    // (foreign keys declared with the tables are checked at the end of the statement).
    if let Some(sql) = copy_statement(&copies, &setvals) {
        push(&mut s, &sql);
    }

    // 4. Functions, views and materialized views that need the tables, in dependency order.
    for n in order.iter().filter(|n| late.contains(n)) {
        if let Some(sql) = node_sql(n) {
            push_script(&mut s, &sql);
        }
    }

    // 5. What waited for them, indexes, foreign keys, triggers, rules, policies, comments.
    for d in &deferred {
        push(&mut s, d);
    }
    for i in &index_sql {
        push(&mut s, i);
    }
    report.indexes = indexes.len();
    for st in &statistics_sql {
        push(&mut s, st);
    }
    report.statistics = statistics.len();
    for a in &after_tables {
        push(&mut s, a);
    }
    for fk in &foreign_keys {
        push(&mut s, fk);
    }
    for t in &triggers {
        push(&mut s, &t.def);
        let state = match t.enabled.as_str() {
            "D" => Some("DISABLE TRIGGER"),
            "R" => Some("ENABLE REPLICA TRIGGER"),
            "A" => Some("ENABLE ALWAYS TRIGGER"),
            _ => None,
        };
        if let Some(state) = state {
            push(&mut s, &format!("ALTER TABLE {} {state} {}", t.tbl, t.name));
        }
    }
    report.triggers = triggers.len();
    for r in &rules {
        push(&mut s, &r.sql);
    }
    report.rules = rules.len();
    for p in &policies {
        push(&mut s, &p.sql);
    }
    report.policies = policies.len();
    for c in &comments {
        push(&mut s, &c.sql);
    }
    report.comments = comments.len();

    Ok(Some(Template {
        source: src.clone(),
        fingerprint,
        body: s,
        report,
    }))
}

/// One statement that runs every `INSERT ... SELECT` of `copies` (as data-modifying CTEs)
/// and every scalar `setval` subquery of `setvals`.
fn copy_statement(copies: &[String], setvals: &[String]) -> Option<String> {
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

/// The tables with every table after those its foreign keys reference (ties and cycles in
/// creation order).
fn order_tables<'a>(tables: &'a [TableRow], constraints: &[ConstraintRow]) -> Vec<&'a TableRow> {
    let nodes: BTreeSet<Node> = tables.iter().map(|t| Node::Rel(t.oid)).collect();
    let mut edges: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
    for c in constraints {
        let (from, to) = (Node::Rel(c.rel), Node::Rel(c.refrel));
        if c.kind == "f" && from != to && nodes.contains(&to) {
            edges.entry(from).or_default().insert(to);
        }
    }
    let by_oid: HashMap<i64, &TableRow> = tables.iter().map(|t| (t.oid, t)).collect();
    topological(&nodes, &edges)
        .into_iter()
        .filter_map(|n| by_oid.get(&oid_of(&n)).copied())
        .collect()
}

/// Kahn's algorithm, ties broken by kind then OID (creation order); members of a cycle, if
/// PostgreSQL ever allowed one, come last in OID order.
fn topological(nodes: &BTreeSet<Node>, edges: &BTreeMap<Node, BTreeSet<Node>>) -> Vec<Node> {
    let mut remaining: BTreeMap<Node, usize> = nodes
        .iter()
        .map(|n| (*n, edges.get(n).map_or(0, BTreeSet::len)))
        .collect();
    let mut dependents: BTreeMap<Node, Vec<Node>> = BTreeMap::new();
    for (n, deps) in edges {
        for d in deps {
            dependents.entry(*d).or_default().push(*n);
        }
    }
    let mut ready: BTreeSet<(i64, Node)> = remaining
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(n, _)| (oid_of(n), *n))
        .collect();
    let mut out = Vec::with_capacity(nodes.len());
    while let Some(first) = ready.iter().next().copied() {
        ready.remove(&first);
        let n = first.1;
        remaining.remove(&n);
        out.push(n);
        for d in dependents.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(c) = remaining.get_mut(d) {
                *c -= 1;
                if *c == 0 {
                    ready.insert((oid_of(d), *d));
                }
            }
        }
    }
    let mut rest: Vec<Node> = remaining.into_keys().collect();
    rest.sort_by_key(oid_of);
    out.extend(rest);
    out
}

fn oid_of(n: &Node) -> i64 {
    match n {
        Node::Proc(o) | Node::Rel(o) => *o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topological_order_respects_dependencies_then_oids() {
        let nodes: BTreeSet<Node> = [Node::Rel(10), Node::Rel(20), Node::Proc(5), Node::Rel(30)]
            .into_iter()
            .collect();
        let mut edges = BTreeMap::new();
        // 10 depends on 30, 30 on the function 5.
        edges.insert(Node::Rel(10), [Node::Rel(30)].into_iter().collect());
        edges.insert(Node::Rel(30), [Node::Proc(5)].into_iter().collect());
        let order = topological(&nodes, &edges);
        assert_eq!(
            order,
            vec![Node::Proc(5), Node::Rel(20), Node::Rel(30), Node::Rel(10)]
        );
    }

    #[test]
    fn a_cycle_does_not_lose_nodes() {
        let nodes: BTreeSet<Node> = [Node::Rel(1), Node::Rel(2)].into_iter().collect();
        let mut edges = BTreeMap::new();
        edges.insert(Node::Rel(1), [Node::Rel(2)].into_iter().collect());
        edges.insert(Node::Rel(2), [Node::Rel(1)].into_iter().collect());
        assert_eq!(topological(&nodes, &edges).len(), 2);
    }

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
