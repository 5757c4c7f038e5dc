//! `list`: the selected schemas in a table: kind, tenant, state, route, migrations.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};

use super::common::{RouteNames, left_out_note, missed, success_if, versions, write_left_out};
use super::{CliResult, Ctx};
use crate::catalog::TenantRecord;
use crate::cli::args::SelectArgs;
use crate::cli::output::{Table, plural};
use crate::migrate::{LedgerProblem, LedgerState, MigrationSet, SchemaKind, read_ledgers};

pub(super) fn list(ctx: &mut Ctx<'_>, args: &SelectArgs) -> CliResult {
    let app = ctx.app;
    let mut conn = ctx.connect()?;
    let rows = ctx.catalog(&mut conn)?;
    let (tenants, domains) = (&rows.tenants, &rows.domains);
    let selection = args.selection();
    let targets = selection.resolve(&app.config, tenants, domains)?;
    let names: Vec<&str> = targets.iter().map(|t| t.schema.as_str()).collect();
    let states = read_ledgers(&mut conn, &names)?;
    let shared_versions = versions(app.shared_migrations.as_ref());
    let tenant_versions = versions(Some(&app.tenant_migrations));
    let by_schema: HashMap<&str, &TenantRecord> =
        tenants.iter().map(|t| (t.schema.as_str(), t)).collect();
    let routes = RouteNames::new(app, tenants, domains);
    let nodes = super::move_tenant::nodes(ctx, &mut conn)?;

    let mut headers = vec!["schema", "kind", "tenant", "state", "route", "migrations"];
    if nodes.is_some() {
        headers.push("node");
    }
    let mut table = Table::new(&headers);
    let mut unreadable: Vec<(&str, &LedgerProblem)> = Vec::new();
    for t in &targets {
        let tenant = by_schema
            .get(t.schema.as_str())
            .filter(|_| t.kind == SchemaKind::Dynamic);
        let expected = match t.migrations {
            MigrationSet::Shared => shared_versions.as_ref(),
            MigrationSet::Tenant => tenant_versions.as_ref(),
            MigrationSet::None => None,
        };
        let state = states.get(t.schema.as_str());
        if let (Some(LedgerState::Unreadable(problem)), Some(_)) = (state, expected) {
            unreadable.push((t.schema.as_str(), problem));
        }
        let mut row = vec![
            t.schema.to_string(),
            t.kind.to_string(),
            tenant.map_or("-".to_owned(), |r| r.id.clone()),
            tenant
                .map_or("-", |r| if r.active { "active" } else { "suspended" })
                .to_owned(),
            routes.route(t).unwrap_or("-").to_owned(),
            migration_state(state, expected),
        ];
        if let Some(nodes) = &nodes {
            row.push(
                nodes
                    .get(t.schema.as_str())
                    .map_or("-", String::as_str)
                    .to_owned(),
            );
        }
        table.row(row);
    }
    table.write(ctx.out, "")?;
    write_unreadable(ctx.out, &unreadable)?;
    let missed = missed(&selection, &rows);
    write_left_out(ctx.out, missed)?;
    writeln!(
        ctx.out,
        "{}{}",
        plural(targets.len(), "schema"),
        left_out_note(missed)
    )?;
    Ok(success_if(missed.is_empty() && unreadable.is_empty()))
}

/// Lists the schemas whose ledger cannot be read, with what is wrong, after the table; a list
/// with any ends with exit status 1.
fn write_unreadable(out: &mut dyn Write, schemas: &[(&str, &LedgerProblem)]) -> io::Result<()> {
    if schemas.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nledgers that cannot be read (a migrate refuses these schemas):"
    )?;
    for (schema, problem) in schemas {
        writeln!(out, "  {schema}: {problem}")?;
    }
    Ok(())
}

/// The migrations column: how the ledger's `state` (`None`: no schema) compares with the
/// versions `expected` (`None`: the schema takes no migrations).
fn migration_state(state: Option<&LedgerState>, expected: Option<&BTreeSet<String>>) -> String {
    match (state, expected) {
        (None, _) => "schema missing".to_owned(),
        (Some(_), None) => "-".to_owned(),
        (Some(LedgerState::Missing), Some(expected)) => {
            format!("not migrated ({} pending)", expected.len())
        }
        (Some(LedgerState::Unreadable(_)), Some(_)) => "ledger unreadable".to_owned(),
        (Some(LedgerState::Read(applied)), Some(expected)) => {
            let pending = expected.difference(applied).count();
            let unknown = applied.difference(expected).count();
            match (pending, unknown) {
                (0, 0) => format!("up to date ({})", expected.len()),
                (p, 0) => format!("{p} pending"),
                (0, u) => format!("{u} unknown to this build"),
                (p, u) => format!("{p} pending, {u} unknown to this build"),
            }
        }
    }
}
