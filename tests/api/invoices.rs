//! Electronic invoices: one per fulfilled order, however it was paid, its FatturaPA file
//! valid against the official schema (xmllint) and its figures those of the order; the
//! numbers and ProgressivoInvio under concurrency; who may download the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use chrono::NaiveDate;
use diesel::prelude::*;
use rinnovo::db::schema::{invoices, sdi_transmissions};
use rinnovo::invoices::document::{
    vat_summary, Address, Buyer, BuyerName, Document, Line, PaymentMode, Rea, Seller, Settles,
};
use rinnovo::invoices::fatturapa;
use rinnovo::money::Money;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{problem, spawn_app, spawn_app_for_a_crowd, SignedIn, TestApp};
use crate::statements::{camt053, import, Line as StatementLine};

/// The Visura brand's transmitter (seeds/brands.json).
pub(crate) const VISURA_TRANSMITTER: &str = "01234567897";

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fatturapa/Schema_1.2.1.xsd")
}

/// xmllint, installed if missing (libxml2-utils), or a failure that says what to install.
fn xmllint() -> &'static str {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let present = || {
            Command::new("xmllint")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if present() {
            return Ok(());
        }
        let installed = Command::new("apt-get")
            .args(["install", "-y", "-qq", "libxml2-utils"])
            .status()
            .is_ok_and(|s| s.success());
        if installed && present() {
            Ok(())
        } else {
            Err("xmllint is missing and could not be installed: \
                 run `apt-get install -y libxml2-utils`"
                .to_owned())
        }
    });
    if let Err(message) = ready {
        panic!("{message}");
    }
    "xmllint"
}

/// What xmllint says of each file against the FatturaPA schema: the error lines, per
/// file, empty for a valid file. One run for all files (the schema is parsed once).
fn schema_errors(files: &[(String, String)]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (index, (name, xml)) in files.iter().enumerate() {
        // Names are unique per transmitter, not across test cases: keep them apart.
        let path = dir.path().join(format!("{index}-{name}"));
        std::fs::write(&path, xml).unwrap();
        paths.push(path);
    }
    let output = Command::new(xmllint())
        .arg("--noout")
        .arg("--schema")
        .arg(schema())
        .args(&paths)
        .output()
        .expect("xmllint runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("failed to compile") && !stderr.contains("WXS schema"),
        "the schema itself: {stderr}"
    );
    paths
        .iter()
        .map(|path| {
            let path = path.display().to_string();
            let lines: Vec<String> = stderr
                .lines()
                .filter(|line| line.starts_with(&path))
                .map(str::to_owned)
                .collect();
            let validates = lines.iter().any(|l| l.ends_with(" validates"));
            lines
                .into_iter()
                .filter(|l| !(validates && l.ends_with(" validates")))
                .collect()
        })
        .collect()
}

/// Every file valid against the schema.
pub(crate) fn assert_valid(files: &[(String, String)]) {
    for ((name, xml), errors) in files.iter().zip(schema_errors(files)) {
        assert!(errors.is_empty(), "{name}: {errors:#?}\n{xml}");
    }
}

/// The text between `<tag>` and `</tag>`, the first.
pub(crate) fn section<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}>")) + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

/// The text of every `<tag>` leaf, in order.
pub(crate) fn values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let end = after.find(&close).unwrap();
        found.push(after[..end].to_owned());
        rest = &after[end..];
    }
    found
}

fn decimal(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|_| panic!("not a number: {text}"))
}

fn sum(xml: &str, tag: &str) -> Decimal {
    values(xml, tag).iter().map(|v| decimal(v)).sum()
}

