DROP TABLE rate_limit_hits;
DROP TABLE emails;
DROP TABLE idempotency_keys;
DROP TABLE coupons;
DROP TABLE invoice_counters;
DROP TABLE order_lines;
DROP TABLE orders;
