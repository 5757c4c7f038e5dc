create table boom_tbl (id int);
select 1/0;
