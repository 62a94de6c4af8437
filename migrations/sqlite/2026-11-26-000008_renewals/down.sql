DROP TABLE renewals;
ALTER TABLE certificates DROP COLUMN public_key_sha256;
ALTER TABLE coupons DROP COLUMN redeemed_at;
