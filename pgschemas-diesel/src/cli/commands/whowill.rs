//! `whowill`: the route of each selected schema, one per line, in run order.

use super::common::{RouteNames, missed, require_selection, success_if, write_left_out};
use super::{CliResult, Ctx};
use crate::cli::args::SelectArgs;

pub(super) fn whowill(ctx: &mut Ctx<'_>, args: &SelectArgs) -> CliResult {
    let selection = require_selection(args)?;
    let mut conn = ctx.connect()?;
    let rows = ctx.catalog(&mut conn)?;
    let targets = selection.resolve(&ctx.app.config, &rows.tenants, &rows.domains)?;
    let routes = RouteNames::new(ctx.app, &rows.tenants, &rows.domains);
    for t in &targets {
        writeln!(ctx.out, "{}", routes.label(t))?;
    }
    // Standard output is the list of routes alone.
    let missed = missed(&selection, &rows);
    write_left_out(ctx.err, missed)?;
    Ok(success_if(missed.is_empty()))
}
