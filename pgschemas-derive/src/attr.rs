//! Parsing of the `#[tenant(...)]` / `#[domain(...)]` attributes, and of the few `#[diesel(...)]`
//! keys the derives read (`table_name` on the struct, `column_name` on fields).

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Field, Fields, Ident, LitStr, Path};

/// What a key's value looks like.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A Diesel table module path: `table = crate::schema::tenants`.
    Table,
    /// A field of the struct: `schema_name = slug`.
    Field,
    /// The library path, as a string: `crate = "my::reexport"`.
    Crate,
}

/// One accepted key of a namespaced attribute.
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// The value shown in `help:` messages.
    pub(crate) example: &'static str,
}

/// A parsed `key = value`, with the key's span kept for error messages.
pub(crate) struct Entry {
    pub(crate) key: Ident,
    pub(crate) value: Value,
}

pub(crate) enum Value {
    Path(Path),
    Field(Ident),
}

/// Every `key = value` of the struct's `#[<attr>(...)]` attributes.
pub(crate) struct Options {
    entries: Vec<Entry>,
}

impl Options {
    /// Parses every `#[<attr>(...)]` on the struct against the accepted `keys`.
    pub(crate) fn parse(attrs: &[Attribute], attr: &str, keys: &[Key]) -> syn::Result<Self> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut errors: Option<syn::Error> = None;
        for attribute in attrs.iter().filter(|a| a.path().is_ident(attr)) {
            let result = attribute.parse_nested_meta(|meta| {
                let Some(key) = meta.path.get_ident().cloned() else {
                    return Err(syn::Error::new_spanned(&meta.path, unknown(keys)));
                };
                let name = key.unraw().to_string();
                let Some(spec) = keys.iter().find(|k| k.name == name) else {
                    return Err(syn::Error::new(key.span(), unknown(keys)));
                };
                if entries.iter().any(|e| e.key.unraw() == name) {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("duplicate `{name}` attribute"),
                    ));
                }
                let help = || {
                    format!(
                        "expected `{name} = {ex}`\nhelp: the correct format looks like #[{attr}({name} = {ex})]",
                        ex = spec.example
                    )
                };
                let input = meta
                    .value()
                    .map_err(|e| syn::Error::new(e.span(), help()))?;
                let value = match spec.kind {
                    Kind::Table => Value::Path(
                        input
                            .parse::<Path>()
                            .map_err(|e| syn::Error::new(e.span(), help()))?,
                    ),
                    // A field name, bare or (as serde writes them) quoted.
                    Kind::Field if input.peek(LitStr) => {
                        let lit: LitStr = input.parse()?;
                        Value::Field(lit.parse::<Ident>().map_err(|_| {
                            syn::Error::new(lit.span(), help())
                        })?)
                    }
                    Kind::Field => Value::Field(
                        input
                            .parse::<Ident>()
                            .map_err(|e| syn::Error::new(e.span(), help()))?,
                    ),
                    Kind::Crate => {
                        if input.peek(LitStr) {
                            let lit: LitStr = input.parse()?;
                            Value::Path(lit.parse::<Path>().map_err(|_| {
                                syn::Error::new(
                                    lit.span(),
                                    format!("`{}` is not a path\nhelp: the correct format looks like #[{attr}(crate = \"my_crate::pgschemas\")]", lit.value()),
                                )
                            })?)
                        } else {
                            Value::Path(input.parse::<Path>().map_err(|e| {
                                syn::Error::new(e.span(), help())
                            })?)
                        }
                    }
                };
                entries.push(Entry { key, value });
                Ok(())
            });
            if let Err(e) = result {
                match &mut errors {
                    Some(all) => all.combine(e),
                    None => errors = Some(e),
                }
            }
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(Self { entries }),
        }
    }

    fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key.unraw() == name)
    }

    /// The path given for `name` (a `Kind::Table` or `Kind::Crate` key).
    pub(crate) fn path(&self, name: &str) -> Option<&Path> {
        match self.get(name).map(|e| &e.value) {
            Some(Value::Path(p)) => Some(p),
            _ => None,
        }
    }

    /// The field named for `name` (a `Kind::Field` key), if given.
    pub(crate) fn field(&self, name: &str) -> Option<&Ident> {
        match self.get(name).map(|e| &e.value) {
            Some(Value::Field(f)) => Some(f),
            _ => None,
        }
    }
}

