//! Payment by transfer with an RF code and the reconciliation of statements: each
//! outcome, re-imports, the formats, malformed files, concurrency, the back-office queue.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use rinnovo::db::schema::{audit_log, emails, orders, payments, statements};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{problem, spawn_app, spawn_app_with_smtp, SignedIn, TestApp};
use crate::smtp::{assert_email_snapshot, coupon_codes, decoded, SmtpSink};
use crate::statements::{camt053, camt054, cbi_camt053, import, postal_csv, Line};

/// RIN-FIRMA-CNS: 26.00 + 22% = 31.72.
const PRODUCT: &str = "RIN-FIRMA-CNS";
const PRICE: &str = "31.72";

async fn transfer_order(app: &TestApp, customer: &SignedIn, method: &str) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(
            &json!({ "lines": [{ "product": PRODUCT, "quantity": 1 }], "payment_method": method }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn rf(order: &Value) -> String {
    order["transfer"]["reference"].as_str().unwrap().to_owned()
}

async fn import_ok(app: &TestApp, operator: &SignedIn, file: &str) -> Value {
    let response = import(app, operator, file).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert!(status == 201 || status == 200, "{status} {body}");
    body
}

async fn order(app: &TestApp, customer: &SignedIn, id: &str) -> Value {
    app.get_json(&customer.token, &format!("/api/v1/orders/{id}"))
        .await
}

fn count(body: &Value, outcome: &str) -> u64 {
    body["outcomes"][outcome]["count"].as_u64().unwrap_or(0)
}

fn bank_ref() -> String {
    format!("BR{}", Uuid::new_v4().simple())
}

/// Rows in the tables an import writes, to show that something changed nothing.
fn footprint(app: &TestApp) -> (i64, i64, i64, i64, i64) {
    let mut conn = app.pool.get().unwrap();
    let n = |c: QueryResult<i64>| c.unwrap();
    (
        n(payments::table.count().get_result(&mut conn)),
        n(statements::table.count().get_result(&mut conn)),
        n(emails::table.count().get_result(&mut conn)),
        n(audit_log::table.count().get_result(&mut conn)),
        n(orders::table
            .filter(orders::status.eq("fulfilled"))
            .count()
            .get_result(&mut conn)),
    )
}

#[tokio::test]
async fn a_bank_transfer_is_matched_and_the_coupons_arrive_by_email() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;

    let placed = transfer_order(&app, &customer, "bank_transfer").await;
    assert_eq!(placed["status"], "awaiting_payment");
    assert_eq!(placed["invoice_number"], Value::Null);
    assert_eq!(placed["coupons"], 0);
    let transfer = &placed["transfer"];
    assert_eq!(transfer["amount_due"], PRICE);
    assert_eq!(transfer["pay_to"]["iban"], "IT60X0542811101000000123456");
    let reference = rf(&placed);
    assert!(rinnovo::payments::CreditorReference::parse(&reference).is_ok());
    assert_eq!(
        transfer["reference_print"]
            .as_str()
            .unwrap()
            .replace(' ', ""),
        reference
    );

    // The instructions email: amount, RF code in print form, IBAN, deadline.
    let messages = sink.wait_for(1, Duration::from_secs(20)).await;
    let instructions = decoded(&messages[0]);
    assert!(instructions.contains("come pagare"), "{instructions}");
    assert!(instructions.contains(transfer["reference_print"].as_str().unwrap()));
    assert_email_snapshot("transfer_instructions", &instructions);

    let file = camt053(
        8,
        &[Line::credit(
            PRICE,
            &format!("RINNOVO {reference}"),
            &bank_ref(),
        )],
    );
    let response = import(&app, &operator, &file).await;
    assert_eq!(response.status(), 201);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["format"], "camt.053");
    assert_eq!(report["version"], "camt.053.001.08");
    assert_eq!(report["new_entries"], 1);
    assert_eq!(count(&report, "matched"), 1, "{report}");

    let paid = order(&app, &customer, placed["id"].as_str().unwrap()).await;
    assert_eq!(paid["status"], "fulfilled");
    assert_eq!(paid["coupons"], 1);
    let year = Utc::now().format("%Y").to_string();
    assert_eq!(paid["invoice_number"], format!("V{year}-000001"));
    assert_eq!(paid["transfer"]["amount_received"], PRICE);
    assert_eq!(paid["transfer"]["amount_due"], "0.00");

    let messages = sink.wait_for(3, Duration::from_secs(20)).await;
    let delivery = messages
        .iter()
        .map(|m| decoded(m))
        .find(|m| m.contains("i tuoi coupon"))
        .expect("the coupon email");
    assert_eq!(coupon_codes(&delivery).len(), 1);
    assert!(delivery.contains(&format!("V{year}-000001")));

    // The same file again, and the same entry in a camt.054: nothing changes.
    let before = footprint(&app);
    let response = import(&app, &operator, &file).await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["new_entries"], 0);
    assert_eq!(again["already_imported"], 1);
    assert_eq!(again["statement_id"], Value::Null);
    assert_eq!(footprint(&app), before, "a re-import changes nothing");
}

