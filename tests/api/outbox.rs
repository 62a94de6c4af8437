//! Several dispatchers (as on several machines) over one outbox: every email goes out
//! exactly once. A new email wakes the dispatcher when it is committed.

use std::time::Duration;

use chrono::Utc;
use rinnovo::mail::outbox::{self, OutgoingEmail};
use rinnovo::mail::templates::EmailKind;
use rinnovo::mail::{dispatcher, DispatchSettings, Transport};
use rinnovo::startup::StartOptions;

use crate::helpers::{spawn_app_with, spawn_app_with_smtp};
use crate::smtp::{decoded, SmtpSink};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_dispatchers_send_each_email_once() {
    let (sink, port) = SmtpSink::start(0).await;
    // The app's own dispatcher stays off: the three below are the only ones.
    let app = spawn_app_with(
        StartOptions::default(),
        &[("RINNOVO_RUN_WORKERS", "false".into())],
    )
    .await;
    {
        let mut conn = app.pool.get().unwrap();
        for n in 0..60 {
            let email = OutgoingEmail {
                brand_id: "visura".into(),
                kind: EmailKind::OrderReceipt,
                reference: None,
                sender: "Visura <rinnovi@visura.example>".into(),
                recipient: "cliente@example.it".into(),
                context: serde_json::json!({
                    "name": "Cliente", "brand": "Visura", "invoice_number": format!("T-{n:02}"),
                    "date": "22/11/2026", "payment_method": "conto prepagato", "lines": [],
                    "net_total": "0.00", "vat_total": "0.00", "gross_total": "0.00",
                }),
                attachment: None,
            };
            outbox::enqueue(&mut conn, &email, Utc::now()).unwrap();
        }
    }
    let transport = Transport::new(
        Some(&format!("smtp://127.0.0.1:{port}")),
        std::env::temp_dir(),
    )
    .unwrap();
    let mut handles = Vec::new();
    for _ in 0..3 {
        let pool = app.pool.clone();
        let mut sender = transport.sender();
        handles.push(tokio::spawn(async move {
            let settings = DispatchSettings {
                batch: 5,
                ..DispatchSettings::default()
            };
            let mut sent = 0;
            loop {
                let handled = dispatcher::run_once(&pool, &mut sender, &settings)
                    .await
                    .unwrap();
                if handled == 0 {
                    break;
                }
                sent += handled;
            }
            sent
        }));
    }
    let mut per_dispatcher = Vec::new();
    for handle in handles {
        per_dispatcher.push(handle.await.unwrap());
    }
    assert_eq!(
        per_dispatcher.iter().sum::<usize>(),
        60,
        "{per_dispatcher:?}"
    );
    let messages = sink.wait_for(60, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 60);
    let mut subjects: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("Subject: ")))
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    assert_eq!(subjects.len(), 60, "no email twice");
}

/// The dispatcher polls an hour apart here: the coupon email can only arrive in time if
/// the order's commit wakes it. (With the wake-up gone, this fails after 15 seconds.)
#[tokio::test]
async fn an_order_wakes_the_dispatcher_without_waiting_for_its_poll() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[("RINNOVO_MAIL_POLL_MS", "3600000".into())]).await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "40.00");
    // Let the dispatcher go idle, past its first look at start.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let response = app
        .order(
            &customer.token,
            serde_json::json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let started = std::time::Instant::now();
    while !sink
        .messages()
        .iter()
        .any(|m| decoded(m).contains("i tuoi coupon"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the coupon email waited for the poll: {} messages",
            sink.messages().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
