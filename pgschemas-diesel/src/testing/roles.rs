//! [`TestRoles`]: the roles of the per-tenant roles mode for one test database.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::TestDatabase;
use super::url::{redact_password, url_with_user};
use crate::roles::TenantRoles;

/// A DDL role and an application login for one [`TestDatabase`], and the prefix of the
/// tenant roles provisioning creates there, all named after the database (roles belong to the
/// server, so tests running in parallel never share one).
///
/// The DDL role logs in, may create roles and schemas and owns the shared schema; the
/// application login is `NOINHERIT` and may use the shared schema. Dropping the fixture drops
/// every role it named (what they own or were granted in the database first); a failing test
/// keeps them with its database. Declare it after the database, so that it is dropped first.
///
/// ```
/// use pgschemas_diesel::testing::{TestDatabase, TestRoles};
///
/// let db = TestDatabase::new(&format!("test_roles_example_{}", std::process::id()));
/// let roles = TestRoles::new(&db);
/// let config = pgschemas_diesel::Config::builder().tenant_roles(roles.tenant_roles()).build()?;
/// let app = pgschemas_diesel::TenantPool::new(roles.app_url(), config.clone())?;
/// let ddl = pgschemas_diesel::TenantPool::ddl(roles.ddl_url(), config)?;
/// assert!(ddl.is_ddl() && !app.is_ddl());
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Debug)]
pub struct TestRoles {
    prefix: String,
    ddl: String,
    app: String,
    db_url: String,
    server_url: String,
}

impl TestRoles {
    /// Creates the roles for `db` (dropping leftovers of an earlier run first).
    ///
    /// # Panics
    ///
    /// When the database's role cannot create roles or grant them.
    pub fn new(db: &TestDatabase) -> Self {
        let stem = format!("r{:08x}", fnv(db.name()));
        let me = Self {
            prefix: format!("{stem}-"),
            ddl: format!("{stem}_ddl"),
            app: format!("{stem}_app"),
            db_url: db.url().to_owned(),
            server_url: db.server_url().to_owned(),
        };
        me.drop_roles();
        let mut conn = db.connect();
        let (d, a) = (quote(&me.ddl), quote(&me.app));
        conn.batch_execute(&format!(
            "CREATE ROLE {d} LOGIN CREATEROLE; CREATE ROLE {a} LOGIN NOINHERIT; \
             GRANT CREATE, CONNECT, TEMPORARY ON DATABASE {db} TO {d}; \
             GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {a}; \
             ALTER SCHEMA public OWNER TO {d}; GRANT USAGE ON SCHEMA public TO {a}",
            db = quote(db.name()),
        ))
        .unwrap_or_else(|e| panic!("cannot create the test roles of {}: {e}", db.name()));
        me
    }

    /// The tenant roles mode for these roles: template `<prefix>{schema}`, the DDL role, the
    /// application login.
    ///
    /// # Panics
    ///
    /// Never for the names this fixture makes.
    pub fn tenant_roles(&self) -> TenantRoles {
        TenantRoles::new(&self.ddl)
            .and_then(|r| r.template(&format!("{}{{schema}}", self.prefix)))
            .and_then(|r| r.login_role(&self.app))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The prefix of every tenant role (`r1a2b3c4d-`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The DDL role's name.
    pub fn ddl(&self) -> &str {
        &self.ddl
    }

    /// The application login's name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The database's URL with the application login.
    pub fn app_url(&self) -> String {
        url_with_user(&self.db_url, &self.app)
    }

    /// The database's URL with the DDL role as the login.
    pub fn ddl_url(&self) -> String {
        url_with_user(&self.db_url, &self.ddl)
    }

    /// Drops every role of this fixture: what they own or were granted in the database (when
    /// it still exists), then the roles.
    fn drop_roles(&self) {
        let names = format!(
            "SELECT rolname::text AS name FROM pg_catalog.pg_roles WHERE pg_catalog.starts_with(rolname, '{}') \
             OR rolname IN ('{}', '{}') ORDER BY rolname OPERATOR(pg_catalog.=) '{}', rolname",
            self.prefix, self.ddl, self.app, self.ddl
        );
        let Ok(mut server) = PgConnection::establish(&self.server_url) else {
            return;
        };
        let roles: Vec<String> = diesel::sql_query(names)
            .load::<Name>(&mut server)
            .map(|v| v.into_iter().map(|n| n.name).collect())
            .unwrap_or_default();
        if roles.is_empty() {
            return;
        }
        let list = roles
            .iter()
            .map(|r| quote(r))
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(mut db) = PgConnection::establish(&self.db_url) {
            let _ = db.batch_execute(&format!("DROP OWNED BY {list} CASCADE"));
        }
        let _ = server.batch_execute(&format!("DROP OWNED BY {list} CASCADE"));
        for r in &roles {
            if let Err(e) = server.batch_execute(&format!("DROP ROLE IF EXISTS {}", quote(r))) {
                eprintln!(
                    "pgschemas-diesel: cannot drop test role {r} on {}: {e}",
                    redact_password(&self.server_url)
                );
            }
        }
    }
}

impl Drop for TestRoles {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "pgschemas-diesel: the test failed; kept roles {}*, {} and {}",
                self.prefix, self.ddl, self.app
            );
            return;
        }
        self.drop_roles();
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// A quoted identifier.
fn quote(s: &str) -> String {
    crate::name::quote_ident(s)
}

/// FNV-1a of `s`, 32 bits.
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
