//! `GET /metrics` (Prometheus text format) and the request id in problem bodies.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use rinnovo::db::schema::{emails, renewals};
use rinnovo::startup::StartOptions;
use serde_json::json;

use crate::helpers::{problem, spawn_app, spawn_app_with, TestApp};

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef0123456789";

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    response.text().await.unwrap()
}

/// The value of one series (`name{labels}` exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern_never_by_path() {
    let app = spawn_app().await;
    let token = app.customer("visura").await.token;
    let found = app.lookup(&token, "RSSMRA80A01H501U").await.status();
    let invalid = app.lookup(&token, "RSSMRA80A01H501A").await.status();
    assert_eq!(invalid, 400);
    assert_eq!(
        app.get("/no/such/page/RSSMRA80A01H501U").await.status(),
        404
    );

    let text = scrape(&app).await;
    assert!(
        !text.contains("RSSMRA80A01H501"),
        "no codice fiscale: {text}"
    );
    let route = "/api/v1/holders/{codice_fiscale}/devices";
    let counter = |status: u16| {
        format!(
            "rinnovo_http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}}"
        )
    };
    assert_eq!(value(&text, &counter(found.as_u16())), Some(1.0), "{text}");
    assert_eq!(value(&text, &counter(400)), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            "rinnovo_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "rinnovo_http_requests_total{method=\"POST\",route=\"/api/v1/auth/signup\",status=\"201\"}"
        ),
        Some(1.0),
        "{text}"
    );
    let bucket = |le: &str| {
        format!(
            "rinnovo_http_request_duration_seconds_bucket{{method=\"GET\",route=\"{route}\",le=\"{le}\"}}"
        )
    };
    assert!(value(&text, &bucket("0.005")).is_some(), "{text}");
    assert_eq!(value(&text, &bucket("+Inf")), Some(2.0), "{text}");
    assert_eq!(
        value(
            &text,
            &format!(
                "rinnovo_http_request_duration_seconds_count{{method=\"GET\",route=\"{route}\"}}"
            )
        ),
        Some(2.0)
    );

    // The pool, and the shared figures, even when there is nothing in them.
    assert_eq!(value(&text, "rinnovo_db_pool_max_connections"), Some(8.0));
    assert!(value(&text, "rinnovo_db_pool_connections{state=\"idle\"}").is_some());
    assert!(value(&text, "rinnovo_db_pool_connections{state=\"in_use\"}").is_some());
    for status in ["matched", "partial", "unmatched", "reversal"] {
        let series = format!("rinnovo_payments{{status=\"{status}\"}}");
        assert_eq!(value(&text, &series), Some(0.0), "{series}: {text}");
    }
    assert_eq!(value(&text, "rinnovo_outbox_pending_emails"), Some(0.0));
    assert_eq!(
        value(&text, "rinnovo_outbox_oldest_pending_age_seconds"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "rinnovo_issuance_queue_depth{status=\"queued\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "rinnovo_issuance_oldest_queued_age_seconds"),
        Some(0.0)
    );
}

#[tokio::test]
async fn the_outbox_gauges_show_the_emails_waiting() {
    let app = spawn_app_with(
        StartOptions::default(),
        &[("RINNOVO_RUN_WORKERS", "false".into())],
    )
    .await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "40.00");
    let response = app
        .order(
            &customer.token,
            json!([{ "product": "RIN-FIRMA-CNS", "quantity": 1 }]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let pending: i64 = {
        let mut conn = app.pool.get().unwrap();
        // As if they had waited an hour; one of them given up.
        diesel::update(emails::table)
            .set(emails::created_at.eq((Utc::now() - Duration::hours(1)).naive_utc()))
            .execute(&mut conn)
            .unwrap();
        let one: String = emails::table.select(emails::id).first(&mut conn).unwrap();
        diesel::update(emails::table.filter(emails::id.eq(one)))
            .set(emails::status.eq("dead"))
            .execute(&mut conn)
            .unwrap();
        emails::table
            .filter(emails::status.eq("pending"))
            .count()
            .get_result(&mut conn)
            .unwrap()
    };
    assert!(pending >= 1, "the order queued its emails");

    let text = scrape(&app).await;
    assert_eq!(
        value(&text, "rinnovo_outbox_pending_emails"),
        Some(pending as f64)
    );
    assert_eq!(value(&text, "rinnovo_outbox_dead_emails"), Some(1.0));
    let age = value(&text, "rinnovo_outbox_oldest_pending_age_seconds").unwrap();
    assert!((3600.0..3700.0).contains(&age), "{age}");
}

#[tokio::test]
async fn the_issuance_gauges_show_the_queued_renewals() {
    let (app, sink) = crate::renewals::app_with_sink(&[]).await;
    let queued = crate::issuance::queue(&app, &sink, 2).await;
    assert_eq!(queued.len(), 2);
    diesel::update(renewals::table)
        .set(renewals::created_at.eq((Utc::now() - Duration::minutes(10)).naive_utc()))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();

    let text = scrape(&app).await;
    assert_eq!(
        value(&text, "rinnovo_issuance_queue_depth{status=\"queued\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "rinnovo_issuance_queue_depth{status=\"issuing\"}"),
        Some(0.0)
    );
    let age = value(&text, "rinnovo_issuance_oldest_queued_age_seconds").unwrap();
    assert!((600.0..700.0).contains(&age), "{age}");
    assert!(
        !text.contains(&queued[0].1),
        "no coupon code in the metrics"
    );
}

#[tokio::test]
async fn with_a_token_the_metrics_need_it() {
    let app = spawn_app_with(
        StartOptions::default(),
        &[("RINNOVO_METRICS_TOKEN", METRICS_TOKEN.into())],
    )
    .await;
    let body = problem(app.get("/metrics").await, 401).await;
    assert_eq!(body["type"], "/problems/unauthorized");
    problem(app.get_as("not-the-token", "/metrics").await, 401).await;

    let response = app.get_as(METRICS_TOKEN, "/metrics").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("rinnovo_http_requests_total"), "{text}");
    assert!(!text.contains(METRICS_TOKEN));
}

#[tokio::test]
async fn problems_carry_the_request_id_of_their_response() {
    let app = spawn_app().await;
    let token = app.customer("visura").await.token;
    let responses = [
        app.get("/no/such/page").await,
        app.lookup(&token, "RSSMRA80A01H501A").await,
        app.client
            .delete(format!("{}/api/v1/products", app.address))
            .send()
            .await
            .unwrap(),
        app.client
            .post(format!("{}/api/v1/auth/login", app.address))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    ];
    for (response, status) in responses.into_iter().zip([404, 400, 405, 400]) {
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = problem(response, status).await;
        assert_eq!(body["request_id"], id.as_str(), "{body}");
    }

    // Successful answers are left as they are.
    let response = app.get("/health/live").await;
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "status": "ok" }));
}
