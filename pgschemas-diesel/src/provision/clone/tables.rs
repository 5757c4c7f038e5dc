//! The tables' statements: `CREATE TABLE` with columns and constraints, and what has to
//! wait for the rows or for the functions that need the tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::name::SchemaName;

use super::LEDGER;
use super::copy::RowCopy;
use super::objects::{ColumnRow, ConstraintRow, Identity, Objects, TableRow, TableSettings};
use super::order::{Order, order_tables};

/// Past this many bytes of source rows to copy, foreign keys are added after the rows (one
/// validation costs less than a check per row).
const INLINE_KEYS_MAX_BYTES: i64 = 8 << 20;

/// The tables' statements, grouped by where they go in the script.
#[derive(Default)]
pub(super) struct Tables {
    /// `CREATE TABLE`s, each table after those its foreign keys reference.
    pub(super) creates: Vec<String>,
    /// Defaults and checks calling functions that need the tables, `NOT VALID` checks.
    pub(super) deferred: Vec<String>,
    /// Foreign keys not declared with their table, one `ALTER TABLE` a table.
    pub(super) foreign_keys: Vec<String>,
    /// Storage, statistics targets, replica identity, clustering, row security.
    pub(super) after: Vec<String>,
    /// The `INSERT ... SELECT`s copying rows from the source.
    pub(super) copies: Vec<String>,
    /// The identity sequences' `setval`s.
    pub(super) setvals: Vec<String>,
    /// How many identity sequences the columns create.
    pub(super) identity_sequences: usize,
}

/// What the statements of one table are made from.
struct Context<'a> {
    order: &'a Order,
    columns: BTreeMap<i64, Vec<&'a ColumnRow>>,
    constraints: BTreeMap<i64, Vec<&'a ConstraintRow>>,
    /// The `serial` type of each column cloned as one, by table and column number.
    serial_cols: HashMap<(i64, i32), &'a str>,
    src_tables: BTreeSet<i64>,
    /// Whether foreign keys can be declared with their tables.
    inline_fks: bool,
}

impl Tables {
    /// The statements of `objects`' tables, read from `src`; their rows are copied when
    /// `with_data` (the migration ledger's always).
    ///
    /// Tables come in foreign-key order, so a key can be declared with its table
    /// (PostgreSQL then skips validating it) and rows copied in that order satisfy it. Keys
    /// that point forward (cycles) are added after the rows, and so are all keys when there
    /// are many rows to copy.
    pub(super) fn plan(
        objects: &Objects,
        order: &Order,
        src: &SchemaName,
        with_data: bool,
    ) -> Self {
        let ctx = Context::new(objects, order, with_data);
        let mut out = Self::default();
        let mut created = BTreeSet::new();
        for t in order_tables(&objects.tables, &objects.constraints) {
            created.insert(t.oid);
            let mut copy = RowCopy::default();
            let mut parts = Vec::new();
            for c in ctx.columns.get(&t.oid).map(Vec::as_slice).unwrap_or(&[]) {
                parts.push(out.column(t, c, &ctx, &mut copy));
            }
            out.constraints(t, &ctx, &created, &mut parts);
            out.creates.push(create_table_sql(t, &parts));
            if with_data || t.relname == LEDGER {
                out.copies.extend(copy.sql(&t.name, src));
            }
            out.after.extend(table_settings(&t.name, &t.settings));
        }
        out
    }

