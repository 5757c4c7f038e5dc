//! The catalog queries a clone reads its source with. `$1` in every one is the source
//! namespace's OID; each runs while the transaction's path is the source alone, so the
//! source's own objects come out unqualified.

pub(super) const UNSUPPORTED: &str = "
SELECT what AS sql FROM (
  SELECT CASE c.relkind WHEN 'p' THEN 'partitioned table ' WHEN 'f' THEN 'foreign table '
         ELSE 'partitioned index ' END || quote_ident(c.relname) AS what
    FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind IN ('p', 'f', 'I')
  UNION ALL SELECT 'typed table ' || quote_ident(c.relname)
    FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r' AND c.reloftype <> 0
  UNION ALL SELECT 'inheritance (table ' || quote_ident(c.relname) || ')'
    FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
    WHERE c.relnamespace = $1 OR p.relnamespace = $1
  UNION ALL SELECT CASE t.typtype WHEN 'r' THEN 'range type ' WHEN 'm' THEN 'multirange type '
         WHEN 'p' THEN 'pseudo-type ' ELSE 'base type ' END || quote_ident(t.typname)
    FROM pg_catalog.pg_type t
    WHERE t.typnamespace = $1 AND t.typtype IN ('b', 'r', 'm', 'p')
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  UNION ALL SELECT 'aggregate ' || quote_ident(p.proname)
    FROM pg_catalog.pg_proc p WHERE p.pronamespace = $1 AND p.prokind = 'a'
  UNION ALL SELECT 'operator ' || o.oprname FROM pg_catalog.pg_operator o WHERE o.oprnamespace = $1
  UNION ALL SELECT 'operator class ' || quote_ident(opcname) FROM pg_catalog.pg_opclass WHERE opcnamespace = $1
  UNION ALL SELECT 'operator family ' || quote_ident(opfname) FROM pg_catalog.pg_opfamily WHERE opfnamespace = $1
  UNION ALL SELECT 'collation ' || quote_ident(collname) FROM pg_catalog.pg_collation WHERE collnamespace = $1
  UNION ALL SELECT 'conversion ' || quote_ident(conname) FROM pg_catalog.pg_conversion WHERE connamespace = $1
  UNION ALL SELECT 'text search configuration ' || quote_ident(cfgname) FROM pg_catalog.pg_ts_config WHERE cfgnamespace = $1
  UNION ALL SELECT 'text search dictionary ' || quote_ident(dictname) FROM pg_catalog.pg_ts_dict WHERE dictnamespace = $1
  UNION ALL SELECT 'text search parser ' || quote_ident(prsname) FROM pg_catalog.pg_ts_parser WHERE prsnamespace = $1
  UNION ALL SELECT 'text search template ' || quote_ident(tmplname) FROM pg_catalog.pg_ts_template WHERE tmplnamespace = $1
  UNION ALL SELECT 'extension ' || quote_ident(extname) FROM pg_catalog.pg_extension WHERE extnamespace = $1
) u ORDER BY 1";