#[tokio::test]
async fn partial_payments_add_up_and_overpayments_go_to_the_prepaid_account() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;

    // 20.00 then 11.72: partial, then matched.
    let first = transfer_order(&app, &customer, "bank_transfer").await;
    let first_rf = rf(&first);
    let report = import_ok(
        &app,
        &operator,
        &camt053(8, &[Line::credit("20.00", &first_rf, &bank_ref())]),
    )
    .await;
    assert_eq!(count(&report, "partial"), 1, "{report}");
    let waiting = order(&app, &customer, first["id"].as_str().unwrap()).await;
    assert_eq!(waiting["status"], "awaiting_payment");
    assert_eq!(waiting["transfer"]["amount_received"], "20.00");
    assert_eq!(waiting["transfer"]["amount_due"], "11.72");
    let report = import_ok(
        &app,
        &operator,
        &camt053(8, &[Line::credit("11.72", &first_rf, &bank_ref())]),
    )
    .await;
    assert_eq!(count(&report, "matched"), 1, "{report}");
    let done = order(&app, &customer, first["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "fulfilled");
    assert_eq!(done["coupons"], 1);

    // 40.00 for 31.72: fulfilled, 8.28 credited; a second 31.72: duplicate, credited.
    let second = transfer_order(&app, &customer, "postal_slip").await;
    let second_rf = rf(&second);
    let report = import_ok(
        &app,
        &operator,
        &camt053(
            8,
            &[
                Line::credit("40.00", &second_rf, &bank_ref()),
                Line::credit(PRICE, &second_rf, &bank_ref()),
            ],
        ),
    )
    .await;
    assert_eq!(count(&report, "overpaid"), 1, "{report}");
    assert_eq!(count(&report, "duplicate"), 1, "{report}");
    let done = order(&app, &customer, second["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "fulfilled");
    assert_eq!(done["coupons"], 1, "fulfilled once");
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(
        balance.to_string(),
        "40.00",
        "8.28 excess + 31.72 duplicate"
    );
    assert_eq!(balance, ledger);

    // Invoice numbers: one per fulfilled order, no gaps.
    let year = Utc::now().format("%Y").to_string();
    let numbers: Vec<String> = [&first, &second]
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    let mut got = Vec::new();
    for id in numbers {
        got.push(
            order(&app, &customer, &id).await["invoice_number"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        got,
        vec![format!("V{year}-000001"), format!("V{year}-000002")]
    );
}

#[tokio::test]
async fn unknown_missing_and_expired_references_wait_for_the_back_office() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let placed = transfer_order(&app, &customer, "bank_transfer").await;
    let reference = rf(&placed);
    let unknown = rinnovo::payments::CreditorReference::generate();

    // Booked after the deadline (10 days by default): expired. The order is made twelve
    // days ago, so that the payment, booked yesterday, is after it and after its deadline
    // (and not among today's bookings, which the summary below counts).
    {
        let made = Utc::now().naive_utc() - chrono::Duration::days(12);
        let mut conn = app.pool.get().unwrap();
        diesel::update(orders::table.filter(orders::id.eq(placed["id"].as_str().unwrap())))
            .set((
                orders::created_at.eq(made),
                orders::reserved_until.eq(made + chrono::Duration::days(10)),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let late = Utc::now().date_naive() - chrono::Days::new(1);
    let report = import_ok(
        &app,
        &operator,
        &camt053(
            8,
            &[
                Line::credit(
                    "10.00",
                    &format!("ordine {}", unknown.as_str()),
                    &bank_ref(),
                ),
                Line::credit("12.00", "rinnovo firma digitale", &bank_ref()),
                Line::credit(PRICE, &reference, &bank_ref()).booked(late),
            ],
        ),
    )
    .await;
    assert_eq!(count(&report, "unmatched"), 3, "{report}");
    assert_eq!(report["outcomes"]["unmatched"]["amount"], "53.72");
    assert_eq!(
        order(&app, &customer, placed["id"].as_str().unwrap()).await["status"],
        "awaiting_payment"
    );

    let queue = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/payments?status=unmatched",
        )
        .await;
    assert_eq!(queue["totals"]["count"], 3);
    assert_eq!(queue["totals"]["amount"], "53.72");
    let reasons: Vec<&str> = queue["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reason"].as_str().unwrap())
        .collect();
    for reason in ["unknown_reference", "no_reference", "reservation_expired"] {
        assert!(reasons.contains(&reason), "{reasons:?}");
    }
    let by_reason = |reason: &str| {
        queue["payments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["reason"] == reason)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // A reason is required; then the late payment is matched to its order by hand.
    let path = format!(
        "/api/v1/backoffice/payments/{}/match",
        by_reason("reservation_expired")
    );
    let refused = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "order_id": placed["id"], "reason": "" }),
        )
        .await;
    let body = problem(refused, 400).await;
    assert_eq!(body["errors"][0]["field"], "reason");
    let matched = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "order_id": placed["id"], "reason": "pagato in ritardo, confermato al telefono" }),
        )
        .await;
    assert_eq!(matched.status(), 200);
    let matched: Value = matched.json().await.unwrap();
    assert_eq!(matched["status"], "matched");
    assert_eq!(
        matched["resolution_note"],
        "pagato in ritardo, confermato al telefono"
    );
    let done = order(&app, &customer, placed["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "fulfilled");
    assert_eq!(done["coupons"], 1);
    assert!(done["invoice_number"].is_string());

    // The one without a code goes to the customer's prepaid account by hand.
    let account: Value = app.get_json(&customer.token, "/api/v1/prepaid").await;
    let path = format!(
        "/api/v1/backoffice/payments/{}/match",
        by_reason("no_reference")
    );
    let credited = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "account_id": account["account_id"], "reason": "bonifico senza codice, cliente identificato" }),
        )
        .await;
    assert_eq!(credited.status(), 200);
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.to_string(), "12.00");
    assert_eq!(balance, ledger);
    // Matching twice is refused.
    let again = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "account_id": account["account_id"], "reason": "di nuovo" }),
        )
        .await;
    assert_eq!(problem(again, 409).await["type"], "/problems/payment-state");

    // The unknown one is sent back to the payer.
    let path = format!(
        "/api/v1/backoffice/payments/{}/refund",
        by_reason("unknown_reference")
    );
    let refunded = app
        .post_json_as(
            &operator.token,
            &path,
            &json!({ "reason": "restituito al versante" }),
        )
        .await;
    assert_eq!(refunded.status(), 200);
    let refunded: Value = refunded.json().await.unwrap();
    assert_eq!(refunded["status"], "refunded");

    let queue = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/payments?status=unmatched",
        )
        .await;
    assert_eq!(queue["totals"]["count"], 0, "the queue is empty");

    // Every manual action is audited with its reason.
    let mut conn = app.pool.get().unwrap();
    let manual: Vec<String> = audit_log::table
        .filter(audit_log::action.eq_any(["payment.matched_by_hand", "payment.refunded"]))
        .select(audit_log::details)
        .load(&mut conn)
        .unwrap();
    assert_eq!(manual.len(), 3);
    assert!(manual.iter().all(|d| d.contains("\"reason\"")));

    // The daily summary of the day's bookings.
    let today = Utc::now().date_naive();
    let summary = app
        .get_json(
            &operator.token,
            &format!("/api/v1/backoffice/payments/summary?date={today}"),
        )
        .await;
    assert_eq!(summary["outcomes"]["matched"]["count"], 1, "{summary}");
    assert_eq!(summary["outcomes"]["refunded"]["count"], 1, "{summary}");
    assert_eq!(summary["total"]["amount"], "22.00", "{summary}");
    // Without a date: today on the Italian calendar, which statements book on.
    let default = app
        .get_json(&operator.token, "/api/v1/backoffice/payments/summary")
        .await;
    let italian_today = rinnovo::invoices::receipts::notification::italian_date(Utc::now());
    assert_eq!(default["date"], italian_today.to_string(), "{default}");
}

