//! Reading a [`MigrationSource`]: its migrations, sorted by version, read once per run.

use std::collections::BTreeSet;
use std::error::Error as StdError;

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;

use crate::error::{Error, Result};
use crate::error::{MigrationError, MigrationErrorKind};
use crate::name::SchemaName;

/// The migrations of a source, loaded once.
pub(crate) type Migrations = Vec<Box<dyn Migration<Pg>>>;

/// `source`'s migrations, sorted by version.
fn read<S>(source: &S) -> Result<Migrations, Box<dyn StdError + Send + Sync>>
where
    S: MigrationSource<Pg> + ?Sized,
{
    let mut list = source.migrations()?;
    list.sort_by(|a, b| a.name().version().cmp(&b.name().version()));
    Ok(list)
}

/// `source`'s migrations, sorted by version, for migrating `schema` (which a failure names).
pub(crate) fn read_migrations<S>(
    schema: &SchemaName,
    source: &S,
) -> Result<Migrations, MigrationError>
where
    S: MigrationSource<Pg> + ?Sized,
{
    read(source).map_err(|e| MigrationError::new(schema, MigrationErrorKind::Source(e)))
}

/// The versions of `list`, in its order.
pub(crate) fn versions(list: &[Box<dyn Migration<Pg>>]) -> Vec<String> {
    list.iter()
        .map(|m| m.name().version().to_string())
        .collect()
}

/// The versions a migration source holds.
pub(crate) fn source_versions<S: MigrationSource<Pg> + ?Sized>(
    source: &S,
) -> Result<BTreeSet<String>> {
    let list = read(source).map_err(Error::MigrationSource)?;
    Ok(versions(&list).into_iter().collect())
}
