//! The management command line for the quickstart's setup: the ready-made tenant and domain
//! models (`pgschemas_diesel::models`), static tenants `www` (`localhost`, fallback
//! `tenants.localhost`) and `blog` (`blog.localhost`), the clone reference `sample`, and the
//! tenant migrations of `examples/migrations/tenant`.
//!
//! ```text
//! export DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
//! cargo run --example manage --features cli -- migrate            # works on an empty database
//! cargo run --example manage --features cli -- create-reference
//! cargo run --example manage --features cli -- create-tenant acme --domain acme.localhost
//! cargo run --example manage --features cli -- whowill --all
//! cargo run --example manage --features cli -- list
//! cargo run --example manage --features cli -- run-sql "select count(*) from customers" --dynamic
//! cargo run --example manage --features cli -- doctor
//! cargo run --example manage --features cli -- --help
//! ```

use std::process::ExitCode;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::cli::{self, App};
use pgschemas_diesel::{Config, StaticTenant};

/// Every tenant schema's migrations (static tenants, the clone reference, dynamic tenants).
const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

fn main() -> ExitCode {
    let config = Config::builder()
        .static_tenant(
            StaticTenant::builder("www")
                .domain("localhost")
                .fallback_domain("tenants.localhost"),
        )
        .static_tenant(StaticTenant::builder("blog").domain("blog.localhost"))
        .clone_reference("sample")
        .build();
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {}", e.report());
            return ExitCode::from(2);
        }
    };
    // The default models bring their catalog, their shared migrations (applied to the
    // shared schema first) and the way to write and delete tenant rows.
    cli::run(
        App::builder(config, TENANT_MIGRATIONS)
            .default_models()
            .build(),
    )
}