    /// A column's clause in `CREATE TABLE`; what waits for later goes to `self`, the
    /// column's part of the row copy to `copy`.
    fn column<'a>(
        &mut self,
        t: &TableRow,
        c: &'a ColumnRow,
        ctx: &Context<'_>,
        copy: &mut RowCopy<'a>,
    ) -> String {
        let serial = ctx.serial_cols.get(&(c.rel, c.attnum)).copied();
        let mut p = format!("{} {}", c.name, serial.unwrap_or(&c.type_name));
        if let Some(comp) = &c.compression {
            write!(p, " COMPRESSION {comp}").ok();
        }
        if let Some(coll) = &c.collation {
            write!(p, " COLLATE {coll}").ok();
        }
        if c.generated == "s" {
            if let Some(e) = &c.expr {
                write!(p, " GENERATED ALWAYS AS ({e}) STORED").ok();
            }
        } else {
            copy.push(c);
            if !c.identity.kind.is_empty() {
                p.push_str(&self.identity(&c.identity));
            } else if serial.is_some() {
                // `serial` brings its own default.
            } else if let Some(e) = &c.expr {
                if ctx.order.calls_late(&c.expr_procs) {
                    self.deferred.push(format!(
                        "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {e}",
                        t.name, c.name
                    ));
                } else {
                    write!(p, " DEFAULT {e}").ok();
                }
            }
        }
        if c.not_null {
            p.push_str(" NOT NULL");
        }
        let settings = [
            c.settings
                .storage
                .as_ref()
                .map(|st| format!("STORAGE {st}")),
            c.settings.stattarget.map(|n| format!("STATISTICS {n}")),
        ];
        for s in settings.into_iter().flatten() {
            self.after.push(format!(
                "ALTER TABLE {} ALTER COLUMN {} SET {s}",
                t.name, c.name
            ));
        }
        p
    }

    /// An identity column's clause; its sequence's position goes to the `setval`s.
    fn identity(&mut self, identity: &Identity) -> String {
        let kind = if identity.kind == "a" {
            "ALWAYS"
        } else {
            "BY DEFAULT"
        };
        let mut p = format!(" GENERATED {kind} AS IDENTITY");
        if let Some(o) = &identity.options {
            write!(p, " ({o})").ok();
            self.identity_sequences += 1;
        }
        if let Some(sv) = &identity.setval {
            self.setvals.push(sv.clone());
        }
        p
    }

    /// Adds `t`'s constraints to its clauses `parts`, or to the statements that come later
    /// when they cannot be declared with the table (`created`: the tables created so far).
    fn constraints(
        &mut self,
        t: &TableRow,
        ctx: &Context<'_>,
        created: &BTreeSet<i64>,
        parts: &mut Vec<String>,
    ) {
        let mut fks: Vec<String> = Vec::new();
        for c in ctx
            .constraints
            .get(&t.oid)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let clause = format!("CONSTRAINT {} {}", c.name, c.def);
            if c.kind == "f" {
                let target_exists = c.refrel == t.oid
                    || created.contains(&c.refrel)
                    || !ctx.src_tables.contains(&c.refrel);
                if ctx.inline_fks && c.validated && c.key_is_constraint && target_exists {
                    parts.push(clause);
                } else {
                    fks.push(format!("ADD {clause}"));
                }
            } else if ctx.order.calls_late(&c.procs) || !c.validated {
                // A `NOT VALID` check only keeps that meaning when added after the rows.
                self.deferred
                    .push(format!("ALTER TABLE {} ADD {clause}", t.name));
            } else {
                parts.push(clause);
            }
        }
        if !fks.is_empty() {
            self.foreign_keys
                .push(format!("ALTER TABLE {} {}", t.name, fks.join(", ")));
        }
    }
}

impl<'a> Context<'a> {
    fn new(objects: &'a Objects, order: &'a Order, with_data: bool) -> Self {
        let mut columns: BTreeMap<i64, Vec<&ColumnRow>> = BTreeMap::new();
        for c in &objects.columns {
            columns.entry(c.rel).or_default().push(c);
        }
        let mut constraints: BTreeMap<i64, Vec<&ConstraintRow>> = BTreeMap::new();
        for c in &objects.constraints {
            constraints.entry(c.rel).or_default().push(c);
        }
        let bytes: i64 = objects.tables.iter().map(|t| t.bytes).sum();
        Self {
            order,
            columns,
            constraints,
            serial_cols: objects
                .serials
                .iter()
                .map(|x| ((x.rel, x.attnum), x.type_name.as_str()))
                .collect(),
            src_tables: objects.tables.iter().map(|t| t.oid).collect(),
            inline_fks: !with_data || bytes <= INLINE_KEYS_MAX_BYTES,
        }
    }
}

fn create_table_sql(t: &TableRow, parts: &[String]) -> String {
    let unlogged = if t.persistence == "u" {
        "UNLOGGED "
    } else {
        ""
    };
    let with = t
        .options
        .as_ref()
        .map(|o| format!(" WITH ({o})"))
        .unwrap_or_default();
    format!(
        "CREATE {unlogged}TABLE {} (\n  {}\n){with}",
        t.name,
        parts.join(",\n  ")
    )
}

/// The statements giving the table `name` (quoted) its replica identity, clustering index
/// and row security.
fn table_settings(name: &str, t: &TableSettings) -> Vec<String> {
    let replica_identity = match t.replident.as_str() {
        "f" => Some("FULL".to_owned()),
        "n" => Some("NOTHING".to_owned()),
        "i" => t
            .replident_index
            .as_ref()
            .map(|i| format!("USING INDEX {i}")),
        _ => None,
    };
    let settings = [
        replica_identity.map(|r| format!("REPLICA IDENTITY {r}")),
        t.cluster_index.as_ref().map(|i| format!("CLUSTER ON {i}")),
        t.rls.then(|| "ENABLE ROW LEVEL SECURITY".to_owned()),
        t.force_rls.then(|| "FORCE ROW LEVEL SECURITY".to_owned()),
    ];
    settings
        .into_iter()
        .flatten()
        .map(|s| format!("ALTER TABLE {name} {s}"))
        .collect()
}
