//! The Diesel tables of the default models, [`DefaultTenant`](super::DefaultTenant) and
//! [`DefaultDomain`](super::DefaultDomain), created by [`SHARED_MIGRATIONS`](super::SHARED_MIGRATIONS).
//!
//! Hand-written rather than printed by `diesel print-schema`: the tables and the
//! `tenant_status` type are qualified with `public`, so they are found whatever the
//! connection's `search_path` is, and Diesel looks the enum type up by schema and name (an
//! unqualified custom type is resolved through the `search_path` at first use and cached per
//! connection, which breaks as soon as the connection switches tenants).
//!
//! ```
//! # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &["acme.example.com"]); let database_url = db.url();
//! use diesel::prelude::*;
//! use pgschemas_diesel::models::tables::{domains, tenants};
//!
//! let mut conn = PgConnection::establish(database_url)?;
//! let routes: Vec<(String, String)> = domains::table
//!     .inner_join(tenants::table)
//!     .select((tenants::schema_name, domains::domain))
//!     .load(&mut conn)?;
//! assert_eq!(routes, [("acme".to_string(), "acme.example.com".to_string())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// Custom SQL types of the default tables.
pub mod sql_types {
    /// `public.tenant_status`: `'active'` or `'suspended'`. Mapped to
    /// [`TenantStatus`](crate::models::TenantStatus).
    ///
    /// ```
    /// use pgschemas_diesel::models::tables::sql_types::TenantStatus;
    /// let _sql_type = TenantStatus;
    /// ```
    #[derive(Debug, Clone, Copy, diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
    #[diesel(postgres_type(name = "tenant_status", schema = "public"))]
    pub struct TenantStatus;
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::TenantStatus;

    /// `public.tenants`: one row per dynamic tenant.
    public.tenants (id) {
        /// The key.
        id -> Int8,
        /// The tenant's schema (unique, a valid schema name).
        schema_name -> Text,
        /// A display name.
        name -> Text,
        /// Whether the tenant is served.
        status -> TenantStatus,
        /// When the row was created.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// `public.domains`: routes to dynamic tenants.
    public.domains (id) {
        /// The key.
        id -> Int8,
        /// The owning tenant (`tenants.id`, deleted with it).
        tenant_id -> Int8,
        /// The host, lower case.
        domain -> Text,
        /// The first path segment for subfolder routing, `NULL` for the bare domain.
        folder -> Nullable<Text>,
        /// Whether this is the tenant's primary route (at most one per tenant).
        is_primary -> Bool,
        /// Whether requests are redirected to the primary route (never on the primary).
        redirect_to_primary -> Bool,
    }
}

diesel::joinable!(domains -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(tenants, domains);
