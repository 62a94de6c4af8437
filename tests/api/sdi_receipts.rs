//! The SdI's receipts: imported by the back-office, each once, moving its document on
//! (delivered, rejected, not delivered); the rejected queue, the correction and the
//! re-send with a new file; the buyer's email after a mancata consegna; who may do it;
//! files that are not notifications.

use std::path::Path;
use std::time::Duration;

use diesel::prelude::*;
use rinnovo::db::schema::{audit_log, invoices, sdi_receipts, sdi_transmissions};
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, spawn_app_with_smtp, SignedIn, TestApp};
use crate::invoices::assert_valid;
use crate::smtp::{assert_email_snapshot, decoded, SmtpSink};

/// The fixture `tests/fixtures/sdi/IT01234567897_00001_<kind>_001.xml`, about the
/// document file `about`: (the notification's own file name, its content).
pub(crate) fn notification(kind: &str, about: &str) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "tests/fixtures/sdi/IT01234567897_00001_{kind}_001.xml"
    ));
    let text = std::fs::read_to_string(path).unwrap();
    let stem = about.strip_suffix(".xml").unwrap();
    (
        format!("{stem}_{kind}_001.xml"),
        text.replace("IT01234567897_00001.xml", about),
    )
}

/// POSTs one notification as the raw body, named by `file_name`.
pub(crate) async fn import_raw(
    app: &TestApp,
    token: &str,
    name: &str,
    xml: &str,
) -> reqwest::Response {
    app.client
        .post(format!(
            "{}/api/v1/backoffice/sdi/receipts?file_name={name}",
            app.address
        ))
        .bearer_auth(token)
        .header("content-type", "application/xml")
        .body(xml.to_owned())
        .send()
        .await
        .unwrap()
}

/// POSTs notifications as the `file` parts of a multipart form.
async fn import_form(app: &TestApp, token: &str, files: &[(String, String)]) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (name, xml) in files {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(xml.clone().into_bytes()).file_name(name.clone()),
        );
    }
    app.client
        .post(format!("{}/api/v1/backoffice/sdi/receipts", app.address))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// A prepaid order of the customer: (order id, its invoice's id and file name).
async fn invoiced_order(app: &TestApp, customer: &SignedIn) -> (String, String, String) {
    app.credit(&customer.user_id, "100.00");
    let response = app
        .order(
            &customer.token,
            json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    let order_id = order["id"].as_str().unwrap().to_owned();
    let documents = app
        .get_json(
            &customer.token,
            &format!("/api/v1/orders/{order_id}/documents"),
        )
        .await;
    let invoice = &documents[0];
    (
        order_id,
        invoice["id"].as_str().unwrap().to_owned(),
        invoice["file_name"].as_str().unwrap().to_owned(),
    )
}

/// (status, file name, identificativo SdI, status_changed_at) of the document.
fn stored(app: &TestApp, id: &str) -> (String, String, Option<String>, chrono::NaiveDateTime) {
    invoices::table
        .find(id)
        .select((
            invoices::status,
            invoices::file_name,
            invoices::identificativo_sdi,
            invoices::status_changed_at,
        ))
        .first(&mut app.pool.get().unwrap())
        .unwrap()
}

fn receipt_count(app: &TestApp) -> i64 {
    sdi_receipts::table
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_delivery_receipt_delivers_the_invoice_once_and_never_back() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (_, invoice_id, file) = invoiced_order(&app, &customer).await;
    assert_eq!(stored(&app, &invoice_id).0, "issued");

    let (name, rc) = notification("RC", &file);
    let response = import_raw(&app, &operator.token, &name, &rc).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let receipt = &body["receipts"][0];
    assert_eq!(receipt["result"], "applied", "{body}");
    assert_eq!(receipt["kind"], "RC");
    assert_eq!(receipt["invoice_id"], invoice_id.as_str());
    assert_eq!(receipt["invoice_status"], "delivered");
    let (status, _, identificativo, changed_at) = stored(&app, &invoice_id);
    assert_eq!(status, "delivered");
    assert_eq!(identificativo.as_deref(), Some("8123456701"));

    // The same file again: nothing changes, and the answer says so.
    let again = import_raw(&app, &operator.token, &name, &rc).await;
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["receipts"][0]["result"], "already_imported");
    assert_eq!(stored(&app, &invoice_id).3, changed_at);
    assert_eq!(receipt_count(&app), 1);
    // Another notification under the same name is not that file.
    let forged = rc.replace("7412589630", "7412589699");
    let conflict = problem(import_raw(&app, &operator.token, &name, &forged).await, 409).await;
    assert_eq!(conflict["type"], "/problems/sdi-notification-conflict");

    // A scarto arriving after the delivery never moves it back; a decorrenza termini is
    // kept and changes nothing.
    let (ns_name, ns) = notification("NS", &file);
    let (dt_name, dt) = notification("DT", &file);
    let response = import_form(&app, &operator.token, &[(ns_name, ns), (dt_name, dt)]).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["receipts"][0]["result"], "no_effect", "{body}");
    assert_eq!(body["receipts"][1]["result"], "informational", "{body}");
    assert_eq!(stored(&app, &invoice_id).0, "delivered");
    assert_eq!(receipt_count(&app), 3);

    let audited: i64 = audit_log::table
        .filter(audit_log::action.eq("sdi.receipt_imported"))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(audited, 3, "each new notification is audited");
}

