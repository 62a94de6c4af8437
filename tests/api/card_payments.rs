//! Card payments against a local server that speaks the provider's API
//! (`tests/support/fake_card_provider.py`, written from Stripe's published API): it
//! opens sessions, serves the hosted page, refunds, and posts notifications signed with
//! Stripe's scheme by Python's `hmac`, apart from the code under test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::prelude::*;
use rinnovo::db::schema::{card_events, coupons, invoices};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{problem, spawn_app_with, spawn_app_with_smtp, SignedIn, TestApp};
use crate::smtp::{coupon_codes, decoded, SmtpSink};

const SECRET: &str = "whsec_test_rinnovo_card";

/// The provider's stand-in, a process of its own, stopped when dropped.
struct FakeProvider {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl FakeProvider {
    fn start() -> Self {
        let mut child = Command::new("python3")
            .args([
                "tests/support/fake_card_provider.py",
                "--port",
                "0",
                "--secret",
                SECRET,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the fake provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("fake provider said {line:?}"));
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RINNOVO_STRIPE_SECRET_KEY", "sk_test_rinnovo".into()),
            (
                "RINNOVO_STRIPE_WEBHOOK_SECRETS",
                format!("whsec_previous_one,{SECRET}"),
            ),
            ("RINNOVO_STRIPE_API_BASE", self.base.clone()),
        ]
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/_control/{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "control {path}");
        response.json().await.unwrap()
    }