/// The file's figures are the order's: total, taxable and tax per rate, tax = taxable ×
/// rate rounded half up, lines adding up to the taxable.
fn assert_adds_up(xml: &str, order: &Value) {
    let gross = decimal(order["gross_total"].as_str().unwrap());
    let net = decimal(order["net_total"].as_str().unwrap());
    let vat = decimal(order["vat_total"].as_str().unwrap());
    assert_eq!(
        decimal(&values(xml, "ImportoTotaleDocumento")[0]),
        gross,
        "{xml}"
    );
    assert_eq!(decimal(&values(xml, "ImportoPagamento")[0]), gross);
    assert_eq!(sum(xml, "ImponibileImporto"), net);
    assert_eq!(sum(xml, "Imposta"), vat);
    assert_eq!(sum(xml, "PrezzoTotale"), net);
    for summary in values(xml, "DatiRiepilogo") {
        let rate = decimal(&values(&summary, "AliquotaIVA")[0]);
        let taxable = decimal(&values(&summary, "ImponibileImporto")[0]);
        let tax = decimal(&values(&summary, "Imposta")[0]);
        let expected = (taxable * rate / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(tax, expected, "{summary}");
    }
    assert_eq!(
        values(xml, "Numero"),
        vec![order["invoice_number"].as_str().unwrap().to_owned()]
    );
    let lines = order["lines"].as_array().unwrap();
    assert_eq!(values(xml, "NumeroLinea").len(), lines.len());
}

pub(crate) fn file_name_is_the_sdis(name: &str, transmitter: &str) -> bool {
    let Some(rest) = name.strip_prefix(&format!("IT{transmitter}_")) else {
        return false;
    };
    let Some(progressive) = rest.strip_suffix(".xml") else {
        return false;
    };
    progressive.len() == 5
        && progressive
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// The invoice download: (status, SdI file name, body).
async fn download(app: &TestApp, token: &str, order_id: &str) -> (u16, String, String) {
    let response = app
        .get_as(token, &format!("/api/v1/orders/{order_id}/invoice.xml"))
        .await;
    let status = response.status().as_u16();
    let disposition = response
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let name = disposition
        .split("filename=\"")
        .nth(1)
        .map(|n| n.trim_end_matches('"').to_owned())
        .unwrap_or_default();
    if status == 200 {
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(kind.starts_with("application/xml"), "{kind}");
    }
    (status, name, response.text().await.unwrap())
}

fn invoices_of(app: &TestApp, order_id: &str) -> Vec<(String, String, String)> {
    let mut conn = app.pool.get().unwrap();
    invoices::table
        .filter(invoices::order_id.eq(order_id))
        .select((
            invoices::number,
            invoices::progressivo_invio,
            invoices::status,
        ))
        .load(&mut conn)
        .unwrap()
}

pub(crate) async fn prepaid_order(app: &TestApp, customer: &SignedIn, lines: Value) -> Value {
    let response = app.order(&customer.token, lines).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_prepaid_order_gets_one_invoice_whose_file_validates_and_adds_up() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "500.00");
    let order = prepaid_order(
        &app,
        &customer,
        json!([
            { "product": "RIN-FIRMA", "quantity": 3 },
            { "product": "RIN-FIRMA-CNS", "quantity": 2 },
        ]),
    )
    .await;
    let order_id = order["id"].as_str().unwrap();

    let stored = invoices_of(&app, order_id);
    assert_eq!(stored.len(), 1, "exactly one invoice");
    assert_eq!(stored[0].0, order["invoice_number"].as_str().unwrap());
    // Issued, and transmitted as soon as the transmitter takes its file.
    assert!(
        ["issued", "transmitted"].contains(&stored[0].2.as_str()),
        "{stored:?}"
    );

    let (status, name, xml) = download(&app, &customer.token, order_id).await;
    assert_eq!(status, 200, "{xml}");
    assert!(file_name_is_the_sdis(&name, VISURA_TRANSMITTER), "{name}");
    assert_eq!(name, format!("IT{VISURA_TRANSMITTER}_{}.xml", stored[0].1));
    assert_eq!(values(&xml, "ProgressivoInvio"), vec![stored[0].1.clone()]);
    assert_eq!(values(&xml, "FormatoTrasmissione"), vec!["FPR12"]);
    assert_eq!(values(&xml, "TipoDocumento"), vec!["TD01"]);
    assert_eq!(values(&xml, "CodiceDestinatario"), vec!["0000000"]);
    assert_eq!(values(&xml, "ModalitaPagamento"), vec!["MP22"]);
    assert_eq!(
        values(&xml, "Denominazione")[0],
        "Visura Servizi Digitali S.r.l."
    );
    // The buyer as the billing profile has it (the helpers' person).
    let buyer = section(&xml, "CessionarioCommittente");
    assert_eq!(values(buyer, "Nome"), vec!["Maria"]);
    assert_eq!(values(buyer, "Cognome"), vec!["Rossi"]);
    assert_eq!(values(buyer, "CodiceFiscale"), vec!["RSSMRA80A01H501U"]);
    assert_eq!(values(buyer, "Indirizzo"), vec!["Via Roma 1"]);
    assert_eq!(values(buyer, "CAP"), vec!["00184"]);
    assert_eq!(values(buyer, "Provincia"), vec!["RM"]);
    assert_adds_up(&xml, &order);
    assert_eq!(values(&xml, "Quantita"), vec!["3.00", "2.00"]);

    // Listed among the order's documents, downloadable by its own id, and queued for
    // transmission in the same transaction.
    let documents: Value = app
        .get_as(
            &customer.token,
            &format!("/api/v1/orders/{order_id}/documents"),
        )
        .await
        .json()
        .await
        .unwrap();
    let documents = documents.as_array().unwrap();
    assert_eq!(documents.len(), 1, "{documents:?}");
    assert_eq!(documents[0]["kind"], "TD01");
    assert_eq!(documents[0]["number"], order["invoice_number"]);
    assert_eq!(documents[0]["gross_total"], order["gross_total"]);
    assert_eq!(documents[0]["file_name"], name.as_str());
    let by_id = app
        .get_as(&customer.token, documents[0]["xml_url"].as_str().unwrap())
        .await;
    assert_eq!(by_id.status(), 200);
    assert_eq!(by_id.text().await.unwrap(), xml);
    let queued: Vec<(String, String)> = sdi_transmissions::table
        .select((sdi_transmissions::file_name, sdi_transmissions::status))
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].0, name);
    assert!(
        ["pending", "sent"].contains(&queued[0].1.as_str()),
        "{queued:?}"
    );
    assert_valid(&[(name, xml)]);
}

