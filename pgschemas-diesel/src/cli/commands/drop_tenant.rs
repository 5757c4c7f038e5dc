//! `drop-tenant`: a dynamic tenant's rows deleted, with `--force` its schema dropped too.

use super::common::no_rows;
use super::{CliResult, Ctx};
use crate::cli::Outcome;
use crate::cli::args::DropTenantArgs;
use crate::error::Error;
use crate::name::SchemaName;

pub(super) fn drop_tenant(ctx: &mut Ctx<'_>, args: &DropTenantArgs) -> CliResult {
    let app = ctx.app;
    let rows = app.rows.as_ref().ok_or_else(no_rows)?;
    let schema = SchemaName::new(&args.schema)?;
    let mut conn = ctx.connect()?;
    let provisioner = app.provisioner()?;
    let dropped = provisioner.drop_tenant(&mut conn, schema.as_str(), args.force, |conn| {
        rows.delete(conn, &schema)?
            .ok_or_else(|| Error::TenantNotFound {
                schema: schema.to_string(),
            })
    })?;
    writeln!(
        ctx.out,
        "deleted tenant {} (schema {:?}); {}",
        dropped.value,
        schema.as_str(),
        if dropped.schema_dropped {
            "schema dropped".to_owned()
        } else {
            "schema kept (pass --force to drop it)".to_owned()
        }
    )?;
    Ok(Outcome::Success)
}