    async fn list(&self, what: &str) -> Value {
        self.client
            .get(format!("{}/_control/{what}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl FakeProvider {
    /// The provider's refunds, once it holds `count` of them (a refund is sent by the
    /// request that asks for it, or by the worker's round a moment later).
    async fn refunds(&self, count: usize) -> Value {
        for _ in 0..40 {
            let refunds = self.list("refunds").await;
            if refunds.as_array().unwrap().len() >= count {
                return refunds;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.list("refunds").await
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An app with card payments through `fake`, which notifies it.
async fn card_app(
    fake: &FakeProvider,
    smtp_port: Option<u16>,
    extra: &[(&str, String)],
) -> TestApp {
    let mut env = fake.env();
    env.extend(extra.iter().cloned());
    let app = match smtp_port {
        Some(port) => spawn_app_with_smtp(port, &env).await,
        None => spawn_app_with(Default::default(), &env).await,
    };
    fake.control(
        "config",
        json!({ "webhook_url": format!("{}/api/v1/card/notifications", app.address) }),
    )
    .await;
    app
}

async fn order_by_card(app: &TestApp, buyer: &SignedIn, lines: Value) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&buyer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({ "lines": lines, "payment_method": "card" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// A card app, a customer of it, and an order of `product` × `quantity` by card.
async fn card_order(
    fake: &FakeProvider,
    extra: &[(&str, String)],
    product: &str,
    quantity: u32,
) -> (TestApp, SignedIn, Value) {
    let app = card_app(fake, None, extra).await;
    let customer = app.customer("visura").await;
    let order = order_by_card(
        &app,
        &customer,
        json!([{ "product": product, "quantity": quantity }]),
    )
    .await;
    (app, customer, order)
}

/// Pays the order's page at the provider without notifying: the event's id.
async fn pay_quietly(fake: &FakeProvider, order: &Value) -> String {
    let session = session_of(order);
    let paid = fake
        .control(
            &format!("sessions/{session}/pay"),
            json!({ "notify": false }),
        )
        .await;
    paid["event"]["id"].as_str().unwrap().to_owned()
}

fn session_of(order: &Value) -> String {
    let url = order["card"]["checkout_url"]
        .as_str()
        .expect("a page to pay on");
    url.rsplit('/').next().unwrap().to_owned()
}

async fn order_status(app: &TestApp, buyer: &SignedIn, id: &str) -> Value {
    app.get_json(&buyer.token, &format!("/api/v1/orders/{id}"))
        .await
}

fn count_coupons(app: &TestApp, order_id: &str) -> i64 {
    let mut conn = app.pool.get().unwrap();
    coupons::table
        .filter(coupons::order_id.eq(order_id))
        .count()
        .get_result(&mut conn)
        .unwrap()
}

fn count_events(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    card_events::table.count().get_result(&mut conn).unwrap()
}

#[tokio::test]
async fn an_order_paid_by_card_is_fulfilled_and_its_codes_emailed() {
    let (sink, port) = SmtpSink::start(0).await;
    let fake = FakeProvider::start();
    let app = card_app(&fake, Some(port), &[]).await;
    let customer = app.customer("visura").await;

    let order = order_by_card(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 2 }]),
    )
    .await;
    assert_eq!(order["status"], "awaiting_payment");
    assert_eq!(order["payment_method"], "card");
    assert_eq!(order["card"]["status"], "open");
    assert!(order["card"]["checkout_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/pay/cs_", fake.base)));
    // The session was asked for once, with an idempotency key, for the order's total.
    let requests = fake.list("requests").await;
    let creates: Vec<&Value> = requests
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/v1/checkout/sessions" && r["method"] == "POST")
        .collect();
    assert_eq!(creates.len(), 1);
    assert!(creates[0]["idempotency_key"]
        .as_str()
        .unwrap()
        .contains(order["card"]["id"].as_str().unwrap()));
    let sessions = fake.list("sessions").await;
    let gross_cents = (order["gross_total"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap()
        * 100.0)
        .round() as i64;
    assert_eq!(sessions[0]["amount_total"], gross_cents);

    // The buyer pays on the provider's page; its notification fulfils the order.
    let session = session_of(&order);
    let paid = fake
        .control(&format!("sessions/{session}/pay"), json!({}))
        .await;
    assert_eq!(paid["deliveries"], json!([200]));
    let id = order["id"].as_str().unwrap();
    let after = order_status(&app, &customer, id).await;
    assert_eq!(after["status"], "fulfilled", "{after}");
    assert_eq!(after["card"]["status"], "paid");
    assert!(after["invoice_number"].as_str().is_some());
    assert_eq!(count_coupons(&app, id), 2);

    let messages = sink.wait_for(2, Duration::from_secs(20)).await;
    let delivery = messages
        .iter()
        .map(|m| decoded(m))
        .find(|m| m.contains("i tuoi coupon"))
        .expect("the codes by email");
    assert_eq!(coupon_codes(&delivery).len(), 2, "{delivery}");
    // The invoice says it was paid by card (MP08).
    let mut conn = app.pool.get().unwrap();
    let xml: String = invoices::table
        .filter(invoices::order_id.eq(id))
        .select(invoices::xml)
        .first(&mut conn)
        .unwrap();
    assert!(
        xml.contains("<ModalitaPagamento>MP08</ModalitaPagamento>"),
        "{xml}"
    );
}

#[tokio::test]
async fn forged_stale_or_altered_notifications_are_refused_and_change_nothing() {
    let fake = FakeProvider::start();
    let (app, customer, order) = card_order(&fake, &[], "RIN-FIRMA", 1).await;
    let event_id = pay_quietly(&fake, &order).await;
    let events = fake.list("events").await;
    let body = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["id"] == event_id.as_str())
        .unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = chrono::Utc::now().timestamp();

    let forged = fake
        .control(
            "send",
            json!({ "body": body, "secret": "whsec_someone_else" }),
        )
        .await;
    // Well outside the five minutes, however slow the machine: the window's edges are
    // the signature vectors' business (src/card/signature.rs).
    let stale = fake
        .control("send", json!({ "body": body, "timestamp": now - 400 }))
        .await;
    let future = fake
        .control("send", json!({ "body": body, "timestamp": now + 400 }))
        .await;
    let signed_for_original = rinnovo::card::signature::sign(body.as_bytes(), SECRET, now);
    let altered_body = body.replacen("\"paid\"", "\"paid\" ", 1);
    assert_ne!(altered_body, body);
    let altered = fake
        .control(
            "send",
            json!({ "body": altered_body, "signature": signed_for_original }),
        )
        .await;
    let unsigned = fake
        .control("send", json!({ "body": body, "omit_signature": true }))
        .await;
    for (what, answer) in [
        ("forged", &forged),
        ("stale", &stale),
        ("from the future", &future),
        ("altered", &altered),
        ("unsigned", &unsigned),
    ] {
        assert_eq!(answer["status"], 400, "{what}: {answer}");
        let problem: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(problem["type"], "/problems/invalid-notification", "{what}");
    }
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        order_status(&app, &customer, id).await["status"],
        "awaiting_payment"
    );
    assert_eq!(
        count_events(&app),
        0,
        "nothing stored for a refused notification"
    );

    // The genuine one, signed with the second of the configured secrets, is applied.
    let genuine = fake
        .control(&format!("events/{event_id}/deliver"), json!({ "times": 1 }))
        .await;
    assert_eq!(genuine["statuses"], json!([200]));
    assert_eq!(
        order_status(&app, &customer, id).await["status"],
        "fulfilled"
    );
}

#[tokio::test]
async fn one_notification_delivered_ten_times_at_once_fulfils_once() {
    let fake = FakeProvider::start();
    let (app, customer, order) = card_order(&fake, &[], "RIN-CNS", 3).await;
    let event_id = pay_quietly(&fake, &order).await;
    let delivered = fake
        .control(
            &format!("events/{event_id}/deliver"),
            json!({ "times": 10, "concurrently": true }),
        )
        .await;
    assert_eq!(delivered["statuses"], json!(vec![200; 10]), "{delivered}");
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        order_status(&app, &customer, id).await["status"],
        "fulfilled"
    );
    assert_eq!(count_coupons(&app, id), 3, "one fulfilment");
    let mut conn = app.pool.get().unwrap();
    let documents: i64 = invoices::table
        .filter(invoices::order_id.eq(id))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(documents, 1, "one invoice");
    assert_eq!(count_events(&app), 1);

    // The metrics count the one payment as paid and the event once, as applied.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for series in [
        "rinnovo_card_payments{status=\"paid\"} 1",
        "rinnovo_card_notifications_total{outcome=\"settled\"} 1",
    ] {
        assert!(
            metrics.lines().any(|line| line == series),
            "{series}: {metrics}"
        );
    }
}

#[tokio::test]
async fn when_every_notification_is_lost_the_worker_fulfils_the_order() {
    let fake = FakeProvider::start();
    let app = card_app(
        &fake,
        None,
        &[
            ("RINNOVO_CARD_CHECK_AFTER_SECS", "0".into()),
            ("RINNOVO_CARD_WORKER_INTERVAL_SECS", "1".into()),
        ],
    )
    .await;
    let customer = app.customer("visura").await;
    let order = order_by_card(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
    )
    .await;
    let session = session_of(&order);
    fake.control("config", json!({ "drop_notifications": true }))
        .await;
    fake.control(&format!("sessions/{session}/pay"), json!({}))
        .await;
    let id = order["id"].as_str().unwrap();
    let mut status = Value::Null;
    for _ in 0..60 {
        status = order_status(&app, &customer, id).await["status"].clone();
        if status == "fulfilled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(status, "fulfilled", "the worker asked the provider");
    assert_eq!(count_coupons(&app, id), 1);

    // The late notification, when it comes, changes nothing.
    let events = fake.list("events").await;
    let event_id = events[0]["event"]["id"].as_str().unwrap();
    fake.control("config", json!({ "drop_notifications": false }))
        .await;
    let late = fake
        .control(&format!("events/{event_id}/deliver"), json!({ "times": 3 }))
        .await;
    assert_eq!(late["statuses"], json!([200, 200, 200]));
    assert_eq!(count_coupons(&app, id), 1);
}

#[tokio::test]
async fn a_payment_of_another_amount_is_held_and_can_be_refunded_whole() {
    let fake = FakeProvider::start();
    let app = card_app(&fake, None, &[]).await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let order = order_by_card(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
    )
    .await;
    let session = session_of(&order);
    fake.control(
        &format!("sessions/{session}/pay"),
        json!({ "amount_total": 100 }),
    )
    .await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        order_status(&app, &customer, id).await["status"],
        "awaiting_payment"
    );
    assert_eq!(count_coupons(&app, id), 0, "never fulfilled silently");
    let card_id = order["card"]["id"].as_str().unwrap();
    let held = app
        .get_json(
            &operator.token,
            &format!("/api/v1/backoffice/card-payments/{card_id}"),
        )
        .await;
    assert_eq!(held["status"], "held", "{held}");
    assert_eq!(held["paid"], "1.00");
    assert!(held["note"].as_str().unwrap().contains("1.00"));
    let listed = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/card-payments?status=held",
        )
        .await;
    assert_eq!(listed["card_payments"].as_array().unwrap().len(), 1);

    // The provider fails the refund: it stays queued with the error, and once given up
    // (as after its last attempt) the operator sends it again.
    fake.control("config", json!({ "fail_next": 1 })).await;
    let refund = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/card-payments/{card_id}/refunds"),
            &json!({ "reason": "importo diverso dall'ordine" }),
        )
        .await;
    assert_eq!(refund.status(), 201);
    let refund: Value = refund.json().await.unwrap();
    assert_eq!(refund["amount"], "1.00");
    let refund_id = refund["refund_id"].as_str().unwrap();
    let mut queued = Value::Null;
    for _ in 0..40 {
        queued = app
            .get_json(
                &operator.token,
                &format!("/api/v1/backoffice/card-payments/{card_id}"),
            )
            .await;
        if queued["refunds"][0]["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(queued["refunds"][0]["status"], "pending", "{queued}");
    assert!(queued["refunds"][0]["last_error"].as_str().is_some());
    {
        use rinnovo::db::schema::card_refunds;
        let mut conn = app.pool.get().unwrap();
        diesel::update(card_refunds::table.find(refund_id))
            .set(card_refunds::status.eq("dead"))
            .execute(&mut conn)
            .unwrap();
    }
    let retried = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/card-payments/{card_id}/refunds/{refund_id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(retried.status(), 200);
    let refunds = fake.refunds(1).await;
    assert_eq!(refunds.as_array().unwrap().len(), 1);
    assert_eq!(refunds[0]["amount"], 100);

    // A customer sees none of this.
    let refused = app
        .get_as(
            &customer.token,
            &format!("/api/v1/backoffice/card-payments/{card_id}"),
        )
        .await;
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn a_refund_voids_the_chosen_coupons_once_with_a_credit_note() {
    let fake = FakeProvider::start();
    let app = card_app(&fake, None, &[]).await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let order = order_by_card(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 2 }]),
    )
    .await;
    fake.control(&format!("sessions/{}/pay", session_of(&order)), json!({}))
        .await;
    let id = order["id"].as_str().unwrap();
    let card_id = order["card"]["id"].as_str().unwrap();
    let coupon_ids: Vec<String> = {
        let mut conn = app.pool.get().unwrap();
        coupons::table
            .filter(coupons::order_id.eq(id))
            .order(coupons::id.asc())
            .select(coupons::id)
            .load(&mut conn)
            .unwrap()
    };
    let path = format!("/api/v1/backoffice/card-payments/{card_id}/refunds");

    let unknown = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "reason": "rimborso", "coupons": ["nessuno"] }),
        )
        .await;
    let unknown = problem(unknown, 400).await;
    assert_eq!(unknown["errors"][0]["field"], "coupons");

    let first = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "reason": "il cliente rinuncia a un coupon", "coupons": [coupon_ids[0]] }),
        )
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["coupons"], 1);
    assert!(first["credit_note"].as_str().is_some(), "{first}");
    let half = first["amount"].as_str().unwrap().to_owned();

    // The same coupon again: already voided.
    let again = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "reason": "di nuovo", "coupons": [coupon_ids[0]] }),
        )
        .await;
    problem(again, 400).await;

    let rest = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "reason": "anche il resto" }),
        )
        .await;
    assert_eq!(rest.status(), 201);
    let rest: Value = rest.json().await.unwrap();
    assert_eq!(rest["coupons"], 1);
    assert_eq!(rest["amount"], half.as_str());
    assert_eq!(rest["card_payment"]["refunded"], order["gross_total"]);

    let nothing = app
        .post_json_as(&operator.token, &path, &json!({ "reason": "ancora" }))
        .await;
    let nothing = problem(nothing, 409).await;
    assert_eq!(nothing["type"], "/problems/nothing-to-refund");

    // Each refund reached the provider once, with its own idempotency key, and the
    // provider's notifications were recorded.
    let refunds = fake.refunds(2).await;
    assert_eq!(refunds.as_array().unwrap().len(), 2);
    // Sent by the request itself, unless the worker's round took them first: then a
    // moment later.
    let mut detail = Value::Null;
    for _ in 0..40 {
        detail = app
            .get_json(
                &operator.token,
                &format!("/api/v1/backoffice/card-payments/{card_id}"),
            )
            .await;
        let all_sent = detail["refunds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "sent" && r["provider_status"] == "succeeded");
        if all_sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ours = detail["refunds"].as_array().unwrap();
    assert_eq!(ours.len(), 2);
    for refund in ours {
        assert_eq!(refund["status"], "sent", "{refund}");
        assert_eq!(refund["provider_status"], "succeeded", "{refund}");
        assert!(refund["provider_refund_id"]
            .as_str()
            .unwrap()
            .starts_with("re_"));
    }
    // Only a refund given up can be sent again.
    let not_dead = app
        .post_json_as(
            &operator.token,
            &format!(
                "/api/v1/backoffice/card-payments/{card_id}/refunds/{}/retry",
                ours[0]["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(not_dead, 404).await["type"],
        "/problems/unknown-dead-refund"
    );
    let keys: Vec<Value> = fake
        .list("requests")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/v1/refunds")
        .map(|r| r["idempotency_key"].clone())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

#[tokio::test]
async fn a_top_up_by_card_credits_the_balance_once_and_an_expired_page_ends_an_order() {
    let fake = FakeProvider::start();
    let app = card_app(&fake, None, &[]).await;
    let customer = app.customer("visura").await;
    let response = app.top_up(&customer.token, "50.00", "card").await;
    assert_eq!(response.status(), 201);
    let top_up: Value = response.json().await.unwrap();
    assert_eq!(top_up["reference"], Value::Null);
    let session = session_of(&top_up);
    let paid = fake
        .control(&format!("sessions/{session}/pay"), json!({}))
        .await;
    let event_id = paid["event"]["id"].as_str().unwrap();
    fake.control(&format!("events/{event_id}/deliver"), json!({ "times": 5 }))
        .await;
    let balance = app.get_json(&customer.token, "/api/v1/prepaid").await;
    assert_eq!(balance["balance"], "50.00", "{balance}");

    let order = order_by_card(
        &app,
        &customer,
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
    )
    .await;
    fake.control(
        &format!("sessions/{}/expire", session_of(&order)),
        json!({}),
    )
    .await;
    let id = order["id"].as_str().unwrap();
    let after = order_status(&app, &customer, id).await;
    assert_eq!(after["status"], "expired");
    assert_eq!(after["card"]["status"], "expired");
}

#[tokio::test]
async fn without_a_provider_the_card_is_not_offered() {
    let app = spawn_app_with(Default::default(), &[]).await;
    let customer = app.customer("visura").await;
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({ "lines": [{ "product": "RIN-FIRMA", "quantity": 1 }], "payment_method": "card" }))
        .send()
        .await
        .unwrap();
    let refused = problem(response, 400).await;
    assert_eq!(refused["errors"][0]["field"], "payment_method");
    let webhook = app
        .client
        .post(format!("{}/api/v1/card/notifications", app.address))
        .header("Stripe-Signature", "t=1,v1=00")
        .json(&json!({ "id": "evt_1" }))
        .send()
        .await
        .unwrap();
    let off = "/problems/card-payments-off";
    assert_eq!(problem(webhook, 404).await["type"], off);
    let page_again = app
        .post_json_as(&customer.token, "/api/v1/card-payments/x/page", &json!({}))
        .await;
    assert_eq!(problem(page_again, 404).await["type"], off);
    // The statement page's top-up by card says it in Italian.
    let (browser, _) = crate::web_client::Browser::signed_in(&app, &customer.email).await;
    let page = browser
        .post(
            "/negozio/prepagato/ricarica-con-carta",
            &[("amount", "50,00")],
        )
        .await;
    assert_eq!(page.status, 404);
    assert!(
        page.body
            .contains("Il pagamento con carta non è disponibile."),
        "{}",
        page.body
    );
    let unsigned = app
        .post_json("/api/v1/card/notifications", &json!({ "id": "evt_1" }))
        .await;
    assert_eq!(
        problem(unsigned, 400).await["type"],
        "/problems/invalid-notification"
    );
}

#[tokio::test]
async fn a_provider_that_does_not_answer_is_a_503_and_the_same_request_again_opens_the_page() {
    let fake = FakeProvider::start();
    let app = card_app(&fake, None, &[]).await;
    let customer = app.customer("visura").await;
    fake.control("config", json!({ "fail_next": 1 })).await;
    let key = Uuid::new_v4().to_string();
    let send = || {
        app.client
            .post(format!("{}/api/v1/orders", app.address))
            .bearer_auth(&customer.token)
            .header("Idempotency-Key", &key)
            .json(&json!({ "lines": [{ "product": "RIN-FIRMA", "quantity": 1 }], "payment_method": "card" }))
            .send()
    };
    let first = problem(send().await.unwrap(), 503).await;
    assert_eq!(first["type"], "/problems/payment-provider-unavailable");
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    let order: Value = second.json().await.unwrap();
    assert_eq!(order["card"]["status"], "open");
    let orders = app.get_json(&customer.token, "/api/v1/orders").await;
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1, "one order");
}
