//! [`RoleTemplate`]: how a tenant's role is named after its schema.

use std::fmt;

use crate::error::{Error, Result};
use crate::name::SchemaName;

use super::{MAX_ROLE_NAME_LEN, RoleName};

/// The placeholder a template holds once.
const PLACEHOLDER: &str = "{schema}";

/// How a tenant's role is named: a prefix, the schema's name, a suffix (`app-{schema}`).
///
/// The fixed text is made of `a`–`z`, `0`–`9`, `_` and `-`, holds at least one `-` and does
/// not start with `pg_`. A `-` never appears in a schema name, so a tenant role is never named
/// like a tenant (or any other valid schema), and two schemas never get the same role. The
/// rendered name must fit PostgreSQL's 63 bytes: a longer one is an error naming the schema.
/// Roles belong to the server, not to a database: where several databases (or several
/// installs) share a server, give each its own prefix.
///
/// ```
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::roles::RoleTemplate;
///
/// let t = RoleTemplate::new("shop-{schema}")?;
/// assert_eq!(t.render(&SchemaName::new("customer1")?)?.as_str(), "shop-customer1");
/// assert_eq!(t.schema_of("shop-customer1"), Some(SchemaName::new("customer1")?));
/// assert_eq!(t.schema_of("customer1"), None);
/// assert!(RoleTemplate::new("shop_{schema}").is_err()); // could be a schema's name
/// assert!(RoleTemplate::new("shop-").is_err()); // no placeholder
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RoleTemplate {
    prefix: Box<str>,
    suffix: Box<str>,
}

impl Default for RoleTemplate {
    /// `tenant-{schema}`.
    fn default() -> Self {
        Self {
            prefix: "tenant-".into(),
            suffix: "".into(),
        }
    }
}

impl RoleTemplate {
    /// Parses and checks `template`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] saying what is wrong.
    pub fn new(template: &str) -> Result<Self> {
        let bad = |why: &str| Err(Error::Config(format!("role template {template:?} {why}")));
        let Some((prefix, suffix)) = template.split_once(PLACEHOLDER) else {
            return bad("has no {schema} placeholder");
        };
        if suffix.contains(PLACEHOLDER) {
            return bad("holds {schema} more than once");
        }
        let fixed = format!("{prefix}{suffix}");
        if let Some(c) = fixed
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
        {
            return bad(&format!(
                "holds {c:?}; use only a-z, 0-9, '_' and '-' around {{schema}}"
            ));
        }
        if !fixed.contains('-') {
            return bad("holds no '-': the role could then be named like a schema; add one");
        }
        if prefix.starts_with("pg_") {
            return bad("starts with pg_, which PostgreSQL reserves");
        }
        if fixed.len() >= MAX_ROLE_NAME_LEN {
            return bad("leaves no room for a schema's name within 63 bytes");
        }
        Ok(Self {
            prefix: prefix.into(),
            suffix: suffix.into(),
        })
    }

    /// The text before the schema's name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The text after the schema's name.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// The role of `schema`.
    ///
    /// # Errors
    ///
    /// [`Error::RoleName`] when the name would be longer than 63 bytes.
    pub fn render(&self, schema: &SchemaName) -> Result<RoleName> {
        let name = format!("{}{}{}", self.prefix, schema.as_str(), self.suffix);
        if name.len() > MAX_ROLE_NAME_LEN {
            return Err(Error::RoleName {
                schema: schema.to_string(),
                role: name,
            });
        }
        RoleName::new(name)
    }

    /// The schema whose role `role` is, when it is named by this template.
    pub fn schema_of(&self, role: &str) -> Option<SchemaName> {
        let rest = role.strip_prefix(&*self.prefix)?;
        let schema = rest.strip_suffix(&*self.suffix)?;
        SchemaName::new(schema).ok()
    }
}

impl fmt::Display for RoleTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{PLACEHOLDER}{}", self.prefix, self.suffix)
    }
}

impl fmt::Debug for RoleTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoleTemplate({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> SchemaName {
        SchemaName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rules() {
        for bad in [
            "x",
            "{schema}",
            "a_{schema}",
            "A-{schema}",
            "a-{schema}{schema}",
            "pg_-{schema}",
            "a b-{schema}",
            "é-{schema}",
        ] {
            assert!(RoleTemplate::new(bad).is_err(), "{bad}");
        }
        assert!(RoleTemplate::new(&format!("{}-{{schema}}", "a".repeat(62))).is_err());
        assert!(RoleTemplate::new(&format!("{}-{{schema}}", "a".repeat(61))).is_ok());
        for good in ["t-{schema}", "{schema}-r", "db1-{schema}-x", "-{schema}"] {
            assert!(RoleTemplate::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn render_and_parse_back() -> Result<()> {
        let t = RoleTemplate::new("db-{schema}-r")?;
        assert_eq!(t.render(&n("acme"))?.as_str(), "db-acme-r");
        assert_eq!(t.schema_of("db-acme-r"), Some(n("acme")));
        assert_eq!(t.schema_of("db-acme"), None);
        assert_eq!(t.schema_of("db--r"), None);
        let long = n(&"a".repeat(60));
        assert!(matches!(t.render(&long), Err(Error::RoleName { .. })));
        assert_eq!(RoleTemplate::default().to_string(), "tenant-{schema}");
        Ok(())
    }
}
