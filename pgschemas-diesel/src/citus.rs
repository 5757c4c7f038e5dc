//! Citus schema-based sharding: where each tenant schema lives, and moving it.
//!
//! With [`ConfigBuilder::citus`](crate::ConfigBuilder::citus) on, the
//! [`Provisioner`](crate::provision::Provisioner) creates each new tenant schema as a
//! *distributed schema* (`citus.enable_schema_based_sharding` on for its `CREATE SCHEMA`,
//! in the same transaction as its rows and migrations): every table created in it is a
//! single-shard table, and all of a tenant's tables live together on one worker. Queries and
//! migrations go through the coordinator, which routes them by the `search_path` the crate
//! sets (session or transaction form alike).
//!
//! This module reads the placement of the distributed schemas ([`placements`],
//! [`placement`]), lists the workers ([`workers`]), distributes an existing schema
//! ([`distribute_schema`]) and moves a tenant to another worker ([`move_tenant`]). It reads
//! Citus' own catalog (`pg_dist_schema`, `pg_dist_shard`, `pg_dist_placement`,
//! `pg_dist_node`); every function needs a connection to the coordinator of a database with
//! the `citus` extension, and says so ([`Error::CitusMissing`]) otherwise.
//!
//! The examples need a running Citus cluster (see `docs/citus.md`); they are compiled, not
//! run.
//!
//! ```no_run
//! use diesel::{Connection, PgConnection};
//! use pgschemas_diesel::citus::{self, TransferMode};
//!
//! let mut conn = PgConnection::establish("postgres://postgres@coordinator/app")?;
//! for p in citus::placements(&mut conn)? {
//!     println!("{} on {}", p.schema, p.node.map_or("-".to_owned(), |n| n.to_string()));
//! }
//! let workers = citus::workers(&mut conn)?;
//! citus::move_tenant(&mut conn, &"customer1", &workers[1], TransferMode::Auto)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::any::Any;
use std::fmt;
use std::ops::Deref;

use diesel::connection::{BoxableConnection, SimpleConnection};
use diesel::migration::{self, Migration, MigrationMetadata, MigrationName, MigrationSource};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};

use crate::activate::Schema;
use crate::error::{Error, Result};
use crate::name::{SchemaName, quote_literal};
use crate::statements;

/// A Citus node, as `pg_dist_node` names it: host and port.
///
/// Displayed as `host:port`; [`Node::parse`] reads that form back.
///
/// ```
/// use pgschemas_diesel::citus::Node;
///
/// let node = Node::parse("10.0.0.2:5432")?;
/// assert_eq!((node.host.as_str(), node.port), ("10.0.0.2", 5432));
/// assert_eq!(node.to_string(), "10.0.0.2:5432");
/// assert!(Node::parse("10.0.0.2").is_err());
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    /// The host name or address the coordinator connects to.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Node {
    /// A node at `host` and `port`.
    ///
    /// ```
    /// let node = pgschemas_diesel::citus::Node::new("127.0.0.1", 5433);
    /// assert_eq!(node.to_string(), "127.0.0.1:5433");
    /// ```
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// Reads `host:port` (the port after the last `:`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when there is no `:`, the host is empty or the port is not a number.
    ///
    /// ```
    /// use pgschemas_diesel::citus::Node;
    /// assert_eq!(Node::parse("worker-2:6432")?, Node::new("worker-2", 6432));
    /// assert!(Node::parse(":6432").is_err());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Config(format!("{text:?} is not a node: expected host:port"));
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self::new(host, port))
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Where one distributed (tenant) schema lives.
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// # let mut conn = PgConnection::establish("postgres://postgres@coordinator/app")?;
/// let p = pgschemas_diesel::citus::placement(&mut conn, &"customer1")?.expect("distributed");
/// println!("{} ({} tables) on {:?}", p.schema, p.tables, p.node);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Placement {
    /// The schema.
    pub schema: String,
    /// Its colocation group (one per distributed schema).
    pub colocation_id: i32,
    /// How many distributed tables it holds.
    pub tables: i64,
    /// The worker holding its tables; `None` while it holds none (Citus places a schema
    /// with its first table).
    pub node: Option<Node>,
}

/// How [`move_tenant`] copies the shards: Citus' `shard_transfer_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransferMode {
    /// Logical replication when every table has a replica identity (a primary key), else
    /// an error: writes go on during the copy and pause only for the switch-over.
    #[default]
    Auto,
    /// Logical replication; tables without a replica identity then refuse updates and
    /// deletes during the move.
    ForceLogical,
    /// Writes to the tenant wait until the move is over.
    BlockWrites,
}

impl TransferMode {
    fn as_sql(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ForceLogical => "force_logical",
            Self::BlockWrites => "block_writes",
        }
    }
}

