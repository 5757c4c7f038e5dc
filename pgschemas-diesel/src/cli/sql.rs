//! `run-sql`: running the user's SQL in one schema and rendering what it returned.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::output::{Table, plural};
use crate::statements::split;

/// What a schema's run of the SQL gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqlResult {
    /// A query's rows, every value as text (`None` for NULL).
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    /// One statement that returns no rows: how many rows it affected.
    Affected(usize),
    /// Several statements, run as one script.
    Script,
}

impl SqlResult {
    /// The part of the progress line in parentheses: `2 rows`, `3 rows affected`, `done`.
    pub(crate) fn summary(&self) -> String {
        match self {
            Self::Rows { rows, .. } => plural(rows.len(), "row"),
            Self::Affected(n) => format!("{} affected", plural(*n, "row")),
            Self::Script => "script done".to_owned(),
        }
    }

    /// The rows as an indented table, or nothing.
    pub(crate) fn render(&self) -> String {
        let Self::Rows { columns, rows } = self else {
            return String::new();
        };
        if columns.is_empty() {
            return String::new();
        }
        let mut table = Table::new(&columns.iter().map(String::as_str).collect::<Vec<_>>());
        for row in rows {
            table.row(
                row.iter()
                    .map(|v| v.clone().unwrap_or_else(|| "NULL".to_owned()))
                    .collect(),
            );
        }
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = table.write(&mut out, "    ");
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(QueryableByName)]
struct Cell {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// Runs `sql` on `conn` (inside the caller's transaction, with the schema's path):
///
/// - several statements: as one script ([`SqlResult::Script`]);
/// - one query (`SELECT`, `WITH`, `VALUES`, `TABLE`): its rows, read through `to_json` so
///   that every column type renders as text; a `WITH` that modifies data (which cannot be a
///   subquery) runs as a plain statement instead;
/// - `SHOW name` / `SHOW ALL`: as the equivalent query on the settings;
/// - any other statement: the rows it affected.
pub(crate) fn run(conn: &mut PgConnection, sql: &str) -> QueryResult<SqlResult> {
    let statements = split(sql);
    let [single] = statements.as_slice() else {
        conn.batch_execute(sql)?;
        return Ok(SqlResult::Script);
    };
    match first_keyword(single).as_str() {
        "select" | "values" | "table" => rows(conn, single),
        "show" => rows(conn, &show_as_select(single)),
        "with" => {
            match conn.transaction(|conn| rows(conn, single)) {
                Ok(result) => Ok(result),
                // Retried as a statement: a data-modifying WITH is not allowed in a subquery.
                Err(_) => diesel::sql_query(*single)
                    .execute(conn)
                    .map(SqlResult::Affected),
            }
        }
        _ => diesel::sql_query(*single)
            .execute(conn)
            .map(SqlResult::Affected),
    }
}

/// A transaction-local setting holding the search path a schema's run started with.
const STARTED_WITH: &str = "pgschemas.run_sql_path";

/// Why a schema's run of the SQL failed.
#[derive(Debug)]
pub(crate) enum RunError {
    /// A statement failed; the transaction rolls back.
    Database(diesel::result::Error),
    /// The pool could not give a connection with the schema's path.
    Crate(crate::Error),
    /// The SQL left the schema's transaction or path (the statements the script check does
    /// not see, such as `set_config('search_path', ...)`): what it means is in the message.
    Escaped(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database(e) => write!(f, "{e}"),
            Self::Crate(e) => write!(f, "{}", e.report()),
            Self::Escaped(m) => f.write_str(m),
        }
    }
}

impl From<crate::Error> for RunError {
    fn from(e: crate::Error) -> Self {
        Self::Crate(e)
    }
}

impl From<diesel::result::Error> for RunError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Database(e)
    }
}

#[derive(QueryableByName)]
struct Paths {
    #[diesel(sql_type = Text)]
    now: String,
    #[diesel(sql_type = Nullable<Text>)]
    started: Option<String>,
}

