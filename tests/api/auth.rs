//! Sign-up, sign-in, tokens, refresh families, the throttle, ending sessions (password
//! change, sign out everywhere), and every way a request without the right credentials is
//! refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use jsonwebtoken::{encode, EncodingKey, Header};
use rinnovo::auth::throttle::{ACCOUNT_LIMIT, ADDRESS_LIMIT, PAIR_LIMIT};
use rinnovo::auth::{Role, TokenIssuer};
use serde_json::{json, Value};

use crate::helpers::{
    problem, retry_after, spawn_app, spawn_demo_app, SignedIn, TestApp, PASSWORD,
};
use crate::web_client::Browser;

#[tokio::test]
async fn signup_then_login_then_me() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({
                "brand": "visura", "name": " Studio Rossi ", "email": "Studio.Rossi@Example.IT",
                "password": PASSWORD, "codice_fiscale": "rssmra80a01h501u"
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["email"], "studio.rossi@example.it");
    assert_eq!(created["name"], "Studio Rossi");
    assert_eq!(created["role"], "customer");
    assert_eq!(created["codice_fiscale"], "RSSMRA80A01H501U");
    assert!(created.get("password_hash").is_none());

    let login = app
        .login("visura", "STUDIO.rossi@example.it", PASSWORD)
        .await;
    assert_eq!(login.status(), 200);
    let session: Value = login.json().await.unwrap();
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);
    let me: Value = app
        .get_json(session["access_token"].as_str().unwrap(), "/api/v1/me")
        .await;
    assert_eq!(me["id"], created["id"]);
    assert_eq!(me["brand"], "visura");
}

#[tokio::test]
async fn signup_names_every_invalid_field() {
    let app = spawn_app().await;
    let body = problem(
        app.post_json(
            "/api/v1/auth/signup",
            &json!({ "brand": "visura", "name": "", "email": "nope", "password": "short",
                     "codice_fiscale": "RSSMRA80A01H501A" }),
        )
        .await,
        400,
    )
    .await;
    let rules: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().into(),
                e["rule"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            ("name".into(), "min_length".into()),
            ("email".into(), "email".into()),
            ("password".into(), "min_length".into()),
            ("codice_fiscale".into(), "check_character".into()),
        ]
    );
}

#[tokio::test]
async fn one_email_per_brand_and_unknown_brands_refused() {
    let app = spawn_app().await;
    let signup = |brand: &'static str, email: &'static str| {
        let app = &app;
        async move {
            app.post_json(
                "/api/v1/auth/signup",
                &json!({ "brand": brand, "name": "X", "email": email, "password": PASSWORD }),
            )
            .await
        }
    };
    assert_eq!(signup("visura", "dup@example.it").await.status(), 201);
    let body = problem(signup("visura", "DUP@example.it").await, 409).await;
    assert_eq!(body["type"], "/problems/email-taken");
    assert_eq!(
        signup("lextel", "dup@example.it").await.status(),
        201,
        "other brand, other account"
    );
    let body = problem(signup("nobrand", "x@example.it").await, 400).await;
    assert_eq!(body["errors"][0]["field"], "brand");
}

