create table ok_tbl (id int);
