//! Lists that scale: every list pages by `limit` and `offset` under one rule, answers the
//! total of what matches, links the next page; a query parameter a list does not take is
//! refused by name instead of being ignored; the back-office pages page the same way.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use rinnovo::db::schema::orders;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{problem, spawn_app, SignedIn, TestApp};
use crate::web_client::Browser as Session;

/// `count` orders of `user`, cancelled and without lines, written straight to the table
/// (hundreds through checkout would take minutes): one a minute back from now, so the
/// newest-first order of the list is known. Their ids, newest first.
fn insert_orders(app: &TestApp, user: &SignedIn, count: usize) -> Vec<String> {
    let mut conn = app.pool.get().unwrap();
    let now = Utc::now().naive_utc();
    let ids: Vec<String> = (0..count).map(|_| Uuid::now_v7().to_string()).collect();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        for (age, id) in ids.iter().enumerate() {
            diesel::insert_into(orders::table)
                .values((
                    orders::id.eq(id),
                    orders::brand_id.eq("visura"),
                    orders::user_id.eq(&user.user_id),
                    orders::status.eq("cancelled"),
                    orders::payment_method.eq("bank_transfer"),
                    orders::net_cents.eq(2600_i64),
                    orders::vat_cents.eq(572_i64),
                    orders::gross_cents.eq(3172_i64),
                    orders::email.eq(&user.email),
                    orders::created_at.eq(now - Duration::minutes(age as i64 + 1)),
                    orders::received_cents.eq(0_i64),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
    .unwrap();
    ids
}

/// Every page of a list, following `next` from `first`: the ids of the rows under
/// `key`, in the order served, and the total each page announced.
async fn every_page(app: &TestApp, token: &str, first: &str, key: &str) -> (Vec<String>, i64) {
    let (mut ids, mut totals) = (Vec::new(), BTreeSet::new());
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let page = app.get_json(token, &path).await;
        let rows = page[key].as_array().expect("the rows");
        assert!(
            rows.len() as i64 <= page["limit"].as_i64().unwrap(),
            "{page}"
        );
        ids.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        totals.insert(page["total"].as_i64().expect("the total"));
        next = page["next"].as_str().map(str::to_owned);
        assert!(ids.len() <= 1000, "the pages never end");
    }
    assert_eq!(totals.len(), 1, "every page announces the same total");
    (ids, totals.pop_first().unwrap())
}

/// The field errors of a 400 problem as (field, rule).
async fn refused_fields(response: reqwest::Response) -> Vec<(String, String)> {
    let body = problem(response, 400).await;
    assert_eq!(body["type"], "/problems/invalid-field", "{body}");
    body["errors"]
        .as_array()
        .expect("the wrong fields")
        .iter()
        .map(|e| {
            let field = e["field"].as_str().unwrap().to_owned();
            (field, e["rule"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_orders_list_pages_past_two_hundred_with_each_order_once() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let other = app.customer("visura").await;
    let inserted = insert_orders(&app, &customer, 205);
    insert_orders(&app, &other, 3);

    let (served, total) =
        every_page(&app, &customer.token, "/api/v1/orders?limit=60", "orders").await;
    assert_eq!(
        total, 205,
        "a customer's total counts only their own orders"
    );
    assert_eq!(
        served, inserted,
        "every order once, newest first, none missing"
    );

    // Without `limit`, the default page; the next link keeps the filters.
    let first = app
        .get_json(&customer.token, "/api/v1/orders?status=cancelled")
        .await;
    assert_eq!(first["orders"].as_array().unwrap().len(), 50);
    assert_eq!(
        (first["limit"].as_i64(), first["offset"].as_i64()),
        (Some(50), Some(0))
    );
    assert_eq!(
        first["next"],
        "/api/v1/orders?status=cancelled&limit=50&offset=50"
    );
    let last = app
        .get_json(&customer.token, "/api/v1/orders?limit=50&offset=200")
        .await;
    assert_eq!(last["orders"].as_array().unwrap().len(), 5);
    assert!(
        last.get("next").is_none(),
        "the last page links no further: {last}"
    );
    let beyond = app
        .get_json(&customer.token, "/api/v1/orders?offset=1000")
        .await;
    assert_eq!(beyond["orders"], Value::Array(vec![]));
    assert_eq!(beyond["total"], 205);

    let theirs = app.get_json(&other.token, "/api/v1/orders").await;
    assert_eq!(theirs["total"], 3, "{theirs}");
    assert_eq!(theirs["orders"].as_array().unwrap().len(), 3);

    // The back-office sees the brand's; filtered, the total is the filter's.
    let office = app.back_office("visura").await;
    let all = app.get_json(&office.token, "/api/v1/orders?limit=1").await;
    assert_eq!(all["total"], 208);
    let by_email = app
        .get_json(
            &office.token,
            &format!("/api/v1/orders?email={}", other.email),
        )
        .await;
    assert_eq!(by_email["total"], 3);
}

#[tokio::test]
async fn limit_and_offset_out_of_range_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let cases = [
        (&customer, "/api/v1/orders?limit=0", "limit", "range"),
        (&customer, "/api/v1/orders?limit=501", "limit", "range"),
        (&customer, "/api/v1/orders?limit=ten", "limit", "integer"),
        (&customer, "/api/v1/coupons?offset=-1", "offset", "range"),
        (
            &customer,
            "/api/v1/prepaid/entries?limit=0",
            "limit",
            "range",
        ),
        (
            &office,
            "/api/v1/backoffice/users?offset=x",
            "offset",
            "integer",
        ),
        (
            &office,
            "/api/v1/backoffice/emails?limit=1000",
            "limit",
            "range",
        ),
        (
            &office,
            "/api/v1/backoffice/payments?limit=-5",
            "limit",
            "range",
        ),
    ];
    for (user, path, field, rule) in cases {
        let refused = refused_fields(app.get_as(&user.token, path).await).await;
        assert_eq!(refused, [(field.to_owned(), rule.to_owned())], "{path}");
    }
    // The largest page is served.
    let page = app
        .get_json(&customer.token, "/api/v1/orders?limit=500")
        .await;
    assert_eq!(page["limit"], 500);
}

#[tokio::test]
async fn rf_on_the_payments_api_is_refused_naming_it() {
    let app = spawn_app().await;
    let office = app.back_office("visura").await;
    let response = app
        .get_as(
            &office.token,
            "/api/v1/backoffice/payments?rf=RF18539007547034",
        )
        .await;
    let refused = refused_fields(response).await;
    assert_eq!(refused, [("rf".to_owned(), "unknown_parameter".to_owned())]);
    // The API's name for it is taken.
    let page = app
        .get_json(
            &office.token,
            "/api/v1/backoffice/payments?reference=RF18539007547034",
        )
        .await;
    assert_eq!(page["total"], 0);
    assert_eq!(page["totals"]["count"], 0);
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_by_name_everywhere() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    // Endpoints that take no parameter at all refuse one by name too (the OpenAPI
    // document, which declares every endpoint's parameters, says they take none).
    let customer_paths = [
        "/api/v1/prepaid?sort=newest",
        "/api/v1/me?sort=newest",
        "/api/v1/orders/00000000-0000-0000-0000-000000000000?sort=newest",
        "/api/v1/orders?sort=newest",
        "/api/v1/coupons?sort=newest",
        "/api/v1/prepaid/entries?sort=newest",
        "/api/v1/prepaid/topups?sort=newest",
    ];
    let office_paths = [
        "/api/v1/backoffice/payments?sort=newest",
        "/api/v1/backoffice/payments/summary?sort=newest",
        "/api/v1/backoffice/users?sort=newest",
        "/api/v1/backoffice/emails?sort=newest",
        "/api/v1/backoffice/card-payments?sort=newest",
        "/api/v1/backoffice/sdi/transmissions?sort=newest",
        "/api/v1/backoffice/sdi/receipts?sort=newest",
        "/api/v1/backoffice/invoices?sort=newest",
        "/api/v1/backoffice/invoices/export.zip?from=2026-01-01&to=2026-01-31&sort=newest",
        "/api/v1/backoffice/officer-applications?sort=newest",
        "/api/v1/backoffice/statements?sort=newest",
        "/api/v1/backoffice/prepaid?email=a@example.it&sort=newest",
    ];
    let paths = customer_paths
        .iter()
        .map(|p| (&customer, p))
        .chain(office_paths.iter().map(|p| (&office, p)));
    for (user, path) in paths {
        let response = app.get_as(&user.token, path).await;
        let refused = refused_fields(response).await;
        assert_eq!(
            refused,
            [("sort".to_owned(), "unknown_parameter".to_owned())],
            "{path}"
        );
    }

    // Each unknown parameter is named, with the wrong values of known ones, in one answer.
    let response = app
        .get_as(&customer.token, "/api/v1/orders?stauts=paid&limit=0&pgae=2")
        .await;
    let body = problem(response, 400).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["stauts", "pgae", "limit"], "{body}");
    let detail = body["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("status"),
        "the detail lists what is taken: {detail}"
    );
}

#[tokio::test]
async fn every_list_answers_its_total_and_page() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let lists = [
        (&customer, "/api/v1/orders", "orders"),
        (&customer, "/api/v1/coupons", "coupons"),
        (&customer, "/api/v1/prepaid/topups", "top_ups"),
        (&office, "/api/v1/backoffice/payments", "payments"),
        (&office, "/api/v1/backoffice/users", "users"),
        (&office, "/api/v1/backoffice/emails", "emails"),
        (&office, "/api/v1/backoffice/card-payments", "card_payments"),
        (
            &office,
            "/api/v1/backoffice/sdi/transmissions",
            "transmissions",
        ),
        (&office, "/api/v1/backoffice/sdi/receipts", "receipts"),
        (&office, "/api/v1/backoffice/sdi/rejected", "rejected"),
        (&office, "/api/v1/backoffice/invoices", "invoices"),
        (
            &office,
            "/api/v1/backoffice/officer-applications",
            "applications",
        ),
        (&office, "/api/v1/backoffice/statements", "statements"),
    ];
    for (user, path, key) in lists {
        let page = app
            .get_json(&user.token, &format!("{path}?limit=7&offset=0"))
            .await;
        let rows = page[key]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {page}"));
        assert_eq!(
            page["total"].as_i64(),
            Some(rows.len() as i64),
            "{path}: {page}"
        );
        assert_eq!(
            (page["limit"].as_i64(), page["offset"].as_i64()),
            (Some(7), Some(0)),
            "{path}"
        );
    }
    // The back-office has its users: two here, the operator and the customer.
    let users = app
        .get_json(&office.token, "/api/v1/backoffice/users?limit=1")
        .await;
    assert_eq!(users["total"], 2);
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    assert_eq!(users["next"], "/api/v1/backoffice/users?limit=1&offset=1");
}

/// Every list filtered by a state or a kind refuses one it does not know the same way:
/// 400, the parameter named with the rule `one_of`, and the values it takes listed.
#[tokio::test]
async fn every_list_refuses_a_state_it_does_not_know_by_name() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let filters = [
        (&customer, "/api/v1/orders", "status", "awaiting_payment"),
        (
            &office,
            "/api/v1/backoffice/payments",
            "status",
            "unmatched",
        ),
        (&office, "/api/v1/backoffice/users", "role", "back_office"),
        (&office, "/api/v1/backoffice/users", "status", "disabled"),
        (&office, "/api/v1/backoffice/emails", "status", "dead"),
        (
            &office,
            "/api/v1/backoffice/card-payments",
            "status",
            "paid",
        ),
        (
            &office,
            "/api/v1/backoffice/sdi/transmissions",
            "status",
            "sent",
        ),
        (
            &office,
            "/api/v1/backoffice/invoices",
            "status",
            "delivered",
        ),
        (&office, "/api/v1/backoffice/invoices", "kind", "TD04"),
        (
            &office,
            "/api/v1/backoffice/officer-applications",
            "status",
            "pending",
        ),
    ];
    for (user, path, parameter, one_value) in filters {
        let body = problem(
            app.get_as(&user.token, &format!("{path}?{parameter}=lost"))
                .await,
            400,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], parameter, "{path}: {body}");
        assert_eq!(body["errors"][0]["rule"], "one_of", "{path}: {body}");
        let detail = body["errors"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("{parameter} must be one of")) && detail.contains(one_value),
            "{path}: {detail}"
        );
    }
}

