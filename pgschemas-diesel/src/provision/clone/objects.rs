//! The source's objects as the catalogs describe them: the rows of the catalog queries, read
//! in one pass.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Oid, Text};

use crate::error::CloneRefusal;
use crate::error::{Error, Result};
use crate::name::SchemaName;

use super::queries::{
    CLASSES, COLUMNS, COMMENTS, CONSTRAINTS, DEPENDENCIES, DOMAIN_CONSTRAINTS, FUNCTIONS, INDEXES,
    POLICIES, RULES, SEQUENCES, SERIALS, STATISTICS, TABLES, TRIGGERS, TYPES, UNSUPPORTED, VIEWS,
};
use super::{CLONE_PATH, clone_error, copy_setting_sql};
use crate::provision::txn::set_local_path_sql;

/// Everything the clone reads from the source's catalogs.
pub(super) struct Objects {
    pub types: Vec<Labeled>,
    pub domain_constraints: Vec<Labeled>,
    pub sequences: Vec<SequenceRow>,
    pub serials: Vec<SerialRow>,
    pub tables: Vec<TableRow>,
    pub columns: Vec<ColumnRow>,
    pub constraints: Vec<ConstraintRow>,
    pub indexes: Vec<PrefixedRow>,
    pub functions: Vec<FunctionRow>,
    pub views: Vec<ViewRow>,
    pub classes: Vec<ClassKind>,
    pub depends: Vec<DependRow>,
    pub triggers: Vec<TriggerRow>,
    pub rules: Vec<Labeled>,
    pub policies: Vec<Labeled>,
    pub statistics: Vec<PrefixedRow>,
    pub comments: Vec<Line>,
}

impl Objects {
    /// Reads the objects of the namespace `nsp` (the source `src`, to be cloned into `dst`)
    /// with the transaction's path set to the source alone, so that the source's own
    /// objects come out unqualified and everything else qualified; the path is put back
    /// afterwards.
    ///
    /// Refuses ([`Error::Clone`]) a source holding what the clone does not reproduce.
    pub(super) fn read(
        conn: &mut PgConnection,
        nsp: u32,
        src: &SchemaName,
        dst: &SchemaName,
    ) -> Result<Self> {
        refuse_unsupported(conn, nsp, src, dst)?;
        conn.batch_execute(&format!(
            "{}; {}",
            copy_setting_sql(CLONE_PATH, "search_path"),
            set_local_path_sql(&src.quoted())
        ))
        .map_err(Error::from)?;
        let objects = Self {
            types: fetch_rows(conn, TYPES, nsp)?,
            domain_constraints: fetch_rows(conn, DOMAIN_CONSTRAINTS, nsp)?,
            sequences: fetch_rows(conn, SEQUENCES, nsp)?,
            serials: fetch_rows(conn, SERIALS, nsp)?,
            tables: fetch_rows(conn, TABLES, nsp)?,
            columns: fetch_rows(conn, COLUMNS, nsp)?,
            constraints: fetch_rows(conn, CONSTRAINTS, nsp)?,
            indexes: fetch_rows(conn, INDEXES, nsp)?,
            functions: fetch_rows(conn, FUNCTIONS, nsp)?,
            views: fetch_rows(conn, VIEWS, nsp)?,
            classes: fetch_rows(conn, CLASSES, nsp)?,
            depends: fetch_rows(conn, DEPENDENCIES, nsp)?,
            triggers: fetch_rows(conn, TRIGGERS, nsp)?,
            rules: fetch_rows(conn, RULES, nsp)?,
            policies: fetch_rows(conn, POLICIES, nsp)?,
            statistics: fetch_rows(conn, STATISTICS, nsp)?,
            comments: fetch_rows(conn, COMMENTS, nsp)?,
        };
        conn.batch_execute(&copy_setting_sql("search_path", CLONE_PATH))
            .map_err(Error::from)?;
        Ok(objects)
    }
}

/// [`Error::Clone`] naming what `nsp` holds that the clone does not reproduce, if anything.
fn refuse_unsupported(
    conn: &mut PgConnection,
    nsp: u32,
    src: &SchemaName,
    dst: &SchemaName,
) -> Result<()> {
    let unsupported: Vec<Line> = fetch_rows(conn, UNSUPPORTED, nsp)?;
    if unsupported.is_empty() {
        return Ok(());
    }
    Err(clone_error(
        src,
        dst,
        CloneRefusal::Unsupported {
            objects: unsupported.into_iter().map(|l| l.sql).collect(),
        },
    ))
}

fn fetch_rows<T: QueryableByName<diesel::pg::Pg> + 'static>(
    conn: &mut PgConnection,
    sql: &str,
    nsp: u32,
) -> Result<Vec<T>> {
    diesel::sql_query(sql)
        .bind::<Oid, _>(nsp)
        .load(conn)
        .map_err(Error::from)
}

#[derive(QueryableByName)]
pub(super) struct Line {
    #[diesel(sql_type = Text)]
    pub sql: String,
}

/// A statement and what it creates, for messages.
#[derive(QueryableByName)]
pub(super) struct Labeled {
    #[diesel(sql_type = Text)]
    pub sql: String,
    #[diesel(sql_type = Text)]
    pub what: String,
}

#[derive(QueryableByName)]
pub(super) struct SequenceRow {
    #[diesel(sql_type = BigInt)]
    pub oid: i64,
    #[diesel(sql_type = Text)]
    pub create: String,
    #[diesel(sql_type = Text)]
    pub setval: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub owned_by: Option<String>,
}