#[tokio::test]
async fn the_invoice_is_the_buyers_and_the_brands_back_office_only() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "50.00");
    let order = prepaid_order(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
    )
    .await;
    let order_id = order["id"].as_str().unwrap();

    let operator = app.back_office("visura").await;
    let (status, name, _) = download(&app, &operator.token, order_id).await;
    assert_eq!(status, 200);
    assert!(file_name_is_the_sdis(&name, VISURA_TRANSMITTER));

    let stranger = app.customer("visura").await;
    let other_brand = app.back_office("lextel").await;
    let documents: Value = app
        .get_as(
            &operator.token,
            &format!("/api/v1/orders/{order_id}/documents"),
        )
        .await
        .json()
        .await
        .unwrap();
    let by_id = documents[0]["xml_url"].as_str().unwrap().to_owned();
    for token in [&stranger.token, &other_brand.token] {
        for path in [
            format!("/api/v1/orders/{order_id}/invoice.xml"),
            format!("/api/v1/orders/{order_id}/documents"),
            by_id.clone(),
        ] {
            let response = app.get_as(token, &path).await;
            let refused = problem(response, 404).await;
            assert_eq!(refused["type"], "/problems/unknown-invoice", "{refused}");
        }
    }
    let unknown = app
        .get_as(
            &customer.token,
            &format!("/api/v1/orders/{}/invoice.xml", Uuid::now_v7()),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let anonymous = app
        .get(&format!("/api/v1/orders/{order_id}/invoice.xml"))
        .await;
    assert_eq!(anonymous.status(), 401);

    // Not paid yet: no invoice.
    let waiting = transfer_order(&app, &customer).await;
    let response = app
        .get_as(
            &customer.token,
            &format!(
                "/api/v1/orders/{}/invoice.xml",
                waiting["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(response.status(), 404);
}

async fn transfer_order(app: &TestApp, customer: &SignedIn) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({
            "lines": [{ "product": "RIN-FIRMA-CNS", "quantity": 2 }],
            "payment_method": "bank_transfer",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_order_paid_by_a_statement_gets_its_invoice_with_the_transfer_as_payment() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let order = transfer_order(&app, &customer).await;
    let order_id = order["id"].as_str().unwrap();
    let rf = order["transfer"]["reference"].as_str().unwrap();
    let gross = order["gross_total"].as_str().unwrap();
    let file = camt053(8, &[StatementLine::credit(gross, rf, "BANKREF-INV-1")]);
    let response = import(&app, &operator, &file).await;
    assert!(response.status().is_success());

    let paid = app
        .get_json(&customer.token, &format!("/api/v1/orders/{order_id}"))
        .await;
    assert_eq!(paid["status"], "fulfilled", "{paid}");
    assert_eq!(invoices_of(&app, order_id).len(), 1);
    let (status, name, xml) = download(&app, &customer.token, order_id).await;
    assert_eq!(status, 200);
    assert!(file_name_is_the_sdis(&name, VISURA_TRANSMITTER), "{name}");
    assert_eq!(values(&xml, "ModalitaPagamento"), vec!["MP05"]);
    assert_adds_up(&xml, &paid);
    assert_valid(&[(name, xml)]);
}

/// 100 prepaid orders at once from ten customers: 100 invoices with consecutive numbers,
/// distinct ProgressivoInvio and file names, each file valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_fulfilments_give_a_hundred_consecutive_valid_invoices() {
    let app = spawn_app_for_a_crowd().await;
    let mut customers = Vec::new();
    for _ in 0..10 {
        let customer = app.customer("visura").await;
        app.credit(&customer.user_id, "500.00");
        customers.push(customer);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(100));
    let mut handles = Vec::new();
    for i in 0..100 {
        let token = customers[i % 10].token.clone();
        let (client, url) = (app.client.clone(), format!("{}/api/v1/orders", app.address));
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = client
                .post(url)
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("fattura-{i}"))
                .json(&json!({
                    "lines": [{ "product": "RIN-FIRMA", "quantity": 1 + i % 3 }],
                    "payment_method": "prepaid",
                }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let order = response.json::<Value>().await.unwrap();
            assert_eq!(status, 201, "{order}");
            (token, order)
        }));
    }
    let mut orders = Vec::new();
    for handle in handles {
        orders.push(handle.await.unwrap());
    }

    let mut numbers = BTreeSet::new();
    let mut progressives = BTreeSet::new();
    let mut files = Vec::new();
    for (token, order) in &orders {
        let order_id = order["id"].as_str().unwrap();
        let number = order["invoice_number"].as_str().unwrap();
        numbers.insert(number.rsplit('-').next().unwrap().parse::<u32>().unwrap());
        let (status, name, xml) = download(&app, token, order_id).await;
        assert_eq!(status, 200);
        assert!(file_name_is_the_sdis(&name, VISURA_TRANSMITTER), "{name}");
        assert_adds_up(&xml, order);
        progressives.insert(values(&xml, "ProgressivoInvio")[0].clone());
        files.push((name, xml));
    }
    assert_eq!(numbers, (1..=100).collect::<BTreeSet<u32>>());
    assert_eq!(progressives.len(), 100, "one ProgressivoInvio per file");
    let names: BTreeSet<&String> = files.iter().map(|(name, _)| name).collect();
    assert_eq!(names.len(), 100);
    let mut conn = app.pool.get().unwrap();
    let stored: i64 = invoices::table.count().get_result(&mut conn).unwrap();
    assert_eq!(stored, 100);
    assert_valid(&files);
}

fn seller() -> Seller {
    Seller {
        denominazione: "Visura Servizi Digitali S.r.l.".into(),
        partita_iva: "01234567897".into(),
        codice_fiscale: Some("01234567897".into()),
        regime_fiscale: "RF01".into(),
        sede: Address {
            indirizzo: "Via Vittorio Veneto 169".into(),
            cap: "00187".into(),
            comune: "Roma".into(),
            provincia: Some("RM".into()),
            nazione: "IT".into(),
        },
        rea: Some(Rea {
            ufficio: "RM".into(),
            numero: "1234567".into(),
        }),
    }
}

fn line(description: &str, unit_cents: i64, quantity: i32, rate: i32) -> Line {
    Line {
        description: description.into(),
        quantity,
        unit_price: Money::from_cents(unit_cents),
        total: Money::from_cents(unit_cents * quantity as i64),
        vat_rate_basis_points: rate,
    }
}

/// The file of a buyer with complete billing data (a person reached by PEC, a business
/// by codice destinatario) validates with no allowance, text with markup characters and
/// letters outside Latin-1 included.
#[test]
fn the_file_of_a_buyer_with_complete_data_validates() {
    let address = Address {
        indirizzo: "Via dell'Aquila & C. <interno 3>".into(),
        cap: "67100".into(),
        comune: "L’Aquila".into(),
        provincia: Some("AQ".into()),
        nazione: "IT".into(),
    };
    let person = Buyer {
        name: BuyerName::Person {
            nome: "Zoë".into(),
            cognome: "Łukasiewicz".into(),
        },
        partita_iva: None,
        codice_fiscale: Some("RSSMRA85T10A562S".into()),
        sede: Some(address.clone()),
        codice_destinatario: None,
        pec: Some("mario.rossi@pec.example.it".into()),
    };
    let business = Buyer {
        name: BuyerName::Business {
            denominazione: "Studio Rossi & Associati".into(),
        },
        partita_iva: Some("04561237894".into()),
        codice_fiscale: Some("04561237894".into()),
        sede: Some(address),
        codice_destinatario: Some("ABC1234".into()),
        pec: None,
    };
    let lines = [
        line("Rinnovo firma \"remota\" — 3 anni", 1100, 3, 2200),
        line("Rinnovo CNS <professionale>", 2000, 1, 2200),
        line("Diritti di segreteria", 5, 1, 1000),
    ];
    let summary = vat_summary(&lines);
    let total = summary
        .iter()
        .fold(Money::ZERO, |sum, s| sum + s.taxable + s.tax);
    let mut files = Vec::new();
    for (n, (buyer, payment)) in [
        (&person, PaymentMode::FromPrepaidBalance),
        (&business, PaymentMode::PostalSlip),
    ]
    .into_iter()
    .enumerate()
    {
        let progressive = fatturapa::progressivo_invio(n as i64 + 1);
        let xml = fatturapa::to_xml(&Document {
            transmitter: VISURA_TRANSMITTER,
            progressivo_invio: &progressive,
            number: "V2026-000001",
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            seller: &seller(),
            buyer,
            lines: &lines,
            vat_summary: &summary,
            total,
            settles: Settles::Sale(payment),
        });
        files.push((fatturapa::file_name(VISURA_TRANSMITTER, &progressive), xml));
    }
    assert_valid(&files);
    let (_, person_xml) = &files[0];
    assert_eq!(values(person_xml, "CodiceDestinatario"), vec!["0000000"]);
    assert_eq!(
        values(person_xml, "PECDestinatario"),
        vec!["mario.rossi@pec.example.it"]
    );
    assert_eq!(values(person_xml, "Cognome"), vec!["?ukasiewicz"]);
    assert!(
        person_xml.contains("Via dell&apos;Aquila &amp; C. &lt;interno 3&gt;")
            || person_xml.contains("Via dell'Aquila &amp; C. &lt;interno 3&gt;")
    );
    let (_, business_xml) = &files[1];
    assert_eq!(values(business_xml, "CodiceDestinatario"), vec!["ABC1234"]);
    assert!(values(business_xml, "PECDestinatario").is_empty());
    assert_eq!(values(business_xml, "ModalitaPagamento"), vec!["MP18"]);
    assert_eq!(values(business_xml, "IdCodice")[2], "04561237894");
    // 33.00 + 20.00 at 22% = 11.66; 0.05 at 10% = 0.005 → 0.01.
    assert_eq!(values(business_xml, "Imposta"), vec!["0.01", "11.66"]);
    assert_eq!(
        values(business_xml, "ImportoTotaleDocumento"),
        vec!["64.72"]
    );
}

/// A file that breaks the schema is caught: the check itself can fail.
#[test]
fn the_schema_check_rejects_a_broken_file() {
    let buyer = Buyer {
        name: BuyerName::Business {
            denominazione: "Studio".into(),
        },
        partita_iva: None,
        codice_fiscale: None,
        sede: None,
        codice_destinatario: None,
        pec: None,
    };
    let lines = [line("Rinnovo", 1100, 1, 2200)];
    let summary = vat_summary(&lines);
    let xml = fatturapa::to_xml(&Document {
        transmitter: VISURA_TRANSMITTER,
        progressivo_invio: "00001",
        number: "V2026-000001",
        date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        seller: &seller(),
        buyer: &buyer,
        lines: &lines,
        vat_summary: &summary,
        total: Money::from_cents(1342),
        settles: Settles::Sale(PaymentMode::BankTransfer),
    });
    let broken = xml.replace("<Divisa>EUR</Divisa>", "<Divisa>EURO</Divisa>");
    let errors = schema_errors(&[("broken.xml".into(), broken)]);
    assert!(
        errors[0].iter().any(|e| e.contains("Divisa")),
        "{errors:#?}"
    );
}

/// One statement paying 30 orders: the bulk path (multi-row insert, COPY on PostgreSQL)
/// issues 30 invoices, numbered in a row, each valid.
#[tokio::test]
async fn a_statement_paying_thirty_orders_issues_thirty_invoices() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let mut orders = Vec::new();
    let mut lines = Vec::new();
    for n in 0..30 {
        let customer = if n % 10 == 0 || orders.is_empty() {
            app.customer("visura").await
        } else {
            orders
                .last()
                .map(|(c, _): &(SignedIn, Value)| c.clone())
                .unwrap()
        };
        let order = transfer_order(&app, &customer).await;
        lines.push(StatementLine::credit(
            order["gross_total"].as_str().unwrap(),
            order["transfer"]["reference"].as_str().unwrap(),
            &format!("BANKREF-BULK-{n}"),
        ));
        orders.push((customer, order));
    }
    let response = import(&app, &operator, &camt053(8, &lines)).await;
    assert!(response.status().is_success());

    let mut numbers = BTreeSet::new();
    let mut files = Vec::new();
    for (customer, order) in &orders {
        let order_id = order["id"].as_str().unwrap();
        let paid = app
            .get_json(&customer.token, &format!("/api/v1/orders/{order_id}"))
            .await;
        assert_eq!(paid["status"], "fulfilled", "{paid}");
        let number = paid["invoice_number"].as_str().unwrap();
        numbers.insert(number.rsplit('-').next().unwrap().parse::<u32>().unwrap());
        let (status, name, xml) = download(&app, &customer.token, order_id).await;
        assert_eq!(status, 200);
        assert_adds_up(&xml, &paid);
        assert_eq!(values(&xml, "ModalitaPagamento"), vec!["MP05"]);
        files.push((name, xml));
    }
    assert_eq!(numbers, (1..=30).collect::<BTreeSet<u32>>());
    let names: BTreeSet<&String> = files.iter().map(|(name, _)| name).collect();
    assert_eq!(names.len(), 30);
    assert_valid(&files);
}

