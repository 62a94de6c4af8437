ALTER TABLE coupons
    DROP CONSTRAINT coupons_order_fkey,
    ADD CONSTRAINT coupons_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id),
    ADD CONSTRAINT coupons_brand_id_fkey FOREIGN KEY (brand_id) REFERENCES brands (id),
    ADD CONSTRAINT coupons_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES users (id);
ALTER TABLE orders DROP CONSTRAINT orders_id_brand_user_key;
DROP TABLE payments;
DROP TABLE statements;
DROP TABLE payment_references;
DROP TABLE top_ups;
DROP INDEX orders_by_reservation;
DROP INDEX orders_by_payment_reference;
ALTER TABLE orders DROP COLUMN closed_at;
ALTER TABLE orders DROP COLUMN received_cents;
ALTER TABLE orders DROP COLUMN reserved_until;
ALTER TABLE orders DROP COLUMN payment_reference;