/// Enums first, then domains and composite types in creation order.
pub(super) const TYPES: &str = "
SELECT CASE t.typtype
  WHEN 'e' THEN 'CREATE TYPE ' || quote_ident(t.typname) || ' AS ENUM (' || coalesce((
      SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
      FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '') || ')'
  WHEN 'd' THEN 'CREATE DOMAIN ' || quote_ident(t.typname) || ' AS '
      || pg_catalog.format_type(t.typbasetype, t.typtypmod)
      || coalesce((SELECT ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
           FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
           WHERE co.oid = t.typcollation AND t.typcollation <> 0
             AND t.typcollation <> (SELECT b.typcollation FROM pg_catalog.pg_type b WHERE b.oid = t.typbasetype)), '')
      || coalesce(' DEFAULT ' || pg_catalog.pg_get_expr(t.typdefaultbin, 'pg_catalog.pg_type'::pg_catalog.regclass), '')
      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
  ELSE 'CREATE TYPE ' || quote_ident(t.typname) || ' AS (' || coalesce((
      SELECT string_agg(quote_ident(a.attname) || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
          || coalesce((SELECT ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
               FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
               JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
               WHERE co.oid = a.attcollation AND a.attcollation <> 0 AND a.attcollation <> at.typcollation), ''),
          ', ' ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '') || ')'
  END AS sql,
  CASE t.typtype WHEN 'd' THEN 'domain ' ELSE 'type ' END || quote_ident(t.typname) AS what
FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_class r ON r.oid = t.typrelid
WHERE t.typnamespace = $1 AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND r.relkind = 'c'))
ORDER BY t.typtype <> 'e', t.oid";

pub(super) const DOMAIN_CONSTRAINTS: &str = "
SELECT 'ALTER DOMAIN ' || quote_ident(t.typname) || ' ADD CONSTRAINT ' || quote_ident(co.conname) || ' '
       || pg_catalog.pg_get_constraintdef(co.oid) AS sql,
       'constraint ' || quote_ident(co.conname) || ' of domain ' || quote_ident(t.typname) AS what
FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_type t ON t.oid = co.contypid
WHERE t.typnamespace = $1 AND co.contype = 'c' ORDER BY co.oid";

/// Sequences that are not identity sequences (those come with their columns).
pub(super) const SEQUENCES: &str = "
SELECT c.oid::int8 AS oid, 'CREATE ' || CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END || 'SEQUENCE '
       || quote_ident(c.relname) || ' AS ' || pg_catalog.format_type(s.seqtypid, NULL)
       || ' INCREMENT BY ' || s.seqincrement || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax
       || ' START WITH ' || s.seqstart || ' CACHE ' || s.seqcache
       || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END AS create,
       '(SELECT pg_catalog.setval(' || quote_literal(quote_ident(c.relname)) || '::pg_catalog.regclass, last_value, is_called) FROM '
       || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ')' AS setval,
       (SELECT 'ALTER SEQUENCE ' || quote_ident(c.relname) || ' OWNED BY ' || quote_ident(t.relname) || '.' || quote_ident(a.attname)
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
          JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
          WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a'
            AND t.relnamespace = c.relnamespace LIMIT 1) AS owned_by
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relnamespace = $1 AND c.relkind = 'S'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'i')
ORDER BY c.oid";

/// Sequences that a `serial` column would create exactly as they are: owned by the column,
/// named as PostgreSQL names them, default options, the column's default `nextval` of it.
/// Such a column is cloned as `serial`, which creates the sequence with the table.
pub(super) const SERIALS: &str = "
SELECT sc.oid::int8 AS seq, a.attrelid::int8 AS rel, a.attnum::int4 AS attnum,
       CASE a.atttypid WHEN 'pg_catalog.int2'::pg_catalog.regtype THEN 'smallserial'
                       WHEN 'pg_catalog.int4'::pg_catalog.regtype THEN 'serial' ELSE 'bigserial' END AS type_name
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class sc ON sc.oid = s.seqrelid
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = sc.oid
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a'
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE sc.relnamespace = $1 AND t.relnamespace = $1 AND t.relkind = 'r'
  AND a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype,
                     'pg_catalog.int8'::pg_catalog.regtype)
  AND s.seqtypid = a.atttypid AND a.attnotnull AND a.attidentity = '' AND a.attgenerated = ''
  AND s.seqstart = 1 AND s.seqincrement = 1 AND s.seqmin = 1 AND s.seqcache = 1 AND NOT s.seqcycle
  AND s.seqmax = CASE a.atttypid WHEN 'pg_catalog.int2'::pg_catalog.regtype THEN 32767
                                 WHEN 'pg_catalog.int4'::pg_catalog.regtype THEN 2147483647
                                 ELSE 9223372036854775807 END
  AND sc.relname::text = t.relname || '_' || a.attname || '_seq'
  AND sc.relpersistence = t.relpersistence
  AND pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)
      = 'nextval(' || quote_literal(quote_ident(sc.relname)) || '::regclass)'";

