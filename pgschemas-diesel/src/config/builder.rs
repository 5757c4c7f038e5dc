//! [`ConfigBuilder`]: every configuration rule, checked once when the configuration is built.

use std::num::NonZeroUsize;
use std::sync::Arc;

use super::static_tenant::{Taken, check_aliases};
use super::{Config, Inner, StaticTenant, StaticTenantBuilder};
use crate::error::ConfiguredSchema;
use crate::error::{Error, Result};
use crate::name::SchemaName;
use crate::path::SearchPath;
use crate::roles::{PathRole, TenantRoles};

/// Builds a [`Config`]; everything is validated in [`ConfigBuilder::build`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    shared: String,
    extra: Vec<String>,
    statics: Vec<StaticTenantBuilder>,
    clone_reference: Option<String>,
    citus: bool,
    max_tenants_per_connection: usize,
    tenant_roles: Option<TenantRoles>,
    verify_prepared_statements: bool,
}

impl ConfigBuilder {
    /// The defaults: shared schema `public`, nothing else.
    pub(super) fn new() -> Self {
        Self {
            shared: "public".to_owned(),
            extra: Vec::new(),
            statics: Vec::new(),
            clone_reference: None,
            citus: false,
            max_tenants_per_connection: 0,
            tenant_roles: None,
            verify_prepared_statements: false,
        }
    }

