//! The statements that hand out a connection: each resets what an earlier user may have left
//! on the session, sets the path and proves the state the caller relies on, in one round
//! trip; and the reading of the server's state when that proof fails.
//!
//! Every statement here runs through the simple query protocol as one message: PostgreSQL
//! then stamps the message once, and `transaction_timestamp() = statement_timestamp()` holds
//! exactly when the message itself began the transaction, that is, when no transaction was
//! left open on the session. A failed proof raises an error and the whole message is rolled
//! back; what failed is then read from values a second statement returns, never from the
//! error's text. `docs/isolation.md` lists what each part covers and the test that proves it.

use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::result::Error as DieselError;
use diesel::sql_types::{Bool, Nullable, Text};

use crate::error::Error;
use crate::error::SessionProblem;
use crate::path::SearchPath;
use crate::roles::PathRole;

/// The call that sets the `search_path` to `value`, an SQL expression (a quoted literal, a
/// bound parameter, a function reading it): for the transaction only (`SET LOCAL`) when
/// `local`, else for the session.
pub(crate) fn set_path_call(value: &str, local: bool) -> String {
    format!("pg_catalog.set_config('search_path', {value}, {local})")
}

/// Returns the session to its state at connection: the login role (also ending any `SET
/// ROLE`), every setting back to its default (custom `app.*` settings included), no open
/// cursor, no listener, no temporary object, no sequence state. Prepared statements are kept:
/// Diesel's statement cache lives there, and they re-plan under the new path.
const RESET: &str = "RESET SESSION AUTHORIZATION; RESET ALL; CLOSE ALL; UNLISTEN *; \
                     DISCARD TEMP; DISCARD SEQUENCES";

/// The settings `diesel::PgConnection::establish` makes, restored after `RESET ALL`, and the
/// release of every session-level advisory lock.
const RESTORE: &str = "pg_catalog.set_config('TimeZone', 'UTC', false), \
                       pg_catalog.set_config('client_encoding', 'UTF8', false), \
                       pg_catalog.pg_advisory_unlock_all()";

/// The condition, evaluated after the path and the role are set in the same statement, that
/// the active schema (`schema`, an SQL expression giving its quoted name) exists, that the
/// role now in effect may use it, and that this role is the one the path runs as (the login
/// role unless it names one): the server's own `current_user`, read after the switch, is the
/// proof. PostgreSQL evaluates a select list in order, so a check written after the
/// `set_config` calls sees their effect.
fn proof(schema: &str, role: &PathRole) -> String {
    format!(
        "pg_catalog.has_schema_privilege(pg_catalog.to_regnamespace({schema})::pg_catalog.oid, 'USAGE') AND {}",
        role.in_effect()
    )
}

/// The role the path names set after the path (`local`: for the transaction only), as a
/// further select-list entry; nothing when the path leaves the role as it is.
fn set_role(role: &PathRole, local: bool) -> String {
    role.set_call(local)
        .map(|call| format!(", {call}"))
        .unwrap_or_default()
}

/// `FROM` the session's statements prepared with SQL `PREPARE`, the sentinel's left out (as
/// `p`): the rows every prepared-statement check reads.
macro_rules! sql_prepared_statements {
    () => {
        "FROM pg_catalog.pg_prepared_statement() p \
         WHERE p.from_sql AND p.name OPERATOR(pg_catalog.<>) 'pgschemas_diesel_sentinel'"
    };
}

/// The condition that the session holds a statement prepared with SQL `PREPARE` other than
/// the sentinel: what [`AND_NO_SQL_PREPARED`] refuses.
macro_rules! sql_prepared {
    () => {
        concat!("EXISTS (SELECT ", sql_prepared_statements!(), ")")
    };
}

/// ` AND ` the condition that the session holds no statement prepared with SQL `PREPARE` but
/// the sentinel ([`crate::Config::verify_prepared_statements`]): a statement a caller put in
/// place of one of Diesel's cached statements, for the next user to run, is prepared so.
const AND_NO_SQL_PREPARED: &str = concat!(" AND NOT ", sql_prepared!());

/// A further select-list entry of the transaction form's committed first statement, with
/// [`crate::Config::verify_prepared_statements`]: the server's time of the checkout, in seconds
/// since the epoch, in a setting of the session (`pgschemas_diesel.checkout_at`), so that a
/// statement prepared before it (which the proof refused) is told from one the caller's body
/// prepared after it.
const STAMP_CHECKOUT: &str = ", pg_catalog.set_config('pgschemas_diesel.checkout_at', \
     pg_catalog.extract('epoch', pg_catalog.clock_timestamp())::pg_catalog.text, false)";

