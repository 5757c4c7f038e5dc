//! Dropping a tenant: its rows, and its schema when asked, in one transaction.

use diesel::PgConnection;
use diesel::connection::SimpleConnection;

use crate::error::Error;
use crate::error::HookName;
use crate::error::Result;
use crate::lifecycle::{OnDependents, drop_in_transaction, refuse_protected, schema_exists};
use crate::name::SchemaName;

use super::Provisioner;
#[cfg(doc)]
use super::ProvisionerBuilder;
use super::hooks::run_hook;
use super::txn::{atomic, in_schema, lock_sql, map_db_error, set_local_path_sql};
#[cfg(doc)]
use crate::Config;
use crate::roles::lifecycle::{self, RoleState};

/// What [`Provisioner::drop_tenant`] did.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("customer1", &[]); let conn = &mut db.connect();
/// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
/// # let p = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M).build()?;
/// let dropped = p.drop_tenant(conn, "customer1", true, |_conn| Ok(()))?;
/// assert!(dropped.schema_dropped);
/// let again = p.drop_tenant(conn, "customer1", true, |_conn| Ok(()))?;
/// assert!(!again.schema_dropped); // nothing left to drop
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dropped<T> {
    /// What the row-deleting closure returned.
    pub value: T,
    /// Whether the schema was dropped (it is kept unless forced or `auto_drop_schema` is on,
    /// and there is nothing to drop when it does not exist).
    pub schema_dropped: bool,
}

impl Provisioner {
    /// Deletes a dynamic tenant in one transaction: when `force` or `auto_drop_schema` is
    /// on and the schema exists, the [`before_drop`](ProvisionerBuilder::before_drop) hook
    /// runs and the schema is dropped; then `rows` deletes the tenant's rows. Otherwise only
    /// `rows` runs and the schema is kept (django-pgschemas' rule: data is not dropped
    /// unless asked).
    ///
    /// Only a dynamic tenant's schema is dropped: never one the configuration reserves (the
    /// shared schema, a static tenant, the clone reference, an extra search path: the names
    /// [`Config::check_tenant_name`] refuses to a new tenant), and never together with
    /// objects outside it. When a view, foreign key, column, function or extension of
    /// another schema depends on the tenant's objects, the drop is refused with
    /// [`Error::Dependents`] naming them ([`dangerous_drop_tenant_cascade`](Self::dangerous_drop_tenant_cascade)
    /// drops them too). Whether the schema belongs to a tenant row is `rows`' to say: it
    /// runs in the same transaction, so an error from it (the CLI's: no tenant has this
    /// schema) keeps the schema.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`]; [`Error::Protected`] for a reserved schema;
    /// [`Error::Dependents`]; [`Error::Hook`]; `rows`' error; [`Error::Database`]. Nothing
    /// is changed on error.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("customer1", &[]); let conn = &mut db.connect();
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// # let provisioner = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M).build()?;
    /// use diesel::RunQueryDsl;
    ///
    /// let dropped = provisioner.drop_tenant(conn, "customer1", true, |conn| {
    ///     Ok(diesel::sql_query("delete from tenants where schema_name = 'customer1'").execute(conn)?)
    /// })?;
    /// assert!(dropped.schema_dropped);
    /// assert_eq!(dropped.value, 1); // the rows closure's answer: one tenant row deleted
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drop_tenant<T, F>(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        force: bool,
        rows: F,
    ) -> Result<Dropped<T>>
    where
        F: FnOnce(&mut PgConnection) -> Result<T>,
    {
        let drop = force || self.0.options.auto_drop_schema;
        crate::observe::provisioning(schema, "drop", || {
            self.drop_tenant_with(conn, schema, drop, OnDependents::Refuse, rows)
        })
    }

    /// [`drop_tenant`](Self::drop_tenant), always dropping the schema, and with it every
    /// object outside it that depends on its objects (`DROP SCHEMA ... CASCADE`): a view of
    /// the shared schema over a tenant table, a foreign key into it, another tenant's view,
    /// an extension owning one of its objects. The reserved schemas are still refused.
    ///
    /// # Errors
    ///
    /// As [`drop_tenant`](Self::drop_tenant), without [`Error::Dependents`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("customer1", &[])
    /// #     .sql("create view public.all_notes as select * from customer1.notes");
    /// # let conn = &mut db.connect();
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// # let provisioner = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M).build()?;
    /// use diesel::RunQueryDsl;
    /// use pgschemas_diesel::Error;
    ///
    /// // public.all_notes is a view over customer1.notes
    /// let refused = provisioner.drop_tenant(conn, "customer1", true, |_conn| Ok(()));
    /// assert!(matches!(refused, Err(Error::Dependents { .. })));
    ///
    /// provisioner.dangerous_drop_tenant_cascade(conn, "customer1", |conn| {
    ///     diesel::sql_query("delete from tenants where schema_name = 'customer1'").execute(conn)?;
    ///     Ok(())
    /// })?;
    /// assert!(diesel::sql_query("select * from public.all_notes").execute(conn).is_err()); // dropped too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dangerous_drop_tenant_cascade<T, F>(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        rows: F,
    ) -> Result<Dropped<T>>
    where
        F: FnOnce(&mut PgConnection) -> Result<T>,
    {
        crate::observe::provisioning(schema, "drop_cascade", || {
            self.drop_tenant_with(conn, schema, true, OnDependents::Cascade, rows)
        })
    }

    fn drop_tenant_with<T, F>(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        drop: bool,
        on: OnDependents,
        rows: F,
    ) -> Result<Dropped<T>>
    where
        F: FnOnce(&mut PgConnection) -> Result<T>,
    {
        let inner = &*self.0;
        let name = SchemaName::new(schema)?;
        if drop {
            refuse_protected(&inner.options.config, &name)?;
        }
        let roles = inner.options.config.tenant_roles();
        let role = match roles {
            Some(roles) if drop => Some(roles.role_of(&name)?),
            _ => None,
        };
        let first = format!(
            "{}{}; {}",
            roles.map_or(String::new(), |r| format!(
                "{}; ",
                lifecycle::act_as_ddl_sql(r)
            )),
            lock_sql(&name),
            set_local_path_sql(inner.options.config.neutral_path().as_sql_value())
        );
        atomic(conn, &first, map_db_error(&name), |conn| {
            let mut schema_dropped = false;
            if drop && schema_exists(conn, &name)? {
                run_hook(
                    &inner.options.hooks.before_drop,
                    HookName::BeforeDrop,
                    conn,
                    &name,
                )?;
                drop_in_transaction(conn, &name, on)?;
                schema_dropped = true;
            }
            // The tenant's role goes with its schema (or after it, when an earlier drop left
            // it); a role of that name not marked as this tenant's is left alone.
            if let Some(role) = &role
                && RoleState::read(conn, role, &name)? == RoleState::Ours
            {
                conn.batch_execute(&lifecycle::drop_role_sql(role))
                    .map_err(|e| Error::db(name.as_str(), e))?;
            }
            let value = rows(conn).map_err(in_schema(&name))?;
            Ok(Dropped {
                value,
                schema_dropped,
            })
        })
    }
}
