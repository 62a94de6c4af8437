//! Password recovery: the link by email, its one use, its limits, and the sessions a new
//! password ends.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use rinnovo::auth::recovery::{ACCOUNT_HOURLY, ADDRESS_LIMIT};
use rinnovo::auth::throttle::PAIR_LIMIT;
use rinnovo::db::schema::{audit_log, emails, password_resets};
use rinnovo::startup::StartOptions;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{
    problem, retry_after, spawn_app_with, spawn_app_with_smtp, SignedIn, TestApp, PASSWORD,
};
use crate::smtp::{assert_email_snapshot, decoded, SmtpSink};
use crate::web_client::{hidden, text_of, Browser};

const NEW_PASSWORD: &str = "cavallo batteria graffetta";

/// An app whose emails stay in the outbox (no dispatcher), where the tests read them.
async fn app_keeping_emails() -> TestApp {
    spawn_app_with(
        StartOptions::default(),
        &[("RINNOVO_RUN_WORKERS", "false".into())],
    )
    .await
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().expect("an IP address"))
        .build()
        .expect("a client")
}

/// Asks for a reset link from the client address `ip` (any of 127.0.0.0/8).
async fn ask_from(app: &TestApp, ip: &str, brand: &str, email: &str) -> reqwest::Response {
    client_from(ip)
        .post(format!("{}/api/v1/auth/password-reset", app.address))
        .json(&json!({ "brand": brand, "email": email }))
        .send()
        .await
        .expect("request sent")
}

async fn ask(app: &TestApp, email: &str) -> reqwest::Response {
    ask_from(app, "127.0.0.1", "visura", email).await
}

async fn confirm(app: &TestApp, token: &str, new_password: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/password-reset/confirm",
        &json!({ "token": token, "new_password": new_password }),
    )
    .await
}

/// The token of the link in a text (an email, or the outbox's context of one).
fn token_in(text: &str) -> String {
    let start = text.find("token=").expect("a link with a token") + "token=".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(token.len(), 64, "{text}");
    token
}

/// The reset emails waiting in the outbox, oldest first: (recipient, context).
fn reset_emails(app: &TestApp) -> Vec<(String, Value)> {
    emails::table
        .filter(emails::kind.eq("password_reset"))
        .order((emails::created_at.asc(), emails::id.asc()))
        .select((emails::recipient, emails::context))
        .load::<(String, String)>(&mut app.pool.get().unwrap())
        .unwrap()
        .into_iter()
        .map(|(to, context)| (to, serde_json::from_str(&context).unwrap()))
        .collect()
}

/// The token of the latest reset email to `user`, read from the outbox.
fn latest_token(app: &TestApp, user: &SignedIn) -> String {
    let emails = reset_emails(app);
    let (_, context) = emails
        .iter()
        .rev()
        .find(|(to, _)| *to == user.email)
        .expect("a reset email to the user");
    token_in(context["link"].as_str().unwrap())
}

async fn refresh_status(app: &TestApp, refresh_token: &str) -> u16 {
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({ "refresh_token": refresh_token }),
    )
    .await
    .status()
    .as_u16()
}

async fn assert_link_refused(response: reqwest::Response) {
    let body = problem(response, 400).await;
    assert_eq!(body["type"], "/problems/reset-link-invalid", "{body}");
    assert_eq!(body["errors"][0]["field"], "token", "{body}");
}

#[tokio::test]
async fn unknown_and_known_emails_get_the_same_answer() {
    let app = app_keeping_emails().await;
    let user = app.customer("visura").await;
    let unknown = format!("nessuno-{}", user.email);

    let mut answers = Vec::new();
    for email in [
        user.email.as_str(),
        unknown.as_str(),
        "not an address at all",
    ] {
        let response = ask(&app, email).await;
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(name, _)| !["date", "x-request-id"].contains(&name.as_str()))
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        answers.push((status, headers, response.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, 202, "{}", answers[0].2);
    assert_eq!(answers[0], answers[1], "known and unknown answer alike");
    assert_eq!(answers[0], answers[2]);
    let body: Value = serde_json::from_str(&answers[0].2).unwrap();
    assert_eq!(body["link_valid_minutes"], 30);

    // Only the account got an email, and only the one it asked for.
    let sent = reset_emails(&app);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, user.email);
    // The same address in another brand has no account there: no email either.
    assert_eq!(
        ask_from(&app, "127.0.0.1", "lextel", &user.email)
            .await
            .status(),
        202
    );
    assert_eq!(reset_emails(&app).len(), 1);

    // An unknown brand is an error of the request, not of the account.
    let body = problem(
        ask_from(&app, "127.0.0.1", "nessuno", &user.email).await,
        400,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "brand");
}