#[tokio::test]
async fn a_rejected_invoice_is_corrected_sent_again_and_delivered() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (order_id, invoice_id, first_file) = invoiced_order(&app, &customer).await;
    let number: String = invoices::table
        .find(&invoice_id)
        .select(invoices::number)
        .first(&mut app.pool.get().unwrap())
        .unwrap();

    let (ns_name, ns) = notification("NS", &first_file);
    let response = import_form(&app, &operator.token, &[(ns_name.clone(), ns)]).await;
    assert_eq!(response.status(), 201);
    assert_eq!(stored(&app, &invoice_id).0, "rejected");

    // In the queue with the SdI's codes and the day to send it again by.
    let queue = app
        .get_json(&operator.token, "/api/v1/backoffice/sdi/rejected")
        .await;
    let rejected = queue["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{queue}");
    assert_eq!(queue["total"], 1, "{queue}");
    assert_eq!(rejected[0]["id"], invoice_id.as_str());
    assert_eq!(rejected[0]["number"], number.as_str());
    assert_eq!(rejected[0]["scarto_file_name"], ns_name.as_str());
    let codes: Vec<&str> = rejected[0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["00311", "00305"]);
    assert_eq!(
        rejected[0]["errors"][0]["hint"],
        "Verificare che il codice destinatario sia corretto e attivo"
    );
    // Received by the SdI on 1 December (Italian time): five days.
    assert_eq!(rejected[0]["resend_by"], "2026-12-06");

    // The correction follows the billing data's rules, every field named.
    let path = format!("/api/v1/backoffice/sdi/rejected/{invoice_id}/resend");
    let mut buyer = crate::helpers::billing_business();
    buyer["cap"] = json!("2012");
    buyer["codice_destinatario"] = json!("ABC12");
    let refused = problem(
        app.post_json_as(&operator.token, &path, &json!({ "buyer": buyer }))
            .await,
        400,
    )
    .await;
    let fields: Vec<(&str, &str)> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("buyer.cap", "cap"),
            ("buyer.codice_destinatario", "codice_destinatario")
        ],
        "{refused}"
    );
    assert_eq!(stored(&app, &invoice_id).0, "rejected", "nothing changed");

    buyer["cap"] = json!("20121");
    buyer["codice_destinatario"] = json!("KRRH6B9");
    let response = app
        .post_json_as(&operator.token, &path, &json!({ "buyer": buyer }))
        .await;
    assert_eq!(response.status(), 200);
    let resent: Value = response.json().await.unwrap();
    assert_eq!(resent["number"], number.as_str());
    assert_eq!(resent["status"], "issued");
    assert_eq!(resent["previous_file_name"], first_file.as_str());
    assert_eq!(resent["buyer_corrected"], true);
    let new_file = resent["file_name"].as_str().unwrap().to_owned();
    assert_ne!(new_file, first_file);
    let (status, current_file, identificativo, _) = stored(&app, &invoice_id);
    assert_eq!(
        (status.as_str(), current_file.as_str()),
        ("issued", new_file.as_str())
    );
    assert_eq!(identificativo, None);

    // The new file is queued, valid, the same document under a new progressivo.
    let queued: Vec<(String, String)> = sdi_transmissions::table
        .filter(sdi_transmissions::invoice_id.eq(&invoice_id))
        .order(sdi_transmissions::created_at.asc())
        .select((sdi_transmissions::file_name, sdi_transmissions::xml))
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].0, first_file);
    assert_eq!(queued[1].0, new_file);
    let (old_xml, new_xml) = (&queued[0].1, &queued[1].1);
    assert_valid(&[(new_file.clone(), new_xml.clone())]);
    let leaf = |xml: &str, tag: &str| {
        let open = format!("<{tag}>");
        let start = xml.find(&open).unwrap() + open.len();
        xml[start..start + xml[start..].find('<').unwrap()].to_owned()
    };
    assert_eq!(leaf(new_xml, "Numero"), number);
    assert_eq!(leaf(new_xml, "Data"), leaf(old_xml, "Data"));
    assert_eq!(
        leaf(new_xml, "ImportoTotaleDocumento"),
        leaf(old_xml, "ImportoTotaleDocumento")
    );
    let progressivo = resent["progressivo_invio"].as_str().unwrap();
    assert_eq!(leaf(new_xml, "ProgressivoInvio"), progressivo);
    assert_ne!(leaf(old_xml, "ProgressivoInvio"), progressivo);
    assert_eq!(new_file, format!("IT01234567897_{progressivo}.xml"));
    assert_eq!(leaf(new_xml, "CodiceDestinatario"), "KRRH6B9");
    assert!(new_xml.contains("<CAP>20121</CAP>"), "{new_xml}");
    assert!(new_xml.contains("<Denominazione>Studio Rossi S.r.l.</Denominazione>"));
    let documents = app
        .get_json(
            &customer.token,
            &format!("/api/v1/orders/{order_id}/documents"),
        )
        .await;
    assert_eq!(documents[0]["file_name"], new_file.as_str());

    // A receipt about the rejected file no longer touches it; the one about the new
    // file delivers it.
    let (old_rc_name, old_rc) = notification("RC", &first_file);
    let response = import_raw(&app, &operator.token, &old_rc_name, &old_rc).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["receipts"][0]["result"], "earlier_file", "{body}");
    // Untouched: still waiting for its new file's receipt (the transmitter may have sent
    // the new file meanwhile).
    let status = stored(&app, &invoice_id).0;
    assert!(
        ["issued", "transmitted"].contains(&status.as_str()),
        "{status}"
    );
    let (rc_name, rc) = notification("RC", &new_file);
    let response = import_raw(&app, &operator.token, &rc_name, &rc).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["receipts"][0]["result"], "applied", "{body}");
    assert_eq!(stored(&app, &invoice_id).0, "delivered");

    let queue = app
        .get_json(&operator.token, "/api/v1/backoffice/sdi/rejected")
        .await;
    assert_eq!(queue["rejected"], json!([]));
    let again = problem(
        app.post_json_as(&operator.token, &path, &json!({})).await,
        409,
    )
    .await;
    assert_eq!(again["type"], "/problems/invoice-not-rejected");
    let audited: i64 = audit_log::table
        .filter(audit_log::action.eq("invoice.resent"))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn a_rejected_invoice_can_be_sent_again_unchanged() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (_, invoice_id, first_file) = invoiced_order(&app, &customer).await;
    let (ns_name, ns) = notification("NS", &first_file);
    import_raw(&app, &operator.token, &ns_name, &ns).await;
    let response = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/sdi/rejected/{invoice_id}/resend"),
            &json!({ "buyer": null }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let resent: Value = response.json().await.unwrap();
    assert_eq!(resent["buyer_corrected"], false);
    let xml: String = sdi_transmissions::table
        .filter(sdi_transmissions::file_name.eq(resent["file_name"].as_str().unwrap()))
        .select(sdi_transmissions::xml)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    // The helpers' person, as the invoice had her.
    assert!(xml.contains("<Nome>Maria</Nome>") && xml.contains("<CAP>00184</CAP>"));
    assert_valid(&[(resent["file_name"].as_str().unwrap().to_owned(), xml)]);
}

