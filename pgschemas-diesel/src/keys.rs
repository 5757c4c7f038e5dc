//! Tenant-aware keys for what lives outside the database: cache entries, stored files, and
//! anything else an application keys by name.
//!
//! The search path keeps a tenant's rows apart; a cache or a file store shared by every
//! tenant does not know about it, and a key built from the request alone (`"user:42"`, an
//! uploaded file's name) is the same for two tenants: one tenant is served what another
//! cached (django-tenants #1052 is such a leak). Put the tenant in every key.
//!
//! - [`TenantKey`]: a typed key holding the tenant and your key; a cache keyed by it cannot
//!   be asked for an entry without naming a tenant.
//! - [`cache_key`]: the same as a string, `<schema>:<key>`, for stores keyed by strings
//!   (Redis, memcached); the schema name holds no `:`, so no two tenants' keys are equal.
//! - [`storage_path`]: `<schema>/<path>` for a file store, refusing a path that would leave the
//!   tenant's folder (`..`, an absolute path, a backslash).
//!
//! With the `async` feature, `TenantKey::current` and `storage_path_current` take the
//! current tenant (`tenant::require`) and fail closed when there is none.
//!
//! A typed key with the [`moka`](https://docs.rs/moka) cache:
//!
//! ```
//! use moka::sync::Cache;
//! use pgschemas_diesel::SchemaName;
//! use pgschemas_diesel::keys::TenantKey;
//!
//! let cache: Cache<TenantKey<String>, String> = Cache::new(10_000);
//! let (acme, globex) = (SchemaName::new("acme")?, SchemaName::new("globex")?);
//!
//! cache.insert(TenantKey::new(&acme, "plan".to_owned()), "gold".to_owned());
//! assert_eq!(cache.get(&TenantKey::new(&acme, "plan".to_owned())).as_deref(), Some("gold"));
//! assert_eq!(cache.get(&TenantKey::new(&globex, "plan".to_owned())), None);
//! # Ok::<(), pgschemas_diesel::Error>(())
//! ```

use std::fmt;

use crate::error::{Error, Result};
use crate::name::SchemaName;

/// A key of `tenant`'s: equal only to the same key of the same tenant. Displays as
/// [`cache_key`] does.
///
/// ```
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::keys::TenantKey;
///
/// let acme = SchemaName::new("acme")?;
/// let key = TenantKey::new(&acme, 42_u64);
/// assert_eq!(key.tenant(), &acme);
/// assert_eq!(*key.key(), 42);
/// assert_eq!(key.to_string(), "acme:42");
/// assert_ne!(key, TenantKey::new(&SchemaName::new("globex")?, 42_u64));
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantKey<K> {
    tenant: SchemaName,
    key: K,
}

impl<K> TenantKey<K> {
    /// `key`, of `tenant`.
    pub fn new(tenant: &SchemaName, key: K) -> Self {
        Self {
            tenant: tenant.clone(),
            key,
        }
    }

    /// `key`, of the current tenant (feature `async`).
    ///
    /// # Errors
    ///
    /// [`Error::NoCurrentTenant`] outside any tenant scope: no key is made without a tenant.
    ///
    /// ```
    /// use pgschemas_diesel::{Error, SchemaName, tenant};
    /// use pgschemas_diesel::keys::TenantKey;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert!(matches!(TenantKey::current("plan"), Err(Error::NoCurrentTenant { .. })));
    /// let key = tenant::scope(SchemaName::new("acme")?, async { TenantKey::current("plan") }).await?;
    /// assert_eq!(key.to_string(), "acme:plan");
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "async")]
    pub fn current(key: K) -> Result<Self> {
        Ok(Self {
            tenant: crate::tenant::required("TenantKey::current")?,
            key,
        })
    }

    /// The tenant.
    pub fn tenant(&self) -> &SchemaName {
        &self.tenant
    }

    /// The key within the tenant.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The tenant and the key.
    pub fn into_parts(self) -> (SchemaName, K) {
        (self.tenant, self.key)
    }
}

impl<K: fmt::Display> fmt::Display for TenantKey<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tenant, self.key)
    }
}

/// `key` prefixed with `tenant`: `<schema>:<key>`. A schema name holds no `:`, so the keys of
/// two tenants never collide, whatever `key` holds.
///
/// ```
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::keys::cache_key;
///
/// let acme = SchemaName::new("acme")?;
/// assert_eq!(cache_key(&acme, "session:9f2c"), "acme:session:9f2c");
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
pub fn cache_key(tenant: &SchemaName, key: &str) -> String {
    format!("{tenant}:{key}")
}

/// Characters whose compatibility decomposition (NFKC) holds `.`, `/` or `\`: a store that
/// normalizes names would read a component of them as `.` or `..`, or split it.
const LOOKALIKES: &[char] = &[
    '\u{2024}', // one dot leader
    '\u{2025}', // two dot leader
    '\u{2026}', // horizontal ellipsis
    '\u{FE52}', // small full stop
    '\u{FF0E}', // fullwidth full stop
    '\u{FF0F}', // fullwidth solidus
    '\u{FF3C}', // fullwidth reverse solidus
    '\u{FE68}', // small reverse solidus
];

