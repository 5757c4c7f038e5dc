create table orders (id bigserial primary key, customer_id bigint not null references customers(id), status text not null default 'new', total_cents bigint not null default 0, created_at timestamptz not null default now());
create index on orders (customer_id);
