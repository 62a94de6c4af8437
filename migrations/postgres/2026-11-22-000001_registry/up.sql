-- Registry: brands, certificate holders, their devices and the certificates on them.
-- Portable types only: ids are text (UUIDv7 strings, or a short code for brands),
-- timestamps hold UTC. Same tables and columns on SQLite and PostgreSQL.

CREATE TABLE brands (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE holders (
    id TEXT PRIMARY KEY NOT NULL,
    codice_fiscale TEXT NOT NULL UNIQUE,
    given_name TEXT NOT NULL,
    surname TEXT NOT NULL,
    email TEXT,
    mobile TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    holder_id TEXT NOT NULL REFERENCES holders (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    serial_number TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('smart_card', 'usb_key')),
    -- When the device was first put in use: a device is renewable only for so many years.
    activated_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX devices_by_holder ON devices (holder_id, serial_number);

CREATE TABLE certificates (
    id TEXT PRIMARY KEY NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices (id),
    kind TEXT NOT NULL CHECK (kind IN ('signature', 'authentication')),
    issuer TEXT NOT NULL,
    -- Hexadecimal, uppercase, no separators: as openssl prints it.
    serial_number TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_before TIMESTAMP NOT NULL,
    not_after TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'revoked')),
    created_at TIMESTAMP NOT NULL,
    CHECK (not_before < not_after),
    UNIQUE (issuer, serial_number)
);
CREATE INDEX certificates_by_device ON certificates (device_id, kind);
-- A device carries at most one certificate of each kind in use.
CREATE UNIQUE INDEX certificates_one_active_per_kind ON certificates (device_id, kind)
    WHERE status = 'active';
