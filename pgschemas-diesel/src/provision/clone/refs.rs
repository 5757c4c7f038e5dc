//! Finding the places where a definition names its own schema, and reading `search_path`
//! settings.
//!
//! A clone reads definitions with the source alone on the path, so PostgreSQL prints the
//! source's own objects unqualified and the clone's path then finds the clone's. What is left
//! naming the source after that (a qualified name in a function body, a string that dynamic SQL
//! or a cast turns into a name, a function PostgreSQL had to qualify) would still reach the
//! source from the clone. The scan is lexical: it knows SQL's comments, strings (plain, `E''`,
//! dollar-quoted) and identifiers (plain, quoted), and looks inside strings again, since their
//! text is often SQL itself.

use crate::error::Error;
use crate::name::SchemaName;
use crate::sql_lex::{
    block_comment_end, dollar_tag_end, is_ident_char, is_ident_start, line_comment_end,
};

/// How deep strings inside strings are looked into (a body, a string in it, a string in that).
const MAX_DEPTH: usize = 4;

/// PostgreSQL's identifier limit, in bytes; longer names are truncated by the server.
const NAME_MAX: usize = 63;

/// What the definitions of a source say about the source's name: what the clone refuses,
/// and what it copies but reports.
pub(super) struct Findings<'a> {
    src: &'a SchemaName,
    refused: Vec<String>,
    warnings: Vec<String>,
}

impl<'a> Findings<'a> {
    pub(super) fn new(src: &'a SchemaName) -> Self {
        Self {
            src,
            refused: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Refuses a definition (as PostgreSQL prints it with the source alone on the path) that
    /// still names the source as a qualifier.
    pub(super) fn definition(&mut self, what: &str, sql: &str) {
        if qualifies(sql, self.src) {
            self.refused.push(format!(
                "{what} names {:?} in its definition",
                self.src.as_str()
            ));
        }
    }

    /// Looks at a function's body as written: a body in another language than SQL or
    /// PL/pgSQL is refused when it has `<source>.` anywhere; a string naming the source, or a
    /// `SET search_path` to it, is reported (the clone cannot know what the code does with
    /// it). Qualified names in SQL and PL/pgSQL bodies are found by
    /// [`definition`](Self::definition), which sees the body inside the definition.
    pub(super) fn body(&mut self, what: &str, language: &str, body: &str) {
        let src = self.src.as_str();
        match language {
            "sql" | "plpgsql" => {
                if in_strings(body, self.src) || sets_path_to(body, self.src) {
                    self.warnings.push(format!(
                        "{what} has the name {src:?} in its body (dynamic SQL, set_config or SET search_path), which its copy still uses as written"
                    ));
                }
            }
            "c" | "internal" => {}
            _ => {
                let lower = body.to_ascii_lowercase();
                let qualified = [format!("{src}."), format!("\"{src}\".")].iter().any(|q| {
                    lower
                        .match_indices(q.as_str())
                        .any(|(i, _)| !ident_before(&lower, i))
                });
                if qualified {
                    self.refused
                        .push(format!("{what} names {src:?} in its body ({language})"));
                } else if has_word(body, src) {
                    self.warnings.push(format!(
                        "{what} has the name {src:?} in its body ({language}), which its copy still uses as written"
                    ));
                }
            }
        }
    }

    /// Reports a function setting other than `search_path` whose value names the source.
    pub(super) fn setting(&mut self, what: &str, setting: &str) {
        if has_word(setting, self.src.as_str()) {
            self.warnings.push(format!(
                "{what} keeps its setting {setting:?}, which names {:?}",
                self.src.as_str()
            ));
        }
    }

    /// Refuses a function whose `search_path` setting cannot be read.
    pub(super) fn unreadable_path(&mut self, what: &str, setting: &str) {
        self.refused.push(format!(
            "{what} has a search_path setting the clone cannot read with certainty ({setting:?})"
        ));
    }

    /// Reports a trigger whose arguments name the source (a generic trigger function that
    /// builds names from them would still use it).
    pub(super) fn trigger(&mut self, what: &str, def: &str) {
        // `pg_get_triggerdef` ends with the call; its `WHEN` condition comes before.
        let call = def
            .rfind(" EXECUTE FUNCTION ")
            .or_else(|| def.rfind(" EXECUTE PROCEDURE "))
            .map_or(def, |i| &def[i..]);
        if in_strings(call, self.src) {
            self.warnings.push(format!(
                "{what} passes the name {:?} to its function, which its copy still does",
                self.src.as_str()
            ));
        }
    }

    /// The warnings, or [`Error::CloneNamesSource`] when anything was refused.
    pub(super) fn finish(self, dst: &SchemaName) -> Result<Vec<String>, Error> {
        if self.refused.is_empty() {
            Ok(self.warnings)
        } else {
            Err(Error::CloneNamesSource {
                source_schema: self.src.to_string(),
                schema: dst.to_string(),
                found: self.refused,
            })
        }
    }
}

/// Whether the byte before `i` continues an identifier (so a match at `i` is the tail of a
/// longer name).
fn ident_before(text: &str, i: usize) -> bool {
    text[..i]
        .bytes()
        .next_back()
        .is_some_and(|c| is_ident_char(c) || c == b'"')
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An identifier: unquoted ones in lower case (as PostgreSQL folds them), quoted ones as
    /// written.
    Ident(String),
    /// The contents of a string constant.
    Str(String),
    Dot,
    Other,
}

/// Splits `text` into SQL tokens, skipping white space and comments. Never fails: an
/// unterminated string or comment runs to the end.
fn tokens(text: &str) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            _ if c.is_ascii_whitespace() => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => i = line_comment_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => i = block_comment_end(b, i),
            b'\'' => {
                let (s, next) = quoted(text, i + 1, b'\'', false);
                out.push(Token::Str(s));
                i = next;
            }
            b'e' | b'E' if b.get(i + 1) == Some(&b'\'') => {
                let (s, next) = quoted(text, i + 2, b'\'', true);
                out.push(Token::Str(s));
                i = next;
            }
            b'"' => {
                let (s, next) = quoted(text, i + 1, b'"', false);
                out.push(Token::Ident(s));
                i = next;
            }
            b'$' => match dollar_tag_end(b, i) {
                Some(end) => {
                    let tag = &text[i..end];
                    let body_start = end;
                    match text[body_start..].find(tag) {
                        Some(k) => {
                            out.push(Token::Str(text[body_start..body_start + k].to_owned()));
                            i = body_start + k + tag.len();
                        }
                        None => {
                            out.push(Token::Str(text[body_start..].to_owned()));
                            i = b.len();
                        }
                    }
                }
                None => {
                    out.push(Token::Other);
                    i += 1;
                }
            },
            b'.' => {
                out.push(Token::Dot);
                i += 1;
            }
            _ if is_ident_start(c) => {
                let start = i;
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                out.push(Token::Ident(text[start..i].to_ascii_lowercase()));
            }
            _ if c.is_ascii_digit() => {
                // A number, with its fraction and exponent, so `1.5` is not a qualifier.
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                out.push(Token::Other);
            }
            _ => {
                out.push(Token::Other);
                i += 1;
            }
        }
    }
    out
}

