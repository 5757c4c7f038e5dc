//! What the soak counts and reports, and the direct connection that says what is really on
//! disk.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{Failure, SEED, Settings, classify};

/// Failure details kept for the report; the counts go on past it.
const MAX_DETAILS: usize = 20;

/// What a soak run did and found.
#[derive(Debug)]
pub struct Outcome {
    /// The run's size.
    pub settings: Settings,
    /// Wall time of the client threads.
    pub seconds: f64,
    /// Everything the client threads counted, merged.
    pub tally: Tally,
    /// Backends the chaos thread terminated.
    pub kills: u64,
    /// Threads that did not finish by the deadline, with what they were doing.
    pub hung: Vec<String>,
}

impl Outcome {
    /// Every reason this run failed: wrong rows, count mismatches, errors a killed backend
    /// cannot explain, stray panics, hung threads.
    pub fn failures(&self) -> Vec<String> {
        let t = &self.tally;
        let mut out = Vec::new();
        if t.wrong_rows > 0 {
            out.push(format!("{} wrong rows", t.wrong_rows));
        }
        if t.count_mismatches > 0 {
            out.push(format!("{} count mismatches", t.count_mismatches));
        }
        if t.unexpected > 0 {
            out.push(format!("{} unexpected errors or panics", t.unexpected));
        }
        out.extend(self.hung.iter().map(|h| format!("hung: {h}")));
        out.extend(t.details.iter().cloned());
        out
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        let t = &self.tally;
        write!(
            f,
            "soak: {} transactions in {:.1} s ({} threads, {} server connections, {} tenants): \
             {} reads, {} writes committed, {} rolled back by Err, {} by panic; errors {:?}; \
             {} in doubt ({} had committed); {} backends killed; {} wrong rows, {} count \
             mismatches, {} unexpected, {} hung threads",
            t.transactions,
            self.seconds,
            s.threads,
            s.server_connections,
            s.tenants,
            t.reads,
            t.writes,
            t.rolled_back_err,
            t.rolled_back_panic,
            t.errors,
            t.in_doubt,
            t.in_doubt_committed,
            self.kills,
            t.wrong_rows,
            t.count_mismatches,
            t.unexpected,
            self.hung.len(),
        )
    }
}

/// Counts of one client thread, or of all of them merged.
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
    /// Writes whose `COMMIT` failed after the closure finished, settled by a direct look.
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
    /// Per tenant, the `n` of every row this thread committed.
    pub committed: Vec<Vec<i64>>,
}

impl Tally {
    pub(super) fn new(tenants: usize) -> Self {
        Self {
            committed: vec![Vec::new(); tenants],
            ..Self::default()
        }
    }

    pub(super) fn merge(&mut self, other: Tally) {
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

    /// Counts an error by kind; one a killed backend cannot explain is also a failure.
    pub(super) fn error(&mut self, who: &str, e: &Failure) {
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

    pub(super) fn wrong(&mut self, rows: u64, detail: String) {
        self.wrong_rows += rows;
        self.detail(detail);
    }

    pub(super) fn mismatch(&mut self, detail: String) {
        self.count_mismatches += 1;
        self.detail(detail);
    }

    pub(super) fn fail(&mut self, detail: String) {
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
    pub(super) fn connect(url: &str) -> Self {
        let conn = PgConnection::establish(url)
            .unwrap_or_else(|e| panic!("cannot connect to the soak's database directly: {e}"));
        Self { conn }
    }

    pub(super) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Whether `schema.items` holds row `n`.
    pub(super) fn row_exists(&mut self, schema: &str, n: i64) -> QueryResult<bool> {
        // `schema` is one of the soak's own names (`t<i>`)
        let rows = diesel::sql_query(format!("select tenant, n from {schema}.items where n = $1"))
            .bind::<BigInt, _>(n)
            .load::<Row>(&mut self.conn)?;
        Ok(!rows.is_empty())
    }

    /// Checks that each tenant's table holds exactly its seed rows and the rows the threads
    /// committed to it, all tagged with its name, and that `public` holds only its seed.
    pub(super) fn check_all(&mut self, tenants: &[String], tally: &mut Tally) {
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
