//! Putting the script together: what each phase creates, in the order it runs.

use std::collections::BTreeSet;

use super::CloneReport;
use super::copy::copy_statement;
use super::definitions::Definitions;
use super::objects::{Objects, SequenceRow, TriggerRow};
use super::order::{Node, Order};
use super::script::Script;
use super::tables::Tables;

/// The clone script, in five phases:
///
/// 1. types, sequences, functions that need no table, domain constraints;
/// 2. tables, with their columns and their own constraints except foreign keys;
/// 3. rows and the sequences' positions, in one statement;
/// 4. functions, views and materialized views that need the tables;
/// 5. what waited for them: indexes, foreign keys, triggers, rules, policies, comments.
pub(super) fn script(
    objects: &Objects,
    order: &Order,
    definitions: &Definitions,
    tables: &Tables,
) -> Script {
    let mut s = Script::default();
    before_tables(&mut s, objects, order, definitions);
    create_tables(&mut s, objects, tables);
    copy_rows(&mut s, objects, tables);
    nodes(&mut s, order.late(), definitions);
    after_rows(&mut s, objects, definitions, tables);
    s
}

/// How many objects of each kind the script creates.
pub(super) fn counts(objects: &Objects, tables: &Tables) -> CloneReport {
    let materialized_views = objects.views.iter().filter(|v| v.kind == "m").count();
    CloneReport {
        tables: objects.tables.len(),
        sequences: objects.sequences.len() + tables.identity_sequences,
        views: objects.views.len() - materialized_views,
        materialized_views,
        functions: objects.functions.len(),
        triggers: objects.triggers.len(),
        indexes: objects.indexes.len(),
        constraints: objects.constraints.len(),
        types: objects.types.len(),
        policies: objects.policies.len(),
        rules: objects.rules.len(),
        statistics: objects.statistics.len(),
        comments: objects.comments.len(),
        ..CloneReport::default()
    }
}

fn before_tables(s: &mut Script, objects: &Objects, order: &Order, definitions: &Definitions) {
    s.statements(objects.types.iter().map(|t| &t.sql));
    s.statements(own_sequences(objects).map(|q| &q.create));
    nodes(s, order.early(), definitions);
    s.statements(objects.domain_constraints.iter().map(|c| &c.sql));
}

fn create_tables(s: &mut Script, objects: &Objects, tables: &Tables) {
    s.statements(&tables.creates);
    s.statements(own_sequences(objects).filter_map(|q| q.owned_by.as_ref()));
}

/// Rows and every sequence's position, one data-modifying CTE per table and one scalar
/// `setval` per sequence.
fn copy_rows(s: &mut Script, objects: &Objects, tables: &Tables) {
    let setvals: Vec<String> = objects
        .sequences
        .iter()
        .map(|q| q.setval.clone())
        .chain(tables.setvals.iter().cloned())
        .collect();
    if let Some(sql) = copy_statement(&tables.copies, &setvals) {
        s.statement(&sql);
    }
}

fn after_rows(s: &mut Script, objects: &Objects, definitions: &Definitions, tables: &Tables) {
    s.statements(&tables.deferred);
    s.statements(&definitions.indexes);
    s.statements(&definitions.statistics);
    s.statements(&tables.after);
    s.statements(&tables.foreign_keys);
    for t in &objects.triggers {
        s.statement(&t.def);
        if let Some(state) = trigger_state(t) {
            s.statement(&format!("ALTER TABLE {} {state} {}", t.tbl, t.name));
        }
    }
    s.statements(objects.rules.iter().map(|r| &r.sql));
    s.statements(objects.policies.iter().map(|p| &p.sql));
    s.statements(objects.comments.iter().map(|c| &c.sql));
}

/// Creates the functions and views of `order`, in that order.
fn nodes<'a>(s: &mut Script, order: impl Iterator<Item = &'a Node>, definitions: &Definitions) {
    for n in order {
        if let Some(sql) = definitions.node(n) {
            s.script_statement(sql);
        }
    }
}

/// The sequences the script creates itself: not those a `serial` column recreates with its
/// table.
fn own_sequences(objects: &Objects) -> impl Iterator<Item = &SequenceRow> {
    let serial: BTreeSet<i64> = objects.serials.iter().map(|x| x.seq).collect();
    objects
        .sequences
        .iter()
        .filter(move |q| !serial.contains(&q.oid))
}

/// The statement's words for a trigger that does not fire as by default.
fn trigger_state(t: &TriggerRow) -> Option<&'static str> {
    match t.enabled.as_str() {
        "D" => Some("DISABLE TRIGGER"),
        "R" => Some("ENABLE REPLICA TRIGGER"),
        "A" => Some("ENABLE ALWAYS TRIGGER"),
        _ => None,
    }
}
