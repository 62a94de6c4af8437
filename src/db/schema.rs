// Written by hand to match migrations/{sqlite,postgres}; the schema-parity test checks
// that both backends have exactly these tables and columns.

diesel::table! {
    agent_challenges (nonce) {
        nonce -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    brands (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        sender_address -> Text,
        iban -> Text,
        postal_account -> Text,
        invoice_series -> Text,
        seller_name -> Text,
        seller_partita_iva -> Text,
        seller_codice_fiscale -> Text,
        seller_regime_fiscale -> Text,
        seller_indirizzo -> Text,
        seller_cap -> Text,
        seller_comune -> Text,
        seller_provincia -> Text,
        seller_nazione -> Text,
        seller_rea_ufficio -> Text,
        seller_rea_numero -> Text,
        transmitter_codice -> Text,
        sdi_pec_address -> Text,
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
        public_key_sha256 -> Nullable<Text>,
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
        email_confirmed_at -> Nullable<Timestamp>,
        disabled_at -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
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
        unavailable_notice -> Nullable<Text>,
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        brand_id -> Text,
        user_id -> Text,
        status -> Text,
        payment_method -> Text,
        net_cents -> BigInt,
        vat_cents -> BigInt,
        gross_cents -> BigInt,
        invoice_number -> Nullable<Text>,
        invoice_year -> Nullable<Integer>,
        invoice_seq -> Nullable<BigInt>,
        email -> Text,
        created_at -> Timestamp,
        paid_at -> Nullable<Timestamp>,
        fulfilled_at -> Nullable<Timestamp>,
        payment_reference -> Nullable<Text>,
        reserved_until -> Nullable<Timestamp>,
        received_cents -> BigInt,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    order_lines (id) {
        id -> Text,
        order_id -> Text,
        line_number -> Integer,
        product_id -> Text,
        product_code -> Text,
        product_name -> Text,
        quantity -> Integer,
        net_unit_cents -> BigInt,
        vat_rate_basis_points -> Integer,
        net_cents -> BigInt,
    }
}

diesel::table! {
    invoice_counters (brand_id, year) {
        brand_id -> Text,
        year -> Integer,
        last_seq -> BigInt,
    }
}

diesel::table! {
    invoices (id) {
        id -> Text,
        brand_id -> Text,
        order_id -> Text,
        kind -> Text,
        credited_invoice_id -> Nullable<Text>,
        number -> Text,
        year -> Integer,
        seq -> BigInt,
        issue_date -> Date,
        buyer -> Text,
        seller -> Text,
        net_cents -> BigInt,
        vat_cents -> BigInt,
        gross_cents -> BigInt,
        transmitter_codice -> Text,
        progressivo_invio -> Text,
        file_name -> Text,
        xml -> Text,
        status -> Text,
        identificativo_sdi -> Nullable<Text>,
        created_at -> Timestamp,
        status_changed_at -> Timestamp,
    }
}

diesel::table! {
    credit_note_counters (brand_id, year) {
        brand_id -> Text,
        year -> Integer,
        last_seq -> BigInt,
    }
}

diesel::table! {
    credited_coupons (coupon_id) {
        coupon_id -> Text,
        credit_note_id -> Text,
        invoice_id -> Text,
    }
}

diesel::table! {
    sdi_transmissions (id) {
        id -> Text,
        brand_id -> Text,
        invoice_id -> Text,
        file_name -> Text,
        xml -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        channel -> Nullable<Text>,
        channel_reference -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        failures -> Integer,
    }
}

diesel::table! {
    sdi_receipts (id) {
        id -> Text,
        brand_id -> Text,
        invoice_id -> Nullable<Text>,
        kind -> Text,
        file_name -> Text,
        invoice_file_name -> Text,
        identificativo_sdi -> Text,
        message_id -> Text,
        errors -> Text,
        xml -> Text,
        received_at -> Timestamp,
        imported_by -> Nullable<Text>,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    sdi_transmission_counters (transmitter_codice) {
        transmitter_codice -> Text,
        last_seq -> BigInt,
    }
}

diesel::table! {
    coupons (id) {
        id -> Text,
        brand_id -> Text,
        order_id -> Text,
        owner_id -> Text,
        product_id -> Text,
        code_hash -> Text,
        code_hint -> Text,
        status -> Text,
        net_unit_cents -> BigInt,
        vat_rate_basis_points -> Integer,
        valid_until -> Timestamp,
        created_at -> Timestamp,
        voided_at -> Nullable<Timestamp>,
        redeemed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    idempotency_keys (user_id, idempotency_key) {
        user_id -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        response_status -> Integer,
        response_body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    emails (id) {
        id -> Text,
        brand_id -> Text,
        kind -> Text,
        reference -> Nullable<Text>,
        sender -> Text,
        recipient -> Text,
        context -> Text,
        subject -> Text,
        attachment_name -> Nullable<Text>,
        attachment_content -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    rate_limit_slots (bucket, subject, slot_start) {
        bucket -> Text,
        subject -> Text,
        slot_start -> Timestamp,
        hits -> BigInt,
    }
}

diesel::table! {
    top_ups (id) {
        id -> Text,
        brand_id -> Text,
        user_id -> Text,
        account_id -> Text,
        status -> Text,
        payment_method -> Text,
        amount_cents -> BigInt,
        received_cents -> BigInt,
        payment_reference -> Nullable<Text>,
        reserved_until -> Timestamp,
        email -> Text,
        created_at -> Timestamp,
        paid_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    payment_references (reference) {
        reference -> Text,
        brand_id -> Text,
        order_id -> Nullable<Text>,
        top_up_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    statements (id) {
        id -> Text,
        brand_id -> Text,
        format -> Text,
        version -> Text,
        message_id -> Nullable<Text>,
        file_name -> Nullable<Text>,
        file_sha256 -> Text,
        entries -> Integer,
        new_entries -> Integer,
        ignored_entries -> Integer,
        imported_by -> Text,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        brand_id -> Text,
        statement_id -> Text,
        dedup_key -> Text,
        direction -> Text,
        account -> Text,
        bank_reference -> Nullable<Text>,
        booking_date -> Date,
        value_date -> Nullable<Date>,
        amount_cents -> BigInt,
        payer_name -> Nullable<Text>,
        remittance -> Text,
        reference -> Nullable<Text>,
        status -> Text,
        reason -> Text,
        order_id -> Nullable<Text>,
        top_up_id -> Nullable<Text>,
        account_id -> Nullable<Text>,
        applied_cents -> BigInt,
        credited_cents -> BigInt,
        reverses_payment_id -> Nullable<Text>,
        resolved_by -> Nullable<Text>,
        resolved_at -> Nullable<Timestamp>,
        resolution_note -> Nullable<Text>,
        created_at -> Timestamp,
        same_reference_as -> Nullable<Text>,
        bank_entry -> Nullable<Text>,
        bank_entry_part -> Nullable<Text>,
    }
}

diesel::table! {
    renewals (id) {
        id -> Text,
        brand_id -> Text,
        device_id -> Text,
        certificate_id -> Text,
        kind -> Text,
        coupon_id -> Text,
        status -> Text,
        csr_pem -> Text,
        public_key -> Text,
        public_key_sha256 -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        claim_token -> Nullable<Text>,
        last_error -> Nullable<Text>,
        certificate_pem -> Nullable<Text>,
        issued_serial_number -> Nullable<Text>,
        issued_issuer -> Nullable<Text>,
        issued_not_before -> Nullable<Timestamp>,
        issued_not_after -> Nullable<Timestamp>,
        new_certificate_id -> Nullable<Text>,
        created_at -> Timestamp,
        issued_at -> Nullable<Timestamp>,
        installed_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    web_sessions (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    email_confirmations (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        brand_id -> Text,
        purpose -> Text,
        email -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    renewal_reminders (certificate_id, threshold_days) {
        certificate_id -> Text,
        threshold_days -> Integer,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    card_payments (id) {
        id -> Text,
        brand_id -> Text,
        user_id -> Text,
        order_id -> Nullable<Text>,
        top_up_id -> Nullable<Text>,
        provider -> Text,
        amount_cents -> BigInt,
        currency -> Text,
        status -> Text,
        session_id -> Nullable<Text>,
        checkout_url -> Nullable<Text>,
        provider_payment_id -> Nullable<Text>,
        paid_cents -> Nullable<BigInt>,
        paid_currency -> Nullable<Text>,
        refunded_cents -> BigInt,
        note -> Nullable<Text>,
        expires_at -> Timestamp,
        next_check_at -> Timestamp,
        checks -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    card_events (provider, event_id) {
        provider -> Text,
        event_id -> Text,
        kind -> Text,
        outcome -> Text,
        card_payment_id -> Nullable<Text>,
        received_at -> Timestamp,
    }
}

diesel::table! {
    card_refunds (id) {
        id -> Text,
        brand_id -> Text,
        card_payment_id -> Text,
        amount_cents -> BigInt,
        coupons -> Integer,
        credit_note_id -> Nullable<Text>,
        reason -> Text,
        operator_id -> Text,
        status -> Text,
        provider_refund_id -> Nullable<Text>,
        provider_status -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(devices -> holders (holder_id));
diesel::joinable!(order_lines -> orders (order_id));
diesel::joinable!(coupons -> products (product_id));
diesel::table! {
    officer_applications (id) {
        id -> Text,
        brand_id -> Text,
        user_id -> Text,
        company_name -> Text,
        vat_number -> Text,
        contact_email -> Text,
        phone -> Nullable<Text>,
        note -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        decided_by -> Nullable<Text>,
        refusal_reason -> Nullable<Text>,
    }
}

diesel::joinable!(users -> brands (brand_id));
diesel::table! {
    password_resets (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(prepaid_accounts -> users (owner_id));
diesel::joinable!(prepaid_entries -> prepaid_accounts (account_id));
diesel::joinable!(devices -> brands (brand_id));
diesel::table! {
    billing_profiles (user_id) {
        user_id -> Text,
        brand_id -> Text,
        kind -> Text,
        denominazione -> Nullable<Text>,
        nome -> Nullable<Text>,
        cognome -> Nullable<Text>,
        codice_fiscale -> Nullable<Text>,
        partita_iva -> Nullable<Text>,
        indirizzo -> Text,
        cap -> Nullable<Text>,
        comune -> Text,
        provincia -> Text,
        nazione -> Text,
        codice_destinatario -> Nullable<Text>,
        pec -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(certificates -> devices (device_id));
diesel::joinable!(renewal_reminders -> certificates (certificate_id));
diesel::joinable!(renewals -> devices (device_id));
diesel::joinable!(renewals -> coupons (coupon_id));
diesel::joinable!(web_sessions -> users (user_id));
diesel::joinable!(officer_applications -> users (user_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(email_confirmations -> users (user_id));
diesel::joinable!(billing_profiles -> users (user_id));

diesel::joinable!(invoices -> orders (order_id));
diesel::joinable!(sdi_transmissions -> invoices (invoice_id));
diesel::joinable!(sdi_receipts -> invoices (invoice_id));
diesel::joinable!(credited_coupons -> coupons (coupon_id));
diesel::joinable!(card_payments -> orders (order_id));
diesel::joinable!(card_payments -> top_ups (top_up_id));
diesel::joinable!(card_refunds -> card_payments (card_payment_id));

diesel::allow_tables_to_appear_in_same_query!(
    agent_challenges,
    invoices,
    credit_note_counters,
    credited_coupons,
    sdi_transmissions,
    sdi_receipts,
    sdi_transmission_counters,
    brands,
    holders,
    devices,
    certificates,
    users,
    officer_applications,
    refresh_tokens,
    login_attempts,
    prepaid_accounts,
    prepaid_entries,
    audit_log,
    products,
    orders,
    order_lines,
    invoice_counters,
    coupons,
    idempotency_keys,
    emails,
    rate_limit_slots,
    top_ups,
    payment_references,
    statements,
    payments,
    renewal_reminders,
    renewals,
    web_sessions,
    password_resets,
    email_confirmations,
    billing_profiles,
    card_payments,
    card_events,
    card_refunds,
);
