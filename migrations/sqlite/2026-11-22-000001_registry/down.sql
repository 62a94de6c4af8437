DROP TABLE certificates;
DROP TABLE devices;
DROP TABLE holders;
DROP TABLE brands;