#[tokio::test]
async fn a_top_up_by_transfer_credits_the_prepaid_account() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let response = app
        .client
        .post(format!("{}/api/v1/prepaid/topups", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "ricarica-1")
        .json(&json!({ "amount": "100.00", "payment_method": "bank_transfer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let top_up: Value = response.json().await.unwrap();
    assert_eq!(top_up["status"], "awaiting_payment");
    let reference = top_up["reference"].as_str().unwrap().to_owned();

    // A prepaid top-up makes no sense: refused, naming the field.
    let refused = app
        .client
        .post(format!("{}/api/v1/prepaid/topups", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "ricarica-2")
        .json(&json!({ "amount": "10.001", "payment_method": "prepaid" }))
        .send()
        .await
        .unwrap();
    let body = problem(refused, 400).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["amount", "payment_method"]);

    let report = import_ok(
        &app,
        &operator,
        &camt053(
            8,
            &[Line::credit("100.00", "x", &bank_ref()).scor(&reference)],
        ),
    )
    .await;
    assert_eq!(count(&report, "matched"), 1, "{report}");
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.to_string(), "100.00");
    assert_eq!(balance, ledger);
    let list = app
        .get_json(&customer.token, "/api/v1/prepaid/topups")
        .await;
    assert_eq!(list["top_ups"][0]["status"], "paid");
    assert_eq!(list["top_ups"][0]["amount_received"], "100.00");
}

#[tokio::test]
async fn every_format_finds_its_reference() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let mut orders = Vec::new();
    for _ in 0..6 {
        orders.push(transfer_order(&app, &customer, "bank_transfer").await);
    }
    let printed = |o: &Value| {
        o["transfer"]["reference_print"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // An RF code split across two Ustrd lines, in a camt.053.001.02.
    let split = printed(&orders[0]);
    let (head, tail) = split.split_at(9);
    let mut line = Line::credit(PRICE, "", &bank_ref());
    line.text = vec![
        format!("PAGAMENTO RINNOVO {head}"),
        format!("{tail} GRAZIE"),
    ];
    let report = import_ok(&app, &operator, &camt053(2, &[line])).await;
    assert_eq!(report["version"], "camt.053.001.02");
    assert_eq!(count(&report, "matched"), 1, "split RF: {report}");

    // SCOR in a camt.054.
    let report = import_ok(
        &app,
        &operator,
        &camt054(&[Line::credit(PRICE, "x", &bank_ref()).scor(&rf(&orders[1]))]),
    )
    .await;
    assert_eq!(report["format"], "camt.054");
    assert_eq!(count(&report, "matched"), 1, "camt.054: {report}");

    // A camt.053 in the CBI envelope.
    let report = import_ok(
        &app,
        &operator,
        &cbi_camt053(&[Line::credit(PRICE, &printed(&orders[2]), &bank_ref())]),
    )
    .await;
    assert_eq!(report["format"], "cbi-camt.053");
    assert_eq!(count(&report, "matched"), 1, "CBI: {report}");

    // Other versions.
    let report = import_ok(
        &app,
        &operator,
        &camt053(4, &[Line::credit(PRICE, &rf(&orders[3]), &bank_ref())]),
    )
    .await;
    assert_eq!(count(&report, "matched"), 1, "001.04: {report}");

    // The postal CSV, sent as a multipart form.
    let csv = postal_csv(&[
        ("31,72", "accredito", "PT-1", &printed(&orders[4])),
        ("5,00", "addebito", "PT-2", "commissioni"),
    ]);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::text(csv).file_name("bollettini.csv"),
    );
    let response = app
        .client
        .post(format!("{}/api/v1/backoffice/statements", app.address))
        .bearer_auth(&operator.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["format"], "postal-csv");
    assert_eq!(report["ignored"], 1, "the debit is not a payment");
    assert_eq!(count(&report, "matched"), 1, "CSV: {report}");
    let listed = app
        .get_json(&operator.token, "/api/v1/backoffice/statements")
        .await;
    assert_eq!(listed["statements"][0]["file_name"], "bollettini.csv");

    for o in &orders[..5] {
        assert_eq!(
            order(&app, &customer, o["id"].as_str().unwrap()).await["status"],
            "fulfilled"
        );
    }
}

#[tokio::test]
async fn a_malformed_file_is_refused_whole_and_nothing_is_stored() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let lextel = app.back_office("lextel").await;
    let placed = transfer_order(&app, &customer, "bank_transfer").await;
    let good = Line::credit(PRICE, &rf(&placed), &bank_ref());
    let before = footprint(&app);

    // A valid entry, then one with three decimals: nothing of the file is stored.
    let file = camt053(8, &[good.clone(), Line::credit("1.234", "x", &bank_ref())]);
    let body = problem(import(&app, &operator, &file).await, 400).await;
    assert_eq!(body["errors"][0]["field"], "file");
    assert!(body["detail"].as_str().unwrap().contains("line"), "{body}");

    // Truncated XML.
    let file = camt053(8, std::slice::from_ref(&good));
    let truncated = &file[..file.len() / 2];
    let body = problem(import(&app, &operator, truncated).await, 400).await;
    assert_eq!(body["errors"][0]["field"], "file");

    // Not a statement at all.
    problem(import(&app, &operator, "hello").await, 400).await;
    assert_eq!(
        footprint(&app),
        before,
        "nothing from a refused file is stored"
    );
    assert_eq!(
        order(&app, &customer, placed["id"].as_str().unwrap()).await["status"],
        "awaiting_payment"
    );

    // Another brand's account: refused too.
    let body = problem(import(&app, &lextel, &camt053(8, &[good])).await, 422).await;
    assert_eq!(body["type"], "/problems/statement-of-another-account");

    // Customers cannot import or see the queue.
    let body = problem(import(&app, &customer, "x").await, 403).await;
    assert_eq!(body["type"], "/problems/forbidden-role");
    problem(
        app.get_as(&customer.token, "/api/v1/backoffice/payments")
            .await,
        403,
    )
    .await;
    assert_eq!(footprint(&app), before);
}

#[tokio::test]
async fn ten_concurrent_imports_of_overlapping_files_count_each_payment_once() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let mut lines = Vec::new();
    let mut ids = Vec::new();
    // 24 orders: enough rows that coupons, emails and payments take the bulk (COPY) path.
    for _ in 0..24 {
        let placed = transfer_order(&app, &customer, "bank_transfer").await;
        // Each order is paid twice over by two entries: exact, then a duplicate.
        lines.push(Line::credit(PRICE, &rf(&placed), &bank_ref()));
        lines.push(Line::credit(PRICE, &rf(&placed), &bank_ref()));
        ids.push(placed["id"].as_str().unwrap().to_owned());
    }
    // Ten files, each a different window over the same entries.
    let files: Vec<String> = (0..10)
        .map(|i| {
            let start = (i * 2) % 14;
            camt053(8, &lines[start..(start + 10).min(lines.len())])
        })
        .chain(std::iter::once(camt053(8, &lines)))
        .collect();
    let mut new_entries = 0;
    for (status, body) in app.upload_statements_at_once(&operator.token, files).await {
        assert!(status == 201 || status == 200, "{status} {body}");
        new_entries += body["new_entries"].as_u64().unwrap();
    }
    assert_eq!(new_entries, 48, "each entry stored by exactly one import");
    let mut conn = app.pool.get().unwrap();
    let stored: i64 = payments::table.count().get_result(&mut conn).unwrap();
    assert_eq!(stored, 48);
    let statuses: Vec<String> = payments::table
        .select(payments::status)
        .load(&mut conn)
        .unwrap();
    assert_eq!(statuses.iter().filter(|s| *s == "matched").count(), 24);
    assert_eq!(statuses.iter().filter(|s| *s == "duplicate").count(), 24);
    let coupons: i64 = rinnovo::db::schema::coupons::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(coupons, 24, "each order fulfilled once");
    let mut numbers: Vec<i64> = orders::table
        .filter(orders::invoice_seq.is_not_null())
        .select(orders::invoice_seq.assume_not_null())
        .load(&mut conn)
        .unwrap();
    numbers.sort();
    assert_eq!(numbers, (1..=24).collect::<Vec<_>>(), "no gaps, no repeats");
    drop(conn);
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(
        balance.cents(),
        24 * 3172,
        "the 24 duplicates credited once each"
    );
    assert_eq!(balance, ledger);
    for id in ids {
        assert_eq!(order(&app, &customer, &id).await["status"], "fulfilled");
    }
}

