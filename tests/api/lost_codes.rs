//! Codes lost or deleted: an order's unused codes sent again (voided and replaced, no money
//! moved), by the buyer or an operator; and a buyer's coupons exported as CSV.

use std::time::Duration;

use diesel::prelude::*;
use rinnovo::auth::Role;
use rinnovo::db::schema::{audit_log, coupons};
use serde_json::{json, Value};

use crate::helpers::{problem, retry_after, spawn_app, spawn_app_with_smtp, SignedIn, TestApp};
use crate::smtp::{coupon_codes, decoded, SmtpSink};
use crate::web_client::{text_of, Browser};

const PRODUCT: &str = "RIN-FIRMA-CNS";
const PRICE: &str = "31.72";

/// A prepaid order of `quantity` coupons; its id.
async fn paid_order(app: &TestApp, buyer: &SignedIn, quantity: u32) -> String {
    let unit: f64 = PRICE.parse().unwrap();
    let total = format!("{:.2}", unit * f64::from(quantity));
    app.credit(&buyer.user_id, &total);
    let response = app
        .order(
            &buyer.token,
            json!([{ "product": PRODUCT, "quantity": quantity }]),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let order: Value = response.json().await.unwrap();
    order["id"].as_str().unwrap().to_owned()
}

async fn status_of(app: &TestApp, code: &str) -> String {
    let response = app.get(&format!("/api/v1/coupons/{code}/status")).await;
    assert_eq!(response.status(), 200, "{code}");
    let body: Value = response.json().await.unwrap();
    body["status"].as_str().unwrap().to_owned()
}

async fn resend(app: &TestApp, token: &str, order: &str) -> reqwest::Response {
    app.client
        .post(format!(
            "{}/api/v1/orders/{order}/codes/resend",
            app.address
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn resend_as_operator(
    app: &TestApp,
    token: &str,
    order: &str,
    body: Value,
) -> reqwest::Response {
    app.post_json_as(
        token,
        &format!("/api/v1/backoffice/orders/{order}/codes/resend"),
        &body,
    )
    .await
}

fn codes_in(messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .flat_map(|m| coupon_codes(&decoded(m)))
        .collect()
}

#[tokio::test]
async fn lost_codes_are_replaced_the_old_ones_stop_working_and_no_money_moves() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let order = paid_order(&app, &customer, 3).await;
    let delivered = sink.wait_for(2, Duration::from_secs(20)).await;
    let first = codes_in(&delivered);
    assert_eq!(first.len(), 3, "{delivered:?}");

    // One code was used up meanwhile (voided by the back-office, refunded): it stays so.
    let used_id: String = coupons::table
        .filter(coupons::order_id.eq(&order))
        .order(coupons::id.asc())
        .select(coupons::id)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    let voided = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/coupons/{used_id}/void"),
            &json!({ "reason": "refunded on request" }),
        )
        .await;
    assert_eq!(voided.status(), 200);
    let balance_before = app.prepaid_balance_and_ledger_sum(&customer.user_id);

    let response = resend(&app, &customer.token, &order).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["codes"], 2, "{body}");
    assert_eq!(body["sent_to"], customer.email, "{body}");

    let all = sink.wait_for(3, Duration::from_secs(20)).await;
    let again = decoded(&all[2]);
    assert!(
        again.contains(&format!("To: {}", customer.email)),
        "{again}"
    );
    assert!(again.contains("non sono più validi"), "{again}");
    let second = coupon_codes(&again);
    assert_eq!(second.len(), 2, "{again}");
    for code in &second {
        assert!(!first.contains(code), "a new code is new: {code}");
        assert_eq!(status_of(&app, code).await, "available");
    }
    for code in &first {
        assert_eq!(status_of(&app, code).await, "voided", "{code}");
    }
    assert_eq!(
        app.prepaid_balance_and_ledger_sum(&customer.user_id),
        balance_before,
        "no money moves"
    );
    let audited: Vec<String> = audit_log::table
        .filter(audit_log::action.eq("order.codes_resent"))
        .filter(audit_log::subject_id.eq(&order))
        .select(audit_log::actor)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(audited, vec![format!("user:{}", customer.user_id)]);

    // The operator can do it too, with a reason; the reason is required.
    let no_reason = resend_as_operator(&app, &operator.token, &order, json!({})).await;
    let refused = problem(no_reason, 400).await;
    assert!(refused.to_string().contains("reason"), "{refused}");
    let by_operator = resend_as_operator(
        &app,
        &operator.token,
        &order,
        json!({ "reason": "the customer lost the email again" }),
    )
    .await;
    assert_eq!(by_operator.status(), 200);
    let all = sink.wait_for(4, Duration::from_secs(20)).await;
    let third = coupon_codes(&decoded(&all[3]));
    assert_eq!(third.len(), 2);
    for code in &second {
        assert_eq!(status_of(&app, code).await, "voided", "{code}");
    }
}

#[tokio::test]
async fn nobody_else_can_have_an_orders_codes_sent() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let order = paid_order(&app, &customer, 1).await;
    let stranger = app.customer("visura").await;
    let other_brand = app.back_office("lextel").await;
    let officer = app
        .user_with_role("visura", Role::RegistrationOfficer)
        .await;

    for token in [&stranger.token, &officer.token] {
        let refused = problem(resend(&app, token, &order).await, 404).await;
        assert_eq!(refused["type"], "/problems/unknown-order", "{refused}");
    }
    let refused = problem(
        resend_as_operator(
            &app,
            &other_brand.token,
            &order,
            json!({ "reason": "x-brand" }),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(refused["type"], "/problems/unknown-order", "{refused}");
    // A buyer is not an operator, and an operator is not a buyer.
    problem(
        resend_as_operator(&app, &customer.token, &order, json!({ "reason": "me" })).await,
        403,
    )
    .await;
    problem(resend(&app, &other_brand.token, &order).await, 403).await;
    let count: i64 = coupons::table
        .filter(coupons::order_id.eq(&order))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(count, 1, "nothing was reissued");
}

#[tokio::test]
async fn an_order_without_unused_codes_or_not_yet_paid_has_nothing_to_send() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let order = paid_order(&app, &customer, 1).await;
    let coupon: String = coupons::table
        .filter(coupons::order_id.eq(&order))
        .select(coupons::id)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    let voided = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/coupons/{coupon}/void"),
            &json!({ "reason": "refunded" }),
        )
        .await;
    assert_eq!(voided.status(), 200);
    let refused = problem(resend(&app, &customer.token, &order).await, 409).await;
    assert_eq!(refused["type"], "/problems/no-unused-codes", "{refused}");

    let placed = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "lines": [{ "product": PRODUCT, "quantity": 1 }], "payment_method": "bank_transfer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let waiting: Value = placed.json().await.unwrap();
    let refused = problem(
        resend(&app, &customer.token, waiting["id"].as_str().unwrap()).await,
        409,
    )
    .await;
    assert_eq!(
        refused["type"], "/problems/order-not-fulfilled",
        "{refused}"
    );
}

