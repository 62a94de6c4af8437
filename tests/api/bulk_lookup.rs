//! Many holders at once: `POST /api/v1/holders/bulk-lookup`, then one order for every
//! proposed coupon.

use std::time::Instant;

use chrono::{Duration, Utc};
use rinnovo::auth::Role;
use rinnovo::startup::StartOptions;
use serde_json::{json, Value};

use crate::helpers::{
    nth_codice_fiscale, problem, retry_after, spawn_app, spawn_app_with, TestApp, TestDevice,
    TestHolder,
};
use crate::web_client::{hidden, Browser};

const PATH: &str = "/api/v1/holders/bulk-lookup";

async fn bulk_lookup(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.post_json_as(token, PATH, body).await
}

/// A device of `brand` whose certificates expire in these many days.
fn device(brand: &'static str, serial: String, days: &[(&'static str, i64)]) -> TestDevice {
    TestDevice {
        brand,
        serial,
        certificates: days
            .iter()
            .map(|(kind, days)| (*kind, Utc::now() + Duration::days(*days)))
            .collect(),
    }
}

/// A thousand holders, by the last digit of their index: 0–6 a Visura device with both
/// certificates renewable (two coupons each), 7 only the signature renewable (one coupon),
/// 8 a Visura device not renewable yet and a Lextel device renewable, 9 only a Lextel
/// device (not a holder, for Visura).
fn thousand_holders() -> Vec<TestHolder> {
    (0..1000)
        .map(|i| {
            let serial = |brand: &str| format!("{brand}-{i:04}");
            let devices = match i % 10 {
                0..=6 => vec![device(
                    "visura",
                    serial("V"),
                    &[("signature", 30), ("authentication", 30)],
                )],
                7 => vec![device(
                    "visura",
                    serial("V"),
                    &[("signature", 30), ("authentication", 400)],
                )],
                8 => vec![
                    device(
                        "visura",
                        serial("V"),
                        &[("signature", 400), ("authentication", 400)],
                    ),
                    device(
                        "lextel",
                        serial("L"),
                        &[("signature", 30), ("authentication", 30)],
                    ),
                ],
                _ => vec![device(
                    "lextel",
                    serial("L"),
                    &[("signature", 30), ("authentication", 30)],
                )],
            };
            TestHolder {
                codice_fiscale: nth_codice_fiscale(i),
                devices,
            }
        })
        .collect()
}