/// The contents of a quoted token starting at `from` (after the opening quote), with doubled
/// quotes (and, in `E''` strings, backslash escapes) undone; and where the token ends.
fn quoted(text: &str, from: usize, quote: u8, backslash: bool) -> (String, usize) {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = from;
    while i < b.len() {
        let c = b[i];
        if backslash && c == b'\\' && i + 1 < b.len() {
            out.push(b[i + 1]);
            i += 2;
        } else if c == quote {
            if b.get(i + 1) == Some(&quote) {
                out.push(quote);
                i += 2;
            } else {
                return (String::from_utf8_lossy(&out).into_owned(), i + 1);
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), b.len())
}

/// Whether `text` (SQL) names `schema` as a qualifier (`schema.x`, `"schema" . x`, any case
/// when unquoted), directly or inside a string constant (whose text dynamic SQL or a cast to
/// `regclass` would read as a name).
pub(super) fn qualifies(text: &str, schema: &SchemaName) -> bool {
    qualifies_at(text, schema.as_str(), 0)
}

fn qualifies_at(text: &str, schema: &str, depth: usize) -> bool {
    let toks = tokens(text);
    toks.iter().enumerate().any(|(i, t)| match t {
        Token::Ident(name) => name == schema && toks.get(i + 1) == Some(&Token::Dot),
        Token::Str(s) => depth < MAX_DEPTH && qualifies_at(s, schema, depth + 1),
        Token::Dot | Token::Other => false,
    })
}

/// Whether a string constant in `text` (SQL) has `schema` as a word: the name handed to
/// `format('%I.t', ..)`, `set_config('search_path', ..)` or a trigger's arguments.
pub(super) fn in_strings(text: &str, schema: &SchemaName) -> bool {
    tokens(text).iter().any(|t| match t {
        Token::Str(s) => has_word(s, schema.as_str()),
        _ => false,
    })
}

/// Whether `text` (SQL) both sets a `search_path` and has `schema` as an identifier: a body
/// that runs `SET search_path TO <schema>` itself.
pub(super) fn sets_path_to(text: &str, schema: &SchemaName) -> bool {
    has_word(text, "search_path")
        && tokens(text)
            .iter()
            .any(|t| matches!(t, Token::Ident(n) if n == schema.as_str()))
}

/// Whether `word` appears in `text` as a whole identifier, ignoring ASCII case.
pub(super) fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .any(|w| w.eq_ignore_ascii_case(word))
}

