use pgschemas_diesel::{Domain, Tenant};

#[derive(Tenant)]
enum Kind {
    A,
}

#[derive(Tenant)]
struct Tuple(i64, String);

#[derive(Domain)]
struct Unit;

fn main() {}
