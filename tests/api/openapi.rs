//! The OpenAPI document against the router. Both are made from the one list of operations
//! (`http::operations`), so here each documented operation is asked for: it must reach its
//! handler (whose answer is never the router's 404 or 405), and its path must answer a
//! method it does not have with 405 and the methods it has.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `path` with each `{parameter}` filled with `x`.
fn filled(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `url` asked with `method` (as the document names it: `get`, `post`...), without a body.
async fn ask(client: &reqwest::Client, method: &str, url: &str) -> reqwest::Response {
    let method = method.to_uppercase().parse().unwrap();
    client.request(method, url).send().await.unwrap()
}

#[tokio::test]
async fn every_documented_operation_is_served_and_documented_whole() {
    let app = spawn_app().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );

    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let methods: BTreeSet<&str> = METHODS
            .into_iter()
            .filter(|method| item.get(*method).is_some())
            .collect();
        let url = format!("{}{}", app.address, filled(path));
        for method in &methods {
            documented.insert((method.to_string(), path.clone()));
            let answer = ask(&app.client, method, &url).await;
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or_default();
            assert!(
                status != 405 && !(status == 404 && body["type"] == "/problems/not-found"),
                "{method} {path} is documented but not served: {status} {body}"
            );
        }
        let other = METHODS
            .into_iter()
            .find(|method| !methods.contains(method))
            .unwrap();
        let refused = ask(&app.client, other, &url).await;
        assert_eq!(refused.status(), 405, "{other} {path}");
        let allow: BTreeSet<String> = refused.headers()["allow"]
            .to_str()
            .unwrap()
            .split(", ")
            .map(str::to_lowercase)
            .collect();
        let methods: BTreeSet<String> = methods.into_iter().map(str::to_owned).collect();
        assert_eq!(allow, methods, "{path}: Allow");
    }
    assert!(
        documented.len() >= 80,
        "{} operations documented",
        documented.len()
    );

    // Every operation: a unique id, its responses including the problems, and only the
    // security schemes the document defines.
    let schemes: BTreeSet<&str> = document["components"]["securitySchemes"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(schemes, BTreeSet::from(["access_token", "agent_token"]));
    let mut ids = BTreeSet::new();
    for (method, path) in &documented {
        let operation = &document["paths"][path][method];
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_owned()),
            "{method} {path}: operationId {id:?} reused"
        );
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success response"
        );
        assert!(
            responses.contains_key("500"),
            "{method} {path}: 500 not documented"
        );
        assert_eq!(
            responses.contains_key("503"),
            path != "/health/live",
            "{method} {path}: 503 (the database) documented where it can happen"
        );
        if operation.get("requestBody").is_some() {
            assert!(
                responses.contains_key("413"),
                "{method} {path}: takes a body but does not document 413"
            );
        }
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]
                        .get("application/problem+json")
                        .is_some(),
                    "{method} {path}: {status} is not problem JSON"
                );
            }
        }
        // An operation without security of its own has the document's.
        let security = operation.get("security").unwrap_or(&document["security"]);
        for requirement in security.as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes.contains(scheme.as_str()),
                    "{method} {path}: {scheme}"
                );
                assert!(
                    responses.contains_key("401"),
                    "{method} {path}: secured by {scheme} but does not document 401"
                );
            }
        }
    }

    // The problem schema names every member a problem body has, the spliced one too.
    let problem = &document["components"]["schemas"]["Problem"]["properties"];
    for member in ["type", "title", "status", "detail", "errors", "request_id"] {
        assert!(
            problem.get(member).is_some(),
            "Problem lacks {member}: {problem}"
        );
    }
}

/// The viewer is served from the binary, on this origin only: nothing it loads comes from
/// elsewhere, and a Content-Security-Policy says so to the browser.
#[tokio::test]
async fn the_viewer_is_served_from_the_binary_under_a_same_origin_policy() {
    let app = spawn_app().await;

    let not_following = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = not_following
        .get(format!("{}/api/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/api/docs/");

    let page = app.get("/api/docs/").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let html = page.text().await.unwrap();
    let initializer = app.get("/api/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), 200);
    let initializer = initializer.text().await.unwrap();
    assert!(
        initializer.contains("/api/openapi.json"),
        "the viewer must show this document: {initializer}"
    );
    for (name, text) in [("index.html", &html), ("initializer", &initializer)] {
        assert!(
            !text.contains("://"),
            "{name} loads something from another origin: {text}"
        );
    }
    // Every script and stylesheet the page names is served here.
    let mut assets = 0;
    for attribute in ["src=\"./", "href=\"./"] {
        for piece in html.split(attribute).skip(1) {
            let file = &piece[..piece.find('"').unwrap()];
            let asset = app.get(&format!("/api/docs/{file}")).await;
            assert_eq!(asset.status(), 200, "{file}");
            assert!(!asset.bytes().await.unwrap().is_empty(), "{file}");
            assets += 1;
        }
    }
    assert!(
        assets >= 3,
        "the page names its bundle, preset and styles: {html}"
    );

    let missing = app.get("/api/docs/nothing-here.js").await;
    assert_eq!(missing.status(), 404);
}
