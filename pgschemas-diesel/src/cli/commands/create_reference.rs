//! `create-reference`: the clone reference schema, with every tenant migration.

use super::common::versions;
use super::{CliError, CliResult, Ctx};
use crate::cli::Outcome;
use crate::cli::args::CreateReferenceArgs;
use crate::cli::output::plural;
use crate::error::Error;

pub(super) fn create_reference(ctx: &mut Ctx<'_>, args: &CreateReferenceArgs) -> CliResult {
    let app = ctx.app;
    let Some(reference) = app.config.clone_reference() else {
        return Err(CliError::Failed(
            "there is no reference schema configured: set one with ConfigBuilder::clone_reference"
                .to_owned(),
        ));
    };
    let mut conn = ctx.connect()?;
    ctx.ensure_shared_migrated(&mut conn)?;
    let provisioner = app.provisioner()?;
    let count = versions(Some(&app.tenant_migrations)).map_or(0, |v| v.len());
    if args.recreate {
        provisioner.recreate_reference(&mut conn)?;
        writeln!(
            ctx.out,
            "reference schema {:?} recreated with {}",
            reference.as_str(),
            plural(count, "migration")
        )?;
        return Ok(Outcome::Success);
    }
    match provisioner.create_reference(&mut conn) {
        Ok(()) => writeln!(
            ctx.out,
            "reference schema {:?} created with {}",
            reference.as_str(),
            plural(count, "migration")
        )?,
        Err(Error::SchemaExists { .. }) => writeln!(
            ctx.out,
            "reference schema {:?} already exists; pass --recreate to drop it and create it again",
            reference.as_str()
        )?,
        Err(e) => return Err(e.into()),
    }
    Ok(Outcome::Success)
}
