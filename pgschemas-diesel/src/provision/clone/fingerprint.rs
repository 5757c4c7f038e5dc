//! The identity of a source schema's state, checked before a cached script is replayed.

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Nullable, Oid, Text};

use crate::error::{Error, Result};
use crate::name::SchemaName;

use super::LEDGER;

/// The identity of a source schema's state: its OID and its migration ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(super) oid: u32,
    pub(super) has_ledger: bool,
    /// The ledger's versions in order, as stored (when read).
    ledger: Option<Vec<String>>,
}

#[derive(QueryableByName)]
struct FingerprintRow {
    #[diesel(sql_type = Nullable<Oid>)]
    oid: Option<u32>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    ledger: Option<Vec<String>>,
    #[diesel(sql_type = Bool)]
    has_ledger: bool,
}

impl Fingerprint {
    /// Reads the source's fingerprint, its ledger included when it has one; `None` when the
    /// schema does not exist.
    pub(super) fn read_whole(conn: &mut PgConnection, src: &SchemaName) -> Result<Option<Self>> {
        match Self::read(conn, src, false)? {
            Some(f) if f.has_ledger => Self::read(conn, src, true),
            other => Ok(other),
        }
    }

    /// Reads the source's fingerprint in one round trip; `None` when the schema does not
    /// exist. With `read_ledger`, the ledger table must exist (reading it fails otherwise).
    pub(super) fn read(
        conn: &mut PgConnection,
        src: &SchemaName,
        read_ledger: bool,
    ) -> Result<Option<Self>> {
        let ledger_expr = if read_ledger {
            format!(
                "ARRAY(SELECT version::pg_catalog.text FROM {}.{LEDGER} \
                 WHERE version IS NOT NULL ORDER BY version)",
                src.quoted()
            )
        } else {
            "NULL::pg_catalog.text[]".to_owned()
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

    /// The migration versions of the ledger, in order, exactly as stored (none when it was
    /// not read).
    pub(super) fn migrations(&self) -> Vec<String> {
        self.ledger.clone().unwrap_or_default()
    }
}
