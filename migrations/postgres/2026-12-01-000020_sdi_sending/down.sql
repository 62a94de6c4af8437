ALTER TABLE sdi_transmissions DROP COLUMN failures;
ALTER TABLE brands DROP COLUMN sdi_pec_address;
