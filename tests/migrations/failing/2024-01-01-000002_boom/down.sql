drop table boom_tbl;
