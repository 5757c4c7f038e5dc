//! What a soak behind PgBouncer runs, counts and checks, shared by the sync fault soak
//! (`driver`) and the async one (`tests/async_pgbouncer.rs`): the schemas, the statements and
//! the rows they return, the error classes, the tally, and the direct connection that says
//! what is really on disk.
//!
//! Tenants `t0`, `t1`, ... each have `items(tenant, n)` whose `tenant` column defaults to the
//! schema's own name, so a row's tag says which table it landed in; `public.items` has the
//! same shape, tagged `public`, so a fall-through to the shared schema reads or writes rows
//! tagged `public`. Each worker numbers its rows in a range of its own, so it knows exactly
//! which rows it committed.

use std::collections::{BTreeMap, BTreeSet};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Text};
use pgschemas_diesel::Error;
use pgschemas_diesel::testing::url_with_database;

/// Rows each tenant (and `public`) starts with, `n` = 1..=SEED.
pub const SEED: i64 = 5;
/// The direct connections of the soak itself, which a chaos thread spares.
pub const ORACLE_APP: &str = "pgschemas_soak_oracle";
/// A worker's rows have `n` in `[(worker + 1) << WORKER_SHIFT, (worker + 2) << WORKER_SHIFT)`.
const WORKER_SHIFT: u32 = 32;
/// Failure details kept for the report; the counts go on past it.
const MAX_DETAILS: usize = 20;

/// A read of the tenant's rows grouped by tag, with how many of them are the worker's own
/// (`$1 <= n < $2`): it returns [`Group`]s.
pub const READ_SQL: &str = "select tenant, count(*) as rows, \
     count(*) filter (where n >= $1 and n < $2) as own \
     from items group by tenant order by tenant";
/// Inserts row `$1`, returning its [`Tag`].
pub const INSERT_SQL: &str = "insert into items (n) values ($1) returning tenant";
/// Reads row `$1` back: its [`Tag`]s.
pub const READ_BACK_SQL: &str = "select tenant from items where n = $1";

/// The range `[lo, hi)` of row numbers of worker `worker`.
pub fn own_rows(worker: usize) -> (i64, i64) {
    (
        (worker as i64 + 1) << WORKER_SHIFT,
        (worker as i64 + 2) << WORKER_SHIFT,
    )
}

/// The URL of `database` on the server of `server_url`, for the soak's own connections.
pub fn direct_url(server_url: &str, database: &str) -> String {
    let url = url_with_database(server_url, database);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={ORACLE_APP}")
}

/// A row of [`READ_SQL`].
#[derive(QueryableByName)]
pub struct Group {
    #[diesel(sql_type = Text)]
    pub tenant: String,
    #[diesel(sql_type = BigInt)]
    pub rows: i64,
    #[diesel(sql_type = BigInt)]
    pub own: i64,
}

/// A row of [`INSERT_SQL`] and [`READ_BACK_SQL`].
#[derive(QueryableByName)]
pub struct Tag {
    #[diesel(sql_type = Text)]
    pub tenant: String,
}

/// What a write saw inside its transaction: the tag its row got, and the tags read back.
pub struct Written {
    pub tag: String,
    pub read_back: Vec<String>,
}

/// A client closure's error.
pub enum Failure {
    /// From the pool or the database.
    Lib(Error),
    /// The closure's own error, raised on purpose after writing.
    Intended,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Lib(e)
    }
}

impl From<DieselError> for Failure {
    fn from(e: DieselError) -> Self {
        Failure::Lib(e.into())
    }
}

/// Whether an error is one a killed backend explains, and its name in the counts.
pub fn classify(e: &Failure) -> (String, bool) {
    let Failure::Lib(e) = e else {
        return ("intended error where none was due".to_owned(), false);
    };
    match e {
        Error::Pool(_) => ("pool".to_owned(), true),
        Error::Connection(_) => ("connect".to_owned(), true),
        Error::Database { source, .. } => match source {
            DieselError::DatabaseError(
                kind @ (DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand),
                _,
            ) => (format!("{kind:?}"), true),
            DieselError::DatabaseError(kind, _) => (format!("database {kind:?}"), false),
            other => (format!("diesel {other:?}"), false),
        },
        other => (format!("{other:?}"), false),
    }
}