/// Whether the `citus` extension is installed in the database `conn` is connected to.
///
/// # Errors
///
/// [`Error::Database`] when the catalog cannot be read.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database(); let conn = &mut db.connect();
/// assert!(!pgschemas_diesel::citus::is_installed(conn)?); // a plain PostgreSQL database
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
pub fn is_installed(conn: &mut PgConnection) -> Result<bool> {
    diesel::select(diesel::dsl::sql::<Bool>(
        "EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus')",
    ))
    .get_result(conn)
    .map_err(Error::from)
}

/// [`Error::CitusMissing`] unless the `citus` extension is installed.
pub(crate) fn require(conn: &mut PgConnection) -> Result<()> {
    if is_installed(conn)? {
        Ok(())
    } else {
        Err(Error::CitusMissing)
    }
}

/// The setting that makes `CREATE SCHEMA` create a distributed schema.
const SHARDING: &str = "citus.enable_schema_based_sharding";

/// A transaction-local setting holding the caller's value of [`SHARDING`].
const SAVED_SHARDING: &str = "pgschemas.saved_schema_sharding";

/// `create_schema` (a `CREATE SCHEMA` statement) wrapped so that it creates a distributed
/// schema: `citus_version()` first (an error without the extension), [`SHARDING`] on for
/// the statement, then back to the caller's value; transaction-local settings throughout.
pub(crate) fn distributed_sql(create_schema: &str) -> String {
    format!(
        "SELECT pg_catalog.citus_version(), \
           pg_catalog.set_config('{SAVED_SHARDING}', pg_catalog.current_setting('{SHARDING}'), true), \
           pg_catalog.set_config('{SHARDING}', 'on', true); \
         {create_schema}; \
         SELECT pg_catalog.set_config('{SHARDING}', pg_catalog.current_setting('{SAVED_SHARDING}'), true)"
    )
}

#[derive(QueryableByName)]
struct PlacementRow {
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = Integer)]
    colocation_id: i32,
    #[diesel(sql_type = BigInt)]
    tables: i64,
    #[diesel(sql_type = Nullable<Text>)]
    host: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    port: Option<i32>,
}

impl PlacementRow {
    fn into_placement(self) -> Placement {
        Placement {
            schema: self.schema,
            colocation_id: self.colocation_id,
            tables: self.tables,
            node: self.host.zip(self.port).map(|(host, port)| Node {
                host,
                port: u16::try_from(port).unwrap_or(0),
            }),
        }
    }
}

/// Every distributed schema with its worker, by name; `where_sql` narrows it.
fn placements_sql(where_sql: &str) -> String {
    format!(
        "SELECT n.nspname::text AS schema, s.colocationid AS colocation_id, \
           (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_partition p \
             WHERE p.colocationid OPERATOR(pg_catalog.=) s.colocationid) AS tables, \
           node.nodename::text AS host, node.nodeport AS port \
         FROM pg_catalog.pg_dist_schema s \
         JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) s.schemaid \
         LEFT JOIN LATERAL ( \
           SELECT pl.groupid FROM pg_catalog.pg_dist_partition p \
           JOIN pg_catalog.pg_dist_shard sh ON sh.logicalrelid OPERATOR(pg_catalog.=) p.logicalrelid \
           JOIN pg_catalog.pg_dist_placement pl ON pl.shardid OPERATOR(pg_catalog.=) sh.shardid \
           WHERE p.colocationid OPERATOR(pg_catalog.=) s.colocationid \
           ORDER BY sh.shardid LIMIT 1) g ON true \
         LEFT JOIN pg_catalog.pg_dist_node node ON node.groupid OPERATOR(pg_catalog.=) g.groupid \
           AND node.noderole OPERATOR(pg_catalog.=) 'primary' \
         {where_sql} ORDER BY n.nspname"
    )
}

/// Every distributed schema and the worker holding it, sorted by schema name.
///
/// # Errors
///
/// [`Error::CitusMissing`] without the `citus` extension; [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// # let mut conn = PgConnection::establish("postgres://postgres@coordinator/app")?;
/// for p in pgschemas_diesel::citus::placements(&mut conn)? {
///     println!("{}: {:?}", p.schema, p.node);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn placements(conn: &mut PgConnection) -> Result<Vec<Placement>> {
    require(conn)?;
    let rows: Vec<PlacementRow> = diesel::sql_query(placements_sql(""))
        .load(conn)
        .map_err(Error::from)?;
    Ok(rows.into_iter().map(PlacementRow::into_placement).collect())
}