#[tokio::test]
async fn the_emailed_link_sets_a_new_password_once_and_ends_every_session() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let user = app.customer("visura").await;
    // Other sessions of the user: a second sign-in, and a browser.
    let response = app.login("visura", &user.email, PASSWORD).await;
    let other: Value = response.json().await.unwrap();
    let other_access = other["access_token"].as_str().unwrap().to_owned();
    let other_refresh = other["refresh_token"].as_str().unwrap().to_owned();
    let (browser, _) = Browser::signed_in(&app, &user.email).await;
    assert_eq!(browser.get("/negozio/profilo").await.status, 200);

    assert_eq!(ask(&app, &user.email).await.status(), 202);
    let messages = sink.wait_for(1, Duration::from_secs(20)).await;
    let message = decoded(&messages[0]);
    assert!(
        message.contains(&format!("To: {}", user.email)),
        "{message}"
    );
    assert!(message.contains("imposta una nuova password"), "{message}");
    assert_email_snapshot("password_reset", &message);
    let token = token_in(&message);
    // The link leads to the page that sets the password.
    let path = format!("/negozio/visura/accedi/nuova-password?token={token}");
    assert!(message.contains(&path), "{message}");
    let page = Browser::anonymous(&app, "visura").await.get(&path).await;
    assert_eq!(page.status, 200);
    assert_eq!(hidden(&page.body, "token"), token);

    // A password that breaks the rule leaves the link unused.
    let body = problem(confirm(&app, &token, "short").await, 400).await;
    assert_eq!(body["errors"][0]["field"], "new_password");
    assert_eq!(body["errors"][0]["rule"], "min_length");

    let response = confirm(&app, &token, NEW_PASSWORD).await;
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    // Once only.
    assert_link_refused(confirm(&app, &token, "un'altra password ancora").await).await;

    // The old password no longer signs in; the new one does.
    problem(app.login("visura", &user.email, PASSWORD).await, 401).await;
    assert_eq!(
        app.login("visura", &user.email, NEW_PASSWORD)
            .await
            .status(),
        200
    );
    // Every session that existed before has ended: access and refresh tokens of both
    // sign-ins, and the browser's.
    for access in [&user.token, &other_access] {
        problem(app.get_as(access, "/api/v1/me").await, 401).await;
    }
    for refresh in [&user.refresh_token, &other_refresh] {
        assert_eq!(refresh_status(&app, refresh).await, 401);
    }
    let page = browser.get("/negozio/profilo").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/negozio/visura/accedi"));

    // Audited, without the token.
    let details: Vec<String> = audit_log::table
        .filter(audit_log::action.eq("auth.password_reset"))
        .filter(audit_log::subject_id.eq(&user.user_id))
        .select(audit_log::details)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(details.len(), 1);
    let details: Value = serde_json::from_str(&details[0]).unwrap();
    assert_eq!(details["sign_ins_ended"], 2, "{details}");
    assert_eq!(details["browser_sessions_ended"], 1, "{details}");
    let audited: Vec<String> = audit_log::table
        .select(audit_log::details)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(audited.iter().all(|d| !d.contains(&token)));
}

#[tokio::test]
async fn the_token_is_stored_only_hashed() {
    let app = app_keeping_emails().await;
    let user = app.customer("visura").await;
    assert_eq!(ask(&app, &user.email).await.status(), 202);
    let token = latest_token(&app, &user);

    let rows: Vec<(String, String, String)> = password_resets::table
        .select((
            password_resets::id,
            password_resets::user_id,
            password_resets::token_hash,
        ))
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (id, user_id, token_hash) = &rows[0];
    assert_eq!(user_id, &user.user_id);
    assert_eq!(token_hash, &rinnovo::secrets::hex(&Sha256::digest(&token)));
    for column in [id, user_id, token_hash] {
        assert!(!column.contains(&token));
    }
}

