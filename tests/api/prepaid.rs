//! The prepaid account: balance, statement, back-office adjustments, the audit trail,
//! and the invariant that concurrency cannot overdraw it.

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, SignedIn, TestApp};

async fn account_id(app: &TestApp, office: &SignedIn, customer: &SignedIn) -> String {
    let found: Value = app
        .get_json(
            &office.token,
            &format!("/api/v1/backoffice/prepaid?email={}", customer.email),
        )
        .await;
    found["accounts"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn adjust(
    app: &TestApp,
    office: &SignedIn,
    account: &str,
    direction: &str,
    amount: &str,
) -> reqwest::Response {
    app.post_json_as(
        &office.token,
        &format!("/api/v1/backoffice/prepaid/{account}/adjustments"),
        &json!({ "direction": direction, "amount": amount, "reason": "test di rettifica" }),
    )
    .await
}

#[tokio::test]
async fn a_new_customer_has_an_empty_account() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let body: Value = app.get_json(&customer.token, "/api/v1/prepaid").await;
    assert_eq!(body["balance"], "0.00");
    assert_eq!(body["currency"], "EUR");
    let entries: Value = app
        .get_json(&customer.token, "/api/v1/prepaid/entries")
        .await;
    assert_eq!(entries["entries"], json!([]));
}

#[tokio::test]
async fn adjustments_move_the_balance_and_the_statement_pages() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let account = account_id(&app, &office, &customer).await;

    assert_eq!(
        adjust(&app, &office, &account, "credit", "100.00")
            .await
            .status(),
        201
    );
    for _ in 0..4 {
        assert_eq!(
            adjust(&app, &office, &account, "debit", "12.5")
                .await
                .status(),
            201
        );
    }
    let body: Value = app.get_json(&customer.token, "/api/v1/prepaid").await;
    assert_eq!(body["balance"], "50.00");

    let page: Value = app
        .get_json(&customer.token, "/api/v1/prepaid/entries?limit=3")
        .await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["seq"], 5, "newest first");
    assert_eq!(entries[0]["amount"], "-12.50");
    assert_eq!(entries[0]["balance_after"], "50.00");
    assert_eq!(entries[0]["kind"], "adjustment");
    assert_eq!(entries[0]["description"], "test di rettifica");
    assert_eq!(page["next_before"], 3);
    let older: Value = app
        .get_json(&customer.token, "/api/v1/prepaid/entries?limit=3&before=3")
        .await;
    let seqs: Vec<i64> = older["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 1]);
    assert_eq!(older["entries"][1]["balance_after"], "100.00");
    assert!(older.get("next_before").is_none());

    problem(
        app.get_as(&customer.token, "/api/v1/prepaid/entries?limit=0")
            .await,
        400,
    )
    .await;
    problem(
        app.get_as(&customer.token, "/api/v1/prepaid/entries?limit=abc")
            .await,
        400,
    )
    .await;

    let (balance, sum) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance, sum);
}

#[tokio::test]
async fn an_overdraft_is_a_409_and_changes_nothing() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let account = account_id(&app, &office, &customer).await;
    adjust(&app, &office, &account, "credit", "10.00").await;
    let body = problem(adjust(&app, &office, &account, "debit", "10.01").await, 409).await;
    assert_eq!(body["type"], "/problems/insufficient-funds");
    assert_eq!(
        body["detail"],
        "the prepaid balance is 10.00 euro, 10.01 euro are needed"
    );
    let (balance, sum) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!((balance.cents(), sum.cents()), (1000, 1000));
}

#[tokio::test]
async fn adjustment_input_is_validated_field_by_field() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let account = account_id(&app, &office, &customer).await;
    let body = problem(
        app.post_json_as(
            &office.token,
            &format!("/api/v1/backoffice/prepaid/{account}/adjustments"),
            &json!({ "direction": "sideways", "amount": "1.234", "reason": "" }),
        )
        .await,
        400,
    )
    .await;
    let fields: Vec<(&str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("direction", "one_of"),
            ("amount", "cents"),
            ("reason", "min_length")
        ]
    );
    for amount in ["0", "-5", "abc"] {
        problem(adjust(&app, &office, &account, "credit", amount).await, 400).await;
    }
    problem(
        adjust(&app, &office, "no-such-account", "credit", "1").await,
        404,
    )
    .await;
}

