// Written by hand to match migrations/{sqlite,postgres}; the schema-parity test checks
// that both backends have exactly these tables and columns.

diesel::table! {
    brands (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        sender_address -> Text,
        iban -> Text,
        postal_account -> Text,
        invoice_series -> Text,
    }
}

diesel::table! {
    holders (id) {
        id -> Text,
        codice_fiscale -> Text,
        given_name -> Text,
        surname -> Text,
        email -> Nullable<Text>,
        mobile -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        holder_id -> Text,
        brand_id -> Text,
        serial_number -> Text,
        kind -> Text,
        activated_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    certificates (id) {
        id -> Text,
        device_id -> Text,
        kind -> Text,
        issuer -> Text,
        serial_number -> Text,
        subject -> Text,
        not_before -> Timestamp,
        not_after -> Timestamp,
        status -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        brand_id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        codice_fiscale -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        family_id -> Text,
        user_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> Text,
        account_key -> Text,
        client_address -> Text,
        attempted_at -> Timestamp,
    }
}

diesel::table! {
    prepaid_accounts (id) {
        id -> Text,
        brand_id -> Text,
        owner_id -> Text,
        balance_cents -> BigInt,
        entry_count -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    prepaid_entries (id) {
        id -> Text,
        account_id -> Text,
        seq -> BigInt,
        kind -> Text,
        amount_cents -> BigInt,
        balance_after_cents -> BigInt,
        description -> Text,
        reference -> Nullable<Text>,
        actor_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        brand_id -> Nullable<Text>,
        actor -> Text,
        action -> Text,
        subject_type -> Text,
        subject_id -> Text,
        details -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    products (id) {
        id -> Text,
        brand_id -> Text,
        code -> Text,
        name -> Text,
        covers -> Text,
        professional -> Bool,
        net_price_cents -> BigInt,
        vat_rate_basis_points -> Integer,
        active -> Bool,
        sort_order -> Integer,
        created_at -> Timestamp,
    }
}

diesel::joinable!(devices -> holders (holder_id));
diesel::joinable!(users -> brands (brand_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(prepaid_accounts -> users (owner_id));
diesel::joinable!(prepaid_entries -> prepaid_accounts (account_id));
diesel::joinable!(devices -> brands (brand_id));
diesel::joinable!(certificates -> devices (device_id));

diesel::allow_tables_to_appear_in_same_query!(
    brands,
    holders,
    devices,
    certificates,
    users,
    refresh_tokens,
    login_attempts,
    prepaid_accounts,
    prepaid_entries,
    audit_log,
    products,
);
