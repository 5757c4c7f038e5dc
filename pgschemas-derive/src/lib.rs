//! Derive macros for [`pgschemas-diesel`](https://docs.rs/pgschemas-diesel).
//!
//! Use them through the library's re-exports (`pgschemas_diesel::Tenant`,
//! `pgschemas_diesel::Domain`), not from this crate directly: the generated code refers to
//! `::pgschemas_diesel` (or the path given with `crate = "..."`), and the examples live there.

mod attr;
mod domain;
mod tenant;
mod test_attr;

use proc_macro::TokenStream;

/// Implements `pgschemas_diesel::Schema` and `pgschemas_diesel::models::TenantModel` for a struct
/// holding one row of the user's tenants table.
///
/// The struct must also derive Diesel's `Queryable` and `Selectable` (the generated queries
/// select and return `Self`).
///
/// # Attributes
///
/// One `#[tenant(...)]` attribute on the struct, every key optional:
///
/// ```text
/// #[tenant(
///     table = crate::schema::tenants, // the table! module; default: #[diesel(table_name = ...)]
///     schema_name = schema_name,      // the field holding the schema name (any text type)
///     id = id,                        // the field holding the key (any Display type)
///     status = status,                // a field implementing IsActive; default: always active
///     crate = "pgschemas_diesel",     // where the library is, if re-exported
/// )]
/// ```
///
/// Columns are the fields' names, or their `#[diesel(column_name = ...)]`. A generic struct
/// gets `TenantModel` where Diesel can load it: `Self: 'static` (lifetimes end up `'static`)
/// and `Self: Queryable<_, Pg>`.
#[proc_macro_derive(Tenant, attributes(tenant))]
pub fn derive_tenant(input: TokenStream) -> TokenStream {
    derive_tenant_inner(input.into()).into()
}

fn derive_tenant_inner(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    syn::parse2(input)
        .and_then(tenant::derive)
        .unwrap_or_else(syn::Error::into_compile_error)
}

/// Implements `pgschemas_diesel::models::DomainModel` for a struct holding one row of the user's
/// domains (routes) table.
///
/// The struct must also derive Diesel's `Queryable` and `Selectable`.
///
/// # Attributes
///
/// One `#[domain(...)]` attribute on the struct, every key optional:
///
/// ```text
/// #[domain(
///     table = crate::schema::domains,           // default: #[diesel(table_name = ...)]
///     id = id,                                  // the row's key (any Display type)
///     tenant = tenant_id,                       // the tenant's key (any Display type)
///     domain = domain,                          // the host (any text type)
///     folder = folder,                          // Option<String>, or String ("" = none)
///     is_primary = is_primary,                  // bool
///     redirect_to_primary = redirect_to_primary,// bool
///     crate = "pgschemas_diesel",
/// )]
/// ```
///
/// Columns are the fields' names, or their `#[diesel(column_name = ...)]`. Generic structs are
/// handled as for `Tenant`.
#[proc_macro_derive(Domain, attributes(domain))]
pub fn derive_domain(input: TokenStream) -> TokenStream {
    derive_domain_inner(input.into()).into()
}

fn derive_domain_inner(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    syn::parse2(input)
        .and_then(domain::derive)
        .unwrap_or_else(syn::Error::into_compile_error)
}

