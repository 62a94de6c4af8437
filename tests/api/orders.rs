//! Orders paid from the prepaid account: invoice numbers, coupons, emails, idempotency,
//! and the invariants under concurrency.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, spawn_app_for_a_crowd, spawn_app_with_smtp, TestApp};
use crate::smtp::{assert_email_snapshot, coupon_codes, decoded, free_port, SmtpSink};
use diesel::prelude::*;
use rinnovo::auth::Role;
use rinnovo::db::schema::audit_log;

fn one(product: &str) -> Value {
    json!([{ "product": product, "quantity": 1 }])
}

fn invoice_seq(order: &Value) -> u32 {
    let number = order["invoice_number"].as_str().unwrap();
    number.rsplit('-').next().unwrap().parse().unwrap()
}

/// `count` one-coupon orders sent at once (released together by a barrier), round-robin
/// over `tokens`, each with its own Idempotency-Key: (status, body) of each.
async fn fire_orders(app: &TestApp, tokens: &[String], count: usize) -> Vec<(u16, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let mut handles = Vec::new();
    for i in 0..count {
        let token = tokens[i % tokens.len()].clone();
        let client = app.client.clone();
        let url = format!("{}/api/v1/orders", app.address);
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", format!("ordine-{i}"))
                .json(&json!({ "lines": one("RIN-FIRMA"), "payment_method": "prepaid" }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }));
    }
    let mut results = Vec::with_capacity(count);
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

async fn balance(app: &TestApp, token: &str) -> String {
    let body: Value = app.get_json(token, "/api/v1/prepaid").await;
    body["balance"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_combined_coupon_paid_from_prepaid_arrives_by_email() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "40.00");

    let response = app.order(&customer.token, one("RIN-FIRMA-CNS")).await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "fulfilled");
    assert_eq!(order["gross_total"], "31.72");
    assert_eq!(order["vat_total"], "5.72");
    assert_eq!(order["coupons"], 1);
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(order["invoice_number"], format!("V{year}-000001"));
    assert_eq!(balance(&app, &customer.token).await, "8.28");

    let messages = sink.wait_for(2, Duration::from_secs(20)).await;
    let messages: Vec<String> = messages.iter().map(|m| decoded(m)).collect();
    let delivery = messages
        .iter()
        .find(|m| m.contains("i tuoi coupon"))
        .expect("coupon email");
    let receipt = messages
        .iter()
        .find(|m| m.contains("ricevuta ordine"))
        .expect("receipt");
    assert!(
        delivery.contains(&format!("To: {}", customer.email)),
        "{delivery}"
    );
    assert!(
        delivery.contains("From: \"Visura Rinnovi\" <rinnovi@visura.example>"),
        "{delivery}"
    );
    assert!(delivery.contains("text/html") && delivery.contains("text/plain"));
    // A Message-ID of the outbox row's, the same on a resend.
    assert!(
        delivery.contains("Message-ID: <") && delivery.contains("@visura.example>"),
        "{delivery}"
    );
    let codes = coupon_codes(delivery);
    assert_eq!(codes.len(), 1, "{delivery}");
    // Every word the customer reads, pinned: the code with its product and validity, the
    // renewal steps, the receipt's lines and totals.
    assert_email_snapshot("coupon_delivery", delivery);
    assert_email_snapshot("order_receipt", receipt);

    // The code from the email works with the status service; the list shows it masked.
    let status: Value = app
        .get(&format!("/api/v1/coupons/{}/status", codes[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "available");
    assert_eq!(status["covers"], "both");
    let list: Value = app.get_json(&customer.token, "/api/v1/coupons").await;
    let shown = list["coupons"][0]["code"].as_str().unwrap();
    assert!(shown.starts_with("****-****-****-"), "{shown}");
    assert!(codes[0].ends_with(&shown[15..]), "{shown} vs {}", codes[0]);
    assert!(!list.to_string().contains(&codes[0]));

    // Once sent, the outbox no longer holds the code.
    let mut conn = app.pool.get().unwrap();
    use diesel::prelude::*;
    use rinnovo::db::schema::emails;
    let sent: Vec<(String, String)> = emails::table
        .select((emails::context, emails::subject))
        .load(&mut conn)
        .unwrap();
    assert!(
        sent.iter()
            .all(|(context, _)| context == "{}" && !context.contains(&codes[0])),
        "sent contexts are cleared"
    );
    assert!(
        sent.iter()
            .any(|(_, subject)| subject.contains("i tuoi coupon")),
        "subjects are kept"
    );
}

#[tokio::test]
async fn the_same_key_returns_the_first_result() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "100.00");
    let first = app
        .order_with_key(&customer.token, "chiave-1", one("RIN-FIRMA"))
        .await;
    assert_eq!(first.status(), 201);
    let first_body = first.text().await.unwrap();
    let again = app
        .order_with_key(&customer.token, "chiave-1", one("RIN-FIRMA"))
        .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(
        balance(&app, &customer.token).await,
        "86.58",
        "debited once"
    );
    let orders: Value = app.get_json(&customer.token, "/api/v1/orders").await;
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1);

    let body = problem(
        app.order_with_key(&customer.token, "chiave-1", one("RIN-CNS"))
            .await,
        422,
    )
    .await;
    assert_eq!(body["type"], "/problems/idempotency-key-reused");

    // Keys are per user: another customer may use the same one.
    let other = app.customer("visura").await;
    app.credit(&other.user_id, "20.00");
    assert_eq!(
        app.order_with_key(&other.token, "chiave-1", one("RIN-FIRMA"))
            .await
            .status(),
        201
    );

    let missing = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .json(&json!({ "lines": one("RIN-FIRMA"), "payment_method": "prepaid" }))
        .send()
        .await
        .unwrap();
    let body = problem(missing, 400).await;
    assert_eq!(body["errors"][0]["field"], "Idempotency-Key");
}