/// Whether the session holds statements prepared with SQL other than the sentinel: column
/// `held`, any; column `before`, one prepared before the last transaction-form checkout's
/// stamp ([`STAMP_CHECKOUT`]; any, when the stamp is missing). Read after an async
/// transaction-form checkout whose transaction did not commit, with
/// `verify_prepared_statements`: a statement prepared before the checkout failed its proof.
#[cfg(feature = "async")]
pub(crate) const SQL_PREPARED_HELD: &str = concat!(
    "SELECT COALESCE(pg_catalog.bool_or(true), false) AS held, \
     COALESCE(pg_catalog.bool_or(pg_catalog.extract('epoch', p.prepare_time) OPERATOR(pg_catalog.<) \
     COALESCE(NULLIF(pg_catalog.current_setting('pgschemas_diesel.checkout_at', true), ''), \
     'Infinity')::pg_catalog.numeric), false) AS before ",
    sql_prepared_statements!()
);

/// [`AND_NO_SQL_PREPARED`] when `verify`; else nothing.
fn prepared_check(verify: bool) -> &'static str {
    if verify { AND_NO_SQL_PREPARED } else { "" }
}

/// The condition that no transaction was open before this message.
const NO_TRANSACTION_BEFORE: &str =
    "pg_catalog.transaction_timestamp() OPERATOR(pg_catalog.=) pg_catalog.statement_timestamp()";

/// `true` when `condition` holds; otherwise an error, which rolls the message's transaction
/// back. See [`raise`].
pub(crate) fn raise_unless(condition: &str, message: &str) -> String {
    format!(
        "CASE WHEN {condition} THEN true ELSE {} END",
        raise(message)
    )
}

/// An expression that raises an error whose text names `message` (for the server's log
/// only: a failure is explained from values read afterwards): `set_config` of a parameter
/// named by the message, a name with spaces that no parameter can have. A function call the
/// planner does not fold, and cheaper to parse and plan than a cast of a `concat`.
fn raise(message: &str) -> String {
    debug_assert!(message.contains(' '), "a message no parameter is named by");
    format!(
        "pg_catalog.set_config({}, '', true) IS NULL",
        crate::name::dollar_quote(message)
    )
}

/// The name of the session form's sentinel, a prepared statement made once per connection.
const SENTINEL: &str = "pgschemas_diesel_sentinel";

/// Prepares the session form's sentinel on a new connection (once per connection): `DISCARD
/// ALL` or `DEALLOCATE ALL` removes it together with Diesel's own cached statements, and the
/// next checkout, which runs it, then fails and discards the connection, instead of handing
/// out one whose statement cache no longer exists on the server.
pub(crate) fn prepare_sql() -> String {
    format!("PREPARE {SENTINEL} AS SELECT")
}

/// The session form's checkout: the sentinel (first, so that whatever a statement of that
/// name does is reset after it), the reset, then restore, path, role (with per-tenant roles)
/// and, last in the same select list, the proof: the schema is usable by the role now in
/// effect, which is the path's, no transaction was open before this message, and the session
/// is the pool's login. Every operator is written `OPERATOR(pg_catalog.=)`: the reset puts the
/// role's default path in effect, which may name a schema with operators of its own.
///
/// With `verify_prepared`, the proof also covers the session's prepared statements
/// ([`crate::Config::verify_prepared_statements`]).
pub(crate) fn session_sql(path: &SearchPath, login: &Login, verify_prepared: bool) -> String {
    let schema = path.schema_literal();
    format!(
        "EXECUTE {SENTINEL}; {RESET}; SELECT {RESTORE}, {}{}, {}",
        set_path_call(&path.literal(), false),
        set_role(path.path_role(), false),
        raise_unless(
            &format!(
                "{} AND {NO_TRANSACTION_BEFORE} AND {}{}",
                proof(&schema, path.path_role()),
                login.condition(),
                prepared_check(verify_prepared),
            ),
            &format!(
                "pgschemas_diesel: connection refused for schema {}: missing, not usable, \
                 its role not in effect, a transaction left open, another login or database, \
                 or a statement prepared with SQL",
                path.schema()
            ),
        ),
    )
}

