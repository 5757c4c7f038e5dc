//! The typed fields of [`Error`](crate::Error)'s variants, for callers that branch on them;
//! each `Display`s as the words the variant's message uses.

use std::fmt;

pub use crate::domain::{DomainFault, FolderFault};
use crate::name::InvalidReason;

/// What the configuration uses a schema for: why a name clashes
/// ([`Error::NameClash`](crate::Error::NameClash)) or a schema is protected
/// ([`Error::Protected`](crate::Error::Protected)).
///
/// ```
/// use pgschemas_diesel::{Config, ConfiguredSchema, Error};
///
/// let config = Config::builder().build()?;
/// match config.check_tenant_name("public") {
///     Err(Error::NameClash { with: ConfiguredSchema::SharedSchema, .. }) => {}
///     other => panic!("unexpected: {other:?}"),
/// }
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfiguredSchema {
    /// The shared schema (`public` by default).
    SharedSchema,
    /// A static tenant's schema.
    StaticTenant,
    /// The clone reference.
    CloneReference,
    /// An extra search path.
    ExtraSearchPath,
}

impl ConfiguredSchema {
    /// The words with an indefinite article where one fits: `a static tenant`.
    pub(crate) fn indefinite(self) -> &'static str {
        match self {
            Self::SharedSchema => "the shared schema",
            Self::StaticTenant => "a static tenant",
            Self::CloneReference => "the clone reference",
            Self::ExtraSearchPath => "an extra search path",
        }
    }
}

impl fmt::Display for ConfiguredSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SharedSchema => "the shared schema",
            Self::StaticTenant => "the static tenant",
            Self::CloneReference => "the clone reference",
            Self::ExtraSearchPath => "the extra search path",
        })
    }
}

/// What is wrong with a connection's session; see
/// [`Error::SessionState`](crate::Error::SessionState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionProblem {
    /// A transaction was open on a plain connection; it has been rolled back.
    TransactionOpen,
    /// Diesel's own transaction manager has a transaction open on the connection.
    DieselTransactionOpen,
    /// The server did not report the `search_path` that was just set.
    PathNotReported,
    /// No connection of the pool passed the checkout.
    NoConnectionPassed,
    /// The session held a statement prepared with SQL `PREPARE`
    /// ([`Config::verify_prepared_statements`](crate::Config::verify_prepared_statements)):
    /// an async transaction-form checkout refused it after the body was sent, so nothing of
    /// the body ran or committed; the connection has been closed, and the transaction can be
    /// run again.
    StatementPreparedWithSql,
}

impl fmt::Display for SessionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TransactionOpen => {
                "a transaction was already open on this connection (it has been rolled back)"
            }
            Self::DieselTransactionOpen => {
                "Diesel already has a transaction open on this connection"
            }
            Self::PathNotReported => "the server did not report the path that was set",
            Self::NoConnectionPassed => "no connection of the pool passed the checkout",
            Self::StatementPreparedWithSql => {
                "the session held a statement prepared with SQL (the connection has been \
                 closed; nothing was committed)"
            }
        })
    }
}

/// A provisioning hook; see [`Error::Hook`](crate::Error::Hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookName {
    /// `after_sync`: after a tenant's schema is migrated or cloned.
    AfterSync,
    /// `needs_sync`: after a tenant's rows are written without a schema.
    NeedsSync,
    /// `before_drop`: before a tenant's schema is dropped.
    BeforeDrop,
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AfterSync => "after_sync",
            Self::NeedsSync => "needs_sync",
            Self::BeforeDrop => "before_drop",
        })
    }
}

/// What the source of a clone holds that the clone cannot reproduce; see
/// [`Error::Clone`](crate::Error::Clone).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloneRefusal {
    /// Objects the clone does not reproduce, each as the SQL that describes it.
    Unsupported {
        /// The objects.
        objects: Vec<String>,
    },
    /// PostgreSQL printed a definition in a form the clone cannot rewrite.
    UnexpectedDefinition {
        /// The object, e.g. `view t1.report`.
        what: String,
        /// The definition as printed.
        definition: String,
        /// The schema-qualified prefix it should have started with.
        qualified: String,
    },
}

impl fmt::Display for CloneRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported { objects } => write!(
                f,
                "it holds objects the clone does not reproduce: {}",
                objects.join(", ")
            ),
            Self::UnexpectedDefinition {
                what,
                definition,
                qualified,
            } => write!(
                f,
                "PostgreSQL printed the definition of {what} in an unexpected form ({definition:?} does not start with {qualified:?})"
            ),
        }
    }
}

/// An object outside a schema that depends on (or owns) an object inside it; see
/// [`Error::Dependents`](crate::Error::Dependents).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dependent {
    /// The outside object: its kind and schema-qualified name, e.g. `view public.report`.
    pub object: String,
    /// Whether it owns the inside object (an extension) rather than depends on it.
    pub owns: bool,
    /// The inside object, e.g. `table t1.orders`.
    pub inside: String,
}

impl fmt::Display for Dependent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.owns { "owns" } else { "depends on" };
        write!(f, "{} ({how} {})", self.object, self.inside)
    }
}

/// Why a route was refused; see [`Error::InvalidDomain`](crate::Error::InvalidDomain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteFault {
    /// The domain cannot be a route's domain.
    Domain(DomainFault),
    /// The folder cannot be a route's folder.
    Folder(FolderFault),
}

impl fmt::Display for RouteFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => d.fmt(f),
            Self::Folder(d) => d.fmt(f),
        }
    }
}

/// What is wrong with the stored form of a background job; see
/// [`Error::InvalidJob`](crate::Error::InvalidJob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobFault {
    /// The stored form has no `:` separating the tenant from the payload.
    NoTenant,
    /// The stored tenant is not a valid schema name.
    InvalidTenant(InvalidReason),
    /// The payload does not parse; the parse error is the error's
    /// [`source()`](std::error::Error::source).
    Payload,
}

impl fmt::Display for JobFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTenant => f.write_str("it names no tenant (the stored form is tenant:payload)"),
            Self::InvalidTenant(reason) => {
                write!(f, "its tenant is not a valid schema name: {reason}")
            }
            Self::Payload => f.write_str("its payload could not be read"),
        }
    }
}

/// `items` displayed one after the other, separated by `; `.
pub(super) fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
