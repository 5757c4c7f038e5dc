DROP TABLE public.domains;
DROP TABLE public.tenants;
DROP TYPE public.tenant_status;