pub(super) const TABLES: &str = "
SELECT c.oid::int8 AS oid, c.relname::text AS relname, quote_ident(c.relname) AS name,
       c.relpersistence::text AS persistence,
       (SELECT string_agg(quote_ident(option_name) || '=' || quote_literal(option_value), ', ')
          FROM pg_catalog.pg_options_to_table(c.reloptions)) AS options,
       c.relreplident::text AS replident,
       (SELECT quote_ident(i.relname) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
          WHERE x.indrelid = c.oid AND x.indisreplident LIMIT 1) AS replident_index,
       (SELECT quote_ident(i.relname) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
          WHERE x.indrelid = c.oid AND x.indisclustered LIMIT 1) AS cluster_index,
       c.relrowsecurity AS rls, c.relforcerowsecurity AS force_rls,
       pg_catalog.pg_relation_size(c.oid) AS bytes
FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r' ORDER BY c.oid";

pub(super) const COLUMNS: &str = "
SELECT a.attrelid::int8 AS rel, a.attnum::int4 AS attnum, quote_ident(a.attname) AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation,
       a.attnotnull AS not_null, a.attidentity::text AS identity, a.attgenerated::text AS generated,
       pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS expr,
       (SELECT array_agg(d.refobjid::int8) FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
            AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass) AS expr_procs,
       'SEQUENCE NAME ' || quote_ident(s.relname) || ' INCREMENT BY ' || s.seqincrement
         || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax || ' START WITH ' || s.seqstart
         || ' CACHE ' || s.seqcache || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END AS identity_options,
       '(SELECT pg_catalog.setval(' || quote_literal(quote_ident(s.relname)) || '::pg_catalog.regclass, last_value, is_called) FROM '
         || quote_ident(n.nspname) || '.' || quote_ident(s.relname) || ')' AS identity_setval,
       CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN'
            WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END AS storage,
       CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression,
       NULLIF(a.attstattarget, -1)::int4 AS stattarget,
       (t.typnamespace = $1 OR EXISTS (SELECT 1 FROM pg_catalog.pg_type el
                                       WHERE el.oid = t.typelem AND el.typnamespace = $1)) AS local_type
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN LATERAL (
    SELECT sc.relname, sq.seqincrement, sq.seqmin, sq.seqmax, sq.seqstart, sq.seqcache, sq.seqcycle
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class sc ON sc.oid = d.objid
    JOIN pg_catalog.pg_sequence sq ON sq.seqrelid = sc.oid
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'i'
    LIMIT 1) s ON a.attidentity <> ''
WHERE c.relnamespace = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

pub(super) const CONSTRAINTS: &str = "
SELECT co.conrelid::int8 AS rel, co.confrelid::int8 AS refrel, co.contype::text AS kind, quote_ident(co.conname) AS name,
       pg_catalog.pg_get_constraintdef(co.oid) AS def, co.convalidated AS validated,
       (co.contype <> 'f' OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = co.conindid
                                     AND k.conrelid = co.confrelid AND k.contype IN ('p', 'u'))) AS key_is_constraint,
       (SELECT array_agg(d.refobjid::int8) FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = co.oid
            AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass) AS procs
FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_class c ON c.oid = co.conrelid
WHERE c.relnamespace = $1 AND c.relkind = 'r' AND co.contype IN ('p', 'u', 'x', 'c', 'f')
ORDER BY co.conrelid, CASE co.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 WHEN 'c' THEN 3 ELSE 4 END, co.oid";

/// Valid indexes that no primary key, unique or exclusion constraint owns, on tables and
/// materialized views (an invalid index is the leftover of a failed build).
pub(super) const INDEXES: &str = "
SELECT pg_catalog.pg_get_indexdef(x.indexrelid) AS def,
       'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(i.relname)
         || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(t.relname) || ' ' AS qualified,
       'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(i.relname)
         || ' ON ' || quote_ident(t.relname) || ' ' AS local,
       'index ' || quote_ident(i.relname) AS what
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE t.relnamespace = $1 AND t.relkind IN ('r', 'm') AND x.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co
                  WHERE co.conindid = x.indexrelid AND co.conrelid = x.indrelid AND co.contype IN ('p', 'u', 'x'))
ORDER BY x.indexrelid";