#[tokio::test]
async fn an_import_and_prepaid_checkouts_from_the_same_account_at_once_keep_every_invariant() {
    // The import credits duplicates to the prepaid account and numbers invoices while
    // checkouts debit the same account and take numbers from the same counter: no
    // deadlock, no 500, no overdraft, no gap.
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let account = app.get_json(&customer.token, "/api/v1/prepaid").await["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let credited = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/prepaid/{account}/adjustments"),
            &json!({ "direction": "credit", "amount": "317.20", "reason": "test" }),
        )
        .await;
    assert!(credited.status().is_success());
    let mut lines = Vec::new();
    for _ in 0..30 {
        let placed = transfer_order(&app, &customer, "bank_transfer").await;
        lines.push(Line::credit(PRICE, &rf(&placed), &bank_ref()));
        lines.push(Line::credit(PRICE, &rf(&placed), &bank_ref()));
    }
    let file = camt053(8, &lines);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(21));
    let import = {
        let (client, url, token, barrier) = (
            app.client.clone(),
            format!("{}/api/v1/backoffice/statements", app.address),
            operator.token.clone(),
            barrier.clone(),
        );
        tokio::spawn(async move {
            barrier.wait().await;
            let response = client.post(url).bearer_auth(token).body(file).send().await;
            response.unwrap().status().as_u16()
        })
    };
    let mut checkouts = Vec::new();
    for _ in 0..20 {
        let (client, url, token, barrier) = (
            app.client.clone(),
            format!("{}/api/v1/orders", app.address),
            customer.token.clone(),
            barrier.clone(),
        );
        checkouts.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", Uuid::new_v4().to_string())
                .json(&json!({ "lines": [{ "product": PRODUCT, "quantity": 1 }], "payment_method": "prepaid" }))
                .send()
                .await;
            response.unwrap().status().as_u16()
        }));
    }
    assert_eq!(import.await.unwrap(), 201);
    let mut bought = 0;
    for checkout in checkouts {
        match checkout.await.unwrap() {
            201 => bought += 1,
            409 => {} // the balance ran short: refused whole
            other => panic!("checkout answered {other}"),
        }
    }
    // 10 coupons' worth at the start, 30 duplicates credited: at least 10 succeed.
    assert!(bought >= 10, "only {bought} checkouts");
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance, ledger);
    assert_eq!(balance.cents(), (10 + 30 - bought) * 3172);
    let mut conn = app.pool.get().unwrap();
    let mut numbers: Vec<i64> = orders::table
        .filter(orders::invoice_seq.is_not_null())
        .select(orders::invoice_seq.assume_not_null())
        .load(&mut conn)
        .unwrap();
    numbers.sort();
    assert_eq!(
        numbers,
        (1..=30 + bought).collect::<Vec<_>>(),
        "no gaps, no repeats"
    );
    let coupons: i64 = rinnovo::db::schema::coupons::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(coupons, 30 + bought, "one coupon per paid order");
}