#[tokio::test]
async fn a_short_balance_is_409_and_nothing_happens() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "31.71");
    let body = problem(
        app.order_with_key(&customer.token, "k", one("RIN-FIRMA-CNS"))
            .await,
        409,
    )
    .await;
    assert_eq!(body["type"], "/problems/insufficient-funds");
    assert_eq!(balance(&app, &customer.token).await, "31.71");
    let orders: Value = app.get_json(&customer.token, "/api/v1/orders").await;
    assert_eq!(orders["orders"], json!([]));
    let coupons: Value = app.get_json(&customer.token, "/api/v1/coupons").await;
    assert_eq!(coupons["coupons"], json!([]));
    {
        use diesel::prelude::*;
        use rinnovo::db::schema::emails;
        let queued: i64 = emails::table
            .filter(emails::kind.ne("email_confirmation"))
            .count()
            .get_result(&mut app.pool.get().unwrap())
            .unwrap();
        assert_eq!(queued, 0);
    }
    // The failed attempt consumed no invoice number, and the same key may try again.
    app.credit(&customer.user_id, "0.01");
    let order: Value = app
        .order_with_key(&customer.token, "k", one("RIN-FIRMA-CNS"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(invoice_seq(&order), 1);
    assert_eq!(balance(&app, &customer.token).await, "0.00");
}

/// 100 orders at once on one brand, from ten customers: 100 consecutive invoice numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_get_consecutive_invoice_numbers() {
    let app = spawn_app_for_a_crowd().await;
    let mut customers = Vec::new();
    for _ in 0..10 {
        let customer = app.customer("visura").await;
        app.credit(&customer.user_id, "200.00");
        customers.push(customer);
    }
    let tokens: Vec<String> = customers.iter().map(|c| c.token.clone()).collect();
    let results = fire_orders(&app, &tokens, 100).await;
    let mut numbers = BTreeSet::new();
    for (status, order) in results {
        assert_eq!(status, 201, "{order}");
        numbers.insert(invoice_seq(&order));
    }
    assert_eq!(numbers, (1..=100).collect::<BTreeSet<u32>>());
    // Lextel's numbering is its own.
    let lextel = app.customer("lextel").await;
    app.credit(&lextel.user_id, "20.00");
    let order: Value = app
        .order(&lextel.token, one("RIN-FIRMA"))
        .await
        .json()
        .await
        .unwrap();
    assert!(order["invoice_number"].as_str().unwrap().starts_with('L'));
    assert_eq!(invoice_seq(&order), 1);
}

/// 50 orders at once on one account with money for 20: exactly 20 go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_never_overdraw() {
    let app = spawn_app_for_a_crowd().await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "268.40"); // 20 × 13.42
    let results = fire_orders(&app, std::slice::from_ref(&customer.token), 50).await;
    let mut paid = BTreeSet::new();
    let mut refused = 0;
    for result in results {
        match result {
            (201, order) => {
                paid.insert(invoice_seq(&order));
            }
            (409, _) => refused += 1,
            (status, body) => panic!("{status}: {body}"),
        }
    }
    assert_eq!((paid.len(), refused), (20, 30));
    assert_eq!(
        paid,
        (1..=20).collect::<BTreeSet<u32>>(),
        "no gaps from the refused ones"
    );
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!((balance.cents(), ledger.cents()), (0, 0));
    let coupons: Value = app.get_json(&customer.token, "/api/v1/coupons").await;
    assert_eq!(coupons["coupons"].as_array().unwrap().len(), 20);
}