#[tokio::test]
async fn malformed_bodies_are_problems() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let body = problem(response, 400).await;
    assert_eq!(body["type"], "/problems/malformed-request");
    let body = problem(
        app.post_json(
            "/api/v1/auth/login",
            &json!({ "brand": "visura", "email": "a@b.it" }),
        )
        .await,
        400,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("password"),
        "{body}"
    );
    // serde would read a struct of optional fields from an array: `[null, null]` must not
    // pass as an empty PATCH (found by the contract test), nor any other non-object.
    let user = app.customer("visura").await;
    for not_an_object in ["[null, null]", "[]", "null", "\"name\"", "3"] {
        let response = app
            .client
            .patch(format!("{}/api/v1/me", app.address))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .body(not_an_object)
            .send()
            .await
            .unwrap();
        let body = problem(response, 400).await;
        assert_eq!(
            body["type"], "/problems/malformed-request",
            "{not_an_object}"
        );
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("must be an object"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    let wrong = problem(
        app.login("visura", &user.email, "not the password").await,
        401,
    )
    .await;
    let unknown = problem(
        app.login("visura", "nobody@example.it", PASSWORD).await,
        401,
    )
    .await;
    assert_eq!(wrong["detail"], unknown["detail"]);
    // The same user in the other brand's shop does not exist.
    problem(app.login("lextel", &user.email, PASSWORD).await, 401).await;
}

fn forge(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// The sign-in an access token names (its `sid` claim).
fn session_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// The claims of an access token of `user`'s sign-in, saying `brand` and `role`.
fn claims(user: &SignedIn, brand: &str, role: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({ "iss": "rinnovo", "aud": "rinnovo-api", "sub": user.user_id, "brand": brand,
            "role": role, "sid": session_of(&user.token), "iat": now, "exp": now + 600 })
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    let secret = app.jwt_secret();

    // The real secret makes a token that works: the forgeries below fail for their flaw.
    let good = forge(&claims(&user, "visura", "customer"), &secret);
    assert_eq!(app.get_as(&good, "/api/v1/me").await.status(), 200);

    let no_token = app.get("/api/v1/me").await;
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    problem(no_token, 401).await;

    let expired = TokenIssuer::new(&secret, Duration::minutes(15)).issue_access(
        &user.user_id,
        "visura",
        Role::Customer,
        &session_of(&user.token),
        Utc::now() - Duration::hours(1),
    );
    let body = problem(app.get_as(&expired, "/api/v1/me").await, 401).await;
    assert_eq!(body["detail"], "the access token has expired");

    // Well signed, but naming no sign-in (as tokens made before sessions were named do):
    // refused, as a token of an ended session is.
    let mut no_session = claims(&user, "visura", "customer");
    no_session.as_object_mut().unwrap().remove("sid");
    let body = problem(
        app.get_as(&forge(&no_session, &secret), "/api/v1/me").await,
        401,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("session has ended"),
        "{body}"
    );

    let wrong_signature = forge(
        &claims(&user, "visura", "customer"),
        b"not-the-secret-not-the-secret-123",
    );
    problem(app.get_as(&wrong_signature, "/api/v1/me").await, 401).await;

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&user, "visura", "back_office").to_string());
    let alg_none = format!("{header}.{payload}.");
    problem(app.get_as(&alg_none, "/api/v1/me").await, 401).await;

    // The signature of a customer's token on a payload promoted to back_office.
    let real_signature = user.token.rsplit('.').next().unwrap();
    let tampered = format!(
        "{}.{payload}.{real_signature}",
        user.token.split('.').next().unwrap()
    );
    problem(
        app.get_as(&tampered, "/api/v1/backoffice/prepaid?email=a@b.it")
            .await,
        401,
    )
    .await;

    let mut other_audience = claims(&user, "visura", "customer");
    other_audience["aud"] = json!("rinnovo-agent");
    problem(
        app.get_as(&forge(&other_audience, &secret), "/api/v1/me")
            .await,
        401,
    )
    .await;

    let mut other_issuer = claims(&user, "visura", "customer");
    other_issuer["iss"] = json!("someone-else");
    problem(
        app.get_as(&forge(&other_issuer, &secret), "/api/v1/me")
            .await,
        401,
    )
    .await;

    let not_bearer = app
        .client
        .get(format!("{}/api/v1/me", app.address))
        .header("authorization", format!("Basic {}", user.token))
        .send()
        .await
        .unwrap();
    problem(not_bearer, 401).await;
}

