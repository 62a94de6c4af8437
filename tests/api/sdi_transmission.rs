//! Transmission to the SdI: each invoice's file leaves through the outbox once, by the
//! file channel (the outbox directory) or by PEC (the loopback SMTP listener plays the
//! PEC provider); a PEC server that is down means retries, then a dead file the
//! back-office sees and sends again; several transmitters share the work; the legal
//! deadline shows in the metrics and on the summary page.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use diesel::prelude::*;
use rinnovo::db::schema::{audit_log, invoices, sdi_transmissions};
use rinnovo::invoices::channel::PecChannel;
use rinnovo::invoices::transmitter::{self, TransmitSettings};
use rinnovo::mail::smtp::SmtpSettings;
use rinnovo::startup::StartOptions;
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, spawn_app_with, SignedIn, TestApp};
use crate::smtp::{free_port, SmtpSink};
use crate::web_client::Browser as Session;

/// The Visura brand's PEC mailbox (seeds/brands.json).
const VISURA_PEC: &str = "fatture@pec.visura.example";
const SDI_ADDRESS: &str = "sdi01@pec.fatturapa.it";

/// The PEC channel through the SMTP listener on `port` of loopback.
pub(crate) fn pec_to(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("RINNOVO_SDI_CHANNEL", "pec".into()),
        (
            "RINNOVO_SDI_SMTP_URL",
            format!("smtp://127.0.0.1:{port}?tls=none"),
        ),
    ]
}

/// A fulfilled prepaid order of one coupon: (order id, its invoice's file name and XML).
async fn invoiced_order(app: &TestApp, customer: &SignedIn) -> (String, String, String) {
    let response = app
        .order(
            &customer.token,
            json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    let order_id = order["id"].as_str().unwrap().to_owned();
    let (file_name, xml): (String, String) = invoices::table
        .filter(invoices::order_id.eq(&order_id))
        .select((invoices::file_name, invoices::xml))
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    (order_id, file_name, xml)
}

/// A customer of visura with money on the prepaid account.
async fn paying_customer(app: &TestApp) -> SignedIn {
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "2000.00");
    customer
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    status: String,
    attempts: i32,
    channel: Option<String>,
    reference: Option<String>,
    last_error: Option<String>,
}

fn transmission_of(app: &TestApp, file_name: &str) -> Row {
    let (status, attempts, channel, reference, last_error) = sdi_transmissions::table
        .filter(sdi_transmissions::file_name.eq(file_name))
        .select((
            sdi_transmissions::status,
            sdi_transmissions::attempts,
            sdi_transmissions::channel,
            sdi_transmissions::channel_reference,
            sdi_transmissions::last_error,
        ))
        .first::<(String, i32, Option<String>, Option<String>, Option<String>)>(
            &mut app.pool.get().unwrap(),
        )
        .unwrap();
    Row {
        status,
        attempts,
        channel,
        reference,
        last_error,
    }
}

