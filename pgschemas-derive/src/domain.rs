//! `#[derive(Domain)]`: `DomainModel` for the user's domain (route) struct.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;
use syn::spanned::Spanned;

use crate::attr::{self, Key, Kind, ModelField, Options};

const ATTR: &str = "domain";

const KEYS: &[Key] = &[
    Key {
        name: "table",
        kind: Kind::Table,
        example: "crate::schema::domains",
    },
    Key {
        name: "id",
        kind: Kind::Field,
        example: "id",
    },
    Key {
        name: "tenant",
        kind: Kind::Field,
        example: "tenant_id",
    },
    Key {
        name: "domain",
        kind: Kind::Field,
        example: "domain",
    },
    Key {
        name: "folder",
        kind: Kind::Field,
        example: "folder",
    },
    Key {
        name: "is_primary",
        kind: Kind::Field,
        example: "is_primary",
    },
    Key {
        name: "redirect_to_primary",
        kind: Kind::Field,
        example: "redirect_to_primary",
    },
    Key {
        name: "crate",
        kind: Kind::Crate,
        example: "\"pgschemas_diesel\"",
    },
];

struct DomainFields<'a> {
    id: ModelField<'a>,
    tenant: ModelField<'a>,
    domain: ModelField<'a>,
    folder: ModelField<'a>,
    is_primary: ModelField<'a>,
    redirect: ModelField<'a>,
}

