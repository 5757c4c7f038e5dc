//! A randomized walk over everything that can happen to pooled connections: scopes, nested
//! scopes, the transaction form, the attacks of `isolation.rs`, panics, killed backends, and
//! schemas dropped and created again from another session. The oracle: every read returns
//! exactly the expected schema's rows or a clear error where one is due, and a checkout of an
//! existing schema never fails. The seed is printed (set `ISOLATION_SEED` to replay one).

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Nullable, Text};
use pgschemas_diesel::{Config, Error, TenantPool, test_database};

const TENANTS: [&str; 4] = ["r0", "r1", "r2", "r3"];

/// SplitMix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(QueryableByName)]
struct Rows {
    #[diesel(sql_type = Nullable<Array<Text>>)]
    rows: Option<Vec<String>>,
}

fn read(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    diesel::sql_query("select array_agg(tenant order by tenant) as rows from orders")
        .get_result::<Rows>(conn)
        .map(|r| r.rows.unwrap_or_default())
}

fn create_tenant_sql(t: &str) -> String {
    format!(
        "create schema {t}; create table {t}.orders (tenant text not null); insert into {t}.orders values ('{t}');"
    )
}

/// Statements a caller may run inside a checkout, from harmless to hostile.
const USER_SQL: &[&str] = &[
    "select 1",
    "set search_path = r1",
    "select set_config('search_path', 'r2', false)",
    "reset all",
    "discard all",
    "begin",
    "begin; set search_path = public",
    "begin; select 1/0",
    "create temp table orders as select * from orders",
    "set app.tenant = 'leak'",
    "declare c cursor with hold for select * from orders",
    "listen events",
    "select pg_advisory_lock(7)",
    "set default_transaction_read_only = on",
    "set role rnd_nobody",
    "set session authorization rnd_nobody",
    "set statement_timeout = 1",
];

struct Walk<'a> {
    db: &'a pgschemas_diesel::testing::TestDatabase,
    pool: &'a TenantPool,
    admin: PgConnection,
    rng: Rng,
    seed: u64,
    dropped: BTreeSet<&'static str>,
    step: usize,
}