/// The schema names of a stored `search_path` value (`"sample", public`), read as PostgreSQL
/// reads them: comma-separated, quoted names as written, unquoted ones folded to lower case.
/// `None` when the value is not a list the clone can read with certainty (a malformed entry,
/// a name longer than PostgreSQL keeps).
pub(super) fn parse_path(value: &str) -> Option<Vec<String>> {
    let b = value.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i == b.len() {
        return Some(names);
    }
    loop {
        let name = if b[i] == b'"' {
            let mut name = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => return None,
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => {
                        name.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        name.push(*c);
                        i += 1;
                    }
                }
            }
            String::from_utf8(name).ok()?
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' && b[i] != b'"' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i == start {
                return None;
            }
            value[start..i].to_ascii_lowercase()
        };
        if name.len() > NAME_MAX {
            return None;
        }
        names.push(name);
        skip_ws(&mut i);
        match b.get(i) {
            None => return Some(names),
            Some(b',') => {
                i += 1;
                skip_ws(&mut i);
                if i == b.len() {
                    return None;
                }
            }
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static SAMPLE: LazyLock<SchemaName> =
        LazyLock::new(|| SchemaName::new("sample").unwrap_or_else(|e| panic!("{e}")));

    #[test]
    fn qualifiers_are_found_in_any_spelling() {
        for text in [
            "insert into sample.audit values (1)",
            "insert into \"sample\".audit values (1)",
            "insert into Sample . audit values (1)",
            "insert into SAMPLE.\"Audit\" values (1)",
            "execute 'insert into sample.audit values (1)'",
            "execute E'insert into \\'x\\', sample.audit'",
            "execute $q$ insert into sample.audit $q$",
            "perform 'sample.audit'::regclass",
            "v sample.audit.id%TYPE;",
            "execute 'execute ''select 1 from sample.t'''",
        ] {
            assert!(qualifies(text, &SAMPLE), "{text}");
        }
    }

    #[test]
    fn other_names_comments_and_words_are_not_qualifiers() {
        for text in [
            "insert into audit values (1)",
            "insert into mysample.audit values (1)",
            "insert into sample_x.audit values (1)",
            "select sample from t",
            "select 1.5, sample",
            "-- copied from sample.audit\nselect 1",
            "/* sample.audit /* nested */ sample.x */ select 1",
            "select \"sample.audit\" from t",
            "select $1.sample",
            "SET search_path TO 'sample', 'public'",
        ] {
            assert!(!qualifies(text, &SAMPLE), "{text}");
        }
    }

    #[test]
    fn names_in_strings_and_path_changes_are_found() {
        assert!(in_strings("execute format('%I.t', 'sample')", &SAMPLE));
        assert!(in_strings(
            "perform set_config('search_path', 'Sample, public', true)",
            &SAMPLE
        ));
        assert!(!in_strings(
            "select sample from t where x = 'samples'",
            &SAMPLE
        ));
        assert!(sets_path_to(
            "set local search_path to sample, public",
            &SAMPLE
        ));
        assert!(!sets_path_to("select sample from t", &SAMPLE));
        assert!(!sets_path_to("set search_path to other", &SAMPLE));
    }

    #[test]
    fn paths_are_read_as_postgresql_reads_them() {
        let names = |v: &str| parse_path(v).map(|n| n.join("|"));
        assert_eq!(
            names(r#""sample", "public""#).as_deref(),
            Some("sample|public")
        );
        assert_eq!(
            names("  Sample ,public  ").as_deref(),
            Some("sample|public")
        );
        assert_eq!(names(r#""$user", public"#).as_deref(), Some("$user|public"));
        assert_eq!(names(r#""a""b", "x,y""#).as_deref(), Some("a\"b|x,y"));
        assert_eq!(names(r#""""#).as_deref(), Some(""));
        assert_eq!(names("").as_deref(), Some(""));
        assert_eq!(parse_path("sample,"), None);
        assert_eq!(parse_path("sample,,public"), None);
        assert_eq!(parse_path(r#""sample"#), None);
        assert_eq!(parse_path("sample public"), None);
        assert_eq!(parse_path(&"x".repeat(64)), None);
    }
}