#[tokio::test]
async fn a_reversal_undoes_the_payment_it_matches() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let placed = transfer_order(&app, &customer, "cheque").await;
    let reference = rf(&placed);
    let report = import_ok(
        &app,
        &operator,
        &camt053(
            8,
            &[
                Line::credit(PRICE, &reference, &bank_ref()),
                Line::credit(PRICE, &reference, &bank_ref()),
            ],
        ),
    )
    .await;
    assert_eq!(count(&report, "duplicate"), 1);
    assert_eq!(
        app.prepaid_balance_and_ledger_sum(&customer.user_id)
            .0
            .to_string(),
        PRICE
    );

    // The cheque bounces: the bank reverses one credit. The newest one (the duplicate)
    // is taken back from the prepaid account.
    let report = import_ok(
        &app,
        &operator,
        &camt053(
            8,
            &[Line::credit(PRICE, &reference, &bank_ref()).reversed()],
        ),
    )
    .await;
    assert_eq!(count(&report, "reversal"), 1, "{report}");
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.to_string(), "0.00");
    assert_eq!(balance, ledger);
    let reversed = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/payments?status=reversed",
        )
        .await;
    assert_eq!(reversed["totals"]["count"], 1);

    // The second reversal takes back the payment that fulfilled the order: its unused
    // coupon is voided.
    let report = import_ok(
        &app,
        &operator,
        &camt053(
            8,
            &[Line::credit(PRICE, &reference, &bank_ref()).reversed()],
        ),
    )
    .await;
    assert_eq!(count(&report, "reversal"), 1, "{report}");
    let coupons = app.get_json(&customer.token, "/api/v1/coupons").await;
    assert_eq!(coupons["coupons"][0]["status"], "voided");

    // A reversal of nothing known waits for the back-office.
    let report = import_ok(
        &app,
        &operator,
        &camt053(8, &[Line::credit("9.99", "storno", &bank_ref()).reversed()]),
    )
    .await;
    assert_eq!(count(&report, "unmatched"), 1, "{report}");
}

