create table invoices (id serial primary key, owner text not null default current_schema());
insert into invoices default values;
