//! The back-office's user management: finding the brand's users, disabling (every
//! session ends at once, sign-in refused) and enabling them, and the registration-officer
//! role granted on an application and taken back; through the API and the pages.

use std::time::Duration;

use diesel::prelude::*;
use rinnovo::auth::Role;
use rinnovo::db::schema::{audit_log, emails};
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, spawn_app_with_smtp, SignedIn, TestApp, PASSWORD};
use crate::smtp::{assert_email_snapshot, decoded, SmtpSink};
use crate::web_client::{text_of, Browser};

/// A partita IVA whose check digit is right.
const VAT: &str = "00743110157";

/// The audit rows of `action` on `subject`: (actor, details).
fn audited(app: &TestApp, action: &str, subject: &str) -> Vec<(String, Value)> {
    audit_log::table
        .filter(audit_log::action.eq(action))
        .filter(audit_log::subject_id.eq(subject))
        .order(audit_log::id.asc())
        .select((audit_log::actor, audit_log::details))
        .load::<(String, String)>(&mut app.pool.get().unwrap())
        .unwrap()
        .into_iter()
        .map(|(actor, details)| (actor, serde_json::from_str(&details).unwrap()))
        .collect()
}

async fn post_as(app: &TestApp, who: &SignedIn, path: &str, body: Value) -> reqwest::Response {
    app.post_json_as(&who.token, path, &body).await
}

async fn disable(app: &TestApp, operator: &SignedIn, user_id: &str) -> reqwest::Response {
    let path = format!("/api/v1/backoffice/users/{user_id}/disable");
    post_as(
        app,
        operator,
        &path,
        json!({ "reason": "account compromesso" }),
    )
    .await
}

async fn enable(app: &TestApp, operator: &SignedIn, user_id: &str) -> reqwest::Response {
    let path = format!("/api/v1/backoffice/users/{user_id}/enable");
    post_as(
        app,
        operator,
        &path,
        json!({ "reason": "verificato al telefono" }),
    )
    .await
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

async fn apply(app: &TestApp, customer: &SignedIn, vat_number: &str) -> reqwest::Response {
    post_as(
        app,
        customer,
        "/api/v1/me/officer-application",
        json!({
            "company_name": "Studio Rossi S.r.l.",
            "vat_number": vat_number,
            "contact_email": "studiorossi@pec.example.it",
            "phone": "+39 06 1234567",
            "note": "Seguiamo 300 clienti\r\nin tutta Italia",
        }),
    )
    .await
}

/// A quote for 21 coupons: over a customer's cap of 20, within an officer's.
async fn quote_21(app: &TestApp, token: &str) -> u16 {
    app.post_json_as(
        token,
        "/api/v1/quotes",
        &json!({ "lines": [{ "product": "RIN-FIRMA", "quantity": 21 }] }),
    )
    .await
    .status()
    .as_u16()
}

/// A fresh access token of `user` (a refresh carries the role as it is now).
async fn refreshed(app: &TestApp, user: &SignedIn) -> String {
    let response = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_search_finds_the_users_of_the_operators_brand_only() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let anna = app.customer("visura").await;
    let officer = app
        .user_with_role("visura", Role::RegistrationOfficer)
        .await;
    let other_brand = app.customer("lextel").await;
    let anna_piece = &anna.email[8..20];

    let found = app
        .get_json(
            &operator.token,
            &format!("/api/v1/backoffice/users?q={}", anna_piece.to_uppercase()),
        )
        .await;
    assert_eq!(found["total"], 1, "{found}");
    let user = &found["users"][0];
    assert_eq!(user["id"], anna.user_id.as_str());
    assert_eq!(user["email"], anna.email.as_str());
    assert_eq!(user["role"], "customer");
    assert_eq!(user["status"], "active");
    assert_eq!(user["disabled_at"], Value::Null);
    let text = found.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );

    // By a piece of the name, any case; by role; the other brand's users never.
    let all = app
        .get_json(&operator.token, "/api/v1/backoffice/users?q=sTuDiO%20tEsT")
        .await;
    assert_eq!(
        all["total"], 1,
        "only anna is named Studio Test in visura: {all}"
    );
    let officers = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/users?role=registration_officer",
        )
        .await;
    assert_eq!(officers["total"], 1);
    assert_eq!(officers["users"][0]["id"], officer.user_id.as_str());
    let everyone = app
        .get_json(&operator.token, "/api/v1/backoffice/users")
        .await;
    assert_eq!(
        everyone["total"], 3,
        "anna, the officer, the operator: {everyone}"
    );
    assert!(!everyone.to_string().contains(&other_brand.email));
    let lextel = app
        .get_json(
            &operator.token,
            &format!("/api/v1/backoffice/users?q={}", other_brand.email),
        )
        .await;
    assert_eq!(lextel["total"], 0);
    let path = format!("/api/v1/backoffice/users/{}", other_brand.user_id);
    let body = problem(app.get_as(&operator.token, &path).await, 404).await;
    assert_eq!(body["type"], "/problems/unknown-user");

    // A LIKE wildcard is a character to find, not a wildcard.
    let wildcard = app
        .get_json(&operator.token, "/api/v1/backoffice/users?q=%25")
        .await;
    assert_eq!(wildcard["total"], 0, "{wildcard}");

    // Filters are checked; a customer or an officer is no operator.
    let body = problem(
        app.get_as(
            &operator.token,
            "/api/v1/backoffice/users?role=admin&status=gone&limit=0",
        )
        .await,
        400,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["role", "status", "limit"]);
    let body = problem(
        app.get_as(&operator.token, "/api/v1/backoffice/users?q=a%00b")
            .await,
        400,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "q");
    assert_eq!(body["errors"][0]["rule"], "printable");
    for caller in [&anna, &officer] {
        let body = problem(
            app.get_as(&caller.token, "/api/v1/backoffice/users").await,
            403,
        )
        .await;
        assert_eq!(body["type"], "/problems/forbidden-role");
    }
}

