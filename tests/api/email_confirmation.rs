//! Verified email (issue 17, findings 3 and 4): sign-up sends a single-use link and an
//! unconfirmed account cannot order or top up; a new address needs the current password,
//! a notice goes to the old one, and the address changes only when the new one confirms;
//! the address type accepts only what the mailer delivers.

use std::time::Duration;

use diesel::prelude::*;
use rinnovo::db::schema::{email_confirmations, emails};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{problem, spawn_app, spawn_app_with_smtp, token_in, TestApp, PASSWORD};
use crate::smtp::{assert_email_snapshot, decoded, SmtpSink};
use crate::web_client::{hidden, Browser};

fn one(product: &str) -> Value {
    json!([{ "product": product, "quantity": 1 }])
}

async fn top_up(app: &TestApp, token: &str) -> reqwest::Response {
    app.top_up(token, "50.00", "bank_transfer").await
}

async fn confirm(app: &TestApp, token: &str, link_token: &str) -> reqwest::Response {
    app.post_json_as(
        token,
        "/api/v1/auth/email/confirm",
        &json!({ "token": link_token }),
    )
    .await
}

/// Emails of the outbox to `address`, by kind.
fn kinds_sent_to(app: &TestApp, address: &str) -> Vec<String> {
    emails::table
        .filter(emails::recipient.eq(address))
        .order(emails::created_at.asc())
        .select(emails::kind)
        .load(&mut app.pool.get().unwrap())
        .unwrap()
}

