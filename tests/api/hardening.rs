//! Hostile input that must be refused with a clear answer or kept harmless: forged log
//! lines, ambiguous headers and bodies, control characters, odd methods and sizes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::rinnovo;
use uuid::Uuid;

use crate::helpers::{spawn_app, TestDatabase, PASSWORD};
use crate::statements::{camt053, Line};
use crate::web_client::Browser;

/// What a client would like the log to show as an entry of its own.
const FORGED: &str = "2026-12-01T00:00:00.000000Z  INFO rinnovo: forged entry";

#[tokio::test]
async fn user_text_cannot_forge_a_log_line_nor_write_control_characters() {
    let database = TestDatabase::create();
    let mut child = rinnovo(&database)
        .env("RINNOVO_BIND", "127.0.0.1:0")
        .args(["serve"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port: u16 = loop {
        let line = without_colours(&lines.next().expect("serve logs its port").unwrap());
        if let Some((_, rest)) = line.split_once("rinnovo is listening port=") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let hostile = format!("RIN-FIRMA\n{FORGED}\0");

    let email = "log@example.it";
    let signup = client
        .post(format!("{address}/api/v1/auth/signup"))
        .json(&json!({ "brand": "visura", "name": "Studio Log", "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let login: serde_json::Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({ "brand": "visura", "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    // A product id with a newline and a NUL: the refusal quotes it.
    let quote = client
        .post(format!("{address}/api/v1/quotes"))
        .bearer_auth(token)
        .json(&json!({ "lines": [{ "product": hostile, "quantity": 1 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(quote.status(), 400);
    // The same text as a JSON key and in a path (%0A, %00).
    let key = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({ hostile.clone(): 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 400);
    client
        .get(format!(
            "{address}/api/v1/orders/x%0A{}%00",
            FORGED.replace(' ', "%20")
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();

    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("serve did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log: Vec<String> = lines.map_while(Result::ok).collect();
    let text = log.join("\n");
    let quoting: Vec<&String> = log.iter().filter(|l| l.contains("forged entry")).collect();
    assert!(!quoting.is_empty(), "the refusals are logged: {text}");
    for line in quoting {
        assert!(
            !line.starts_with(FORGED),
            "a forged line of its own: {text}"
        );
        assert!(
            line.contains(&format!("\\n{FORGED}")),
            "the newline is not shown as \\n: {line}"
        );
    }
    assert!(!text.contains('\0'), "a NUL byte in the log: {text}");
}

/// `line` without the terminal colour sequences (ESC [ ... m) of the text log format.
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn a_json_key_given_twice_is_refused_naming_the_key() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("Content-Type", "application/json")
        .body(r#"{"brand": "visura", "email": "a@example.it", "email": "b@example.it", "password": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/malformed-request", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("`email`"),
        "{problem}"
    );
}

#[tokio::test]
async fn two_idempotency_keys_are_refused_naming_the_header() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let response = app
        .client
        .post(format!("{}/api/v1/prepaid/topups", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({ "amount": "100.00", "payment_method": "bank_transfer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/invalid-field", "{problem}");
    assert_eq!(
        problem["errors"][0]["field"], "Idempotency-Key",
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["rule"], "single_header", "{problem}");
}

#[tokio::test]
async fn the_authorization_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = app
            .client
            .get(format!("{}/api/v1/me", app.address))
            .header("Authorization", format!("{scheme} {}", customer.token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    let response = app
        .client
        .get(format!("{}/api/v1/me", app.address))
        .header("Authorization", format!("Basic {}", customer.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_shop_summary_refuses_an_unknown_payment_method() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let (browser, _) = Browser::signed_in(&app, &customer.email).await;
    let page = browser
        .get("/negozio/acquista/riepilogo?metodo=gratis&q_RIN-FIRMA-CNS=1")
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("Metodo di pagamento sconosciuto"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Conto Prepagato"), "{}", page.body);
    let page = browser
        .get("/negozio/acquista/riepilogo?metodo=bank_transfer&q_RIN-FIRMA-CNS=1")
        .await;
    assert_eq!(page.status, 200);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    for (path, token) in [
        ("/health/live", None),
        ("/negozio/stile.css", None),
        ("/negozio", None),
        ("/api/v1/me", Some(&customer.token)),
        ("/api/v1/products", Some(&customer.token)),
    ] {
        let send = |method: reqwest::Method| {
            let mut request = app.client.request(method, format!("{}{path}", app.address));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let get = send(reqwest::Method::GET).await.unwrap();
        let head = send(reqwest::Method::HEAD).await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert!(
            get.status().is_success() || get.status().is_redirection(),
            "{path}"
        );
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    let unknown = app
        .client
        .head(format!("{}/no/such/page", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// A URL longer than any of ours gets a 414 problem naming `url`, for the API and the pages
/// alike; a URL too long even for the HTTP layer is refused without harm, and the server
/// goes on serving.
#[tokio::test]
async fn an_overlong_url_gets_a_problem_and_the_server_goes_on() {
    let app = spawn_app().await;
    for path in ["/api/v1/products", "/negozio", "/no/such/page"] {
        let url = format!("{}{path}?q={}", app.address, "a".repeat(20 * 1024));
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 414, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
        assert_eq!(problem["errors"][0]["rule"], "max_length", "{problem}");
        assert!(problem["request_id"].is_string(), "{problem}");
    }
    // Just under the limit is served as usual.
    let fits = format!(
        "{}/health/live?q={}",
        app.address,
        "a".repeat(8 * 1024 - "/health/live?q=".len())
    );
    assert_eq!(app.client.get(fits).send().await.unwrap().status(), 200);

    // 100 kB: refused by the HTTP layer before the application sees it (sent by hand:
    // the HTTP client refuses to build such a URL).
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "GET /api/v1/products?q={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The server may close before reading it all; what it answered is what matters.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        status_line.starts_with("HTTP/1.1 4"),
        "a client error, not {status_line:?}"
    );
    let live = app
        .client
        .get(format!("{}/health/live", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
}

#[tokio::test]
async fn names_with_control_or_direction_override_characters_are_refused() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    for (name, rule) in [
        ("Mario\u{202E}issoR", "no_direction_override"),
        ("Studio\u{2066}Test", "no_direction_override"),
        ("Mario\u{7}Rossi", "printable"),
    ] {
        let signup = app
            .post_json(
                "/api/v1/auth/signup",
                &json!({ "brand": "visura", "name": name, "email": format!("n{}@example.it", Uuid::new_v4().simple()), "password": PASSWORD }),
            )
            .await;
        assert_eq!(signup.status(), 400, "{name:?}");
        let problem: serde_json::Value = signup.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/invalid-field", "{problem}");
        assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
        assert_eq!(problem["errors"][0]["rule"], rule, "{problem}");

        let profile = app
            .patch_me(&customer.token, &json!({ "name": name }))
            .await;
        assert_eq!(profile.status(), 400, "{name:?}");
        let problem: serde_json::Value = profile.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
        assert_eq!(problem["errors"][0]["rule"], rule, "{problem}");
    }
    let me = app.get_json(&customer.token, "/api/v1/me").await;
    assert_eq!(me["name"], "Studio Test", "{me}");

    let anonymous = Browser::anonymous(&app, "visura").await;
    let page = anonymous
        .post(
            "/negozio/visura/iscriviti",
            &[
                ("name", "Mario\u{202E}issoR"),
                ("email", "bidi@example.it"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("invertono la direzione"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_statement_reason_with_odd_characters_still_pays_and_is_stored_readable() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let operator = app.back_office("visura").await;
    let placed = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({ "lines": [{ "product": "RIN-FIRMA-CNS", "quantity": 1 }], "payment_method": "bank_transfer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let placed: serde_json::Value = placed.json().await.unwrap();
    let reference = placed["transfer"]["reference"].as_str().unwrap();
    let file = camt053(
        8,
        &[Line::credit(
            "31.72",
            &format!("RINNOVO\u{202E}\t{reference}"),
            &format!("BR{}", Uuid::new_v4().simple()),
        )],
    );
    let response = app
        .client
        .post(format!("{}/api/v1/backoffice/statements", app.address))
        .bearer_auth(&operator.token)
        .header("content-type", "application/xml")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let order = app
        .get_json(
            &customer.token,
            &format!("/api/v1/orders/{}", placed["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(order["status"], "fulfilled", "{order}");
    let listed = app
        .get_json(&operator.token, "/api/v1/backoffice/payments")
        .await;
    let remittance = listed["payments"][0]["remittance"].as_str().unwrap();
    assert_eq!(remittance, format!("RINNOVO {reference}"), "{listed}");
}