#[derive(QueryableByName)]
pub(super) struct TableRow {
    #[diesel(sql_type = BigInt)]
    pub oid: i64,
    #[diesel(sql_type = Text)]
    pub relname: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub persistence: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub options: Option<String>,
    #[diesel(embed)]
    pub settings: TableSettings,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
}

/// What a table is set to after its creation.
#[derive(QueryableByName)]
pub(super) struct TableSettings {
    /// `relreplident`: `d` (default), `n` (nothing), `f` (full) or `i` (index).
    #[diesel(sql_type = Text)]
    pub replident: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub replident_index: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub cluster_index: Option<String>,
    #[diesel(sql_type = Bool)]
    pub rls: bool,
    #[diesel(sql_type = Bool)]
    pub force_rls: bool,
}

#[derive(QueryableByName)]
pub(super) struct ColumnRow {
    #[diesel(sql_type = BigInt)]
    pub rel: i64,
    #[diesel(sql_type = Integer)]
    pub attnum: i32,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub type_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub collation: Option<String>,
    #[diesel(sql_type = Bool)]
    pub not_null: bool,
    #[diesel(embed)]
    pub identity: Identity,
    #[diesel(sql_type = Text)]
    pub generated: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub expr: Option<String>,
    #[diesel(sql_type = Nullable<Array<BigInt>>)]
    pub expr_procs: Option<Vec<i64>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub compression: Option<String>,
    /// The column's type (or its element type) is defined in the source schema.
    #[diesel(sql_type = Bool)]
    pub local_type: bool,
    #[diesel(embed)]
    pub settings: ColumnSettings,
}

/// What a column is set to after its table's creation, when not its type's default.
#[derive(QueryableByName)]
pub(super) struct ColumnSettings {
    #[diesel(sql_type = Nullable<Text>)]
    pub storage: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub stattarget: Option<i32>,
}

/// A column's identity: how it is generated, its sequence's options and position.
#[derive(QueryableByName)]
pub(super) struct Identity {
    /// `attidentity`: empty (not an identity column), `a` (always) or `d` (by default).
    #[diesel(sql_type = Text, column_name = identity)]
    pub kind: String,
    #[diesel(sql_type = Nullable<Text>, column_name = identity_options)]
    pub options: Option<String>,
    #[diesel(sql_type = Nullable<Text>, column_name = identity_setval)]
    pub setval: Option<String>,
}

#[derive(QueryableByName)]
pub(super) struct SerialRow {
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = BigInt)]
    pub rel: i64,
    #[diesel(sql_type = Integer)]
    pub attnum: i32,
    #[diesel(sql_type = Text)]
    pub type_name: String,
}

#[derive(QueryableByName)]
pub(super) struct ConstraintRow {
    #[diesel(sql_type = BigInt)]
    pub rel: i64,
    /// The referenced table of a foreign key (0 otherwise).
    #[diesel(sql_type = BigInt)]
    pub refrel: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub def: String,
    #[diesel(sql_type = Bool)]
    pub validated: bool,
    /// A foreign key's referenced key is a primary key or unique constraint (not a bare
    /// unique index, which is created after the tables).
    #[diesel(sql_type = Bool)]
    pub key_is_constraint: bool,
    #[diesel(sql_type = Nullable<Array<BigInt>>)]
    pub procs: Option<Vec<i64>>,
}

/// A definition PostgreSQL prints with a qualified name, the exact prefix it prints it with
/// and the unqualified prefix to put in its place.
#[derive(QueryableByName)]
pub(super) struct PrefixedRow {
    #[diesel(sql_type = Text)]
    pub def: String,
    #[diesel(sql_type = Text)]
    pub qualified: String,
    #[diesel(sql_type = Text)]
    pub local: String,
    #[diesel(sql_type = Text)]
    pub what: String,
}

#[derive(QueryableByName)]
pub(super) struct FunctionRow {
    #[diesel(sql_type = BigInt)]
    pub oid: i64,
    /// The definition, and what the function is for messages (`function f(integer)`).
    #[diesel(embed)]
    pub printed: PrefixedRow,
    #[diesel(sql_type = Text)]
    pub signature: String,
    /// `FUNCTION` or `PROCEDURE`.
    #[diesel(sql_type = Text)]
    pub keyword: String,
    /// `proconfig`: the function's own settings, `name=value` each.
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pub settings: Option<Vec<String>>,
    /// `prosrc`: the body as written (empty for SQL-standard bodies, which the definition
    /// prints).
    #[diesel(sql_type = Text)]
    pub body: String,
    #[diesel(sql_type = Text)]
    pub language: String,
}

#[derive(QueryableByName)]
pub(super) struct ViewRow {
    #[diesel(sql_type = BigInt)]
    pub oid: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    /// `v` (view) or `m` (materialized view).
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub def: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub options: Option<String>,
    #[diesel(sql_type = Bool)]
    pub populated: bool,
}

#[derive(QueryableByName)]
pub(super) struct DependRow {
    /// `true`: the dependent node is a function; `false`: a view or materialized view.
    #[diesel(sql_type = Bool)]
    pub node_is_proc: bool,
    #[diesel(sql_type = BigInt)]
    pub node: i64,
    #[diesel(sql_type = Bool)]
    pub dep_is_proc: bool,
    #[diesel(sql_type = BigInt)]
    pub dep: i64,
}

#[derive(QueryableByName)]
pub(super) struct ClassKind {
    #[diesel(sql_type = BigInt)]
    pub oid: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
}

#[derive(QueryableByName)]
pub(super) struct TriggerRow {
    #[diesel(sql_type = Text)]
    pub def: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub tbl: String,
    #[diesel(sql_type = Text)]
    pub enabled: String,
}
