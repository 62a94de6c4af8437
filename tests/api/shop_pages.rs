//! The shop's pages over plain HTTP: sessions, CSRF, who sees what, and that a purchase
//! confirmed twice is one purchase. (The whole path in a real browser is in
//! tests/browser/.)

use diesel::prelude::*;
use rinnovo::db::schema::orders;

use crate::helpers::{retry_after, spawn_app, spawn_app_with, PASSWORD};
use crate::web_client::{hidden, Browser};
use rinnovo::startup::StartOptions;

#[tokio::test]
async fn sessions_are_httponly_cookies_and_every_form_needs_its_csrf_token() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let anonymous = Browser::anonymous(&app, "visura").await;

    // Without the token, or with a wrong one, signing in is refused before anything.
    for token in ["", "0123456789abcdef0123456789abcdef0123456789abcdef"] {
        let page = anonymous
            .post_raw(
                "/negozio/visura/accedi",
                &[
                    ("csrf_token", token),
                    ("email", &customer.email),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "token {token:?}");
        assert!(page.body.contains("Operazione non consentita"));
    }

    let (browser, landing) = Browser::signed_in(&app, &customer.email).await;
    assert_eq!(landing, "/negozio/acquista");
    let session = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with("rinnovo_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "plain http in tests: {session}"
    );
    let csrf_cookie = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with("rinnovo_csrf="))
        .unwrap();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"));

    let page = browser.get("/negozio/acquista").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Preleva da Conto Prepagato"));
    // Pages carry a strict content security policy: checked on the raw response.
    let raw = reqwest::Client::new()
        .get(format!("{}/negozio/visura/accedi", app.address))
        .send()
        .await
        .unwrap();
    let csp = raw.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));

    // Signing out needs the token too; then the session is gone on the server.
    let stolen = browser.session.clone();
    let page = browser
        .post_raw("/negozio/esci", &[("csrf_token", "x")])
        .await;
    assert_eq!(page.status, 403);
    let page = browser.post("/negozio/esci", &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/negozio/visura/accedi"));
    let mut replay = Browser::anonymous(&app, "visura").await;
    replay.session = stolen;
    let page = replay.get("/negozio/acquista").await;
    assert_eq!(page.status, 303, "a signed-out session is dead");
    assert_eq!(page.location.as_deref(), Some("/negozio/visura/accedi"));
}