/// The login a pooled connection was made as (`session_user`) and the database it is connected
/// to, read from the server once per connection. Every checkout proves the session still has
/// both: a connection object replaced through the `&mut` a caller is lent (a connection of
/// another login, or to another database, put into the pool) is refused, never handed to the
/// next caller. The database is also the `db.namespace` of the crate's tracing spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Login {
    /// `session_user`.
    pub(crate) name: String,
    /// `current_database()`.
    pub(crate) database: String,
}

impl Login {
    /// The query that reads it.
    pub(crate) const QUERY: &'static str = "SELECT session_user::pg_catalog.text AS login, \
         pg_catalog.current_database()::pg_catalog.text AS database";

    /// The login of `row`.
    pub(crate) fn from_row(row: LoginRow) -> Self {
        Self {
            name: row.login,
            database: row.database,
        }
    }

    /// The condition that the session's login and database are this one's; the names are
    /// written in ASCII, whatever they hold, and read the same whatever the session's
    /// settings ([`crate::name::text_literal`]).
    fn condition(&self) -> String {
        format!(
            "session_user OPERATOR(pg_catalog.=) {}::pg_catalog.name \
             AND pg_catalog.current_database() OPERATOR(pg_catalog.=) {}::pg_catalog.name",
            crate::name::text_literal(&self.name),
            crate::name::text_literal(&self.database)
        )
    }
}

/// What [`Login::QUERY`] returns.
#[derive(QueryableByName)]
pub(crate) struct LoginRow {
    #[diesel(sql_type = Text)]
    pub(crate) login: String,
    #[diesel(sql_type = Text)]
    pub(crate) database: String,
}

/// The transaction form's checkout: reset and restore the session in a transaction of its
/// own, committed before the caller's begins, so that nothing the caller does (a raw
/// `ROLLBACK` included) can bring the previous user's state back; the session path is left
/// empty, so that a statement run after a raw `COMMIT` finds no tenant's or shared table; then
/// `BEGIN`, the path (and role) for this transaction only, and the proof that the schema is
/// usable by the role then in effect and that this role is the path's.
///
/// The async pool sends the caller's first statement without waiting for this message's
/// answer, so no failure here may leave a session the caller could go on with:
/// - a transaction left open before the message (the first `BEGIN` then runs inside it, and
///   its `COMMIT` would commit the earlier user's work), or a session of another login or
///   database than the pool's ([`Login`]), ends the backend: the proof returns to the login role and
///   terminates its own backend, so the caller's statements, already on their way, are never
///   run;
/// - a schema or role refused in the caller's transaction aborts it, after the empty path is
///   committed: every statement sent after this message fails until the `ROLLBACK`, and the
///   session after that `ROLLBACK` has the empty path, not the previous user's.
///
/// With per-tenant roles, the tenant's role is set for the transaction (`SET LOCAL ROLE`) with
/// its path, and the proof after both reads it in effect.
pub(crate) fn transaction_sql(path: &SearchPath, login: &Login, verify_prepared: bool) -> String {
    let schema = path.schema_literal();
    format!(
        "BEGIN; {RESET}; SELECT {RESTORE}, {}{} WHERE {}; COMMIT; BEGIN; SELECT {}{}, {}",
        set_path_call("''", false),
        if verify_prepared { STAMP_CHECKOUT } else { "" },
        end_backend_unless(
            &format!("{NO_TRANSACTION_BEFORE} AND {}", login.condition()),
            "pgschemas_diesel: connection ended: a transaction was left open on it, or it is another login or database",
        ),
        set_path_call(&path.literal(), true),
        set_role(path.path_role(), true),
        raise_unless(
            &format!(
                "{}{}",
                proof(&schema, path.path_role()),
                prepared_check(verify_prepared)
            ),
            &format!(
                "pgschemas_diesel: schema {} is missing or not usable, its role is not in effect, \
                 or a statement was prepared with SQL",
                path.schema()
            ),
        ),
    )
}

/// `true` when `condition` holds; otherwise the backend terminates itself (as the login role,
/// which may always end its own backend) and the statement raises: the message is rolled
/// back, and the backend exits before it reads another one.
fn end_backend_unless(condition: &str, message: &str) -> String {
    format!(
        "CASE WHEN {condition} THEN true \
         ELSE (pg_catalog.set_config('role', 'none', true) IS NOT NULL \
               AND pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid()) \
               AND {}) END",
        raise(message)
    )
}