/// Waits (up to 20 s) until the file's outbox row is in `status`.
pub(crate) async fn wait_for_status(app: &TestApp, file_name: &str, status: &str) -> Row {
    let started = Instant::now();
    loop {
        let row = transmission_of(app, file_name);
        if row.status == status {
            return row;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{file_name} still {row:?}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn invoice_status(app: &TestApp, order_id: &str) -> String {
    invoices::table
        .filter(invoices::order_id.eq(order_id))
        .select(invoices::status)
        .first(&mut app.pool.get().unwrap())
        .unwrap()
}

/// The value of the metric line that starts with `series` (name and labels).
async fn metric(app: &TestApp, series: &str) -> Option<f64> {
    let body = app.get("/metrics").await.text().await.unwrap();
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

/// The messages of the sink that carry `file_name` as an attachment.
pub(crate) fn messages_with(sink: &SmtpSink, file_name: &str) -> Vec<String> {
    sink.messages()
        .into_iter()
        .filter(|m| attachment(m, file_name).is_some())
        .collect()
}

/// A header of a message's head, unfolded.
fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\n\n").next()?.replace("\n ", " ");
    head.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .map(str::to_owned)
}

/// The attachment named `file_name` in a MIME message: its part's headers and its decoded
/// content.
pub(crate) fn attachment(message: &str, file_name: &str) -> Option<(String, String)> {
    let boundary = message
        .split("boundary=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_owned();
    message.split(&format!("--{boundary}")).find_map(|part| {
        let part = part.trim_start_matches('\n');
        let (head, body) = part.split_once("\n\n")?;
        let head = head.replace("\n ", " ");
        if !head.contains(&format!("filename=\"{file_name}\"")) {
            return None;
        }
        let content = if head.contains("Content-Transfer-Encoding: base64") {
            let packed: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(packed)
                    .unwrap(),
            )
            .unwrap()
        } else if head.contains("Content-Transfer-Encoding: quoted-printable") {
            crate::smtp::decoded(body.trim_end_matches('\n'))
        } else {
            body.trim_end_matches('\n').to_owned()
        };
        Some((head, content))
    })
}

#[tokio::test]
async fn a_prepaid_orders_invoice_is_written_to_the_outbox_directory_and_transmitted() {
    let app = spawn_app().await;
    let customer = paying_customer(&app).await;
    let (order_id, file_name, xml) = invoiced_order(&app, &customer).await;

    let row = wait_for_status(&app, &file_name, "sent").await;
    let path = app
        .database
        .dir
        .path()
        .join("sdi")
        .join("outbox")
        .join(&file_name);
    assert_eq!(row.channel.as_deref(), Some("file"));
    assert_eq!(row.reference, Some(path.display().to_string()));
    assert_eq!(row.attempts, 1);
    // The invoice's exact file, as the buyer downloads it.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), xml);
    let download = app
        .get_as(
            &customer.token,
            &format!("/api/v1/orders/{order_id}/invoice.xml"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(download, xml);
    let outbox: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        outbox,
        vec![std::ffi::OsString::from(&file_name)],
        "no temporary file left"
    );

    assert_eq!(invoice_status(&app, &order_id), "transmitted");
    let documents = app
        .get_json(
            &customer.token,
            &format!("/api/v1/orders/{order_id}/documents"),
        )
        .await;
    assert_eq!(documents[0]["status"], "transmitted", "{documents}");

    let operator = app.back_office("visura").await;
    let sent = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/sdi/transmissions?status=sent",
        )
        .await;
    let listed = &sent["transmissions"][0];
    assert_eq!(listed["file_name"], file_name.as_str(), "{sent}");
    assert_eq!(listed["status"], "sent");
    assert_eq!(listed["channel"], "file");
    assert_eq!(listed["attempts"], 1);
    let numbered: String = invoices::table
        .filter(invoices::order_id.eq(&order_id))
        .select(invoices::number)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(listed["number"], numbered.as_str());
    let (office, _) = Session::signed_in(&app, &operator.email).await;
    let page = office.get("/backoffice/sdi").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&file_name), "{}", page.body);
    assert!(page.body.contains("data-status=\"sent\""), "{}", page.body);
    assert!(!page.body.contains("riprova"), "nothing to send again");
    let bad = app
        .get_as(
            &operator.token,
            "/api/v1/backoffice/sdi/transmissions?status=lost",
        )
        .await;
    let refused = problem(bad, 400).await;
    assert_eq!(refused["type"], "/problems/invalid-field", "{refused}");

    assert_eq!(
        metric(&app, "rinnovo_sdi_files_sent_total{channel=\"file\"}").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&app, "rinnovo_sdi_untransmitted_documents").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn the_pec_channel_sends_the_file_from_the_brands_pec_mailbox_to_the_sdi() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with(StartOptions::default(), &pec_to(port)).await;
    let customer = paying_customer(&app).await;
    let (order_id, file_name, xml) = invoiced_order(&app, &customer).await;

    let row = wait_for_status(&app, &file_name, "sent").await;
    let messages = messages_with(&sink, &file_name);
    assert_eq!(messages.len(), 1, "one PEC message for the file");
    let message = &messages[0];
    assert_eq!(header(message, "From").as_deref(), Some(VISURA_PEC));
    assert_eq!(header(message, "To").as_deref(), Some(SDI_ADDRESS));
    assert_eq!(header(message, "Subject"), Some(file_name.clone()));
    let (head, content) = attachment(message, &file_name).unwrap();
    assert!(head.contains("Content-Type: application/xml"), "{head}");
    assert!(head.contains("Content-Disposition: attachment"), "{head}");
    assert!(head.contains("Content-Transfer-Encoding: base64"), "{head}");
    assert_eq!(content, xml, "the attachment is the invoice's file");

    assert_eq!(row.channel.as_deref(), Some("pec"));
    assert_eq!(row.reference, header(message, "Message-ID"));
    assert_eq!(invoice_status(&app, &order_id), "transmitted");
    assert_eq!(
        metric(&app, "rinnovo_sdi_files_sent_total{channel=\"pec\"}").await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_pec_server_down_means_retries_then_a_dead_file_the_back_office_sends_again_once() {
    let port = free_port();
    let mut vars = pec_to(port);
    vars.push(("RINNOVO_SDI_MAX_ATTEMPTS", "2".into()));
    vars.push(("RINNOVO_SDI_RETRY_BASE_SECS", "1".into()));
    let app = spawn_app_with(StartOptions::default(), &vars).await;
    let customer = paying_customer(&app).await;
    let (order_id, file_name, _) = invoiced_order(&app, &customer).await;

    let dead = wait_for_status(&app, &file_name, "dead").await;
    assert_eq!(dead.attempts, 2);
    assert!(
        dead.last_error.as_deref().unwrap_or("").contains("connect"),
        "{dead:?}"
    );
    assert_eq!(invoice_status(&app, &order_id), "issued");
    assert_eq!(
        metric(&app, "rinnovo_sdi_send_failures_total{channel=\"pec\"}").await,
        Some(2.0)
    );
    assert_eq!(
        metric(&app, "rinnovo_sdi_dead_files{channel=\"pec\"}").await,
        Some(1.0)
    );

    // Shown to the brand's back-office, through the API and the page.
    let operator = app.back_office("visura").await;
    let listed = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/sdi/transmissions?status=dead",
        )
        .await;
    let listed = &listed["transmissions"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["file_name"], file_name.as_str());
    assert_eq!(listed[0]["attempts"], 2);
    assert!(listed[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("connect"));
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let (office, _) = Session::signed_in(&app, &operator.email).await;
    let page = office.get("/backoffice/sdi?stato=dead").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&file_name), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("action=\"/backoffice/sdi/{id}/riprova\"")));
    assert!(
        page.body.contains("href=\"/backoffice/sdi\""),
        "in the navigation"
    );
    let page = office.get("/backoffice/sdi?stato=perso").await;
    assert_eq!(page.status, 422);

    // Dated eleven days ago and still not transmitted: the warning of the legal deadline.
    diesel::update(invoices::table.filter(invoices::order_id.eq(&order_id)))
        .set(invoices::issue_date.eq(Utc::now().date_naive() - chrono::Days::new(11)))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    let summary = office.get("/backoffice/riepilogo").await;
    assert!(
        summary.body.contains("id=\"sdi-scadenza\""),
        "{}",
        summary.body
    );
    assert!(summary
        .body
        .contains("1 documento emesso da 10 giorni o più"));
    assert_eq!(
        metric(&app, "rinnovo_sdi_untransmitted_near_deadline_documents").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&app, "rinnovo_sdi_untransmitted_documents").await,
        Some(1.0)
    );

    // Another brand's operator sees none of it and cannot retry it; customers are refused.
    let lextel = app.back_office("lextel").await;
    let theirs = app
        .get_json(&lextel.token, "/api/v1/backoffice/sdi/transmissions")
        .await;
    assert_eq!(theirs["transmissions"], json!([]));
    let retry_path = format!("/api/v1/backoffice/sdi/transmissions/{id}/retry");
    let refused = problem(
        app.post_json_as(&lextel.token, &retry_path, &json!({}))
            .await,
        404,
    )
    .await;
    assert_eq!(refused["type"], "/problems/unknown-transmission");
    let (lextel_office, _) = Session::signed_in_to(&app, "lextel", &lextel.email).await;
    let page = lextel_office.get("/backoffice/sdi").await;
    assert!(!page.body.contains(&file_name));
    let page = lextel_office
        .post(&format!("/backoffice/sdi/{id}/riprova"), &[])
        .await;
    assert_eq!(page.status, 404);
    assert!(page
        .body
        .contains("non è più tra quelle non riuscite del tuo marchio"));
    for response in [
        app.get_as(&customer.token, "/api/v1/backoffice/sdi/transmissions")
            .await,
        app.post_json_as(&customer.token, &retry_path, &json!({}))
            .await,
    ] {
        problem(response, 403).await;
    }
    assert_eq!(
        app.get("/api/v1/backoffice/sdi/transmissions")
            .await
            .status(),
        401
    );
    let (shopper, _) = Session::signed_in(&app, &customer.email).await;
    assert_eq!(shopper.get("/backoffice/sdi").await.status, 403);
    assert_eq!(
        shopper
            .post(&format!("/backoffice/sdi/{id}/riprova"), &[])
            .await
            .status,
        403
    );
    assert_eq!(transmission_of(&app, &file_name).status, "dead");

    // The form without its CSRF token does nothing.
    assert_eq!(
        office
            .post_raw(&format!("/backoffice/sdi/{id}/riprova"), &[])
            .await
            .status,
        403
    );
    assert_eq!(transmission_of(&app, &file_name).status, "dead");

    // The PEC server is back; the operator sends the file again from the page: once.
    let (sink, _) = SmtpSink::start(port).await;
    let retried = office
        .post(&format!("/backoffice/sdi/{id}/riprova"), &[])
        .await;
    assert_eq!(retried.status, 303);
    assert_eq!(
        retried.location.as_deref(),
        Some("/backoffice/sdi?fatto=ritrasmetti")
    );
    let sent = wait_for_status(&app, &file_name, "sent").await;
    assert_eq!(sent.attempts, 1, "from zero attempts again");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(messages_with(&sink, &file_name).len(), 1, "sent once");
    assert_eq!(invoice_status(&app, &order_id), "transmitted");
    let audited: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.eq("sdi_transmission.retried"))
        .select((audit_log::subject_id, audit_log::actor))
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(
        audited,
        vec![(id.clone(), format!("user:{}", operator.user_id))]
    );

    // Not dead any more: a second retry, by the API, is refused.
    let again = problem(
        app.post_json_as(&operator.token, &retry_path, &json!({}))
            .await,
        404,
    )
    .await;
    assert_eq!(again["type"], "/problems/unknown-transmission");
    let summary = office.get("/backoffice/riepilogo").await;
    assert!(!summary.body.contains("sdi-scadenza"));
    assert!(!summary.body.contains("sdi-in-attesa"));
    assert_eq!(
        metric(&app, "rinnovo_sdi_files_sent_total{channel=\"pec\"}").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&app, "rinnovo_sdi_untransmitted_near_deadline_documents").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn the_summary_counts_the_documents_waiting_for_transmission() {
    // No transmitter runs: the documents wait.
    let app = spawn_app_with(
        StartOptions::default(),
        &[("RINNOVO_RUN_WORKERS", "false".into())],
    )
    .await;
    let customer = paying_customer(&app).await;
    invoiced_order(&app, &customer).await;
    invoiced_order(&app, &customer).await;
    let operator = app.back_office("visura").await;
    let (office, _) = Session::signed_in(&app, &operator.email).await;
    let summary = office.get("/backoffice/riepilogo").await;
    assert!(
        summary
            .body
            .contains("Documenti in attesa di trasmissione allo SdI: 2."),
        "{}",
        summary.body
    );
    assert!(!summary.body.contains("sdi-scadenza"));
    let pending = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/sdi/transmissions?status=pending",
        )
        .await;
    assert_eq!(pending["transmissions"].as_array().unwrap().len(), 2);
}