#[tokio::test]
async fn disabling_ends_every_session_at_once_and_sign_in_is_refused() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    assert_eq!(browser.get("/negozio/profilo").await.status, 200);
    assert_eq!(
        app.get_as(&customer.token, "/api/v1/me").await.status(),
        200
    );

    let response = disable(&app, &operator, &customer.user_id).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "disabled");
    assert!(body["disabled_at"].is_string());

    // The access token, the refresh token and the browser session end at once.
    problem(app.get_as(&customer.token, "/api/v1/me").await, 401).await;
    assert_eq!(refresh_status(&app, &customer.refresh_token).await, 401);
    let page = browser.get("/negozio/profilo").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/negozio/visura/accedi"));

    // The right password: told the account is disabled; a wrong one: as ever.
    let body = problem(app.login("visura", &customer.email, PASSWORD).await, 403).await;
    assert_eq!(body["type"], "/problems/account-disabled");
    let body = problem(
        app.login("visura", &customer.email, "una password sbagliata")
            .await,
        401,
    )
    .await;
    assert_eq!(body["type"], "/problems/unauthorized");
    // The sign-in page says so next to the form, and starts no session.
    let visitor = Browser::anonymous(&app, "visura").await;
    let page = visitor
        .post(
            "/negozio/visura/accedi",
            &[("email", &customer.email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("disattivato"), "{}", page.body);

    // Audited: who, whom, why, what ended.
    let rows = audited(&app, "user.disabled", &customer.user_id);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, format!("user:{}", operator.user_id));
    assert_eq!(rows[0].1["reason"], "account compromesso");
    assert_eq!(rows[0].1["sign_ins_ended"], 1);
    assert_eq!(rows[0].1["browser_sessions_ended"], 1);

    // The list shows it as disabled.
    let found = app
        .get_json(&operator.token, "/api/v1/backoffice/users?status=disabled")
        .await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["users"][0]["id"], customer.user_id.as_str());
}

#[tokio::test]
async fn enabling_restores_the_sign_in_but_not_the_old_sessions() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    assert_eq!(
        disable(&app, &operator, &customer.user_id).await.status(),
        200
    );

    let response = enable(&app, &operator, &customer.user_id).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "active");
    assert_eq!(body["disabled_at"], Value::Null);

    assert_eq!(refresh_status(&app, &customer.refresh_token).await, 401);
    problem(app.get_as(&customer.token, "/api/v1/me").await, 401).await;
    let response = app.login("visura", &customer.email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(token, "/api/v1/me").await.status(), 200);

    let rows = audited(&app, "user.enabled", &customer.user_id);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, format!("user:{}", operator.user_id));
    assert_eq!(rows[0].1["reason"], "verificato al telefono");
}

