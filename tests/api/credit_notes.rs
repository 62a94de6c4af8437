//! Credit notes (TD04): every void of sold coupons with their money given back (the
//! back-office's void with a refund, a reversal by the bank) credits them with a credit
//! note referring to the order's invoice, numbered in its own series without gaps, its
//! file valid and queued for transmission; an order fulfilled before invoices has none.

use std::collections::BTreeSet;

use chrono::Datelike;
use diesel::prelude::*;
use rinnovo::db::schema::{audit_log, coupons, invoices, sdi_transmissions};
use rinnovo::invoices::{credit_coupons, CreditedCoupon, InvoiceError};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{problem, spawn_app, SignedIn, TestApp};
use crate::invoices::{
    assert_valid, file_name_is_the_sdis, prepaid_order, section, values, VISURA_TRANSMITTER,
};
use crate::statements::{camt053, import, Line as StatementLine};
use crate::web_client::{text_of, Browser};

fn year() -> i32 {
    chrono::Utc::now().year()
}

/// The `seq`-th credit note number of the Visura brand (series `V`) this year.
fn credit_note_number(seq: u32) -> String {
    format!("NC-V{}-{seq:06}", year())
}

async fn documents(app: &TestApp, token: &str, order_id: &str) -> Vec<Value> {
    let response = app
        .get_as(token, &format!("/api/v1/orders/{order_id}/documents"))
        .await;
    assert_eq!(response.status(), 200);
    response
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A document's file, by its `xml_url`: (SdI file name, XML).
async fn file_of(app: &TestApp, token: &str, document: &Value) -> (String, String) {
    let response = app
        .get_as(token, document["xml_url"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), 200);
    let name = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .split("filename=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    (name, response.text().await.unwrap())
}

/// The ids of the buyer's coupons of an order, of one product, in the order listed.
pub(crate) async fn coupon_ids(
    app: &TestApp,
    buyer: &SignedIn,
    order_id: &str,
    product: &str,
) -> Vec<String> {
    let list = app.get_json(&buyer.token, "/api/v1/coupons").await;
    list["coupons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["order_id"] == order_id && c["product_code"] == product)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) async fn void(app: &TestApp, operator: &SignedIn, coupon_id: &str) -> reqwest::Response {
    app.post_json_as(
        &operator.token,
        &format!("/api/v1/backoffice/coupons/{coupon_id}/void"),
        &json!({ "reason": "richiesta del cliente" }),
    )
    .await
}

pub(crate) async fn void_ok(app: &TestApp, operator: &SignedIn, coupon_id: &str) -> Value {
    let response = void(app, operator, coupon_id).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn money(value: &Value) -> rust_decimal::Decimal {
    value.as_str().unwrap().parse().unwrap()
}

/// The credit note's file says what the credit note is: TD04, its number, the invoice it
/// corrects (number and date), positive amounts adding up to its total, each tax the
/// rate's on its taxable, and no payment section.
fn assert_credits(xml: &str, note: &Value, invoice: &Value) {
    assert_eq!(values(xml, "TipoDocumento"), vec!["TD04"]);
    assert_eq!(
        values(xml, "Numero"),
        vec![note["number"].as_str().unwrap()]
    );
    let linked = section(xml, "DatiFattureCollegate");
    assert_eq!(
        values(linked, "IdDocumento"),
        vec![invoice["number"].as_str().unwrap()]
    );
    assert_eq!(
        values(linked, "Data"),
        vec![invoice["issue_date"].as_str().unwrap()]
    );
    let sum = |tag: &str| -> rust_decimal::Decimal {
        values(xml, tag)
            .iter()
            .map(|v| v.parse::<rust_decimal::Decimal>().unwrap())
            .sum()
    };
    let total: rust_decimal::Decimal = values(xml, "ImportoTotaleDocumento")[0].parse().unwrap();
    assert_eq!(total, money(&note["gross_total"]));
    assert_eq!(sum("PrezzoTotale"), money(&note["net_total"]));
    assert_eq!(sum("ImponibileImporto"), money(&note["net_total"]));
    assert_eq!(sum("Imposta"), money(&note["vat_total"]));
    assert_eq!(total, sum("ImponibileImporto") + sum("Imposta"));
    assert!(total > rust_decimal::Decimal::ZERO);
    for summary in values(xml, "DatiRiepilogo") {
        let rate: rust_decimal::Decimal = values(&summary, "AliquotaIVA")[0].parse().unwrap();
        let taxable: rust_decimal::Decimal =
            values(&summary, "ImponibileImporto")[0].parse().unwrap();
        let tax: rust_decimal::Decimal = values(&summary, "Imposta")[0].parse().unwrap();
        let exact = (taxable * rate / rust_decimal::Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(tax, exact, "{summary}");
    }
    assert!(values(xml, "DatiPagamento").is_empty(), "{xml}");
}

/// The files queued for transmission: (document id, file name, status).
fn queued(app: &TestApp) -> Vec<(String, String, String)> {
    sdi_transmissions::table
        .select((
            sdi_transmissions::invoice_id,
            sdi_transmissions::file_name,
            sdi_transmissions::status,
        ))
        .load(&mut app.pool.get().unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_void_issues_a_credit_note_of_the_refund_that_credits_the_invoice() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    app.credit(&customer.user_id, "500.00");
    let order = prepaid_order(
        &app,
        &customer,
        json!([
            { "product": "RIN-FIRMA", "quantity": 2 },
            { "product": "RIN-FIRMA-CNS", "quantity": 1 },
        ]),
    )
    .await;
    let order_id = order["id"].as_str().unwrap();
    let invoice = documents(&app, &customer.token, order_id).await.remove(0);
    let (_, invoice_xml) = file_of(&app, &customer.token, &invoice).await;
    // The profile changes after the sale: the credit note corrects the invoice, so it
    // keeps the buyer the invoice has.
    let changed = app
        .put_json_as(
            &customer.token,
            "/api/v1/me/billing",
            &crate::helpers::billing_business(),
        )
        .await;
    assert_eq!(changed.status(), 200);

    let coupon = &coupon_ids(&app, &customer, order_id, "RIN-FIRMA-CNS").await[0];
    let voided = void_ok(&app, &operator, coupon).await;
    // 26.00 + 22% = 31.72.
    assert_eq!(voided["refunded"], "31.72");
    assert_eq!(voided["credit_note"], credit_note_number(1).as_str());
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance, ledger);

    let listed = documents(&app, &customer.token, order_id).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["id"], invoice["id"]);
    let note = &listed[1];
    assert_eq!(note["kind"], "TD04");
    assert_eq!(note["number"], voided["credit_note"]);
    assert_eq!(note["credits_invoice"], invoice["id"]);
    assert_eq!(note["gross_total"], voided["refunded"]);
    assert_eq!(note["net_total"], "26.00");
    assert_eq!(note["vat_total"], "5.72");
    assert_eq!(note["status"], "issued");

    let (name, xml) = file_of(&app, &customer.token, note).await;
    assert!(file_name_is_the_sdis(&name, VISURA_TRANSMITTER), "{name}");
    assert_eq!(note["file_name"], name.as_str());
    assert_credits(&xml, note, &invoice);
    assert_eq!(values(&xml, "Quantita"), vec!["1.00"]);
    assert_eq!(values(&xml, "PrezzoUnitario"), vec!["26.00"]);
    assert_eq!(
        values(&xml, "Descrizione"),
        vec!["Coupon rinnovo firma + autenticazione"]
    );
    assert_eq!(
        section(&xml, "CessionarioCommittente"),
        section(&invoice_xml, "CessionarioCommittente"),
        "the buyer as on the invoice"
    );
    assert_eq!(
        section(&xml, "CedentePrestatore"),
        section(&invoice_xml, "CedentePrestatore")
    );
    assert_ne!(
        values(&xml, "ProgressivoInvio"),
        values(&invoice_xml, "ProgressivoInvio")
    );
    // Queued for the SdI; the running transmitter may already have sent it.
    let transmissions = queued(&app);
    assert!(
        transmissions.iter().any(|(id, file, status)| {
            id == note["id"].as_str().unwrap()
                && *file == name
                && (status == "pending" || status == "sent")
        }),
        "{transmissions:?}"
    );
    // The back-office of the brand sees it too; nobody else does.
    let office_view = documents(&app, &operator.token, order_id).await;
    assert_eq!(office_view.len(), 2);
    let stranger = app.customer("visura").await;
    let refused = app
        .get_as(&stranger.token, note["xml_url"].as_str().unwrap())
        .await;
    assert_eq!(
        problem(refused, 404).await["type"],
        "/problems/unknown-invoice"
    );
    assert_valid(&[(name, xml)]);
}

#[tokio::test]
async fn two_voids_take_consecutive_numbers_of_the_credit_series_alone() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    app.credit(&customer.user_id, "500.00");
    let order = prepaid_order(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 2 }]),
    )
    .await;
    let order_id = order["id"].as_str().unwrap();
    let mut numbers = Vec::new();
    for coupon in coupon_ids(&app, &customer, order_id, "RIN-FIRMA").await {
        let voided = void_ok(&app, &operator, &coupon).await;
        // 11.00 + 22% = 13.42.
        assert_eq!(voided["refunded"], "13.42");
        numbers.push(voided["credit_note"].as_str().unwrap().to_owned());
    }
    assert_eq!(numbers, vec![credit_note_number(1), credit_note_number(2)]);

    // Both credit notes together give back the invoice, not a cent more.
    let listed = documents(&app, &customer.token, order_id).await;
    let kinds: Vec<&str> = listed.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["TD01", "TD04", "TD04"]);
    let credited: rust_decimal::Decimal =
        listed[1..].iter().map(|d| money(&d["gross_total"])).sum();
    assert_eq!(credited, money(&listed[0]["gross_total"]));
    let mut files = Vec::new();
    for note in &listed[1..] {
        let (name, xml) = file_of(&app, &customer.token, note).await;
        assert_credits(&xml, note, &listed[0]);
        files.push((name, xml));
    }
    assert_valid(&files);

    // The invoice series went on without them.
    let next = prepaid_order(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
    )
    .await;
    assert_eq!(order["invoice_number"], format!("V{}-000001", year()));
    assert_eq!(next["invoice_number"], format!("V{}-000002", year()));
}

