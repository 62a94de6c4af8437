-- The catalog: renewal coupons sold by each brand. Prices are net of IVA, in cents.
CREATE TABLE products (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    -- Stable, human-readable key within the brand (seeds, invoices, CSV exports).
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    -- Which certificates of a device one coupon renews.
    covers TEXT NOT NULL CHECK (covers IN ('signature', 'authentication', 'both')),
    -- For professionals (role certificates, CNS for professionals): never proposed by the
    -- lookup, chosen by hand.
    professional BOOLEAN NOT NULL,
    net_price_cents BIGINT NOT NULL CHECK (net_price_cents > 0),
    vat_rate_basis_points INTEGER NOT NULL CHECK (vat_rate_basis_points BETWEEN 0 AND 10000),
    active BOOLEAN NOT NULL,
    sort_order INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (brand_id, code)
);