#[tokio::test]
async fn an_operator_cannot_disable_themself_but_may_disable_a_colleague() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let colleague = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let lextel = app.customer("lextel").await;

    let body = problem(disable(&app, &operator, &operator.user_id).await, 403).await;
    assert_eq!(body["type"], "/problems/own-account");
    assert_eq!(
        app.get_as(&operator.token, "/api/v1/me").await.status(),
        200
    );

    assert_eq!(
        disable(&app, &operator, &colleague.user_id).await.status(),
        200
    );
    problem(app.get_as(&colleague.token, "/api/v1/me").await, 401).await;

    // States: twice is a conflict, as is enabling an active user.
    let body = problem(disable(&app, &operator, &colleague.user_id).await, 409).await;
    assert_eq!(body["type"], "/problems/user-state");
    let body = problem(enable(&app, &operator, &customer.user_id).await, 409).await;
    assert_eq!(body["type"], "/problems/user-state");

    // The reason is required; another brand's user is unknown; only operators may.
    let path = format!("/api/v1/backoffice/users/{}/disable", customer.user_id);
    let body = problem(
        post_as(&app, &operator, &path, json!({ "reason": " " })).await,
        400,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "reason");
    let body = problem(disable(&app, &operator, &lextel.user_id).await, 404).await;
    assert_eq!(body["type"], "/problems/unknown-user");
    for id in ["no-such-user", "a%00b"] {
        let body = problem(disable(&app, &operator, id).await, 404).await;
        assert_eq!(body["type"], "/problems/unknown-user");
        let path = format!("/api/v1/backoffice/users/{id}");
        problem(app.get_as(&operator.token, &path).await, 404).await;
        let path = format!("/api/v1/backoffice/officer-applications/{id}/approve");
        let body = problem(post_as(&app, &operator, &path, json!({})).await, 404).await;
        assert_eq!(body["type"], "/problems/unknown-application");
    }
    let lextel_operator = app.back_office("lextel").await;
    problem(
        disable(&app, &lextel_operator, &customer.user_id).await,
        404,
    )
    .await;
    let body = problem(disable(&app, &customer, &lextel.user_id).await, 403).await;
    assert_eq!(body["type"], "/problems/forbidden-role");
    assert_eq!(
        app.get_as(&customer.token, "/api/v1/me").await.status(),
        200
    );
}

