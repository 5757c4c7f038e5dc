//! Dynamic tenants and their routes as Diesel models: the traits `#[derive(Tenant)]` and
//! `#[derive(Domain)]` implement, the [`Catalog`](crate::catalog::Catalog) built from them, the
//! domain rules, and ready-made default models with their shared migrations. Their Diesel
//! tables are in [`tables`] (what `diesel print-schema` would call `schema`). See the guide's
//! "Models and derives" section.
//!
//! Bring your own tables:
//!
//! ```
//! # let db = pgschemas_diesel::doctest_setup::database().sql("CREATE TABLE orgs (id bigserial PRIMARY KEY, slug text NOT NULL UNIQUE, title text NOT NULL); CREATE TABLE hosts (id bigserial PRIMARY KEY, org_id bigint NOT NULL REFERENCES orgs, host text NOT NULL, folder text, is_primary bool NOT NULL DEFAULT false, redirect_to_primary bool NOT NULL DEFAULT false)");
//! # let database_url = db.url();
//! use diesel::prelude::*;
//! use pgschemas_diesel::{Domain, Tenant};
//! use pgschemas_diesel::catalog::Catalog;
//! use pgschemas_diesel::models::{DomainModel, ModelCatalog, NewDomain, TenantModel};
//!
//! diesel::table! {
//!     orgs (id) { id -> Int8, slug -> Text, title -> Text }
//! }
//! diesel::table! {
//!     hosts (id) {
//!         id -> Int8, org_id -> Int8, host -> Text, folder -> Nullable<Text>,
//!         is_primary -> Bool, redirect_to_primary -> Bool,
//!     }
//! }
//!
//! #[derive(Queryable, Selectable, Tenant)]
//! #[diesel(table_name = orgs)]
//! #[tenant(schema_name = slug)]
//! struct Org { id: i64, slug: String, title: String }
//!
//! #[derive(Queryable, Selectable, Domain)]
//! #[diesel(table_name = hosts)]
//! #[domain(tenant = org_id, domain = host)]
//! struct Host {
//!     id: i64, org_id: i64, host: String, folder: Option<String>,
//!     is_primary: bool, redirect_to_primary: bool,
//! }
//!
//! let mut conn = PgConnection::establish(database_url)?;
//! let org = Org::insert(&mut conn, (orgs::slug.eq("acme"), orgs::title.eq("Acme")))?;
//! let host: Host = pgschemas_diesel::models::add_domain(&mut conn, &org.id, NewDomain::new("acme.example.com"))?;
//! assert!(host.is_primary); // a tenant's first domain becomes its primary domain
//!
//! let catalog = ModelCatalog::<Org, Host>::new(); // what routing and migrations read
//! let tenants = catalog.tenants(&mut conn)?;
//! assert_eq!(tenants[0].schema.as_str(), "acme");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Or use [`DefaultTenant`] / [`DefaultDomain`] with [`SHARED_MIGRATIONS`].

mod catalog;
mod defaults;
mod notify;
pub(crate) mod private;
mod rules;
pub mod tables;

use std::fmt;

use diesel::dsl::{AsSelect, Returning, Values, insert_into};
use diesel::pg::Pg;
use diesel::query_builder::Query;
use diesel::query_dsl::LoadQuery;
use diesel::{Insertable, PgConnection, QueryResult, RunQueryDsl, Selectable, SelectableHelper};

use crate::activate::Schema;
use crate::catalog::{DomainRecord, TenantRecord};
use crate::error::Result;
use crate::name::SchemaName;

pub use catalog::{DomainTable, ModelCatalog, NoDomains};
pub use defaults::{
    DefaultDomain, DefaultTenant, NewTenant, SHARED_MIGRATIONS, TenantStatus, default_catalog,
};
pub use notify::{ROUTES_CHANNEL, install_route_triggers, route_trigger_sql};
pub use rules::{NewDomain, absolute_url, add_domain, primary_domain, set_primary_domain};