#[tokio::test]
async fn an_expired_link_is_refused() {
    let app = app_keeping_emails().await;
    let user = app.customer("visura").await;
    assert_eq!(ask(&app, &user.email).await.status(), 202);
    let token = latest_token(&app, &user);
    // The link was made 31 minutes ago.
    diesel::update(password_resets::table)
        .set(
            password_resets::expires_at.eq((Utc::now() - chrono::Duration::minutes(1)).naive_utc()),
        )
        .execute(&mut app.pool.get().unwrap())
        .unwrap();

    assert_link_refused(confirm(&app, &token, NEW_PASSWORD).await).await;
    let browser = Browser::anonymous(&app, "visura").await;
    let page = browser
        .get(&format!(
            "/negozio/visura/accedi/nuova-password?token={token}"
        ))
        .await;
    assert_eq!(page.status, 400);
    assert!(text_of(&page.body, "form-error").contains("non è più valido"));
    assert!(!page.body.contains("name=\"new_password\""));
    // The password never changed.
    assert_eq!(
        app.login("visura", &user.email, PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn a_newer_request_voids_the_older_link() {
    let app = app_keeping_emails().await;
    let user = app.customer("visura").await;
    assert_eq!(ask(&app, &user.email).await.status(), 202);
    let first = latest_token(&app, &user);
    assert_eq!(ask(&app, &user.email).await.status(), 202);
    let second = latest_token(&app, &user);
    assert_ne!(first, second);

    assert_link_refused(confirm(&app, &first, NEW_PASSWORD).await).await;
    assert_eq!(confirm(&app, &second, NEW_PASSWORD).await.status(), 204);
    // Unknown and malformed tokens get the same refusal.
    for token in ["0".repeat(64), "not a token".into(), String::new()] {
        assert_link_refused(confirm(&app, &token, NEW_PASSWORD).await).await;
    }
}

#[tokio::test]
async fn requests_from_one_address_are_limited() {
    let app = app_keeping_emails().await;
    let ask_for = |n: i64| {
        let app = &app;
        async move { ask_from(app, "127.0.0.4", "visura", &format!("chi-{n}@example.it")).await }
    };
    for n in 0..ADDRESS_LIMIT.max_hits {
        assert_eq!(ask_for(n).await.status(), 202);
    }
    let response = ask_for(ADDRESS_LIMIT.max_hits).await;
    let retry_after = retry_after(&response);
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let body = problem(response, 429).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
    // Other addresses are not held back by it.
    assert_eq!(
        ask_from(&app, "127.0.0.5", "visura", "chi@example.it")
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn emails_to_one_account_are_limited_from_every_address() {
    let app = app_keeping_emails().await;
    let user = app.customer("visura").await;
    let mut answers = Vec::new();
    for n in 0..ACCOUNT_HOURLY.max_hits + 2 {
        // Each from its own address: the account's limit counts them together.
        let response = ask_from(&app, &format!("127.0.1.{}", n + 1), "visura", &user.email).await;
        answers.push((response.status().as_u16(), response.text().await.unwrap()));
    }
    // Past the limit the answer is the same; only the emails stop.
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 202);
    assert_eq!(
        reset_emails(&app).len() as i64,
        ACCOUNT_HOURLY.max_hits,
        "no more emails than the limit"
    );
    // The last link that went out still works.
    let token = latest_token(&app, &user);
    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
}

#[tokio::test]
async fn a_reset_lets_the_owner_in_at_once_after_failed_sign_ins() {
    let app = app_keeping_emails().await;
    let user = app.customer("visura").await;
    for _ in 0..PAIR_LIMIT {
        problem(
            app.login("visura", &user.email, "not the password").await,
            401,
        )
        .await;
    }
    problem(app.login("visura", &user.email, PASSWORD).await, 429).await;

    assert_eq!(ask(&app, &user.email).await.status(), 202);
    let token = latest_token(&app, &user);
    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    assert_eq!(
        app.login("visura", &user.email, NEW_PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_pages_recover_a_password() {
    let app = app_keeping_emails().await;
    let user = app.customer("visura").await;
    let browser = Browser::anonymous(&app, "visura").await;
    let sign_in = browser.get("/negozio/visura/accedi").await;
    assert!(sign_in
        .body
        .contains("href=\"/negozio/visura/accedi/password-dimenticata\""));
    let form = browser
        .get("/negozio/visura/accedi/password-dimenticata")
        .await;
    assert_eq!(form.status, 200);
    assert_eq!(hidden(&form.body, "csrf_token"), browser.csrf);

    // A form from elsewhere sends nothing.
    let forged = browser
        .post_raw(
            "/negozio/visura/accedi/password-dimenticata",
            &[("email", &user.email)],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(reset_emails(&app).is_empty());

    // The known address and an unknown one see the same page.
    let known = browser
        .post(
            "/negozio/visura/accedi/password-dimenticata",
            &[("email", &user.email)],
        )
        .await;
    let unknown = browser
        .post(
            "/negozio/visura/accedi/password-dimenticata",
            &[("email", "nessuno@example.it")],
        )
        .await;
    assert_eq!(known.status, 200);
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    assert!(text_of(&known.body, "richiesta-inviata").contains("Se questo indirizzo ha un account"));
    assert_eq!(reset_emails(&app).len(), 1);

    let token = latest_token(&app, &user);
    let path = format!("/negozio/visura/accedi/nuova-password?token={token}");
    let page = browser.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(hidden(&page.body, "token"), token);

    let weak = browser
        .post(
            "/negozio/visura/accedi/nuova-password",
            &[("token", &token), ("new_password", "1234567890")],
        )
        .await;
    assert_eq!(weak.status, 422);
    assert!(text_of(&weak.body, "new_password-error").contains("più usate"));

    let done = browser
        .post(
            "/negozio/visura/accedi/nuova-password",
            &[("token", &token), ("new_password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("/negozio/visura/accedi?password=nuova")
    );
    let notice = browser.get("/negozio/visura/accedi?password=nuova").await;
    assert!(text_of(&notice.body, "form-notice").contains("nuova password"));

    let again = browser
        .post(
            "/negozio/visura/accedi/nuova-password",
            &[
                ("token", &token),
                ("new_password", "ancora un'altra password"),
            ],
        )
        .await;
    assert_eq!(again.status, 400);
    assert!(text_of(&again.body, "form-error").contains("non è più valido"));

    problem(app.login("visura", &user.email, PASSWORD).await, 401).await;
    assert_eq!(
        app.login("visura", &user.email, NEW_PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_forgotten_password_page_is_limited_per_address_too() {
    let app = app_keeping_emails().await;
    let browser = Browser::anonymous(&app, "visura").await;
    let path = "/negozio/visura/accedi/password-dimenticata";
    for n in 0..ADDRESS_LIMIT.max_hits {
        let email = format!("chi-{n}@example.it");
        assert_eq!(browser.post(path, &[("email", &email)]).await.status, 200);
    }
    let page = browser.post(path, &[("email", "chi@example.it")]).await;
    assert_eq!(page.status, 429);
    assert!(page.body.contains("Troppe richieste"), "{}", page.body);
    // The API counts the same requests: this address is held back there too.
    problem(ask(&app, "chi@example.it").await, 429).await;
}

#[tokio::test]
async fn a_disabled_account_gets_no_link() {
    let app = app_keeping_emails().await;
    let user = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let disabled = app
        .post_json_as(
            &operator.token,
            &format!("/api/v1/backoffice/users/{}/disable", user.user_id),
            &json!({ "reason": "account compromesso" }),
        )
        .await;
    assert_eq!(disabled.status(), 200, "{}", disabled.text().await.unwrap());
    let stranger = ask(&app, "nessuno@example.it").await;
    let (status, body) = (stranger.status(), stranger.text().await.unwrap());
    let response = ask(&app, &user.email).await;
    assert_eq!(response.status(), status);
    assert_eq!(response.text().await.unwrap(), body, "the same answer");
    assert!(
        reset_emails(&app).is_empty(),
        "no link for a disabled account"
    );
}