#[tokio::test]
async fn a_mancata_consegna_tells_the_buyer_where_the_invoice_is() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (order_id, invoice_id, file) = invoiced_order(&app, &customer).await;
    let (name, mc) = notification("MC", &file);
    let response = import_raw(&app, &operator.token, &name, &mc).await;
    assert_eq!(response.status(), 201);
    assert_eq!(stored(&app, &invoice_id).0, "not_delivered");

    let started = std::time::Instant::now();
    let message = loop {
        let found = sink.messages().into_iter().find(|m| {
            let m = decoded(m);
            m.contains("cassetto fiscale") && m.contains(&customer.email)
        });
        if let Some(message) = found {
            break decoded(&message);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no email to the buyer: {:?}",
            sink.messages().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        message.contains(&format!("/negozio/ordini/{order_id}")),
        "{message}"
    );
    assert!(message.contains("area riservata"), "{message}");
    assert_email_snapshot("invoice_not_delivered", &message);
    // Importing it again sends nothing more.
    import_raw(&app, &operator.token, &name, &mc).await;
    let kinds: i64 = rinnovo::db::schema::emails::table
        .filter(rinnovo::db::schema::emails::kind.eq("invoice_not_delivered"))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(kinds, 1);
}

#[tokio::test]
async fn unknown_files_are_kept_and_other_brands_and_customers_are_refused() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let lextel = app.back_office("lextel").await;
    let (_, invoice_id, file) = invoiced_order(&app, &customer).await;

    let (name, rc) = notification("RC", "IT01234567897_ZZZZZ.xml");
    let response = import_raw(&app, &operator.token, &name, &rc).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["receipts"][0]["result"], "unmatched");
    assert_eq!(body["receipts"][0]["invoice_id"], Value::Null);
    let unmatched = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/sdi/receipts?unmatched=true",
        )
        .await;
    assert_eq!(unmatched["receipts"].as_array().unwrap().len(), 1);
    assert_eq!(unmatched["receipts"][0]["file_name"], name.as_str());

    // Another brand's operator: Visura's file is no document of theirs.
    let (ns_name, ns) = notification("NS", &file);
    let response = import_raw(&app, &lextel.token, &ns_name, &ns).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["receipts"][0]["result"], "unmatched", "{body}");
    // Not rejected: still issued, or transmitted if the running transmitter sent it since.
    let status = stored(&app, &invoice_id).0;
    assert!(status == "issued" || status == "transmitted", "{status}");
    let theirs = app
        .get_json(&lextel.token, "/api/v1/backoffice/sdi/receipts")
        .await;
    assert_eq!(theirs["receipts"].as_array().unwrap().len(), 1);
    // Rejected in Visura: Lextel neither sees it in its queue nor re-sends it.
    import_raw(&app, &operator.token, &ns_name, &ns).await;
    assert_eq!(stored(&app, &invoice_id).0, "rejected");
    let queue = app
        .get_json(&lextel.token, "/api/v1/backoffice/sdi/rejected")
        .await;
    assert_eq!(queue["rejected"], json!([]));
    let path = format!("/api/v1/backoffice/sdi/rejected/{invoice_id}/resend");
    let refused = problem(
        app.post_json_as(&lextel.token, &path, &json!({})).await,
        404,
    )
    .await;
    assert_eq!(refused["type"], "/problems/unknown-invoice");

    // Customers do none of it; nobody signed out either.
    for response in [
        import_raw(&app, &customer.token, &name, &rc).await,
        app.get_as(&customer.token, "/api/v1/backoffice/sdi/receipts")
            .await,
        app.get_as(&customer.token, "/api/v1/backoffice/sdi/rejected")
            .await,
        app.post_json_as(&customer.token, &path, &json!({})).await,
    ] {
        problem(response, 403).await;
    }
    let anonymous = app.get("/api/v1/backoffice/sdi/rejected").await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(stored(&app, &invoice_id).0, "rejected");
}

