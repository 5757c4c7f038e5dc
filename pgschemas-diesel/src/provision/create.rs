//! Creating a tenant: its rows, its schema (cloned from the reference or migrated) and the
//! hooks, in one transaction.

use std::sync::{Arc, PoisonError};

use diesel::PgConnection;
use diesel::result::Error as DieselError;

use crate::citus;
use crate::error::{Error, HookName, Result};
use crate::name::SchemaName;
use crate::roles::lifecycle::{self, RoleState};

#[cfg(doc)]
use super::ProvisionerBuilder;
use super::clone::Template;
use super::hooks::run_hook;
use super::txn::{
    atomic, create_schema_sql, in_schema, lock_sql, map_create_error, map_db_error,
    set_local_path_sql, shared_lock_sql,
};
use super::{Provisioner, migrate};
#[cfg(doc)]
use crate::Config;

impl Provisioner {
    /// Creates a dynamic tenant in one transaction: `rows` writes the tenant's rows (its
    /// tenant row, its domains: any model), then the schema is created, migrated (or cloned
    /// from the reference) and the [`after_sync`](ProvisionerBuilder::after_sync) hook runs.
    /// Everything commits together or nothing does: a bad name, a clash, a failing
    /// migration, a vetoing hook or a lost connection leaves no row, no domain and no schema.
    ///
    /// The name is checked with [`Config::check_tenant_name`] before anything is sent.
    /// `rows` runs with the neutral path (the shared schema first). Two concurrent
    /// creations of the same schema serialize on its lock: the second gets
    /// [`Error::SchemaExists`]. Inside a transaction of the caller, this runs in a savepoint
    /// and the caller's transaction decides.
    ///
    /// With `auto_create_schema` off, only `rows` and the
    /// [`needs_sync`](ProvisionerBuilder::needs_sync) hook run.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`], [`Error::NameClash`], [`Error::SchemaExists`],
    /// [`Error::Migration`], [`Error::Clone`], [`Error::CloneNamesSource`] (the reference
    /// names itself where a clone would keep the name, or may: see
    /// [`clone_from_reference`](ProvisionerBuilder::clone_from_reference)), [`Error::Hook`],
    /// `rows`' error (a database error is given the schema's name), [`Error::Database`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models(); let conn = &mut db.connect();
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// # let provisioner = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M).build()?;
    /// use diesel::RunQueryDsl;
    /// use pgschemas_diesel::Error;
    ///
    /// let id: i64 = provisioner.create_tenant(conn, "customer1", |conn| {
    ///     #[derive(diesel::QueryableByName)]
    ///     struct Id { #[diesel(sql_type = diesel::sql_types::BigInt)] id: i64 }
    ///     let row: Id = diesel::sql_query(
    ///         "insert into tenants (schema_name, name) values ('customer1', 'Customer 1') returning id",
    ///     )
    ///     .get_result(conn)?;
    ///     Ok(row.id)
    /// })?;
    /// assert_eq!(id, 1);
    /// assert_eq!(diesel::sql_query("select * from customer1.orders").execute(conn)?, 0); // migrated
    ///
    /// let again = provisioner.create_tenant(conn, "customer1", |_conn| Ok(0));
    /// assert!(matches!(again, Err(Error::SchemaExists { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_tenant<T, F>(&self, conn: &mut PgConnection, schema: &str, rows: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T>,
    {
        crate::observe::provisioning(schema, "create", || {
            let inner = &*self.0;
            let name = inner.options.config.check_tenant_name(schema)?;
            let neutral = set_local_path_sql(inner.options.config.neutral_path().as_sql_value());
            if !inner.options.auto_create_schema {
                return atomic(conn, &neutral, map_db_error(&name), |conn| {
                    let value = rows(conn).map_err(in_schema(&name))?;
                    crate::observe::provision_step(schema, "rows");
                    run_hook(
                        &inner.options.hooks.needs_sync,
                        HookName::NeedsSync,
                        conn,
                        &name,
                    )?;
                    Ok(value)
                });
            }
            let first = format!("{}; {neutral}", self.create_sql(&name)?);
            atomic(conn, &first, self.map_create_error(&name), |conn| {
                crate::observe::provision_step(schema, "schema");
                let value = rows(conn).map_err(in_schema(&name))?;
                crate::observe::provision_step(schema, "rows");
                self.sync(conn, &name)?;
                crate::observe::provision_step(schema, "filled");
                Ok(value)
            })
        })
    }

