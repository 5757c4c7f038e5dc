//! The statements of a SQL script (`run-sql`'s, a migration's run statement by statement
//! on Citus), read the way PostgreSQL's own lexer (and psql's) reads them: string literals, dollar quotes, quoted identifiers and comments are skipped;
//! a `BEGIN ATOMIC ... END` function body is one statement.

use crate::sql_lex::{
    block_comment_end, dollar_tag_end, is_ident_char, is_ident_start, line_comment_end,
};

/// One token at the top level of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A keyword or unquoted identifier, lower case.
    Word(String),
    /// A quoted identifier's name, lower case (setting names compare case-insensitively).
    Quoted(String),
    /// Anything else: a literal, a number, an operator, a parenthesis.
    Other,
}

/// A top-level statement: its text, without the semicolon, trimmed, and its first tokens.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    pub(crate) text: &'a str,
    head: Vec<Token>,
}

/// How many leading tokens a statement keeps: enough to classify it.
const HEAD: usize = 4;

/// The statements of `sql`, split at top-level semicolons; statements holding only comments
/// are left out.
pub(crate) fn statements(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut head: Vec<Token> = Vec::new();
    let mut has_code = false;
    let mut parens = 0usize;
    // Open BEGIN (and CASE inside one) of a `CREATE FUNCTION ... BEGIN ATOMIC` body.
    let mut blocks = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let token = match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = line_comment_end(bytes, i);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = block_comment_end(bytes, i);
                continue;
            }
            b'\'' => {
                // `E'...'`: the `E` right before, not the end of a longer word.
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_ident(bytes[i - 2]));
                i = string_end(bytes, i, escapes);
                Some(Token::Other)
            }
            b'"' => {
                let begin = i + 1;
                i = begin;
                loop {
                    match bytes.get(i) {
                        None => break,
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                let name = sql.get(begin..i.min(bytes.len())).unwrap_or("");
                Some(Token::Quoted(name.replace("\"\"", "\"").to_lowercase()))
            }
            b'$' if i == 0 || !is_ident(bytes[i - 1]) => {
                i = dollar_end(sql, i);
                Some(Token::Other)
            }
            b';' if parens == 0 && blocks == 0 => {
                if has_code {
                    out.push(Statement {
                        text: sql[start..i].trim(),
                        head: std::mem::take(&mut head),
                    });
                }
                head.clear();
                start = i + 1;
                has_code = false;
                None
            }
            b'(' => {
                parens += 1;
                Some(Token::Other)
            }
            b')' => {
                parens = parens.saturating_sub(1);
                Some(Token::Other)
            }
            c if is_ident_start(c) => {
                let begin = i;
                while i + 1 < bytes.len() && is_ident_char(bytes[i + 1]) {
                    i += 1;
                }
                let word = sql[begin..=i].to_ascii_lowercase();
                if parens == 0 && is_routine(&head) {
                    match word.as_str() {
                        "begin" => blocks += 1,
                        "case" if blocks > 0 => blocks += 1,
                        "end" => blocks = blocks.saturating_sub(1),
                        _ => {}
                    }
                }
                Some(Token::Word(word))
            }
            c if c.is_ascii_digit() => {
                while i + 1 < bytes.len() && (is_ident(bytes[i + 1]) || bytes[i + 1] == b'.') {
                    i += 1;
                }
                Some(Token::Other)
            }
            c if c.is_ascii_whitespace() => None,
            _ => Some(Token::Other),
        };
        if let Some(token) = token {
            has_code = true;
            if head.len() < HEAD {
                head.push(token);
            }
        }
        i += 1;
    }
    if has_code {
        out.push(Statement {
            text: sql[start..].trim(),
            head,
        });
    }
    out
}

/// Whether a statement starts `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (psql's rule for
/// when `BEGIN ... END` is a body, not a transaction).
fn is_routine(head: &[Token]) -> bool {
    let word = |i: usize| match head.get(i) {
        Some(Token::Word(w)) => w.as_str(),
        _ => "",
    };
    word(0) == "create"
        && (matches!(word(1), "function" | "procedure")
            || word(1) == "or"
                && word(2) == "replace"
                && matches!(word(3), "function" | "procedure"))
}

/// The index of the quote closing the string literal opened at `i` (`''` is a quote inside
/// it; with `escapes`, an `E'...'` string, so is `\'`).
fn string_end(bytes: &[u8], mut i: usize, escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
            } else {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// The index of the last `$` of the dollar-quoted string opened at `i` (`$$` or `$tag$`),
/// or `i` itself for a `$` that opens none (a parameter such as `$1`).
fn dollar_end(sql: &str, i: usize) -> usize {
    match dollar_tag_end(sql.as_bytes(), i) {
        Some(end) => {
            let tag = &sql[i..end];
            match sql[end..].find(tag) {
                Some(p) => end + p + tag.len() - 1,
                None => sql.len(),
            }
        }
        None => i,
    }
}

/// An identifier character other than `$`.
fn is_ident(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

impl Statement<'_> {
    /// Why this statement cannot run inside the transaction `run-sql` opens for each schema
    /// with that schema's search path, if it cannot:
    ///
    /// - transaction control (`BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK`,
    ///   `ABORT`, `SAVEPOINT`, `RELEASE`, `PREPARE TRANSACTION`, `COMMIT`/`ROLLBACK
    ///   PREPARED`): a `COMMIT` would commit the first part in the schema and run the rest
    ///   outside the schema's transaction and path;
    /// - `SET`/`RESET` of the search path (also `SET SCHEMA`, `RESET ALL`), of the role or
    ///   the session authorization: the rest would run on another path or as another role;
    /// - `DISCARD` and `DEALLOCATE`: they drop the connection's prepared statements, which
    ///   the connection's later statements rely on.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn refusal(&self) -> Option<&'static str> {
        let word = |i: usize| match self.head.get(i) {
            Some(Token::Word(w)) => w.as_str(),
            _ => "",
        };
        let name = |i: usize| match self.head.get(i) {
            Some(Token::Word(w) | Token::Quoted(w)) => w.as_str(),
            _ => "",
        };
        match word(0) {
            "begin" | "commit" | "end" | "rollback" | "abort" | "savepoint" | "release" => {
                Some("it controls the transaction")
            }
            "start" | "prepare" if word(1) == "transaction" => Some("it controls the transaction"),
            "set" | "reset" => {
                let at = if word(0) == "set" && matches!(word(1), "local" | "session") {
                    2
                } else {
                    1
                };
                match name(at) {
                    "search_path" | "schema" => Some("it changes the search path"),
                    "all" if word(0) == "reset" => Some("it resets the search path"),
                    "role" | "authorization" => Some("it changes the role"),
                    "session" if word(at + 1) == "authorization" => Some("it changes the role"),
                    _ => None,
                }
            }
            "discard" | "deallocate" => Some("it discards the connection's prepared statements"),
            _ => None,
        }
    }
}

