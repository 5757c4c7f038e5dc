//! Which schemas a multi-schema command runs on.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::catalog::{DomainRecord, TenantRecord};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::name::SchemaName;

/// What a schema is to the configuration; also the order multi-schema commands run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchemaKind {
    /// The shared schema (`public` by default).
    Shared,
    /// A static tenant of the configuration.
    Static,
    /// The clone reference: the template new tenants can be cloned from.
    Reference,
    /// A dynamic tenant (a row of the tenant model).
    Dynamic,
}

impl fmt::Display for SchemaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shared => "shared",
            Self::Static => "static",
            Self::Reference => "reference",
            Self::Dynamic => "dynamic",
        })
    }
}

/// Which embedded migration set a schema takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrationSet {
    /// The shared migrations (the shared schema).
    Shared,
    /// The tenant migrations (dynamic tenants, the clone reference, static tenants that
    /// migrate).
    Tenant,
    /// None: a static tenant declared with `.migrate(false)`. Listed by
    /// [`Selection::resolve`], skipped by the [`Migrator`](crate::migrate::Migrator).
    None,
}

/// One schema a multi-schema command runs on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The schema.
    pub schema: SchemaName,
    /// What it is.
    pub kind: SchemaKind,
    /// Which migrations it takes.
    pub migrations: MigrationSet,
}

/// Which schemas to run on: wildcards, references and exclusions, as django-pgschemas'
/// management commands take them (`-as`, `-ss`, `-ds`, `-ts`, `-s`, `-x`).
///
/// A plain value: build it from command-line flags or in code, then
/// [`resolve`](Self::resolve) it against the configuration and the tenants.
///
/// - `include_all`: the shared schema, the static tenants, the clone reference and every
///   dynamic tenant. An empty selection (no wildcard, no reference) means the same, as
///   django-pgschemas' `migrate` does.
/// - `include_static`: the shared schema, the static tenants and the clone reference.
/// - `include_dynamic`: every dynamic tenant.
/// - `include_tenant_like`: every dynamic tenant and the clone reference.
/// - `schemas`: references, each resolved to one schema: the shared schema's or a static
///   tenant's name, the clone reference's name, a dynamic tenant's schema name, else a
///   domain or route: the schema whose static domain, dynamic domain or `domain/folder`
///   route equals the reference, else starts with it. A reference matching nothing, or
///   matching several schemas, is an error naming it.
/// - `exclude`: references resolved the same way, removed from the result. Exclusion wins.
///
/// ```
/// use pgschemas_diesel::migrate::Selection;
///
/// let everything = Selection::all();
/// let some = Selection::of(["www", "customer1.example.com"]);
/// let all_but = Selection { include_dynamic: true, ..Selection::default() }.excluding(["t3"]);
/// assert!(Selection::default().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Every schema: shared, static, clone reference, dynamic.
    pub include_all: bool,
    /// The shared schema, the static tenants and the clone reference.
    pub include_static: bool,
    /// Every dynamic tenant.
    pub include_dynamic: bool,
    /// Every dynamic tenant and the clone reference.
    pub include_tenant_like: bool,
    /// References to include: schema names, static tenant names, domains, `domain/folder`
    /// routes or prefixes of them.
    pub schemas: Vec<String>,
    /// References to exclude; exclusion wins over inclusion.
    pub exclude: Vec<String>,
}

impl Selection {
    /// Every schema.
    ///
    /// ```
    /// assert!(pgschemas_diesel::migrate::Selection::all().include_all);
    /// ```
    pub fn all() -> Self {
        Self {
            include_all: true,
            ..Self::default()
        }
    }

    /// The schemas these references name.
    ///
    /// ```
    /// let s = pgschemas_diesel::migrate::Selection::of(["www", "blog"]);
    /// assert_eq!(s.schemas, ["www", "blog"]);
    /// ```
    pub fn of<I, S>(references: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            schemas: references.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// This selection without the schemas these references name.
    ///
    /// ```
    /// let s = pgschemas_diesel::migrate::Selection::all().excluding(["t3"]);
    /// assert_eq!(s.exclude, ["t3"]);
    /// ```
    #[must_use]
    pub fn excluding<I, S>(mut self, references: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exclude.extend(references.into_iter().map(Into::into));
        self
    }

    /// Whether nothing was asked for: no wildcard and no reference (exclusions aside). Such
    /// a selection resolves to every schema; a command that should rather ask the user can
    /// check this first.
    ///
    /// ```
    /// use pgschemas_diesel::migrate::Selection;
    /// assert!(Selection::default().excluding(["t1"]).is_empty());
    /// assert!(!Selection::of(["t1"]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        !self.include_all
            && !self.include_static
            && !self.include_dynamic
            && !self.include_tenant_like
            && self.schemas.is_empty()
    }