    /// Sets the shared schema (default `public`).
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().shared_schema("shared").build()?;
    /// assert_eq!(config.shared_schema().as_str(), "shared");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn shared_schema(mut self, name: impl Into<String>) -> Self {
        self.shared = name.into();
        self
    }

    /// Appends a schema to every search path, after the shared schema (for extensions such
    /// as PostGIS installed in their own schema).
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().extra_search_path("extensions").build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn extra_search_path(mut self, name: impl Into<String>) -> Self {
        self.extra.push(name.into());
        self
    }

    /// Declares a static tenant.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, StaticTenant};
    /// let config = Config::builder().static_tenant(StaticTenant::builder("blog").domain("blog.localhost")).build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn static_tenant(mut self, tenant: StaticTenantBuilder) -> Self {
        self.statics.push(tenant);
        self
    }

    /// Names the reference schema that new tenants can be cloned from.
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn clone_reference(mut self, name: impl Into<String>) -> Self {
        self.clone_reference = Some(name.into());
        self
    }

    /// Shards the tenants with Citus schema-based sharding (default off): the database is a
    /// Citus coordinator, and each new dynamic tenant schema is created as a distributed
    /// schema, in the same transaction as its rows and migrations, so that all its tables
    /// live together on one worker. Queries and migrations keep going through the
    /// coordinator, routed by the tenant's path. See the [`citus`](crate::citus) module for
    /// placements and moves, and `docs/citus.md`.
    ///
    /// Provisioning then fails with [`Error::CitusMissing`] on a database without the
    /// `citus` extension; the CLI's `list` shows each tenant's node and `move-tenant` moves
    /// one; `doctor` flags tenant schemas that are not distributed and foreign keys between
    /// tenant schemas (which Citus refuses).
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().citus(true).build()?;
    /// assert!(config.citus());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn citus(mut self, on: bool) -> Self {
        self.citus = on;
        self
    }

    /// Closes a pooled connection once it has served `n` distinct tenant schemas; `0` (the
    /// default) for no limit.
    ///
    /// A PostgreSQL backend caches the catalog entries of every relation it touches and keeps
    /// them for as long as it lives: a connection that serves every tenant in turn grows with
    /// the number of tenants (about 10 to 15 KB for a tenant whose one small table it read,
    /// so tens of MB once it has seen thousands), and so does every connection of the pool.
    /// With a limit,
    /// the checkout that brings a connection to `n` distinct schemas is served as usual, and
    /// the connection is closed when it goes back instead of being handed out again; the pool
    /// makes a new one when it needs one.
    ///
    /// Counted, per connection: every checkout that sets a tenant's path, by
    /// [`TenantPool::scope`](crate::TenantPool::scope) and
    /// [`transaction`](crate::TenantPool::transaction), each
    /// [`TenantScope::nested`](crate::TenantScope::nested) switch, and the async pool's
    /// `scope` and `transaction`. The same schema again does not count, nor does the neutral
    /// path ([`TenantPool::get`](crate::TenantPool::get), the shared schema). The pool only
    /// keeps count: no statement is sent for it. The other lever is r2d2's (and bb8's)
    /// `max_lifetime`: it bounds how long a connection lives, this bounds how many tenants it
    /// serves.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1", "customer2"]); let database_url = db.url();
    /// use diesel::{PgConnection, QueryResult, RunQueryDsl};
    /// use pgschemas_diesel::{Config, TenantPool};
    ///
    /// let config = Config::builder().max_tenants_per_connection(2).build()?;
    /// let pool = TenantPool::with_builder(database_url, config, r2d2::Pool::builder().max_size(1))?;
    /// let pid = |conn: &mut PgConnection| -> QueryResult<i32> {
    ///     diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("pg_backend_pid()"))
    ///         .get_result(conn)
    /// };
    ///
    /// let first = pid(&mut *pool.scope(&"customer1")?)?;
    /// assert_eq!(pid(&mut *pool.scope(&"customer1")?)?, first); // the same tenant: still one
    /// assert_eq!(pid(&mut *pool.scope(&"customer2")?)?, first); // the second, then closed
    /// assert_ne!(pid(&mut *pool.get()?)?, first); // a new connection
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_tenants_per_connection(mut self, n: usize) -> Self {
        self.max_tenants_per_connection = n;
        self
    }

    /// Whether every pool checkout (session and transaction form, sync and async) also proves
    /// that the session holds no statement prepared with SQL `PREPARE` but the crate's own
    /// sentinel; a connection that does is discarded, and another one used. Off by default.
    ///
    /// The checkout keeps prepared statements (Diesel's statement cache lives there), so
    /// without this check a caller's code could `DEALLOCATE` one of Diesel's cached
    /// statements and `PREPARE` its own SQL under the same name, which the next user of the
    /// connection would run after its checkout's proof: with per-tenant roles, as another
    /// tenant's role (the login's membership), or as its own role against its own rows. Code
    /// that runs such SQL can as well `SET ROLE` to any tenant's role inside its own checkout
    /// (see `docs/isolation-modes.md`), so the check protects no data that code could not
    /// reach; what it adds is that the next checkout starts clean. Diesel's and
    /// tokio-postgres' statements are prepared through the protocol, never with SQL, so they
    /// never trip it. It reads `pg_prepared_statement()` inside the checkout's statement:
    /// about 80 µs of server time per checkout on the project's benchmark machine. An
    /// application that `PREPARE`s with SQL itself loses the connection at the next checkout.
    /// The async transaction form sends its body with the checkout, without waiting for the
    /// proof: there the refused connection is closed after the body's statements failed in the
    /// aborted transaction (nothing ran, nothing committed), and `transaction` returns
    /// [`Error::SessionState`](crate::Error::SessionState) with
    /// [`SessionProblem::StatementPreparedWithSql`](crate::SessionProblem::StatementPreparedWithSql):
    /// that one transaction can be run again, on another connection. A body that prepares
    /// with SQL itself and then fails keeps its own error; its connection is closed too.
    ///
    /// Behind PgBouncer in transaction mode the statement lives on PgBouncer's server
    /// connection, which closing the client's does not end: every checkout that lands on it
    /// is refused until PgBouncer closes it (its `server_lifetime`). There, leave this off.
    ///
    /// ```
    /// use pgschemas_diesel::Config;
    ///
    /// assert!(!Config::default().verify_prepared_statements());
    /// let config = Config::builder().verify_prepared_statements(true).build()?;
    /// assert!(config.verify_prepared_statements());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn verify_prepared_statements(mut self, on: bool) -> Self {
        self.verify_prepared_statements = on;
        self
    }

    /// Turns the per-tenant roles mode on (off by default): every tenant schema gets a role of
    /// its own, and a checkout for a tenant runs as that role, so PostgreSQL refuses any
    /// table of another tenant (`permission denied`) whatever SQL the caller sends.
    ///
    /// Provisioning creates the role with the schema, in the same transaction; the DDL role
    /// owns the schema and its objects, and default privileges give the tenant's role DML on
    /// every table a migration adds. The neutral path runs as the login role. A pool checks
    /// its login before use: not a superuser, no `BYPASSRLS`, `NOINHERIT`, not a member of the
    /// DDL role ([`Error::Login`] says what to change). See `docs/isolation-modes.md`.
    ///
    /// ```
    /// use pgschemas_diesel::Config;
    /// use pgschemas_diesel::roles::TenantRoles;
    ///
    /// let config = Config::builder()
    ///     .tenant_roles(TenantRoles::new("app_ddl")?.template("app-{schema}")?.login_role("app")?)
    ///     .build()?;
    /// assert!(config.tenant_roles().is_some());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn tenant_roles(mut self, roles: TenantRoles) -> Self {
        self.tenant_roles = Some(roles);
        self
    }

    /// Validates everything and builds the configuration.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidSchemaName`] for an invalid shared schema, static tenant, clone
    ///   reference or extra search path name;
    /// - [`Error::NameClash`] when a static tenant, the clone reference or an extra search path
    ///   is named like the shared schema or like one another (case-insensitively);
    /// - [`Error::Config`] for a domain that is not a host name (empty, with a scheme, port,
    ///   path or leading `www.`, with `_`, or a Unicode domain instead of its `xn--` form), a
    ///   domain or header alias used twice.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, Error, StaticTenant};
    ///
    /// let err = Config::builder().static_tenant(StaticTenant::builder("public")).build().unwrap_err();
    /// assert!(matches!(err, Error::NameClash { .. }));
    /// assert!(err.to_string().contains("shared schema"));
    /// ```
    pub fn build(self) -> Result<Config> {
        let shared = SchemaName::new(&self.shared)?;
        let mut claims = Claims::new(&shared);
        let statics = check_statics(self.statics, &mut claims)?;
        let clone_reference = match &self.clone_reference {
            Some(r) => Some(claims.claim(r, ConfiguredSchema::CloneReference)?),
            None => None,
        };
        let mut extra = Vec::with_capacity(self.extra.len());
        for e in &self.extra {
            extra.push(claims.claim(e, ConfiguredSchema::ExtraSearchPath)?);
        }
        if let Some(roles) = &self.tenant_roles {
            if self.citus {
                return Err(Error::Config(
                    "per-tenant roles are not supported with Citus yet: turn one of them off"
                        .to_owned(),
                ));
            }
            for t in &statics {
                roles.role_of(t.name())?;
            }
            roles.check_names()?;
        }
        let neutral_role = match &self.tenant_roles {
            Some(_) => PathRole::Login,
            None => PathRole::Unmanaged,
        };
        let neutral = SearchPath::neutral(shared.clone(), extra.iter()).with_role(neutral_role);
        Ok(Config(Arc::new(Inner {
            shared,
            extra,
            statics,
            clone_reference,
            citus: self.citus,
            max_tenants_per_connection: NonZeroUsize::new(self.max_tenants_per_connection),
            verify_prepared_statements: self.verify_prepared_statements,
            tenant_roles: self.tenant_roles,
            neutral,
        })))
    }
}

