DROP TABLE credited_coupons;