    /// Whether the selection takes every dynamic tenant (so that a tenant row left out of
    /// the catalog is one it misses).
    pub(crate) fn takes_every_dynamic(&self) -> bool {
        self.include_all || self.include_dynamic || self.include_tenant_like || self.is_empty()
    }

    /// The schemas this selection names, in the order multi-schema commands run them: the
    /// shared schema, the static tenants in declared order, the clone reference, then the
    /// dynamic tenants sorted by schema name. Each schema appears once.
    ///
    /// Pure: `tenants` and `domains` are what the [`Catalog`](crate::catalog::Catalog) returned
    /// (inactive tenants included). Whether the schemas exist is not checked here. A
    /// dynamic tenant whose schema is named like the shared schema, a static tenant or the
    /// clone reference (which `Config::check_tenant_name` refuses) counts as that schema.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownReference`] for a reference (included or excluded) that names no
    /// schema; [`Error::AmbiguousReference`] for one that names several.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, StaticTenant, SchemaName};
    /// use pgschemas_diesel::migrate::{SchemaKind, Selection};
    /// use pgschemas_diesel::catalog::TenantRecord;
    ///
    /// let config = Config::builder().static_tenant(StaticTenant::builder("www").domain("localhost")).build()?;
    /// let tenants = vec![TenantRecord { id: "1".into(), schema: SchemaName::new("t1")?, active: true }];
    /// let targets = Selection::all().excluding(["localhost"]).resolve(&config, &tenants, &[])?;
    /// let names: Vec<&str> = targets.iter().map(|t| t.schema.as_str()).collect();
    /// assert_eq!(names, ["public", "t1"]);
    /// assert_eq!(targets[1].kind, SchemaKind::Dynamic);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn resolve(
        &self,
        config: &Config,
        tenants: &[TenantRecord],
        domains: &[DomainRecord],
    ) -> Result<Vec<Target>> {
        let known = Known::new(config, tenants, domains);
        let mut selected: BTreeSet<Key> = BTreeSet::new();

        let all = self.include_all || self.is_empty();
        if all || self.include_static {
            selected.extend(known.statics());
        }
        if all || self.include_dynamic || self.include_tenant_like {
            selected.extend(known.dynamics());
        }
        if self.include_tenant_like {
            selected.extend(known.reference());
        }
        for reference in &self.schemas {
            selected.insert(known.find(reference, false)?);
        }
        for reference in &self.exclude {
            let key = known.find(reference, true)?;
            selected.remove(&key);
        }
        Ok(selected.into_iter().map(|k| known.target(k)).collect())
    }
}

/// A schema's place in the run order: kind, then declared position (static) or name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: SchemaKind,
    position: usize,
    name: SchemaName,
}

/// What references are resolved against.
struct Known<'a> {
    config: &'a Config,
    /// Dynamic tenants by schema, without those named like a configured schema.
    dynamic: BTreeSet<SchemaName>,
    /// Dynamic routes: (domain, `domain/folder` when there is a folder, schema).
    routes: Vec<(&'a str, Option<String>, &'a SchemaName)>,
}

impl<'a> Known<'a> {
    fn new(config: &'a Config, tenants: &'a [TenantRecord], domains: &'a [DomainRecord]) -> Self {
        let mut known = Self {
            config,
            dynamic: BTreeSet::new(),
            routes: Vec::new(),
        };
        let mut by_id: HashMap<&str, &SchemaName> = HashMap::new();
        for t in tenants {
            if known.configured(t.schema.as_str()).is_none() {
                known.dynamic.insert(t.schema.clone());
                by_id.insert(t.id.as_str(), &t.schema);
            }
        }
        for d in domains {
            if let Some(schema) = by_id.get(d.tenant_id.as_str()) {
                let route = d
                    .folder
                    .as_deref()
                    .filter(|f| !f.is_empty())
                    .map(|f| format!("{}/{f}", d.domain));
                known.routes.push((d.domain.as_str(), route, schema));
            }
        }
        known
    }