pub(super) const FUNCTIONS: &str = "
SELECT p.oid::int8 AS oid, pg_catalog.pg_get_functiondef(p.oid) AS def,
       'CREATE OR REPLACE ' || k.keyword || ' ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' AS qualified,
       'CREATE OR REPLACE ' || k.keyword || ' ' || quote_ident(p.proname) || '(' AS local,
       k.signature, k.keyword, pg_catalog.lower(k.keyword) || ' ' || k.signature AS what,
       p.proconfig AS settings, p.prosrc AS body, l.lanname::text AS language
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
CROSS JOIN LATERAL (
    SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS keyword,
           quote_ident(p.proname) || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS signature) k
WHERE p.pronamespace = $1 AND p.prokind IN ('f', 'p', 'w')
ORDER BY p.oid";

pub(super) const VIEWS: &str = "
SELECT c.oid::int8 AS oid, c.relkind::text AS kind, quote_ident(c.relname) AS name,
       pg_catalog.pg_get_viewdef(c.oid) AS def,
       (SELECT string_agg(quote_ident(option_name) || '=' || quote_literal(option_value), ', ')
          FROM pg_catalog.pg_options_to_table(c.reloptions)) AS options,
       c.relispopulated AS populated
FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind IN ('v', 'm') ORDER BY c.oid";

/// Every class of the source with its kind, for classifying dependencies.
pub(super) const CLASSES: &str = "
SELECT c.oid::int8 AS oid, c.relkind::text AS kind FROM pg_catalog.pg_class c WHERE c.relnamespace = $1";

/// What functions, views and materialized views of the source depend on: classes and
/// functions, directly or through a table's row type (or an array of it).
pub(super) const DEPENDENCIES: &str = "
SELECT DISTINCT false AS node_is_proc, rw.ev_class::int8 AS node,
       d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AS dep_is_proc, d.refobjid::int8 AS dep
FROM pg_catalog.pg_rewrite rw
JOIN pg_catalog.pg_class c ON c.oid = rw.ev_class
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
WHERE c.relnamespace = $1 AND c.relkind IN ('v', 'm') AND d.refobjid <> rw.ev_class
  AND d.refclassid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass)
UNION
SELECT true, p.oid::int8, d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass, d.refobjid::int8
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
WHERE p.pronamespace = $1 AND d.refobjid <> p.oid
  AND d.refclassid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass)
UNION
SELECT true, p.oid::int8, false, coalesce(nullif(t.typrelid, 0), el.typrelid)::int8
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
JOIN pg_catalog.pg_type t ON d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = d.refobjid
LEFT JOIN pg_catalog.pg_type el ON el.oid = t.typelem
WHERE p.pronamespace = $1 AND coalesce(nullif(t.typrelid, 0), el.typrelid) <> 0";

pub(super) const TRIGGERS: &str = "
SELECT pg_catalog.pg_get_triggerdef(t.oid, true) AS def, quote_ident(t.tgname) AS name,
       quote_ident(c.relname) AS tbl, t.tgenabled::text AS enabled
FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = $1 AND NOT t.tgisinternal ORDER BY t.oid";

pub(super) const RULES: &str = "
SELECT rtrim(pg_catalog.pg_get_ruledef(r.oid, true), ';')
       || CASE WHEN r.ev_enabled = 'D' THEN '; ALTER TABLE ' || quote_ident(c.relname) || ' DISABLE RULE ' || quote_ident(r.rulename) ELSE '' END AS sql,
       'rule ' || quote_ident(r.rulename) || ' on ' || quote_ident(c.relname) AS what
FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = $1 AND r.rulename <> '_RETURN' ORDER BY r.oid";

pub(super) const POLICIES: &str = "
SELECT 'CREATE POLICY ' || quote_ident(p.polname) || ' ON ' || quote_ident(c.relname)
       || ' AS ' || CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END
       || ' FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                   WHEN 'd' THEN 'DELETE' ELSE 'ALL' END
       || ' TO ' || CASE WHEN p.polroles = '{0}' THEN 'PUBLIC' ELSE (
            SELECT string_agg(quote_ident(r.rolname), ', ') FROM pg_catalog.pg_roles r WHERE r.oid = ANY (p.polroles)) END
       || coalesce(' USING (' || pg_catalog.pg_get_expr(p.polqual, p.polrelid) || ')', '')
       || coalesce(' WITH CHECK (' || pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) || ')', '') AS sql,
       'policy ' || quote_ident(p.polname) || ' on ' || quote_ident(c.relname) AS what
FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = $1 ORDER BY p.oid";

pub(super) const STATISTICS: &str = "
SELECT pg_catalog.pg_get_statisticsobjdef(s.oid) AS def,
       'CREATE STATISTICS ' || quote_ident(n.nspname) || '.' || quote_ident(s.stxname) || ' ' AS qualified,
       'CREATE STATISTICS ' || quote_ident(s.stxname) || ' ' AS local,
       'statistics object ' || quote_ident(s.stxname) AS what
FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
WHERE s.stxnamespace = $1 ORDER BY s.oid";

/// Comments on the source's objects: each kind's rows give the key `pg_description` is
/// read by (catalog, OID, sub-ID) and the target a `COMMENT ON` names.
pub(super) const COMMENTS: &str = "
SELECT 'COMMENT ON ' || o.target || ' IS ' || quote_literal(d.description) AS sql FROM (
  SELECT 1 AS k, 'pg_catalog.pg_class'::pg_catalog.regclass AS cat, c.oid AS o, 0 AS sub,
         CASE c.relkind WHEN 'r' THEN 'TABLE ' WHEN 'v' THEN 'VIEW ' WHEN 'm' THEN 'MATERIALIZED VIEW '
                        WHEN 'S' THEN 'SEQUENCE ' ELSE 'INDEX ' END || quote_ident(c.relname) AS target
    FROM pg_catalog.pg_class c WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'v', 'm', 'S', 'i')
  UNION ALL SELECT 1, 'pg_catalog.pg_class', c.oid, a.attnum,
         'COLUMN ' || quote_ident(c.relname) || '.' || quote_ident(a.attname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
    WHERE c.relnamespace = $1
  UNION ALL SELECT 2, 'pg_catalog.pg_type', t.oid, 0,
         CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || quote_ident(t.typname)
    FROM pg_catalog.pg_type t WHERE t.typnamespace = $1
  UNION ALL SELECT 3, 'pg_catalog.pg_proc', p.oid, 0,
         CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END || quote_ident(p.proname)
         || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
    FROM pg_catalog.pg_proc p WHERE p.pronamespace = $1
  UNION ALL SELECT 4, 'pg_catalog.pg_constraint', co.oid, 0,
         'CONSTRAINT ' || quote_ident(co.conname) || ' ON ' || CASE WHEN co.contypid <> 0
           THEN 'DOMAIN ' || (SELECT quote_ident(t.typname) FROM pg_catalog.pg_type t WHERE t.oid = co.contypid)
           ELSE (SELECT quote_ident(c.relname) FROM pg_catalog.pg_class c WHERE c.oid = co.conrelid) END
    FROM pg_catalog.pg_constraint co WHERE co.connamespace = $1
  UNION ALL SELECT 5, 'pg_catalog.pg_trigger', tg.oid, 0,
         'TRIGGER ' || quote_ident(tg.tgname) || ' ON ' || quote_ident(c.relname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = c.oid WHERE c.relnamespace = $1
  UNION ALL SELECT 6, 'pg_catalog.pg_policy', p.oid, 0,
         'POLICY ' || quote_ident(p.polname) || ' ON ' || quote_ident(c.relname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid WHERE c.relnamespace = $1
  UNION ALL SELECT 7, 'pg_catalog.pg_rewrite', r.oid, 0,
         'RULE ' || quote_ident(r.rulename) || ' ON ' || quote_ident(c.relname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid AND r.rulename <> '_RETURN'
    WHERE c.relnamespace = $1
  UNION ALL SELECT 8, 'pg_catalog.pg_statistic_ext', s.oid, 0, 'STATISTICS ' || quote_ident(s.stxname)
    FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace = $1
) o JOIN pg_catalog.pg_description d ON d.objoid = o.o AND d.classoid = o.cat AND d.objsubid = o.sub
ORDER BY o.k, o.o, o.sub";