#[tokio::test]
async fn an_officer_looks_up_a_thousand_holders_and_buys_for_the_renewable_ones_in_one_order() {
    let app = spawn_app().await;
    app.add_holders(&thousand_holders());
    let officer = app
        .user_with_role("visura", Role::RegistrationOfficer)
        .await;
    app.credit(&officer.user_id, "25000.00");
    let codici: Vec<String> = (0..1000).map(nth_codice_fiscale).collect();

    let started = Instant::now();
    let response = bulk_lookup(&app, &officer.token, &json!({ "codici_fiscali": codici })).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let looked_up = started.elapsed();
    eprintln!(
        "bulk lookup of 1,000 holders on {:?}: {} ms",
        app.database.backend,
        looked_up.as_millis()
    );

    assert_eq!(
        body["summary"],
        json!({ "holders": 1000, "found": 900, "devices": 900, "devices_to_renew": 800, "coupons": 1500 })
    );
    assert_eq!(
        body["order_lines"],
        json!([{ "product": "RIN-FIRMA", "quantity": 800 }, { "product": "RIN-CNS", "quantity": 700 }])
    );
    let holders = body["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1000);
    // In the list's order, each with its line.
    assert_eq!(holders[0]["line"], 1);
    assert_eq!(holders[0]["codice_fiscale"], codici[0]);
    assert_eq!(holders[999]["line"], 1000);
    // Another brand's devices are never shown, nor the name of its holders.
    let lextel_only = &holders[9];
    assert_eq!(lextel_only["found"], false, "{lextel_only}");
    assert!(lextel_only["given_name"].is_null() && lextel_only["devices"] == json!([]));
    for holder in holders {
        for device in holder["devices"].as_array().unwrap() {
            assert_eq!(device["brand"], "visura", "{device}");
        }
    }
    let both_brands = &holders[8]["devices"];
    assert_eq!(both_brands.as_array().unwrap().len(), 1, "{both_brands}");
    assert_eq!(both_brands[0]["proposed"], json!([]));
    assert_eq!(
        both_brands[0]["certificates"][0]["renewal"]["status"],
        "not_yet_renewable"
    );
    assert_eq!(
        holders[7]["devices"][0]["proposed"],
        json!([{ "product": "RIN-FIRMA", "quantity": 1 }])
    );

    // The proposals, bought in one order as the API orders anything.
    let started = Instant::now();
    let response = app.order(&officer.token, body["order_lines"].clone()).await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    eprintln!(
        "one order of the 1,500 proposed coupons on {:?}: {} ms",
        app.database.backend,
        started.elapsed().as_millis()
    );
    assert_eq!(order["status"], "fulfilled");
    assert_eq!(order["coupons"], 1500);
    // 1,500 × 11.00 = 16,500.00; IVA 3,630.00
    assert_eq!(order["gross_total"], "20130.00");
}

#[tokio::test]
async fn a_list_that_does_not_fit_the_limits_is_refused_whole() {
    let limits = [("RINNOVO_LOOKUPS_OFFICER_PER_HOUR", "5".to_owned())];
    let app = spawn_app_with(StartOptions::default(), &limits).await;
    let customer = app.customer("visura").await;
    let codici: Vec<String> = (0..1000).map(nth_codice_fiscale).collect();

    // A customer's allowance (100 a day) is no way to read a thousand holders: refused,
    // with the clear problem, and nothing counted.
    let response = bulk_lookup(&app, &customer.token, &json!({ "codici_fiscali": codici })).await;
    assert!(response.headers().contains_key("retry-after"));
    let body = problem(response, 429).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
    assert!(
        body["detail"].as_str().unwrap().contains("1000 holders"),
        "{body}"
    );
    let few = json!({ "codici_fiscali": codici[..30] });
    assert_eq!(bulk_lookup(&app, &customer.token, &few).await.status(), 200);
    // The 30 a hour are spent now.
    problem(bulk_lookup(&app, &customer.token, &few).await, 429).await;

    // A list larger than what is left of the hour waits for the whole of it, not half.
    let officer = app
        .user_with_role("visura", Role::RegistrationOfficer)
        .await;
    let three = json!({ "codici_fiscali": codici[..3] });
    assert_eq!(
        bulk_lookup(&app, &officer.token, &three).await.status(),
        200
    );
    let response = bulk_lookup(&app, &officer.token, &three).await;
    let retry_after = retry_after(&response);
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    problem(response, 429).await;
    let two = json!({ "codici_fiscali": codici[3..5] });
    assert_eq!(bulk_lookup(&app, &officer.token, &two).await.status(), 200);
}

#[tokio::test]
async fn every_invalid_line_is_named_and_nothing_is_looked_up() {
    let limits = [("RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR", "2".to_owned())];
    let app = spawn_app_with(StartOptions::default(), &limits).await;
    let customer = app.customer("visura").await;
    let list = format!(
        "codice_fiscale\n{}\nRSSMRA80A01H501\n\n{}\nRSSMRA80A01H501X\n",
        nth_codice_fiscale(1),
        nth_codice_fiscale(2)
    );
    for _ in 0..3 {
        let body = problem(
            bulk_lookup(&app, &customer.token, &json!({ "list": list })).await,
            400,
        )
        .await;
        assert_eq!(body["type"], "/problems/invalid-field");
        let named: Vec<(&str, &str)> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap(), e["rule"].as_str().unwrap()))
            .collect();
        assert_eq!(
            named,
            [
                ("codici_fiscali[2]", "length"),
                ("codici_fiscali[5]", "check_character")
            ]
        );
        assert!(body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("line 3: "));
    }
    // Refused three times, counted never: the two lookups an hour are still there.
    let valid = json!({ "codici_fiscali": [nth_codice_fiscale(1), nth_codice_fiscale(2)] });
    assert_eq!(
        bulk_lookup(&app, &customer.token, &valid).await.status(),
        200
    );

    let body = problem(
        bulk_lookup(&app, &customer.token, &json!({ "codici_fiscali": [] })).await,
        400,
    )
    .await;
    assert_eq!(body["errors"][0]["rule"], "required");
    let too_many: Vec<String> = (0..1001).map(nth_codice_fiscale).collect();
    let body = problem(
        bulk_lookup(
            &app,
            &customer.token,
            &json!({ "codici_fiscali": too_many }),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(body["errors"][0]["rule"], "max_items");
    let both = json!({ "codici_fiscali": [], "list": "" });
    let body = problem(bulk_lookup(&app, &customer.token, &both).await, 400).await;
    assert_eq!(body["type"], "/problems/malformed-request");
}

#[tokio::test]
async fn the_answer_as_csv_has_one_row_per_certificate() {
    let app = spawn_app().await;
    let renewable = TestHolder {
        codice_fiscale: nth_codice_fiscale(1),
        devices: vec![device(
            "visura",
            "V-1".into(),
            &[("signature", 30), ("authentication", 400)],
        )],
    };
    let other_brand = TestHolder {
        codice_fiscale: nth_codice_fiscale(2),
        devices: vec![device("lextel", "L-2".into(), &[("signature", 30)])],
    };
    app.add_holders(&[renewable, other_brand]);
    let customer = app.customer("visura").await;
    let list = format!("{}\n{}\n", nth_codice_fiscale(1), nth_codice_fiscale(2));
    let response = app
        .client
        .post(format!("{}{PATH}", app.address))
        .bearer_auth(&customer.token)
        .header("accept", "text/csv")
        .json(&json!({ "list": list }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows[0],
        "riga;codice_fiscale;titolare;dispositivo;tipo_dispositivo;certificato;scadenza;stato;motivo;coupon_proposto;prezzo_coupon"
    );
    assert_eq!(rows.len(), 4, "{text}");
    let cells: Vec<Vec<&str>> = rows[1..].iter().map(|r| r.split(';').collect()).collect();
    let signature = cells.iter().find(|c| c[5] == "signature").unwrap();
    assert_eq!(
        [signature[0], signature[1], signature[3], signature[7]],
        ["1", nth_codice_fiscale(1).as_str(), "V-1", "rinnovabile"]
    );
    assert_eq!([signature[9], signature[10]], ["RIN-FIRMA", "11,00"]);
    let authentication = cells.iter().find(|c| c[5] == "authentication").unwrap();
    assert_eq!(authentication[7], "non_ancora_rinnovabile");
    assert!(authentication[8].starts_with("rinnovabile dal "));
    assert_eq!(authentication[9], "");
    // The Lextel holder is, for Visura, nobody: no name, no device.
    assert_eq!(
        cells[2],
        [
            "2",
            nth_codice_fiscale(2).as_str(),
            "",
            "",
            "",
            "",
            "",
            "titolare_sconosciuto",
            "nessun dispositivo di questo negozio",
            "",
            ""
        ]
    );
}

#[tokio::test]
async fn the_shop_page_looks_up_a_pasted_or_uploaded_list_and_leads_to_one_order() {
    let app = spawn_app().await;
    app.add_holders(&[
        TestHolder {
            codice_fiscale: nth_codice_fiscale(1),
            devices: vec![device(
                "visura",
                "V-1".into(),
                &[("signature", 30), ("authentication", 30)],
            )],
        },
        TestHolder {
            codice_fiscale: nth_codice_fiscale(2),
            devices: vec![device("lextel", "L-2".into(), &[("signature", 30)])],
        },
    ]);
    let officer = app
        .user_with_role("visura", Role::RegistrationOfficer)
        .await;
    let (browser, _) = Browser::signed_in(&app, &officer.email).await;

    // The renewal guide and the holder step lead here.
    let guide = browser.get("/negozio/come-rinnovare").await;
    assert!(guide.body.contains("href=\"/negozio/acquista/titolari\""));
    let holder = browser
        .get("/negozio/acquista/titolare?metodo=prepaid")
        .await;
    assert!(holder
        .body
        .contains("href=\"/negozio/acquista/titolari?metodo=prepaid\""));
    let form = browser
        .get("/negozio/acquista/titolari?metodo=prepaid")
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    let form_of = |pasted: &str| {
        reqwest::multipart::Form::new()
            .text("csrf_token", browser.csrf.clone())
            .text("metodo", "prepaid")
            .text("codici_fiscali", pasted.to_owned())
    };

    // An invalid line is named with its number and rule, in Italian.
    let pasted = format!("{}\nRSSMRA80A01H501\n", nth_codice_fiscale(1));
    let refused = browser
        .post_multipart("/negozio/acquista/titolari", form_of(&pasted))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Riga 2: il codice fiscale ha 16 caratteri, questo ne ha 15"),
        "{}",
        refused.body
    );

    // A file chosen is the list.
    let file = format!(
        "codice_fiscale;nome\n{};Uno\n{};Due\n",
        nth_codice_fiscale(1),
        nth_codice_fiscale(2)
    );
    let upload = form_of("").part(
        "file",
        reqwest::multipart::Part::text(file)
            .file_name("clienti.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    let found = browser
        .post_multipart("/negozio/acquista/titolari", upload)
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(
        found.body.contains("Titolari trovati: 1 su 2"),
        "{}",
        found.body
    );
    assert!(found.body.contains("V-1"), "{}", found.body);
    assert!(
        !found.body.contains("L-2"),
        "another brand's device: {}",
        found.body
    );
    assert!(found
        .body
        .contains("id=\"scarica-csv\" href=\"data:text/csv;"));
    assert!(found.body.contains("Acquista i coupon proposti (2)"));
    assert_eq!(hidden(&found.body, "q_RIN-FIRMA"), "1");
    assert_eq!(hidden(&found.body, "q_RIN-CNS"), "1");

    // A customer's allowance does not stretch to a list: the form again, saying why.
    let customer = app.customer("visura").await;
    let (browser_of_customer, _) = Browser::signed_in(&app, &customer.email).await;
    let many: Vec<String> = (0..31).map(nth_codice_fiscale).collect();
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", browser_of_customer.csrf.clone())
        .text("metodo", "prepaid")
        .text("codici_fiscali", many.join("\n"));
    let refused = browser_of_customer
        .post_multipart("/negozio/acquista/titolari", form)
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("elenco ha 31 titolari, più delle 30 ricerche"),
        "{}",
        refused.body
    );

    // Into the usual summary.
    let summary = browser
        .get("/negozio/acquista/riepilogo?metodo=prepaid&q_RIN-FIRMA=1&q_RIN-CNS=1")
        .await;
    assert_eq!(summary.status, 200, "{}", summary.body);
    assert!(summary.body.contains("€ 26,84"), "{}", summary.body);
}