#[tokio::test]
async fn the_back_office_orders_page_shows_the_total_and_links_the_next_page() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let inserted = insert_orders(&app, &customer, 120);
    let office = app.back_office("visura").await;
    let (browser, _) = Session::signed_in_to(&app, "visura", &office.email).await;

    // The page's HTML, with the escapes of its attribute values undone.
    let body_of = |page: crate::web_client::Page| {
        assert_eq!(page.status, 200, "{}", page.body);
        page.body.replace("&#x3D;", "=").replace("&amp;", "&")
    };
    let body = body_of(browser.get("/backoffice/ordini?stato=cancelled").await);
    assert!(body.contains("120 risultati · Pagina 1 di 3"), "{body}");
    assert!(body.contains(&format!("id=\"ordine-{}\"", inserted[0])));
    assert!(!body.contains(&format!("id=\"ordine-{}\"", inserted[50])));
    let next = "href=\"/backoffice/ordini?stato=cancelled&pagina=2\" rel=\"next\"";
    assert!(
        body.contains(next),
        "the next page keeps the filter: {body}"
    );
    assert!(!body.contains("rel=\"prev\""));

    let body = body_of(
        browser
            .get("/backoffice/ordini?stato=cancelled&pagina=3")
            .await,
    );
    assert!(body.contains("120 risultati · Pagina 3 di 3"), "{body}");
    assert!(body.contains(&format!("id=\"ordine-{}\"", inserted[119])));
    let previous = "href=\"/backoffice/ordini?stato=cancelled&pagina=2\" rel=\"prev\"";
    assert!(body.contains(previous), "{body}");
    assert!(!body.contains("rel=\"next\""));
}

#[tokio::test]
async fn the_document_describes_the_paging_and_the_refusal_of_every_list() {
    let app = spawn_app().await;
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let lists = [
        "/api/v1/orders",
        "/api/v1/coupons",
        "/api/v1/prepaid/topups",
        "/api/v1/backoffice/payments",
        "/api/v1/backoffice/users",
        "/api/v1/backoffice/emails",
        "/api/v1/backoffice/card-payments",
        "/api/v1/backoffice/sdi/transmissions",
        "/api/v1/backoffice/sdi/receipts",
        "/api/v1/backoffice/invoices",
        "/api/v1/backoffice/officer-applications",
        "/api/v1/backoffice/statements",
    ];
    for path in lists {
        let operation = &document["paths"][path]["get"];
        let names: Vec<&str> = operation["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has parameters"))
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"limit") && names.contains(&"offset"),
            "{path}: {names:?}"
        );
        let refusal = operation["responses"]["400"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(refusal.contains("unknown_parameter"), "{path}: {refusal}");
    }
    let page_info = &document["components"]["schemas"]["PageInfo"]["properties"];
    for member in ["total", "limit", "offset", "next"] {
        assert!(page_info.get(member).is_some(), "PageInfo.{member}");
    }
}