/// The mail server is down when the order is paid, then comes back: both emails arrive,
/// once each.
#[tokio::test]
async fn emails_wait_for_the_mail_server_and_arrive_once() {
    let port = free_port();
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "20.00");
    assert_eq!(
        app.order(&customer.token, one("RIN-FIRMA")).await.status(),
        201
    );
    // Let a few deliveries fail (retries after 1 s, 2 s...).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    {
        use diesel::prelude::*;
        use rinnovo::db::schema::emails;
        let attempts: Vec<i32> = emails::table
            .select(emails::attempts)
            .load(&mut app.pool.get().unwrap())
            .unwrap();
        assert!(
            attempts.iter().all(|a| *a >= 1),
            "delivery was tried: {attempts:?}"
        );
    }
    let (sink, _) = SmtpSink::start(port).await;
    sink.wait_for(3, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The order's two (the sign-up's confirmation email, read from the outbox while the
    // server was down, arrives now too).
    let messages: Vec<String> = sink
        .messages()
        .into_iter()
        .filter(|m| !decoded(m).contains("conferma-email?token="))
        .collect();
    assert_eq!(messages.len(), 2, "each email exactly once");
    assert!(messages
        .iter()
        .any(|m| decoded(m).contains("i tuoi coupon")));
}

#[tokio::test]
async fn a_dead_email_is_listed_and_can_be_retried() {
    let port = free_port();
    let app = spawn_app_with_smtp(port, &[("RINNOVO_MAIL_MAX_ATTEMPTS", "1".into())]).await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    app.credit(&customer.user_id, "20.00");
    app.order(&customer.token, one("RIN-FIRMA")).await;
    let mut dead = Vec::new();
    // Up to 30 s: on a loaded machine the dispatcher's first (and last) attempts take a while.
    for _ in 0..300 {
        let body: Value = app
            .get_json(&office.token, "/api/v1/backoffice/emails?status=dead")
            .await;
        // The order's two; the sign-up's confirmation email died too (its link was read
        // from the outbox).
        dead = body["emails"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] != "email_confirmation")
            .cloned()
            .collect();
        if dead.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 2, "both emails dead after one attempt");
    assert!(dead[0]["last_error"].as_str().is_some());
    let lextel_office = app.back_office("lextel").await;
    let id = dead[0]["id"].as_str().unwrap();
    let refused = problem(
        app.post_json_as(
            &lextel_office.token,
            &format!("/api/v1/backoffice/emails/{id}/retry"),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(refused["type"], "/problems/unknown-email");

    let (sink, _) = SmtpSink::start(port).await;
    for email in &dead {
        let id = email["id"].as_str().unwrap();
        let response = app
            .post_json_as(
                &office.token,
                &format!("/api/v1/backoffice/emails/{id}/retry"),
                &json!({}),
            )
            .await;
        assert_eq!(response.status(), 202);
    }
    sink.wait_for(2, Duration::from_secs(20)).await;
    // Each retry is the operator's, in the audit log; the refused one left nothing.
    let mut audited: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.eq("email.retried"))
        .select((audit_log::subject_id, audit_log::actor))
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    audited.sort();
    let mut expected: Vec<(String, String)> = dead
        .iter()
        .map(|e| {
            let id = e["id"].as_str().unwrap().to_owned();
            (id, format!("user:{}", office.user_id))
        })
        .collect();
    expected.sort();
    assert_eq!(audited, expected);
    problem(
        app.get_as(&customer.token, "/api/v1/backoffice/emails")
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn orders_are_visible_to_their_owner_and_the_brand_back_office_only() {
    let app = spawn_app().await;
    let anna = app.customer("visura").await;
    let bruno = app.customer("visura").await;
    app.credit(&anna.user_id, "20.00");
    let order: Value = app
        .order(&anna.token, one("RIN-FIRMA"))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    assert_eq!(app.get_as(&anna.token, &path).await.status(), 200);
    problem(app.get_as(&bruno.token, &path).await, 404).await;
    let bruno_list: Value = app.get_json(&bruno.token, "/api/v1/orders").await;
    assert_eq!(bruno_list["orders"], json!([]));
    let office = app.back_office("visura").await;
    assert_eq!(app.get_as(&office.token, &path).await.status(), 200);
    let all: Value = app.get_json(&office.token, "/api/v1/orders").await;
    assert_eq!(all["orders"].as_array().unwrap().len(), 1);
    let lextel_office = app.back_office("lextel").await;
    problem(app.get_as(&lextel_office.token, &path).await, 404).await;
}

#[tokio::test]
async fn bulk_orders_attach_the_codes_as_csv() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let officer = app
        .user_with_role("visura", Role::RegistrationOfficer)
        .await;
    app.credit(&officer.user_id, "1000.00");
    let response = app
        .order(&officer.token, json!([{ "product": "RIN-FIRMA", "quantity": 25 }, { "product": "RIN-CNS", "quantity": 5 }]))
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["coupons"], 30);
    // 30 × 11.00 = 330.00; IVA 72.60
    assert_eq!(order["gross_total"], "402.60");
    let messages = sink.wait_for(2, Duration::from_secs(20)).await;
    let delivery = messages
        .iter()
        .map(|m| decoded(m))
        .find(|m| m.contains("i tuoi coupon"))
        .unwrap();
    assert!(delivery.contains("text/csv"), "CSV attachment");
    assert!(delivery.contains(".csv"));
    assert!(
        coupon_codes(&delivery).len() >= 30,
        "codes in the body (and the attachment)"
    );
}

