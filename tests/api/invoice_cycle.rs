//! The invoice cycle end to end, as an operator lives it: a sale's invoice leaves by PEC
//! (the loopback SMTP listener plays the PEC provider), the SdI's receipts are imported
//! and move it on; a rejected invoice is corrected and sent again until delivered; a
//! void with a refund issues a credit note that goes the same way; and the courtesy copy
//! says what the file says.

use rinnovo::startup::StartOptions;
use serde_json::{json, Value};

use crate::courtesy_copies::{bytes_as, text_of_pdf};
use crate::credit_notes::{coupon_ids, void_ok};
use crate::helpers::{spawn_app_with, SignedIn, TestApp};
use crate::invoices::{assert_valid, values};
use crate::sdi_receipts::{import_raw, notification};
use crate::sdi_transmission::{attachment, messages_with, pec_to, wait_for_status};
use crate::smtp::SmtpSink;

/// The order's documents as the buyer's API lists them.
async fn documents(app: &TestApp, buyer: &SignedIn, order_id: &str) -> Vec<Value> {
    let list = app
        .get_json(
            &buyer.token,
            &format!("/api/v1/orders/{order_id}/documents"),
        )
        .await;
    list.as_array().unwrap().clone()
}

/// Waits until the document's file has left by PEC, and returns that file as the SdI
/// received it: the message's attachment, which must be the stored file.
async fn sent_by_pec(app: &TestApp, sink: &SmtpSink, document: &Value) -> String {
    let file_name = document["file_name"].as_str().unwrap();
    wait_for_status(app, file_name, "sent").await;
    let messages = messages_with(sink, file_name);
    assert_eq!(messages.len(), 1, "{file_name} sent once");
    let (_, received) = attachment(&messages[0], file_name).unwrap();
    received
}

/// Imports the SdI's notification `kind` about `file_name`; it must be new.
async fn sdi_answers(app: &TestApp, operator: &SignedIn, kind: &str, file_name: &str) {
    let (name, xml) = notification(kind, file_name);
    let response = import_raw(app, &operator.token, &name, &xml).await;
    assert_eq!(response.status(), 201, "{kind} about {file_name}");
}

/// The document's status as its buyer's list shows it.
async fn status_of(app: &TestApp, buyer: &SignedIn, order_id: &str, id: &Value) -> String {
    documents(app, buyer, order_id)
        .await
        .into_iter()
        .find(|d| &d["id"] == id)
        .map(|d| d["status"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn invoices_and_credit_notes_go_to_the_sdi_and_come_back_delivered() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with(StartOptions::default(), &pec_to(port)).await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "500.00");
    let operator = app.back_office("visura").await;

    // A prepaid sale: its invoice leaves by PEC, exactly as stored, and is delivered.
    let response = app
        .order(
            &customer.token,
            json!([{ "product": "RIN-FIRMA", "quantity": 2 }]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    let order_id = order["id"].as_str().unwrap();
    let invoice = documents(&app, &customer, order_id).await.remove(0);
    let received = sent_by_pec(&app, &sink, &invoice).await;
    let stored = app
        .get_as(&customer.token, invoice["xml_url"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(received, stored);
    assert_eq!(
        status_of(&app, &customer, order_id, &invoice["id"]).await,
        "transmitted"
    );
    sdi_answers(
        &app,
        &operator,
        "RC",
        invoice["file_name"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        status_of(&app, &customer, order_id, &invoice["id"]).await,
        "delivered"
    );

    // Another sale, rejected by the SdI: corrected, sent again with a new file of the
    // same number, and delivered.
    let response = app
        .order(
            &customer.token,
            json!([{ "product": "RIN-FIRMA-CNS", "quantity": 1 }]),
        )
        .await;
    let second: Value = response.json().await.unwrap();
    let second_id = second["id"].as_str().unwrap();
    let rejected = documents(&app, &customer, second_id).await.remove(0);
    let first_file = rejected["file_name"].as_str().unwrap().to_owned();
    sent_by_pec(&app, &sink, &rejected).await;
    sdi_answers(&app, &operator, "NS", &first_file).await;
    assert_eq!(
        status_of(&app, &customer, second_id, &rejected["id"]).await,
        "rejected"
    );
    let queue = app
        .get_json(&operator.token, "/api/v1/backoffice/sdi/rejected")
        .await;
    assert_eq!(queue["rejected"][0]["id"], rejected["id"], "{queue}");
    let mut buyer = crate::helpers::billing_business();
    buyer["codice_destinatario"] = json!("KRRH6B9");
    let response = app
        .post_json_as(
            &operator.token,
            &format!(
                "/api/v1/backoffice/sdi/rejected/{}/resend",
                rejected["id"].as_str().unwrap()
            ),
            &json!({ "buyer": buyer }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let corrected = documents(&app, &customer, second_id).await.remove(0);
    assert_eq!(corrected["number"], rejected["number"]);
    assert_ne!(corrected["file_name"], rejected["file_name"]);
    let new_file = sent_by_pec(&app, &sink, &corrected).await;
    assert_eq!(values(&new_file, "CodiceDestinatario"), vec!["KRRH6B9"]);
    sdi_answers(
        &app,
        &operator,
        "RC",
        corrected["file_name"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        status_of(&app, &customer, second_id, &rejected["id"]).await,
        "delivered"
    );

    // A coupon of the first sale voided with a refund: a credit note of its value,
    // referring to the invoice, sent and delivered the same way.
    let coupons = coupon_ids(&app, &customer, order_id, "RIN-FIRMA").await;
    let voided = void_ok(&app, &operator, &coupons[0]).await;
    let listed = documents(&app, &customer, order_id).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let credit_note = listed[1].clone();
    assert_eq!(credit_note["kind"], "TD04");
    assert_eq!(voided["credit_note"], credit_note["number"]);
    assert_eq!(credit_note["gross_total"], voided["refunded"]);
    let credit_file = sent_by_pec(&app, &sink, &credit_note).await;
    assert_eq!(values(&credit_file, "TipoDocumento"), vec!["TD04"]);
    assert_eq!(
        values(&credit_file, "IdDocumento"),
        vec![invoice["number"].as_str().unwrap()]
    );
    sdi_answers(
        &app,
        &operator,
        "RC",
        credit_note["file_name"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        status_of(&app, &customer, order_id, &credit_note["id"]).await,
        "delivered"
    );

    // Every file the SdI received is valid.
    let files: Vec<(String, String)> = [&invoice, &corrected, &credit_note]
        .iter()
        .map(|d| {
            let name = d["file_name"].as_str().unwrap();
            let (_, xml) = attachment(&messages_with(&sink, name)[0], name).unwrap();
            (name.to_owned(), xml)
        })
        .collect();
    assert_valid(&files);

    // The courtesy copy of the invoice says its number, its buyer and its total.
    let (status, kind, pdf) = bytes_as(
        &app,
        &customer.token,
        &format!("/api/v1/invoices/{}/pdf", invoice["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/pdf"), "{kind}");
    let text = text_of_pdf(&pdf);
    assert!(text.contains("Copia di cortesia"), "{text}");
    assert!(text.contains(invoice["number"].as_str().unwrap()), "{text}");
    assert!(text.contains("Maria Rossi"), "{text}");
    let total = order["gross_total"].as_str().unwrap().replace('.', ",");
    assert!(text.contains(&format!("€ {total}")), "{text}");
}