fn unknown(keys: &[Key]) -> String {
    let list = keys
        .iter()
        .map(|k| format!("`{}`", k.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!("unknown attribute, expected one of {list}")
}

/// The value of `key` in the item's `#[diesel(...)]` attributes, e.g. `table_name` or
/// `column_name`. Read tolerantly: anything Diesel accepts and we do not understand is
/// ignored (Diesel reports its own errors).
pub(crate) fn diesel_key(attrs: &[Attribute], key: &str) -> Option<TokenStream> {
    for attr in attrs.iter().filter(|a| a.path().is_ident("diesel")) {
        let syn::Meta::List(list) = &attr.meta else {
            continue;
        };
        let mut segment: Vec<TokenTree> = Vec::new();
        let mut segments: Vec<Vec<TokenTree>> = Vec::new();
        for tt in list.tokens.clone() {
            match &tt {
                TokenTree::Punct(p) if p.as_char() == ',' => {
                    segments.push(std::mem::take(&mut segment));
                }
                _ => segment.push(tt),
            }
        }
        segments.push(segment);
        for seg in segments {
            if let [TokenTree::Ident(k), TokenTree::Punct(eq), rest @ ..] = seg.as_slice()
                && k == key
                && eq.as_char() == '='
                && !rest.is_empty()
            {
                return Some(rest.iter().cloned().collect());
            }
        }
    }
    None
}

/// The struct's named fields, or an error for enums, unions, tuple and unit structs.
pub(crate) fn named_fields<'a>(
    input: &'a syn::DeriveInput,
    derive: &str,
) -> syn::Result<&'a syn::FieldsNamed> {
    let message = format!("`#[derive({derive})]` can only be used on structs with named fields");
    match &input.data {
        syn::Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Ok(named),
            Fields::Unnamed(f) => Err(syn::Error::new(f.span(), message)),
            Fields::Unit => Err(syn::Error::new(input.ident.span(), message)),
        },
        syn::Data::Enum(e) => Err(syn::Error::new(e.enum_token.span, message)),
        syn::Data::Union(u) => Err(syn::Error::new(u.union_token.span, message)),
    }
}

/// A struct field the derive reads, with the Diesel column it maps to.
pub(crate) struct ModelField<'a> {
    pub(crate) field: &'a Field,
    pub(crate) ident: &'a Ident,
    /// `#[diesel(column_name = x)]` if present, else the field's name.
    pub(crate) column: Ident,
}

/// Finds the field for `key`: the one named in the attribute, else the one called `default`.
///
/// Errors point at the attribute's value (a field named there does not exist) or, for a
/// default name, at the struct's name with a hint naming the attribute key.
pub(crate) fn find_field<'a>(
    fields: &'a syn::FieldsNamed,
    options: &Options,
    key: &str,
    default: &str,
    attr: &str,
    struct_span: Span,
) -> syn::Result<ModelField<'a>> {
    let (wanted, span, named) = match options.field(key) {
        Some(ident) => (ident.unraw().to_string(), ident.span(), true),
        None => (default.to_owned(), struct_span, false),
    };
    let found = fields.named.iter().find_map(|f| {
        let ident = f.ident.as_ref()?;
        (ident.unraw() == wanted).then_some((f, ident))
    });
    match found {
        Some((field, ident)) => Ok(ModelField {
            field,
            ident,
            column: column_of(field, ident),
        }),
        None if named => Err(syn::Error::new(
            span,
            format!("no field named `{wanted}` on this struct"),
        )),
        None => Err(syn::Error::new(
            span,
            format!(
                "no field named `{wanted}` on this struct\nhelp: name the field that holds it with #[{attr}({key} = field_name)]"
            ),
        )),
    }
}