    /// Creates, migrates (or clones) and hooks the schema of a tenant whose rows already
    /// exist (created with `auto_create_schema` off, or whose schema was lost), in one
    /// transaction. On failure the schema is not created; the rows are untouched either way.
    ///
    /// # Errors
    ///
    /// As [`create_tenant`](Self::create_tenant), without `rows`.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models()
    /// #     .sql("insert into tenants (schema_name, name) values ('customer1', 'Customer 1')");
    /// # let conn = &mut db.connect();
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// # let provisioner = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M).build()?;
    /// use pgschemas_diesel::SchemaName;
    /// use pgschemas_diesel::lifecycle::schema_exists;
    ///
    /// // customer1's row exists, its schema does not
    /// provisioner.provision_existing(conn, "customer1")?;
    /// assert!(schema_exists(conn, &SchemaName::new("customer1")?)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn provision_existing(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        crate::observe::provisioning(schema, "provision_existing", || {
            let name = self.0.options.config.check_tenant_name(schema)?;
            atomic(
                conn,
                &self.create_sql(&name)?,
                self.map_create_error(&name),
                |conn| self.sync(conn, &name),
            )
        })
    }

    /// The statements that open a schema's creation: its lock, the reference's shared lock
    /// when cloning, `CREATE SCHEMA` (as a Citus distributed schema with
    /// [`Config::citus`] on); with tenant roles, all of it as the DDL role, and the tenant's
    /// role with its privileges after the schema.
    fn create_sql(&self, name: &SchemaName) -> Result<String> {
        let roles = self.config().tenant_roles();
        let mut sql = match roles {
            Some(roles) => format!("{}; ", lifecycle::act_as_ddl_sql(roles)),
            None => String::new(),
        };
        sql.push_str(&lock_sql(name));
        if let Some(reference) = self.reference() {
            sql.push_str("; ");
            sql.push_str(&shared_lock_sql(reference));
        }
        sql.push_str("; ");
        if self.config().citus() {
            sql.push_str(&citus::distributed_sql(&create_schema_sql(name)));
        } else {
            sql.push_str(&create_schema_sql(name));
        }
        if let Some(roles) = roles {
            sql.push_str("; ");
            sql.push_str(&lifecycle::provision_sql(
                roles,
                self.config().shared_schema(),
                name,
            )?);
        }
        Ok(sql)
    }

    /// [`map_create_error`], [`Error::CitusMissing`] with [`Config::citus`] on when the
    /// database has no `citus` extension, and [`Error::RoleExists`] with tenant roles on when
    /// the schema is missing but a role of its role's name exists (each read from the
    /// catalog once rolled back).
    fn map_create_error<'a>(
        &self,
        name: &'a SchemaName,
    ) -> impl FnOnce(&mut PgConnection, DieselError) -> Error + 'a {
        let citus = self.config().citus();
        let role = self
            .config()
            .tenant_roles()
            .and_then(|roles| roles.role_of(name).ok());
        move |conn, e| {
            let db_error = matches!(e, DieselError::DatabaseError(..));
            if citus && db_error && matches!(citus::is_installed(conn), Ok(false)) {
                return Error::CitusMissing;
            }
            let error = map_create_error(name)(conn, e);
            match role {
                Some(role)
                    if db_error
                        && !matches!(error, Error::SchemaExists { .. })
                        && RoleState::read(conn, &role, name)
                            .is_ok_and(|s| s != RoleState::Missing) =>
                {
                    Error::RoleExists {
                        schema: name.to_string(),
                        role: role.to_string(),
                    }
                }
                _ => error,
            }
        }
    }

    /// The reference to clone from, when cloning is on.
    fn reference(&self) -> Option<&SchemaName> {
        let inner = &*self.0;
        inner
            .clone_from_reference
            .then(|| inner.options.config.clone_reference())
            .flatten()
    }

    /// Fills the freshly created `name`: clone or migrate, then the `after_sync` hook, which
    /// runs with the tenant's path.
    fn sync(&self, conn: &mut PgConnection, name: &SchemaName) -> Result<()> {
        let inner = &*self.0;
        let path = inner.options.config.search_path(name)?;
        match self.template(conn, name)? {
            Some(template) => {
                template.refuse_warnings(name)?;
                template.apply(conn, name, Some(&path), inner.options.config.citus())?;
                let versions = migrate::versions(name, &*inner.options.migrations)?;
                let applied = &template.report.migrations;
                if versions.iter().any(|v| !applied.contains(v)) {
                    migrate::run_pending(
                        conn,
                        &inner.options.config,
                        &path,
                        &*inner.options.migrations,
                    )?;
                }
            }
            None => {
                migrate::apply_all_fresh(conn, &path, &*inner.options.migrations)?;
            }
        }
        run_hook(
            &inner.options.hooks.after_sync,
            HookName::AfterSync,
            conn,
            name,
        )
    }

    /// The reference's clone script when cloning is on and the reference exists: the cached
    /// one if the reference has not changed, else read again.
    fn template(&self, conn: &mut PgConnection, dst: &SchemaName) -> Result<Option<Arc<Template>>> {
        let inner = &*self.0;
        let Some(reference) = self.reference() else {
            return Ok(None);
        };
        let cached = inner
            .template
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(t) = cached {
            match t.is_current(conn)? {
                Some(true) => return Ok(Some(t)),
                Some(false) => {}
                None => {
                    self.clear_clone_cache();
                    return Ok(None);
                }
            }
        }
        let Some(t) = Template::read(conn, reference, dst, inner.options.clone_data)? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        *inner
            .template
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&t));
        Ok(Some(t))
    }
}