/// Counts of one worker, or of all of them merged.
#[derive(Debug, Default)]
pub struct Tally {
    /// Transactions started.
    pub transactions: u64,
    /// Reads that returned.
    pub reads: u64,
    /// Writes that committed (and said so).
    pub writes: u64,
    /// Writes rolled back because their closure returned `Err`.
    pub rolled_back_err: u64,
    /// Writes rolled back because their closure panicked.
    pub rolled_back_panic: u64,
    /// Errors, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Writes whose `COMMIT` failed (or was cancelled) after the closure finished, settled by
    /// a direct look.
    pub in_doubt: u64,
    /// Of those, the ones that had committed.
    pub in_doubt_committed: u64,
    /// Rows seen where they must not be: another tenant's, `public`'s, a rolled-back one.
    pub wrong_rows: u64,
    /// Reads (or final looks) whose counts differ from the committed writes.
    pub count_mismatches: u64,
    /// Errors a killed backend does not explain, and panics the soak did not raise.
    pub unexpected: u64,
    /// What went wrong, first few.
    pub details: Vec<String>,
    /// Per tenant, the `n` of every row this worker committed.
    pub committed: Vec<Vec<i64>>,
}

impl Tally {
    pub fn new(tenants: usize) -> Self {
        Self {
            committed: vec![Vec::new(); tenants],
            ..Self::default()
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.transactions += other.transactions;
        self.reads += other.reads;
        self.writes += other.writes;
        self.rolled_back_err += other.rolled_back_err;
        self.rolled_back_panic += other.rolled_back_panic;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.in_doubt += other.in_doubt;
        self.in_doubt_committed += other.in_doubt_committed;
        self.wrong_rows += other.wrong_rows;
        self.count_mismatches += other.count_mismatches;
        self.unexpected += other.unexpected;
        for d in other.details {
            self.detail(d);
        }
        for (mine, theirs) in self.committed.iter_mut().zip(other.committed) {
            mine.extend(theirs);
        }
    }

    /// Every reason the counts fail a run: wrong rows, count mismatches, errors a killed
    /// backend cannot explain, stray panics; then the first details.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.wrong_rows > 0 {
            out.push(format!("{} wrong rows", self.wrong_rows));
        }
        if self.count_mismatches > 0 {
            out.push(format!("{} count mismatches", self.count_mismatches));
        }
        if self.unexpected > 0 {
            out.push(format!("{} unexpected errors or panics", self.unexpected));
        }
        out.extend(self.details.iter().cloned());
        out
    }

    /// Counts an error by kind; one a killed backend cannot explain is also a failure.
    pub fn error(&mut self, who: &str, e: &Failure) {
        let (kind, expected) = classify(e);
        if !expected {
            let message = match e {
                Failure::Lib(e) => e.to_string(),
                Failure::Intended => kind.clone(),
            };
            self.fail(format!("{who}: unexpected error ({kind}): {message}"));
        }
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Checks a read of `tenant`'s rows ([`READ_SQL`]): one group, the tenant's, holding
    /// between `own.0` and `own.1` of the worker's rows (both included) and the seed.
    pub fn check_read(&mut self, who: &str, tenant: &str, groups: &[Group], own: (i64, i64)) {
        self.reads += 1;
        let (lo, hi) = own;
        let mut seen_own = false;
        for g in groups {
            if g.tenant != tenant {
                self.wrong(
                    g.rows as u64,
                    format!("{who}: {} rows tagged {:?}", g.rows, g.tenant),
                );
            } else {
                seen_own = true;
                if !(lo..=hi).contains(&g.own) || g.rows < SEED + lo {
                    let expected = if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo} to {hi}")
                    };
                    self.mismatch(format!(
                        "{who}: {} rows, {} of them this worker's; expected {expected} of this \
                         worker's and at least {}",
                        g.rows,
                        g.own,
                        SEED + lo
                    ));
                }
            }
        }
        if !seen_own {
            self.mismatch(format!("{who}: no row tagged {tenant:?}"));
        }
    }

    /// Checks what a write of row `n` in `tenant` saw; false (and counted) when the row is
    /// not the tenant's, which the final look then reports where it landed.
    pub fn check_written(&mut self, who: &str, tenant: &str, n: i64, w: &Written) -> bool {
        if w.tag == tenant && w.read_back == [tenant] {
            return true;
        }
        self.wrong(
            1,
            format!(
                "{who}: row {n} was tagged {:?} and read back as {:?}",
                w.tag, w.read_back
            ),
        );
        false
    }

    pub fn wrong(&mut self, rows: u64, detail: String) {
        self.wrong_rows += rows;
        self.detail(detail);
    }

    pub fn mismatch(&mut self, detail: String) {
        self.count_mismatches += 1;
        self.detail(detail);
    }

    pub fn fail(&mut self, detail: String) {
        self.unexpected += 1;
        self.detail(detail);
    }

    fn detail(&mut self, detail: String) {
        if self.details.len() < MAX_DETAILS {
            self.details.push(detail);
        }
    }
}

