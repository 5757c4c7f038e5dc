//! Validated schema names.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// PostgreSQL's identifier limit (`NAMEDATALEN - 1`).
pub const MAX_SCHEMA_NAME_LEN: usize = 63;

/// A validated PostgreSQL schema name.
///
/// Accepted names match `^[a-z_][a-z0-9_]{0,62}$`, do not start with `pg_` (in any case) and are
/// not `information_schema`. Upper case is refused on purpose: PostgreSQL folds unquoted
/// identifiers to lower case, so `Tenant1` and `"Tenant1"` would name different schemas.
/// Refusing them keeps quoted and unquoted spellings in agreement.
///
/// A `SchemaName` is the only way a name reaches SQL in this crate; it is always quoted there.
///
/// ```
/// use pgschemas_diesel::SchemaName;
///
/// let name = SchemaName::new("tenant_1")?;
/// assert_eq!(name.as_str(), "tenant_1");
/// assert_eq!(name.quoted(), "\"tenant_1\"");
///
/// assert!(SchemaName::new("Tenant1").is_err());
/// assert!(SchemaName::new("pg_catalog").is_err());
/// assert!(SchemaName::new("a; drop table x").is_err());
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaName(Box<str>);

impl SchemaName {
    /// Validates `name` and wraps it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`] with the reason when the name is not acceptable.
    ///
    /// ```
    /// use pgschemas_diesel::SchemaName;
    ///
    /// assert!(SchemaName::new("customer1").is_ok());
    /// assert!(SchemaName::new("1customer").is_err());
    /// ```
    pub fn new(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        match check(name) {
            Ok(()) => Ok(Self(name.into())),
            Err(reason) => Err(Error::InvalidSchemaName {
                name: name.to_owned(),
                reason,
            }),
        }
    }

    /// Whether `name` would be accepted by [`SchemaName::new`].
    ///
    /// ```
    /// assert!(pgschemas_diesel::SchemaName::is_valid("www"));
    /// assert!(!pgschemas_diesel::SchemaName::is_valid("WWW"));
    /// ```
    pub fn is_valid(name: &str) -> bool {
        check(name).is_ok()
    }

    /// The name as a string slice.
    ///
    /// ```
    /// let name = pgschemas_diesel::SchemaName::new("blog")?;
    /// assert_eq!(name.as_str(), "blog");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier: `"name"`.
    ///
    /// ```
    /// let name = pgschemas_diesel::SchemaName::new("blog")?;
    /// assert_eq!(name.quoted(), r#""blog""#);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn quoted(&self) -> String {
        quote_ident(&self.0)
    }

    /// Whether two names are equal ignoring ASCII case (how clashes are judged).
    pub(crate) fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

/// Why a schema name was refused.
///
/// Carried by [`Error::InvalidSchemaName`]; its `Display` is a short reason in lower case.
///
/// ```
/// use pgschemas_diesel::{Error, InvalidReason, SchemaName};
///
/// match SchemaName::new("Tenant1") {
///     Err(Error::InvalidSchemaName { reason: InvalidReason::UpperCase, .. }) => {}
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The name is empty.
    Empty,
    /// Longer than PostgreSQL's 63-byte identifier limit (it would be silently truncated).
    TooLong,
    /// Contains upper-case letters: refused so quoted and unquoted spellings always agree.
    UpperCase,
    /// Starts with a digit.
    LeadingDigit,
    /// Contains a character outside `[a-z0-9_]`.
    BadCharacter(char),
    /// Starts with `pg_`, which PostgreSQL reserves for system schemas.
    Reserved,
    /// `information_schema`, the SQL-standard catalog schema.
    InformationSchema,
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::TooLong => f.write_str(
                "it is longer than 63 bytes, and PostgreSQL would silently truncate it",
            ),
            Self::UpperCase => f.write_str(
                "it has upper-case letters; schema names are lower case so that quoted and unquoted spellings agree",
            ),
            Self::LeadingDigit => f.write_str("it starts with a digit"),
            Self::BadCharacter(c) => {
                write!(f, "it contains {c:?}; only a-z, 0-9 and _ are allowed")
            }
            Self::Reserved => f.write_str("the pg_ prefix is reserved for PostgreSQL's system schemas"),
            Self::InformationSchema => f.write_str("information_schema is PostgreSQL's catalog schema"),
        }
    }
}

