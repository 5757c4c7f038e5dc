//! The PostgreSQL `search_path` for a schema.

use std::fmt;
use std::sync::Arc;

use crate::name::{SchemaName, quote_literal};

/// A rendered `search_path`: the active schema first, then the shared schema, then the extra
/// search paths, deduplicated and quoted.
///
/// Built by [`Config::search_path`](crate::Config::search_path) and
/// [`Config::neutral_path`](crate::Config::neutral_path); cheap to clone.
///
/// ```
/// let config = pgschemas_diesel::Config::builder().extra_search_path("ext").build()?;
/// let path = config.search_path(&"customer1")?;
/// assert_eq!(path.schema().as_str(), "customer1");
/// assert_eq!(path.as_sql_value(), r#""customer1", "public", "ext""#);
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SearchPath {
    schema: SchemaName,
    value: Arc<str>,
}

impl SearchPath {
    pub(crate) fn new<'a>(schema: SchemaName, rest: impl Iterator<Item = &'a SchemaName>) -> Self {
        let mut parts: Vec<&SchemaName> = vec![&schema];
        for s in rest {
            if !parts.contains(&s) {
                parts.push(s);
            }
        }
        let value = parts
            .iter()
            .map(|s| s.quoted())
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            schema,
            value: value.into(),
        }
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

    /// The value as PostgreSQL reads it: `"customer1", "public"`.
    pub fn as_sql_value(&self) -> &str {
        &self.value
    }

    /// The statement that sets this path for the session, failing when the schema is missing.
    /// Built only when a switch is sent, not for checkouts that keep their path.
    pub(crate) fn set_session_sql(&self) -> String {
        self.set_config_sql(false)
    }

    /// `BEGIN` and the statement that sets this path for the transaction (`SET LOCAL`),
    /// failing when the schema is missing: one round trip.
    pub(crate) fn begin_local_sql(&self) -> String {
        format!("BEGIN; {}", self.set_config_sql(true))
    }

    /// One statement that sets the path only when the active schema exists: the
    /// `regnamespace` cast fails with `schema "x" does not exist` otherwise, and the failed
    /// statement leaves the path as it was. The values are built from validated names and
    /// quoted again as literals.
    fn set_config_sql(&self, local: bool) -> String {
        format!(
            "SELECT pg_catalog.set_config('search_path', {}, {local}) WHERE {}::pg_catalog.regnamespace IS NOT NULL",
            quote_literal(&self.value),
            quote_literal(&self.schema.quoted()),
        )
    }
}

impl fmt::Display for SearchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl fmt::Debug for SearchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SearchPath").field(&self.value).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> SchemaName {
        SchemaName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dedup_keeps_first_occurrence() {
        let p = SearchPath::new(n("a"), [n("public"), n("a"), n("b"), n("public")].iter());
        assert_eq!(p.as_sql_value(), r#""a", "public", "b""#);
    }

    #[test]
    fn statements_quote_as_literals() {
        let p = SearchPath::new(n("t1"), [n("public")].iter());
        assert_eq!(
            p.set_session_sql(),
            r#"SELECT pg_catalog.set_config('search_path', '"t1", "public"', false) WHERE '"t1"'::pg_catalog.regnamespace IS NOT NULL"#
        );
        assert!(p.begin_local_sql().starts_with("BEGIN; SELECT"));
        assert!(p.begin_local_sql().contains(", true)"));
    }
}