/// The async transaction form's commit: a proof that the transaction its checkout opened is
/// still open and not aborted, then `COMMIT`, in one message. In an aborted transaction the
/// proof fails where `COMMIT` alone would roll back and report success; after a `ROLLBACK` or
/// `COMMIT` of the caller's own, the message begins its own transaction, stamped with its own
/// time, and the proof fails too.
#[cfg(feature = "async")]
pub(crate) fn commit_sql(verify_prepared: bool) -> &'static str {
    fn sql(verify_prepared: bool) -> String {
        format!(
            "SELECT {}, {}; COMMIT",
            raise_unless(
                &format!(
                    "pg_catalog.transaction_timestamp() OPERATOR(pg_catalog.<) \
                     pg_catalog.statement_timestamp(){}",
                    if verify_prepared {
                        AND_NONE_PREPARED_BEFORE
                    } else {
                        ""
                    }
                ),
                "pgschemas_diesel: the transaction ended before its commit, or a statement \
                 was prepared with SQL before its checkout",
            ),
            set_path_call("''", false),
        )
    }
    static PLAIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sql(false));
    static VERIFYING: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sql(true));
    if verify_prepared { &VERIFYING } else { &PLAIN }
}

/// ` AND ` the condition that no statement but the sentinel was prepared with SQL before the
/// transaction being committed began: the async transaction form's commit with
/// `verify_prepared_statements`. The checkout's transaction begins in the checkout's message,
/// so a statement planted before it counts and one the body prepared does not; a body that
/// ended the refused transaction and began one of its own commits nothing either. Read from
/// the server's clock only: no setting the body can reset (`RESET ALL`) changes it.
#[cfg(feature = "async")]
const AND_NONE_PREPARED_BEFORE: &str = concat!(
    " AND NOT EXISTS (SELECT ",
    sql_prepared_statements!(),
    " AND p.prepare_time OPERATOR(pg_catalog.<) pg_catalog.transaction_timestamp())"
);

/// `BEGIN` and the transaction's path on a connection the crate does not manage (a plain
/// [`PgConnection`]): nothing of the session is reset, but the schema and the absence of an
/// open transaction are proven as at a checkout.
pub(crate) fn plain_transaction_sql(path: &SearchPath) -> String {
    let schema = path.schema_literal();
    format!(
        "BEGIN; SELECT {}{}, {}",
        set_path_call(&path.literal(), true),
        set_role(path.path_role(), true),
        raise_unless(
            &format!(
                "{} AND {NO_TRANSACTION_BEFORE}",
                proof(&schema, path.path_role())
            ),
            &format!(
                "pgschemas_diesel: connection refused for schema {}: missing, not usable, \
                 its role not in effect, or a transaction was left open",
                path.schema()
            ),
        ),
    )
}

/// What the server says of a schema, read with bound values.
#[derive(QueryableByName, Debug)]
pub(crate) struct Probe {
    /// The schema exists.
    #[diesel(sql_type = Bool)]
    pub(crate) found: bool,
    /// The role the path runs as has `USAGE` on it.
    #[diesel(sql_type = Bool)]
    pub(crate) usable: bool,
    /// The role the path runs as (the current role when the path names none).
    #[diesel(sql_type = Text)]
    pub(crate) role: String,
    /// That role exists.
    #[diesel(sql_type = Bool)]
    pub(crate) role_found: bool,
    /// The login (`session_user`) may switch to it.
    #[diesel(sql_type = Bool)]
    pub(crate) member: bool,
    /// The login.
    #[diesel(sql_type = Text)]
    pub(crate) login: String,
    /// The path now in effect when the probe was asked to set it and could.
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) set: Option<String>,
}

impl Probe {
    /// The error this probe means for `path`, if any.
    pub(crate) fn refusal(&self, path: &SearchPath) -> Option<Error> {
        let schema = path.schema().to_string();
        if !self.found {
            Some(Error::SchemaNotFound { schema })
        } else if !self.role_found {
            Some(Error::TenantRoleMissing {
                schema,
                role: self.role.clone(),
            })
        } else if !self.member {
            Some(Error::NotMemberOfRole {
                schema,
                role: self.role.clone(),
                login: self.login.clone(),
            })
        } else if !self.usable {
            Some(Error::SchemaNotUsable {
                schema,
                role: self.role.clone(),
            })
        } else {
            None
        }
    }
}

