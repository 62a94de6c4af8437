ALTER TABLE products DROP COLUMN unavailable_notice;