/// The guard under every caller: an invoice's credit notes never credit a coupon twice,
/// more units than it sold, nor a coupon it did not sell; nothing is stored when refused.
#[tokio::test]
async fn no_credit_note_credits_more_than_its_invoice_sold() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    app.credit(&customer.user_id, "500.00");
    let order = prepaid_order(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 2 }]),
    )
    .await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let ids = coupon_ids(&app, &customer, &order_id, "RIN-FIRMA").await;
    void_ok(&app, &operator, &ids[0]).await;

    let mut conn = app.pool.get().unwrap();
    let coupon = |id: &str, conn: &mut rinnovo::db::DbConnection| -> CreditedCoupon {
        coupons::table
            .filter(coupons::id.eq(id))
            .select((
                coupons::id,
                coupons::product_id,
                coupons::net_unit_cents,
                coupons::vat_rate_basis_points,
            ))
            .first(conn)
            .unwrap()
    };
    let (credited, left) = (coupon(&ids[0], &mut conn), coupon(&ids[1], &mut conn));
    let brand = rinnovo::brands::find(&mut conn, "visura").unwrap().unwrap();
    let now = chrono::Utc::now();
    let another_of_the_same = CreditedCoupon {
        id: Uuid::now_v7().to_string(),
        ..left.clone()
    };
    let unsold = CreditedCoupon {
        product_id: "another product".into(),
        ..left.clone()
    };
    for refused in [
        vec![credited],
        vec![left.clone(), another_of_the_same],
        vec![unsold],
    ] {
        let outcome = credit_coupons(&mut conn, &brand, &order_id, &refused, now);
        assert!(
            matches!(outcome, Err(InvoiceError::OverCredit { .. })),
            "{refused:?}: {outcome:?}"
        );
    }
    let notes: i64 = invoices::table
        .filter(invoices::kind.eq("TD04"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(notes, 1);
    // What is left to credit still can be (the guard alone: voiding is the caller's).
    let last = credit_coupons(&mut conn, &brand, &order_id, &[left], now).unwrap();
    assert_eq!(last.unwrap().number, credit_note_number(2));
}

/// An order paid by transfer: (its JSON, the RF code).
async fn transfer_order(app: &TestApp, customer: &SignedIn, quantity: u32) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({
            "lines": [{ "product": "RIN-FIRMA-CNS", "quantity": quantity }],
            "payment_method": "bank_transfer",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_reversal_credits_exactly_the_coupons_it_voids() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let order = transfer_order(&app, &customer, 3).await;
    let order_id = order["id"].as_str().unwrap();
    let gross = order["gross_total"].as_str().unwrap();
    let rf = order["transfer"]["reference"].as_str().unwrap();
    let paid = import(
        &app,
        &operator,
        &camt053(8, &[StatementLine::credit(gross, rf, "BANKREF-NC-1")]),
    )
    .await;
    assert!(paid.status().is_success());
    // One coupon voided by the back-office first: its own credit note.
    let coupons = coupon_ids(&app, &customer, order_id, "RIN-FIRMA-CNS").await;
    assert_eq!(coupons.len(), 3);
    let first = void_ok(&app, &operator, &coupons[0]).await;
    assert_eq!(first["credit_note"], credit_note_number(1).as_str());

    // The transfer is recalled: the two coupons left are voided, one credit note for both.
    let reversed = import(
        &app,
        &operator,
        &camt053(
            8,
            &[StatementLine::credit(gross, rf, "BANKREF-NC-2").reversed()],
        ),
    )
    .await;
    assert!(reversed.status().is_success());
    let list = app.get_json(&customer.token, "/api/v1/coupons").await;
    assert!(list["coupons"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "voided"));

    let listed = documents(&app, &customer.token, order_id).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let (invoice, note) = (&listed[0], &listed[2]);
    assert_eq!(note["number"], credit_note_number(2).as_str());
    assert_eq!(note["credits_invoice"], invoice["id"]);
    // 2 × 26.00 = 52.00, 22% = 11.44.
    assert_eq!(note["net_total"], "52.00");
    assert_eq!(note["gross_total"], "63.44");
    let (name, xml) = file_of(&app, &customer.token, note).await;
    assert_credits(&xml, note, invoice);
    assert_eq!(values(&xml, "Quantita"), vec!["2.00"]);
    let credited: rust_decimal::Decimal =
        listed[1..].iter().map(|d| money(&d["gross_total"])).sum();
    assert_eq!(credited, money(&invoice["gross_total"]));
    let credited_by_note: Vec<String> = rinnovo::db::schema::credited_coupons::table
        .filter(
            rinnovo::db::schema::credited_coupons::credit_note_id.eq(note["id"].as_str().unwrap()),
        )
        .select(rinnovo::db::schema::credited_coupons::coupon_id)
        .order(rinnovo::db::schema::credited_coupons::coupon_id)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    let mut left = coupons[1..].to_vec();
    left.sort();
    assert_eq!(
        credited_by_note, left,
        "exactly the coupons the reversal voided"
    );
    let audit: Vec<String> = audit_log::table
        .filter(audit_log::action.eq("payment.reversed"))
        .select(audit_log::details)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    let details: Value = serde_json::from_str(&audit[0]).unwrap();
    assert_eq!(details["coupons_voided"], 2);
    assert_eq!(details["credit_note"], note["number"]);
    assert!(queued(&app)
        .iter()
        .any(|(id, _, _)| id == note["id"].as_str().unwrap()));
    assert_valid(&[(name, xml)]);
}

/// Twenty voids at once, of coupons of five orders of several buyers: twenty credit
/// notes numbered 1 to 20 with no gap or repeat, each file valid and queued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_voids_take_consecutive_credit_note_numbers() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let mut coupons = Vec::new();
    let mut buyers = Vec::new();
    for _ in 0..5 {
        let customer = app.customer("visura").await;
        app.credit(&customer.user_id, "500.00");
        let order = prepaid_order(
            &app,
            &customer,
            json!([{ "product": "RIN-FIRMA", "quantity": 4 }]),
        )
        .await;
        let order_id = order["id"].as_str().unwrap().to_owned();
        for id in coupon_ids(&app, &customer, &order_id, "RIN-FIRMA").await {
            coupons.push(id);
        }
        buyers.push((customer, order_id));
    }
    assert_eq!(coupons.len(), 20);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(coupons.len()));
    let mut handles = Vec::new();
    for coupon in coupons {
        let (client, token) = (app.client.clone(), operator.token.clone());
        let url = format!("{}/api/v1/backoffice/coupons/{coupon}/void", app.address);
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "reason": "annullo in blocco" }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, 200, "{body}");
            body["credit_note"].as_str().unwrap().to_owned()
        }));
    }
    let mut numbers = BTreeSet::new();
    for handle in handles {
        assert!(
            numbers.insert(handle.await.unwrap()),
            "a number given twice"
        );
    }
    let expected: BTreeSet<String> = (1..=20).map(credit_note_number).collect();
    assert_eq!(numbers, expected);

    let mut files = Vec::new();
    for (customer, order_id) in &buyers {
        let listed = documents(&app, &customer.token, order_id).await;
        assert_eq!(listed.len(), 5, "the invoice and four credit notes");
        for note in &listed[1..] {
            let (name, xml) = file_of(&app, &customer.token, note).await;
            assert_credits(&xml, note, &listed[0]);
            files.push((name, xml));
        }
    }
    let queued = queued(&app);
    assert_eq!(queued.len(), 25, "five invoices and twenty credit notes");
    let names: BTreeSet<&String> = queued.iter().map(|(_, name, _)| name).collect();
    assert_eq!(names.len(), 25);
    assert_valid(&files);
}

