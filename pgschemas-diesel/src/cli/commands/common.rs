//! What several commands share: the selection, the routes they print, the rows left out of
//! the catalog, the end of a multi-schema run's output.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};

use super::{CliError, CliResult};
use crate::catalog::{CatalogRows, DomainRecord, InvalidRow, TenantRecord};
use crate::cli::Outcome;
use crate::cli::app::{App, SharedMigrations};
use crate::cli::args::SelectArgs;
use crate::cli::output::{Table, plural};
use crate::migrate::{SchemaKind, Selection, Target, source_versions};

/// The selection of a command that refuses to take every schema by default.
pub(super) fn require_selection(args: &SelectArgs) -> CliResult<Selection> {
    let selection = args.selection();
    if selection.is_empty() {
        return Err(CliError::Usage(
            "no schema given: select schemas with -s/--schema, --all, --static, --dynamic or --tenants"
                .to_owned(),
        ));
    }
    Ok(selection)
}

/// The versions of a migration set, when it is configured and can be read.
pub(super) fn versions(source: Option<&SharedMigrations>) -> Option<BTreeSet<String>> {
    source_versions(source?).ok()
}

/// Success when `ok`, else a failure (the output says what).
pub(super) fn success_if(ok: bool) -> Outcome {
    if ok {
        Outcome::Success
    } else {
        Outcome::Failed
    }
}

/// The refusal of `create-tenant` and `drop-tenant` when the program gave no tenant rows.
pub(super) fn no_rows() -> CliError {
    CliError::Failed(
        "this program cannot write tenant rows: build its App with .tenant_rows(..) or .default_models()"
            .to_owned(),
    )
}

/// The route `whowill` prints for a schema: a static tenant's first domain, a dynamic
/// tenant's primary route (`domain` or `domain/folder`), else the schema's name.
pub(super) struct RouteNames {
    statics: HashMap<String, String>,
    dynamics: HashMap<String, String>,
}

impl RouteNames {
    pub(super) fn new(app: &App, tenants: &[TenantRecord], domains: &[DomainRecord]) -> Self {
        let statics = app
            .config
            .static_tenants()
            .iter()
            .filter_map(|t| Some((t.name().to_string(), t.domains().first()?.clone())))
            .collect();
        let schema_of: HashMap<&str, &str> = tenants
            .iter()
            .map(|t| (t.id.as_str(), t.schema.as_str()))
            .collect();
        let dynamics = domains
            .iter()
            .filter(|d| d.is_primary)
            .filter_map(|d| {
                let schema = schema_of.get(d.tenant_id.as_str())?;
                let route = match d.folder.as_deref().filter(|f| !f.is_empty()) {
                    Some(folder) => format!("{}/{folder}", d.domain),
                    None => d.domain.clone(),
                };
                Some(((*schema).to_owned(), route))
            })
            .collect();
        Self { statics, dynamics }
    }

    pub(super) fn route(&self, target: &Target) -> Option<&str> {
        match target.kind {
            SchemaKind::Static => self.statics.get(target.schema.as_str()),
            SchemaKind::Dynamic => self.dynamics.get(target.schema.as_str()),
            SchemaKind::Shared | SchemaKind::Reference => None,
        }
        .map(String::as_str)
    }

    pub(super) fn label<'a>(&'a self, target: &'a Target) -> &'a str {
        self.route(target).unwrap_or(target.schema.as_str())
    }
}

/// The rows left out of the catalog that `selection` misses: all of them when it takes every
/// dynamic tenant, none when it names schemas.
pub(super) fn missed<'a>(selection: &Selection, rows: &'a CatalogRows) -> &'a [InvalidRow] {
    if selection.takes_every_dynamic() {
        &rows.invalid
    } else {
        &[]
    }
}

/// Lists the rows left out, after the command's other output; a command that left rows out
/// ends with exit status 1.
pub(super) fn write_left_out(out: &mut dyn Write, rows: &[InvalidRow]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nleft out (correct or delete these rows):")?;
    for row in rows {
        writeln!(out, "  {row}")?;
    }
    Ok(())
}

/// `, N rows left out` for a summary line, or nothing.
pub(super) fn left_out_note(rows: &[InvalidRow]) -> String {
    if rows.is_empty() {
        String::new()
    } else {
        format!(", {} left out", plural(rows.len(), "row"))
    }
}

/// The table of the schemas that failed, under `failed:`; nothing when none did.
pub(super) fn write_failed(out: &mut dyn Write, failures: &Table) -> io::Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nfailed:")?;
    failures.write(out, "  ")
}

/// The schemas a fail-fast run never started; nothing when it started them all.
pub(super) fn write_not_started(out: &mut dyn Write, skipped: &[&str]) -> io::Result<()> {
    if skipped.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nnot started after the first failure (pass --keep-going to run them): {}",
        skipped.join(", ")
    )
}
