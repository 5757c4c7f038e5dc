//! `move-tenant`: a Citus distributed tenant schema moved to another worker; and the `node`
//! column `list` shows with Citus on.

use std::collections::HashMap;
use std::time::Instant;

use diesel::PgConnection;

use super::{CliError, CliResult, Ctx};
use crate::citus::{self, Node, TransferMode};
use crate::cli::Outcome;
use crate::cli::args::{MoveTenantArgs, TransferModeArg};
use crate::cli::output::duration;
use crate::error::Error;
use crate::name::SchemaName;

pub(super) fn move_tenant(ctx: &mut Ctx<'_>, args: &MoveTenantArgs) -> CliResult {
    let schema = SchemaName::new(&args.schema)?;
    let to = Node::parse(&args.to).map_err(|e| CliError::Usage(e.report().to_string()))?;
    let mut conn = ctx.connect()?;
    let from = citus::placement(&mut conn, &schema)?
        .ok_or_else(|| Error::NotDistributed {
            schema: schema.to_string(),
        })?
        .node;
    if from.as_ref() == Some(&to) {
        writeln!(ctx.out, "tenant {:?} is on {to} already", schema.as_str())?;
        return Ok(Outcome::Success);
    }
    let mode = match args.mode {
        TransferModeArg::Auto => TransferMode::Auto,
        TransferModeArg::ForceLogical => TransferMode::ForceLogical,
        TransferModeArg::BlockWrites => TransferMode::BlockWrites,
    };
    let started = Instant::now();
    citus::move_tenant(&mut conn, &schema, &to, mode)?;
    writeln!(
        ctx.out,
        "moved tenant {:?} from {} to {to} in {}",
        schema.as_str(),
        from.map_or("no node".to_owned(), |n| n.to_string()),
        duration(started.elapsed())
    )?;
    Ok(Outcome::Success)
}

/// With Citus on, the node of each distributed schema, by schema name, for `list`'s `node`
/// column; `None` with Citus off.
pub(super) fn nodes(
    ctx: &Ctx<'_>,
    conn: &mut PgConnection,
) -> CliResult<Option<HashMap<String, String>>> {
    if !ctx.app.config.citus() {
        return Ok(None);
    }
    let placements = citus::placements(conn)?;
    Ok(Some(
        placements
            .into_iter()
            .map(|p| {
                let node = p.node.map_or("(no table)".to_owned(), |n| n.to_string());
                (p.schema, node)
            })
            .collect(),
    ))
}