#[tokio::test]
async fn roles_and_brands_are_enforced_with_403() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let visura_office = app.back_office("visura").await;
    let lextel_office = app.back_office("lextel").await;

    let search = format!("/api/v1/backoffice/prepaid?email={}", customer.email);
    let body = problem(app.get_as(&customer.token, &search).await, 403).await;
    assert_eq!(body["type"], "/problems/forbidden-role");

    // A back-office operator has no prepaid account to spend.
    problem(
        app.get_as(&visura_office.token, "/api/v1/prepaid").await,
        403,
    )
    .await;

    let found: Value = app.get_json(&visura_office.token, &search).await;
    let account = found["accounts"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The other brand's operator neither finds nor touches it.
    let lextel_found: Value = app.get_json(&lextel_office.token, &search).await;
    assert_eq!(lextel_found["accounts"], json!([]));
    let body = problem(
        app.get_as(
            &lextel_office.token,
            &format!("/api/v1/backoffice/prepaid/{account}"),
        )
        .await,
        403,
    )
    .await;
    assert_eq!(body["type"], "/problems/other-brand");
    let body = problem(
        app.post_json_as(
            &lextel_office.token,
            &format!("/api/v1/backoffice/prepaid/{account}/adjustments"),
            &json!({ "direction": "credit", "amount": "10.00", "reason": "tentativo" }),
        )
        .await,
        403,
    )
    .await;
    assert_eq!(body["type"], "/problems/other-brand");
    let (balance, _) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.cents(), 0, "nothing moved");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.post_json("/api/v1/auth/refresh", &json!({ "refresh_token": token }))
                .await
        }
    };
    let first = refresh(user.refresh_token.clone()).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let second_token = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, user.refresh_token);
    assert_eq!(
        app.get_as(first["access_token"].as_str().unwrap(), "/api/v1/me")
            .await
            .status(),
        200
    );

    // The first token again: reuse. Refused, and the family (second token too) revoked.
    problem(refresh(user.refresh_token.clone()).await, 401).await;
    problem(refresh(second_token).await, 401).await;

    // A new sign-in starts a new family that works.
    let again = app.login("visura", &user.email, PASSWORD).await;
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        refresh(again["refresh_token"].as_str().unwrap().to_owned())
            .await
            .status(),
        200
    );
    problem(refresh("not-a-token".into()).await, 401).await;
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_let_one_through() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    let mut handles = Vec::new();
    for _ in 0..10 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/auth/refresh", app.address);
        let token = user.refresh_token.clone();
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({ "refresh_token": token }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    let response = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(response.status(), 204);
    problem(
        app.post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await,
        401,
    )
    .await;
    // The access token of that sign-in ends with it, not 15 minutes later.
    problem(app.get_as(&user.token, "/api/v1/me").await, 401).await;
    // Unknown tokens are fine to log out: nothing to learn from the answer.
    let response = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({ "refresh_token": "unknown" }),
        )
        .await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn five_failures_throttle_the_account() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    for _ in 0..5 {
        problem(
            app.login("visura", &user.email, "wrong password!").await,
            401,
        )
        .await;
    }
    // Even the right password is refused now, and the answer says when to come back.
    let response = app.login("visura", &user.email, PASSWORD).await;
    let retry_after = retry_after(&response);
    assert!((800..=900).contains(&retry_after), "{retry_after}");
    let body = problem(response, 429).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
}

#[tokio::test]
async fn many_failures_from_one_address_throttle_that_address() {
    let app = spawn_app().await;
    let victim = app.customer("visura").await;
    for n in 0..ADDRESS_LIMIT {
        let email = format!("guess{n}@example.it");
        problem(app.login("visura", &email, "whatever it is").await, 401).await;
    }
    problem(app.login("visura", &victim.email, PASSWORD).await, 429).await;
    // Only that address: the owner signs in from another.
    let elsewhere = app
        .login_from("127.0.0.2", "visura", &victim.email, PASSWORD)
        .await;
    assert_eq!(elsewhere.status(), 200);
}

