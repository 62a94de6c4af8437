// Written by hand to match migrations/{sqlite,postgres}; the schema-parity test checks
// that both backends have exactly these tables and columns.

diesel::table! {
    brands (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
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

diesel::joinable!(devices -> holders (holder_id));
diesel::joinable!(devices -> brands (brand_id));
diesel::joinable!(certificates -> devices (device_id));

diesel::allow_tables_to_appear_in_same_query!(brands, holders, devices, certificates);
