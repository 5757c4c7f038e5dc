//! A row of the user's tenant or domain table that cannot be used: carried by
//! [`Error::InvalidRow`](crate::Error::InvalidRow) and the reports, defined here, below the
//! catalog that finds such rows, so that errors depend on nothing above them.

use std::fmt;

/// Which table a [`InvalidRow`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RowKind {
    /// A row of the tenant model.
    Tenant,
    /// A row of the domain model.
    Domain,
}

impl fmt::Display for RowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tenant => "tenant",
            Self::Domain => "domain",
        })
    }
}

/// A row of the tenant or domain table that cannot be used: a tenant whose stored schema
/// name is not valid, a domain whose host or folder routing could never match, a domain of
/// such a tenant (or of no tenant), a row that clashes with the configuration or another row.
///
/// One bad row never stops the others: routing, the [`Migrator`](crate::migrate::Migrator), the CLI
/// and [`doctor`](crate::doctor::doctor) leave it out and report it (the
/// [`RouteOptions::on_error`](crate::routing::RouteOptions::on_error) callback receives it as
/// [`Error::InvalidRow`](crate::Error::InvalidRow), a [`MigrationReport`](crate::migrate::MigrationReport)
/// lists it in `invalid_rows`, `doctor` has an `invalid-rows` finding). `Display` is one line
/// that names the row and says why it was left out.
///
/// ```
/// use pgschemas_diesel::catalog::{InvalidRow, RowKind};
///
/// let row = InvalidRow::tenant("3", "Bad Name", r#"invalid schema name "Bad Name": it has a space"#);
/// assert_eq!(row.kind, RowKind::Tenant);
/// assert_eq!(
///     row.to_string(),
///     r#"tenant "3" left out: invalid schema name "Bad Name": it has a space"#,
/// );
/// let route = InvalidRow::domain("3", "bad.example.com", "its tenant is left out");
/// assert_eq!(route.to_string(), r#"domain "bad.example.com" of tenant "3" left out: its tenant is left out"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct InvalidRow {
    /// The table the row is in.
    pub kind: RowKind,
    /// The tenant's key as text ([`TenantRecord::id`](crate::catalog::TenantRecord::id)); for a domain row, its tenant's key.
    pub tenant_id: String,
    /// What names the row, as stored: a tenant's schema name, a domain's route (`domain` or
    /// `domain/folder`).
    pub value: String,
    /// Why it was left out, in lower case; it names the offending value.
    pub reason: String,
}

impl InvalidRow {
    /// A tenant row, by its key, its schema name as stored and why it is left out.
    ///
    /// ```
    /// let row = pgschemas_diesel::catalog::InvalidRow::tenant("3", "Bad Name", "it has a space");
    /// assert_eq!(row.value, "Bad Name");
    /// ```
    pub fn tenant(
        id: impl Into<String>,
        schema: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Self::new(RowKind::Tenant, id.into(), schema.into(), why.into())
    }

    /// A domain row, by its tenant's key, its route (`domain` or `domain/folder`) and why it
    /// is left out.
    ///
    /// ```
    /// let row = pgschemas_diesel::catalog::InvalidRow::domain("3", "example.com/a b", "bad folder");
    /// assert_eq!(row.tenant_id, "3");
    /// ```
    pub fn domain(id: impl Into<String>, route: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(RowKind::Domain, id.into(), route.into(), why.into())
    }

    fn new(kind: RowKind, tenant_id: String, value: String, reason: String) -> Self {
        Self {
            kind,
            tenant_id,
            value,
            reason,
        }
    }
}

impl fmt::Display for InvalidRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (id, value, reason) = (&self.tenant_id, &self.value, &self.reason);
        // A tenant's reason names its schema name already.
        match self.kind {
            RowKind::Tenant => write!(f, "tenant {id:?} left out: {reason}"),
            RowKind::Domain => write!(f, "domain {value:?} of tenant {id:?} left out: {reason}"),
        }
    }
}
