use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn live_and_ready_answer_ok() {
    let app = spawn_app().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let first = app.get("/health/live").await;
    let second = app.get("/nowhere").await;
    let a = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = second.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(a.len(), 36, "a UUID: {a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn unknown_routes_are_problem_json() {
    let app = spawn_app().await;
    let body = problem(app.get("/api/v1/nothing-here").await, 404).await;
    assert_eq!(body["type"], "/problems/not-found");
}

#[tokio::test]
async fn wrong_methods_are_problem_json_with_allow() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(format!(
            "{}/api/v1/holders/RSSMRA80A01H501U/devices",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    let body = problem(response, 405).await;
    assert_eq!(body["type"], "/problems/method-not-allowed");
    assert_eq!(body["detail"], "DELETE is not allowed here");
}
