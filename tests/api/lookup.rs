use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::helpers::{problem, retry_after, spawn_app, spawn_app_with, spawn_demo_app, TestApp};
use rinnovo::startup::StartOptions;

fn device<'a>(body: &'a Value, serial: &str) -> &'a Value {
    body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["serial_number"] == serial)
        .unwrap_or_else(|| panic!("device {serial} in {body}"))
}

fn certificate<'a>(device: &'a Value, kind: &str) -> &'a Value {
    device["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("{kind} certificate in {device}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn lookup_ok(app: &TestApp, token: &str, cf: &str) -> Value {
    let response = app.lookup(token, cf).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_demo_shows_every_renewal_status() {
    let app = spawn_demo_app().await;
    let visura = app.customer("visura").await.token;
    let lextel = app.customer("lextel").await.token;

    // Mario Rossi: one device renewable now (both together), one renewable later; one
    // device of each brand, and each shop sees its own only.
    let rossi = lookup_ok(&app, &visura, "RSSMRA80A01H501U").await;
    assert_eq!(rossi["given_name"], "Mario");
    assert_eq!(rossi["devices"].as_array().unwrap().len(), 1, "{rossi}");
    let now_device = device(&rossi, "1205100000");
    for kind in ["signature", "authentication"] {
        let renewal = &certificate(now_device, kind)["renewal"];
        assert_eq!(renewal["status"], "renewable", "{renewal}");
        assert_eq!(renewal["days_left"], 44, "{renewal}");
    }
    assert_eq!(
        now_device["renew_together"],
        serde_json::json!(["signature", "authentication"])
    );
    let rossi_lextel = lookup_ok(&app, &lextel, "RSSMRA80A01H501U").await;
    assert_eq!(rossi_lextel["devices"].as_array().unwrap().len(), 1);
    let later = device(&rossi_lextel, "1205100001");
    let signature = certificate(later, "signature");
    assert_eq!(signature["renewal"]["status"], "not_yet_renewable");
    let opens = time(&signature["renewal"]["window_opens_at"]);
    assert_eq!(opens, time(&signature["not_after"]) - Duration::days(90));
    assert_eq!(
        signature["renewal"]["window_opens_on"],
        opens.date_naive().to_string()
    );
    assert_eq!(later["renew_together"], serde_json::json!([]));

    // Laura Bianchi: one device, its two certificates in different states.
    let bianchi = lookup_ok(&app, &visura, "BNCLRA85T52F205E").await;
    let mixed = device(&bianchi, "1205100002");
    assert_eq!(
        certificate(mixed, "signature")["renewal"]["status"],
        "renewable"
    );
    assert_eq!(
        certificate(mixed, "authentication")["renewal"]["status"],
        "not_yet_renewable"
    );
    assert_eq!(mixed["renew_together"], serde_json::json!(["signature"]));

    // Giuseppe Verdi: an expired device, and a revoked certificate.
    let verdi = lookup_ok(&app, &lextel, "VRDGPP70M15L219P").await;
    let for_visura = problem(app.lookup(&visura, "VRDGPP70M15L219P").await, 404).await;
    assert_eq!(
        for_visura["type"], "/problems/unknown-holder",
        "Verdi's devices are all Lextel's: Visura does not learn his name"
    );
    let expired = certificate(device(&verdi, "1205100003"), "signature");
    assert_eq!(expired["renewal"]["status"], "expired");
    assert_eq!(expired["renewal"]["expired_at"], expired["not_after"]);
    let revoked_device = device(&verdi, "1205100004");
    let revoked = certificate(revoked_device, "signature");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["renewal"]["status"], "revoked");
    assert_eq!(
        revoked_device["renew_together"],
        serde_json::json!(["authentication"]),
        "a revoked certificate is never proposed, even inside its window"
    );

    // Anna Neri: registered, no devices: answered as an unknown codice fiscale.
    let neri = problem(app.lookup(&visura, "NRIANN90E45F839C").await, 404).await;
    assert_eq!(neri["type"], "/problems/unknown-holder");
}

#[tokio::test]
async fn loading_the_demo_twice_changes_nothing_but_the_dates() {
    let app = spawn_demo_app().await;
    let token = app.customer("visura").await.token;
    // Both loads at given instants: "now" read twice could straddle a second.
    let loaded_at = Utc::now();
    let mut conn = app.pool.get().unwrap();
    rinnovo::seed::load_demo(&mut conn, loaded_at).unwrap();
    let before = lookup_ok(&app, &token, "RSSMRA80A01H501U").await;
    let report = rinnovo::seed::load_demo(&mut conn, loaded_at + Duration::days(10)).unwrap();
    assert_eq!(report.holders_added, 0);
    assert_eq!(report.devices_added, 0);
    assert_eq!(report.certificates_added, 0);
    assert_eq!(report.certificates_refreshed, 10);
    let after = lookup_ok(&app, &token, "RSSMRA80A01H501U").await;
    let (b, a) = (device(&before, "1205100000"), device(&after, "1205100000"));
    assert_eq!(
        certificate(b, "signature")["id"],
        certificate(a, "signature")["id"]
    );
    assert_eq!(
        time(&certificate(a, "signature")["not_after"])
            - time(&certificate(b, "signature")["not_after"]),
        Duration::days(10)
    );
}

#[tokio::test]
async fn the_codice_fiscale_is_normalised() {
    let app = spawn_demo_app().await;
    let token = app.customer("visura").await.token;
    let body = lookup_ok(&app, &token, "rssmra%2080a01%20h501u").await;
    assert_eq!(body["codice_fiscale"], "RSSMRA80A01H501U");
}

#[tokio::test]
async fn an_invalid_codice_fiscale_names_the_rule() {
    let app = spawn_app().await;
    let token = app.customer("visura").await.token;
    // Each broken rule as a client reads it (field, rule, detail), pinned in one reviewed
    // snapshot: too short, wrong check character, month letter, day of birth, day of the
    // month, a letter expected, a digit expected.
    let cases = [
        "RSSMRA80A01H501",
        "RSSMRA80A01H501A",
        "RSSMRA80Z01H501U",
        "RSSMRA80A35H501U",
        "RSSMRA80B30H501U",
        "1SSMRA80A01H501U",
        "RSSMRAX0A01H501U",
    ];
    let mut refusals = Vec::new();
    for cf in cases {
        let body = problem(app.lookup(&token, cf).await, 400).await;
        refusals.push(json!({ "codice_fiscale": cf, "problem": body }));
    }
    insta::assert_json_snapshot!(refusals, { "[].problem.request_id" => "[request id]" });
}

#[tokio::test]
async fn an_unknown_holder_is_a_404_problem() {
    let app = spawn_demo_app().await;
    let token = app.customer("visura").await.token;
    // Valid codice fiscale, nobody registered with it.
    let body = problem(app.lookup(&token, "GLLSFN68H50D612O").await, 404).await;
    assert_eq!(body["type"], "/problems/unknown-holder");
}

#[tokio::test]
async fn statuses_around_the_window_boundaries() {
    let app = spawn_app().await;
    let token = app.customer("visura").await.token;
    let holder = app.add_holder("GLLSFN68H50D612O", "Stefania", "Galli");
    let now = Utc::now();
    let cases = [
        (
            "A1",
            now + Duration::days(90) + Duration::minutes(10),
            "not_yet_renewable",
        ),
        (
            "A2",
            now + Duration::days(90) - Duration::minutes(10),
            "renewable",
        ),
        ("A3", now + Duration::minutes(10), "renewable"),
        ("A4", now - Duration::minutes(10), "expired"),
    ];
    for (serial, not_after, _) in &cases {
        let device = app.add_device(&holder, serial);
        app.add_certificate(&device, "signature", *not_after, "active");
    }
    let body = lookup_ok(&app, &token, "GLLSFN68H50D612O").await;
    for (serial, _, expected) in &cases {
        let renewal = &certificate(device(&body, serial), "signature")["renewal"];
        assert_eq!(renewal["status"], *expected, "{serial}: {renewal}");
    }
    assert_eq!(
        certificate(device(&body, "A2"), "signature")["renewal"]["days_left"],
        89
    );
    assert_eq!(
        certificate(device(&body, "A3"), "signature")["renewal"]["days_left"],
        0
    );
}

#[tokio::test]
async fn superseded_certificates_and_other_holders_devices_are_not_shown() {
    let app = spawn_app().await;
    let token = app.customer("visura").await.token;
    let galli = app.add_holder("GLLSFN68H50D612O", "Stefania", "Galli");
    let ferrari = app.add_holder("FRRLCU75C22G273D", "Luca", "Ferrari");
    let device_id = app.add_device(&galli, "1205109999");
    let old = app.add_certificate(
        &device_id,
        "signature",
        Utc::now() - Duration::days(5),
        "superseded",
    );
    let current = app.add_certificate(
        &device_id,
        "signature",
        Utc::now() + Duration::days(1000),
        "active",
    );
    app.add_device(&ferrari, "1205108888");

    let body = lookup_ok(&app, &token, "GLLSFN68H50D612O").await;
    let devices = body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "only Galli's device: {body}");
    let certificates = devices[0]["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 1, "{body}");
    assert_eq!(certificates[0]["id"], current.as_str());
    assert_ne!(certificates[0]["id"], old.as_str());

    let ferrari_body = lookup_ok(&app, &token, "FRRLCU75C22G273D").await;
    assert_eq!(ferrari_body["devices"][0]["serial_number"], "1205108888");
    assert_eq!(
        ferrari_body["devices"][0]["certificates"],
        serde_json::json!([])
    );
}

/// A problem body without what differs per request (its id).
async fn refusal_shape(response: reqwest::Response, status: u16) -> Value {
    let mut body = problem(response, status).await;
    body.as_object_mut().unwrap().remove("request_id");
    body
}

#[tokio::test]
async fn a_holder_with_no_device_of_the_brand_is_answered_as_an_unknown_one() {
    let app = spawn_app().await;
    let lextel = app.customer("lextel").await.token;
    let visura = app.customer("visura").await.token;
    // Galli has a device of visura only; Ferrari is registered with no device at all.
    let galli = app.add_holder("GLLSFN68H50D612O", "Stefania", "Galli");
    app.add_device(&galli, "1205109999");
    app.add_holder("FRRLCU75C22G273D", "Luca", "Ferrari");

    let unknown = refusal_shape(app.lookup(&lextel, "RSSMRA80A01H501U").await, 404).await;
    let other_brand = refusal_shape(app.lookup(&lextel, "GLLSFN68H50D612O").await, 404).await;
    let no_device = refusal_shape(app.lookup(&visura, "FRRLCU75C22G273D").await, 404).await;
    assert_eq!(unknown["type"], "/problems/unknown-holder");
    assert_eq!(
        other_brand, unknown,
        "the other brand's holder tells nothing more"
    );
    assert_eq!(
        no_device, unknown,
        "a holder with no device tells nothing more"
    );
    for body in [&other_brand, &no_device] {
        let text = body.to_string();
        for name in ["Galli", "Stefania", "Ferrari", "Luca"] {
            assert!(!text.contains(name), "{name} in {text}");
        }
    }
    // The brand that has the device sees it, with the name.
    let found = lookup_ok(&app, &visura, "GLLSFN68H50D612O").await;
    assert_eq!(found["surname"], "Galli");
}

#[tokio::test]
async fn holder_lookups_are_limited_per_user_by_role_and_per_address() {
    let limits = [
        ("RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR", "3".to_owned()),
        ("RINNOVO_LOOKUPS_OFFICER_PER_HOUR", "5".to_owned()),
        ("RINNOVO_LOOKUPS_ADDRESS_PER_HOUR", "10".to_owned()),
    ];
    let app = spawn_app_with(StartOptions { demo: true }, &limits).await;
    let first = app.customer("visura").await.token;
    let second = app.customer("visura").await.token;
    let officer = app
        .user_with_role("visura", rinnovo::auth::Role::RegistrationOfficer)
        .await
        .token;

    // Found or not, every lookup counts; past the limit, a 429 with Retry-After.
    lookup_ok(&app, &first, "RSSMRA80A01H501U").await;
    problem(app.lookup(&first, "GLLSFN68H50D612O").await, 404).await;
    lookup_ok(&app, &first, "BNCLRA85T52F205E").await;
    let response = app.lookup(&first, "RSSMRA80A01H501U").await;
    let retry_after = retry_after(&response);
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let body = problem(response, 429).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
    assert!(body.get("given_name").is_none() && body.get("devices").is_none());
    // A malformed codice fiscale is still told apart: it reveals nothing and counts nothing.
    problem(app.lookup(&first, "RSSMRA80A01H501").await, 400).await;

    // Per user: another customer has their own allowance; an officer a larger one.
    for _ in 0..3 {
        lookup_ok(&app, &second, "RSSMRA80A01H501U").await;
    }
    problem(app.lookup(&second, "RSSMRA80A01H501U").await, 429).await;
    for _ in 0..4 {
        lookup_ok(&app, &officer, "RSSMRA80A01H501U").await;
    }
    // Per address: the three of them share one, and it is spent now (3 + 3 + 4).
    let body = problem(app.lookup(&officer, "RSSMRA80A01H501U").await, 429).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
}

#[tokio::test]
async fn a_quote_for_a_holders_device_counts_as_a_lookup() {
    let limits = [("RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR", "2".to_owned())];
    let app = spawn_app_with(StartOptions { demo: true }, &limits).await;
    let customer = app.customer("visura").await.token;
    let quote = |cf: &'static str| {
        let (app, token) = (&app, customer.clone());
        async move {
            app.post_json_as(
                &token,
                "/api/v1/quotes",
                &json!({ "codice_fiscale": cf, "device_serial": "1205100000" }),
            )
            .await
        }
    };
    assert_eq!(quote("RSSMRA80A01H501U").await.status(), 200);
    // Found or not, it counts: an unknown holder spends the allowance too.
    problem(quote("GLLSFN68H50D612O").await, 404).await;
    // Quotes are no way around the limit, nor lookups around the quotes'.
    let body = problem(quote("RSSMRA80A01H501U").await, 429).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
    problem(app.lookup(&customer, "RSSMRA80A01H501U").await, 429).await;
    // A quote of products by id looks nobody up and is not limited.
    let products = app.get_json(&customer, "/api/v1/products").await;
    let product = products["products"][0]["id"].as_str().unwrap().to_owned();
    let response = app
        .post_json_as(
            &customer,
            "/api/v1/quotes",
            &json!({ "lines": [{ "product": product, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn by_default_a_customer_cannot_read_the_registry_wholesale() {
    let app = spawn_demo_app().await;
    let token = app.customer("visura").await.token;
    let defaults = rinnovo::lookup::LookupLimits::default();
    for _ in 0..defaults.customer_per_hour {
        app.lookup(&token, "GLLSFN68H50D612O").await;
    }
    problem(app.lookup(&token, "RSSMRA80A01H501U").await, 429).await;
}

#[tokio::test]
async fn dates_are_utc_rfc3339() {
    let app = spawn_demo_app().await;
    let token = app.customer("visura").await.token;
    let body = lookup_ok(&app, &token, "BNCLRA85T52F205E").await;
    let c = certificate(device(&body, "1205100002"), "authentication");
    assert!(c["not_after"].as_str().unwrap().ends_with('Z'), "{c}");
    NaiveDate::parse_from_str(
        c["renewal"]["window_opens_on"].as_str().unwrap(),
        "%Y-%m-%d",
    )
    .unwrap();
}

#[tokio::test]
async fn the_lookup_needs_a_signed_in_user() {
    let app = spawn_demo_app().await;
    let body = problem(
        app.get("/api/v1/holders/RSSMRA80A01H501U/devices").await,
        401,
    )
    .await;
    assert_eq!(body["type"], "/problems/unauthorized");
}

/// Forty lookups at once by a customer allowed ten an hour: exactly ten are answered,
/// whatever the interleaving (the count and the hit of one request are never split by
/// another's).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lookups_at_once_never_get_past_the_limit() {
    let limits = [("RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR", "10".to_owned())];
    let app = spawn_app_with(StartOptions { demo: true }, &limits).await;
    let token = app.customer("visura").await.token;
    let lookups = (0..40).map(|_| app.lookup(&token, "RSSMRA80A01H501U"));
    let statuses: Vec<u16> = futures_util::future::join_all(lookups)
        .await
        .iter()
        .map(|response| response.status().as_u16())
        .collect();
    let answered = statuses.iter().filter(|&&s| s == 200).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((answered, refused), (10, 30), "{statuses:?}");
}