#[tokio::test]
async fn guesses_from_one_address_do_not_lock_the_owner_out_from_another() {
    let app = spawn_app().await;
    let owner = app.customer("visura").await;
    for _ in 0..PAIR_LIMIT {
        problem(
            app.login("visura", &owner.email, "wrong password!").await,
            401,
        )
        .await;
    }
    // The guesser's address is throttled for this account, even with the right password...
    problem(app.login("visura", &owner.email, PASSWORD).await, 429).await;
    // ...the owner, elsewhere, is not.
    let owner_elsewhere = app
        .login_from("127.0.0.2", "visura", &owner.email, PASSWORD)
        .await;
    assert_eq!(owner_elsewhere.status(), 200);
    // And the owner's success does not give the guesser a fresh allowance.
    problem(app.login("visura", &owner.email, PASSWORD).await, 429).await;
}

#[tokio::test]
async fn many_addresses_guessing_one_account_are_slowed() {
    let app = spawn_app().await;
    let owner = app.customer("visura").await;
    let addresses = ACCOUNT_LIMIT.div_ceil(PAIR_LIMIT);
    for a in 0..addresses {
        let ip = format!("127.0.1.{}", a + 1);
        for _ in 0..PAIR_LIMIT {
            let response = app
                .login_from(&ip, "visura", &owner.email, "wrong password!")
                .await;
            problem(response, 401).await;
        }
    }
    // The account's ceiling is reached: one more address, even the right password, waits.
    let response = app
        .login_from("127.0.2.1", "visura", &owner.email, PASSWORD)
        .await;
    assert!(response.headers().contains_key("retry-after"));
    let body = problem(response, 429).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
}

#[tokio::test]
async fn a_success_resets_the_account_count() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    for _ in 0..3 {
        problem(
            app.login("visura", &user.email, "wrong password!").await,
            401,
        )
        .await;
    }
    assert_eq!(
        app.login("visura", &user.email, PASSWORD).await.status(),
        200
    );
    // The address has 3 failures left in its window; the account none. Two more
    // failures (5 for the address) are still answered 401, not 429.
    for _ in 0..2 {
        problem(
            app.login("visura", &user.email, "wrong password!").await,
            401,
        )
        .await;
    }
}