impl Walk<'_> {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "seed {} step {} (pool size {}): {what}",
            self.seed,
            self.step,
            self.pool.max_size()
        )
    }

    /// A checkout of `t` succeeds when the schema exists and is `SchemaNotFound` when not.
    fn expect_checkout<T>(&self, t: &str, got: Result<T, Error>) -> Option<T> {
        match (got, self.dropped.contains(t)) {
            (Ok(v), false) => Some(v),
            (Err(Error::SchemaNotFound { schema }), true) if schema == t => None,
            (Ok(_), true) => self.fail(&format!("checkout of dropped schema {t} succeeded")),
            (Err(e), _) => self.fail(&format!("checkout of {t}: {e}")),
        }
    }

    /// The first read of a checkout must succeed with exactly `t`'s rows.
    fn expect_rows(&self, t: &str, got: QueryResult<Vec<String>>) {
        match got {
            Ok(rows) if rows == [t] => {}
            Ok(rows) => self.fail(&format!("{t} read {rows:?}")),
            Err(e) => self.fail(&format!("first read of {t}: {e}")),
        }
    }

    /// A read after the caller's own statements: `t`'s rows, another path the caller chose
    /// itself (never a schema it did not name), or an error.
    fn check_later(&self, t: &str, got: QueryResult<Vec<String>>) {
        if let Ok(rows) = got {
            let allowed = [t, "r1", "r2", "public"];
            if rows.len() != 1 || !allowed.contains(&rows[0].as_str()) {
                self.fail(&format!("{t} after user SQL read {rows:?}"));
            }
        }
    }

    /// The walk's own connection, opened again if something killed it.
    fn admin(&mut self) -> &mut PgConnection {
        if diesel::sql_query("select 1")
            .execute(&mut self.admin)
            .is_err()
        {
            self.admin = self.db.connect();
        }
        &mut self.admin
    }

    fn live(&mut self) -> &'static str {
        TENANTS[self.rng.below(TENANTS.len())]
    }

    fn one(&mut self) {
        let t = self.live();
        match self.rng.below(40) {
            0..=11 | 35.. => {
                let Some(mut scope) = self.expect_checkout(t, self.pool.scope(&t)) else {
                    return;
                };
                self.expect_rows(t, read(&mut scope));
                if self.rng.below(2) == 0 {
                    let sql = *self.rng.pick(USER_SQL);
                    let _ = scope.batch_execute(sql);
                    self.check_later(t, read(&mut scope));
                }
            }
            12..=15 => {
                let Some(mut scope) = self.expect_checkout(t, self.pool.scope(&t)) else {
                    return;
                };
                let u = self.live();
                let nested_ok = match scope.nested(&u) {
                    Ok(mut inner) => {
                        self.expect_checkout(u, Ok(()));
                        self.expect_rows(u, read(&mut inner));
                        true
                    }
                    Err(e) => {
                        self.expect_checkout::<()>(u, Err(e));
                        false
                    }
                };
                let _ = nested_ok;
                self.expect_rows(t, read(&mut scope));
            }
            16..=25 => {
                let sql = if self.rng.below(2) == 0 {
                    Some(*self.rng.pick(USER_SQL))
                } else {
                    None
                };
                let commit = self.rng.below(3) != 0;
                let mut first = None;
                let got = self.pool.transaction(&t, |conn| {
                    first = Some(read(conn));
                    if let Some(sql) = sql {
                        let _ = conn.batch_execute(sql);
                    }
                    if commit {
                        Ok(())
                    } else {
                        Err(Error::Config("closure fails".into()))
                    }
                });
                if let Some(first) = first {
                    self.expect_rows(t, first);
                } else if !matches!(got, Err(Error::SchemaNotFound { .. })) {
                    self.fail(&format!("transaction of {t} did not run: {got:?}"));
                } else {
                    self.expect_checkout::<()>(t, got.map(|_| ()));
                }
            }
            26..=29 => {
                let mut conn = self
                    .pool
                    .get()
                    .unwrap_or_else(|e| self.fail(&e.to_string()));
                self.expect_rows("public", read(&mut conn));
            }
            30 | 31 => {
                let pool = self.pool;
                let result = catch_unwind(AssertUnwindSafe(|| {
                    let mut scope = pool.scope(&t).ok();
                    if let Some(scope) = scope.as_mut() {
                        let _ = scope.batch_execute("set search_path = public");
                    }
                    panic!("a panic inside a scope");
                }));
                assert!(result.is_err());
            }
            32 => {
                if let Some(mut scope) = self.expect_checkout(t, self.pool.scope(&t)) {
                    let _ = self
                        .admin()
                        .batch_execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and application_name = ''");
                    self.check_later(t, read(&mut scope));
                }
            }
            33 | 34 => {
                if self.dropped.remove(t) {
                    self.admin().batch_execute(&create_tenant_sql(t)).unwrap();
                } else if self.dropped.len() < 2 {
                    // A connection a caller left idle in a transaction may hold a lock on the
                    // schema's table until its next checkout: give up the drop then.
                    let dropped = self.admin().batch_execute(&format!(
                        "set lock_timeout = '500ms'; drop schema {t} cascade"
                    ));
                    if dropped.is_ok() {
                        self.dropped.insert(t);
                    }
                }
            }
        }
        if self.pool.max_size() > 1 && self.rng.below(8) == 0 {
            // Two checkouts at once: each sees its own schema.
            let (a, b) = (self.live(), self.live());
            let first = self.expect_checkout(a, self.pool.scope(&a));
            let second = self.expect_checkout(b, self.pool.transaction(&b, |c| Ok(read(c))));
            if let Some(mut first) = first {
                self.expect_rows(a, read(&mut first));
            }
            if let Some(second) = second {
                self.expect_rows(b, second);
            }
        }
    }
}

fn walk(db: &pgschemas_diesel::testing::TestDatabase, size: u32, steps: usize) {
    let mut admin = db.connect();
    let mut script = String::from(
        "create table public.orders (tenant text not null); insert into public.orders values ('public');
         do $$ begin if not exists (select from pg_roles where rolname = 'rnd_nobody') then create role rnd_nobody; end if; end $$;",
    );
    for t in TENANTS {
        script.push_str(&create_tenant_sql(t));
    }
    admin.batch_execute(&script).unwrap();
    let seed = std::env::var("ISOLATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("isolation walk: seed {seed}, pool size {size}, {steps} steps");
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder()
            .max_size(size)
            .connection_timeout(std::time::Duration::from_secs(10)),
    )
    .unwrap();
    let mut walk = Walk {
        db,
        pool: &pool,
        admin,
        rng: Rng(seed),
        seed,
        dropped: BTreeSet::new(),
        step: 0,
    };
    // Quiet the expected panics of the walk.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"a panic inside a scope") {
            hook(info);
        }
    }));
    for step in 0..steps {
        walk.step = step;
        walk.one();
    }
}

#[test]
fn a_random_walk_on_a_pool_of_one_never_reads_another_schema() {
    walk(&test_database!(), 1, 6_000);
}

#[test]
fn a_random_walk_on_a_pool_of_two_never_reads_another_schema() {
    walk(&test_database!(), 2, 4_000);
}
