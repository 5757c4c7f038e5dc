//! The migration lock of a schema: the advisory-lock calls every user of it sends (migrating,
//! provisioning, cloning, dropping), and the guard a migration run holds it with.

use std::collections::BTreeSet;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

use super::ledger::{create_ledger_sql, read_known_table, read_ledger};
use crate::error::{MigrationError, MigrationErrorKind};
use crate::name::{SchemaName, quote_literal};
use crate::transaction;

/// The first key of the advisory lock a schema's migration run holds (the second is
/// `hashtext(<schema name>)`), so that two processes never migrate one schema at once.
///
/// Advisory locks are per database, so the lock is keyed by (database, schema). It shows up
/// in `pg_locks` as `locktype = 'advisory'`, `classid = 1346851661`, `objsubid = 2`. Two
/// schemas whose names share a `hashtext` only wait for each other; that is harmless.
///
/// ```
/// assert_eq!(pgschemas_diesel::migrate::MIGRATION_LOCK_CLASS, 0x5047_534D); // "PGSM"
/// ```
pub const MIGRATION_LOCK_CLASS: i32 = 0x5047_534D;

/// What to do with a schema's migration lock: PostgreSQL's advisory-lock function to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockFn {
    /// `pg_advisory_lock`: held until unlocked or the session ends (a migration run outside
    /// a transaction).
    Session,
    /// `pg_advisory_xact_lock`: held until the transaction ends.
    Transaction,
    /// `pg_advisory_xact_lock_shared`: held until the transaction ends, alongside other
    /// shared holders (reading a reference schema while cloning it).
    SharedTransaction,
    /// `pg_advisory_unlock`: releases the [`Session`](Self::Session) form.
    Unlock,
}

impl LockFn {
    fn name(self) -> &'static str {
        match self {
            Self::Session => "pg_advisory_lock",
            Self::Transaction => "pg_advisory_xact_lock",
            Self::SharedTransaction => "pg_advisory_xact_lock_shared",
            Self::Unlock => "pg_advisory_unlock",
        }
    }
}

/// The call that takes (or releases) `schema`'s migration lock, an SQL expression keyed by
/// ([`MIGRATION_LOCK_CLASS`], `hashtext(schema)`).
pub(crate) fn lock_call(schema: &SchemaName, f: LockFn) -> String {
    format!(
        "pg_catalog.{}({MIGRATION_LOCK_CLASS}, pg_catalog.hashtext({}))",
        f.name(),
        quote_literal(schema.as_str())
    )
}

/// The statement that takes (or releases) `schema`'s migration lock.
pub(crate) fn lock_statement(schema: &SchemaName, f: LockFn) -> String {
    format!("SELECT {}", lock_call(schema, f))
}

/// What the caller knows of the ledger before the lock: how [`SchemaLock::take`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LedgerRead {
    /// Nothing: the full read `list`, `doctor` and plans make (every catalog fact first).
    Unknown,
    /// A batched read just found it a readable table: read it directly, with the facts that
    /// must still hold checked beside the read (see `ledger::read_known_table`).
    KnownTable,
}

#[derive(QueryableByName)]
struct LockRow {
    #[diesel(sql_type = Nullable<Text>)]
    current: Option<String>,
}

/// The schema's migration lock, held on `conn`, with the ledger ready and read.
///
/// The session form is released on [`release`](Self::release) or when the guard drops
/// (error paths); the transaction form ends with the transaction.
pub(crate) struct SchemaLock<'a> {
    conn: &'a mut PgConnection,
    schema: &'a SchemaName,
    session: bool,
    /// The versions in the schema's ledger when the lock was granted.
    pub(crate) applied: BTreeSet<String>,
}

impl<'a> SchemaLock<'a> {
    /// Takes the lock (the transaction form when `in_transaction`), checks that objects
    /// would be created in `schema`, and reads its ledger, creating it when there is none: a
    /// ledger that cannot be read ([`MigrationErrorKind::Ledger`]) is an error, before
    /// anything is applied.
    pub(crate) fn take(
        conn: &'a mut PgConnection,
        schema: &'a SchemaName,
        in_transaction: bool,
        known: LedgerRead,
    ) -> Result<Self, MigrationError> {
        let lock = if in_transaction {
            LockFn::Transaction
        } else {
            LockFn::Session
        };
        // From here on the guard unlocks, also when the statement below fails after the
        // lock was granted (unlocking a lock not held only warns).
        let mut guard = Self {
            conn,
            schema,
            session: !in_transaction,
            applied: BTreeSet::new(),
        };
        // The function in FROM runs first: the check reads the path after the lock is
        // granted.
        let LockRow { current } = diesel::sql_query(format!(
            "SELECT pg_catalog.current_schema()::text AS current FROM {}",
            lock_call(schema, lock)
        ))
        .get_result(guard.conn())
        .map_err(|e| MigrationError::db(schema, e))?;
        if current.as_deref() != Some(schema.as_str()) {
            return Err(MigrationError::new(
                schema,
                MigrationErrorKind::NotCreationSchema { current },
            ));
        }
        // The read `list`, `doctor` and plans make, for this schema: what they cannot read, no
        // run applies anything to.
        let state = match known {
            // Outside a transaction only: a failed statement then aborts nothing.
            LedgerRead::KnownTable if !in_transaction => read_known_table(guard.conn(), schema)?,
            _ => read_ledger(guard.conn(), schema)?
                .ok_or_else(|| MigrationError::new(schema, MigrationErrorKind::SchemaNotFound))?,
        };
        match state.applied(schema)? {
            Some(applied) => guard.applied = applied,
            None => guard
                .conn()
                .batch_execute(&create_ledger_sql(schema))
                .map_err(|e| MigrationError::db(schema, e))?,
        }
        Ok(guard)
    }

    /// The connection the lock is held on.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn
    }

    /// Releases the session lock, reporting a failure.
    pub(crate) fn release(mut self) -> Result<(), MigrationError> {
        let result = self.unlock();
        self.session = false;
        result
    }

    fn unlock(&mut self) -> Result<(), MigrationError> {
        if !self.session {
            return Ok(());
        }
        let sql = lock_statement(self.schema, LockFn::Unlock);
        self.conn.batch_execute(&sql).map_err(|e| {
            // A session lock that outlives the run would block every later migration of
            // this schema: make sure the connection is discarded (which ends the session).
            transaction::mark_broken(self.conn);
            MigrationError::db(self.schema, e)
        })
    }
}

impl Drop for SchemaLock<'_> {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lock_call_is_keyed_by_class_and_schema() {
        let t1 = SchemaName::new("t1").unwrap_or_else(|e| panic!("{e}"));
        let key = "(1346851661, pg_catalog.hashtext('t1'))";
        for (f, name) in [
            (LockFn::Session, "pg_advisory_lock"),
            (LockFn::Transaction, "pg_advisory_xact_lock"),
            (LockFn::SharedTransaction, "pg_advisory_xact_lock_shared"),
            (LockFn::Unlock, "pg_advisory_unlock"),
        ] {
            assert_eq!(lock_call(&t1, f), format!("pg_catalog.{name}{key}"));
        }
        assert_eq!(
            lock_statement(&t1, LockFn::Transaction),
            format!("SELECT pg_catalog.pg_advisory_xact_lock{key}")
        );
    }
}
