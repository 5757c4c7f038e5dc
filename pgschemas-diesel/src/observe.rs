//! What the crate tells `tracing` and, with the `metrics` feature, the `metrics` facade: one
//! function per thing observed, so that the code doing the work calls one line.
//!
//! Spans and events (targets under `pgschemas_diesel`):
//! - `pgschemas.checkout` (debug): a pool's checkout, fields `tenant.schema`, `db.namespace`
//!   (`<database>|<schema>`, OpenTelemetry's form for PostgreSQL), `pgschemas.form`
//!   (`session`, `transaction`, `neutral`);
//! - `pgschemas.scope` (debug): a session-form scope, from the checkout to its end (never
//!   entered), the same fields but the form;
//! - `pgschemas.transaction` (debug): the transaction form's closure, the same fields;
//! - `pgschemas.migrate` (info): one schema's migration run, field `tenant.schema`;
//! - `pgschemas.provision` (info): a tenant's creation or drop, fields `tenant.schema`,
//!   `pgschemas.step`.
//!
//! Events: a served checkout (trace), a refused schema (debug), a discarded connection with
//! its reason (warn), a spent connection retired (debug), each schema migrated with its versions, duration and outcome (info when
//! something was applied or failed, debug otherwise), provisioning steps (debug) and their end
//! (info), route-table reloads (debug; the first load at info), listener reconnects (info)
//! and failures (warn), catalog rows a snapshot leaves out (warn). In steady state (requests
//! served, nothing provisioned or migrated) nothing is logged at `info`.
//!
//! Metrics (feature `metrics`), all prefixed `pgschemas_`: `checkouts_total{form}`,
//! `switches_total` (a checkout for another schema than the connection's previous one),
//! `discards_total{reason}` (`spent` for retirements), `refusals_total{reason}`, `migration_seconds{schema,outcome}`
//! (histogram), `route_table_routes` and `route_table_loaded_at_seconds` (gauges: size, and
//! the Unix time of the last load; the age is now minus it).

use std::time::Duration;

use tracing::{Level, Span};

/// The checkout span for `schema` on `database` in `form`.
pub(crate) fn checkout_span(form: &'static str, schema: &str) -> Span {
    tracing::span!(
        target: "pgschemas_diesel",
        Level::DEBUG,
        "pgschemas.checkout",
        tenant.schema = schema,
        db.namespace = tracing::field::Empty,
        pgschemas.form = form,
    )
}

/// Records `db.namespace` on a checkout span once the connection's database is known.
pub(crate) fn record_namespace(span: &Span, database: &str, schema: &str) {
    if !span.is_disabled() {
        span.record(
            "db.namespace",
            tracing::field::display(Namespace(database, schema)),
        );
    }
}

/// The span of a session-form scope's life (`TenantScope`, `AsyncTenantScope`): opened when
/// the checkout hands the connection out, closed when the scope ends; never entered, so that
/// it times the scope without becoming the parent of the caller's own spans.
pub(crate) fn scope_span(schema: &str, database: &str) -> Span {
    tracing::span!(
        target: "pgschemas_diesel",
        Level::DEBUG,
        "pgschemas.scope",
        tenant.schema = schema,
        db.namespace = %Namespace(database, schema),
    )
}

/// The span of a transaction-form closure (`db.namespace` recorded once the connection's
/// database is known, [`record_namespace`]).
pub(crate) fn transaction_span(schema: &str) -> Span {
    tracing::span!(
        target: "pgschemas_diesel",
        Level::DEBUG,
        "pgschemas.transaction",
        tenant.schema = schema,
        db.namespace = tracing::field::Empty,
    )
}

/// `<database>|<schema>`.
struct Namespace<'a>(&'a str, &'a str);

impl std::fmt::Display for Namespace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}|{}", self.0, self.1)
    }
}

/// A checkout was served; `switched` when the connection's previous checkout was for
/// another schema.
pub(crate) fn served(form: &'static str, schema: &str, switched: bool) {
    tracing::trace!(
        tenant.schema = schema,
        pgschemas.form = form,
        switched,
        "checkout served"
    );
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("pgschemas_checkouts_total", "form" => form).increment(1);
        if switched {
            metrics::counter!("pgschemas_switches_total").increment(1);
        }
    }
}

/// A checkout refused the schema (missing, not usable, its role missing): the caller's error.
pub(crate) fn refused(schema: &str, error: &crate::Error) {
    tracing::debug!(tenant.schema = schema, error = %error.report(), "checkout refused");
    #[cfg(feature = "metrics")]
    metrics::counter!("pgschemas_refusals_total", "reason" => refusal_reason(error)).increment(1);
}

#[cfg(feature = "metrics")]
fn refusal_reason(error: &crate::Error) -> &'static str {
    use crate::Error;
    match error {
        Error::SchemaNotFound { .. } => "schema_not_found",
        Error::SchemaNotUsable { .. } => "schema_not_usable",
        Error::TenantRoleMissing { .. } => "role_missing",
        Error::NotMemberOfRole { .. } => "not_member_of_role",
        Error::Login { .. } => "login",
        _ => "other",
    }
}

