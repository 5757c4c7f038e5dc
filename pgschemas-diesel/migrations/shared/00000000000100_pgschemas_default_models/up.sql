-- pgschemas-diesel's default tenant and domain models (pgschemas_diesel::models), in the
-- public schema whatever the search_path is.

-- Custom types live in the shared schema, never per tenant: Diesel caches a type's OID per
-- connection, so a per-tenant type breaks as soon as a connection switches tenants.
CREATE TYPE public.tenant_status AS ENUM ('active', 'suspended');

CREATE TABLE public.tenants (
    id bigserial PRIMARY KEY,
    schema_name text NOT NULL
        CONSTRAINT tenants_schema_name_key UNIQUE
        CONSTRAINT tenants_schema_name_valid CHECK (
            schema_name ~ '^[a-z_][a-z0-9_]{0,62}$'
            AND schema_name !~ '^pg_'
            AND schema_name <> 'information_schema'
        ),
    name text NOT NULL,
    status public.tenant_status NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.domains (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    domain text NOT NULL
        CONSTRAINT domains_domain_lower_case CHECK (domain <> '' AND domain = lower(domain)),
    folder text
        CONSTRAINT domains_folder_not_empty CHECK (folder <> ''),
    is_primary boolean NOT NULL DEFAULT false,
    redirect_to_primary boolean NOT NULL DEFAULT false,
    CONSTRAINT domains_primary_never_redirects CHECK (NOT (is_primary AND redirect_to_primary))
);

-- A route is unique across all tenants. A plain UNIQUE (domain, folder) would let any number
-- of bare-domain (NULL folder) rows for one domain through.
CREATE UNIQUE INDEX domains_domain_folder_key ON public.domains (domain, coalesce(folder, ''));

-- At most one primary route per tenant.
CREATE UNIQUE INDEX domains_one_primary_per_tenant ON public.domains (tenant_id) WHERE is_primary;

CREATE INDEX domains_tenant_id_idx ON public.domains (tenant_id);
