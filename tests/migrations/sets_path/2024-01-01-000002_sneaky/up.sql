set search_path = public;
create table leaked (id int);
