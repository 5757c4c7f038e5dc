drop index customers_lower_idx;
alter table customers drop column phone;
