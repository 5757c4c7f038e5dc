create table orders (id serial primary key, owner text not null);