/// A table's SQL name, as its Diesel `table!` declares it.
///
/// `schema` is `None` for a table declared without one: it is then found through the
/// `search_path`, normally in the shared schema.
///
/// ```
/// use pgschemas_diesel::models::{TableName, TenantModel};
/// use pgschemas_diesel::models::DefaultTenant;
///
/// assert_eq!(
///     DefaultTenant::table_name(),
///     TableName { schema: Some("public".into()), name: "tenants".into() },
/// );
/// assert_eq!(DefaultTenant::table_name().to_string(), r#""public"."tenants""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    /// The schema written in `table!` (`public.tenants`), if any.
    pub schema: Option<String>,
    /// The table's SQL name.
    pub name: String,
}

impl TableName {
    /// `(schema, table)`, with `default_schema` standing in for an unqualified table.
    ///
    /// ```
    /// use pgschemas_diesel::models::TableName;
    ///
    /// let t = TableName { schema: None, name: "orgs".into() };
    /// assert_eq!(t.qualified("public"), ("public".to_string(), "orgs".to_string()));
    /// ```
    pub fn qualified(&self, default_schema: &str) -> (String, String) {
        (
            self.schema
                .clone()
                .unwrap_or_else(|| default_schema.to_owned()),
            self.name.clone(),
        )
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{}.", crate::name::quote_ident(schema))?;
        }
        f.write_str(&crate::name::quote_ident(&self.name))
    }
}

/// A tenant status that says whether the tenant is served.
///
/// `#[tenant(status = field)]` reads the field through this trait; a suspended tenant's
/// [`TenantRecord::active`] is `false`. Implemented for `bool` (the field is an "active"
/// flag) and [`TenantStatus`]; implement it for your own status enum.
///
/// ```
/// use pgschemas_diesel::models::IsActive;
///
/// enum Plan { Trial, Paid, Cancelled }
///
/// impl IsActive for Plan {
///     fn is_active(&self) -> bool {
///         !matches!(self, Plan::Cancelled)
///     }
/// }
/// assert!(Plan::Trial.is_active() && Plan::Paid.is_active());
/// assert!(!Plan::Cancelled.is_active());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot say whether a tenant is active",
    label = "the `status` field must implement `pgschemas_diesel::models::IsActive`",
    note = "implement `pgschemas_diesel::models::IsActive` for it, or use `bool` or `pgschemas_diesel::models::TenantStatus`"
)]
pub trait IsActive {
    /// Whether a tenant with this status is served.
    fn is_active(&self) -> bool;
}

impl IsActive for bool {
    fn is_active(&self) -> bool {
        *self
    }
}

impl<T: IsActive + ?Sized> IsActive for &T {
    fn is_active(&self) -> bool {
        (**self).is_active()
    }
}

/// Values that can be inserted into table `T`, returning the inserted row as model `M`: an
/// `Insertable` struct for the table (or a reference to one), a `column.eq(value)`, or a
/// tuple of them. The bound of [`TenantModel::insert`] and [`DomainModel::insert`];
/// implemented for every such value, never by hand.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models(); let database_url = db.url();
/// use diesel::prelude::*;
/// use pgschemas_diesel::models::TenantModel;
/// use pgschemas_diesel::models::DefaultTenant;
/// use pgschemas_diesel::models::tables::tenants;
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let acme = DefaultTenant::insert(
///     &mut conn,
///     (tenants::schema_name.eq("acme"), tenants::name.eq("Acme")),
/// )?;
/// assert_eq!((acme.schema_name.as_str(), acme.name.as_str()), ("acme", "Acme"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be inserted into `{T}` returning `{M}`",
    note = "insert an `Insertable` struct for the table, or a tuple of `column.eq(value)`"
)]
pub trait InsertReturning<'query, T, M>: Sized {
    /// `INSERT INTO table ... RETURNING <M's columns>`.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn insert_returning(self, table: T, conn: &mut PgConnection) -> QueryResult<M>;
}

impl<'query, T, M, N> InsertReturning<'query, T, M> for N
where
    T: diesel::Table,
    M: Selectable<Pg>,
    N: Insertable<T>,
    Returning<Values<insert_into<T>, N>, AsSelect<M, Pg>>:
        Query + LoadQuery<'query, PgConnection, M>,
{
    fn insert_returning(self, table: T, conn: &mut PgConnection) -> QueryResult<M> {
        diesel::insert_into(table)
            .values(self)
            .returning(M::as_returning())
            .get_result(conn)
    }
}

