create table items (id bigserial primary key, name text not null);
create table audit (id bigserial primary key, item_id bigint not null, note text not null);
-- The function keeps the path it was created with: the schema being migrated, then public.
create function audit_item() returns trigger language plpgsql
  set search_path from current set work_mem = '1MB'
  as $$ begin insert into audit (item_id, note) values (new.id, 'created ' || new.name); return new; end $$;
create trigger items_audit after insert on items for each row execute function audit_item();
create procedure add_item(n text) language plpgsql set search_path from current
  as $$ begin insert into items (name) values (n); end $$;
create view audited as select i.name, a.note from items i join audit a on a.item_id = i.id;