/// An order fulfilled before invoices were issued: voiding its coupon still refunds it,
/// with no credit note (there is no invoice to correct), and the audit log says why.
#[tokio::test]
async fn a_legacy_order_without_an_invoice_is_voided_without_a_credit_note() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    app.credit(&customer.user_id, "13.42");
    let order = prepaid_order(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
    )
    .await;
    let order_id = order["id"].as_str().unwrap();
    {
        // As the orders fulfilled before invoices existed are stored: no invoice.
        let mut conn = app.pool.get().unwrap();
        diesel::delete(sdi_transmissions::table)
            .execute(&mut conn)
            .unwrap();
        diesel::delete(invoices::table.filter(invoices::order_id.eq(order_id)))
            .execute(&mut conn)
            .unwrap();
    }
    let coupon = coupon_ids(&app, &customer, order_id, "RIN-FIRMA").await[0].clone();
    let voided = void_ok(&app, &operator, &coupon).await;
    assert_eq!(voided["refunded"], "13.42");
    assert_eq!(voided["credit_note"], Value::Null);
    assert_eq!(
        app.prepaid_balance_and_ledger_sum(&customer.user_id)
            .0
            .to_string(),
        "13.42"
    );
    assert!(documents(&app, &customer.token, order_id).await.is_empty());
    assert!(queued(&app).is_empty());
    let details: String = audit_log::table
        .filter(audit_log::action.eq("coupon.voided"))
        .filter(audit_log::subject_id.eq(&coupon))
        .select(audit_log::details)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["credit_note"], Value::Null);
    assert!(
        details["no_credit_note"]
            .as_str()
            .unwrap()
            .contains("no invoice"),
        "{details}"
    );
}

/// The void page says which credit note credits the coupon.
#[tokio::test]
async fn the_void_page_names_the_credit_note() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    app.credit(&customer.user_id, "100.00");
    let order = prepaid_order(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
    )
    .await;
    let coupon =
        coupon_ids(&app, &customer, order["id"].as_str().unwrap(), "RIN-FIRMA").await[0].clone();
    let (office, _) = Browser::signed_in(&app, &operator.email).await;
    let page = office
        .post(
            "/backoffice/coupon",
            &[
                ("coupon_id", coupon.as_str()),
                ("reason", "acquistato per errore"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        text_of(&page.body, "nota-di-credito"),
        credit_note_number(1)
    );
}
