//! The order the clone creates things in: functions, views and materialized views by their
//! dependencies (those that need the tables after them), tables by their foreign keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::objects::{ConstraintRow, Objects, TableRow};

/// A function, view or materialized view: what gets ordered by dependencies.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(super) enum Node {
    Proc(i64),
    Rel(i64),
}

type Edges = BTreeMap<Node, BTreeSet<Node>>;

/// Functions, views and materialized views in dependency order, split by whether they come
/// before the tables or after them.
pub(super) struct Order {
    nodes: Vec<Node>,
    /// Those that need the source's tables, or depend on something that does.
    late: BTreeSet<Node>,
    /// The functions among `late`.
    late_procs: BTreeSet<i64>,
}

impl Order {
    /// Orders the source's functions, views and materialized views by their dependencies.
    pub(super) fn of(objects: &Objects) -> Self {
        let (nodes, edges, needs_tables) = graph(objects);
        let nodes = topological(&nodes, &edges);
        let late = late_nodes(&nodes, &edges, &needs_tables);
        let late_procs = late
            .iter()
            .filter_map(|n| match n {
                Node::Proc(oid) => Some(*oid),
                Node::Rel(_) => None,
            })
            .collect();
        Self {
            nodes,
            late,
            late_procs,
        }
    }

    /// What can be created before the tables, in order.
    pub(super) fn early(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| !self.late.contains(n))
    }

    /// What needs the tables, in order.
    pub(super) fn late(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| self.late.contains(n))
    }

    /// Whether an expression calling the functions `procs` must wait for the tables.
    pub(super) fn calls_late(&self, procs: &Option<Vec<i64>>) -> bool {
        procs
            .as_ref()
            .is_some_and(|p| p.iter().any(|oid| self.late_procs.contains(oid)))
    }
}

/// The nodes, their dependencies on one another, and those that depend on a table,
/// sequence or index of the source.
fn graph(objects: &Objects) -> (BTreeSet<Node>, Edges, BTreeSet<Node>) {
    let class_kind: HashMap<i64, char> = objects
        .classes
        .iter()
        .map(|c| (c.oid, c.kind.chars().next().unwrap_or('?')))
        .collect();
    let mut nodes: BTreeSet<Node> = objects
        .functions
        .iter()
        .map(|f| Node::Proc(f.oid))
        .collect();
    nodes.extend(objects.views.iter().map(|v| Node::Rel(v.oid)));
    let node = |is_proc: bool, oid: i64| {
        if is_proc {
            Node::Proc(oid)
        } else {
            Node::Rel(oid)
        }
    };
    let mut edges = Edges::new();
    let mut needs_tables = BTreeSet::new();
    for d in &objects.depends {
        let from = node(d.node_is_proc, d.node);
        if !nodes.contains(&from) {
            continue;
        }
        let dep = node(d.dep_is_proc, d.dep);
        if nodes.contains(&dep) {
            edges.entry(from).or_default().insert(dep);
        } else if let Node::Rel(oid) = dep
            && matches!(class_kind.get(&oid), Some('r' | 'S' | 'i'))
        {
            needs_tables.insert(from);
        }
    }
    (nodes, edges, needs_tables)
}

/// The nodes of `order` that come after the tables: views and materialized views, what
/// needs a table, and what depends on one of those.
fn late_nodes(order: &[Node], edges: &Edges, needs_tables: &BTreeSet<Node>) -> BTreeSet<Node> {
    let mut late = BTreeSet::new();
    for n in order {
        let depends_on_late = edges
            .get(n)
            .is_some_and(|deps| deps.iter().any(|d| late.contains(d)));
        if matches!(n, Node::Rel(_)) || needs_tables.contains(n) || depends_on_late {
            late.insert(*n);
        }
    }
    late
}

/// The tables with every table after those its foreign keys reference (ties and cycles in
/// creation order).
pub(super) fn order_tables<'a>(
    tables: &'a [TableRow],
    constraints: &[ConstraintRow],
) -> Vec<&'a TableRow> {
    let nodes: BTreeSet<Node> = tables.iter().map(|t| Node::Rel(t.oid)).collect();
    let mut edges = Edges::new();
    for c in constraints {
        let (from, to) = (Node::Rel(c.rel), Node::Rel(c.refrel));
        if c.kind == "f" && from != to && nodes.contains(&to) {
            edges.entry(from).or_default().insert(to);
        }
    }
    let by_oid: HashMap<i64, &TableRow> = tables.iter().map(|t| (t.oid, t)).collect();
    topological(&nodes, &edges)
        .into_iter()
        .filter_map(|n| by_oid.get(&oid_of(&n)).copied())
        .collect()
}

/// Kahn's algorithm, ties broken by kind then OID (creation order); members of a cycle, if
/// PostgreSQL ever allowed one, come last in OID order.
fn topological(nodes: &BTreeSet<Node>, edges: &Edges) -> Vec<Node> {
    let mut remaining: BTreeMap<Node, usize> = nodes
        .iter()
        .map(|n| (*n, edges.get(n).map_or(0, BTreeSet::len)))
        .collect();
    let mut dependents: BTreeMap<Node, Vec<Node>> = BTreeMap::new();
    for (n, deps) in edges {
        for d in deps {
            dependents.entry(*d).or_default().push(*n);
        }
    }
    let mut ready: BTreeSet<(i64, Node)> = remaining
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(n, _)| (oid_of(n), *n))
        .collect();
    let mut out = Vec::with_capacity(nodes.len());
    while let Some(first) = ready.iter().next().copied() {
        ready.remove(&first);
        let n = first.1;
        remaining.remove(&n);
        out.push(n);
        for d in dependents.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(c) = remaining.get_mut(d) {
                *c -= 1;
                if *c == 0 {
                    ready.insert((oid_of(d), *d));
                }
            }
        }
    }
    let mut rest: Vec<Node> = remaining.into_keys().collect();
    rest.sort_by_key(oid_of);
    out.extend(rest);
    out
}

fn oid_of(n: &Node) -> i64 {
    match n {
        Node::Proc(o) | Node::Rel(o) => *o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topological_order_respects_dependencies_then_oids() {
        let nodes: BTreeSet<Node> = [Node::Rel(10), Node::Rel(20), Node::Proc(5), Node::Rel(30)]
            .into_iter()
            .collect();
        let mut edges = BTreeMap::new();
        // 10 depends on 30, 30 on the function 5.
        edges.insert(Node::Rel(10), [Node::Rel(30)].into_iter().collect());
        edges.insert(Node::Rel(30), [Node::Proc(5)].into_iter().collect());
        let order = topological(&nodes, &edges);
        assert_eq!(
            order,
            vec![Node::Proc(5), Node::Rel(20), Node::Rel(30), Node::Rel(10)]
        );
    }

    #[test]
    fn a_cycle_does_not_lose_nodes() {
        let nodes: BTreeSet<Node> = [Node::Rel(1), Node::Rel(2)].into_iter().collect();
        let mut edges = BTreeMap::new();
        edges.insert(Node::Rel(1), [Node::Rel(2)].into_iter().collect());
        edges.insert(Node::Rel(2), [Node::Rel(1)].into_iter().collect());
        assert_eq!(topological(&nodes, &edges).len(), 2);
    }
}
