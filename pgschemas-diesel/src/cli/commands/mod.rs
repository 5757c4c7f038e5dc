//! The commands, a module each; what they share is here (the context, the errors, the
//! connections) and in [`common`] (selections, routes, the rows left out).

mod adopt_roles;
mod clone;
mod common;
mod create_reference;
mod create_tenant;
mod doctor;
mod drop_tenant;
mod list;
mod migrate;
mod move_tenant;
mod run_sql;
mod whowill;

use std::io::{self, Write};
use std::time::Duration;

use diesel::prelude::*;

use super::Outcome;
use super::app::App;
use super::args::Command;
use super::output::plural;
use crate::catalog::CatalogRows;
use crate::error::Error;
use crate::lifecycle::create_schema;
use crate::migrate::{MigrationError, MigrationErrorKind, migrate_schema, pending_migrations};
use crate::pool::TenantPool;

/// What a command runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) app: &'a App,
    pub(crate) database_url: Option<String>,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
    pub(crate) progress: bool,
}

/// Why a command stopped.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad usage or selection: exit status 2.
    Usage(String),
    /// Anything else: exit status 1.
    Failed(String),
}

impl CliError {
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Usage(m) | Self::Failed(m) => m,
        }
    }

    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::Usage(_) => Outcome::Usage,
            Self::Failed(_) => Outcome::Failed,
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownReference { .. } | Error::AmbiguousReference { .. } => {
                Self::Usage(e.report().to_string())
            }
            e => Self::Failed(e.report().to_string()),
        }
    }
}

impl From<MigrationError> for CliError {
    fn from(e: MigrationError) -> Self {
        Self::Failed(e.report().to_string())
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        Self::Failed(format!("could not write the output: {e}"))
    }
}

type CliResult<T = Outcome> = Result<T, CliError>;

pub(crate) fn dispatch(ctx: &mut Ctx<'_>, command: Command) -> CliResult {
    match command {
        Command::Migrate(args) => migrate::migrate(ctx, args),
        Command::Whowill(args) => whowill::whowill(ctx, &args),
        Command::List(args) => list::list(ctx, &args),
        Command::CreateReference(args) => create_reference::create_reference(ctx, &args),
        Command::Clone(args) => clone::clone(ctx, &args),
        Command::CreateTenant(args) => create_tenant::create_tenant(ctx, &args),
        Command::DropTenant(args) => drop_tenant::drop_tenant(ctx, &args),
        Command::MoveTenant(args) => move_tenant::move_tenant(ctx, &args),
        Command::RunSql(args) => run_sql::run_sql(ctx, args),
        Command::Doctor => doctor::doctor(ctx),
        Command::AdoptRoles => adopt_roles::adopt_roles(ctx),
    }
}

impl Ctx<'_> {
    fn url(&self) -> CliResult<String> {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
            .or_else(|| self.app.database_url.clone())
            .ok_or_else(|| {
                CliError::Usage(
                    "no database given: pass --database-url or set DATABASE_URL".to_owned(),
                )
            })
    }

    /// A plain connection with the neutral path.
    fn connect(&self) -> CliResult<PgConnection> {
        let url = self.url()?;
        let mut conn = PgConnection::establish(&url).map_err(Error::from)?;
        self.app.config.deactivate(&mut conn)?;
        Ok(conn)
    }

    /// A pool of `size` connections (after checking with one plain connection that the
    /// database answers, so that a bad URL fails at once rather than after the pool's
    /// timeout).
    fn pool(&self, size: usize) -> CliResult<TenantPool> {
        drop(self.connect()?);
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        // Every connection is made before the pool is handed out (r2d2's default
        // `min_idle`): a connection still being made on r2d2's thread when the command ends
        // and the process exits can crash libpq's TLS teardown.
        let builder = r2d2::Pool::builder()
            .max_size(size)
            .connection_timeout(Duration::from_secs(30));
        let (url, config) = (self.url()?, self.app.config.clone());
        // With per-tenant roles the commands are DDL work: they run as the DDL role.
        Ok(if config.tenant_roles().is_some() {
            TenantPool::ddl_with_builder(url, config, builder)?
        } else {
            TenantPool::with_builder(url, config, builder)?
        })
    }

    /// The catalog's usable tenants and domains, and the rows left out.
    fn catalog(&self, conn: &mut PgConnection) -> CliResult<CatalogRows> {
        Ok(CatalogRows::read(&*self.app.catalog, conn).map_err(|e| Error::Catalog(Box::new(e)))?)
    }

    /// Applies the pending shared migrations (creating the shared schema if needed), saying
    /// so; nothing when there are none or no shared migrations are configured.
    fn ensure_shared_migrated(&mut self, conn: &mut PgConnection) -> CliResult<()> {
        let Some(source) = &self.app.shared_migrations else {
            return Ok(());
        };
        let schema = self.app.config.shared_schema();
        match pending_migrations(conn, schema, source) {
            Ok(pending) if pending.is_empty() => return Ok(()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), MigrationErrorKind::SchemaNotFound) => {
                create_schema(conn, schema)?;
            }
            Err(e) => return Err(e.into()),
        }
        let applied = migrate_schema(conn, &self.app.config, schema, source)?;
        writeln!(
            self.out,
            "shared schema {:?}: {} applied first",
            schema.as_str(),
            plural(applied.len(), "migration")
        )?;
        Ok(())
    }
}
