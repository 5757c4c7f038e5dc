create table notes (id serial primary key, body text not null);