/// The placement of `schema`; `None` when it is not a distributed schema.
///
/// # Errors
///
/// As [`placements`], and [`Error::InvalidSchemaName`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// # let mut conn = PgConnection::establish("postgres://postgres@coordinator/app")?;
/// let where_ = pgschemas_diesel::citus::placement(&mut conn, &"customer1")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn placement<S: Schema + ?Sized>(
    conn: &mut PgConnection,
    schema: &S,
) -> Result<Option<Placement>> {
    let name = SchemaName::new(schema.schema_name())?;
    require(conn)?;
    let rows: Vec<PlacementRow> =
        diesel::sql_query(placements_sql("WHERE n.nspname OPERATOR(pg_catalog.=) $1"))
            .bind::<Text, _>(name.as_str())
            .load(conn)
            .map_err(|e| Error::db(name.as_str(), e))?;
    Ok(rows.into_iter().next().map(PlacementRow::into_placement))
}

#[derive(QueryableByName)]
struct NodeRow {
    #[diesel(sql_type = Text)]
    host: String,
    #[diesel(sql_type = Integer)]
    port: i32,
}

/// The active primary workers that may hold shards, sorted by host and port: the nodes a
/// tenant can be moved to.
///
/// # Errors
///
/// [`Error::CitusMissing`] without the `citus` extension; [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// # let mut conn = PgConnection::establish("postgres://postgres@coordinator/app")?;
/// let workers = pgschemas_diesel::citus::workers(&mut conn)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn workers(conn: &mut PgConnection) -> Result<Vec<Node>> {
    require(conn)?;
    let rows: Vec<NodeRow> = diesel::sql_query(
        "SELECT nodename::text AS host, nodeport AS port FROM pg_catalog.pg_dist_node \
         WHERE isactive AND shouldhaveshards AND noderole OPERATOR(pg_catalog.=) 'primary' \
           AND groupid OPERATOR(pg_catalog.<>) 0 \
         ORDER BY nodename, nodeport",
    )
    .load(conn)
    .map_err(Error::from)?;
    Ok(rows
        .into_iter()
        .map(|r| Node::new(r.host, u16::try_from(r.port).unwrap_or(0)))
        .collect())
}

/// Makes the existing `schema` a distributed schema (`citus_schema_distribute`): its tables
/// become single-shard tables placed together on one worker. For a tenant created before
/// Citus was turned on; new tenants are distributed when they are provisioned.
///
/// # Errors
///
/// [`Error::CitusMissing`], [`Error::SchemaNotFound`], [`Error::Database`] when Citus
/// refuses (a foreign key to another tenant schema, a table Citus cannot distribute).
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// # let mut conn = PgConnection::establish("postgres://postgres@coordinator/app")?;
/// pgschemas_diesel::citus::distribute_schema(&mut conn, &"legacy_tenant")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn distribute_schema<S: Schema + ?Sized>(conn: &mut PgConnection, schema: &S) -> Result<()> {
    let name = existing(conn, schema)?;
    diesel::sql_query(format!(
        "SELECT pg_catalog.citus_schema_distribute({}::regnamespace)",
        quote_literal(&name.quoted())
    ))
    .execute(conn)
    .map_err(|e| Error::db(name.as_str(), e))?;
    Ok(())
}

/// Moves the distributed `schema`, all its tables together, to the worker `to`
/// (`citus_schema_move`). Nothing to do when it is there already. With
/// [`TransferMode::Auto`] the tenant keeps serving reads and writes through the coordinator
/// while its rows are copied; they pause only for the switch-over.
///
/// # Errors
///
/// [`Error::CitusMissing`], [`Error::SchemaNotFound`], [`Error::NotDistributed`] (not a
/// distributed schema), [`Error::UnknownNode`] (`to` is not an active worker, see
/// [`workers`]), [`Error::Database`] when the move fails.
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::citus::{self, Node, TransferMode};
/// # let mut conn = PgConnection::establish("postgres://postgres@coordinator/app")?;
/// citus::move_tenant(&mut conn, &"customer1", &Node::new("10.0.0.3", 5432), TransferMode::Auto)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn move_tenant<S: Schema + ?Sized>(
    conn: &mut PgConnection,
    schema: &S,
    to: &Node,
    mode: TransferMode,
) -> Result<()> {
    let name = existing(conn, schema)?;
    let Some(current) = placement(conn, &name)? else {
        return Err(Error::NotDistributed {
            schema: name.to_string(),
        });
    };
    if !workers(conn)?.contains(to) {
        return Err(Error::UnknownNode {
            node: to.to_string(),
        });
    }
    if current.node.as_ref() == Some(to) || current.node.is_none() {
        // already there, or no table to move yet
        return Ok(());
    }
    diesel::sql_query(format!(
        "SELECT pg_catalog.citus_schema_move({}::regnamespace, $1, $2, '{}')",
        quote_literal(&name.quoted()),
        mode.as_sql()
    ))
    .bind::<Text, _>(&to.host)
    .bind::<Integer, _>(i32::from(to.port))
    .execute(conn)
    .map_err(|e| Error::db(name.as_str(), e))?;
    Ok(())
}