/// [`run`], inside the schema's transaction, checking afterwards that the SQL left both in
/// place: still in the transaction (a transaction-local setting written before is still
/// there) and still on the path it started with. Otherwise [`RunError::Escaped`]: a path
/// change is rolled back with everything else; an ended transaction is reported as what
/// it is (its first part committed).
pub(crate) fn run_guarded(conn: &mut PgConnection, sql: &str) -> Result<SqlResult, RunError> {
    conn.batch_execute(&format!(
        "SELECT pg_catalog.set_config('{STARTED_WITH}', pg_catalog.current_setting('search_path'), true)"
    ))?;
    let result = run(conn, sql)?;
    let paths: Paths = diesel::sql_query(format!(
        "SELECT pg_catalog.current_setting('search_path') AS now, \
         NULLIF(pg_catalog.current_setting('{STARTED_WITH}', true), '') AS started"
    ))
    .get_result(conn)?;
    match paths.started {
        None => Err(RunError::Escaped(format!(
            "the SQL ended this schema's transaction: what ran before that was committed, the \
             rest ran outside it with the search path {}",
            paths.now
        ))),
        Some(started) if started != paths.now => Err(RunError::Escaped(format!(
            "the SQL changed the search path from {started} to {}; everything it did in this \
             schema was rolled back",
            paths.now
        ))),
        Some(_) => Ok(result),
    }
}

/// `SHOW x` as a query (a `SHOW` cannot be a subquery): `SHOW ALL` reads `pg_settings`, `SHOW
/// name` reads `current_setting('name')` into a column named after the setting.
fn show_as_select(statement: &str) -> String {
    let name = skip_comments(statement)
        .get(4..)
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    if name.eq_ignore_ascii_case("all") {
        return "SELECT name, setting, short_desc AS description FROM pg_catalog.pg_settings ORDER BY name"
            .to_owned();
    }
    let literal = name.replace('\'', "''");
    let column = name.replace('"', "\"\"");
    format!("SELECT pg_catalog.current_setting('{literal}') AS \"{column}\"")
}

fn rows(conn: &mut PgConnection, query: &str) -> QueryResult<SqlResult> {
    let cells: Vec<Cell> = diesel::sql_query(format!(
        "SELECT r.n, e.key, e.value \
         FROM (SELECT pg_catalog.row_number() OVER () AS n, pg_catalog.to_json(q) AS j \
               FROM (\n{query}\n) AS q) AS r \
         CROSS JOIN LATERAL pg_catalog.json_each_text(r.j) WITH ORDINALITY AS e(key, value, ord) \
         ORDER BY r.n, e.ord"
    ))
    .load(conn)?;
    let mut columns = Vec::new();
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let mut current = None;
    for cell in cells {
        if current != Some(cell.n) {
            current = Some(cell.n);
            rows.push(Vec::new());
        }
        if rows.len() == 1 {
            columns.push(cell.key);
        }
        if let Some(row) = rows.last_mut() {
            row.push(cell.value);
        }
    }
    Ok(SqlResult::Rows { columns, rows })
}

/// `statement` without its leading whitespace and comments.
fn skip_comments(statement: &str) -> &str {
    let mut rest = statement;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return rest;
        }
    }
}

/// The first keyword of a statement, lower case, skipping comments and opening parentheses.
pub(crate) fn first_keyword(statement: &str) -> String {
    let mut rest = statement;
    loop {
        let next = skip_comments(rest).trim_start_matches('(');
        if next.len() == rest.len() {
            break;
        }
        rest = next;
    }
    rest.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_becomes_a_query() {
        assert_eq!(
            show_as_select("SHOW search_path"),
            "SELECT pg_catalog.current_setting('search_path') AS \"search_path\""
        );
        assert_eq!(
            show_as_select("show \"it's\""),
            "SELECT pg_catalog.current_setting('it''s') AS \"it's\""
        );
        assert!(show_as_select("show all").contains("pg_settings"));
        assert_eq!(
            show_as_select("-- the path\nshow search_path"),
            show_as_select("show search_path")
        );
    }

    #[test]
    fn first_keywords() {
        assert_eq!(first_keyword("SELECT 1"), "select");
        assert_eq!(first_keyword("  -- hi\n /* x */ (select 1)"), "select");
        assert_eq!(
            first_keyword("with x as (select 1) select * from x"),
            "with"
        );
        assert_eq!(first_keyword("update t set a = 1"), "update");
        assert_eq!(first_keyword(""), "");
    }

    #[test]
    fn results_render_as_tables() {
        let r = SqlResult::Rows {
            columns: vec!["id".into(), "name".into()],
            rows: vec![
                vec![Some("1".into()), Some("acme".into())],
                vec![Some("2".into()), None],
            ],
        };
        assert_eq!(r.summary(), "2 rows");
        assert_eq!(r.render(), "    id  name\n    1   acme\n    2   NULL\n");
        assert_eq!(SqlResult::Affected(1).summary(), "1 row affected");
        assert_eq!(SqlResult::Script.render(), "");
    }
}