/// Two transmitters (as in two processes) over 50 due files: each file leaves once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_transmitters_racing_over_fifty_files_send_each_once() {
    let (sink, port) = SmtpSink::start(0).await;
    // The app's own workers stay off: the two below are the only transmitters.
    let app = spawn_app_with(
        StartOptions::default(),
        &[("RINNOVO_RUN_WORKERS", "false".into())],
    )
    .await;
    let customer = paying_customer(&app).await;
    let mut orders = HashMap::new();
    for _ in 0..50 {
        let (order_id, file_name, _) = invoiced_order(&app, &customer).await;
        orders.insert(file_name, order_id);
    }
    let smtp = SmtpSettings::parse_tls_only(
        "RINNOVO_SDI_SMTP_URL",
        &format!("smtp://127.0.0.1:{port}?tls=none"),
    )
    .unwrap();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let pool = app.pool.clone();
        let mut channel = PecChannel::new(smtp.clone(), SDI_ADDRESS.into());
        handles.push(tokio::spawn(async move {
            let settings = TransmitSettings {
                batch: 3,
                ..TransmitSettings::default()
            };
            let mut handled = 0;
            loop {
                let n = transmitter::run_once(&pool, &mut channel, &settings)
                    .await
                    .unwrap();
                if n == 0 {
                    break;
                }
                handled += n;
            }
            handled
        }));
    }
    let mut per_transmitter = Vec::new();
    for handle in handles {
        per_transmitter.push(handle.await.unwrap());
    }
    assert_eq!(
        per_transmitter.iter().sum::<usize>(),
        50,
        "{per_transmitter:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 50);
    for (file_name, order_id) in &orders {
        assert_eq!(messages_with(&sink, file_name).len(), 1, "{file_name} once");
        assert_eq!(transmission_of(&app, file_name).status, "sent");
        assert_eq!(invoice_status(&app, order_id), "transmitted");
    }
}
