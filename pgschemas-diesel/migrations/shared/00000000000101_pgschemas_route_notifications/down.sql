DROP TRIGGER pgschemas_notify_routes ON public.domains;
DROP TRIGGER pgschemas_notify_routes ON public.tenants;
DROP FUNCTION public.pgschemas_notify_routes();