#[tokio::test]
async fn a_buyer_may_have_an_orders_codes_sent_five_times_a_day() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let order = paid_order(&app, &customer, 1).await;
    for attempt in 1..=5 {
        let response = resend(&app, &customer.token, &order).await;
        assert_eq!(response.status(), 200, "attempt {attempt}");
    }
    let response = resend(&app, &customer.token, &order).await;
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response);
    assert!(wait > 0 && wait <= 24 * 3600, "{wait}");
    // Each resend replaced the one unused code: one is usable, five are voided.
    let statuses: Vec<String> = coupons::table
        .filter(coupons::order_id.eq(&order))
        .select(coupons::status)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(statuses.len(), 6);
    assert_eq!(statuses.iter().filter(|s| *s == "available").count(), 1);
}

/// Many resends of one order at the same moment: each unused code is replaced by exactly
/// one of them, so the order ends with as many usable codes as it had.
#[tokio::test]
async fn concurrent_resends_replace_each_code_exactly_once() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let order = paid_order(&app, &customer, 3).await;
    let attempts = (0..8).map(|i| {
        let (app, token, order) = (&app, operator.token.clone(), order.clone());
        async move {
            let response = resend_as_operator(
                app,
                &token,
                &order,
                json!({ "reason": format!("concurrent attempt {i}") }),
            )
            .await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut reissued = 0;
    for (status, body) in &results {
        match status {
            200 => {
                assert_eq!(body["codes"], 3, "{body}");
                reissued += 3;
            }
            409 => assert_eq!(body["type"], "/problems/no-unused-codes", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(reissued >= 3, "{results:?}");
    let statuses: Vec<String> = coupons::table
        .filter(coupons::order_id.eq(&order))
        .select(coupons::status)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(statuses.len(), 3 + reissued, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| *s == "available").count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_order_page_sends_the_codes_again() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    let order = paid_order(&app, &customer, 2).await;
    let first = codes_in(&sink.wait_for(2, Duration::from_secs(20)).await);
    let (shopper, _) = Browser::signed_in(&app, &customer.email).await;

    let page = shopper.get(&format!("/negozio/ordini/{order}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Invia di nuovo i codici"),
        "{}",
        page.body
    );

    // Without the form's token nothing happens.
    let forged = shopper
        .post_raw(&format!("/negozio/ordini/{order}/invia-codici"), &[])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    let sent = shopper
        .post(&format!("/negozio/ordini/{order}/invia-codici"), &[])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let location = sent.location.unwrap();
    assert_eq!(location, format!("/negozio/ordini/{order}?codici=2"));
    let page = shopper.get(&location).await;
    assert!(
        text_of(&page.body, "codici-inviati").starts_with("Abbiamo inviato 2 nuovi codici"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!(
            "nuovi codici a <strong>{}</strong>",
            customer.email
        )),
        "{}",
        page.body
    );
    let second = coupon_codes(&decoded(
        &sink.wait_for(3, Duration::from_secs(20)).await[2],
    ));
    assert_eq!(second.len(), 2);
    for code in &first {
        assert_eq!(status_of(&app, code).await, "voided");
    }

    // Someone else's order is as unknown as a made-up one.
    let stranger = app.customer("visura").await;
    let (other, _) = Browser::signed_in(&app, &stranger.email).await;
    let page = other
        .post(&format!("/negozio/ordini/{order}/invia-codici"), &[])
        .await;
    assert_eq!(page.status, 404, "{}", page.body);
}

/// The CSV rows (without the byte-order mark), split on `;`.
fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .map(|line| line.split(';').map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn an_officer_exports_their_coupons_as_csv_with_codes_masked() {
    let app = spawn_app().await;
    let officer = app
        .user_with_role("visura", Role::RegistrationOfficer)
        .await;
    let order = paid_order(&app, &officer, 2).await;
    let customer = app.customer("visura").await;
    paid_order(&app, &customer, 1).await;

    let response = app.get_as(&officer.token, "/api/v1/coupons/export").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"coupon-"),
        "{disposition}"
    );
    let bytes = response.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "a UTF-8 byte-order mark for Excel"
    );
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let rows = rows(&text);
    assert_eq!(
        rows[0].join(";"),
        rinnovo::coupons::export::HEADER.join(";")
    );
    assert_eq!(rows.len(), 3, "only the officer's two coupons: {text}");
    let today = chrono::Utc::now().format("%d/%m/%Y").to_string();
    for row in &rows[1..] {
        assert!(row[0].starts_with("****-****-****-"), "masked: {row:?}");
        assert_eq!(row[1], PRODUCT);
        assert_eq!(row[3], "disponibile");
        assert_eq!(row[4], order);
        assert!(!row[5].is_empty(), "the invoice number: {row:?}");
        assert_eq!(row[6], today);
        assert_eq!(row[8], "", "not used");
    }
    assert!(coupon_codes(&text).is_empty(), "no full code: {text}");

    // The page gives the same file to the signed-in buyer.
    let (session, _) = Browser::signed_in(&app, &officer.email).await;
    let page = session.get("/negozio/coupon").await;
    assert!(
        page.body.contains("/negozio/coupon/esporta"),
        "{}",
        page.body
    );
    let file = session.get("/negozio/coupon/esporta").await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body.trim_start_matches('\u{feff}'), text);

    // Operators do not buy, so they have no coupons to export.
    let operator = app.back_office("visura").await;
    problem(
        app.get_as(&operator.token, "/api/v1/coupons/export").await,
        403,
    )
    .await;
}

#[tokio::test]
async fn the_back_office_sends_a_customers_codes_again_from_its_pages() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let order = paid_order(&app, &customer, 1).await;
    sink.wait_for(2, Duration::from_secs(20)).await;
    let (office, _) = Browser::signed_in(&app, &operator.email).await;

    let list = office.get("/backoffice/ordini").await;
    let link = format!("/backoffice/coupon?ordine={order}");
    // Handlebars escapes `=` in attributes; the browser reads it back.
    let escaped = link.replace('=', "&#x3D;");
    assert!(list.body.contains(&escaped), "{}", list.body);
    let form = office.get(&link).await;
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains(&format!("value=\"{order}\"")),
        "{}",
        form.body
    );

    let no_reason = office
        .post(
            "/backoffice/coupon/invia-codici",
            &[("order_id", &order), ("reason", "")],
        )
        .await;
    assert_eq!(no_reason.status, 422);
    assert!(
        no_reason.body.contains("id=\"resend_reason-error\""),
        "{}",
        no_reason.body
    );
    let unknown = office
        .post(
            "/backoffice/coupon/invia-codici",
            &[("order_id", "nessuno"), ("reason", "chiamata del cliente")],
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(
        text_of(&unknown.body, "order_id-error"),
        "Ordine non trovato."
    );

    let sent = office
        .post(
            "/backoffice/coupon/invia-codici",
            &[("order_id", &order), ("reason", "chiamata del cliente")],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(text_of(&sent.body, "codici-nuovi"), "1");
    assert_eq!(text_of(&sent.body, "codici-destinatario"), customer.email);
    let again = decoded(&sink.wait_for(3, Duration::from_secs(20)).await[2]);
    assert_eq!(coupon_codes(&again).len(), 1, "{again}");
    // Sent again (a reload): the new code is unused too, so it is replaced once more,
    // which is what a second request means; nothing is lost.
    let reasons: Vec<String> = audit_log::table
        .filter(audit_log::action.eq("order.codes_resent"))
        .select(audit_log::details)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("chiamata del cliente"), "{reasons:?}");
}