/// `path` inside `tenant`'s folder: `<schema>/<path>`, for a file or object store shared by
/// every tenant. `path` is relative and `/`-separated, not yet percent-encoded.
///
/// # Errors
///
/// [`Error::InvalidStoragePath`] when `path` is empty or absolute, or holds an empty, `.` or
/// `..` component (or one of only dots and spaces, or one beginning with `..`), a backslash,
/// a `%`, a control character, or a character that Unicode normalization turns into `.`, `/`
/// or `\`: each could name a file of another tenant on some store (a filesystem, Windows, a
/// store or HTTP client that decodes `%2e%2e`, drops tabs, normalizes `‥` to `..` or reads
/// `..;` as `..`).
///
/// ```
/// use pgschemas_diesel::{Error, SchemaName};
/// use pgschemas_diesel::keys::storage_path;
///
/// let acme = SchemaName::new("acme")?;
/// assert_eq!(storage_path(&acme, "invoices/2026/03.pdf")?, "acme/invoices/2026/03.pdf");
/// for bad in ["../globex/secret.pdf", "/etc/passwd", "a/../../globex", "a\\..\\b", ""] {
///     assert!(matches!(storage_path(&acme, bad), Err(Error::InvalidStoragePath { .. })), "{bad}");
/// }
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
pub fn storage_path(tenant: &SchemaName, path: &str) -> Result<String> {
    let refuse = |reason| {
        Err(Error::InvalidStoragePath {
            tenant: tenant.to_string(),
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return refuse("it is empty");
    }
    if path.starts_with('/') {
        return refuse("it is absolute");
    }
    if path.contains('\\') {
        return refuse("it holds a backslash, a separator on some stores");
    }
    if path.chars().any(char::is_control) {
        return refuse("it holds a control character (URL parsers drop tabs and newlines)");
    }
    if path.chars().any(|c| LOOKALIKES.contains(&c)) {
        return refuse(
            "it holds a character that Unicode normalization (NFKC) turns into `.`, `/` or `\\` \
             (a store that normalizes names would read `‥` or `．．` as `..`)",
        );
    }
    if path.split('/').any(|c| c.starts_with("..")) {
        return refuse(
            "a component begins with `..` (servers that drop what follows, such as `..;`, \
             read it as `..`)",
        );
    }
    if path.contains('%') {
        return refuse(
            "it holds a `%` (a store that decodes `%2e%2e` or `..%2f` would leave the folder): \
             percent-encode the path after, not before",
        );
    }
    if path
        .split('/')
        .any(|c| c.chars().all(|ch| ch == '.' || ch == ' '))
    {
        return refuse(
            "it holds an empty, `.` or `..` component, or one of only dots and spaces (which \
             Windows reads as `..`)",
        );
    }
    Ok(format!("{tenant}/{path}"))
}

/// [`storage_path`] in the current tenant's folder (feature `async`).
///
/// # Errors
///
/// [`Error::NoCurrentTenant`] outside any tenant scope; as [`storage_path`].
///
/// ```
/// use pgschemas_diesel::{SchemaName, tenant};
/// use pgschemas_diesel::keys::storage_path_current;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert!(storage_path_current("logo.png").is_err());
/// let path = tenant::scope(SchemaName::new("acme")?, async { storage_path_current("logo.png") }).await?;
/// assert_eq!(path, "acme/logo.png");
/// # Ok(()) }
/// ```
#[cfg(feature = "async")]
pub fn storage_path_current(path: &str) -> Result<String> {
    storage_path(
        &crate::tenant::required("keys::storage_path_current")?,
        path,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> SchemaName {
        SchemaName::new("acme").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keys_of_two_tenants_never_collide() {
        let (a, b) = (
            SchemaName::new("a").unwrap_or_else(|e| panic!("{e}")),
            SchemaName::new("a_b").unwrap_or_else(|e| panic!("{e}")),
        );
        // "a" + ":b:x" against "a_b" + ":x": a schema holds no ':', so the prefix is exact
        assert_ne!(cache_key(&a, "b:x"), cache_key(&b, "x"));
        assert_ne!(cache_key(&a, "_b:x"), cache_key(&b, "x"));
    }

    #[test]
    fn storage_paths_stay_in_the_tenant_folder() -> Result<()> {
        assert_eq!(storage_path(&acme(), "a/b.txt")?, "acme/a/b.txt");
        assert_eq!(storage_path(&acme(), "a..b/c.d")?, "acme/a..b/c.d");
        for bad in [
            "..",
            ".",
            "a/./b",
            "a/..",
            "x\0y",
            "a//b",
            "a/",
            "%2e%2e/globex",
            ".%2E/x",
            "..%2fglobex",
            ".\t./globex",
            ".\n./globex",
            ".. ",
            ". ",
            "a/.. ",
            "...",
            "\u{FF0E}\u{FF0E}/globex/secret",
            "\u{2025}/globex",
            "..\u{FF0F}globex",
            "..;/globex",
            "a/..x/b",
            "a\u{FF3C}..\u{FF3C}b",
        ] {
            assert!(storage_path(&acme(), bad).is_err(), "{bad:?}");
        }
        Ok(())
    }
}