/// `schema` validated, after checking that Citus is installed and the schema exists.
fn existing<S: Schema + ?Sized>(conn: &mut PgConnection, schema: &S) -> Result<SchemaName> {
    let name = SchemaName::new(schema.schema_name())?;
    require(conn)?;
    if !crate::lifecycle::schema_exists(conn, &name)? {
        return Err(Error::SchemaNotFound {
            schema: name.to_string(),
        });
    }
    Ok(name)
}

/// A migration source whose migrations send their SQL one statement at a time
/// ([`statement_wise`]); what the crate migrates with when [`Config::citus`] is on.
///
/// [`Config::citus`]: crate::Config::citus
pub(crate) struct ByStatement<S>(pub(crate) S);

impl<S> MigrationSource<Pg> for ByStatement<S>
where
    S: Deref,
    S::Target: MigrationSource<Pg>,
{
    fn migrations(&self) -> migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        Ok(statement_wise(self.0.migrations()?))
    }
}

/// `list`, each migration sending its SQL one statement at a time: Citus propagates some DDL
/// on a distributed schema's tables (`CREATE INDEX`) to the workers with the text of the
/// whole query it came in, which the workers refuse when that text holds several statements
/// ("cannot insert multiple commands into a prepared statement"). A migration's batch is
/// recorded, split at its top-level semicolons and sent statement by statement, in the same
/// transaction. A migration that needs the connection itself (a custom [`Migration`] that
/// downcasts it) gets an error.
pub(crate) fn statement_wise(list: Vec<Box<dyn Migration<Pg>>>) -> Vec<Box<dyn Migration<Pg>>> {
    list.into_iter()
        .map(|m| Box::new(StatementWise(m)) as Box<dyn Migration<Pg>>)
        .collect()
}

struct StatementWise(Box<dyn Migration<Pg>>);

impl StatementWise {
    /// Records what `step` sends, then sends it to `conn` statement by statement.
    fn replay(
        conn: &mut dyn BoxableConnection<Pg>,
        step: impl FnOnce(&mut Recorder) -> migration::Result<()>,
    ) -> migration::Result<()> {
        let mut recorder = Recorder::default();
        step(&mut recorder)?;
        for batch in &recorder.batches {
            execute(conn, batch, true)?;
        }
        Ok(())
    }
}

impl Migration<Pg> for StatementWise {
    fn run(&self, conn: &mut dyn BoxableConnection<Pg>) -> migration::Result<()> {
        Self::replay(conn, |recorder| self.0.run(recorder))
    }

    fn revert(&self, conn: &mut dyn BoxableConnection<Pg>) -> migration::Result<()> {
        Self::replay(conn, |recorder| self.0.revert(recorder))
    }

    fn metadata(&self) -> &dyn MigrationMetadata {
        self.0.metadata()
    }

    fn name(&self) -> &dyn MigrationName {
        self.0.name()
    }
}

/// Sends `sql` in one round trip, or with `by_statement` one top-level statement at a time
/// (what a script sent to a Citus coordinator needs: see [`statement_wise`]).
pub(crate) fn execute<C: SimpleConnection + ?Sized>(
    conn: &mut C,
    sql: &str,
    by_statement: bool,
) -> QueryResult<()> {
    if !by_statement {
        return conn.batch_execute(sql);
    }
    for statement in statements::split(sql) {
        conn.batch_execute(statement)?;
    }
    Ok(())
}

/// A stand-in connection that only records the batches a migration sends.
#[derive(Default)]
struct Recorder {
    batches: Vec<String>,
}

impl SimpleConnection for Recorder {
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        self.batches.push(query.to_owned());
        Ok(())
    }
}

impl BoxableConnection<Pg> for Recorder {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_parse_and_print() {
        for (text, host, port) in [
            ("a:1", "a", 1),
            ("10.0.0.1:5432", "10.0.0.1", 5432),
            ("[::1]:5432", "[::1]", 5432),
        ] {
            let node = Node::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(node, Node::new(host, port));
            assert_eq!(node.to_string(), text);
        }
        for bad in ["", "a", "a:", ":1", "a:x", "a:70000"] {
            assert!(Node::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_placement_query_qualifies_its_operators() {
        let sql = placements_sql("");
        assert!(!sql.contains(" = "), "{sql}");
        assert!(sql.contains("pg_catalog.pg_dist_schema"));
    }
}
