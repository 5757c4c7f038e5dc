//! What a connection's login must be in the per-tenant roles mode, read from the server once
//! per connection, in the statement that reads the login anyway.

use std::fmt;

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Bool, Text};

use super::{RoleName, TenantRoles};
use crate::error::Error;

/// What a pool's connections are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum Acting {
    /// The application: tenant checkouts run as the tenant's role, the neutral path as the
    /// login role.
    #[default]
    App,
    /// Migrations, provisioning, drops: every checkout runs as the DDL role.
    Ddl,
}

/// Why a login cannot be used in the per-tenant roles mode; each says how to fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginProblem {
    /// The application's login is a superuser, which no privilege stops.
    Superuser,
    /// The application's login bypasses row-level security.
    BypassRls,
    /// The application's login inherits the privileges of the roles it is a member of: it
    /// would reach every tenant without switching.
    Inherits,
    /// The application's login is a member of the DDL role, which owns every tenant.
    MemberOfDdl,
    /// The DDL role does not exist.
    DdlRoleMissing,
    /// A login used for migrations, provisioning or drops cannot act as the DDL role.
    CannotActAsDdl,
}

impl LoginProblem {
    /// What is wrong and the fix, for `login` and the DDL role `ddl`.
    fn explain(self, login: &str, ddl: &RoleName) -> String {
        let l = crate::name::quote_ident(login);
        let d = ddl.quoted();
        match self {
            Self::Superuser => format!(
                "is a superuser, which no privilege stops; connect the application as a role without SUPERUSER (ALTER ROLE {l} NOSUPERUSER)"
            ),
            Self::BypassRls => {
                format!("bypasses row-level security; run ALTER ROLE {l} NOBYPASSRLS")
            }
            Self::Inherits => format!(
                "inherits the privileges of the tenant roles it is a member of, so it would reach every tenant without switching; run ALTER ROLE {l} NOINHERIT"
            ),
            Self::MemberOfDdl => format!(
                "is a member of the DDL role {d}, which owns every tenant; run REVOKE {d} FROM {l} and use another login for migrations"
            ),
            Self::DdlRoleMissing => format!(
                "cannot be checked: the DDL role {d} does not exist; run CREATE ROLE {d} NOLOGIN CREATEROLE and grant it CREATE on the database"
            ),
            Self::CannotActAsDdl => format!(
                "cannot act as the DDL role {d}, which migrations, provisioning and drops run as; connect as {d} or as a member of it (GRANT {d} TO {l})"
            ),
        }
    }
}

impl fmt::Display for LoginProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Superuser => "a superuser",
            Self::BypassRls => "bypasses row-level security",
            Self::Inherits => "inherits",
            Self::MemberOfDdl => "a member of the DDL role",
            Self::DdlRoleMissing => "the DDL role is missing",
            Self::CannotActAsDdl => "cannot act as the DDL role",
        })
    }
}

/// What the server says of a connection's login.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct LoginFacts {
    /// `session_user`.
    #[diesel(sql_type = Text)]
    pub(crate) login: String,
    /// `current_database()`.
    #[diesel(sql_type = Text)]
    pub(crate) database: String,
    #[diesel(sql_type = Bool)]
    superuser: bool,
    #[diesel(sql_type = Bool)]
    bypassrls: bool,
    #[diesel(sql_type = Bool)]
    inherit: bool,
    #[diesel(sql_type = Bool)]
    ddl_found: bool,
    #[diesel(sql_type = Bool)]
    ddl_member: bool,
}

impl LoginFacts {
    /// The query that reads them, for the DDL role of `roles`.
    pub(crate) fn query(roles: &TenantRoles) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        diesel::sql_query(
            "SELECT session_user::pg_catalog.text AS login, \
             pg_catalog.current_database()::pg_catalog.text AS database, r.rolsuper AS superuser, \
             r.rolbypassrls AS bypassrls, r.rolinherit AS inherit, d.oid IS NOT NULL AS ddl_found, \
             COALESCE(pg_catalog.pg_has_role(session_user, d.oid, 'MEMBER'), false) AS ddl_member \
             FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_roles d ON d.rolname OPERATOR(pg_catalog.=) $1 \
             WHERE r.rolname OPERATOR(pg_catalog.=) session_user",
        )
        .into_boxed()
        .bind::<Text, _>(roles.ddl_role().as_str().to_owned())
    }

    /// The first problem these facts show for a connection `acting` as given.
    pub(crate) fn problem(&self, acting: Acting) -> Option<LoginProblem> {
        if !self.ddl_found {
            return Some(LoginProblem::DdlRoleMissing);
        }
        match acting {
            Acting::App if self.superuser => Some(LoginProblem::Superuser),
            Acting::App if self.bypassrls => Some(LoginProblem::BypassRls),
            Acting::App if self.inherit => Some(LoginProblem::Inherits),
            Acting::App if self.ddl_member => Some(LoginProblem::MemberOfDdl),
            Acting::Ddl if !self.ddl_member => Some(LoginProblem::CannotActAsDdl),
            Acting::App | Acting::Ddl => None,
        }
    }

    /// [`problem`](Self::problem) as the error for the caller.
    pub(crate) fn check(&self, acting: Acting, roles: &TenantRoles) -> Result<(), Error> {
        match self.problem(acting) {
            None => Ok(()),
            Some(problem) => Err(Error::Login {
                login: self.login.clone(),
                problem,
                detail: problem.explain(&self.login, roles.ddl_role()),
            }),
        }
    }
}
