//! `#[pgschemas_diesel::test]`: a test function given a fresh database, prepared.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprArray, ExprLit, FnArg, ItemFn, Lit, LitStr, Meta, Pat, Token, Type};

/// Where migrations come from: a directory (embedded at compile time) or a constant.
enum Migrations {
    Dir(LitStr),
    Value(Expr),
}

impl Migrations {
    fn parse(value: Expr) -> Self {
        match value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(dir), ..
            }) => Self::Dir(dir),
            other => Self::Value(other),
        }
    }

    /// An expression of the migrations, `Some(..)`.
    fn tokens(&self, krate: &TokenStream) -> TokenStream {
        match self {
            Self::Dir(dir) => quote! {
                ::core::option::Option::Some({
                    const MIGRATIONS: #krate::__private::EmbeddedMigrations =
                        #krate::__private::embed_migrations!(#dir);
                    MIGRATIONS
                })
            },
            Self::Value(expr) => quote! { ::core::option::Option::Some(#expr) },
        }
    }
}

/// The attribute's arguments.
#[derive(Default)]
struct Args {
    migrations: Option<Migrations>,
    tenant_migrations: Option<Migrations>,
    tenants: Option<Vec<LitStr>>,
    config: Option<Expr>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        for meta in Punctuated::<Meta, Token![,]>::parse_terminated(input)? {
            let Meta::NameValue(nv) = meta else {
                return Err(syn::Error::new_spanned(
                    meta,
                    "expected `key = value`: `migrations`, `tenant_migrations`, `tenants` or `config`",
                ));
            };
            let key = nv
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "migrations" if args.migrations.is_none() => {
                    args.migrations = Some(Migrations::parse(nv.value));
                }
                "tenant_migrations" if args.tenant_migrations.is_none() => {
                    args.tenant_migrations = Some(Migrations::parse(nv.value));
                }
                "tenants" if args.tenants.is_none() => {
                    let Expr::Array(ExprArray { elems, .. }) = nv.value else {
                        return Err(syn::Error::new_spanned(
                            nv.value,
                            "`tenants` takes an array of schema names: `tenants = [\"acme\", \"globex\"]`",
                        ));
                    };
                    let tenants = args.tenants.get_or_insert_with(Vec::new);
                    for e in elems {
                        match e {
                            Expr::Lit(ExprLit {
                                lit: Lit::Str(s), ..
                            }) => tenants.push(s),
                            other => {
                                return Err(syn::Error::new_spanned(
                                    other,
                                    "a tenant is a string literal, its schema name",
                                ));
                            }
                        }
                    }
                }
                "config" if args.config.is_none() => args.config = Some(nv.value),
                "migrations" | "tenant_migrations" | "tenants" | "config" => {
                    return Err(syn::Error::new_spanned(
                        nv.path,
                        format!("`{key}` given twice"),
                    ));
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        nv.path,
                        "unknown key: expected `migrations`, `tenant_migrations`, `tenants` or `config`",
                    ));
                }
            }
        }
        Ok(args)
    }
}

/// What the test function takes.
enum Given {
    Nothing,
    Pool,
    AsyncPool,
    Connection { by_ref: bool },
    Database,
}

