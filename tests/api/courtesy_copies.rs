//! The courtesy copies and the back-office's invoices: the PDF says what the FatturaPA
//! file says (read with pdftotext), who may download it; the back-office list with its
//! filters and paging, the period's ZIP, the pages' downloads and the coupon email's link.

use std::io::Read;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::NaiveDate;
use diesel::prelude::*;
use rinnovo::db::schema::{audit_log, invoices, sdi_receipts, sdi_transmissions};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    billing_business, billing_person, problem, spawn_app, spawn_app_with_smtp, SignedIn, TestApp,
};
use crate::web_client::Browser;

/// RIN-FIRMA-CNS: 26.00 + 22% = 31.72.
const PRODUCT: &str = "RIN-FIRMA-CNS";
const PRICE: &str = "31.72";

/// pdftotext, installed if missing (poppler-utils), or a failure that says what to
/// install.
fn pdftotext() -> &'static str {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let present = || {
            Command::new("pdftotext")
                .arg("-v")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if present() {
            return Ok(());
        }
        let installed = Command::new("apt-get")
            .args(["install", "-y", "-qq", "poppler-utils"])
            .status()
            .is_ok_and(|s| s.success());
        if installed && present() {
            Ok(())
        } else {
            Err("pdftotext is missing and could not be installed: \
                 run `apt-get install -y poppler-utils`"
                .to_owned())
        }
    });
    if let Err(message) = ready {
        panic!("{message}");
    }
    "pdftotext"
}

