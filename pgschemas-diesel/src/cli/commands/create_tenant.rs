//! `create-tenant`: a dynamic tenant's rows, schema and migrations, in one transaction.

use super::common::no_rows;
use super::{CliError, CliResult, Ctx};
use crate::cli::Outcome;
use crate::cli::app::NewTenantRows;
use crate::cli::args::CreateTenantArgs;
use crate::models::NewDomain;

pub(super) fn create_tenant(ctx: &mut Ctx<'_>, args: &CreateTenantArgs) -> CliResult {
    let app = ctx.app;
    let rows = app.rows.as_ref().ok_or_else(no_rows)?;
    let schema = app.config.check_tenant_name(&args.schema)?;
    let mut new = NewTenantRows::new(schema.clone());
    new.name.clone_from(&args.name);
    new.domains = routes(args)?;
    let mut conn = ctx.connect()?;
    ctx.ensure_shared_migrated(&mut conn)?;
    let provisioner = app.provisioner()?;
    let id =
        provisioner.create_tenant(&mut conn, schema.as_str(), |conn| rows.create(conn, &new))?;
    let routes: Vec<String> = new
        .domains
        .iter()
        .map(|d| match &d.folder {
            Some(f) => format!("{}/{f}", d.domain.to_lowercase()),
            None => d.domain.to_lowercase(),
        })
        .collect();
    writeln!(
        ctx.out,
        "created tenant {:?} (id {id}) in schema {:?}{}",
        new.display_name(),
        schema.as_str(),
        if routes.is_empty() {
            ", with no route".to_owned()
        } else {
            format!(", routes: {}", routes.join(", "))
        }
    )?;
    Ok(Outcome::Success)
}

/// The routes of `--domain` (the first one primary, with `--folder` if given).
fn routes(args: &CreateTenantArgs) -> CliResult<Vec<NewDomain>> {
    let mut routes = Vec::with_capacity(args.domains.len());
    for (i, value) in args.domains.iter().enumerate() {
        let mut route = parse_route(value);
        if i == 0 {
            route = route.primary(true);
            if let Some(folder) = &args.folder {
                if route.folder.is_some() {
                    return Err(CliError::Usage(format!(
                        "--folder {folder:?} given for --domain {value:?}, which has a folder already"
                    )));
                }
                route = route.folder(folder.as_str());
            }
        }
        routes.push(route);
    }
    Ok(routes)
}

/// `host` or `host/folder`.
fn parse_route(value: &str) -> NewDomain {
    match value.split_once('/') {
        Some((host, folder)) => NewDomain::new(host).folder(folder.trim_matches('/')),
        None => NewDomain::new(value),
    }
}