/// The optional field for `key` (no default name).
pub(crate) fn find_optional_field<'a>(
    fields: &'a syn::FieldsNamed,
    options: &Options,
    key: &str,
) -> syn::Result<Option<ModelField<'a>>> {
    let Some(ident) = options.field(key) else {
        return Ok(None);
    };
    let wanted = ident.unraw().to_string();
    fields
        .named
        .iter()
        .find_map(|f| {
            let id = f.ident.as_ref()?;
            (id.unraw() == wanted).then_some((f, id))
        })
        .map(|(field, id)| {
            Some(ModelField {
                field,
                ident: id,
                column: column_of(field, id),
            })
        })
        .ok_or_else(|| {
            syn::Error::new(
                ident.span(),
                format!("no field named `{wanted}` on this struct"),
            )
        })
}

fn column_of(field: &Field, ident: &Ident) -> Ident {
    diesel_key(&field.attrs, "column_name")
        .and_then(|ts| syn::parse2::<Ident>(ts).ok())
        .unwrap_or_else(|| ident.clone())
}

/// The Diesel table module: `#[<attr>(table = ...)]`, else `#[diesel(table_name = ...)]`.
pub(crate) fn table_path(
    input: &syn::DeriveInput,
    options: &Options,
    attr: &str,
) -> syn::Result<Path> {
    if let Some(path) = options.path("table") {
        return Ok(path.clone());
    }
    if let Some(path) = diesel_key(&input.attrs, "table_name").and_then(|ts| syn::parse2(ts).ok()) {
        return Ok(path);
    }
    Err(syn::Error::new(
        input.ident.span(),
        format!(
            "missing `table`: name the Diesel table this model reads\nhelp: add #[{attr}(table = crate::schema::{}s)] or #[diesel(table_name = ...)]",
            snake(&input.ident.to_string())
        ),
    ))
}

/// The library's path: `crate = "..."`, else `::pgschemas_diesel`.
pub(crate) fn crate_path(options: &Options) -> TokenStream {
    match options.path("crate") {
        Some(p) => quote::quote!(#p),
        None => quote::quote!(::pgschemas_diesel),
    }
}

/// The last segment of the table path, the table's name unless `table!` renames it.
pub(crate) fn table_fallback_name(path: &Path) -> String {
    path.segments
        .last()
        .map(|s| s.ident.unraw().to_string())
        .unwrap_or_default()
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Joins independent errors into one, so each mistake is reported once, together.
pub(crate) fn combine<const N: usize>(errors: [Option<syn::Error>; N], span: Span) -> syn::Error {
    let mut errors = errors.into_iter().flatten();
    let mut first = errors
        .next()
        .unwrap_or_else(|| syn::Error::new(span, "invalid attribute"));
    for e in errors {
        first.combine(e);
    }
    first
}

/// The where clause of a model impl. For a generic struct, adds what Diesel needs to load
/// `Self` in generic code: `Self: 'static` (Diesel loads owned rows only, so lifetime
/// parameters end up `'static`) and `Self: Queryable<SqlType of its selection, Pg>`.
pub(crate) fn model_where_clause(input: &syn::DeriveInput, diesel: &TokenStream) -> TokenStream {
    let (_, ty_g, where_c) = input.generics.split_for_impl();
    if input.generics.params.is_empty() {
        return quote::quote!(#where_c);
    }
    let name = &input.ident;
    let this = quote::quote!(#name #ty_g);
    let bound = quote::quote! {
        #this: 'static + #diesel::deserialize::Queryable<
            <<#this as #diesel::Selectable<#diesel::pg::Pg>>::SelectExpression
                as #diesel::expression::Expression>::SqlType,
            #diesel::pg::Pg,
        >
    };
    match where_c {
        Some(w) => {
            let predicates = &w.predicates;
            if predicates.empty_or_trailing() {
                quote::quote!(where #predicates #bound)
            } else {
                quote::quote!(where #predicates, #bound)
            }
        }
        None => quote::quote!(where #bound),
    }
}

/// `tokens` with every span set to `span`: code that depends on a field's type is reported
/// at the field, and the same mistake found in several places is reported once.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}