async fn patch_status(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let response = app.patch_me(token, &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn sign_up_refuses_addresses_the_mailer_cannot_deliver() {
    let app = spawn_app().await;
    for address in ["\"john doe\"@example.it", "ip@[127.0.0.1]"] {
        let body = problem(
            app.post_json(
                "/api/v1/auth/signup",
                &json!({ "brand": "visura", "name": "Mario Rossi", "email": address,
                         "password": PASSWORD }),
            )
            .await,
            400,
        )
        .await;
        assert_eq!(body["type"], "/problems/invalid-field", "{address}");
        assert_eq!(body["errors"][0]["field"], "email", "{address}");
        assert_eq!(body["errors"][0]["rule"], "deliverable_email", "{address}");
    }
    // The sign-up page says it next to the field.
    let browser = Browser::anonymous(&app, "visura").await;
    let page = browser
        .post(
            "/negozio/visura/iscriviti",
            &[
                ("name", "Mario Rossi"),
                ("email", "ip@[127.0.0.1]"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"email-error\""), "{}", page.body);
    assert!(page.body.contains("Non possiamo inviare email"));
}

#[tokio::test]
async fn an_unconfirmed_account_cannot_order_or_top_up_until_it_confirms() {
    let app = spawn_app().await;
    let customer = app.unconfirmed_customer("visura").await;
    let me: Value = app.get_json(&customer.token, "/api/v1/me").await;
    assert_eq!(me["email_confirmed"], false);
    app.credit(&customer.user_id, "50.00");

    let key = Uuid::new_v4().to_string();
    let body = problem(
        app.order_with_key(&customer.token, &key, one("RIN-FIRMA"))
            .await,
        403,
    )
    .await;
    assert_eq!(body["type"], "/problems/email-not-confirmed");
    // Finding 3: top-ups to an unverified address sent an email each. Now none goes.
    for _ in 0..5 {
        let body = problem(top_up(&app, &customer.token).await, 403).await;
        assert_eq!(body["type"], "/problems/email-not-confirmed");
    }
    assert_eq!(
        kinds_sent_to(&app, &customer.email),
        vec!["email_confirmation"],
        "nothing but the link goes to an unconfirmed address"
    );

    app.confirm_email(&customer).await;
    let me: Value = app.get_json(&customer.token, "/api/v1/me").await;
    assert_eq!(me["email_confirmed"], true);
    app.give_billing_data(&customer).await;
    // The refusal was not kept under its Idempotency-Key: the same key now buys.
    assert_eq!(
        app.order_with_key(&customer.token, &key, one("RIN-FIRMA"))
            .await
            .status(),
        201
    );
    assert_eq!(top_up(&app, &customer.token).await.status(), 201);
}

#[tokio::test]
async fn a_link_works_once_and_not_once_expired_or_replaced() {
    let app = spawn_app().await;
    let customer = app.unconfirmed_customer("visura").await;
    let first = app.confirmation_token(&customer.email).await;

    // A new link voids the first.
    let resent = app
        .post_json_as(&customer.token, "/api/v1/me/email/confirmation", &json!({}))
        .await;
    assert_eq!(resent.status(), 202);
    let body = problem(confirm(&app, &customer.token, &first).await, 400).await;
    assert_eq!(body["errors"][0]["field"], "token");
    assert_eq!(body["errors"][0]["rule"], "valid_link");

    // Expired (its 48 hours are over): refused.
    let second = app.confirmation_token(&customer.email).await;
    assert_ne!(first, second);
    diesel::update(email_confirmations::table)
        .set(
            email_confirmations::expires_at
                .eq((chrono::Utc::now() - chrono::Duration::minutes(1)).naive_utc()),
        )
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    problem(confirm(&app, &customer.token, &second).await, 400).await;

    // A fresh one works, once.
    let resent = app
        .post_json_as(&customer.token, "/api/v1/me/email/confirmation", &json!({}))
        .await;
    assert_eq!(resent.status(), 202);
    let third = app.confirmation_token(&customer.email).await;
    assert_eq!(confirm(&app, &customer.token, &third).await.status(), 200);
    problem(confirm(&app, &customer.token, &third).await, 400).await;
    // Only hashes are stored.
    let stored: Vec<String> = email_confirmations::table
        .select(email_confirmations::token_hash)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(stored
        .iter()
        .all(|h| *h != first && *h != second && *h != third));
}

#[tokio::test]
async fn asking_for_the_link_again_is_limited_and_pointless_once_confirmed() {
    let app = spawn_app().await;
    let customer = app.unconfirmed_customer("visura").await;
    for _ in 0..3 {
        let response = app
            .post_json_as(&customer.token, "/api/v1/me/email/confirmation", &json!({}))
            .await;
        assert_eq!(response.status(), 202);
    }
    let response = app
        .post_json_as(&customer.token, "/api/v1/me/email/confirmation", &json!({}))
        .await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, 429).await;

    let confirmed = app.customer("visura").await;
    let body = problem(
        app.post_json_as(
            &confirmed.token,
            "/api/v1/me/email/confirmation",
            &json!({}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(body["type"], "/problems/email-already-confirmed");
}

#[tokio::test]
async fn another_user_or_brand_cannot_use_the_link() {
    let app = spawn_app().await;
    let owner = app.unconfirmed_customer("visura").await;
    let link = app.confirmation_token(&owner.email).await;
    let same_brand = app.customer("visura").await;
    let other_brand = app.customer("lextel").await;
    for intruder in [&same_brand, &other_brand] {
        let body = problem(confirm(&app, &intruder.token, &link).await, 400).await;
        assert_eq!(body["errors"][0]["rule"], "valid_link");
    }
    let me: Value = app.get_json(&owner.token, "/api/v1/me").await;
    assert_eq!(me["email_confirmed"], false);
    // Nor a signed-in intruder on the page.
    let (browser, _) = Browser::signed_in(&app, &same_brand.email).await;
    let page = browser
        .post("/negozio/conferma-email", &[("token", link.as_str())])
        .await;
    assert_eq!(page.status, 422);
    let me: Value = app.get_json(&owner.token, "/api/v1/me").await;
    assert_eq!(me["email_confirmed"], false);
    // The owner still can.
    assert_eq!(confirm(&app, &owner.token, &link).await.status(), 200);
}

#[tokio::test]
async fn the_link_page_confirms_only_on_its_button() {
    let app = spawn_app().await;
    let owner = app.unconfirmed_customer("visura").await;
    let link = app.confirmation_token(&owner.email).await;
    let browser = Browser::anonymous(&app, "visura").await;
    // Opening the link (as a mail scanner does) changes nothing.
    for _ in 0..2 {
        let page = browser
            .get(&format!("/negozio/conferma-email?token={link}"))
            .await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("Conferma l&#x27;indirizzo")
                || page.body.contains("Conferma l'indirizzo")
        );
        assert_eq!(hidden(&page.body, "token"), link);
    }
    let me: Value = app.get_json(&owner.token, "/api/v1/me").await;
    assert_eq!(me["email_confirmed"], false);
    // Without its CSRF token the POST is refused.
    let page = browser
        .post_raw("/negozio/conferma-email", &[("token", link.as_str())])
        .await;
    assert_eq!(page.status, 403);
    let page = browser
        .post("/negozio/conferma-email", &[("token", link.as_str())])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("è confermato"));
    let me: Value = app.get_json(&owner.token, "/api/v1/me").await;
    assert_eq!(me["email_confirmed"], true);
    let page = browser
        .post("/negozio/conferma-email", &[("token", link.as_str())])
        .await;
    assert_eq!(page.status, 422, "single use");
}

#[tokio::test]
async fn the_shop_pages_ask_an_unconfirmed_buyer_to_confirm() {
    let app = spawn_app().await;
    let customer = app.unconfirmed_customer("visura").await;
    app.give_billing_data(&customer).await;
    app.credit(&customer.user_id, "50.00");
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    let page = browser.get("/negozio/acquista").await;
    assert!(page.body.contains("Conferma il tuo indirizzo email"));
    assert!(page.body.contains("Invia di nuovo il link"));
    let summary = browser
        .get("/negozio/acquista/riepilogo?metodo=prepaid&q_RIN-FIRMA=1")
        .await;
    let key = hidden(&summary.body, "chiave");
    let fields = [
        ("chiave", key.as_str()),
        ("metodo", "prepaid"),
        ("q_RIN-FIRMA", "1"),
    ];
    let page = browser.post("/negozio/acquista/conferma", &fields).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("conferma il tuo indirizzo email"),
        "{}",
        page.body
    );
    // The banner's button sends a new link.
    let page = browser.post("/negozio/conferma-email/invia", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Ti abbiamo inviato un nuovo link"));
    assert_eq!(
        kinds_sent_to(&app, &customer.email),
        vec!["email_confirmation", "email_confirmation"]
    );
    app.confirm_email(&customer).await;
    let page = browser.post("/negozio/acquista/conferma", &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = browser.get("/negozio/acquista").await;
    assert!(!page.body.contains("Invia di nuovo il link"));
}

#[tokio::test]
async fn an_email_change_needs_the_password_and_the_new_address_confirmation() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    let old = customer.email.clone();
    let new = format!("nuovo-{}@example.it", Uuid::new_v4().simple());

    let (status, body) = patch_status(&app, &customer.token, json!({ "email": new })).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["field"], "current_password");
    let (status, _) = patch_status(
        &app,
        &customer.token,
        json!({ "email": new, "current_password": "non è questa" }),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = patch_status(
        &app,
        &customer.token,
        json!({ "email": new, "current_password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], old.as_str(), "not changed yet");
    assert_eq!(body["pending_email"], new.as_str());
    let me: Value = app.get_json(&customer.token, "/api/v1/me").await;
    assert_eq!(me["pending_email"], new.as_str());

    // A link to the new address, a notice to the old one.
    let messages = sink.wait_for(2, Duration::from_secs(20)).await;
    let to = |address: &str| {
        messages
            .iter()
            .map(|m| decoded(m))
            .find(|m| m.contains(&format!("To: {address}")))
            .unwrap_or_else(|| panic!("no email to {address}: {messages:?}"))
    };
    let link = to(&new);
    assert!(token_in(&link).is_some());
    assert_email_snapshot("email_confirmation", &link);
    let notice = to(&old);
    assert!(notice.contains(&new), "{notice}");
    assert_email_snapshot("email_change_notice", &notice);
    assert!(token_in(&notice).is_none(), "the old address gets no link");

    // Meanwhile the codes still go to the old, confirmed address.
    app.credit(&customer.user_id, "50.00");
    let order: Value = app
        .order(&customer.token, one("RIN-FIRMA"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["email"], old.as_str(), "{order}");

    let link = app.confirmation_token(&new).await;
    let other = app.customer("visura").await;
    problem(confirm(&app, &other.token, &link).await, 400).await;
    let response = confirm(&app, &customer.token, &link).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], new.as_str());
    assert_eq!(me["email_confirmed"], true);
    let me: Value = app.get_json(&customer.token, "/api/v1/me").await;
    assert_eq!(me["pending_email"], Value::Null);
    assert_eq!(app.login("visura", &new, PASSWORD).await.status(), 200);
    assert_eq!(app.login("visura", &old, PASSWORD).await.status(), 401);
    let order: Value = app
        .order(&customer.token, one("RIN-FIRMA"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["email"], new.as_str());
    let audited: i64 = rinnovo::db::schema::audit_log::table
        .filter(rinnovo::db::schema::audit_log::action.eq("user.email_changed"))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn wrong_passwords_for_an_email_change_are_throttled() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    for _ in 0..5 {
        let (status, _) = patch_status(
            &app,
            &customer.token,
            json!({ "email": "ladro@example.it", "current_password": "indovino io" }),
        )
        .await;
        assert_eq!(status, 400);
    }
    let response = app
        .patch_me(
            &customer.token,
            &json!({ "email": "ladro@example.it", "current_password": PASSWORD }),
        )
        .await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, 429).await;
    assert!(kinds_sent_to(&app, "ladro@example.it").is_empty());
}

#[tokio::test]
async fn a_new_address_taken_before_its_confirmation_is_refused_then() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let wanted = format!("conteso-{}@example.it", Uuid::new_v4().simple());
    let (status, _) = patch_status(
        &app,
        &customer.token,
        json!({ "email": wanted, "current_password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 200);
    let link = app.confirmation_token(&wanted).await;
    // Someone signs up with that address meanwhile.
    let response = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({ "brand": "visura", "name": "Altro", "email": wanted, "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body = problem(confirm(&app, &customer.token, &link).await, 409).await;
    assert_eq!(body["type"], "/problems/email-taken");
    assert_eq!(body["errors"][0]["field"], "email");
    let me: Value = app.get_json(&customer.token, "/api/v1/me").await;
    assert_eq!(me["email"], customer.email.as_str());
}

#[tokio::test]
async fn the_profile_page_changes_the_email_only_with_the_password() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let new = format!("pagina-{}@example.it", Uuid::new_v4().simple());
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    let page = browser
        .post(
            "/negozio/profilo",
            &[
                ("name", "Studio Test"),
                ("email", new.as_str()),
                ("current_password", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"current_password-error\""));
    let page = browser
        .post(
            "/negozio/profilo",
            &[
                ("name", "Studio Test"),
                ("email", new.as_str()),
                ("current_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = browser.get("/negozio/profilo").await;
    assert!(page.body.contains("id=\"email-in-attesa\""));
    assert!(page.body.contains(&new));
    assert!(page.body.contains(&format!("value=\"{}\"", customer.email)));
    assert_eq!(
        kinds_sent_to(&app, &customer.email)
            .last()
            .map(String::as_str),
        Some("email_change_notice")
    );
    let link = app.confirmation_token(&new).await;
    let page = browser
        .post("/negozio/conferma-email", &[("token", link.as_str())])
        .await;
    assert_eq!(page.status, 200);
    let page = browser.get("/negozio/profilo").await;
    assert!(page.body.contains(&format!("value=\"{new}\"")));
}