#[tokio::test]
async fn a_reversal_finds_its_credit_earlier_in_the_same_file_whatever_the_lane() {
    // On PostgreSQL an import runs in parallel lanes chosen by RF code or dedup key, so a
    // credit and the reversal that takes it back usually travel in different lanes.
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let mut lines = Vec::new();
    for _ in 0..6 {
        let placed = transfer_order(&app, &customer, "bank_transfer").await;
        lines.push(Line::credit(PRICE, &rf(&placed), &bank_ref()));
    }
    let reason = |i: usize| format!("versamento senza riferimento {i}");
    for i in 0..6 {
        lines.push(Line::credit("50.00", &reason(i), &bank_ref()));
    }
    for i in 0..6 {
        lines.push(Line::credit("50.00", &reason(i), &bank_ref()).reversed());
    }
    let report = import_ok(&app, &operator, &camt053(8, &lines)).await;
    assert_eq!(count(&report, "matched"), 6, "{report}");
    assert_eq!(count(&report, "reversal"), 6, "{report}");
    let queue = |status: &'static str| {
        let app = &app;
        let token = operator.token.clone();
        async move {
            app.get_json(
                &token,
                &format!("/api/v1/backoffice/payments?status={status}"),
            )
            .await["totals"]["count"]
                .clone()
        }
    };
    assert_eq!(queue("reversed").await, 6);
    assert_eq!(
        queue("unmatched").await,
        0,
        "every reversal found its credit"
    );
}