/// A dynamic tenant: one row of the user's tenants table, mapped by `#[derive(Tenant)]`.
///
/// The derive implements every required method over the user's own `table!`; the struct
/// must also derive Diesel's `Queryable` and `Selectable` (queries select and return
/// `Self`). See the [module docs](crate::models) for an example and
/// [`Tenant`](macro@crate::Tenant) for the attribute.
///
/// Queries use the table as `table!` declares it: an unqualified table is found through the
/// connection's `search_path`, so call these on a connection with the neutral path (or a
/// tenant path whose schema has no table of that name).
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &[]).tenant("globex", &[]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::models::TenantModel;
/// use pgschemas_diesel::models::DefaultTenant;
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let mut lines = Vec::new();
/// for tenant in DefaultTenant::load_all(&mut conn)? {
///     lines.push(format!("{} -> {}", tenant.id_string(), tenant.schema_name));
/// }
/// assert_eq!(lines, ["1 -> acme", "2 -> globex"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait TenantModel: Schema + Selectable<Pg> + Sized {
    /// The Diesel table (`crate::schema::tenants::table`).
    type Table: diesel::Table + Default;

    /// The type of the tenant's key.
    type Id;

    /// The table's SQL name.
    fn table_name() -> TableName;

    /// The tenant's key.
    fn id(&self) -> &Self::Id;

    /// The tenant's key as text (header routing accepts it; messages show it).
    fn id_string(&self) -> String;

    /// Whether the tenant is served: the `status` field through [`IsActive`], or always
    /// `true` when the attribute names no status field.
    fn is_active(&self) -> bool {
        true
    }

    /// Every tenant, ordered by schema name.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn load_all(conn: &mut PgConnection) -> QueryResult<Vec<Self>>;

    /// The tenant whose schema is `schema_name`.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn find_by_schema_name(conn: &mut PgConnection, schema_name: &str)
    -> QueryResult<Option<Self>>;

    /// The tenant with key `id`.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn find_by_id(conn: &mut PgConnection, id: &Self::Id) -> QueryResult<Option<Self>>;

    /// Inserts a row (`new` is anything Diesel can insert into the table: an `Insertable`
    /// struct or a tuple of `column.eq(value)`) and returns it.
    ///
    /// This inserts the row only; it neither validates the schema name against the
    /// configuration ([`Config::check_tenant_name`](crate::Config::check_tenant_name)) nor
    /// creates the schema.
    ///
    /// # Errors
    ///
    /// Diesel's error (a unique violation for a taken schema name, ...).
    fn insert<'query, N>(conn: &mut PgConnection, new: N) -> QueryResult<Self>
    where
        N: InsertReturning<'query, Self::Table, Self>,
    {
        new.insert_returning(Self::Table::default(), conn)
    }

    /// Deletes this tenant's row (by key) and returns the number of rows deleted. The
    /// schema is left alone; dropping it is a separate, deliberate step.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn delete(&self, conn: &mut PgConnection) -> QueryResult<usize>;

    /// The tenant as routing, migrations and the CLI see it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`](crate::Error::InvalidSchemaName) when the stored schema
    /// name is not valid.
    fn to_record(&self) -> Result<TenantRecord> {
        Ok(TenantRecord {
            id: self.id_string(),
            schema: SchemaName::new(self.schema_name())?,
            active: self.is_active(),
        })
    }
}