/// The texts of the statements of `sql`.
pub(crate) fn split(sql: &str) -> Vec<&str> {
    statements(sql).into_iter().map(|s| s.text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_top_level_semicolons() {
        let cases: &[(&str, &[&str])] = &[
            ("select 1", &["select 1"]),
            ("select 1;", &["select 1"]),
            ("  select 1 ; -- done\n", &["select 1"]),
            ("select 1; select 2", &["select 1", "select 2"]),
            ("select ';'", &["select ';'"]),
            ("select 'it''s; ok'", &["select 'it''s; ok'"]),
            (r"select E'a\'; b'", &[r"select E'a\'; b'"]),
            ("select \"a;b\" from t", &["select \"a;b\" from t"]),
            ("select \"a\"\";b\" from t", &["select \"a\"\";b\" from t"]),
            ("select $$a;b$$", &["select $$a;b$$"]),
            (
                "create function f() returns int as $body$ select 1; $body$ language sql; select f()",
                &[
                    "create function f() returns int as $body$ select 1; $body$ language sql",
                    "select f()",
                ],
            ),
            ("select $1; select 2", &["select $1", "select 2"]),
            ("-- only a comment;\n", &[]),
            (
                "/* a; /* nested; */ b; */ select 1",
                &["/* a; /* nested; */ b; */ select 1"],
            ),
            ("", &[]),
            (";;", &[]),
            (
                "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end; select 3",
                &[
                    "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end",
                    "select 3",
                ],
            ),
            (
                "create or replace procedure p() language sql begin atomic insert into t values (1); end; commit",
                &[
                    "create or replace procedure p() language sql begin atomic insert into t values (1); end",
                    "commit",
                ],
            ),
            ("begin; select 1; end", &["begin", "select 1", "end"]),
        ];
        for (sql, expected) in cases {
            assert_eq!(split(sql), *expected, "{sql:?}");
        }
    }

    fn refused(sql: &str) -> Vec<(&str, &'static str)> {
        statements(sql)
            .into_iter()
            .filter_map(|s| Some((s.text, s.refusal()?)))
            .collect()
    }

    #[test]
    fn transaction_and_session_control_is_found() {
        for sql in [
            "begin",
            "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "start transaction",
            "commit",
            "COMMIT AND CHAIN",
            "end",
            "end work",
            "rollback",
            "rollback to savepoint a",
            "abort",
            "savepoint a",
            "release savepoint a",
            "release a",
            "prepare transaction 'x'",
            "commit prepared 'x'",
            "rollback prepared 'x'",
            "set search_path = public",
            "SET search_path TO public",
            "set local search_path = public",
            "set session search_path = public",
            "set \"Search_Path\" = public",
            "set schema 'public'",
            "reset search_path",
            "reset all",
            "set role nobody",
            "set local role nobody",
            "reset role",
            "set session authorization nobody",
            "reset session authorization",
            "discard all",
            "discard plans",
            "deallocate all",
            "  -- a comment\n/* and another */ COMMIT",
        ] {
            assert_eq!(refused(sql).len(), 1, "{sql:?} not refused");
        }
        assert_eq!(
            refused("insert into t values (1); commit; insert into t values (2)"),
            [("commit", "it controls the transaction")]
        );
    }

    #[test]
    fn lookalikes_are_not_refused() {
        for sql in [
            "select 'commit'",
            "select 'begin; commit'",
            "select E'\\'; commit; '",
            "select \"commit\" from t",
            "select 1 as \"begin\"",
            "-- commit\nselect 1",
            "/* commit; */ select 1",
            "select $$; commit; $$",
            "create procedure p() language plpgsql as $body$ begin commit; end $body$",
            "do $$ begin rollback; end $$",
            "create function f() returns int language sql begin atomic select 1; end",
            "set statement_timeout = 1000",
            "set local lock_timeout = 100",
            "set time zone 'UTC'",
            "set constraints all deferred",
            "set transaction isolation level serializable",
            "reset statement_timeout",
            "alter function f() set search_path = public",
            "alter role r set search_path = public",
            "create function g() returns int language sql set search_path = public return 1",
            "prepare q as select 1",
            "select 1 where ending = 1",
            "commit_log_entry()",
            "update t set role = 'admin'",
            "select begin from t",
        ] {
            assert_eq!(refused(sql), [], "{sql:?} refused");
        }
    }
}
