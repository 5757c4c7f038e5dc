//! The PostgreSQL `search_path` for a schema.

use std::fmt;
use std::sync::Arc;

use crate::name::{SchemaName, quote_literal};
use crate::roles::{PathRole, RoleName};

/// A rendered `search_path`: the active schema first, then the shared schema, then the extra
/// search paths, deduplicated and quoted, and last `pg_temp`, so that a temporary table can
/// never shadow a tenant's (or a shared) table of the same name.
///
/// Built by [`Config::search_path`](crate::Config::search_path) and
/// [`Config::neutral_path`](crate::Config::neutral_path); cheap to clone. Its
/// [`as_sql_value`](Self::as_sql_value) is exactly what `current_setting('search_path')`
/// reports once the path is set.
///
/// With per-tenant roles on ([`ConfigBuilder::tenant_roles`](crate::ConfigBuilder::tenant_roles)),
/// a path also carries the role it runs as ([`role`](Self::role)): the tenant's role, or none
/// (the login role) for the neutral path; a checkout sets both in one statement.
///
/// ```
/// let config = pgschemas_diesel::Config::builder().extra_search_path("ext").build()?;
/// let path = config.search_path(&"customer1")?;
/// assert_eq!(path.schema().as_str(), "customer1");
/// assert_eq!(path.as_sql_value(), r#""customer1", "public", "ext", pg_temp"#);
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SearchPath {
    schema: SchemaName,
    value: Arc<str>,
    role: PathRole,
}

impl SearchPath {
    pub(crate) fn new<'a>(schema: SchemaName, rest: impl Iterator<Item = &'a SchemaName>) -> Self {
        let mut parts: Vec<&SchemaName> = vec![&schema];
        for s in rest {
            if !parts.contains(&s) {
                parts.push(s);
            }
        }
        let mut value = parts
            .iter()
            .map(|s| s.quoted())
            .collect::<Vec<_>>()
            .join(", ");
        value.push_str(", pg_temp");
        Self {
            schema,
            value: value.into(),
            role: PathRole::Unmanaged,
        }
    }

    /// This path, run as `role`.
    pub(crate) fn with_role(mut self, role: PathRole) -> Self {
        self.role = role;
        self
    }

    /// The role this path runs as, with per-tenant roles on: the tenant's role, or `None`
    /// for the login role (and whenever the mode is off).
    ///
    /// ```
    /// use pgschemas_diesel::Config;
    /// use pgschemas_diesel::roles::TenantRoles;
    ///
    /// let config = Config::builder()
    ///     .tenant_roles(TenantRoles::new("app_ddl")?.template("app-{schema}")?)
    ///     .build()?;
    /// let path = config.search_path(&"customer1")?;
    /// assert_eq!(path.role().map(|r| r.as_str()), Some("app-customer1"));
    /// assert_eq!(config.neutral_path().role(), None);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn role(&self) -> Option<&RoleName> {
        self.role.named()
    }

    /// What the path runs as.
    pub(crate) fn path_role(&self) -> &PathRole {
        &self.role
    }

    pub(crate) fn neutral<'a>(
        shared: SchemaName,
        extra: impl Iterator<Item = &'a SchemaName>,
    ) -> Self {
        Self::new(shared, extra)
    }

    /// The active schema: the first one on the path.
    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// The value as PostgreSQL reads (and reports) it: `"customer1", "public", pg_temp`.
    pub fn as_sql_value(&self) -> &str {
        &self.value
    }

    /// The path as a quoted SQL string literal.
    pub(crate) fn literal(&self) -> String {
        quote_literal(&self.value)
    }

    /// The active schema as a quoted SQL string literal of its quoted identifier, the form
    /// `to_regnamespace` reads.
    pub(crate) fn schema_literal(&self) -> String {
        quote_literal(&self.schema.quoted())
    }
}

impl fmt::Display for SearchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl fmt::Debug for SearchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = f.debug_tuple("SearchPath");
        t.field(&self.value);
        if let Some(role) = self.role() {
            t.field(role);
        }
        t.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> SchemaName {
        SchemaName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dedup_keeps_first_occurrence_and_puts_pg_temp_last() {
        let p = SearchPath::new(n("a"), [n("public"), n("a"), n("b"), n("public")].iter());
        assert_eq!(p.as_sql_value(), r#""a", "public", "b", pg_temp"#);
    }

    #[test]
    fn literals_are_quoted() {
        let p = SearchPath::new(n("t1"), [n("public")].iter());
        assert_eq!(p.literal(), r#"'"t1", "public", pg_temp'"#);
        assert_eq!(p.schema_literal(), r#"'"t1"'"#);
    }
}
