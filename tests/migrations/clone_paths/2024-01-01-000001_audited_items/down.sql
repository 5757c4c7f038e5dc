drop view audited;
drop procedure add_item(text);
drop trigger items_audit on items;
drop function audit_item();
drop table audit;
drop table items;
