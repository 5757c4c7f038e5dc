//! `#[derive(Tenant)]`: `Schema` + `TenantModel` for the user's tenant struct.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;
use syn::spanned::Spanned;

use crate::attr::{self, Key, Kind, Options};

const ATTR: &str = "tenant";

const KEYS: &[Key] = &[
    Key {
        name: "table",
        kind: Kind::Table,
        example: "crate::schema::tenants",
    },
    Key {
        name: "schema_name",
        kind: Kind::Field,
        example: "schema_name",
    },
    Key {
        name: "id",
        kind: Kind::Field,
        example: "id",
    },
    Key {
        name: "status",
        kind: Kind::Field,
        example: "status",
    },
    Key {
        name: "crate",
        kind: Kind::Crate,
        example: "\"pgschemas_diesel\"",
    },
];

pub(crate) fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let options = Options::parse(&input.attrs, ATTR, KEYS)?;
    let fields = attr::named_fields(&input, "Tenant")?;
    let span = input.ident.span();

    // Report every missing piece at once: they are independent mistakes.
    let table = attr::table_path(&input, &options, ATTR);
    let schema_name = attr::find_field(fields, &options, "schema_name", "schema_name", ATTR, span);
    let id = attr::find_field(fields, &options, "id", "id", ATTR, span);
    let status = attr::find_optional_field(fields, &options, "status");
    let (table, schema_name, id, status) = match (table, schema_name, id, status) {
        (Ok(t), Ok(s), Ok(i), Ok(st)) => (t, s, i, st),
        (t, s, i, st) => return Err(attr::combine([t.err(), s.err(), i.err(), st.err()], span)),
    };

    let krate = attr::crate_path(&options);
    let p = quote!(#krate::__private);
    let d = quote!(#p::diesel);
    let name = &input.ident;
    let (impl_g, ty_g, where_c) = input.generics.split_for_impl();
    let model_where = attr::model_where_clause(&input, &d);
    let fallback = attr::table_fallback_name(&table);

    let sn_ident = schema_name.ident;
    let sn_col = &schema_name.column;
    let sn_ty = &schema_name.field.ty;
    let sn_span = sn_ty.span();
    let schema_name_body = attr::respan(
        quote!(<#sn_ty as #p::AsStr>::as_str(&self.#sn_ident)),
        sn_span,
    );
    let schema_name_bind = attr::respan(quote!(<#sn_ty as #p::AsStr>::bind(schema_name)), sn_span);

    let id_ident = id.ident;
    let id_col = &id.column;
    let id_ty = &id.field.ty;
    let id_body = attr::respan(quote!(#p::id_string(&self.#id_ident)), id_ty.span());

    let is_active = status.map(|status| {
        let ident = status.ident;
        let ty = &status.field.ty;
        let body = attr::respan(
            quote!(<#ty as #krate::models::IsActive>::is_active(&self.#ident)),
            ty.span(),
        );
        quote! {
            fn is_active(&self) -> bool {
                #body
            }
        }
    });

    let select = quote!(<Self as #d::SelectableHelper<#d::pg::Pg>>::as_select());

    Ok(quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_g #krate::Schema for #name #ty_g #where_c {
                fn schema_name(&self) -> &str {
                    #schema_name_body
                }
            }

            #[automatically_derived]
            impl #impl_g #krate::models::TenantModel for #name #ty_g #model_where {
                type Table = #table::table;
                type Id = #id_ty;

                fn table_name() -> #krate::models::TableName {
                    #p::table_name(&#table::table, #fallback)
                }

                fn id(&self) -> &Self::Id {
                    &self.#id_ident
                }

                fn id_string(&self) -> ::std::string::String {
                    #id_body
                }

                #is_active

                fn load_all(
                    conn: &mut #d::PgConnection,
                ) -> #d::QueryResult<::std::vec::Vec<Self>> {
                    let query = #d::QueryDsl::order_by(
                        #table::table,
                        #d::ExpressionMethods::asc(#table::#sn_col),
                    );
                    let query = #d::QueryDsl::select(query, #select);
                    #d::RunQueryDsl::load(query, conn)
                }

                fn find_by_schema_name(
                    conn: &mut #d::PgConnection,
                    schema_name: &str,
                ) -> #d::QueryResult<::std::option::Option<Self>> {
                    let query = #d::QueryDsl::filter(
                        #table::table,
                        #d::ExpressionMethods::eq(#table::#sn_col, #schema_name_bind),
                    );
                    let query = #d::QueryDsl::select(query, #select);
                    #d::OptionalExtension::optional(#d::RunQueryDsl::first(query, conn))
                }

                fn find_by_id(
                    conn: &mut #d::PgConnection,
                    id: &Self::Id,
                ) -> #d::QueryResult<::std::option::Option<Self>> {
                    let query = #d::QueryDsl::filter(
                        #table::table,
                        #d::ExpressionMethods::eq(#table::#id_col, id),
                    );
                    let query = #d::QueryDsl::select(query, #select);
                    #d::OptionalExtension::optional(#d::RunQueryDsl::first(query, conn))
                }

                fn delete(&self, conn: &mut #d::PgConnection) -> #d::QueryResult<usize> {
                    let target = #d::QueryDsl::filter(
                        #table::table,
                        #d::ExpressionMethods::eq(#table::#id_col, &self.#id_ident),
                    );
                    #d::RunQueryDsl::execute(#d::delete(target), conn)
                }
            }
        };
    })
}