#[tokio::test]
async fn an_application_approved_makes_the_customer_an_officer() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;

    // The partita IVA's check digit is checked, with every other field.
    let response = post_as(
        &app,
        &customer,
        "/api/v1/me/officer-application",
        json!({ "company_name": "", "vat_number": "00743110158", "contact_email": "pec", "phone": "12" }),
    )
    .await;
    let body = problem(response, 400).await;
    let errors: Vec<(&str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            ("company_name", "min_length"),
            ("vat_number", "check_digit"),
            ("contact_email", "email"),
            ("phone", "phone"),
        ]
    );
    let body = problem(
        app.get_as(&customer.token, "/api/v1/me/officer-application")
            .await,
        404,
    )
    .await;
    assert_eq!(body["type"], "/problems/no-application");

    let response = apply(&app, &customer, "IT 0074 3110 157").await;
    assert_eq!(response.status(), 201);
    let application: Value = response.json().await.unwrap();
    assert_eq!(application["status"], "pending");
    assert_eq!(application["vat_number"], VAT);
    assert_eq!(application["note"], "Seguiamo 300 clienti in tutta Italia");
    let id = application["id"].as_str().unwrap().to_owned();
    let body = problem(apply(&app, &customer, VAT).await, 409).await;
    assert_eq!(body["type"], "/problems/application-pending");
    let mine = app
        .get_json(&customer.token, "/api/v1/me/officer-application")
        .await;
    assert_eq!(mine["id"], id.as_str());
    assert_eq!(mine["status"], "pending");

    // The brand's operators see it; another brand's neither see nor decide it.
    let pending = app
        .get_json(&operator.token, "/api/v1/backoffice/officer-applications")
        .await;
    assert_eq!(pending["applications"].as_array().unwrap().len(), 1);
    assert_eq!(
        pending["applications"][0]["applicant_email"],
        customer.email.as_str()
    );
    let lextel = app.back_office("lextel").await;
    let theirs = app
        .get_json(&lextel.token, "/api/v1/backoffice/officer-applications")
        .await;
    assert_eq!(theirs["applications"], json!([]));
    let approve = format!("/api/v1/backoffice/officer-applications/{id}/approve");
    let body = problem(post_as(&app, &lextel, &approve, json!({})).await, 404).await;
    assert_eq!(body["type"], "/problems/unknown-application");
    problem(post_as(&app, &customer, &approve, json!({})).await, 403).await;

    // Before: a customer's cap. Approved: the role changes, the applicant is told.
    assert_eq!(quote_21(&app, &customer.token).await, 422);
    let response = post_as(&app, &operator, &approve, json!({})).await;
    assert_eq!(response.status(), 200);
    let decided: Value = response.json().await.unwrap();
    assert_eq!(decided["status"], "approved");
    let user = app
        .get_json(
            &operator.token,
            &format!("/api/v1/backoffice/users/{}", customer.user_id),
        )
        .await;
    assert_eq!(user["role"], "registration_officer");
    let messages = sink.wait_for(1, Duration::from_secs(20)).await;
    let email = decoded(&messages[0]);
    assert!(email.contains(&customer.email), "{email}");
    assert!(
        email.contains("accolta") && !email.contains("non è stata accolta"),
        "{email}"
    );
    assert!(email.contains("Studio Rossi S.r.l."), "{email}");
    assert_email_snapshot("officer_decision_approved", &email);

    // From the next refresh, the officer's cap.
    let token = refreshed(&app, &customer).await;
    assert_eq!(quote_21(&app, &token).await, 200);
    let me = app.get_json(&token, "/api/v1/me").await;
    assert_eq!(me["role"], "registration_officer");

    // Deciding again is a clear conflict; an officer need not apply.
    let body = problem(post_as(&app, &operator, &approve, json!({})).await, 409).await;
    assert_eq!(body["type"], "/problems/application-decided");
    let refuse = format!("/api/v1/backoffice/officer-applications/{id}/refuse");
    let body = problem(
        post_as(
            &app,
            &operator,
            &refuse,
            json!({ "reason": "ripensamento" }),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(body["type"], "/problems/application-decided");
    let body = problem(apply(&app, &with_token(&customer, &token), VAT).await, 409).await;
    assert_eq!(body["type"], "/problems/already-officer");

    // Audited: the application, its approval, the role change.
    assert_eq!(audited(&app, "officer_application.submitted", &id).len(), 1);
    let approved = audited(&app, "officer_application.approved", &id);
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].0, format!("user:{}", operator.user_id));
    let changed = audited(&app, "user.role_changed", &customer.user_id);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].1["to"], "registration_officer");
    assert_eq!(changed[0].1["application_id"], id.as_str());
}

/// `user` with another access token.
fn with_token(user: &SignedIn, token: &str) -> SignedIn {
    SignedIn {
        token: token.to_owned(),
        ..user.clone()
    }
}

#[tokio::test]
async fn a_refused_application_says_why_and_the_customer_may_apply_again() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let application: Value = apply(&app, &customer, VAT).await.json().await.unwrap();
    let id = application["id"].as_str().unwrap();

    let refuse = format!("/api/v1/backoffice/officer-applications/{id}/refuse");
    let body = problem(
        post_as(&app, &operator, &refuse, json!({ "reason": "" })).await,
        400,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "reason");
    let response = post_as(
        &app,
        &operator,
        &refuse,
        json!({ "reason": "La partita IVA non risulta intestata allo studio" }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let decided: Value = response.json().await.unwrap();
    assert_eq!(decided["status"], "refused");
    assert_eq!(
        decided["refusal_reason"],
        "La partita IVA non risulta intestata allo studio"
    );

    let messages = sink.wait_for(1, Duration::from_secs(20)).await;
    let email = decoded(&messages[0]);
    assert!(
        email.contains("non risulta intestata allo studio"),
        "{email}"
    );
    assert_email_snapshot("officer_decision_refused", &email);
    let mine = app
        .get_json(&customer.token, "/api/v1/me/officer-application")
        .await;
    assert_eq!(mine["status"], "refused");
    assert_eq!(quote_21(&app, &refreshed(&app, &customer).await).await, 422);
    let refused = audited(&app, "officer_application.refused", id);
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].1["reason"],
        "La partita IVA non risulta intestata allo studio"
    );
    assert!(audited(&app, "user.role_changed", &customer.user_id).is_empty());

    // A new application is allowed once the last one is decided.
    let customer = SignedIn {
        token: app
            .login("visura", &customer.email, PASSWORD)
            .await
            .json::<Value>()
            .await
            .unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..customer
    };
    assert_eq!(apply(&app, &customer, VAT).await.status(), 201);
}

