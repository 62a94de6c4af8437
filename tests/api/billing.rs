//! The buyer's billing data: every rule named, both kinds of buyer round-trip, each buyer
//! sees only their own, and no order without it (API and pages).

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{billing_business, billing_person, problem, spawn_app, TestApp};
use crate::web_client::Browser;
use rinnovo::db::schema::audit_log;

const BILLING: &str = "/api/v1/me/billing";

fn with(base: Value, changes: Value) -> Value {
    let mut merged = base;
    for (key, value) in changes.as_object().unwrap() {
        merged[key] = value.clone();
    }
    merged
}

/// The `field:rule` pairs of a 400 answer.
async fn refused_fields(response: reqwest::Response) -> Vec<String> {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "/problems/invalid-field");
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["field"].as_str().unwrap(),
                e["rule"].as_str().unwrap()
            )
        })
        .collect()
}

/// A customer whose address is confirmed but who gave no billing data yet.
async fn customer_without_billing(app: &TestApp) -> crate::helpers::SignedIn {
    let customer = app.unconfirmed_customer("visura").await;
    app.confirm_email(&customer).await;
    customer
}

#[tokio::test]
async fn each_bad_field_is_named_with_its_rule_all_at_once() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let cases = [
        (
            json!({ "partita_iva": "00743110158" }),
            "partita_iva:check_digit",
        ),
        (json!({ "cap": "2012" }), "cap:cap"),
        (
            json!({ "codice_destinatario": "M5UXCR" }),
            "codice_destinatario:codice_destinatario",
        ),
        (
            json!({ "codice_destinatario": null, "pec": "non-un-indirizzo" }),
            "pec:email",
        ),
        (json!({ "provincia": "XX" }), "provincia:provincia"),
        (json!({ "nazione": "XY" }), "nazione:nazione"),
        (
            json!({ "denominazione": "x".repeat(81) }),
            "denominazione:max_length",
        ),
    ];
    for (change, expected) in cases {
        let body = with(billing_business(), change.clone());
        let response = app.put_json_as(&customer.token, BILLING, &body).await;
        assert_eq!(refused_fields(response).await, [expected], "{change}");
    }
    // Every bad field in one answer.
    let all_bad = with(
        billing_business(),
        json!({ "partita_iva": "00743110158", "cap": "2012", "codice_destinatario": "M5UXCR",
                "provincia": "XX" }),
    );
    let response = app.put_json_as(&customer.token, BILLING, &all_bad).await;
    assert_eq!(
        refused_fields(response).await,
        [
            "partita_iva:check_digit",
            "cap:cap",
            "provincia:provincia",
            "codice_destinatario:codice_destinatario"
        ]
    );
    // A person needs a codice fiscale; the kind is one of two.
    let response = app
        .put_json_as(
            &customer.token,
            BILLING,
            &with(billing_person(), json!({ "codice_fiscale": null })),
        )
        .await;
    assert_eq!(refused_fields(response).await, ["codice_fiscale:required"]);
    let response = app
        .put_json_as(
            &customer.token,
            BILLING,
            &with(billing_person(), json!({ "kind": "company" })),
        )
        .await;
    assert_eq!(refused_fields(response).await, ["kind:one_of"]);
    // None of them changed the data the helper gave.
    let stored = app.get_json(&customer.token, BILLING).await;
    assert_eq!(stored["kind"], "person");
    assert_eq!(stored["codice_fiscale"], "RSSMRA80A01H501U");
}

