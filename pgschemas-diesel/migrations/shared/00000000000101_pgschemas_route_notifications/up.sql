-- Tell route caches (LISTEN pgschemas_routes) that tenants or domains changed. Statement
-- level: one notification per statement, delivered at commit; the payload is the table name.
CREATE FUNCTION public.pgschemas_notify_routes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('pgschemas_routes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER pgschemas_notify_routes
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION public.pgschemas_notify_routes();

CREATE TRIGGER pgschemas_notify_routes
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.domains
    FOR EACH STATEMENT EXECUTE FUNCTION public.pgschemas_notify_routes();
