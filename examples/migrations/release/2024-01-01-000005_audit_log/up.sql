create table audit_log (id bigserial primary key, at timestamptz not null default now(), payload jsonb not null);
create index on audit_log using gin (payload);
