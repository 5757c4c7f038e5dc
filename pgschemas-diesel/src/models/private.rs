//! Helpers for the code `#[derive(Tenant)]` and `#[derive(Domain)]` generate. Exposed as
//! `pgschemas_diesel::__private`; not a public API.

use std::borrow::Cow;
use std::fmt::Display;

use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;

use super::TableName;
use crate::name::SchemaName;

/// A field holding text: the schema name of a tenant, the host of a domain; and how text is
/// bound when compared with its column.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not text",
    label = "this field must hold text (`String`, `&str`, `Cow<str>`, `Box<str>` or `SchemaName`)"
)]
pub trait AsStr {
    /// The value bound to the column (`&str`).
    type Bind<'a>;

    /// The text.
    fn as_str(&self) -> &str;

    /// `value` as bound to the column.
    fn bind(value: &str) -> Self::Bind<'_>;
}

macro_rules! as_str {
    ($($ty:ty),*) => {$(
        impl AsStr for $ty {
            type Bind<'a> = &'a str;

            fn as_str(&self) -> &str {
                self
            }

            fn bind(value: &str) -> &str {
                value
            }
        }
    )*};
}

as_str!(str, String, Box<str>, Cow<'_, str>);

impl AsStr for SchemaName {
    type Bind<'a> = &'a str;

    fn as_str(&self) -> &str {
        SchemaName::as_str(self)
    }

    fn bind(value: &str) -> &str {
        value
    }
}

impl<T: AsStr + ?Sized> AsStr for &T {
    type Bind<'a> = &'a str;

    fn as_str(&self) -> &str {
        (**self).as_str()
    }

    fn bind(value: &str) -> &str {
        value
    }
}

/// A domain's folder field: `Option<String>` (`NULL` = no folder) or `String` (`''` = no
/// folder), and how a folder is bound to its column.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold a domain's folder",
    label = "the folder field must be `Option<String>` (nullable column) or `String` (empty for none)"
)]
pub trait AsFolder {
    /// The value bound to the folder column.
    type Bind<'a>;

    /// The folder, `None` for none (or empty).
    fn folder(&self) -> Option<&str>;

    /// `folder` as the column stores it.
    fn bind(folder: Option<&str>) -> Self::Bind<'_>;
}

impl AsFolder for Option<String> {
    type Bind<'a> = Option<&'a str>;

    fn folder(&self) -> Option<&str> {
        self.as_deref().filter(|f| !f.is_empty())
    }

    fn bind(folder: Option<&str>) -> Option<&str> {
        folder
    }
}

impl AsFolder for Option<Cow<'_, str>> {
    type Bind<'a> = Option<&'a str>;

    fn folder(&self) -> Option<&str> {
        self.as_deref().filter(|f| !f.is_empty())
    }

    fn bind(folder: Option<&str>) -> Option<&str> {
        folder
    }
}

impl AsFolder for String {
    type Bind<'a> = &'a str;

    fn folder(&self) -> Option<&str> {
        Some(self.as_str()).filter(|f| !f.is_empty())
    }

    fn bind(folder: Option<&str>) -> &str {
        folder.unwrap_or("")
    }
}

impl AsFolder for Cow<'_, str> {
    type Bind<'a> = &'a str;

    fn folder(&self) -> Option<&str> {
        Some(&**self).filter(|f| !f.is_empty())
    }

    fn bind(folder: Option<&str>) -> &str {
        folder.unwrap_or("")
    }
}

/// A key as text.
pub fn id_string<T: Display + ?Sized>(id: &T) -> String {
    id.to_string()
}

/// A `bool` field (`is_primary`, `redirect_to_primary`), and how a flag is bound.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `bool`",
    label = "`is_primary` and `redirect_to_primary` must be `bool` fields"
)]
pub trait Flag {
    /// The value bound to the column (`bool`).
    type Bind;

    /// The flag.
    fn get(&self) -> bool;

    /// `value` as bound to the column.
    fn bind(value: bool) -> Self::Bind;
}

impl Flag for bool {
    type Bind = bool;

    fn get(&self) -> bool {
        *self
    }

    fn bind(value: bool) -> bool {
        value
    }
}

/// The SQL name of a Diesel table, read from what the table renders to; `fallback` (the
/// `table!` module's name) if that cannot be read.
pub fn table_name<T: QueryFragment<Pg>>(table: &T, fallback: &'static str) -> TableName {
    let sql = diesel::debug_query::<Pg, _>(table).to_string();
    parse_qualified(&sql).unwrap_or_else(|| TableName {
        schema: None,
        name: fallback.to_owned(),
    })
}

/// Parses `"name"` or `"schema"."name"` (Diesel's rendering, quotes doubled inside) at the
/// start of `sql`.
fn parse_qualified(sql: &str) -> Option<TableName> {
    let mut parts = Vec::new();
    let mut chars = sql.chars().peekable();
    loop {
        if chars.next() != Some('"') {
            return None;
        }
        let mut part = String::new();
        loop {
            match chars.next()? {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    part.push('"');
                }
                '"' => break,
                c => part.push(c),
            }
        }
        parts.push(part);
        if chars.peek() == Some(&'.') {
            chars.next();
        } else {
            break;
        }
    }
    let name = parts.pop()?;
    match parts.len() {
        0 => Some(TableName { schema: None, name }),
        1 => Some(TableName {
            schema: parts.pop(),
            name,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_diesel_table_renderings() {
        let t = |schema: Option<&str>, name: &str| TableName {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        };
        assert_eq!(
            parse_qualified(r#""tenants" -- binds: []"#),
            Some(t(None, "tenants"))
        );
        assert_eq!(
            parse_qualified(r#""public"."tenants" -- binds: []"#),
            Some(t(Some("public"), "tenants"))
        );
        assert_eq!(
            parse_qualified(r#""a""b"."c.d""#),
            Some(t(Some("a\"b"), "c.d"))
        );
        assert_eq!(parse_qualified("tenants"), None);
        assert_eq!(parse_qualified(r#""unterminated"#), None);
        assert_eq!(parse_qualified(r#""a"."b"."c""#), None);
    }

    #[test]
    fn folders() {
        assert_eq!(AsFolder::folder(&Some(String::from("x"))), Some("x"));
        assert_eq!(AsFolder::folder(&Some(String::new())), None);
        assert_eq!(AsFolder::folder(&None::<String>), None);
        assert_eq!(AsFolder::folder(&String::new()), None);
        assert_eq!(<String as AsFolder>::bind(None), "");
        assert_eq!(<Option<String> as AsFolder>::bind(None), None);
    }
}