#[tokio::test]
async fn malformed_files_get_a_422_naming_the_rule_and_import_nothing() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let (rc_name, rc) = notification("RC", "IT01234567897_00009.xml");
    let cases = [
        ("not-xml_RC_001.xml", "this is not < xml".to_owned(), "xml"),
        (
            "invoice.xml",
            "<p:FatturaElettronica xmlns:p=\"x\"/>".to_owned(),
            "known_notification",
        ),
        (
            "no-name_RC_001.xml",
            rc.replace("<NomeFile>IT01234567897_00009.xml</NomeFile>", ""),
            "required_element",
        ),
        (
            "bad-date_RC_001.xml",
            rc.replace("2026-12-01T10:16:05.000+01:00", "ieri"),
            "date_time",
        ),
        (
            "IT01234567897_00009_NS_001.xml",
            rc.clone(),
            "file_name_kind",
        ),
    ];
    for (name, xml, rule) in cases {
        let refused = problem(import_raw(&app, &operator.token, name, &xml).await, 422).await;
        assert_eq!(refused["type"], "/problems/invalid-sdi-notification");
        assert_eq!(refused["errors"][0]["field"], "file", "{refused}");
        assert_eq!(refused["errors"][0]["rule"], rule, "{refused}");
    }
    // One bad file among good ones: nothing is imported.
    let response = import_form(
        &app,
        &operator.token,
        &[
            (rc_name.clone(), rc.clone()),
            ("x.xml".into(), "<a>".into()),
        ],
    )
    .await;
    problem(response, 422).await;
    assert_eq!(receipt_count(&app), 0);
    // No name, no file.
    let response = app
        .client
        .post(format!("{}/api/v1/backoffice/sdi/receipts", app.address))
        .bearer_auth(&operator.token)
        .body(rc.clone())
        .send()
        .await
        .unwrap();
    let refused = problem(response, 400).await;
    assert_eq!(refused["errors"][0]["field"], "file_name", "{refused}");
    let refused = problem(import_raw(&app, &operator.token, &rc_name, "").await, 400).await;
    assert_eq!(refused["errors"][0]["field"], "file", "{refused}");
    assert_eq!(receipt_count(&app), 0);
}

