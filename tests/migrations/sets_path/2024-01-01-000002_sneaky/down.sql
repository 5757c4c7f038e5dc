drop table leaked;
