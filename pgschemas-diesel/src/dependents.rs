//! What else `DROP SCHEMA ... CASCADE` would drop: the objects outside a schema that depend
//! on objects inside it, read from `pg_depend`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};

use crate::error::Dependent;
use crate::error::{Error, Result};
use crate::name::SchemaName;

/// The objects of schema `$1`, as `(classid, objid)` pairs of `pg_depend`: the schema itself,
/// everything whose namespace it is, and the parts of its relations and operator families
/// (rules, triggers, policies, column defaults, operators and support functions), which have
/// no namespace of their own.
const INSIDE: &str = "\
s AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1),
rel AS (SELECT c.oid FROM pg_catalog.pg_class c, s WHERE c.relnamespace = s.oid),
fam AS (SELECT f.oid FROM pg_catalog.pg_opfamily f, s WHERE f.opfnamespace = s.oid),
inside (classid, objid) AS (
  SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, s.oid FROM s
  UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, oid FROM rel
  UNION ALL SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, oid FROM fam
  UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_type x, s WHERE x.typnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_proc x, s WHERE x.pronamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_constraint x, s WHERE x.connamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_operator x, s WHERE x.oprnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_opclass x, s WHERE x.opcnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_collation x, s WHERE x.collnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_conversion x, s WHERE x.connamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_statistic_ext x, s WHERE x.stxnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_ts_config x, s WHERE x.cfgnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_ts_dict x, s WHERE x.dictnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_ts_parser'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_ts_parser x, s WHERE x.prsnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_ts_template'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_ts_template x, s WHERE x.tmplnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_extension x, s WHERE x.extnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_default_acl'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_default_acl x, s WHERE x.defaclnamespace = s.oid
  UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_rewrite x WHERE x.ev_class IN (SELECT oid FROM rel)
  UNION ALL SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_trigger x WHERE x.tgrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_policy x WHERE x.polrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_attrdef x WHERE x.adrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT 'pg_catalog.pg_amop'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_amop x WHERE x.amopfamily IN (SELECT oid FROM fam)
  UNION ALL SELECT 'pg_catalog.pg_amproc'::pg_catalog.regclass, x.oid FROM pg_catalog.pg_amproc x WHERE x.amprocfamily IN (SELECT oid FROM fam)
)";

/// The `pg_depend` edges that cross the schema's border in a way a cascading drop follows:
///
/// - an outside object depends on an inside one (any dependency but an internal one, which
///   makes the outside object a part of the inside one, as a TOAST table is): a view, a
///   foreign key, a column, a function, a default, a cast, an inheriting table; it is dropped;
/// - an inside object is a part (internal or extension member) of an outside one: the whole
///   is dropped, an extension with all its members.
///
/// A view's `_RETURN` rule is shown as the view. Each outside object once, sorted.
const CROSSING: &str = "\
crossing (classid, objid, objsubid, refclassid, refobjid, owns) AS (
  SELECT d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid, false
  FROM inside i JOIN pg_catalog.pg_depend d ON d.refclassid = i.classid AND d.refobjid = i.objid
  WHERE d.deptype <> 'i'
    AND NOT EXISTS (SELECT 1 FROM inside o WHERE o.classid = d.classid AND o.objid = d.objid)
  UNION ALL
  SELECT d.refclassid, d.refobjid, d.refobjsubid, d.classid, d.objid, true
  FROM inside i JOIN pg_catalog.pg_depend d ON d.classid = i.classid AND d.objid = i.objid
  WHERE d.deptype IN ('i', 'e')
    AND NOT EXISTS (SELECT 1 FROM inside o WHERE o.classid = d.refclassid AND o.objid = d.refobjid)
),
shown AS (
  SELECT CASE WHEN w.oid IS NULL THEN c.classid ELSE 'pg_catalog.pg_class'::pg_catalog.regclass END AS classid,
         coalesce(w.ev_class, c.objid) AS objid,
         CASE WHEN w.oid IS NULL THEN c.objsubid ELSE 0 END AS objsubid,
         c.refclassid, c.refobjid, c.owns
  FROM crossing c
  LEFT JOIN pg_catalog.pg_rewrite w
    ON c.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND w.oid = c.objid AND w.rulename = '_RETURN'
)
SELECT DISTINCT ON (1) pg_catalog.concat(o.type, ' ', o.identity) AS object,
       pg_catalog.concat(r.type, ' ', r.identity) AS inner_object, c.owns
FROM shown c
CROSS JOIN LATERAL pg_catalog.pg_identify_object(c.classid, c.objid, c.objsubid) o
CROSS JOIN LATERAL pg_catalog.pg_identify_object(c.refclassid, c.refobjid, 0) r
ORDER BY 1, 2";

#[derive(QueryableByName)]
struct Crossing {
    #[diesel(sql_type = Text)]
    object: String,
    #[diesel(sql_type = Text)]
    inner_object: String,
    #[diesel(sql_type = Bool)]
    owns: bool,
}

/// The objects outside `schema` that dropping it with `CASCADE` would drop too, each as
/// `kind schema.name (depends on kind schema.name)` or `... (owns ...)`; empty when the
/// schema drops alone (or does not exist).
pub(crate) fn outside_dependents(
    conn: &mut PgConnection,
    schema: &SchemaName,
) -> Result<Vec<Dependent>> {
    let rows: Vec<Crossing> = diesel::sql_query(format!("WITH {INSIDE},\n{CROSSING}"))
        .bind::<Text, _>(schema.as_str())
        .load(conn)
        .map_err(|e| Error::db(schema.as_str(), e))?;
    Ok(rows
        .into_iter()
        .map(|r| Dependent {
            object: r.object,
            owns: r.owns,
            inside: r.inner_object,
        })
        .collect())
}

#[derive(QueryableByName)]
struct Relation {
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
}

/// Takes `ACCESS EXCLUSIVE` locks on the tables, views and foreign tables of `schema` (as
/// `DROP` would), so that no other session can create a view or a foreign key over them
/// until the transaction ends; `false` when the schema does not exist. Run inside a
/// transaction, before reading [`outside_dependents`].
pub(crate) fn lock_relations(conn: &mut PgConnection, schema: &SchemaName) -> Result<bool> {
    // One row per relation; a single NULL row for a schema without any; none for no schema.
    let rows: Vec<Relation> = diesel::sql_query(
        "SELECT CASE WHEN c.oid IS NOT NULL \
         THEN pg_catalog.format('ONLY %I.%I', n.nspname, c.relname) END AS name \
         FROM pg_catalog.pg_namespace n \
         LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'f') \
         WHERE n.nspname = $1 ORDER BY c.oid",
    )
    .bind::<Text, _>(schema.as_str())
    .load(conn)
    .map_err(|e| Error::db(schema.as_str(), e))?;
    if rows.is_empty() {
        return Ok(false);
    }
    // The names were quoted by the server (`format('%I')`).
    let names: Vec<String> = rows.into_iter().filter_map(|r| r.name).collect();
    if !names.is_empty() {
        conn.batch_execute(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            names.join(", ")
        ))
        .map_err(|e| Error::db(schema.as_str(), e))?;
    }
    Ok(true)
}
