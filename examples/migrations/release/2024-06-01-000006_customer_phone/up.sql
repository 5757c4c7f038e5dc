alter table customers add column phone text;
create index on customers (lower(email));