/// A business buyer: the invoice carries its partita IVA, denominazione, address and
/// codice destinatario as its billing profile had them when the order was fulfilled;
/// a later change of the profile does not touch the invoice already issued.
#[tokio::test]
async fn a_business_buyers_invoice_carries_its_billing_data_as_they_were() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let saved = app
        .put_json_as(
            &customer.token,
            "/api/v1/me/billing",
            &crate::helpers::billing_business(),
        )
        .await;
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
    app.credit(&customer.user_id, "100.00");
    let order = prepaid_order(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
    )
    .await;
    let order_id = order["id"].as_str().unwrap();
    let (status, name, xml) = download(&app, &customer.token, order_id).await;
    assert_eq!(status, 200, "{xml}");
    let buyer = section(&xml, "CessionarioCommittente").to_owned();
    assert_eq!(values(&buyer, "IdCodice"), vec!["00743110157"]);
    assert_eq!(values(&buyer, "Denominazione"), vec!["Studio Rossi S.r.l."]);
    assert_eq!(values(&buyer, "Comune"), vec!["Milano"]);
    assert_eq!(values(&xml, "CodiceDestinatario"), vec!["M5UXCR1"]);
    assert_valid(&[(name, xml.clone())]);

    // The profile changes; the invoice issued stays as it was.
    let changed = app
        .put_json_as(
            &customer.token,
            "/api/v1/me/billing",
            &crate::helpers::billing_person(),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let (_, _, again) = download(&app, &customer.token, order_id).await;
    assert_eq!(again, xml);
}