/// The text of a PDF as pdftotext reads it, lines kept (`-layout`).
pub(crate) fn text_of_pdf(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copia.pdf");
    std::fs::write(&path, pdf).unwrap();
    let output = Command::new(pdftotext())
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(
        output.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("pdftotext writes UTF-8")
}

/// A buyer of `brand` with `billing` data and credit for `count` orders.
async fn buyer(app: &TestApp, brand: &str, billing: Value, count: usize) -> SignedIn {
    let customer = app.customer(brand).await;
    let response = app
        .put_json_as(&customer.token, "/api/v1/me/billing", &billing)
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let total = format!("{:.2}", 31.72 * count as f64);
    app.credit(&customer.user_id, &total);
    customer
}

/// A prepaid order of one RIN-FIRMA-CNS, fulfilled at once: (order, its invoice's id).
async fn paid_order(app: &TestApp, customer: &SignedIn) -> (Value, String) {
    let response = app
        .order(
            &customer.token,
            json!([{ "product": PRODUCT, "quantity": 1 }]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    let id = invoice_id(app, order["id"].as_str().unwrap());
    (order, id)
}

fn invoice_id(app: &TestApp, order_id: &str) -> String {
    invoices::table
        .filter(invoices::order_id.eq(order_id))
        .select(invoices::id)
        .first(&mut app.pool.get().unwrap())
        .unwrap()
}

/// The stored file of a document: (SdI file name, XML).
fn stored_file(app: &TestApp, id: &str) -> (String, String) {
    invoices::table
        .filter(invoices::id.eq(id))
        .select((invoices::file_name, invoices::xml))
        .first(&mut app.pool.get().unwrap())
        .unwrap()
}

/// Moves a document to another issue day, as if issued then.
fn issued_on(app: &TestApp, id: &str, day: &str) {
    let day: NaiveDate = day.parse().unwrap();
    diesel::update(invoices::table.filter(invoices::id.eq(id)))
        .set(invoices::issue_date.eq(day))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
}

/// What the transmission and the receipts would have done to a document: its status,
/// and an SdI notification with `errors`.
fn answered_by_the_sdi(app: &TestApp, id: &str, status: &str, kind: &str, errors: Value) {
    let mut conn = app.pool.get().unwrap();
    diesel::update(invoices::table.filter(invoices::id.eq(id)))
        .set(invoices::status.eq(status))
        .execute(&mut conn)
        .unwrap();
    let (file_name, _) = stored_file(app, id);
    let now = chrono::Utc::now().naive_utc();
    diesel::insert_into(sdi_receipts::table)
        .values((
            sdi_receipts::id.eq(Uuid::now_v7().to_string()),
            sdi_receipts::brand_id.eq("visura"),
            sdi_receipts::invoice_id.eq(id),
            sdi_receipts::kind.eq(kind),
            sdi_receipts::file_name.eq(format!(
                "{}_{kind}_001.xml",
                file_name.trim_end_matches(".xml")
            )),
            sdi_receipts::invoice_file_name.eq(&file_name),
            sdi_receipts::identificativo_sdi.eq("111222333"),
            sdi_receipts::message_id.eq("444555666"),
            sdi_receipts::errors.eq(errors.to_string()),
            sdi_receipts::xml.eq("<ricevuta/>"),
            sdi_receipts::received_at.eq(now),
            sdi_receipts::imported_at.eq(now),
        ))
        .execute(&mut conn)
        .unwrap();
}

pub(crate) async fn bytes_as(app: &TestApp, token: &str, path: &str) -> (u16, String, Vec<u8>) {
    let response = app.get_as(token, path).await;
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_courtesy_copy_shows_what_the_invoice_file_says() {
    let app = spawn_app().await;
    // An accented comune: the copy's fonts must carry Italian letters.
    let mut billing = billing_person();
    billing["comune"] = json!("Forlì");
    billing["provincia"] = json!("FC");
    billing["cap"] = json!("47121");
    let customer = buyer(&app, "visura", billing, 1).await;
    let (order, id) = paid_order(&app, &customer).await;
    let number = order["invoice_number"].as_str().unwrap();

    let documents = app
        .get_json(
            &customer.token,
            &format!("/api/v1/orders/{}/documents", order["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        documents[0]["pdf_url"],
        format!("/api/v1/invoices/{id}/pdf")
    );
    let response = app
        .get_as(&customer.token, &format!("/api/v1/invoices/{id}/pdf"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"fattura-{number}.pdf\"").as_str()
    );
    let pdf = response.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    let text = text_of_pdf(&pdf);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Copia di cortesia"), "{text}");
    assert!(
        flat.contains("il documento fiscalmente valido è la fattura elettronica in formato XML trasmessa tramite il Sistema di Interscambio (SdI)"),
        "{text}"
    );
    assert!(
        flat.contains(&format!("Fattura n. {number} del ")),
        "{text}"
    );
    assert!(flat.contains("Maria Rossi"), "{text}");
    assert!(flat.contains("47121 Forlì (FC) IT"), "{text}");
    assert!(flat.contains("Codice fiscale: RSSMRA80A01H501U"), "{text}");
    assert!(flat.contains("Visura Servizi Digitali S.r.l."), "{text}");
    assert!(
        flat.contains("Coupon rinnovo firma + autenticazione"),
        "{text}"
    );
    // The figures, the Italian way.
    assert!(flat.contains("Totale imponibile € 26,00"), "{text}");
    assert!(flat.contains("Totale IVA € 5,72"), "{text}");
    assert!(flat.contains("Totale documento € 31,72"), "{text}");
    assert!(flat.contains("Aliquota 22%"), "{text}");
    assert!(
        flat.contains("Pagamento: trattenuta su somme già riscosse"),
        "{text}"
    );
}

#[tokio::test]
async fn a_credit_notes_courtesy_copy_names_the_invoice_it_corrects() {
    let app = spawn_app().await;
    let customer = buyer(&app, "visura", billing_person(), 1).await;
    let (order, invoice_id) = paid_order(&app, &customer).await;
    let order_id = order["id"].as_str().unwrap();
    let coupons = app.get_json(&customer.token, "/api/v1/coupons").await;
    let coupon = coupons["coupons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["order_id"] == order_id)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let operator = app.back_office("visura").await;
    let voided = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/coupons/{coupon}/void"),
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
    assert_eq!(note["kind"], "TD04");
    assert_eq!(note["credits_invoice"], invoice_id.as_str());
    let (status, _, pdf) = bytes_as(&app, &customer.token, note["pdf_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let text = text_of_pdf(&pdf);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let note_number = note["number"].as_str().unwrap();
    let invoice_number = order["invoice_number"].as_str().unwrap();
    let invoice_date: NaiveDate = documents[0]["issue_date"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        flat.contains(&format!("Nota di credito n. {note_number} del ")),
        "{text}"
    );
    assert!(
        flat.contains(&format!(
            "Nota di credito che rettifica la fattura n. {invoice_number} del {}.",
            invoice_date.format("%d/%m/%Y")
        )),
        "{text}"
    );
    assert!(flat.contains("Copia di cortesia"), "{text}");
    assert!(flat.contains("Maria Rossi"), "{text}");
    assert!(flat.contains("Totale documento € 31,72"), "{text}");
}

#[tokio::test]
async fn the_courtesy_copy_is_the_buyers_and_the_brands_back_office_only() {
    let app = spawn_app().await;
    let customer = buyer(&app, "visura", billing_person(), 1).await;
    let (_, id) = paid_order(&app, &customer).await;
    let path = format!("/api/v1/invoices/{id}/pdf");

    let operator = app.back_office("visura").await;
    for token in [&customer.token, &operator.token] {
        let (status, kind, body) = bytes_as(&app, token, &path).await;
        assert_eq!((status, kind.as_str()), (200, "application/pdf"));
        assert!(body.starts_with(b"%PDF-"));
    }
    let stranger = app.customer("visura").await;
    let other_brand = app.back_office("lextel").await;
    for token in [&stranger.token, &other_brand.token] {
        let refused = problem(app.get_as(token, &path).await, 404).await;
        assert_eq!(refused["type"], "/problems/unknown-invoice", "{refused}");
    }
    let made_up = app
        .get_as(
            &customer.token,
            &format!("/api/v1/invoices/{}/pdf", Uuid::now_v7()),
        )
        .await;
    problem(made_up, 404).await;
    assert_eq!(app.get(&path).await.status(), 401);
}

/// Waits until the worker has sent `count` files (the embedded channel writes them out).
async fn all_transmitted(app: &TestApp, count: i64) {
    for _ in 0..200 {
        let sent: i64 = sdi_transmissions::table
            .filter(sdi_transmissions::status.eq("sent"))
            .count()
            .get_result(&mut app.pool.get().unwrap())
            .unwrap();
        if sent == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the worker did not send the {count} files");
}

/// Three documents: two of a person (Maria Rossi), one of a business (Studio Rossi
/// S.r.l., partita IVA 00743110157); the business's delivered with a ricevuta di
/// consegna, one of the person's rejected with a notifica di scarto, the other
/// transmitted, on three days.
struct ThreeDocuments {
    person_first: String,
    person_second: String,
    business: String,
    business_number: String,
}

async fn three_documents(app: &TestApp) -> ThreeDocuments {
    let person = buyer(app, "visura", billing_person(), 2).await;
    let business = buyer(app, "visura", billing_business(), 1).await;
    let (_, person_first) = paid_order(app, &person).await;
    let (_, person_second) = paid_order(app, &person).await;
    let (order, business_id) = paid_order(app, &business).await;
    // The test server's worker transmits each file; the SdI answers after that.
    all_transmitted(app, 3).await;
    issued_on(app, &person_first, "2026-01-10");
    issued_on(app, &person_second, "2026-02-20");
    issued_on(app, &business_id, "2026-03-05");
    answered_by_the_sdi(app, &business_id, "delivered", "RC", json!([]));
    answered_by_the_sdi(
        app,
        &person_second,
        "rejected",
        "NS",
        json!([{ "code": "00404", "description": "Fattura duplicata", "hint": null }]),
    );
    ThreeDocuments {
        person_first,
        person_second,
        business: business_id,
        business_number: order["invoice_number"].as_str().unwrap().to_owned(),
    }
}

/// The ids of the documents the back-office list answers for `query`, and its total.
async fn listed(app: &TestApp, token: &str, query: &str) -> (Vec<String>, i64) {
    let response = app
        .get_as(token, &format!("/api/v1/backoffice/invoices{query}"))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    let body: Value = response.json().await.unwrap();
    let ids = body["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["total"].as_i64().unwrap())
}

#[tokio::test]
async fn the_back_office_finds_documents_by_status_dates_number_and_buyer_page_by_page() {
    let app = spawn_app().await;
    let docs = three_documents(&app).await;
    let operator = app.back_office("visura").await;
    let token = operator.token.as_str();

    // Newest first, with the exchange with the SdI.
    let all: Value = app.get_json(token, "/api/v1/backoffice/invoices").await;
    assert_eq!(all["total"], 3);
    let items = all["invoices"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            docs.business.as_str(),
            docs.person_second.as_str(),
            docs.person_first.as_str()
        ]
    );
    assert_eq!(items[0]["buyer_name"], "Studio Rossi S.r.l.");
    assert_eq!(items[0]["status"], "delivered");
    assert_eq!(items[0]["kind"], "TD01");
    assert_eq!(items[0]["transmission_status"], "sent");
    assert_eq!(items[0]["transmissions"][0]["status"], "sent");
    assert_eq!(
        items[0]["transmissions"][0]["file_name"],
        stored_file(&app, &docs.business).0.as_str()
    );
    assert_eq!(items[0]["receipts"][0]["kind"], "RC");
    assert_eq!(items[0]["receipts"][0]["errors"], json!([]));
    assert_eq!(items[1]["buyer_name"], "Maria Rossi");
    assert_eq!(items[1]["receipts"][0]["kind"], "NS");
    assert_eq!(
        items[1]["receipts"][0]["errors"],
        json!([{ "code": "00404", "description": "Fattura duplicata", "hint": null }])
    );
    assert_eq!(
        items[1]["pdf_url"],
        format!("/api/v1/invoices/{}/pdf", docs.person_second)
    );
    assert_eq!(items[2]["receipts"], json!([]));

    for (query, expected) in [
        ("?status=rejected", vec![&docs.person_second]),
        ("?status=delivered", vec![&docs.business]),
        ("?status=transmitted", vec![&docs.person_first]),
        ("?status=issued", vec![]),
        ("?kind=TD04", vec![]),
        (
            "?issued_from=2026-02-01",
            vec![&docs.business, &docs.person_second],
        ),
        ("?issued_to=2026-01-31", vec![&docs.person_first]),
        (
            "?issued_from=2026-02-20&issued_to=2026-02-20",
            vec![&docs.person_second],
        ),
        (
            &format!("?number={}", docs.business_number.to_lowercase()),
            vec![&docs.business],
        ),
        (
            "?buyer=MARIA",
            vec![&docs.person_second, &docs.person_first],
        ),
        ("?buyer=00743110157", vec![&docs.business]),
        ("?buyer=rossi&status=transmitted", vec![&docs.person_first]),
        ("?buyer=100%25", vec![]),
    ] {
        let (ids, total) = listed(&app, token, query).await;
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(ids, expected, "{query}");
        assert_eq!(total, expected.len() as i64, "{query}");
    }

    // Pages: the same order, the total over every page.
    let (first, total) = listed(&app, token, "?limit=2").await;
    let (second, _) = listed(&app, token, "?limit=2&offset=2").await;
    assert_eq!(total, 3);
    assert_eq!(
        first,
        vec![docs.business.clone(), docs.person_second.clone()]
    );
    assert_eq!(second, vec![docs.person_first.clone()]);

    // Wrong filters are named.
    for (query, field) in [
        ("?status=lost", "status"),
        ("?kind=TD02", "kind"),
        ("?issued_from=2026-13-01", "issued_from"),
        ("?issued_from=2026-03-01&issued_to=2026-02-01", "issued_to"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?offset=-1", "offset"),
        ("?buyer=", "buyer"),
    ] {
        let response = app
            .get_as(token, &format!("/api/v1/backoffice/invoices{query}"))
            .await;
        let refused = problem(response, 400).await;
        assert_eq!(refused["type"], "/problems/invalid-field", "{query}");
        assert_eq!(refused["errors"][0]["field"], field, "{query}: {refused}");
    }
    let unknown = app
        .get_as(token, "/api/v1/backoffice/invoices?colour=red")
        .await;
    let refused = problem(unknown, 400).await;
    assert_eq!(refused["type"], "/problems/invalid-field", "{refused}");
    assert_eq!(refused["errors"][0]["field"], "colour", "{refused}");
    assert_eq!(
        refused["errors"][0]["rule"], "unknown_parameter",
        "{refused}"
    );

    // Another brand's operator finds none; a buyer may not list.
    let lextel = app.back_office("lextel").await;
    assert_eq!(listed(&app, &lextel.token, "").await, (vec![], 0));
    let customer = app.customer("visura").await;
    problem(
        app.get_as(&customer.token, "/api/v1/backoffice/invoices")
            .await,
        403,
    )
    .await;
    assert_eq!(app.get("/api/v1/backoffice/invoices").await.status(), 401);
}

/// The files of a ZIP: (name, content), in the archive's order.
fn unzip(bytes: &[u8]) -> Vec<(String, String)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    (0..archive.len())
        .map(|index| {
            let mut file = archive.by_index(index).unwrap();
            let mut content = String::new();
            file.read_to_string(&mut content).unwrap();
            (file.name().to_owned(), content)
        })
        .collect()
}

#[tokio::test]
async fn the_export_holds_exactly_the_periods_files_each_as_stored() {
    let app = spawn_app().await;
    let docs = three_documents(&app).await;
    // Another brand's document in the same period stays out.
    let lextel_buyer = buyer(&app, "lextel", billing_person(), 1).await;
    let (_, lextel_document) = paid_order(&app, &lextel_buyer).await;
    issued_on(&app, &lextel_document, "2026-02-21");
    let operator = app.back_office("visura").await;

    let export = |query: &'static str| {
        let app = &app;
        let token = operator.token.clone();
        async move {
            app.get_as(
                &token,
                &format!("/api/v1/backoffice/invoices/export.zip{query}"),
            )
            .await
        }
    };
    let response = export("?from=2026-02-01&to=2026-03-31").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"fatture-visura-2026-02-01-2026-03-31.zip\""
    );
    let files = unzip(&response.bytes().await.unwrap());
    let audited: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.eq("invoices.exported"))
        .select((audit_log::actor, audit_log::details))
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].0, format!("user:{}", operator.user_id));
    let details: Value = serde_json::from_str(&audited[0].1).unwrap();
    assert_eq!(
        details,
        json!({ "from": "2026-02-01", "to": "2026-03-31", "files": 2 })
    );
    let expected = vec![
        stored_file(&app, &docs.person_second),
        stored_file(&app, &docs.business),
    ];
    assert_eq!(
        files, expected,
        "the period's files, oldest first, as stored"
    );

    let whole_year = unzip(
        &export("?from=2026-01-01&to=2026-12-31")
            .await
            .bytes()
            .await
            .unwrap(),
    );
    assert_eq!(whole_year.len(), 3);
    assert_eq!(whole_year[0], stored_file(&app, &docs.person_first));
    let empty = unzip(
        &export("?from=2025-01-01&to=2025-12-31")
            .await
            .bytes()
            .await
            .unwrap(),
    );
    assert!(empty.is_empty());

    for (query, field) in [
        ("?from=2026-03-01&to=2026-02-01", "to"),
        ("?from=2025-01-01&to=2026-01-02", "to"),
        ("?from=2026-01-01", "to"),
        ("?from=01/01/2026&to=2026-01-31", "from"),
    ] {
        let refused = problem(export(query).await, 400).await;
        assert_eq!(refused["type"], "/problems/invalid-field", "{query}");
        assert_eq!(refused["errors"][0]["field"], field, "{query}: {refused}");
    }
    let customer = app.customer("visura").await;
    let response = app
        .get_as(
            &customer.token,
            "/api/v1/backoffice/invoices/export.zip?from=2026-01-01&to=2026-12-31",
        )
        .await;
    problem(response, 403).await;
}

#[tokio::test]
async fn the_shop_order_page_lists_the_documents_with_downloads_of_its_session() {
    let app = spawn_app().await;
    let customer = buyer(&app, "visura", billing_person(), 1).await;
    let (order, id) = paid_order(&app, &customer).await;
    let order_id = order["id"].as_str().unwrap();
    let number = order["invoice_number"].as_str().unwrap();
    let (shopper, _) = Browser::signed_in(&app, &customer.email).await;

    let page = shopper.get(&format!("/negozio/ordini/{order_id}")).await;
    assert_eq!(page.status, 200);
    let xml_link = format!("/negozio/fatture/{id}/xml");
    let pdf_link = format!("/negozio/fatture/{id}/pdf");
    assert!(
        page.body.contains(&format!("href=\"{xml_link}\"")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("href=\"{pdf_link}\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains(number));

    let xml = shopper.get(&xml_link).await;
    assert_eq!(xml.status, 200);
    assert_eq!(xml.body, stored_file(&app, &id).1);
    let pdf = shopper.get(&pdf_link).await;
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with("%PDF-"));

    // Another buyer's session finds nothing; no session is sent to sign in.
    let stranger = app.customer("visura").await;
    let (other, _) = Browser::signed_in(&app, &stranger.email).await;
    assert_eq!(other.get(&pdf_link).await.status, 404);
    assert_eq!(other.get(&xml_link).await.status, 404);
    let anonymous = Browser::anonymous(&app, "visura").await;
    assert_eq!(anonymous.get(&pdf_link).await.status, 303);
}

#[tokio::test]
async fn the_back_office_pages_list_show_and_download_the_brands_documents() {
    let app = spawn_app().await;
    let docs = three_documents(&app).await;
    let operator = app.back_office("visura").await;
    let (office, _) = Browser::signed_in(&app, &operator.email).await;

    let home = office.get("/backoffice/fatture").await;
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("href=\"/backoffice/fatture\""),
        "in the navigation"
    );
    for id in [&docs.person_first, &docs.person_second, &docs.business] {
        assert!(home.body.contains(&format!("id=\"documento-{id}\"")));
    }
    assert!(home.body.contains("Studio Rossi S.r.l."));
    assert!(home.body.contains("errori 00404"));

    let found = office
        .get("/backoffice/fatture?stato=rejected&cliente=maria")
        .await;
    assert_eq!(found.status, 200);
    assert!(found
        .body
        .contains(&format!("id=\"documento-{}\"", docs.person_second)));
    assert!(!found
        .body
        .contains(&format!("id=\"documento-{}\"", docs.person_first)));
    let paged = office
        .get("/backoffice/fatture?dal=2026-01-01&al=2026-01-31")
        .await;
    assert!(paged
        .body
        .contains(&format!("id=\"documento-{}\"", docs.person_first)));
    assert!(!paged
        .body
        .contains(&format!("id=\"documento-{}\"", docs.business)));
    let wrong = office.get("/backoffice/fatture?dal=ieri").await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("id=\"dal-error\""));

    let detail = office
        .get(&format!("/backoffice/fatture/{}", docs.person_second))
        .await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("00404"));
    assert!(detail.body.contains("Fattura duplicata"));
    assert!(detail.body.contains("111222333"));
    let pdf = office
        .get(&format!("/backoffice/fatture/{}/pdf", docs.business))
        .await;
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with("%PDF-"));
    let xml = office
        .get(&format!("/backoffice/fatture/{}/xml", docs.business))
        .await;
    assert_eq!(xml.body, stored_file(&app, &docs.business).1);
    let zip = office
        .get("/backoffice/fatture/esporta?dal=2026-01-01&al=2026-03-31")
        .await;
    assert_eq!(zip.status, 200);
    assert!(zip.body.starts_with("PK"));
    let too_long = office
        .get("/backoffice/fatture/esporta?dal=2024-01-01&al=2026-03-31")
        .await;
    assert_eq!(too_long.status, 422);
    assert!(
        too_long
            .body
            .contains("Il periodo può coprire al massimo 366 giorni."),
        "{}",
        too_long.body
    );
    let reversed = office
        .get("/backoffice/fatture/esporta?dal=2026-03-31&al=2026-01-01")
        .await;
    assert_eq!(reversed.status, 422);
    assert!(reversed
        .body
        .contains("La data finale viene prima di quella iniziale."));

    // Another brand's operator: none of it.
    let lextel = app.back_office("lextel").await;
    let (lextel_office, _) = Browser::signed_in_to(&app, "lextel", &lextel.email).await;
    for path in [
        format!("/backoffice/fatture/{}", docs.business),
        format!("/backoffice/fatture/{}/pdf", docs.business),
        format!("/backoffice/fatture/{}/xml", docs.business),
    ] {
        assert_eq!(lextel_office.get(&path).await.status, 404, "{path}");
    }
    let theirs = lextel_office.get("/backoffice/fatture").await;
    assert!(!theirs.body.contains(&docs.business));
}

#[tokio::test]
async fn the_coupon_email_links_to_the_order_page_with_the_invoice() {
    let (sink, port) = crate::smtp::SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, PRICE);
    let (order, _) = paid_order(&app, &customer).await;
    let order_id = order["id"].as_str().unwrap();
    let messages = sink.wait_for(2, Duration::from_secs(20)).await;
    let delivery = messages
        .iter()
        .map(|m| crate::smtp::decoded(m))
        .find(|m| !crate::smtp::coupon_codes(m).is_empty())
        .expect("the coupon email");
    assert!(
        delivery.contains(&format!("/negozio/ordini/{order_id}")),
        "{delivery}"
    );
    assert!(delivery.contains("copia di cortesia"), "{delivery}");
}