fn given(f: &ItemFn) -> syn::Result<(Given, Option<(Pat, Type)>)> {
    let mut inputs = f.sig.inputs.iter();
    let Some(arg) = inputs.next() else {
        return Ok((Given::Nothing, None));
    };
    if let Some(extra) = inputs.next() {
        return Err(syn::Error::new_spanned(
            extra,
            "a #[pgschemas_diesel::test] function takes at most one argument",
        ));
    }
    let FnArg::Typed(arg) = arg else {
        return Err(syn::Error::new_spanned(
            arg,
            "a test function takes no `self`",
        ));
    };
    let unsupported = || {
        syn::Error::new_spanned(
            &arg.ty,
            "expected `TenantPool`, `AsyncTenantPool` (in an `async fn`), `PgConnection`, \
             `&mut PgConnection` or `&TestDatabase`",
        )
    };
    let (ty, by_ref, mutable) = match &*arg.ty {
        Type::Reference(r) => (&*r.elem, true, r.mutability.is_some()),
        other => (other, false, false),
    };
    let Type::Path(path) = ty else {
        return Err(unsupported());
    };
    let last = path
        .path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let given = match (last.as_str(), by_ref, mutable) {
        ("TenantPool", false, _) => Given::Pool,
        ("AsyncTenantPool", false, _) if f.sig.asyncness.is_some() => Given::AsyncPool,
        ("AsyncTenantPool", false, _) => {
            return Err(syn::Error::new_spanned(
                &arg.ty,
                "an `AsyncTenantPool` is given to an `async fn` test",
            ));
        }
        ("PgConnection", false, _) => Given::Connection { by_ref: false },
        ("PgConnection", true, true) => Given::Connection { by_ref: true },
        ("TestDatabase", true, false) => Given::Database,
        _ => return Err(unsupported()),
    };
    Ok((given, Some(((*arg.pat).clone(), (*arg.ty).clone()))))
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args: Args = syn::parse2(attr)?;
    let mut f: ItemFn = syn::parse2(item)?;
    if let Some(test) = f.attrs.iter().find(|a| a.path().is_ident("test")) {
        return Err(syn::Error::new_spanned(
            test,
            "#[pgschemas_diesel::test] makes the function a test already: remove this #[test]",
        ));
    }
    let (given, pat) = given(&f)?;
    let krate = quote! { ::pgschemas_diesel };
    let db = format_ident!("__pgschemas_test_database");
    let name = f.sig.ident.to_string();
    let shared = match &args.migrations {
        Some(m) => m.tokens(&krate),
        None => quote! { ::core::option::Option::<#krate::__private::EmbeddedMigrations>::None },
    };
    let tenant = match &args.tenant_migrations {
        Some(m) => m.tokens(&krate),
        None => quote! { ::core::option::Option::<#krate::__private::EmbeddedMigrations>::None },
    };
    let tenants = args.tenants.as_deref().unwrap_or_default();
    let config = match &args.config {
        Some(c) => quote! { { let config: #krate::Config = #c; config } },
        None => quote! { #krate::Config::default() },
    };
    let cfg = format_ident!("__pgschemas_test_config");
    let bind = match (&given, &pat) {
        (Given::Nothing, _) | (_, None) => quote! {},
        (Given::Pool, Some((p, t))) => {
            quote! { let #p: #t = #krate::testing::attribute::pool(&#db, &#cfg); }
        }
        (Given::AsyncPool, Some((p, t))) => {
            quote! { let #p: #t = #krate::testing::attribute::async_pool(&#db, &#cfg); }
        }
        (Given::Connection { by_ref: false }, Some((p, t))) => {
            quote! { let #p: #t = #db.connect(); }
        }
        (Given::Connection { by_ref: true }, Some((p, t))) => {
            quote! { let mut __pgschemas_conn = #db.connect(); let #p: #t = &mut __pgschemas_conn; }
        }
        (Given::Database, Some((p, t))) => quote! { let #p: #t = &#db; },
    };
    let body = &f.block;
    let create = quote! {
        let #db = #krate::testing::TestDatabase::new(
            ::core::concat!(::core::module_path!(), "::", #name),
        );
    };
    let prepare_call = quote! {{
        let #cfg = #config;
        #krate::testing::attribute::prepare(&#db, &#cfg, #shared, #tenant, &[#(#tenants),*]);
        #cfg
    }};
    // A `#[should_panic]` test's failed preparation must not pass for the expected panic.
    let should_panic = f.attrs.iter().any(|a| a.path().is_ident("should_panic"));
    let prepare = if should_panic {
        quote! {
            let ::core::option::Option::Some((#db, #cfg)) =
                #krate::testing::attribute::prepare_should_panic(|| {
                    #create
                    let #cfg = #prepare_call;
                    (#db, #cfg)
                })
            else {
                return;
            };
            #bind
        }
    } else {
        quote! {
            #create
            let #cfg = #prepare_call;
            #bind
        }
    };
    let run = if f.sig.asyncness.is_some() {
        f.sig.asyncness = None;
        quote! { #krate::testing::attribute::runtime().block_on(async move #body) }
    } else {
        quote! { (move || #body)() }
    };
    // A `#[should_panic]` test passes by panicking: its database is dropped then, and kept
    // when the function returns (the test fails for not panicking).
    let new_body = if should_panic {
        quote! {{
            #prepare
            let __pgschemas_outcome = ::std::panic::catch_unwind(
                ::std::panic::AssertUnwindSafe(move || #run),
            );
            #krate::testing::attribute::finish_should_panic(#db, __pgschemas_outcome)
        }}
    } else {
        quote! {{
            #prepare
            let __pgschemas_outcome = #run;
            #krate::testing::attribute::finish(&#db, __pgschemas_outcome)
        }}
    };
    f.sig.inputs.clear();
    f.block = syn::parse2(new_body)?;
    let attrs = &f.attrs;
    let vis = &f.vis;
    let sig = &f.sig;
    let block = &f.block;
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis #sig #block
    })
}