/// A direct connection to the database, around PgBouncer and the pool under test.
pub struct Oracle {
    conn: PgConnection,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    tenant: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Oracle {
    /// A connection to `url` (a [`direct_url`]).
    ///
    /// # Panics
    ///
    /// When it cannot connect.
    pub fn connect(url: &str) -> Self {
        let conn = PgConnection::establish(url)
            .unwrap_or_else(|e| panic!("cannot connect to the soak's database directly: {e}"));
        Self { conn }
    }

    /// Creates `tenants`' schemas and `public.items`, each with its seed rows.
    ///
    /// # Panics
    ///
    /// When the statements fail.
    pub fn create_schemas(&mut self, tenants: &[String]) {
        let mut sql = String::new();
        for schema in tenants.iter().map(String::as_str).chain(["public"]) {
            // names are the soak's own (`t<i>`, `public`): plain identifiers
            sql.push_str(&format!(
                "create schema if not exists {schema};
                 create table {schema}.items (tenant text not null default '{schema}', n bigint not null);
                 create unique index on {schema}.items (n);
                 insert into {schema}.items (n) select generate_series(1, {SEED});"
            ));
        }
        self.conn
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("cannot create the soak's schemas: {e}"));
    }

    /// Whether `schema.items` holds row `n`.
    pub fn row_exists(&mut self, schema: &str, n: i64) -> QueryResult<bool> {
        // `schema` is one of the soak's own names (`t<i>`)
        let rows = diesel::sql_query(format!("select tenant, n from {schema}.items where n = $1"))
            .bind::<BigInt, _>(n)
            .load::<Row>(&mut self.conn)?;
        Ok(!rows.is_empty())
    }

    /// Checks that each tenant's table holds exactly its seed rows and the rows the workers
    /// committed to it, all tagged with its name, and that `public` holds only its seed.
    pub fn check_all(&mut self, tenants: &[String], tally: &mut Tally) {
        let schemas: Vec<(&str, Vec<i64>)> = tenants
            .iter()
            .map(String::as_str)
            .zip(tally.committed.clone())
            .chain([("public", Vec::new())])
            .collect();
        for (schema, committed) in schemas {
            let rows = match diesel::sql_query(format!("select tenant, n from {schema}.items"))
                .load::<Row>(&mut self.conn)
            {
                Ok(rows) => rows,
                Err(e) => {
                    tally.fail(format!("cannot read {schema}.items directly: {e}"));
                    continue;
                }
            };
            let want: BTreeSet<i64> = (1..=SEED).chain(committed).collect();
            let have: BTreeSet<i64> = rows.iter().map(|r| r.n).collect();
            let tagged_wrong: Vec<&Row> = rows.iter().filter(|r| r.tenant != schema).collect();
            if let Some(first) = tagged_wrong.first() {
                tally.wrong(
                    tagged_wrong.len() as u64,
                    format!(
                        "{schema}.items holds {} rows tagged otherwise, e.g. row {} tagged {:?}",
                        tagged_wrong.len(),
                        first.n,
                        first.tenant
                    ),
                );
            }
            let extra: Vec<i64> = have.difference(&want).copied().collect();
            if !extra.is_empty() {
                tally.wrong(
                    extra.len() as u64,
                    format!(
                        "{schema}.items holds {} rows no one committed there: {:?}",
                        extra.len(),
                        &extra[..extra.len().min(10)]
                    ),
                );
            }
            let missing: Vec<i64> = want.difference(&have).copied().collect();
            if !missing.is_empty() {
                tally.mismatch(format!(
                    "{schema}.items lacks {} committed rows: {:?}",
                    missing.len(),
                    &missing[..missing.len().min(10)]
                ));
            }
        }
    }
}