/// Turns a function into a test that receives a fresh database, prepared: use it as
/// `#[pgschemas_diesel::test]` (with the `testing` feature; see the guide's "Testing your
/// application" section).
///
/// ```text
/// #[pgschemas_diesel::test(
///     migrations = "migrations/shared",        // or an EmbeddedMigrations constant
///     tenant_migrations = "migrations/tenant", // each tenant migrated with these
///     tenants = ["acme", "globex"],            // created before the test runs
/// )]
/// fn my_test(pool: TenantPool) { .. }          // or PgConnection, &mut PgConnection,
///                                              // &TestDatabase, nothing; async fn with
///                                              // AsyncTenantPool (feature `async`)
/// ```
///
/// The database is named after the test, dropped when the test passes and kept (and named
/// on stderr) when it fails, as with `test_database!()`.
#[proc_macro_attribute]
pub fn tenant_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_tenant(src: &str) -> String {
        derive_tenant_inner(src.parse().unwrap()).to_string()
    }

    fn expand_test(src: &str) -> String {
        test_attr::expand(proc_macro2::TokenStream::new(), src.parse().unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_should_panic_test_catches_its_panic_on_either_side_of_the_attribute() {
        for src in [
            "#[should_panic] fn t() { panic!() }",
            "#[should_panic(expected = \"x\")] #[ignore] fn t() { panic!(\"x\") }",
        ] {
            let out = expand_test(src);
            assert!(out.contains("finish_should_panic"), "{out}");
            assert!(out.contains("catch_unwind"), "{out}");
            assert!(out.contains("should_panic"), "kept on the function: {out}");
            // the database is made inside the preparation that may fail, not before it
            let prepared = out.find("prepare_should_panic").expect("prepared");
            let created = out.find("TestDatabase :: new").expect("created");
            assert!(prepared < created, "{out}");
        }
        let out = expand_test("fn t() {}");
        assert!(!out.contains("finish_should_panic"), "{out}");
        assert!(out.contains(":: finish ("), "{out}");
    }

    fn expand_domain(src: &str) -> String {
        derive_domain_inner(src.parse().unwrap()).to_string()
    }

    #[test]
    fn tenant_defaults_read_the_diesel_table_name() {
        let out = expand_tenant(
            "#[diesel(table_name = crate::schema::tenants, check_for_backend(diesel::pg::Pg))]
             struct T { id: i64, schema_name: String }",
        );
        assert!(
            out.contains("type Table = crate :: schema :: tenants :: table"),
            "{out}"
        );
        assert!(
            out.contains(":: pgschemas_diesel :: models :: TenantModel"),
            "{out}"
        );
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn tenant_uses_column_name_and_crate_path() {
        let out = expand_tenant(
            "#[tenant(table = s::orgs, schema_name = slug, crate = \"my::lib\")]
             struct T { id: i64, #[diesel(column_name = org_slug)] slug: String }",
        );
        assert!(out.contains("s :: orgs :: org_slug"), "{out}");
        assert!(out.contains("my :: lib :: models :: TenantModel"), "{out}");
    }

    #[test]
    fn tenant_errors() {
        for (src, message) in [
            (
                "struct T { id: i64, schema_name: String }",
                "missing `table`",
            ),
            (
                "#[tenant(table = t, bogus = x)] struct T { id: i64, schema_name: String }",
                "unknown attribute, expected one of `table`, `schema_name`, `id`, `status`, `crate`",
            ),
            (
                "#[tenant(table = t, id = id, id = id)] struct T { id: i64, schema_name: String }",
                "duplicate `id` attribute",
            ),
            (
                "#[tenant(table = t, schema_name = slug)] struct T { id: i64 }",
                "no field named `slug` on this struct",
            ),
            (
                "#[tenant(table = t)] struct T { schema_name: String }",
                "no field named `id`",
            ),
            (
                "#[tenant(table = t)] enum T { A }",
                "can only be used on structs with named fields",
            ),
            (
                "#[tenant(table = t)] struct T(i64);",
                "can only be used on structs with named fields",
            ),
            (
                "#[tenant(table = t)] struct T;",
                "can only be used on structs with named fields",
            ),
            (
                "#[tenant(table)] struct T { id: i64, schema_name: String }",
                "expected `table = ",
            ),
            (
                "#[tenant(crate = \"a b\")] struct T { id: i64, schema_name: String }",
                "is not a path",
            ),
        ] {
            let out = expand_tenant(src);
            assert!(out.contains("compile_error"), "{src}: {out}");
            assert!(
                out.contains(message),
                "{src}: expected {message:?} in {out}"
            );
        }
    }

    #[test]
    fn domain_defaults_and_errors() {
        let out = expand_domain(
            "#[diesel(table_name = d)] struct D { id: i64, tenant_id: i64, domain: String,
             folder: Option<String>, is_primary: bool, redirect_to_primary: bool }",
        );
        assert!(
            out.contains(":: pgschemas_diesel :: models :: DomainModel"),
            "{out}"
        );
        assert!(!out.contains("compile_error"), "{out}");

        let out = expand_domain("#[domain(table = d, tenant = org)] struct D { id: i64 }");
        for missing in [
            "`org`",
            "`domain`",
            "`folder`",
            "`is_primary`",
            "`redirect_to_primary`",
        ] {
            assert!(out.contains(missing), "{missing}: {out}");
        }
    }
}
