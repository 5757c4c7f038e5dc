//! `doctor`: the checks before going live, one line each, then the counts.

use super::common::success_if;
use super::{CliError, CliResult, Ctx};
use crate::doctor::CheckStatus;

pub(super) fn doctor(ctx: &mut Ctx<'_>) -> CliResult {
    let app = ctx.app;
    let mut conn = ctx.connect()?;
    let report = crate::doctor::doctor(
        &mut conn,
        &app.config,
        &*app.catalog,
        &app.tenant_migrations,
    )
    .map_err(|e| CliError::Failed(format!("the checks could not run: {}", e.report())))?;
    let mut counts = [0usize; 3];
    for check in &report.checks {
        writeln!(ctx.out, "{check}")?;
        counts[match check.status {
            CheckStatus::Pass => 0,
            CheckStatus::Warn => 1,
            CheckStatus::Fail => 2,
        }] += 1;
    }
    writeln!(
        ctx.out,
        "\n{} passed, {} warned, {} failed",
        counts[0], counts[1], counts[2]
    )?;
    Ok(success_if(counts[2] == 0))
}