/// Quotes an identifier for SQL, doubling embedded quotes.
pub(crate) fn quote_ident(s: &str) -> String {
    quote(s, '"')
}

/// Quotes a string as an SQL literal, doubling embedded single quotes.
pub(crate) fn quote_literal(s: &str) -> String {
    quote(s, '\'')
}

/// `s` as an SQL text expression that reads the same whatever the session's settings, in ASCII
/// only: [`dollar_quote`]d when `s` is ASCII, else its UTF-8 bytes in hex, decoded by the
/// server (`convert_from(decode('..', 'hex'), 'UTF8')`). A message holding non-ASCII bytes is
/// converted from the session's `client_encoding` before any of it is parsed, and one the
/// previous user left set (`SET client_encoding = 'EUC_JP'`) would reject the whole message,
/// the statements that reset the setting included.
pub(crate) fn text_literal(s: &str) -> String {
    if s.is_ascii() {
        return dollar_quote(s);
    }
    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    format!("pg_catalog.convert_from(pg_catalog.decode('{hex}', 'hex'), 'UTF8')")
}

/// Dollar-quotes a string as an SQL literal, with a tag whose delimiter first occurs in the
/// quoted text where it closes it (not inside `s`, nor across its end: `s` may end with
/// `$pgschemas`): no setting (`standard_conforming_strings` included) changes how it reads.
pub(crate) fn dollar_quote(s: &str) -> String {
    let mut tag = String::from("pgschemas");
    loop {
        let delimiter = format!("${tag}$");
        let body = format!("{s}{delimiter}");
        if body.find(&delimiter) == Some(s.len()) {
            return format!("{delimiter}{body}");
        }
        tag.push('_');
    }
}

