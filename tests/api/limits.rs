//! Limits that must hold whatever the number of service processes: the rate limits live
//! in the database, so a client spreading its guesses over two processes (two machines
//! behind a load balancer) gets no more than from one. And bodies over the limit are
//! refused with problem JSON before they are read whole.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, PASSWORD};

/// `count` requests, alternating between the app and its second process; the statuses.
async fn alternate(
    app: &TestApp,
    other: &str,
    count: usize,
    request: impl Fn(&str) -> reqwest::RequestBuilder,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for n in 0..count {
        let base = if n % 2 == 0 {
            app.address.as_str()
        } else {
            other
        };
        statuses.push(request(base).send().await.unwrap().status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn the_coupon_check_limit_holds_across_processes() {
    let app = spawn_app().await;
    let (other, _) = app.another_process().await;
    let client = reqwest::Client::new();
    // 30 checks per address per 10 minutes (coupons::STATUS_CHECKS), spread over both.
    let statuses = alternate(&app, &other, 31, |base| {
        let code = rinnovo::coupons::CouponCode::generate().formatted();
        client.get(format!("{base}/api/v1/coupons/{code}/status"))
    })
    .await;
    assert!(statuses[..30].iter().all(|s| *s == 404), "{statuses:?}");
    assert_eq!(statuses[30], 429, "the 31st, whichever process gets it");
    let response = client
        .get(format!(
            "{other}/api/v1/coupons/{}/status",
            rinnovo::coupons::CouponCode::generate().formatted()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/too-many-requests");

    // The shop's check page counts against the same limit, and says so on the form.
    let page = client
        .get(format!(
            "{other}/negozio/verifica-coupon?codice={}",
            rinnovo::coupons::CouponCode::generate().formatted()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    assert!(page.headers().contains_key("retry-after"));
    let body = page.text().await.unwrap();
    assert!(body.contains("Troppe verifiche: riprova tra"), "{body}");
    assert!(body.contains("name=\"codice\""), "the form stays: {body}");
}

#[tokio::test]
async fn the_agent_challenge_limit_holds_across_processes() {
    let app = spawn_app().await;
    let (other, _) = app.another_process().await;
    let client = reqwest::Client::new();
    let statuses = alternate(&app, &other, 61, |base| {
        client
            .post(format!("{base}/api/v1/agent/challenges"))
            .json(&json!({}))
    })
    .await;
    assert!(statuses[..60].iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(statuses[60], 429);
}

#[tokio::test]
async fn the_login_throttle_holds_across_processes() {
    let app = spawn_app().await;
    let (other, _) = app.another_process().await;
    let customer = app.customer("visura").await;
    let client = reqwest::Client::new();
    let login = |base: &str, password: &str| {
        client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "brand": "visura", "email": customer.email, "password": password }))
    };
    // Five wrong passwords from one address, alternating processes, throttle the account
    // from that address on every process...
    let statuses = alternate(&app, &other, 5, |base| login(base, "not the password")).await;
    assert_eq!(statuses, [401; 5]);
    // ...even for the right password, on either process.
    for base in [app.address.as_str(), other.as_str()] {
        let response = login(base, PASSWORD).send().await.unwrap();
        assert_eq!(response.status(), 429, "{base}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_problem_json() {
    let app = spawn_app().await;
    let huge = "x".repeat(300 * 1024);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/signup", app.address))
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/payload-too-large");
    // A form of the shop too (actix's form limit).
    let response = reqwest::Client::new()
        .post(format!("{}/negozio/visura/accedi", app.address))
        .form(&[
            ("csrf_token", "x"),
            ("email", huge.as_str()),
            ("password", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        response.status() == 413 || response.status() == 400,
        "{}",
        response.status()
    );
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_request_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Half a request head, then nothing (a slow-loris client).
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: rinnovo\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    let waited = started.elapsed().as_secs();
    assert!((8..=20).contains(&waited), "cut off after {waited} s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}