/// Reports a connection discarded for a panic ([`discarded`], reason `panic`) when dropped
/// while its thread unwinds one: for a connection the unwinding drops before its check-in.
pub(crate) struct PanicReport<'a>(pub(crate) &'a str);

impl Drop for PanicReport<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            discarded(Some(self.0), "panic", None);
        }
    }
}

/// A connection was discarded: `reason` says why (a failed proof, a panic, a failed restore,
/// a spent connection), `error` what the server said, if anything.
pub(crate) fn discarded(schema: Option<&str>, reason: &'static str, error: Option<&crate::Error>) {
    let schema = schema.unwrap_or("");
    match error {
        Some(e) => {
            tracing::warn!(tenant.schema = schema, reason, error = %e.report(), "connection discarded")
        }
        None => tracing::warn!(tenant.schema = schema, reason, "connection discarded"),
    }
    #[cfg(feature = "metrics")]
    metrics::counter!("pgschemas_discards_total", "reason" => reason).increment(1);
}

/// A connection that served its `max_tenants_per_connection` is closed: routine, at debug.
pub(crate) fn retired() {
    tracing::debug!("connection retired after serving its tenants");
    #[cfg(feature = "metrics")]
    metrics::counter!("pgschemas_discards_total", "reason" => "spent").increment(1);
}

/// The span of one schema's migration run.
pub(crate) fn migrate_span(schema: &str) -> Span {
    tracing::span!(target: "pgschemas_diesel", Level::INFO, "pgschemas.migrate", tenant.schema = schema)
}

/// One schema's migration run ended: the versions applied, how long it took, and whether
/// it succeeded.
pub(crate) fn migrated(
    schema: &str,
    applied: &[String],
    took: Duration,
    failed: Option<&dyn std::fmt::Display>,
) {
    let ms = took.as_secs_f64() * 1e3;
    match failed {
        Some(e) => {
            tracing::error!(tenant.schema = schema, applied = ?applied, duration_ms = ms, outcome = "failed", error = %e, "schema migration failed")
        }
        None if applied.is_empty() => tracing::debug!(
            tenant.schema = schema,
            duration_ms = ms,
            outcome = "up_to_date",
            "schema up to date"
        ),
        None => {
            tracing::info!(tenant.schema = schema, applied = ?applied, duration_ms = ms, outcome = "applied", "schema migrated")
        }
    }
    #[cfg(feature = "metrics")]
    {
        let outcome = match failed {
            Some(_) => "failed",
            None if applied.is_empty() => "up_to_date",
            None => "applied",
        };
        metrics::histogram!("pgschemas_migration_seconds", "schema" => schema.to_owned(), "outcome" => outcome)
            .record(took.as_secs_f64());
    }
}

/// The span of a tenant's provisioning (`step`: `create`, `create_existing`, `drop`).
fn provision_span(schema: &str, step: &'static str) -> Span {
    tracing::span!(target: "pgschemas_diesel", Level::INFO, "pgschemas.provision", tenant.schema = schema, pgschemas.step = step)
}

/// Runs `f`, a tenant's provisioning (`step`: `create`, `provision_existing`, `drop`), in its
/// span, and reports how it ended.
pub(crate) fn provisioning<T>(
    schema: &str,
    step: &'static str,
    f: impl FnOnce() -> crate::Result<T>,
) -> crate::Result<T> {
    let span = provision_span(schema, step);
    let _entered = span.enter();
    let started = std::time::Instant::now();
    let result = f();
    provisioned(schema, step, started.elapsed(), result.as_ref().err());
    result
}

/// A provisioning step is done.
pub(crate) fn provision_step(schema: &str, step: &'static str) {
    tracing::debug!(tenant.schema = schema, step, "provisioning step done");
}

/// A tenant's provisioning ended.
fn provisioned(schema: &str, step: &'static str, took: Duration, error: Option<&crate::Error>) {
    let ms = took.as_secs_f64() * 1e3;
    match error {
        None => tracing::info!(
            tenant.schema = schema,
            step,
            duration_ms = ms,
            "tenant provisioned"
        ),
        Some(e) => {
            tracing::warn!(tenant.schema = schema, step, duration_ms = ms, error = %e.report(), "tenant provisioning failed; nothing was kept")
        }
    }
}

/// A route table snapshot was published: its version and number of routes.
pub(crate) fn route_table_loaded(version: u64, routes: usize, left_out: usize) {
    if version <= 1 {
        tracing::info!(version, routes, left_out, "route table loaded");
    } else {
        tracing::debug!(version, routes, left_out, "route table reloaded");
    }
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("pgschemas_route_table_routes").set(routes as f64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("pgschemas_route_table_loaded_at_seconds").set(now);
    }
}

/// A catalog row a route table snapshot leaves out.
pub(crate) fn bad_row(row: &crate::catalog::InvalidRow) {
    tracing::warn!(row = %row, "catalog row skipped");
}

/// The route listener connected again.
pub(crate) fn listener_reconnected(reconnects: u64) {
    tracing::info!(reconnects, "route listener reconnected");
}

/// The route listener's connection or a reload failed.
pub(crate) fn listener_failed(error: &crate::Error) {
    tracing::warn!(error = %error.report(), "route listener failed");
}
