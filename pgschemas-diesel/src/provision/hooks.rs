//! The hooks a provisioner runs inside its transactions (django-pgschemas' signals).

use diesel::PgConnection;

use crate::error::{Error, HookName, Result};
use crate::name::SchemaName;

/// The error a provisioning hook returns to veto the operation; anything that converts
/// (`?` on a Diesel error, a [`crate::Error`], a `String`) will do.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type Hook = Box<dyn Fn(&mut PgConnection, &SchemaName) -> Result<(), HookError> + Send + Sync>;

/// The hooks of a provisioner, each one optional.
#[derive(Default)]
pub(super) struct Hooks {
    /// After a tenant's schema is migrated or cloned.
    pub(super) after_sync: Option<Hook>,
    /// After a tenant's rows are written without a schema.
    pub(super) needs_sync: Option<Hook>,
    /// Before a tenant's schema is dropped.
    pub(super) before_drop: Option<Hook>,
}

/// Runs `hook`, if set, on `name`; its error becomes [`Error::Hook`] naming it `which`.
pub(super) fn run_hook(
    hook: &Option<Hook>,
    which: HookName,
    conn: &mut PgConnection,
    name: &SchemaName,
) -> Result<()> {
    match hook {
        Some(h) => h(conn, name).map_err(|source| Error::Hook {
            schema: name.to_string(),
            hook: which,
            source,
        }),
        None => Ok(()),
    }
}