#[tokio::test]
async fn removing_the_officer_role_makes_a_customer_at_once() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let officer = app
        .user_with_role("visura", Role::RegistrationOfficer)
        .await;
    assert_eq!(quote_21(&app, &officer.token).await, 200);
    let path = format!(
        "/api/v1/backoffice/users/{}/remove-officer-role",
        officer.user_id
    );

    let response = post_as(
        &app,
        &operator,
        &path,
        json!({ "reason": "contratto scaduto" }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["role"], "customer");
    // The token carrying the old role is over; signing in again gives a customer.
    problem(app.get_as(&officer.token, "/api/v1/me").await, 401).await;
    assert_eq!(refresh_status(&app, &officer.refresh_token).await, 401);
    let session: Value = app
        .login("visura", &officer.email, PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["role"], "customer");
    assert_eq!(
        quote_21(&app, session["access_token"].as_str().unwrap()).await,
        422
    );

    let body = problem(
        post_as(
            &app,
            &operator,
            &path,
            json!({ "reason": "contratto scaduto" }),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(body["type"], "/problems/not-an-officer");
    let changed = audited(&app, "user.role_changed", &officer.user_id);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, format!("user:{}", operator.user_id));
    assert_eq!(changed[0].1["from"], "registration_officer");
    assert_eq!(changed[0].1["to"], "customer");
    assert_eq!(changed[0].1["reason"], "contratto scaduto");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_operators_deciding_one_application_at_once_one_wins() {
    let app = spawn_app().await;
    let first = app.back_office("visura").await;
    let second = app.back_office("visura").await;
    for round in 0..4 {
        let customer = app.customer("visura").await;
        let application: Value = apply(&app, &customer, VAT).await.json().await.unwrap();
        let id = application["id"].as_str().unwrap();
        let approve = format!("/api/v1/backoffice/officer-applications/{id}/approve");
        let refuse = format!("/api/v1/backoffice/officer-applications/{id}/refuse");
        // Alternate who approves, so either order of arrival is tried.
        let (approver, refuser) = if round % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        let (approved, refused) = tokio::join!(
            post_as(&app, approver, &approve, json!({})),
            post_as(&app, refuser, &refuse, json!({ "reason": "doppione" })),
        );
        let mut statuses = [approved.status().as_u16(), refused.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}");
        let loser = if approved.status() == 409 {
            approved
        } else {
            refused
        };
        let body = problem(loser, 409).await;
        assert_eq!(body["type"], "/problems/application-decided");

        // One decision stands: one audit row, one email, and the role agrees with it.
        let decisions = audited(&app, "officer_application.approved", id).len()
            + audited(&app, "officer_application.refused", id).len();
        assert_eq!(decisions, 1);
        let sent: i64 = emails::table
            .filter(emails::reference.eq(id))
            .count()
            .get_result(&mut app.pool.get().unwrap())
            .unwrap();
        assert_eq!(sent, 1);
        let status = app
            .get_json(&customer.token, "/api/v1/me/officer-application")
            .await["status"]
            .clone();
        let user = app
            .get_json(
                &first.token,
                &format!("/api/v1/backoffice/users/{}", customer.user_id),
            )
            .await;
        let expected = if status == "approved" {
            "registration_officer"
        } else {
            "customer"
        };
        assert_eq!(user["role"], expected, "round {round}: {status}");
    }
}

#[tokio::test]
async fn the_back_office_pages_find_disable_and_enable_a_user() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let (office, _) = Browser::signed_in(&app, &operator.email).await;
    let (shopper, _) = Browser::signed_in(&app, &customer.email).await;

    let page = office
        .get(&format!("/backoffice/utenti?q={}", &customer.email[..16]))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&customer.email));
    assert_eq!(text_of(&page.body, "trovati"), "Utenti 1–1 di 1.");
    let path = format!("/backoffice/utenti/{}", customer.user_id);
    let page = office.get(&path).await;
    assert_eq!(page.status, 200);
    assert_eq!(text_of(&page.body, "stato"), "attivo");

    // A reason is required, next to its field; a form without the token is refused.
    let page = office
        .post(&format!("{path}/disattiva"), &[("reason", "")])
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("id=\"disattiva-error\""),
        "{}",
        page.body
    );
    let page = office
        .post_raw(&format!("{path}/disattiva"), &[("reason", "furto")])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(shopper.get("/negozio/profilo").await.status, 200);

    let page = office
        .post(
            &format!("{path}/disattiva"),
            &[("reason", "furto di credenziali")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{path}?fatto=disattivato").as_str())
    );
    assert_eq!(shopper.get("/negozio/profilo").await.status, 303);
    let page = office.get(&path).await;
    assert_eq!(text_of(&page.body, "stato"), "disattivato");
    assert!(page.body.contains("furto di credenziali"));
    problem(app.login("visura", &customer.email, PASSWORD).await, 403).await;

    let page = office
        .post(
            &format!("{path}/riattiva"),
            &[("reason", "credenziali cambiate")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        app.login("visura", &customer.email, PASSWORD)
            .await
            .status(),
        200
    );

    // The operator's own page offers no disabling; a customer sees no back-office page.
    let own = office
        .get(&format!("/backoffice/utenti/{}", operator.user_id))
        .await;
    assert!(!own.body.contains("/disattiva\""), "{}", own.body);
    let page = office
        .post(
            &format!("/backoffice/utenti/{}/disattiva", operator.user_id),
            &[("reason", "per prova")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        text_of(&page.body, "form-error").contains("Non puoi disattivare il tuo account"),
        "{}",
        page.body
    );
    let (shopper, _) = Browser::signed_in(&app, &customer.email).await;
    assert_eq!(shopper.get("/backoffice/utenti").await.status, 403);
    assert_eq!(shopper.get(&path).await.status, 403);
}

#[tokio::test]
async fn a_customer_applies_from_the_profile_and_an_operator_approves_on_the_page() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let (office, _) = Browser::signed_in(&app, &operator.email).await;
    let (shopper, _) = Browser::signed_in(&app, &customer.email).await;

    let profile = shopper.get("/negozio/profilo").await;
    assert!(profile
        .body
        .contains("href=\"/negozio/profilo/incaricato\""));
    let fields = |vat: &'static str| {
        [
            ("company_name", "Studio Bianchi"),
            ("vat_number", vat),
            ("contact_email", "bianchi@pec.example.it"),
            ("phone", ""),
            ("note", ""),
        ]
    };
    let page = shopper
        .post("/negozio/profilo/incaricato", &fields("00743110158"))
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("id=\"vat_number-error\""),
        "{}",
        page.body
    );
    // The rule's words, the same as the billing form's (tests/api/billing.rs).
    assert!(
        page.body.contains(
            "L&#x27;ultima cifra della partita IVA non corrisponde alle altre: controlla di \
             averla scritta bene."
        ),
        "{}",
        page.body
    );
    let page = shopper
        .post("/negozio/profilo/incaricato", &fields(VAT))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let profile = shopper.get("/negozio/profilo").await;
    assert!(
        profile.body.contains("in attesa di esame"),
        "{}",
        profile.body
    );
    assert!(!profile
        .body
        .contains("href=\"/negozio/profilo/incaricato\""));
    let page = shopper
        .post("/negozio/profilo/incaricato", &fields(VAT))
        .await;
    assert_eq!(page.status, 409);

    let list = office.get("/backoffice/utenti/richieste").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("Studio Bianchi") && list.body.contains(&customer.email));
    let id = app
        .get_json(&customer.token, "/api/v1/me/officer-application")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = office
        .post(
            &format!("/backoffice/utenti/richieste/{id}/rifiuta"),
            &[("reason", "")],
        )
        .await;
    assert_eq!(page.status, 422);
    let page = office
        .post(&format!("/backoffice/utenti/richieste/{id}/approva"), &[])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = office
        .post(&format!("/backoffice/utenti/richieste/{id}/approva"), &[])
        .await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("già stata accolta"), "{}", page.body);

    // The pages read the role at once.
    let profile = shopper.get("/negozio/profilo").await;
    assert!(
        profile.body.contains("id=\"incaricato-stato\""),
        "{}",
        profile.body
    );
    assert!(profile.body.contains("accolta"));
}