/// `s` between two `q`s, each `q` inside doubled.
fn quote(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

fn check(name: &str) -> Result<(), InvalidReason> {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(InvalidReason::Empty);
    };
    // Character checks come first so that a long name with a bad character is reported for
    // the character, which is the more useful message.
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' | '_' => {}
            'A'..='Z' => return Err(InvalidReason::UpperCase),
            other => return Err(InvalidReason::BadCharacter(other)),
        }
    }
    if first.is_ascii_digit() {
        return Err(InvalidReason::LeadingDigit);
    }
    if bytes.len() > MAX_SCHEMA_NAME_LEN {
        return Err(InvalidReason::TooLong);
    }
    if bytes.len() >= 3 && bytes[..3].eq_ignore_ascii_case(b"pg_") {
        return Err(InvalidReason::Reserved);
    }
    if name == "information_schema" {
        return Err(InvalidReason::InformationSchema);
    }
    Ok(())
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for SchemaName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SchemaName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for SchemaName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for SchemaName {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for SchemaName {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl PartialEq<str> for SchemaName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for SchemaName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

#[cfg(test)]
mod tests {

    /// Where a dollar-quoted literal ends, as the server's lexer reads it: at the first
    /// occurrence of the opening delimiter after it.
    fn dollar_unquote(quoted: &str) -> (&str, &str) {
        let open_end = quoted[1..].find('$').map(|i| i + 2).expect("a delimiter");
        let delimiter = &quoted[..open_end];
        let rest = &quoted[open_end..];
        let close = rest.find(delimiter).expect("closed");
        (&rest[..close], &rest[close + delimiter.len()..])
    }

    #[test]
    fn a_text_literal_is_ascii_whatever_the_string() {
        assert_eq!(text_literal("app"), "$pgschemas$app$pgschemas$");
        let jp = text_literal("db_日本");
        assert!(jp.is_ascii(), "{jp}");
        assert_eq!(
            jp,
            "pg_catalog.convert_from(pg_catalog.decode('64625fe697a5e69cac', 'hex'), 'UTF8')"
        );
    }

    #[test]
    fn a_dollar_quoted_string_reads_back_whole_whatever_it_ends_or_begins_with() {
        for s in [
            "",
            "x",
            "$",
            "$$",
            "x$",
            "x$pgschemas",
            "x$pgschemas$",
            "$pgschemas$",
            "pgschemas$",
            "x$pgschemas_",
            "a$pgschemas$b$pgschemas_",
            "a$pgschemas$b$pgschemas_$",
            "$pgschemas_$x$pgschemas",
            "x$pgschemas$pgschemas_",
        ] {
            let quoted = dollar_quote(s);
            assert_eq!(
                dollar_unquote(&quoted),
                (s, ""),
                "{s:?} quoted as {quoted:?}"
            );
        }
    }
    use super::*;

    // The valid/invalid tables of django-pgschemas' `test_utils.py`, adjusted where this crate
    // is stricter on purpose (upper case is refused here).
    #[test]
    fn django_pgschemas_valid_names() {
        for name in [
            "public",
            "a",
            "_",
            "_a",
            "a_b",
            "a1",
            "www",
            "blog",
            "tenant_1",
            "sample",
            &"a".repeat(63),
            &format!("_{}", "9".repeat(62)),
        ] {
            assert!(SchemaName::is_valid(name), "{name:?} should be valid");
        }
    }

    #[test]
    fn django_pgschemas_invalid_names() {
        let cases: &[(&str, InvalidReason)] = &[
            ("", InvalidReason::Empty),
            ("1a", InvalidReason::LeadingDigit),
            ("9", InvalidReason::LeadingDigit),
            ("a-b", InvalidReason::BadCharacter('-')),
            ("a b", InvalidReason::BadCharacter(' ')),
            ("a.b", InvalidReason::BadCharacter('.')),
            ("pg_a", InvalidReason::Reserved),
            ("pg_", InvalidReason::Reserved),
            ("PG_a", InvalidReason::UpperCase),
            ("Pg_a", InvalidReason::UpperCase),
            ("information_schema", InvalidReason::InformationSchema),
            ("Public", InvalidReason::UpperCase),
            ("TENANT", InvalidReason::UpperCase),
        ];
        for (name, reason) in cases {
            match SchemaName::new(name) {
                Err(Error::InvalidSchemaName {
                    reason: got,
                    name: n,
                }) => {
                    assert_eq!(got, *reason, "{name:?}");
                    assert_eq!(n, *name);
                }
                other => panic!("{name:?} should be invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn length_limit_is_63_bytes() {
        assert!(SchemaName::is_valid(&"a".repeat(63)));
        assert_eq!(
            check(&"a".repeat(64)),
            Err(InvalidReason::TooLong),
            "64 bytes would be truncated by PostgreSQL"
        );
        assert_eq!(check(&"a".repeat(1000)), Err(InvalidReason::TooLong));
    }

    #[test]
    fn hostile_and_unusual_input_is_refused() {
        for name in [
            "a\"b",
            "a'b",
            "a;drop schema public",
            "t1; DROP TABLE x; --",
            " a",
            "a ",
            "a\n",
            "a\t",
            "a\0",
            "é",
            "tenänt",
            "ｔｅｎａｎｔ",
            "a$b",
            "a/b",
            "\"a\"",
            "a\\b",
            "pg_temp",
            "pg_toast",
            "pg_catalog",
        ] {
            assert!(!SchemaName::is_valid(name), "{name:?} should be invalid");
        }
        // A multi-byte character is reported as such, not as "too long".
        assert_eq!(check("ééééé"), Err(InvalidReason::BadCharacter('é')));
    }

    #[test]
    fn messages_name_the_input_and_the_reason() {
        let msg = SchemaName::new("Tenant1").unwrap_err().to_string();
        assert!(
            msg.contains("\"Tenant1\"") && msg.contains("upper-case"),
            "{msg}"
        );
        let msg = SchemaName::new("a-b").unwrap_err().to_string();
        assert!(msg.contains("'-'"), "{msg}");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("a'b"), "'a''b'");
    }

    proptest::proptest! {
        #[test]
        fn validation_never_panics_and_accepts_only_safe_identifiers(s in ".*") {
            if let Ok(name) = SchemaName::new(&s) {
                let n = name.as_str();
                proptest::prop_assert!(!n.is_empty() && n.len() <= 63);
                proptest::prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
                proptest::prop_assert!(!n.as_bytes()[0].is_ascii_digit());
                proptest::prop_assert!(!n.starts_with("pg_"));
                proptest::prop_assert_eq!(name.quoted(), format!("\"{n}\""));
            }
        }

        #[test]
        fn identifier_shaped_strings_are_judged_exactly(s in "[a-zA-Z0-9_]{0,70}") {
            let expected = !s.is_empty()
                && s.len() <= 63
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !s.as_bytes()[0].is_ascii_digit()
                && !s.to_ascii_lowercase().starts_with("pg_")
                && s != "information_schema";
            proptest::prop_assert_eq!(SchemaName::is_valid(&s), expected);
        }
    }
}