/// The query that reads whether `path`'s schema exists and is usable by the role the path
/// runs as (which exists and the login may switch to) and, when `set` and it is, sets the
/// session's role (with per-tenant roles) and path to `path`'s in the same statement (a
/// refusal leaves both as they were). Boxed, so that sync and async connections run the
/// same one.
pub(crate) fn probe_query(path: &SearchPath, set: bool) -> BoxedSqlQuery<'_, Pg, SqlQuery> {
    let role = match path.path_role() {
        PathRole::Unmanaged => "current_user".to_owned(),
        PathRole::Login => "session_user".to_owned(),
        PathRole::Named(r) => format!("{}::pg_catalog.name", r.literal()),
    };
    let set_sql = match path.path_role().set_call(false) {
        Some(call) => format!(
            "CASE WHEN {call} IS NOT NULL THEN {} END",
            set_path_call("$2", false)
        ),
        None => set_path_call("$2", false),
    };
    diesel::sql_query(format!(
        "SELECT s.oid IS NOT NULL AS found, \
         COALESCE(pg_catalog.has_schema_privilege(r.oid, s.oid, 'USAGE'), false) AS usable, \
         r.name::pg_catalog.text AS role, r.oid IS NOT NULL AS role_found, \
         COALESCE(pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'), false) AS member, \
         session_user::pg_catalog.text AS login, \
         CASE WHEN $3 AND pg_catalog.has_schema_privilege(r.oid, s.oid, 'USAGE') \
         AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') \
         THEN {set_sql} END AS set \
         FROM (SELECT pg_catalog.to_regnamespace($1)::pg_catalog.oid AS oid) s, \
         (SELECT n.name, (SELECT a.oid FROM pg_catalog.pg_roles a \
         WHERE a.rolname OPERATOR(pg_catalog.=) n.name) AS oid FROM (SELECT {role} AS name) n) r"
    ))
    .into_boxed()
    .bind::<Text, _>(path.schema().quoted())
    .bind::<Text, _>(path.as_sql_value())
    .bind::<Bool, _>(set)
}

/// Runs [`probe_query`] on a sync connection.
pub(crate) fn probe(conn: &mut PgConnection, path: &SearchPath, set: bool) -> QueryResult<Probe> {
    probe_query(path, set).get_result(conn)
}

/// Why a checkout statement failed, read after the failure.
pub(crate) enum Refusal {
    /// The schema is missing or not usable: an error for the caller; the connection is sound
    /// (its state was rolled back with the failed statement and will be reset again by the
    /// next checkout).
    Schema(Error),
    /// The connection cannot be trusted (a transaction was left open, the backend is gone, or
    /// the failure cannot be explained): it must be discarded.
    Connection(Error),
}

impl Refusal {
    /// The error for the caller, whichever it is.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Self::Schema(e) | Self::Connection(e) => e,
        }
    }
}

/// What a failed statement left on the session, to be ended before the server is asked why
/// it failed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leftover {
    /// The pool's session form: nothing of its own. The session is reset, in a statement of
    /// its own, which fails when a transaction the caller left open is still there (aborted).
    Session,
    /// The pool's transaction form: the transaction the statement opened, rolled back, then
    /// the session reset as for [`Session`](Self::Session).
    Transaction,
    /// A `BEGIN` message on a connection the crate does not manage: the transaction it
    /// opened is rolled back, and nothing of the session is reset. The schema being fine, the
    /// guard failed on a transaction that was open before it.
    PlainTransaction,
}

/// The statements that end what a failed statement left (`leftover`), in order, before the
/// server is asked why it failed: a failing one means the connection cannot be trusted.
pub(crate) fn cleanup_sql(leftover: Leftover) -> Vec<String> {
    let mut steps = Vec::new();
    if leftover != Leftover::Session {
        steps.push("ROLLBACK".to_owned());
    }
    if leftover != Leftover::PlainTransaction {
        steps.push(format!(
            "{RESET}; SELECT {RESTORE}, {}",
            set_path_call("''", false)
        ));
    }
    steps
}

/// What a failed statement for `path` means, from the probe the server answered after the
/// [`cleanup_sql`] steps (`None` when a step or the probe itself failed).
pub(crate) fn judge(
    path: &SearchPath,
    failure: DieselError,
    leftover: Leftover,
    probe: Option<Probe>,
) -> Refusal {
    let schema = path.schema().as_str();
    match probe.map(|p| p.refusal(path)) {
        Some(Some(e)) => Refusal::Schema(e),
        Some(None) if leftover == Leftover::PlainTransaction => {
            Refusal::Connection(Error::SessionState {
                schema: schema.to_owned(),
                reason: SessionProblem::TransactionOpen,
            })
        }
        Some(None) | None => Refusal::Connection(Error::db(schema, failure)),
    }
}