#[tokio::test]
async fn coupon_status_void_and_refund() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    app.credit(&customer.user_id, "13.42");
    app.order(&customer.token, one("RIN-FIRMA")).await;
    assert_eq!(balance(&app, &customer.token).await, "0.00");
    let messages = sink.wait_for(2, Duration::from_secs(20)).await;
    let code = messages
        .iter()
        .flat_map(|m| coupon_codes(&decoded(m)))
        .next()
        .unwrap();

    let list: Value = app.get_json(&customer.token, "/api/v1/coupons").await;
    let coupon_id = list["coupons"][0]["id"].as_str().unwrap().to_owned();
    let void_path = format!("/api/v1/backoffice/coupons/{coupon_id}/void");
    problem(
        app.post_json_as(&customer.token, &void_path, &json!({ "reason": "prova" }))
            .await,
        403,
    )
    .await;
    let lextel_office = app.back_office("lextel").await;
    problem(
        app.post_json_as(
            &lextel_office.token,
            &void_path,
            &json!({ "reason": "prova" }),
        )
        .await,
        403,
    )
    .await;
    let response = app
        .post_json_as(
            &office.token,
            &void_path,
            &json!({ "reason": "richiesta cliente" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["refunded"], "13.42");
    assert_eq!(balance(&app, &customer.token).await, "13.42");
    let body = problem(
        app.post_json_as(&office.token, &void_path, &json!({ "reason": "di nuovo" }))
            .await,
        409,
    )
    .await;
    assert_eq!(body["type"], "/problems/coupon-not-available");

    let status: Value = app
        .get(&format!("/api/v1/coupons/{code}/status"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "voided");
    let (balance_now, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance_now, ledger);
}

#[tokio::test]
async fn the_status_check_catches_typos_and_is_rate_limited() {
    let app = spawn_app().await;
    let code = rinnovo::coupons::CouponCode::generate().to_string();
    let body = problem(
        app.get(&format!("/api/v1/coupons/{code}/status")).await,
        404,
    )
    .await;
    assert_eq!(body["type"], "/problems/unknown-coupon");
    // One character off: refused before any lookup, and not counted.
    let mut typo: Vec<char> = code.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let body = problem(
        app.get(&format!("/api/v1/coupons/{typo}/status")).await,
        400,
    )
    .await;
    assert_eq!(body["errors"][0]["rule"], "check_character");
    for _ in 0..29 {
        assert_eq!(
            app.get(&format!("/api/v1/coupons/{code}/status"))
                .await
                .status(),
            404
        );
    }
    let limited = app.get(&format!("/api/v1/coupons/{code}/status")).await;
    assert!(limited.headers().contains_key("retry-after"));
    problem(limited, 429).await;
}

#[tokio::test]
async fn without_smtp_emails_are_written_as_eml_files() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "20.00");
    assert_eq!(
        app.order(&customer.token, one("RIN-FIRMA")).await.status(),
        201
    );
    let dir = app.database.dir.path().join("mail");
    let mut files = Vec::new();
    for _ in 0..100 {
        files = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if files.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(files.len(), 2, "{files:?}");
    let all: String = files
        .iter()
        .map(|f| decoded(&std::fs::read_to_string(f).unwrap()))
        .collect();
    assert!(all.contains("i tuoi coupon") && all.contains("ricevuta ordine"));
    assert_eq!(coupon_codes(&all).len(), 1);
}

/// The order a customer asks about, found by what they quote: its RF code (printed, any
/// case), its invoice number, the address its codes went to, its state. Customers search
/// only their own orders; another brand's back-office finds nothing.
#[tokio::test]
async fn the_back_office_finds_an_order_by_rf_code_invoice_number_or_email() {
    let app = spawn_app().await;
    let anna = app.customer("visura").await;
    let bruno = app.customer("visura").await;
    app.credit(&anna.user_id, "20.00");
    let prepaid: Value = app
        .order(&anna.token, one("RIN-FIRMA"))
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&bruno.token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "lines": one("RIN-FIRMA"), "payment_method": "bank_transfer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let transfer: Value = response.json().await.unwrap();
    let office = app.back_office("visura").await;
    let found = |token: String, query: String| {
        let app = &app;
        async move {
            let list: Value = app
                .get_json(&token, &format!("/api/v1/orders?{query}"))
                .await;
            list["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let (prepaid_id, transfer_id) = (
        prepaid["id"].as_str().unwrap().to_owned(),
        transfer["id"].as_str().unwrap().to_owned(),
    );
    let printed = transfer["transfer"]["reference_print"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let invoice = prepaid["invoice_number"].as_str().unwrap().to_lowercase();
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let bruno_email = bruno.email.to_uppercase();
    for (query, expected) in [
        (
            format!("reference={}", encode(&printed)),
            vec![&transfer_id],
        ),
        (
            format!("invoice_number={}", encode(&invoice)),
            vec![&prepaid_id],
        ),
        (
            format!("email={}", encode(&bruno_email)),
            vec![&transfer_id],
        ),
        ("status=awaiting_payment".into(), vec![&transfer_id]),
        ("status=fulfilled".into(), vec![&prepaid_id]),
        (String::new(), vec![&transfer_id, &prepaid_id]),
        (
            format!("status=fulfilled&reference={}", encode(&printed)),
            vec![],
        ),
    ] {
        assert_eq!(
            found(office.token.clone(), query.clone()).await,
            expected.into_iter().cloned().collect::<Vec<String>>(),
            "{query}"
        );
    }
    // A customer searches their own orders only; another brand's back-office, its own.
    let query = format!("reference={}", encode(&printed));
    assert!(found(anna.token.clone(), query.clone()).await.is_empty());
    assert_eq!(
        found(bruno.token.clone(), query.clone()).await,
        vec![transfer_id.clone()]
    );
    let lextel = app.back_office("lextel").await;
    assert!(found(lextel.token.clone(), query).await.is_empty());

    // Every wrong filter is named, with its rule.
    let body = problem(
        app.get_as(
            &office.token,
            "/api/v1/orders?status=lost&reference=RF00ABC&email=nobody&invoice_number=%20",
        )
        .await,
        400,
    )
    .await;
    let fields: BTreeSet<(&str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(fields.len(), 4, "{body}");
    assert!(fields.contains(&("status", "one_of")), "{body}");
    assert!(fields.contains(&("invoice_number", "length")), "{body}");
    assert!(fields.iter().any(|(f, _)| *f == "reference"), "{body}");
    assert!(fields.iter().any(|(f, _)| *f == "email"), "{body}");
}

/// The cap is one rule: 21 coupons on one line are refused as 20 + 1 on two lines are,
/// with the same problem; a line of no coupons is a wrong field.
#[tokio::test]
async fn one_line_over_the_cap_is_refused_as_several_lines_over_it() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "1000.00");
    let one_line = json!([{ "product": "RIN-FIRMA", "quantity": 21 }]);
    let two_lines = json!([{ "product": "RIN-FIRMA", "quantity": 20 }, { "product": "RIN-CNS", "quantity": 1 }]);
    let mut bodies = Vec::new();
    for lines in [one_line, two_lines] {
        let body = problem(app.order(&customer.token, lines).await, 422).await;
        assert_eq!(body["type"], "/problems/order-too-large", "{body}");
        bodies.push(body);
    }
    assert_eq!(bodies[0]["title"], bodies[1]["title"]);
    let body = problem(
        app.order(
            &customer.token,
            json!([{ "product": "RIN-FIRMA", "quantity": 0 }]),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(body["type"], "/problems/invalid-field");
    assert_eq!(body["errors"][0]["field"], "lines[0].quantity");
    assert_eq!(balance(&app, &customer.token).await, "1000.00");
}