    /// The key of a schema the configuration declares (shared, static, reference).
    fn configured(&self, name: &str) -> Option<Key> {
        let config = self.config;
        if config.shared_schema().as_str() == name {
            return Some(key(SchemaKind::Shared, 0, config.shared_schema()));
        }
        if let Some((i, t)) = config
            .static_tenants()
            .iter()
            .enumerate()
            .find(|(_, t)| t.name().as_str() == name)
        {
            return Some(key(SchemaKind::Static, i, t.name()));
        }
        config
            .clone_reference()
            .filter(|r| r.as_str() == name)
            .map(|r| key(SchemaKind::Reference, 0, r))
    }

    fn statics(&self) -> Vec<Key> {
        let config = self.config;
        let mut keys = vec![key(SchemaKind::Shared, 0, config.shared_schema())];
        keys.extend(
            config
                .static_tenants()
                .iter()
                .enumerate()
                .map(|(i, t)| key(SchemaKind::Static, i, t.name())),
        );
        keys.extend(self.reference());
        keys
    }

    fn reference(&self) -> Option<Key> {
        self.config
            .clone_reference()
            .map(|r| key(SchemaKind::Reference, 0, r))
    }

    fn dynamics(&self) -> impl Iterator<Item = Key> + '_ {
        self.dynamic.iter().map(|s| key(SchemaKind::Dynamic, 0, s))
    }

    /// Resolves one reference (django-pgschemas' `find_schema_by_reference`).
    fn find(&self, reference: &str, excluded: bool) -> Result<Key> {
        // 1-2: the shared schema, a static tenant, the clone reference, by name.
        if let Some(k) = self.configured(reference) {
            return Ok(k);
        }
        // 3: a dynamic tenant, by schema name.
        if let Some(s) = self.dynamic.get(reference) {
            return Ok(key(SchemaKind::Dynamic, 0, s));
        }
        // 4: by domain or route; exact matches first, then prefixes.
        let wanted = reference.to_ascii_lowercase();
        let mut exact: BTreeSet<Key> = BTreeSet::new();
        let mut prefix: BTreeSet<Key> = BTreeSet::new();
        for (i, t) in self.config.static_tenants().iter().enumerate() {
            for d in t.domains() {
                let k = key(SchemaKind::Static, i, t.name());
                if *d == wanted {
                    exact.insert(k.clone());
                }
                if d.starts_with(&wanted) {
                    prefix.insert(k);
                }
            }
        }
        for (domain, route, schema) in &self.routes {
            let k = key(SchemaKind::Dynamic, 0, schema);
            if *domain == wanted || route.as_deref() == Some(wanted.as_str()) {
                exact.insert(k.clone());
            }
            if domain.starts_with(&wanted)
                || route.as_deref().is_some_and(|r| r.starts_with(&wanted))
            {
                prefix.insert(k);
            }
        }
        let matches = if exact.is_empty() { prefix } else { exact };
        let mut matches = matches.into_iter();
        match (matches.next(), matches.next()) {
            (Some(k), None) => Ok(k),
            (None, _) => Err(Error::UnknownReference {
                reference: reference.to_owned(),
                excluded,
            }),
            (Some(a), Some(b)) => Err(Error::AmbiguousReference {
                reference: reference.to_owned(),
                excluded,
                matches: [a, b]
                    .into_iter()
                    .chain(matches)
                    .map(|k| k.name.to_string())
                    .collect(),
            }),
        }
    }

    fn target(&self, k: Key) -> Target {
        let migrations = match k.kind {
            SchemaKind::Shared => MigrationSet::Shared,
            SchemaKind::Static => {
                let migrate = self
                    .config
                    .static_tenants()
                    .get(k.position)
                    .is_none_or(|t| t.migrate());
                if migrate {
                    MigrationSet::Tenant
                } else {
                    MigrationSet::None
                }
            }
            SchemaKind::Reference | SchemaKind::Dynamic => MigrationSet::Tenant,
        };
        Target {
            schema: k.name,
            kind: k.kind,
            migrations,
        }
    }
}

fn key(kind: SchemaKind, position: usize, name: &SchemaName) -> Key {
    Key {
        kind,
        position,
        name: name.clone(),
    }
}
