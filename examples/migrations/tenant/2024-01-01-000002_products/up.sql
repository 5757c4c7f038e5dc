create table products (id bigserial primary key, sku text not null unique, name text not null, price_cents bigint not null check (price_cents >= 0));