/// The static tenants checked in order: each name claimed, its domains and alias checked
/// against the tenants before it, then the aliases against every name.
fn check_statics(
    builders: Vec<StaticTenantBuilder>,
    claims: &mut Claims,
) -> Result<Vec<StaticTenant>> {
    let mut taken = Taken::default();
    let mut statics = Vec::with_capacity(builders.len());
    for t in builders {
        let name = claims.claim(t.name(), ConfiguredSchema::StaticTenant)?;
        statics.push(t.check(name, &mut taken)?);
    }
    check_aliases(&statics)?;
    Ok(statics)
}

/// The schema names claimed so far, each with what claimed it.
struct Claims(Vec<(SchemaName, ConfiguredSchema)>);

impl Claims {
    fn new(shared: &SchemaName) -> Self {
        Self(vec![(shared.clone(), ConfiguredSchema::SharedSchema)])
    }

    /// Checks `name` and claims it for `what`, unless a name claimed before is the same
    /// (case-insensitively).
    fn claim(&mut self, name: &str, what: ConfiguredSchema) -> Result<SchemaName> {
        let name = SchemaName::new(name)?;
        if let Some((other, with)) = self.0.iter().find(|(n, _)| n.eq_ignore_case(name.as_str())) {
            return Err(Error::NameClash {
                schema: name.to_string(),
                with: *with,
                other: other.to_string(),
            });
        }
        self.0.push((name.clone(), what));
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigBuilder, StaticTenant};
    use crate::error::Result;