#[tokio::test]
async fn a_person_and_a_business_round_trip() {
    let app = spawn_app().await;
    let customer = customer_without_billing(&app).await;
    let response = app.get_as(&customer.token, BILLING).await;
    assert_eq!(
        problem(response, 404).await["type"],
        "/problems/billing-data-missing"
    );

    let response = app
        .put_json_as(
            &customer.token,
            BILLING,
            &with(
                billing_person(),
                json!({ "codice_fiscale": "rssmra 80a01 h501u", "provincia": "rm" }),
            ),
        )
        .await;
    assert_eq!(response.status(), 200);
    let person = app.get_json(&customer.token, BILLING).await;
    assert_eq!(person["kind"], "person");
    assert_eq!(person["nome"], "Maria");
    assert_eq!(person["codice_fiscale"], "RSSMRA80A01H501U");
    assert_eq!(person["provincia"], "RM");
    assert_eq!(person["nazione"], "IT");
    assert_eq!(person["partita_iva"], Value::Null);
    assert_eq!(person["sdi_codice_destinatario"], "0000000");

    let response = app
        .put_json_as(&customer.token, BILLING, &billing_business())
        .await;
    assert_eq!(response.status(), 200);
    let business = app.get_json(&customer.token, BILLING).await;
    assert_eq!(business["kind"], "business");
    assert_eq!(business["denominazione"], "Studio Rossi S.r.l.");
    assert_eq!(business["partita_iva"], "00743110157");
    assert_eq!(business["codice_fiscale"], "00743110157");
    assert_eq!(
        business["nome"],
        Value::Null,
        "the person's name is not kept"
    );
    assert_eq!(business["codice_destinatario"], "M5UXCR1");
    assert_eq!(business["sdi_codice_destinatario"], "M5UXCR1");

    // By PEC, abroad.
    let abroad = with(
        billing_business(),
        json!({ "codice_destinatario": null, "pec": "Fatture@PEC.example.it", "nazione": "DE",
                "cap": "10115", "comune": "Berlin", "provincia": null }),
    );
    let response = app.put_json_as(&customer.token, BILLING, &abroad).await;
    assert_eq!(response.status(), 200);
    let stored = app.get_json(&customer.token, BILLING).await;
    assert_eq!(stored["pec"], "fatture@pec.example.it");
    assert_eq!(stored["provincia"], "EE");
    assert_eq!(stored["sdi_codice_destinatario"], "0000000");

    let mut conn = app.pool.get().unwrap();
    let audited: Vec<String> = audit_log::table
        .filter(audit_log::action.eq("user.billing_updated"))
        .filter(audit_log::subject_id.eq(&customer.user_id))
        .select(audit_log::details)
        .order(audit_log::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(audited.len(), 3);
    assert!(audited[1].contains("\"business\"") && !audited[1].contains("00743110157"));
}

#[tokio::test]
async fn no_order_without_billing_data_and_it_works_after() {
    let app = spawn_app().await;
    let customer = customer_without_billing(&app).await;
    app.credit(&customer.user_id, "500.00");
    let lines = json!([{ "product": "RIN-FIRMA", "quantity": 1 }]);
    let response = app.order(&customer.token, lines.clone()).await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "/problems/billing-data-missing");
    assert_eq!(body["errors"][0]["field"], "billing");
    assert_eq!(body["errors"][0]["rule"], "required");
    // By transfer too.
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "lines": lines, "payment_method": "bank_transfer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(response, 409).await["type"],
        "/problems/billing-data-missing"
    );
    // A top-up is not invoiced: it needs none.
    let response = app.top_up(&customer.token, "100.00", "bank_transfer").await;
    assert_eq!(response.status(), 201, "a top-up needs no billing data");

    app.give_billing_data(&customer).await;
    let response = app.order(&customer.token, lines).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_buyer_reads_and_writes_only_their_own_and_operators_have_none() {
    let app = spawn_app().await;
    let first = app.customer("visura").await;
    let second = customer_without_billing(&app).await;
    let response = app
        .put_json_as(&first.token, BILLING, &billing_business())
        .await;
    assert_eq!(response.status(), 200);
    let response = app.get_as(&second.token, BILLING).await;
    assert_eq!(
        response.status(),
        404,
        "the other buyer's data is not theirs"
    );
    let response = app
        .put_json_as(&second.token, BILLING, &billing_person())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.get_json(&first.token, BILLING).await["kind"],
        "business"
    );
    assert_eq!(app.get_json(&second.token, BILLING).await["kind"], "person");

    let operator = app.back_office("visura").await;
    let response = app.get_as(&operator.token, BILLING).await;
    assert_eq!(response.status(), 403);
    let response = app
        .put_json_as(&operator.token, BILLING, &billing_person())
        .await;
    assert_eq!(response.status(), 403);
    let response = app
        .client
        .get(format!("{}{BILLING}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_page_shows_errors_next_to_the_fields_and_saves() {
    let app = spawn_app().await;
    let customer = customer_without_billing(&app).await;
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;

    // The purchase starts at the billing form when there is none.
    let page = browser.get("/negozio/acquista").await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/negozio/profilo/fatturazione?dopo=acquista")
    );
    let page = browser
        .get("/negozio/profilo/fatturazione?dopo=acquista")
        .await;
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains("Prima del primo ordine servono i tuoi dati di fatturazione"));

    let bad = [
        ("kind", "business"),
        ("denominazione", "Studio Rossi S.r.l."),
        ("partita_iva", "00743110158"),
        ("indirizzo", "Via Roma 1"),
        ("cap", "0018"),
        ("comune", "Roma"),
        ("provincia", "XX"),
        ("nazione", "IT"),
        ("codice_destinatario", "ABC123"),
        ("pec", ""),
        ("dopo", "acquista"),
    ];
    let page = browser.post("/negozio/profilo/fatturazione", &bad).await;
    assert_eq!(page.status, 422);
    for (field, message) in [
        (
            "partita_iva",
            "L&#x27;ultima cifra della partita IVA non corrisponde",
        ),
        ("cap", "Il CAP ha esattamente 5 cifre."),
        ("provincia", "non è la sigla di una provincia italiana"),
        (
            "codice_destinatario",
            "Il codice destinatario ha esattamente 7 lettere o cifre.",
        ),
    ] {
        let marker = format!("<p class=\"field-error\" id=\"{field}-error\">");
        let at = page
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no error for {field}"));
        let text = &page.body[at..at + 300.min(page.body.len() - at)];
        assert!(
            text.contains(message) || text.contains(&message.replace("&#x27;", "'")),
            "{field}: {text}"
        );
    }
    assert!(
        page.body.contains("value=\"Studio Rossi S.r.l.\""),
        "what was typed stays"
    );
    assert!(!page.body.contains("id=\"comune-error\""));

    let mut good = bad.to_vec();
    for (field, value) in [
        ("partita_iva", "00743110157"),
        ("cap", "00184"),
        ("provincia", "rm"),
        ("codice_destinatario", "M5UXCR1"),
    ] {
        good.iter_mut().find(|(f, _)| *f == field).unwrap().1 = value;
    }
    let page = browser.post("/negozio/profilo/fatturazione", &good).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/negozio/acquista"));
    let page = browser.get("/negozio/acquista").await;
    assert_eq!(page.status, 200, "the purchase goes on");
    let stored = app.get_json(&customer.token, BILLING).await;
    assert_eq!(stored["provincia"], "RM");
    assert_eq!(stored["codice_destinatario"], "M5UXCR1");

    // From the profile, the form shows what is stored and says it saved.
    let page = browser.get("/negozio/profilo").await;
    assert!(page.body.contains("/negozio/profilo/fatturazione"));
    let mut person = vec![
        ("kind", "person"),
        ("denominazione", "ignorata"),
        ("nome", "Maria"),
        ("cognome", "Rossi"),
        ("codice_fiscale", "RSSMRA80A01H501U"),
        ("indirizzo", "Via Roma 1"),
        ("cap", "00184"),
        ("comune", "Roma"),
        ("provincia", "RM"),
    ];
    let page = browser.post("/negozio/profilo/fatturazione", &person).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/negozio/profilo/fatturazione?salvato=1")
    );
    let page = browser.get("/negozio/profilo/fatturazione?salvato=1").await;
    assert!(page.body.contains("Dati di fatturazione salvati."));
    assert!(page.body.contains("value=\"RSSMRA80A01H501U\""));
    assert!(!page.body.contains("ignorata"));

    // Without the CSRF token nothing is saved.
    person.insert(0, ("csrf_token", "x"));
    let page = browser
        .post_raw("/negozio/profilo/fatturazione", &person)
        .await;
    assert_eq!(page.status, 403);
}
