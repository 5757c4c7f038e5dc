//! A tenant model without a domain model, as a catalog.
use std::sync::Arc;

use diesel::prelude::*;
use pgschemas_diesel::{catalog::Catalog, models::ModelCatalog, models::NoDomains, Tenant};

diesel::table! {
    app.customers (id) { id -> Text, schema_name -> Text }
}

#[derive(Queryable, Selectable, Tenant)]
#[diesel(table_name = customers)]
struct Customer {
    id: String,
    schema_name: String,
}

fn main() {
    let catalog: Arc<dyn Catalog> = Arc::new(ModelCatalog::<Customer, NoDomains>::new());
    assert_eq!(catalog.watched_tables(pgschemas_diesel::Config::default().shared_schema()), [("app".to_string(), "customers".to_string())]);
}
