drop table ok_tbl;