pub(crate) fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let options = Options::parse(&input.attrs, ATTR, KEYS)?;
    let fields = attr::named_fields(&input, "Domain")?;
    let span = input.ident.span();
    let find =
        |key: &str, default: &str| attr::find_field(fields, &options, key, default, ATTR, span);

    let table = attr::table_path(&input, &options, ATTR);
    let found = (
        find("id", "id"),
        find("tenant", "tenant_id"),
        find("domain", "domain"),
        find("folder", "folder"),
        find("is_primary", "is_primary"),
        find("redirect_to_primary", "redirect_to_primary"),
    );
    let (table, f) = match (table, found) {
        (Ok(table), (Ok(id), Ok(tenant), Ok(domain), Ok(folder), Ok(is_primary), Ok(redirect))) => {
            (
                table,
                DomainFields {
                    id,
                    tenant,
                    domain,
                    folder,
                    is_primary,
                    redirect,
                },
            )
        }
        (table, (id, tenant, domain, folder, is_primary, redirect)) => {
            return Err(attr::combine(
                [
                    table.err(),
                    id.err(),
                    tenant.err(),
                    domain.err(),
                    folder.err(),
                    is_primary.err(),
                    redirect.err(),
                ],
                span,
            ));
        }
    };

    let krate = attr::crate_path(&options);
    let p = quote!(#krate::__private);
    let d = quote!(#p::diesel);
    let name = &input.ident;
    let (impl_g, ty_g, _) = input.generics.split_for_impl();
    let model_where = attr::model_where_clause(&input, &d);
    let fallback = attr::table_fallback_name(&table);

    let (id_ident, id_col, id_ty) = (f.id.ident, &f.id.column, &f.id.field.ty);
    let (tenant_ident, tenant_col, tenant_ty) =
        (f.tenant.ident, &f.tenant.column, &f.tenant.field.ty);
    let (domain_ident, domain_col) = (f.domain.ident, &f.domain.column);
    let (folder_ident, folder_col, folder_ty) =
        (f.folder.ident, &f.folder.column, &f.folder.field.ty);
    let (primary_ident, primary_col) = (f.is_primary.ident, &f.is_primary.column);
    let (redirect_ident, redirect_col) = (f.redirect.ident, &f.redirect.column);

    let at = |ty: &syn::Type, tokens: TokenStream| attr::respan(tokens, ty.span());
    let domain_ty = &f.domain.field.ty;
    let primary_ty = &f.is_primary.field.ty;
    let redirect_ty = &f.redirect.field.ty;

    let id_body = at(id_ty, quote!(#p::id_string(&self.#id_ident)));
    let tenant_body = at(tenant_ty, quote!(#p::id_string(&self.#tenant_ident)));
    let domain_body = at(
        domain_ty,
        quote!(<#domain_ty as #p::AsStr>::as_str(&self.#domain_ident)),
    );
    let folder_body = at(
        folder_ty,
        quote!(<#folder_ty as #p::AsFolder>::folder(&self.#folder_ident)),
    );
    let primary_body = at(
        primary_ty,
        quote!(<#primary_ty as #p::Flag>::get(&self.#primary_ident)),
    );
    let redirect_body = at(
        redirect_ty,
        quote!(<#redirect_ty as #p::Flag>::get(&self.#redirect_ident)),
    );

    // Values compared with or written to columns, bound through the field's type.
    let domain_bind = |v: TokenStream| at(domain_ty, quote!(<#domain_ty as #p::AsStr>::bind(#v)));
    let folder_bind =
        |v: TokenStream| at(folder_ty, quote!(<#folder_ty as #p::AsFolder>::bind(#v)));
    let primary_bind = |v: TokenStream| at(primary_ty, quote!(<#primary_ty as #p::Flag>::bind(#v)));
    let redirect_bind =
        |v: TokenStream| at(redirect_ty, quote!(<#redirect_ty as #p::Flag>::bind(#v)));

    let select = quote!(<Self as #d::SelectableHelper<#d::pg::Pg>>::as_select());
    let returning = quote!(<Self as #d::SelectableHelper<#d::pg::Pg>>::as_returning());
    let asc = |col: &syn::Ident| quote!(#d::ExpressionMethods::asc(#table::#col));
    let asc_domain = asc(domain_col);
    // Bare domains (NULL folders) before folder routes.
    let asc_folder = {
        let a = asc(folder_col);
        quote!(#d::expression_methods::PgSortExpressionMethods::nulls_first(#a))
    };
    let eq = |col: &syn::Ident, value: TokenStream| quote!(#d::ExpressionMethods::eq(#table::#col, #value));
    let tenant_eq = eq(tenant_col, quote!(tenant_id));
    let primary_true = eq(primary_col, primary_bind(quote!(true)));
    let id_eq_self = eq(id_col, quote!(&self.#id_ident));

    let (find_domain, find_folder) = (domain_bind(quote!(domain)), folder_bind(quote!(folder)));
    let new_domain = domain_bind(quote!(new.domain.as_str()));
    let new_folder = folder_bind(quote!(new.folder.as_deref()));
    let (new_primary, new_redirect) = (
        primary_bind(quote!(new.is_primary)),
        redirect_bind(quote!(new.redirect_to_primary)),
    );
    let (set_primary, set_redirect) = (
        primary_bind(quote!(is_primary)),
        redirect_bind(quote!(redirect_to_primary)),
    );
    let primary_false = primary_bind(quote!(false));

    Ok(quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_g #krate::models::DomainModel for #name #ty_g #model_where {
                type Table = #table::table;
                type Id = #id_ty;
                type TenantId = #tenant_ty;

                fn table_name() -> #krate::models::TableName {
                    #p::table_name(&#table::table, #fallback)
                }

                fn id(&self) -> &Self::Id {
                    &self.#id_ident
                }

                fn id_string(&self) -> ::std::string::String {
                    #id_body
                }

                fn tenant_id(&self) -> &Self::TenantId {
                    &self.#tenant_ident
                }

                fn tenant_id_string(&self) -> ::std::string::String {
                    #tenant_body
                }

                fn domain(&self) -> &str {
                    #domain_body
                }

                fn folder(&self) -> ::std::option::Option<&str> {
                    #folder_body
                }

                fn is_primary(&self) -> bool {
                    #primary_body
                }

                fn redirect_to_primary(&self) -> bool {
                    #redirect_body
                }

                fn load_all(
                    conn: &mut #d::PgConnection,
                ) -> #d::QueryResult<::std::vec::Vec<Self>> {
                    let query = #d::QueryDsl::order_by(#table::table, (#asc_domain, #asc_folder));
                    let query = #d::QueryDsl::select(query, #select);
                    #d::RunQueryDsl::load(query, conn)
                }

                fn load_for_tenant(
                    conn: &mut #d::PgConnection,
                    tenant_id: &Self::TenantId,
                ) -> #d::QueryResult<::std::vec::Vec<Self>> {
                    let query = #d::QueryDsl::filter(#table::table, #tenant_eq);
                    let query = #d::QueryDsl::order_by(
                        query,
                        (
                            #d::ExpressionMethods::desc(#table::#primary_col),
                            #asc_domain,
                            #asc_folder,
                        ),
                    );
                    let query = #d::QueryDsl::select(query, #select);
                    #d::RunQueryDsl::load(query, conn)
                }

                fn find_primary(
                    conn: &mut #d::PgConnection,
                    tenant_id: &Self::TenantId,
                ) -> #d::QueryResult<::std::option::Option<Self>> {
                    let query = #d::QueryDsl::filter(#table::table, #tenant_eq);
                    let query = #d::QueryDsl::filter(query, #primary_true);
                    let query = #d::QueryDsl::order_by(query, #asc_domain);
                    let query = #d::QueryDsl::select(query, #select);
                    #d::OptionalExtension::optional(#d::RunQueryDsl::first(query, conn))
                }

                fn find_route(
                    conn: &mut #d::PgConnection,
                    domain: &str,
                    folder: ::std::option::Option<&str>,
                ) -> #d::QueryResult<::std::option::Option<Self>> {
                    let query = #d::QueryDsl::filter(
                        #table::table,
                        #d::ExpressionMethods::eq(#table::#domain_col, #find_domain),
                    );
                    let query = #d::QueryDsl::filter(
                        query,
                        #d::expression_methods::PgExpressionMethods::is_not_distinct_from(
                            #table::#folder_col,
                            #find_folder,
                        ),
                    );
                    let query = #d::QueryDsl::select(query, #select);
                    #d::OptionalExtension::optional(#d::RunQueryDsl::first(query, conn))
                }

                fn insert_new(
                    conn: &mut #d::PgConnection,
                    tenant_id: &Self::TenantId,
                    new: &#krate::models::NewDomain,
                ) -> #d::QueryResult<Self> {
                    let values = (
                        #tenant_eq,
                        #d::ExpressionMethods::eq(#table::#domain_col, #new_domain),
                        #d::ExpressionMethods::eq(#table::#folder_col, #new_folder),
                        #d::ExpressionMethods::eq(#table::#primary_col, #new_primary),
                        #d::ExpressionMethods::eq(#table::#redirect_col, #new_redirect),
                    );
                    let query = #d::insert_into(#table::table).values(values).returning(#returning);
                    #d::RunQueryDsl::get_result(query, conn)
                }

                fn set_flags(
                    &self,
                    conn: &mut #d::PgConnection,
                    is_primary: bool,
                    redirect_to_primary: bool,
                ) -> #d::QueryResult<Self> {
                    let target = #d::QueryDsl::filter(#table::table, #id_eq_self);
                    let query = #d::update(target)
                        .set((
                            #d::ExpressionMethods::eq(#table::#primary_col, #set_primary),
                            #d::ExpressionMethods::eq(#table::#redirect_col, #set_redirect),
                        ))
                        .returning(#returning);
                    #d::RunQueryDsl::get_result(query, conn)
                }

                fn demote_primaries(
                    conn: &mut #d::PgConnection,
                    tenant_id: &Self::TenantId,
                ) -> #d::QueryResult<usize> {
                    let target = #d::QueryDsl::filter(#table::table, #tenant_eq);
                    let target = #d::QueryDsl::filter(target, #primary_true);
                    let query = #d::update(target)
                        .set(#d::ExpressionMethods::eq(#table::#primary_col, #primary_false));
                    #d::RunQueryDsl::execute(query, conn)
                }

                fn delete(&self, conn: &mut #d::PgConnection) -> #d::QueryResult<usize> {
                    let target = #d::QueryDsl::filter(#table::table, #id_eq_self);
                    #d::RunQueryDsl::execute(#d::delete(target), conn)
                }
            }
        };
    })
}