#[tokio::test]
async fn adjustments_are_audited_and_the_ledger_is_append_only() {
    use rinnovo::db::schema::{audit_log, prepaid_entries};
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let account = account_id(&app, &office, &customer).await;
    adjust(&app, &office, &account, "credit", "5.00").await;

    let mut conn = app.pool.get().unwrap();
    let (actor, action, details): (String, String, String) = audit_log::table
        .filter(audit_log::subject_id.eq(&account))
        .select((audit_log::actor, audit_log::action, audit_log::details))
        .first(&mut conn)
        .unwrap();
    assert_eq!(actor, format!("user:{}", office.user_id));
    assert_eq!(action, "prepaid.adjusted");
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["reason"], "test di rettifica");
    assert_eq!(details["amount"], "5.00");

    let tampered = diesel::update(prepaid_entries::table)
        .set(prepaid_entries::amount_cents.eq(1_000_000i64))
        .execute(&mut conn);
    assert!(tampered.is_err(), "ledger entries cannot be changed");
    assert!(diesel::delete(prepaid_entries::table)
        .execute(&mut conn)
        .is_err());
    assert!(diesel::delete(audit_log::table).execute(&mut conn).is_err());
    let (balance, sum) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!((balance.cents(), sum.cents()), (500, 500));
}

#[tokio::test]
async fn customers_see_only_their_own_account() {
    let app = spawn_app().await;
    let anna = app.customer("visura").await;
    let bruno = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let annas = account_id(&app, &office, &anna).await;
    adjust(&app, &office, &annas, "credit", "42.00").await;

    let bruno_view: Value = app.get_json(&bruno.token, "/api/v1/prepaid").await;
    assert_eq!(bruno_view["balance"], "0.00");
    assert_ne!(bruno_view["account_id"], annas.as_str());
    let bruno_entries: Value = app.get_json(&bruno.token, "/api/v1/prepaid/entries").await;
    assert_eq!(bruno_entries["entries"], json!([]));
    // No way in through the back-office door either.
    problem(
        app.get_as(&bruno.token, &format!("/api/v1/backoffice/prepaid/{annas}"))
            .await,
        403,
    )
    .await;
}

/// 200 debits of 1.00 at once on an account holding 57.00: exactly 57 succeed, the
/// balance ends at zero, and the ledger still sums to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_debits_never_overdraw() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let account = account_id(&app, &office, &customer).await;
    assert_eq!(
        adjust(&app, &office, &account, "credit", "57.00")
            .await
            .status(),
        201
    );

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let mut handles = Vec::new();
    for _ in 0..200 {
        let client = app.client.clone();
        let url = format!(
            "{}/api/v1/backoffice/prepaid/{account}/adjustments",
            app.address
        );
        let token = office.token.clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "direction": "debit", "amount": "1.00", "reason": "addebito concorrente" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for handle in handles {
        match handle.await.unwrap() {
            201 => created += 1,
            409 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, refused), (57, 143));
    let (balance, sum) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.cents(), 0);
    assert_eq!(sum, balance);
}

#[tokio::test]
async fn the_statement_page_pages_the_entries_newest_first() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let office = app.back_office("visura").await;
    let account = account_id(&app, &office, &customer).await;
    for n in 1..=52 {
        let amount = format!("{n}.00");
        let response = adjust(&app, &office, &account, "credit", &amount).await;
        assert_eq!(response.status(), 201);
    }
    let (browser, _) =
        crate::web_client::Browser::signed_in_to(&app, "visura", &customer.email).await;
    let rows = |body: &str| body.matches("<tr><td>").count();

    let first = browser.get("/negozio/prepagato").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.body.contains("52 risultati · Pagina 1 di 2"),
        "{}",
        first.body
    );
    assert_eq!(rows(&first.body), 50, "{}", first.body);
    // The newest first: the balance after the 52nd credit, 52 × 53 / 2.
    assert!(first.body.contains("<td>€ 1.378,00</td>"), "{}", first.body);
    assert!(
        first.body.contains("pagina&#x3D;2\" rel=\"next\""),
        "{}",
        first.body
    );

    let second = browser.get("/negozio/prepagato?pagina=2").await;
    assert!(
        second.body.contains("52 risultati · Pagina 2 di 2"),
        "{}",
        second.body
    );
    assert_eq!(rows(&second.body), 2, "{}", second.body);
    // The two oldest: balances 1,00 and 3,00, and nothing of the first page.
    assert!(second.body.contains("€ 3,00"), "{}", second.body);
    assert!(
        !second.body.contains("<td>€ 1.378,00</td>"),
        "{}",
        second.body
    );
}