/// A route to a dynamic tenant: one row of the user's domains table, mapped by
/// `#[derive(Domain)]`.
///
/// The struct must also derive Diesel's `Queryable` and `Selectable`. The rules of
/// django-pgschemas (a tenant's first domain becomes primary, a new primary demotes the
/// others, a primary never redirects, `(domain, folder)` is unique) are applied by
/// [`add_domain`] and [`set_primary_domain`], not by the raw [`insert`](Self::insert).
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &["acme.example.com", "example.com/acme"]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::models::{DomainModel, TenantModel};
/// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant};
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let acme = DefaultTenant::find_by_schema_name(&mut conn, "acme")?.ok_or("no tenant acme")?;
/// let mut urls = Vec::new();
/// for route in DefaultDomain::load_for_tenant(&mut conn, &acme.id)? {
///     urls.push(route.absolute_url("/"));
/// }
/// assert_eq!(urls, ["//acme.example.com/", "//example.com/acme/"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait DomainModel: Selectable<Pg> + Sized {
    /// The Diesel table.
    type Table: diesel::Table + Default;

    /// The type of the route's key.
    type Id;

    /// The type of the tenant's key (the foreign key column).
    type TenantId;

    /// The table's SQL name.
    fn table_name() -> TableName;

    /// The route's key.
    fn id(&self) -> &Self::Id;

    /// The route's key as text.
    fn id_string(&self) -> String;

    /// The owning tenant's key.
    fn tenant_id(&self) -> &Self::TenantId;

    /// The owning tenant's key as text, matching [`TenantModel::id_string`].
    fn tenant_id_string(&self) -> String;

    /// The host, as stored.
    fn domain(&self) -> &str;

    /// The folder (first path segment), `None` for a bare domain (an empty string counts as
    /// none).
    fn folder(&self) -> Option<&str>;

    /// Whether this is the tenant's primary route.
    fn is_primary(&self) -> bool;

    /// Whether requests to this route are redirected to the primary route.
    fn redirect_to_primary(&self) -> bool;

    /// Every route, ordered by domain, then folder (the bare domain first).
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn load_all(conn: &mut PgConnection) -> QueryResult<Vec<Self>>;

    /// The routes of one tenant: the primary first, then by domain and folder (the bare domain
    /// first).
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn load_for_tenant(
        conn: &mut PgConnection,
        tenant_id: &Self::TenantId,
    ) -> QueryResult<Vec<Self>>;

    /// The tenant's primary route, if it has one.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn find_primary(
        conn: &mut PgConnection,
        tenant_id: &Self::TenantId,
    ) -> QueryResult<Option<Self>>;

    /// The route for exactly `domain` and `folder`.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn find_route(
        conn: &mut PgConnection,
        domain: &str,
        folder: Option<&str>,
    ) -> QueryResult<Option<Self>>;

    /// Inserts a row as given (no domain rules) and returns it.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn insert<'query, N>(conn: &mut PgConnection, new: N) -> QueryResult<Self>
    where
        N: InsertReturning<'query, Self::Table, Self>,
    {
        new.insert_returning(Self::Table::default(), conn)
    }

    /// Inserts `new` for `tenant_id` as given (no domain rules; [`add_domain`] applies
    /// them). Other columns of the table take their defaults.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn insert_new(
        conn: &mut PgConnection,
        tenant_id: &Self::TenantId,
        new: &NewDomain,
    ) -> QueryResult<Self>;

    /// Sets this route's `is_primary` and `redirect_to_primary` columns (no domain rules)
    /// and returns the updated row.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn set_flags(
        &self,
        conn: &mut PgConnection,
        is_primary: bool,
        redirect_to_primary: bool,
    ) -> QueryResult<Self>;

    /// Clears `is_primary` on every route of the tenant; returns how many changed.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn demote_primaries(conn: &mut PgConnection, tenant_id: &Self::TenantId) -> QueryResult<usize>;

    /// Deletes this route's row (by key).
    ///
    /// # Errors
    ///
    /// Diesel's error.
    fn delete(&self, conn: &mut PgConnection) -> QueryResult<usize>;

    /// The route as routing sees it: the domain in lower case, an empty folder as `None`.
    fn to_record(&self) -> DomainRecord {
        DomainRecord {
            tenant_id: self.tenant_id_string(),
            domain: self.domain().to_lowercase(),
            folder: self.folder().map(str::to_owned),
            is_primary: self.is_primary(),
            redirect_to_primary: self.redirect_to_primary(),
        }
    }

    /// The protocol-relative URL of `path` on this route: `//domain/folder/path`. See
    /// [`absolute_url`].
    fn absolute_url(&self, path: &str) -> String {
        absolute_url(self.domain(), self.folder(), path)
    }
}
