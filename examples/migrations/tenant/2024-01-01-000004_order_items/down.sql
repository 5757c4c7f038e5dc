drop table order_items;