/// The attack on a double-submit token that is not bound to the session: a CSRF cookie
/// planted in the victim's browser (from a sibling subdomain, or over plain http) with the
/// matching token in a cross-site form posted in the victim's signed-in session.
#[tokio::test]
async fn a_planted_csrf_cookie_and_its_token_do_not_pass_in_a_signed_in_session() {
    let app = spawn_app().await;
    let victim = app.customer("visura").await;
    let (mut browser, _) = Browser::signed_in(&app, &victim.email).await;
    let planted = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeed";
    browser.csrf_cookie = planted.to_owned();
    let change = [
        ("csrf_token", planted),
        ("name", "Attaccante"),
        ("email", "attaccante@example.com"),
    ];

    let page = browser.post_raw("/negozio/profilo", &change).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("Operazione non consentita"));
    let page = browser.get("/negozio/profilo").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&victim.email), "the email is unchanged");
    assert!(!page.body.contains("attaccante@example.com"));
    assert_ne!(
        hidden(&page.body, "csrf_token"),
        planted,
        "the pages of the session do not take the planted token either"
    );

    // The anonymous token the victim's own sign-in page gave is no good in the session
    // either: only the session's own token is.
    browser.csrf_cookie = Browser::anonymous(&app, "visura").await.csrf;
    let anonymous_token = browser.csrf_cookie.clone();
    let page = browser
        .post_raw(
            "/negozio/profilo",
            &[
                ("csrf_token", anonymous_token.as_str()),
                ("name", "Attaccante"),
                ("email", "attaccante@example.com"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);

    // Another session's token does not pass in this one.
    let (other, _) = Browser::signed_in(&app, &victim.email).await;
    assert_ne!(other.csrf, browser.csrf);
    let page = browser
        .post_raw(
            "/negozio/profilo",
            &[
                ("csrf_token", other.csrf.as_str()),
                ("name", "Attaccante"),
                ("email", "attaccante@example.com"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);

    // The session's own token still works, whatever CSRF cookie is around.
    let page = browser
        .post(
            "/negozio/profilo",
            &[("name", "Studio Vittima"), ("email", &victim.email)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let me: serde_json::Value = app
        .get_as(&victim.token, "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], victim.email.as_str());
    assert_eq!(me["name"], "Studio Vittima");
}

#[tokio::test]
async fn behind_tls_the_cookies_are_secure() {
    let app = spawn_app_with(
        Default::default(),
        &[("RINNOVO_PUBLIC_URL", "https://rinnovi.example.it".into())],
    )
    .await;
    let customer = app.customer("visura").await;
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    assert!(
        browser
            .set_cookies
            .iter()
            .filter(|c| c.starts_with("rinnovo_session=") || c.starts_with("rinnovo_csrf="))
            .all(|c| c.contains("Secure")),
        "{:?}",
        browser.set_cookies
    );
}

#[tokio::test]
async fn a_summary_confirmed_twice_is_one_purchase_and_orders_are_private() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "50.00");
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;

    let summary = browser
        .get("/negozio/acquista/riepilogo?metodo=prepaid&q_RIN-FIRMA-CNS=1")
        .await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert!(summary.body.contains("€ 31,72"), "26.00 + 22% IVA");
    let fields = [
        ("chiave", hidden(&summary.body, "chiave")),
        ("metodo", "prepaid".to_owned()),
        ("q_RIN-FIRMA-CNS", "1".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = browser.post("/negozio/acquista/conferma", &fields).await;
    let second = browser.post("/negozio/acquista/conferma", &fields).await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(first.location, second.location, "the same order");
    let count: i64 = orders::table
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(count, 1);
    let order_path = first.location.unwrap();
    let page = browser.get(&order_path).await;
    assert!(page.body.contains("Operazione di acquisto coupon conclusa"));
    assert!(page.body.contains(&customer.email));
    let statement = browser.get("/negozio/prepagato").await;
    assert!(statement.body.contains("€ 18,28"), "50.00 - 31.72");
    let list = browser.get("/negozio/ordini").await;
    assert!(list
        .body
        .contains(&order_path[order_path.rfind('/').unwrap() + 1..]));

    // Another customer: not found; an operator: not the shop.
    let other = app.customer("visura").await;
    let (stranger, _) = Browser::signed_in(&app, &other.email).await;
    assert_eq!(stranger.get(&order_path).await.status, 404);
    let operator = app.back_office("visura").await;
    let (office, landing) = Browser::signed_in(&app, &operator.email).await;
    assert_eq!(landing, "/backoffice");
    assert_eq!(office.get(&order_path).await.status, 403);

    // Not enough credit: a clear page, nothing bought.
    let summary = browser
        .get("/negozio/acquista/riepilogo?metodo=prepaid&q_RIN-FIRMA-CNS=1")
        .await;
    let fields = [
        ("chiave", hidden(&summary.body, "chiave")),
        ("metodo", "prepaid".to_owned()),
        ("q_RIN-FIRMA-CNS", "1".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = browser.post("/negozio/acquista/conferma", &fields).await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("non basta"), "{}", page.body);
}

#[tokio::test]
async fn wrong_input_is_explained_next_to_the_field() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    // Sign-up: each broken rule next to its field, in Italian.
    let anonymous = Browser::anonymous(&app, "visura").await;
    let page = anonymous
        .post(
            "/negozio/visura/iscriviti",
            &[
                ("name", ""),
                ("email", "non-una-email"),
                ("password", "corta"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    for id in ["name-error", "email-error", "password-error"] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(page.body.contains("almeno 10 caratteri"));

    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    let page = browser
        .get("/negozio/acquista/dispositivi?metodo=prepaid&codice_fiscale=RSSMRA80A01H501A")
        .await;
    assert_eq!(page.status, 422);
    assert!(page
        .body
        .contains("aria-describedby=\"codice_fiscale-error\""));
    assert!(page.body.contains("carattere di controllo"));
    let page = browser
        .get("/negozio/acquista/riepilogo?metodo=prepaid&q_RIN-FIRMA=0")
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Scegli almeno un coupon"));
    let page = browser
        .get("/negozio/acquista/riepilogo?metodo=prepaid&q_RIN-FIRMA=21")
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("al massimo 20 coupon"), "{}", page.body);
    let page = browser
        .get("/negozio/verifica-coupon?codice=ABCD-1234")
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("codice-error"));
    // A well-formed code that no coupon has: told as the API tells it (404).
    let unknown = rinnovo::coupons::CouponCode::generate().formatted();
    let page = browser
        .get(&format!("/negozio/verifica-coupon?codice={unknown}"))
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("Nessun coupon ha questo codice."));
}

#[tokio::test]
async fn the_devices_page_explains_a_lookup_that_proposes_nothing_as_the_api_does() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let holder = app.add_holder("RSSMRA80A41H501Y", "Maria", "Rossi");
    let device = app.add_device(&holder, "1205100099");
    let soon = chrono::Utc::now() + chrono::Duration::days(30);
    app.add_certificate(&device, "signature", soon, "active");
    // The brand sells nothing any more: no coupon fits the renewable certificate.
    let office = app.back_office("visura").await;
    let products: serde_json::Value = app.get_json(&office.token, "/api/v1/products").await;
    for product in products["products"].as_array().unwrap() {
        let url = format!(
            "{}/api/v1/backoffice/products/{}",
            app.address,
            product["id"].as_str().unwrap()
        );
        let response = app
            .client
            .patch(url)
            .bearer_auth(&office.token)
            .json(&serde_json::json!({ "active": false }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let api = app
        .post_json_as(
            &customer.token,
            "/api/v1/quotes",
            &serde_json::json!({ "codice_fiscale": "RSSMRA80A41H501Y", "device_serial": "1205100099" }),
        )
        .await;
    let status = api.status();
    assert_eq!(
        status,
        422,
        "the API: nothing to renew: {}",
        api.text().await.unwrap()
    );

    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    let page = browser
        .get("/negozio/acquista/dispositivi?metodo=prepaid&codice_fiscale=RSSMRA80A41H501Y")
        .await;
    assert_eq!(page.status, 422, "not a storage error page: {}", page.body);
    assert!(
        page.body.contains("non vende un coupon adatto"),
        "{}",
        page.body
    );
    assert!(page.body.contains("codice_fiscale-error"), "{}", page.body);
}

#[tokio::test]
async fn the_devices_page_shows_no_name_for_a_holder_with_no_device_of_the_brand() {
    let app = spawn_app().await;
    let customer = app.customer("lextel").await;
    let galli = app.add_holder("GLLSFN68H50D612O", "Stefania", "Galli");
    app.add_device(&galli, "1205109999");
    let (browser, _) = Browser::signed_in_to(&app, "lextel", &customer.email).await;

    let unknown = browser
        .get("/negozio/acquista/dispositivi?metodo=prepaid&codice_fiscale=RSSMRA80A01H501U")
        .await;
    let other_brand = browser
        .get("/negozio/acquista/dispositivi?metodo=prepaid&codice_fiscale=GLLSFN68H50D612O")
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(other_brand.status, unknown.status);
    let message = |body: &str| crate::web_client::text_of(body, "codice_fiscale-error");
    assert_eq!(message(&other_brand.body), message(&unknown.body));
    assert!(!other_brand.body.contains("Galli") && !other_brand.body.contains("Stefania"));
}

#[tokio::test]
async fn the_devices_page_is_limited_like_the_api() {
    let limits = [("RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR", "2".to_owned())];
    let app = spawn_app_with(StartOptions { demo: true }, &limits).await;
    let customer = app.customer("visura").await;
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    let path = "/negozio/acquista/dispositivi?metodo=prepaid&codice_fiscale=RSSMRA80A01H501U";

    // The API and the pages share the allowance.
    assert_eq!(
        app.lookup(&customer.token, "RSSMRA80A01H501U")
            .await
            .status(),
        200
    );
    assert_eq!(browser.get(path).await.status, 200);
    let response = reqwest::Client::new()
        .get(format!("{}{path}", app.address))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after = retry_after(&response);
    assert!(retry_after >= 1);
    let body = response.text().await.unwrap();
    assert!(body.contains("Troppe ricerche di titolari"), "{body}");
    assert!(!body.contains("Mario"), "no holder shown: {body}");
}

/// Every refusal on a page is in Italian and says what to do; the numbers the pages state
/// are the rules' and the choices', not copies that drift.
#[tokio::test]
async fn page_messages_are_italian_and_say_what_to_do() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    app.give_billing_data(&customer).await;
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;

    let page = browser
        .get("/negozio/acquista/riepilogo?metodo=prepaid&q_RIN-FIRMA=-1")
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("non può essere negativa") && page.body.contains("0 per non"),
        "{}",
        page.body
    );
    let page = browser
        .get("/negozio/acquista/riepilogo?metodo=prepaid&q_NOPE=1")
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("scegli i coupon dall"), "{}", page.body);
    assert!(!page.body.contains("no product"));

    // The payment page counts the choices it shows (no card provider in this test).
    let page = browser.get("/negozio/acquista").await;
    assert_eq!(page.status, 200);
    let choices = page.body.matches("type=\"radio\"").count();
    assert_eq!(choices, 4);
    assert!(
        page.body.contains(&format!("fra {choices} modalità")),
        "{}",
        page.body
    );

    // The password length the pages state is the rule's.
    let min = rinnovo::auth::password::MIN_LENGTH;
    let page = browser.get("/negozio/profilo").await;
    assert!(page.body.contains(&format!("Almeno {min} caratteri")));
    let anonymous = Browser::anonymous(&app, "visura").await;
    let page = anonymous.get("/negozio/visura/iscriviti").await;
    assert!(page.body.contains(&format!("Almeno {min} caratteri")));
    // A blank name asks for the name; the length limit is not the point.
    let page = anonymous
        .post(
            "/negozio/visura/iscriviti",
            &[
                ("name", "  "),
                ("email", "nuovo@example.com"),
                ("password", "corta"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.body
            .contains("Indica il nome o la ragione sociale.</p>"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("almeno {min} caratteri.")));
    assert!(!page.body.contains("characters"));
}

#[tokio::test]
async fn a_device_past_its_life_is_shown_with_why_and_nothing_is_proposed_for_it() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let holder = app.add_holder("RSSMRA80A41H501Y", "Maria", "Rossi");
    let device = app.add_device(&holder, "1205100099");
    let soon = chrono::Utc::now() + chrono::Duration::days(30);
    app.add_certificate(&device, "signature", soon, "active");
    app.add_certificate(&device, "authentication", soon, "active");
    // First activated seven years ago: past the six years a device lives.
    let seven_years_ago = chrono::Utc::now() - chrono::Duration::days(7 * 365);
    diesel::update(
        rinnovo::db::schema::devices::table.filter(rinnovo::db::schema::devices::id.eq(&device)),
    )
    .set(rinnovo::db::schema::devices::activated_at.eq(seven_years_ago.naive_utc()))
    .execute(&mut app.pool.get().unwrap())
    .unwrap();

    // The API's lookup: a reason code, nothing to renew together, no quote.
    let found: serde_json::Value = app
        .lookup(&customer.token, "RSSMRA80A41H501Y")
        .await
        .json()
        .await
        .unwrap();
    let seen = &found["devices"][0];
    for certificate in seen["certificates"].as_array().unwrap() {
        assert_eq!(certificate["renewal"]["status"], "not_renewable", "{seen}");
        assert_eq!(
            certificate["renewal"]["reason"], "device_end_of_life",
            "{seen}"
        );
    }
    assert_eq!(seen["renew_together"], serde_json::json!([]), "{seen}");
    let quote = app
        .post_json_as(
            &customer.token,
            "/api/v1/quotes",
            &serde_json::json!({ "codice_fiscale": "RSSMRA80A41H501Y", "device_serial": "1205100099" }),
        )
        .await;
    assert_eq!(quote.status(), 422, "{}", quote.text().await.unwrap());

    // The shop's page: the sentence why, and no coupon to buy for it.
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    let page = browser
        .get("/negozio/acquista/dispositivi?metodo=prepaid&codice_fiscale=RSSMRA80A41H501Y")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("non rinnovabile: il dispositivo è a fine vita dal"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Coupon proposti"), "{}", page.body);
    assert!(!page.body.contains("name=\"q_"), "{}", page.body);
}

#[tokio::test]
async fn the_shop_takes_a_cheque_like_a_postal_slip() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;

    let methods = browser.get("/negozio/acquista").await;
    assert_eq!(methods.status, 200, "{}", methods.body);
    assert!(
        methods.body.contains("value=\"cheque\""),
        "the method step offers the cheque: {}",
        methods.body
    );
    let holder = browser
        .get("/negozio/acquista/titolare?metodo=cheque")
        .await;
    assert_eq!(holder.status, 200, "{}", holder.body);
    let summary = browser
        .get("/negozio/acquista/riepilogo?metodo=cheque&q_RIN-FIRMA-CNS=1")
        .await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert!(summary.body.contains("Assegno"), "{}", summary.body);
    let fields = [
        ("chiave", hidden(&summary.body, "chiave")),
        ("metodo", "cheque".to_owned()),
        ("q_RIN-FIRMA-CNS", "1".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let placed = browser.post("/negozio/acquista/conferma", &fields).await;
    assert_eq!(placed.status, 303, "{}", placed.body);
    let method: String = orders::table
        .select(orders::payment_method)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(method, "cheque");
    let page = browser.get(&placed.location.unwrap()).await;
    assert!(
        page.body.contains("in attesa del versamento"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"rf-code\""), "{}", page.body);
}

#[tokio::test]
async fn the_holders_summary_names_the_holder_and_a_transfer_too_slow_for_an_expiry_is_warned_of() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let holder = app.add_holder("RSSMRA80A41H501Y", "Maria", "Rossi");
    let device = app.add_device(&holder, "1205100099");
    // Sooner than the 10 days' reservation and the 2 working days a transfer takes.
    let soon = chrono::Utc::now() + chrono::Duration::days(5);
    app.add_certificate(&device, "signature", soon, "active");
    let later = app.add_holder("GLLSFN68H50D612O", "Stefania", "Galli");
    let later_device = app.add_device(&later, "1205100098");
    let in_time = chrono::Utc::now() + chrono::Duration::days(60);
    app.add_certificate(&later_device, "signature", in_time, "active");
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;

    for method in ["bank_transfer", "postal_slip", "cheque", "prepaid"] {
        let devices = browser
            .get(&format!(
                "/negozio/acquista/dispositivi?metodo={method}&codice_fiscale=RSSMRA80A41H501Y"
            ))
            .await;
        assert_eq!(devices.status, 200, "{}", devices.body);
        let cf = hidden(&devices.body, "codice_fiscale");
        assert_eq!(cf, "RSSMRA80A41H501Y", "the holder goes on to the summary");
        let summary = browser
            .get(&format!(
                "/negozio/acquista/riepilogo?metodo={method}&codice_fiscale={cf}&q_RIN-FIRMA=1"
            ))
            .await;
        assert_eq!(summary.status, 200, "{}", summary.body);
        assert!(
            summary
                .body
                .contains("<dd id=\"titolare\">Maria Rossi</dd>"),
            "{}",
            summary.body
        );
        assert!(
            summary
                .body
                .contains("<dd id=\"titolare-codice-fiscale\">RSSMRA80A41H501Y</dd>"),
            "{}",
            summary.body
        );
        let warned = method != "prepaid";
        for page in [&devices, &summary] {
            assert_eq!(
                page.body.contains("id=\"scadenza-ravvicinata\""),
                warned,
                "{method}: {}",
                page.body
            );
        }
        if warned {
            assert!(
                summary
                    .body
                    .contains("ti consigliamo di pagare con il Conto Prepagato"),
                "{}",
                summary.body
            );
            assert!(
                summary.body.contains(&soon.format("%d/%m/%Y").to_string()),
                "{}",
                summary.body
            );
        }
    }
    // A certificate that expires after any transfer would be in: no warning.
    let devices = browser
        .get("/negozio/acquista/dispositivi?metodo=bank_transfer&codice_fiscale=GLLSFN68H50D612O")
        .await;
    assert_eq!(devices.status, 200, "{}", devices.body);
    assert!(
        !devices.body.contains("id=\"scadenza-ravvicinata\""),
        "{}",
        devices.body
    );
    // The manual list names no holder.
    let manual = browser
        .get("/negozio/acquista/riepilogo?metodo=bank_transfer&q_RIN-FIRMA=1")
        .await;
    assert_eq!(manual.status, 200, "{}", manual.body);
    assert!(!manual.body.contains("id=\"titolare\""), "{}", manual.body);
}