#[tokio::test]
async fn the_back_office_pages_import_several_files_and_correct_a_rejected_invoice() {
    use crate::web_client::{text_of, Browser};
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (_, invoice_id, file) = invoiced_order(&app, &customer).await;
    let (office, _) = Browser::signed_in(&app, &operator.email).await;

    let page = office.get("/backoffice/ricevute-sdi").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("type=\"file\" multiple"),
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"/backoffice/fatture-scartate\""));

    // Two files in one upload, the token first as a browser sends it.
    let (ns_name, ns) = notification("NS", &file);
    let (unknown_name, unknown) = notification("RC", "IT01234567897_ZZZZZ.xml");
    let mut form = reqwest::multipart::Form::new().text("csrf_token", office.csrf.clone());
    for (name, xml) in [(&ns_name, &ns), (&unknown_name, &unknown)] {
        form = form.part(
            "file",
            reqwest::multipart::Part::text(xml.clone()).file_name(name.clone()),
        );
    }
    let response = app
        .client
        .post(format!("{}/backoffice/ricevute-sdi", app.address))
        .header("cookie", office.cookie_header())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("class=\"result-applied\""), "{body}");
    assert!(body.contains("class=\"result-unmatched\""), "{body}");
    assert!(body.contains("nessun documento ha questo file"), "{body}");
    assert_eq!(stored(&app, &invoice_id).0, "rejected");

    let queue = office.get("/backoffice/fatture-scartate").await;
    assert_eq!(queue.status, 200);
    assert!(
        queue.body.contains("<strong>00311</strong>"),
        "{}",
        queue.body
    );
    assert!(queue.body.contains("06/12/2026"), "{}", queue.body);
    let detail_path = format!("/backoffice/fatture-scartate/{invoice_id}");
    let detail = office.get(&detail_path).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(
        detail.body.contains("value=\"Maria\""),
        "the buyer as the file had her"
    );
    assert_eq!(
        text_of(&detail.body, "entro").split(' ').next().unwrap(),
        "06/12/2026"
    );

    // A wrong CAP is refused next to its field; a right one sends it again.
    let mut fields = vec![
        ("kind", "person"),
        ("nome", "Maria"),
        ("cognome", "Rossi"),
        ("codice_fiscale", "RSSMRA80A01H501U"),
        ("indirizzo", "Via Roma 1"),
        ("cap", "0018"),
        ("comune", "Roma"),
        ("provincia", "RM"),
        ("nazione", "IT"),
        ("codice_destinatario", ""),
        ("pec", "maria.rossi@pec.example.it"),
    ];
    let refused = office
        .post(&format!("{detail_path}/correggi"), &fields)
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("id=\"cap-error\""),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("value=\"0018\""),
        "what was typed is kept"
    );
    assert_eq!(stored(&app, &invoice_id).0, "rejected");
    fields[5] = ("cap", "00185");
    let done = office
        .post(&format!("{detail_path}/correggi"), &fields)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("/backoffice/fatture-scartate?fatto=reinviata")
    );
    let (status, new_file, _, _) = stored(&app, &invoice_id);
    assert_eq!(status, "issued");
    assert_ne!(new_file, file);
    let xml: String = invoices::table
        .find(&invoice_id)
        .select(invoices::xml)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(xml.contains("<CAP>00185</CAP>"));
    assert!(xml.contains("<PECDestinatario>maria.rossi@pec.example.it</PECDestinatario>"));
    assert_valid(&[(new_file, xml)]);
    let queue = office
        .get("/backoffice/fatture-scartate?fatto=reinviata")
        .await;
    assert!(queue.body.contains("Nessun documento scartato in attesa."));
    assert!(queue.body.contains("id=\"fatto\""));

    // Customers have no back-office page.
    let (shopper, _) = Browser::signed_in(&app, &customer.email).await;
    assert_eq!(
        shopper.get("/backoffice/fatture-scartate").await.status,
        403
    );
    assert_eq!(shopper.get(&detail_path).await.status, 403);
}