#[tokio::test]
async fn profile_changes() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    let patch = |body: Value| {
        let app = &app;
        let token = user.token.clone();
        async move {
            app.client
                .patch(format!("{}/api/v1/me", app.address))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // The same address as now is no change, and needs no password.
    let response = patch(json!({ "name": "Studio Nuovo", "email": user.email,
                                 "codice_fiscale": "BNCLRA85T52F205E" }))
    .await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], user.email.as_str());
    assert_eq!(me["pending_email"], Value::Null);
    assert_eq!(me["codice_fiscale"], "BNCLRA85T52F205E");

    let cleared: Value = patch(json!({ "codice_fiscale": null }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["codice_fiscale"], Value::Null);
    assert_eq!(cleared["name"], "Studio Nuovo", "absent fields are kept");

    let body = problem(patch(json!({ "codice_fiscale": "XYZ" })).await, 400).await;
    assert_eq!(body["errors"][0]["field"], "codice_fiscale");

    // A new address needs the current password (see email_confirmation.rs for the rest).
    let body = problem(patch(json!({ "email": "nuovo@example.it" })).await, 400).await;
    assert_eq!(body["errors"][0]["field"], "current_password");
    let taken = app.customer("visura").await;
    let body = problem(
        patch(json!({ "email": taken.email, "current_password": PASSWORD })).await,
        409,
    )
    .await;
    assert_eq!(body["type"], "/problems/email-taken");

    let body = problem(
        patch(json!({ "new_password": "nuova password lunga", "current_password": "sbagliata" }))
            .await,
        400,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "current_password");
    let response =
        patch(json!({ "new_password": "nuova password lunga", "current_password": PASSWORD }))
            .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.login("visura", &user.email, "nuova password lunga")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_demo_needs_no_account_to_start() {
    // serve --demo + signup is enough to try the lookup: no hidden users needed.
    let app = spawn_demo_app().await;
    let user = app.customer("visura").await;
    assert_eq!(
        app.lookup(&user.token, "RSSMRA80A01H501U").await.status(),
        200
    );
}

#[tokio::test]
async fn two_service_processes_share_the_throttle_and_the_tokens() {
    let app = spawn_app().await;
    let (other, _) = app.another_process().await;
    let user = app.customer("visura").await;
    let login_at = |base: String, password: &'static str| {
        let client = app.client.clone();
        let email = user.email.clone();
        async move {
            client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({ "brand": "visura", "email": email, "password": password }))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        problem(login_at(app.address.clone(), "wrong password!").await, 401).await;
    }
    for _ in 0..2 {
        problem(login_at(other.clone(), "wrong password!").await, 401).await;
    }
    // Five failures across the two processes: both refuse now.
    problem(login_at(app.address.clone(), PASSWORD).await, 429).await;
    problem(login_at(other.clone(), PASSWORD).await, 429).await;
    // A token issued by one process is accepted by the other.
    let me = app
        .client
        .get(format!("{other}/api/v1/me"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

/// Signs `user` in once more, as from another device: its access and refresh token.
async fn another_device(app: &TestApp, user: &SignedIn) -> (String, String) {
    let response = app.login("visura", &user.email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
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

const NEW_PASSWORD: &str = "un altra password lunga";

#[tokio::test]
async fn a_password_change_ends_the_other_sessions() {
    let app = spawn_app().await;
    let here = app.customer("visura").await;
    let (there_access, there_refresh) = another_device(&app, &here).await;
    let (browser, _) = Browser::signed_in(&app, &here.email).await;
    assert_eq!(browser.get("/negozio/profilo").await.status, 200);

    let response = app
        .patch_me(
            &here.token,
            &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);

    // The other device: its access token, its refresh token and the browser all end.
    let body = problem(app.get_as(&there_access, "/api/v1/me").await, 401).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("session has ended"),
        "{body}"
    );
    assert_eq!(refresh_status(&app, &there_refresh).await, 401);
    let page = browser.get("/negozio/profilo").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/negozio/visura/accedi"));

    // The session that changed it goes on: its access token, then its refresh token.
    assert_eq!(app.get_as(&here.token, "/api/v1/me").await.status(), 200);
    assert_eq!(refresh_status(&app, &here.refresh_token).await, 200);
    // And the new password signs in.
    assert_eq!(
        app.login("visura", &here.email, NEW_PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_password_changed_on_the_profile_page_ends_the_other_sessions() {
    let app = spawn_app().await;
    let api = app.customer("visura").await;
    let (here, _) = Browser::signed_in(&app, &api.email).await;
    let (there, _) = Browser::signed_in(&app, &api.email).await;

    let page = here
        .post(
            "/negozio/profilo",
            &[
                ("name", "Studio Test"),
                ("email", &api.email),
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/negozio/profilo?salvato=1"));

    assert_eq!(here.get("/negozio/profilo").await.status, 200);
    assert_eq!(there.get("/negozio/profilo").await.status, 303);
    problem(app.get_as(&api.token, "/api/v1/me").await, 401).await;
    assert_eq!(refresh_status(&app, &api.refresh_token).await, 401);
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    let change = |current: &'static str| {
        let (app, token) = (&app, user.token.clone());
        async move {
            app.patch_me(
                &token,
                &json!({ "current_password": current, "new_password": NEW_PASSWORD }),
            )
            .await
        }
    };
    for guess in 0..12 {
        let response = change("not the password").await;
        if guess < PAIR_LIMIT {
            let body = problem(response, 400).await;
            assert_eq!(body["errors"][0]["field"], "current_password");
            assert_eq!(body["errors"][0]["rule"], "matches");
        } else {
            assert!(response.headers().contains_key("retry-after"));
            problem(response, 429).await;
        }
    }
    // The right one now waits too, like a sign-in from this address.
    let response = change(PASSWORD).await;
    let body = problem(response, 429).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
    problem(app.login("visura", &user.email, PASSWORD).await, 429).await;
    // The owner elsewhere still signs in, with the password that never changed.
    let elsewhere = app
        .login_from("127.0.0.2", "visura", &user.email, PASSWORD)
        .await;
    assert_eq!(elsewhere.status(), 200);
}

#[tokio::test]
async fn the_profile_page_throttles_the_current_password_too() {
    let app = spawn_app().await;
    let user = app.customer("visura").await;
    let (browser, _) = Browser::signed_in(&app, &user.email).await;
    let fields = |current: &'static str| {
        [
            ("name", "Studio Test"),
            ("email", user.email.as_str()),
            ("current_password", current),
            ("new_password", NEW_PASSWORD),
        ]
    };
    for _ in 0..PAIR_LIMIT {
        let page = browser
            .post("/negozio/profilo", &fields("not the password"))
            .await;
        assert_eq!(page.status, 422);
        assert!(page.body.contains("La password attuale non è corretta."));
    }
    let page = browser.post("/negozio/profilo", &fields(PASSWORD)).await;
    assert_eq!(page.status, 429);
    assert!(page.body.contains("Troppi tentativi"), "{}", page.body);
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session() {
    let app = spawn_app().await;
    let here = app.customer("visura").await;
    let (there_access, there_refresh) = another_device(&app, &here).await;
    let (browser, _) = Browser::signed_in(&app, &here.email).await;
    let other = app.customer("visura").await;

    let response = app
        .post_json_as(&here.token, "/api/v1/me/sessions/revoke", &json!({}))
        .await;
    assert_eq!(response.status(), 204);

    for access in [&here.token, &there_access] {
        problem(app.get_as(access, "/api/v1/me").await, 401).await;
    }
    for refresh in [&here.refresh_token, &there_refresh] {
        assert_eq!(refresh_status(&app, refresh).await, 401);
    }
    assert_eq!(browser.get("/negozio/profilo").await.status, 303);
    // Nobody else's sessions; and signing in again works.
    assert_eq!(app.get_as(&other.token, "/api/v1/me").await.status(), 200);
    assert_eq!(
        app.login("visura", &here.email, PASSWORD).await.status(),
        200
    );
    // Without a token there is nobody to sign out.
    let anonymous = app
        .post_json("/api/v1/me/sessions/revoke", &json!({}))
        .await;
    problem(anonymous, 401).await;
}

#[tokio::test]
async fn the_profile_page_signs_out_everywhere() {
    let app = spawn_app().await;
    let api = app.customer("visura").await;
    let (browser, _) = Browser::signed_in(&app, &api.email).await;
    let (other_browser, _) = Browser::signed_in(&app, &api.email).await;
    let profile = browser.get("/negozio/profilo").await;
    assert!(profile
        .body
        .contains("action=\"/negozio/profilo/esci-ovunque\""));

    // A form from elsewhere (no CSRF token) signs nobody out.
    let forged = browser.post_raw("/negozio/profilo/esci-ovunque", &[]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.get_as(&api.token, "/api/v1/me").await.status(), 200);

    let page = browser.post("/negozio/profilo/esci-ovunque", &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/negozio/visura/accedi"));
    assert_eq!(browser.get("/negozio/profilo").await.status, 303);
    assert_eq!(other_browser.get("/negozio/profilo").await.status, 303);
    problem(app.get_as(&api.token, "/api/v1/me").await, 401).await;
    assert_eq!(refresh_status(&app, &api.refresh_token).await, 401);
}