#[tokio::test]
async fn unpaid_reservations_expire_with_an_email_and_late_statements_still_count() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let paid_in_time = transfer_order(&app, &customer, "bank_transfer").await;
    let never_paid = transfer_order(&app, &customer, "bank_transfer").await;
    let partly_paid = transfer_order(&app, &customer, "bank_transfer").await;
    let response = app.top_up(&customer.token, "50.00", "bank_transfer").await;
    assert_eq!(response.status(), 201);
    let top_up: Value = response.json().await.unwrap();
    import_ok(
        &app,
        &operator,
        &camt053(8, &[Line::credit("10.00", &rf(&partly_paid), &bank_ref())]),
    )
    .await;

    // Eleven days on, the expiry worker runs (here called directly, twice as two
    // workers would: the second finds nothing to do).
    let later = Utc::now() + chrono::Duration::days(11);
    let mut conn = app.pool.get().unwrap();
    let expired = rinnovo::payments::expiry::expire_due(&mut conn, later).unwrap();
    assert_eq!((expired.orders, expired.top_ups), (3, 1));
    let again = rinnovo::payments::expiry::expire_due(&mut conn, later).unwrap();
    assert_eq!((again.orders, again.top_ups), (0, 0), "expired once");
    // The expiry emails were queued "eleven days on"; bring them back to today
    // so the outbox worker, which runs on the real clock, sends them now.
    diesel::update(emails::table.filter(emails::kind.eq("reservation_expired")))
        .set(emails::next_attempt_at.eq(Utc::now().naive_utc()))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    for o in [&paid_in_time, &never_paid, &partly_paid] {
        assert_eq!(
            order(&app, &customer, o["id"].as_str().unwrap()).await["status"],
            "expired"
        );
    }
    let top_ups = app
        .get_json(&customer.token, "/api/v1/prepaid/topups")
        .await;
    assert_eq!(top_ups["top_ups"][0]["id"], top_up["id"]);
    assert_eq!(top_ups["top_ups"][0]["status"], "expired");
    // The partial payment is not kept: it went to the prepaid account.
    let (balance, ledger) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.to_string(), "10.00");
    assert_eq!(balance, ledger);

    // A statement arrives late with a payment booked before the deadline: fulfilled.
    let report = import_ok(
        &app,
        &operator,
        &camt053(8, &[Line::credit(PRICE, &rf(&paid_in_time), &bank_ref())]),
    )
    .await;
    assert_eq!(count(&report, "matched"), 1, "{report}");
    assert_eq!(
        order(&app, &customer, paid_in_time["id"].as_str().unwrap()).await["status"],
        "fulfilled"
    );

    // 4 instructions + 1 partial notice + 4 expiry notices + delivery and receipt.
    let messages = sink.wait_for(11, Duration::from_secs(30)).await;
    let expiry: Vec<String> = messages
        .iter()
        .map(|m| decoded(m))
        .filter(|m| m.contains("scaduta"))
        .collect();
    assert_eq!(expiry.len(), 4, "one expiry email per reservation");
    let partly_paid_notice = expiry
        .iter()
        .find(|m| m.contains("I pagamenti parziali"))
        .expect("the partly paid order's expiry email");
    assert_email_snapshot("reservation_expired", partly_paid_notice);
    let top_up_notice = expiry
        .iter()
        .find(|m| m.contains("la ricarica del conto prepagato"))
        .expect("the top-up's expiry email");
    assert_email_snapshot("reservation_expired_top_up", top_up_notice);
    let partial = messages
        .iter()
        .map(|m| decoded(m))
        .find(|m| m.contains("movimento"))
        .expect("the partial payment's notice");
    assert_email_snapshot("payment_update", &partial);
}