/// The same receipt imported eight times at once: stored once, applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_receipt_imported_at_once_is_applied_once() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (_, invoice_id, file) = invoiced_order(&app, &customer).await;
    let (name, rc) = notification("RC", &file);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let imports: Vec<_> = (0..8)
        .map(|_| {
            let (client, barrier) = (app.client.clone(), barrier.clone());
            let url = format!(
                "{}/api/v1/backoffice/sdi/receipts?file_name={name}",
                app.address
            );
            let (token, rc) = (operator.token.clone(), rc.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .body(rc)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                (
                    status,
                    body["receipts"][0]["result"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for import in imports {
        results.push(import.await.unwrap());
    }
    let applied = results.iter().filter(|(_, r)| r == "applied").count();
    let again = results
        .iter()
        .filter(|(status, r)| *status == 200 && r == "already_imported")
        .count();
    assert_eq!((applied, again), (1, 7), "{results:?}");
    assert_eq!(receipt_count(&app), 1);
    assert_eq!(stored(&app, &invoice_id).0, "delivered");
    let bad = problem(
        import_raw(&app, &operator.token, "..%2F..%2Fetc%2Fpasswd", &rc).await,
        400,
    )
    .await;
    assert_eq!(bad["errors"][0]["rule"], "sdi_file_name", "{bad}");
}

/// A credit note is a document like an invoice: rejected, sent again (still a TD04 that
/// refers to its invoice), and a mancata consegna about it tells the buyer.
#[tokio::test]
async fn a_rejected_credit_note_is_sent_again_as_a_credit_note() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (order_id, _, _) = invoiced_order(&app, &customer).await;
    let coupons = app.get_json(&customer.token, "/api/v1/coupons").await;
    let coupon_id = coupons["coupons"][0]["id"].as_str().unwrap().to_owned();
    let voided = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/coupons/{coupon_id}/void"),
            &json!({ "reason": "richiesta del cliente" }),
        )
        .await;
    assert_eq!(voided.status(), 200);
    let documents = app
        .get_json(
            &customer.token,
            &format!("/api/v1/orders/{order_id}/documents"),
        )
        .await;
    let note = &documents[1];
    assert_eq!(note["kind"], "TD04", "{documents}");
    let note_id = note["id"].as_str().unwrap().to_owned();
    let note_file = note["file_name"].as_str().unwrap().to_owned();

    let (ns_name, ns) = notification("NS", &note_file);
    import_raw(&app, &operator.token, &ns_name, &ns).await;
    assert_eq!(stored(&app, &note_id).0, "rejected");
    let response = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/sdi/rejected/{note_id}/resend"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let resent: Value = response.json().await.unwrap();
    let new_file = resent["file_name"].as_str().unwrap().to_owned();
    let xml: String = invoices::table
        .find(&note_id)
        .select(invoices::xml)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(xml.contains("<TipoDocumento>TD04</TipoDocumento>"), "{xml}");
    assert!(xml.contains("<DatiFattureCollegate>"), "{xml}");
    assert_valid(&[(new_file.clone(), xml)]);

    let (mc_name, mc) = notification("MC", &new_file);
    import_raw(&app, &operator.token, &mc_name, &mc).await;
    assert_eq!(stored(&app, &note_id).0, "not_delivered");
    // Before it is sent the email is its context; once sent, its subject (the dispatcher
    // clears the context), which names the document too.
    let (context, subject): (String, String) = rinnovo::db::schema::emails::table
        .filter(rinnovo::db::schema::emails::kind.eq("invoice_not_delivered"))
        .select((
            rinnovo::db::schema::emails::context,
            rinnovo::db::schema::emails::subject,
        ))
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(
        context.contains("nota di credito") || subject.contains("nota di credito"),
        "{context} / {subject}"
    );
}

#[tokio::test]
async fn the_page_sends_a_rejected_invoice_again_unchanged_with_its_token_only() {
    use crate::web_client::Browser;
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let (_, invoice_id, file) = invoiced_order(&app, &customer).await;
    let (ns_name, ns) = notification("NS", &file);
    import_raw(&app, &operator.token, &ns_name, &ns).await;
    let (office, _) = Browser::signed_in(&app, &operator.email).await;
    let path = format!("/backoffice/fatture-scartate/{invoice_id}/invia");

    let forged = office.post_raw(&path, &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(stored(&app, &invoice_id).0, "rejected");

    let done = office.post(&path, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (status, new_file, _, _) = stored(&app, &invoice_id);
    assert_eq!(status, "issued");
    assert_ne!(new_file, file);
    let again = office.post(&path, &[]).await;
    assert_eq!(again.status, 409, "only a rejected document is sent again");
}