    fn err(b: ConfigBuilder) -> String {
        b.build().unwrap_err().to_string()
    }

    // django-pgschemas' start-up checks (checks.py), as configuration errors.
    #[test]
    fn startup_errors() {
        let cases: Vec<(ConfigBuilder, &str)> = vec![
            (
                Config::builder().shared_schema("Public"),
                "invalid schema name \"Public\"",
            ),
            (
                Config::builder().static_tenant(StaticTenant::builder("public")),
                "clashes with the shared schema",
            ),
            (
                Config::builder().static_tenant(StaticTenant::builder("pg_www")),
                "invalid schema name \"pg_www\"",
            ),
            (
                Config::builder()
                    .static_tenant(StaticTenant::builder("www"))
                    .clone_reference("www"),
                "clashes with the static tenant \"www\"",
            ),
            (
                Config::builder().clone_reference("public"),
                "clashes with the shared schema",
            ),
            (
                Config::builder()
                    .static_tenant(StaticTenant::builder("www"))
                    .extra_search_path("www"),
                "\"www\" clashes with the static tenant",
            ),
            (
                Config::builder()
                    .clone_reference("sample")
                    .extra_search_path("sample"),
                "clashes with the clone reference",
            ),
            (
                Config::builder().extra_search_path("public"),
                "clashes with the shared schema",
            ),
            (
                Config::builder()
                    .static_tenant(StaticTenant::builder("www"))
                    .static_tenant(StaticTenant::builder("www")),
                "clashes with the static tenant",
            ),
        ];
        for (builder, needle) in cases {
            let m = err(builder);
            assert!(m.contains(needle), "{m}");
        }
    }

    #[test]
    fn domain_errors() {
        let m = err(Config::builder().static_tenant(StaticTenant::builder("www").domain("")));
        assert!(m.contains("is not a domain"), "{m}");
        let m =
            err(Config::builder()
                .static_tenant(StaticTenant::builder("www").domain("http://x.com/a")));
        assert!(m.contains("is not a domain"), "{m}");
        let m = err(Config::builder()
            .static_tenant(StaticTenant::builder("www").domain("a.com"))
            .static_tenant(StaticTenant::builder("blog").domain("A.com")));
        assert!(m.contains("declared twice"), "{m}");
        let m = err(Config::builder()
            .static_tenant(StaticTenant::builder("www").header("x"))
            .static_tenant(StaticTenant::builder("blog").header("x")));
        assert!(m.contains("used twice"), "{m}");
        // The rules of a domain route: ASCII only, no `_`, no leading `www.`.
        for (domain, needle) in [
            ("bücher.example", "xn--"),
            ("ws_tenant3.localhost", "'_'"),
            ("www.mydomain.com", "www."),
            ("a..b", "empty label"),
        ] {
            let m =
                err(Config::builder().static_tenant(StaticTenant::builder("www").domain(domain)));
            assert!(m.contains("is not a domain") && m.contains(needle), "{m}");
            let m = err(Config::builder()
                .static_tenant(StaticTenant::builder("www").fallback_domain(domain)));
            assert!(m.contains("is not a domain") && m.contains(needle), "{m}");
        }
        let m = err(Config::builder()
            .static_tenant(StaticTenant::builder("www").domain("a.com"))
            .static_tenant(StaticTenant::builder("blog").domain("A.com.")));
        assert!(m.contains("declared twice"), "{m}");
    }

    #[test]
    fn domains_are_normalized() -> Result<()> {
        let c = Config::builder()
            .static_tenant(
                StaticTenant::builder("www")
                    .domain(" LocalHost. ")
                    .fallback_domain("Tenants.LOCALHOST")
                    .domain("XN--Bcher-KVA.example"),
            )
            .build()?;
        let www = c.static_tenant("www").expect("declared");
        assert_eq!(www.domains(), ["localhost", "xn--bcher-kva.example"]);
        assert_eq!(www.fallback_domains(), ["tenants.localhost"]);
        Ok(())
    }
}