/// Explains a failed statement for `path` on a sync connection: ends what it left
/// (`leftover`), then reads the schema's state with bound values.
pub(crate) fn explain(
    conn: &mut PgConnection,
    path: &SearchPath,
    failure: DieselError,
    leftover: Leftover,
) -> Refusal {
    let cleaned = cleanup_sql(leftover)
        .iter()
        .all(|sql| conn.batch_execute(sql).is_ok());
    let probe = cleaned.then(|| probe(conn, path, false).ok()).flatten();
    judge(path, failure, leftover, probe)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::name::SchemaName;

    /// `t1, public`: the path the unit tests of the checkout and of the pools' rules use.
    pub(crate) fn path() -> SearchPath {
        let n = |s: &str| SchemaName::new(s).unwrap_or_else(|e| panic!("{e}"));
        SearchPath::new(n("t1"), [n("public")].iter())
    }

    #[test]
    fn the_session_form_resets_before_it_proves() {
        let sql = session_sql(
            &path(),
            &Login {
                name: "app".into(),
                database: "db".into(),
            },
            false,
        );
        assert!(sql.starts_with(
            "EXECUTE pgschemas_diesel_sentinel; RESET SESSION AUTHORIZATION; RESET ALL;"
        ));
        assert!(!sql.contains(" = "), "no unqualified operator");
        assert!(sql.contains(r#"set_config('search_path', '"t1", "public", pg_temp', false)"#));
        assert!(sql.contains(r#"to_regnamespace('"t1"')"#));
        assert_eq!(prepare_sql(), "PREPARE pgschemas_diesel_sentinel AS SELECT");
        assert_eq!(
            sql.matches("; ").count(),
            7,
            "one message, eight statements"
        );
        assert!(sql.contains("session_user OPERATOR(pg_catalog.=) $pgschemas$app$pgschemas$"));
        let odd = Login {
            name: "a$pgschemas$b".into(),
            database: "db".into(),
        }
        .condition();
        assert!(
            odd.contains(") $pgschemas_$a$pgschemas$b$pgschemas_$::pg_catalog.name AND"),
            "{odd}"
        );
        assert!(
            odd.ends_with("current_database() OPERATOR(pg_catalog.=) $pgschemas$db$pgschemas$::pg_catalog.name"),
            "{odd}"
        );
    }

    #[test]
    fn the_prepared_statement_check_spares_the_sentinel() {
        assert!(AND_NO_SQL_PREPARED.contains(&format!("'{SENTINEL}'")));
        #[cfg(feature = "async")]
        {
            assert!(SQL_PREPARED_HELD.contains(&format!("'{SENTINEL}'")));
            let stamp = "'pgschemas_diesel.checkout_at'";
            assert!(STAMP_CHECKOUT.contains(stamp) && SQL_PREPARED_HELD.contains(stamp));
        }
        let login = Login {
            name: "app".into(),
            database: "db".into(),
        };
        assert!(session_sql(&path(), &login, true).contains(AND_NO_SQL_PREPARED));
        assert!(transaction_sql(&path(), &login, true).contains(AND_NO_SQL_PREPARED));
        assert!(!session_sql(&path(), &login, false).contains("pg_prepared_statement"));
        assert!(transaction_sql(&path(), &login, true).contains(STAMP_CHECKOUT));
        assert!(!transaction_sql(&path(), &login, false).contains("checkout_at"));
    }

    #[test]
    fn the_transaction_form_commits_the_reset_before_its_own_begin() {
        let sql = transaction_sql(
            &path(),
            &Login {
                name: "app".into(),
                database: "db".into(),
            },
            false,
        );
        let commit = sql.find("COMMIT; BEGIN;").unwrap_or(0);
        assert!(commit > sql.find("RESET ALL").unwrap_or(usize::MAX));
        assert!(sql.contains(r#"set_config('search_path', '"t1", "public", pg_temp', true)"#));
        assert!(sql[..commit].contains("set_config('search_path', '', false)"));
        assert!(sql[..commit].contains("transaction_timestamp()"));
        assert!(!sql[..commit].contains("to_regnamespace"));
        assert!(sql[commit..].contains(r#"to_regnamespace('"t1"')"#));
    }
}
