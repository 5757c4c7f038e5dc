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

mod copy;
mod definitions;
mod emit;
mod fingerprint;
mod objects;
mod order;
mod queries;
mod refs;
mod script;
mod tables;

use diesel::prelude::*;

use crate::config::Config;
use crate::error::CloneRefusal;
use crate::error::{Error, Result};
use crate::migrate::LEDGER_TABLE as LEDGER;
use crate::name::SchemaName;
use crate::path::SearchPath;
use crate::transaction::copy_setting_sql;

use definitions::Definitions;
pub(crate) use fingerprint::Fingerprint;
use objects::Objects;
use order::Order;
use script::Script;
use tables::Tables;

use super::txn::{
    atomic, create_schema_sql, in_schema, lock_sql, map_create_error, set_local_path_sql,
    shared_lock_sql,
};

/// Transaction-local settings holding the caller's values while a clone runs.
const CLONE_PATH: &str = "pgschemas.clone_path";
const CLONE_BODIES: &str = "pgschemas.clone_bodies";

/// What [`clone_schema`] created: how many objects of each kind, and what to look at.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["sample"]); let database_url = db.url();
/// # use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::{Config, SchemaName};
/// use pgschemas_diesel::provision::clone_schema;
///
/// // sample holds a table, notes, with a serial id
/// let mut conn = PgConnection::establish(database_url)?;
/// let report = clone_schema(
///     &mut conn,
///     &Config::default(),
///     &SchemaName::new("sample")?,
///     &SchemaName::new("customer1")?,
///     false,
/// )?;
/// assert_eq!((report.tables, report.sequences, report.views), (1, 1, 0));
/// for warning in &report.warnings {
///     eprintln!("check by hand: {warning}");
/// }
/// assert!(report.warnings.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloneReport {
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
    /// [`Provisioner`](crate::provision::Provisioner), which has nobody to read this list, refuses
    /// these too.
    pub warnings: Vec<String>,
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
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["sample"])
/// #     .sql("insert into sample.notes (body) values ('welcome')");
/// # let database_url = db.url();
/// # use diesel::{Connection, PgConnection, RunQueryDsl};
/// use pgschemas_diesel::{Config, SchemaName};
/// use pgschemas_diesel::provision::clone_schema;
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let config = Config::builder().clone_reference("sample").build()?;
/// let src = SchemaName::new("sample")?;
/// let report = clone_schema(&mut conn, &config, &src, &SchemaName::new("customer1")?, true)?;
/// assert!(report.with_data);
/// let copied = diesel::sql_query("select * from customer1.notes where body = 'welcome'").execute(&mut conn)?;
/// assert_eq!(copied, 1);
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
    // A tenant cloned under Citus is a distributed schema, as a provisioned one is; the
    // reference stays on the coordinator.
    let create = if config.citus() && config.clone_reference() != Some(dst) {
        crate::citus::distributed_sql(&create_schema_sql(dst))
    } else {
        create_schema_sql(dst)
    };
    let first = format!("{}; {}; {create}", lock_sql(dst), shared_lock_sql(src));
    atomic(conn, &first, map_create_error(dst), |conn| {
        let template =
            Template::read(conn, src, dst, with_data)?.ok_or_else(|| Error::SchemaNotFound {
                schema: src.to_string(),
            })?;
        template.apply(conn, dst, None, config.citus())?;
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

impl Template {
    /// Refuses, for a clone nobody reviews (a tenant created by a
    /// [`Provisioner`](crate::provision::Provisioner)), what the report would only list as warnings.
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

    /// Runs the script into `dst`, which exists and is empty, in one round trip (one per
    /// statement with `by_statement`, for Citus: see [`crate::citus::execute`]). Leaves the
    /// transaction's path at `final_path`, or as it was when `None`.
    pub(crate) fn apply(
        &self,
        conn: &mut PgConnection,
        dst: &SchemaName,
        final_path: Option<&SearchPath>,
        by_statement: bool,
    ) -> Result<()> {
        let restore_path = match final_path {
            Some(p) => set_local_path_sql(p.as_sql_value()),
            None => copy_setting_sql("search_path", CLONE_PATH),
        };
        let script = format!(
            "{};\n{};\n{};\nSET LOCAL check_function_bodies = off;\n{}\n{};\n{restore_path}",
            copy_setting_sql(CLONE_PATH, "search_path"),
            copy_setting_sql(CLONE_BODIES, "check_function_bodies"),
            set_local_path_sql(&dst.quoted()),
            self.body.render(dst),
            copy_setting_sql("check_function_bodies", CLONE_BODIES),
        );
        crate::citus::execute(conn, &script, by_statement).map_err(|e| Error::db(dst.as_str(), e))
    }
}

/// Reads `src`'s catalogs and builds the script that clones it into `dst` (and any other
/// new schema); `None` when `src` does not exist.
fn read_template(
    conn: &mut PgConnection,
    src: &SchemaName,
    dst: &SchemaName,
    with_data: bool,
) -> Result<Option<Template>> {
    let Some(fingerprint) = Fingerprint::read_whole(conn, src)? else {
        return Ok(None);
    };
    let objects = Objects::read(conn, fingerprint.oid, src, dst)?;
    let order = Order::of(&objects);
    let definitions = Definitions::prepare(&objects, src, dst)?;
    let tables = Tables::plan(&objects, &order, src, with_data);
    let body = emit::script(&objects, &order, &definitions, &tables);
    let report = CloneReport {
        with_data,
        migrations: fingerprint.migrations(),
        warnings: definitions.warnings,
        ..emit::counts(&objects, &tables)
    };
    Ok(Some(Template {
        source: src.clone(),
        fingerprint,
        body,
        report,
    }))
}

/// [`Error::Clone`]: `src` holds something the clone into `dst` cannot reproduce.
fn clone_error(src: &SchemaName, dst: &SchemaName, reason: CloneRefusal) -> Error {
    Error::Clone {
        source_schema: src.to_string(),
        schema: dst.to_string(),
        reason,
    }
}
