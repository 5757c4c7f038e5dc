create table customers (id bigserial primary key);
