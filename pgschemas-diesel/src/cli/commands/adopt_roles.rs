//! `adopt-roles`: every tenant schema given its role, for an install from before the
//! per-tenant roles mode.

use super::{CliResult, Ctx};
use crate::cli::Outcome;
use crate::name::SchemaName;
use crate::roles::{Adopted, adopt_roles as adopt};

pub(super) fn adopt_roles(ctx: &mut Ctx<'_>) -> CliResult {
    let app = ctx.app;
    let mut conn = ctx.connect()?;
    let rows = ctx.catalog(&mut conn)?;
    let mut schemas: Vec<SchemaName> = app
        .config
        .static_tenants()
        .iter()
        .map(|t| t.name().clone())
        .chain(rows.tenants.iter().map(|t| t.schema.clone()))
        .filter(|s| crate::lifecycle::schema_exists(&mut conn, s).unwrap_or(true))
        .collect();
    schemas.sort();
    schemas.dedup();
    let results = adopt(&mut conn, &app.config, &schemas)?;
    let (mut created, mut existing, mut failed) = (0, 0, 0);
    for (schema, result) in &results {
        match result {
            Ok(Adopted::Created) => created += 1,
            Ok(_) => existing += 1,
            Err(e) => {
                failed += 1;
                writeln!(ctx.out, "{}: {}", schema.as_str(), e.report())?;
            }
        }
    }
    writeln!(
        ctx.out,
        "adopted roles for {} schemas: {created} created, {existing} already there, {failed} failed{}",
        results.len(),
        if failed > 0 {
            " (fix them and run adopt-roles again)"
        } else {
            ""
        }
    )?;
    Ok(if failed == 0 {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
