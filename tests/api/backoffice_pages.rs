//! The back-office pages over plain HTTP: who may see them, CSRF on every form, and each
//! operator action through its page (statement import, manual match and refund, prepaid
//! adjustment, coupon void, dead email retry) doing what the JSON API does.

use std::time::Duration;

use diesel::prelude::*;
use rinnovo::db::schema::{audit_log, coupons, payments, prepaid_entries, statements};
use rinnovo::prepaid;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, spawn_app_with_smtp, SignedIn, TestApp};
use crate::statements::{camt053, Line};
use crate::web_client::{hidden, text_of, Browser as Session};

/// RIN-FIRMA-CNS: 26.00 + 22% = 31.72.
const PRODUCT: &str = "RIN-FIRMA-CNS";
const PRICE: &str = "31.72";

fn bank_ref() -> String {
    format!("BR{}", Uuid::new_v4().simple())
}

async fn transfer_order(app: &TestApp, customer: &SignedIn) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({
            "lines": [{ "product": PRODUCT, "quantity": 1 }],
            "payment_method": "bank_transfer",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn account_of(app: &TestApp, user_id: &str) -> String {
    prepaid::account_of_owner(&mut app.pool.get().unwrap(), user_id)
        .unwrap()
        .id
}

fn audit_rows(app: &TestApp) -> i64 {
    audit_log::table
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap()
}

fn payment_status(app: &TestApp, id: &str) -> String {
    payments::table
        .filter(payments::id.eq(id))
        .select(payments::status)
        .first(&mut app.pool.get().unwrap())
        .unwrap()
}

#[tokio::test]
async fn operators_see_the_back_office_and_nobody_else_does() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;

    // No session: to the sign-in of the brand.
    let anonymous = Session::anonymous(&app, "visura").await;
    for path in [
        "/backoffice",
        "/backoffice/pagamenti",
        "/backoffice/estratti",
        "/backoffice/prepagati",
    ] {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(
            page.location.as_deref(),
            Some("/negozio/visura/accedi"),
            "{path}"
        );
    }

    // A customer: refused.
    let (shopper, landing) = Session::signed_in(&app, &customer.email).await;
    assert_eq!(landing, "/negozio/acquista");
    for path in [
        "/backoffice/pagamenti",
        "/backoffice/ordini",
        "/backoffice/riepilogo",
        "/backoffice/email",
    ] {
        let page = shopper.get(path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("riservato agli operatori"), "{path}");
    }
    let account = account_of(&app, &customer.user_id);
    let page = shopper
        .post(
            &format!("/backoffice/prepagati/{account}/rettifica"),
            &[
                ("direction", "credit"),
                ("amount", "100"),
                ("reason", "me lo regalo"),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "a customer cannot adjust");
    assert_eq!(
        app.prepaid_balance_and_ledger_sum(&customer.user_id).0,
        rinnovo::money::Money::ZERO
    );

    // The operator: every section.
    let (office, landing) = Session::signed_in(&app, &operator.email).await;
    assert_eq!(landing, "/backoffice");
    let home = office.get("/backoffice").await;
    assert_eq!(home.location.as_deref(), Some("/backoffice/pagamenti"));
    for (path, heading) in [
        ("/backoffice/pagamenti", "<h1>Pagamenti</h1>"),
        ("/backoffice/ordini", "<h1>Ordini</h1>"),
        ("/backoffice/estratti", "<h1>Estratti conto</h1>"),
        ("/backoffice/riepilogo", "<h1>Riepilogo giornaliero</h1>"),
        ("/backoffice/prepagati", "<h1>Conti prepagati</h1>"),
        ("/backoffice/coupon", "<h1>Coupon</h1>"),
        ("/backoffice/email", "<h1>Email non consegnate</h1>"),
    ] {
        let page = office.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains(heading), "{path}");
        assert!(page.body.contains("Estratti conto</a>"), "{path}: the nav");
    }
    let page = office.get("/backoffice/pagamenti").await;
    assert!(page.body.contains("0 pagamenti"), "{}", page.body);

    // Bad filters are told next to their field, not a 500 nor a problem+json.
    let page = office
        .get("/backoffice/pagamenti?dal=ieri&reference=RF00123&stato=boh")
        .await;
    assert_eq!(page.status, 422);
    for id in ["dal-error", "reference-error", "stato-error"] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(page
        .body
        .contains("aria-describedby=\"date-help dal-error\""));
    let page = office.get("/backoffice/riepilogo?data=2026-13-01").await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"data-error\""));
    // Every list's state filter reads its own states and refuses anything else alike.
    for (path, state) in [
        ("/backoffice/pagamenti", "unmatched"),
        ("/backoffice/pagamenti/carte", "paid"),
        ("/backoffice/ordini", "fulfilled"),
        ("/backoffice/fatture", "rejected"),
    ] {
        let page = office.get(&format!("{path}?stato={state}")).await;
        assert_eq!(page.status, 200, "{path}?stato={state}");
        let page = office.get(&format!("{path}?stato=boh")).await;
        assert_eq!(page.status, 422, "{path}");
        assert!(page.body.contains("id=\"stato-error\""), "{path}");
        assert!(
            page.body.contains("Scegli uno degli stati dell"),
            "{path}: {}",
            page.body
        );
    }

    // Another brand's operator does not see visura's account.
    let lextel = app.back_office("lextel").await;
    let (lextel_office, _) = Session::signed_in_to(&app, "lextel", &lextel.email).await;
    let page = lextel_office
        .get(&format!("/backoffice/prepagati/{account}"))
        .await;
    assert_ne!(page.status, 200, "another brand's account");
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "50.00");
    let account = account_of(&app, &customer.user_id);
    let (office, _) = Session::signed_in(&app, &operator.email).await;
    let audited = audit_rows(&app);

    let adjustment = [
        ("direction", "debit"),
        ("amount", "10"),
        ("reason", "prova senza token"),
    ];
    let path = format!("/backoffice/prepagati/{account}/rettifica");
    let page = office.post_raw(&path, &adjustment).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Operazione non consentita"));
    let mut wrong = vec![(
        "csrf_token",
        "0123456789abcdef0123456789abcdef0123456789abcdef",
    )];
    wrong.extend_from_slice(&adjustment);
    assert_eq!(office.post_raw(&path, &wrong).await.status, 403);

    // The other forms too, the import included (nothing read, nothing stored).
    assert_eq!(
        office
            .post_raw("/backoffice/email/x/riprova", &[])
            .await
            .status,
        403
    );
    assert_eq!(
        office
            .post_raw(
                "/backoffice/coupon",
                &[("coupon_id", "x"), ("reason", "senza token")]
            )
            .await
            .status,
        403
    );
    assert_eq!(
        office
            .post_raw(
                "/backoffice/pagamenti/x/rimborsa",
                &[("reason", "senza token")]
            )
            .await
            .status,
        403
    );
    let statement = camt053(8, &[Line::credit("12.00", "senza codice", &bank_ref())]);
    assert_eq!(office.import(None, &statement).await.status, 403);
    assert_eq!(
        office
            .import(Some("0123456789abcdef0123456789abcdef"), &statement)
            .await
            .status,
        403
    );

    let mut conn = app.pool.get().unwrap();
    let imported: i64 = statements::table.count().get_result(&mut conn).unwrap();
    assert_eq!(imported, 0, "no statement stored");
    let (balance, sum) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.to_string(), "50.00");
    assert_eq!(sum, balance);
    assert_eq!(audit_rows(&app), audited, "nothing audited: nothing done");
}

#[tokio::test]
async fn a_statement_imported_through_the_page_shows_its_outcomes() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let order = transfer_order(&app, &customer).await;
    let reference = order["transfer"]["reference"].as_str().unwrap().to_owned();
    let (office, _) = Session::signed_in(&app, &operator.email).await;

    let page = office.get("/backoffice/estratti").await;
    assert!(page.body.contains("enctype=\"multipart/form-data\""));
    assert!(page.body.contains(
        "<label for=\"file\">File dell'estratto conto (camt.053/camt.054 XML o CSV postale)</label>"
    ));
    assert_eq!(hidden(&page.body, "csrf_token"), office.csrf);

    let statement = camt053(
        8,
        &[
            Line::credit(PRICE, &reference, &bank_ref()),
            Line::credit("12.00", "rinnovo firma digitale", &bank_ref()),
        ],
    );
    let page = office.import(Some(&office.csrf), &statement).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h1>Estratto importato</h1>"));
    assert_eq!(text_of(&page.body, "count-entries"), "2");
    assert_eq!(text_of(&page.body, "count-new"), "2");
    assert_eq!(text_of(&page.body, "count-matched"), "1");
    assert_eq!(text_of(&page.body, "amount-matched"), "€ 31,72");
    assert_eq!(text_of(&page.body, "count-unmatched"), "1");
    assert_eq!(text_of(&page.body, "count-partial"), "0");
    assert_eq!(text_of(&page.body, "count-overpaid"), "0");
    assert_eq!(text_of(&page.body, "count-duplicate"), "0");
    let fulfilled: Value = app
        .get_json(
            &customer.token,
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(fulfilled["status"], "fulfilled");

    // The same file again changes nothing, and says so.
    let page = office.import(Some(&office.csrf), &statement).await;
    assert_eq!(page.status, 200);
    assert_eq!(text_of(&page.body, "count-already-imported"), "2");
    assert_eq!(text_of(&page.body, "count-new"), "0");
    assert!(page.body.contains("non conteneva movimenti nuovi"));

    // The import is listed, and its payments are in the queue.
    let page = office.get("/backoffice/estratti").await;
    assert!(page.body.contains("estratto.xml"));
    let page = office.get("/backoffice/pagamenti").await;
    assert!(page.body.contains("2 pagamenti"), "{}", page.body);
    let printed = order["transfer"]["reference_print"].as_str().unwrap();
    assert!(page.body.contains(printed), "{}", page.body);
    assert!(page.body.contains("€ 31,72"));
    let page = office
        .get(&format!("/backoffice/pagamenti?reference={reference}"))
        .await;
    assert!(page.body.contains("1 pagamento,"), "{}", page.body);
    // `rf`, the filter's name before it took the API's, still reads for bookmarks.
    let page = office
        .get(&format!("/backoffice/pagamenti?rf={reference}"))
        .await;
    assert!(page.body.contains("1 pagamento,"), "{}", page.body);
    let page = office.get("/backoffice/pagamenti?stato=unmatched").await;
    assert!(page.body.contains("1 pagamento,"), "{}", page.body);
    assert!(page.body.contains("senza codice RF"));
    let today = chrono::Utc::now().date_naive();
    let page = office
        .get(&format!("/backoffice/riepilogo?data={today}"))
        .await;
    assert_eq!(text_of(&page.body, "summary-matched-count"), "1");
    assert_eq!(text_of(&page.body, "summary-total-count"), "2");
    assert_eq!(text_of(&page.body, "summary-total-amount"), "€ 43,72");

    // A wrong file: a clear message next to the field, nothing stored.
    let before: i64 = statements::table
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    for bad in [
        "questo non è un estratto conto".to_owned(),
        statement.replace(
            "<Amt Ccy=\"EUR\">12.00</Amt>",
            "<Amt Ccy=\"EUR\">12.001</Amt>",
        ),
        String::new(),
    ] {
        let page = office.import(Some(&office.csrf), &bad).await;
        assert_eq!(page.status, 422, "{}", page.body);
        assert!(page.body.contains("id=\"file-error\""), "{}", page.body);
        let says = if bad.is_empty() {
            "Il file è vuoto"
        } else {
            "non è un estratto conto che rinnovo sa leggere"
        };
        assert!(page.body.contains(says), "{}", page.body);
        assert!(page
            .body
            .contains("aria-describedby=\"file-help file-error\""));
    }
    // Another bank account: refused whole.
    let foreign = camt053(8, &[Line::credit("5.00", "x", &bank_ref())])
        .replace(crate::statements::IBAN, "IT02L1234512345123456789012");
    let page = office.import(Some(&office.csrf), &foreign).await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("file o marchio sbagliato"),
        "{}",
        page.body
    );
    let after: i64 = statements::table
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn the_payments_queue_prints_rf_codes_in_groups_and_shortens_ids() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let order = transfer_order(&app, &customer).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let reference = order["transfer"]["reference"].as_str().unwrap().to_owned();
    let printed = order["transfer"]["reference_print"].as_str().unwrap();
    let (office, _) = Session::signed_in(&app, &operator.email).await;
    let statement = camt053(8, &[Line::credit(PRICE, &reference, &bank_ref())]);
    let page = office.import(Some(&office.csrf), &statement).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let payment_id: String = payments::table
        .select(payments::id)
        .first(&mut app.pool.get().unwrap())
        .unwrap();

    let page = office.get("/backoffice/pagamenti").await;
    // The back-office's wide layout, the site's name once in the title.
    assert!(page.body.contains("<body class=\"desk\">"), "{}", page.body);
    let title = &page.body[page.body.find("<title>").unwrap()..page.body.find("</title>").unwrap()];
    assert_eq!(title.matches(" · ").count(), 1, "{title}");
    // The RF code in its printed groups, on one line; not the compact form.
    assert!(
        page.body
            .contains(&format!("<td class=\"rf-code\">{printed}</td>")),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&format!(">{reference}<")));
    // The order id shortened, whole in its title; the detail link goes to the whole id.
    assert!(page.body.contains(&format!(
        "<span class=\"code id\" title=\"{order_id}\">{}</span>",
        &order_id[..8]
    )));
    assert!(!page.body.contains(&format!(">{order_id}<")));
    assert!(page.body.contains(&format!(
        "<td class=\"action\"><a href=\"/backoffice/pagamenti/{payment_id}\" title=\"{payment_id}\">Dettaglio"
    )));

    // The detail page keeps the whole order id and prints the code the same way.
    let page = office
        .get(&format!("/backoffice/pagamenti/{payment_id}"))
        .await;
    assert_eq!(text_of(&page.body, "ordine"), order_id);
    assert!(page
        .body
        .contains(&format!("<dd class=\"rf-code\">{printed}</dd>")));

    // The orders page too: printed code, shortened id.
    let page = office.get("/backoffice/ordini").await;
    assert!(page
        .body
        .contains(&format!("<td class=\"rf-code\">{printed}</td>")));
    assert!(page.body.contains(&format!(
        "<span class=\"code id\" title=\"{order_id}\">{}</span>",
        &order_id[..8]
    )));
}

#[tokio::test]
async fn an_unmatched_payment_is_matched_and_another_refunded_through_the_page() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let order = transfer_order(&app, &customer).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let (office, _) = Session::signed_in(&app, &operator.email).await;
    let statement = camt053(
        8,
        &[
            Line::credit(PRICE, "bonifico per rinnovo", &bank_ref()),
            Line::credit("7.00", "boh", &bank_ref()),
        ],
    );
    let page = office.import(Some(&office.csrf), &statement).await;
    assert_eq!(text_of(&page.body, "count-unmatched"), "2");
    let queue = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/payments?status=unmatched",
        )
        .await;
    let id_of = |amount: &str| {
        queue["payments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["amount"] == amount)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (to_match, to_refund) = (id_of(PRICE), id_of("7.00"));

    let page = office
        .get(&format!("/backoffice/pagamenti/{to_match}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<label for=\"order_id\">"));
    assert!(page.body.contains("<label for=\"refund-reason\">"));

    // Field errors first: nothing changes.
    let page = office
        .post(
            &format!("/backoffice/pagamenti/{to_match}/abbina"),
            &[("order_id", ""), ("reason", "x")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"order_id-error\""));
    assert!(page.body.contains("id=\"match-reason-error\""));
    let page = office
        .post(
            &format!("/backoffice/pagamenti/{to_match}/abbina"),
            &[("order_id", "nessun-ordine"), ("reason", "pagato senza RF")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Nessun ordine del tuo marchio"));
    assert_eq!(payment_status(&app, &to_match), "unmatched");

    let page = office
        .post(
            &format!("/backoffice/pagamenti/{to_match}/abbina"),
            &[("order_id", &order_id), ("reason", "pagato senza RF")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.unwrap(),
        format!("/backoffice/pagamenti/{to_match}?fatto=abbinato")
    );
    assert_eq!(payment_status(&app, &to_match), "matched");
    let page = office
        .get(&format!("/backoffice/pagamenti/{to_match}?fatto=abbinato"))
        .await;
    assert!(page.body.contains("Pagamento abbinato."));
    assert_eq!(text_of(&page.body, "ordine"), order_id);
    let fulfilled: Value = app
        .get_json(&customer.token, &format!("/api/v1/orders/{order_id}"))
        .await;
    assert_eq!(fulfilled["status"], "fulfilled");

    // Matching it again: the domain refuses, the page says why.
    let page = office
        .post(
            &format!("/backoffice/pagamenti/{to_match}/abbina"),
            &[("order_id", &order_id), ("reason", "di nuovo")],
        )
        .await;
    assert_eq!(page.status, 409);
    assert!(
        page.body.contains("questo pagamento è abbinato"),
        "{}",
        page.body
    );

    // The refund needs a reason.
    let path = format!("/backoffice/pagamenti/{to_refund}/rimborsa");
    let page = office.post(&path, &[("reason", "")]).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"refund-reason-error\""));
    let page = office
        .post(&path, &[("reason", "restituito all'ordinante")])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.unwrap(),
        format!("/backoffice/pagamenti/{to_refund}?fatto=rimborsato")
    );
    assert_eq!(payment_status(&app, &to_refund), "refunded");

    // Another brand's operator cannot see either.
    let lextel = app.back_office("lextel").await;
    let (lextel_office, _) = Session::signed_in_to(&app, "lextel", &lextel.email).await;
    let page = lextel_office
        .get(&format!("/backoffice/pagamenti/{to_refund}"))
        .await;
    assert_eq!(page.status, 404);
}

/// A link as the page writes it (handlebars escapes `&` and `=`), as a browser follows it.
fn href_of(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = body[..at].rfind("href=\"").unwrap() + 6;
    let end = start + body[start..].find('"').unwrap();
    body[start..end]
        .replace("&amp;", "&")
        .replace("&#x3D;", "=")
}

/// A payment that came without its RF code: from its page the operator looks the order up
/// by what the customer quotes (email, RF code), picks it, and the match form has it.
#[tokio::test]
async fn an_operator_finds_the_order_of_a_payment_without_rf_code_and_matches_it() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let order = transfer_order(&app, &customer).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let other = transfer_order(&app, &app.customer("visura").await).await;
    let (office, _) = Session::signed_in(&app, &operator.email).await;
    let statement = camt053(
        8,
        &[Line::credit(PRICE, "rinnovo firma studio", &bank_ref())],
    );
    office.import(Some(&office.csrf), &statement).await;
    let payment_id = app
        .get_json(
            &operator.token,
            "/api/v1/backoffice/payments?status=unmatched",
        )
        .await["payments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let page = office
        .get(&format!("/backoffice/pagamenti/{payment_id}"))
        .await;
    let search = href_of(&page.body, "cerca-ordine");
    assert!(
        search.starts_with(&format!("/backoffice/ordini?pagamento={payment_id}")),
        "{search}"
    );
    // Without an RF code on the payment, the page lists the newest orders.
    let page = office.get(&search).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&format!("id=\"ordine-{order_id}\"")));
    assert!(page
        .body
        .contains(&format!("id=\"ordine-{}\"", other["id"].as_str().unwrap())));

    // The customer quotes their email (any case): their order only.
    let by_email = format!(
        "/backoffice/ordini?pagamento={payment_id}&cerca={}",
        customer.email.to_uppercase()
    );
    let page = office.get(&by_email).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("id=\"ordine-{order_id}\"")));
    assert!(!page
        .body
        .contains(&format!("id=\"ordine-{}\"", other["id"].as_str().unwrap())));
    assert!(page.body.contains("1 ordine trovato"), "{}", page.body);
    // Or the RF code from the slip, in its printed groups.
    let printed = order["transfer"]["reference_print"].as_str().unwrap();
    let page = office
        .get(&format!(
            "/backoffice/ordini?cerca={}",
            printed.replace(' ', "+")
        ))
        .await;
    assert!(page.body.contains(&format!("id=\"ordine-{order_id}\"")));
    assert!(
        !page.body.contains("Abbina"),
        "no payment in hand, no match link"
    );
    let page = office.get("/backoffice/ordini?cerca=VIS2020-999999").await;
    assert!(page.body.contains("Nessun ordine del marchio corrisponde"));
    let page = office.get("/backoffice/ordini?stato=boh").await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"stato-error\""));

    // Picking it fills the match form; matching fulfils the order.
    let page = office.get(&by_email).await;
    let link = format!("/backoffice/pagamenti/{payment_id}?ordine={order_id}");
    assert!(
        page.body
            .replace("&#x3D;", "=")
            .contains(&format!("href=\"{link}\"")),
        "{}",
        page.body
    );
    let page = office.get(&link).await;
    assert!(
        page.body.contains(&format!(
            "name=\"order_id\" type=\"text\" value=\"{order_id}\""
        )),
        "{}",
        page.body
    );
    let page = office
        .post(
            &format!("/backoffice/pagamenti/{payment_id}/abbina"),
            &[
                ("order_id", &order_id),
                ("reason", "causale senza RF, cliente al telefono"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(payment_status(&app, &payment_id), "matched");

    // Another brand's operator finds none of visura's orders.
    let lextel = app.back_office("lextel").await;
    let (lextel_office, _) = Session::signed_in_to(&app, "lextel", &lextel.email).await;
    let page = lextel_office
        .get(&format!("/backoffice/ordini?cerca={}", customer.email))
        .await;
    assert!(!page.body.contains(&order_id));
}

#[tokio::test]
async fn a_prepaid_adjustment_through_the_page_moves_the_balance() {
    let app = spawn_app().await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    let account = account_of(&app, &customer.user_id);
    let (office, _) = Session::signed_in(&app, &operator.email).await;

    let page = office
        .get(&format!("/backoffice/prepagati?email={}", customer.email))
        .await;
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains(&format!("href=\"/backoffice/prepagati/{account}\"")));
    let page = office
        .get("/backoffice/prepagati?email=non-una-email")
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"email-error\""));

    let page = office
        .get(&format!("/backoffice/prepagati/{account}"))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(text_of(&page.body, "saldo"), "€ 0,00");
    for label in ["direction-credit", "direction-debit", "amount", "reason"] {
        assert!(
            page.body.contains(&format!("<label for=\"{label}\">")),
            "{label}"
        );
    }

    let path = format!("/backoffice/prepagati/{account}/rettifica");
    let page = office
        .post(
            &path,
            &[
                ("direction", "credit"),
                ("amount", "1.464,50"),
                ("reason", "bonifico arrivato senza RF"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.unwrap(),
        format!("/backoffice/prepagati/{account}?fatto=rettificato")
    );
    let (balance, sum) = app.prepaid_balance_and_ledger_sum(&customer.user_id);
    assert_eq!(balance.to_string(), "1464.50");
    assert_eq!(sum, balance);
    let page = office
        .get(&format!(
            "/backoffice/prepagati/{account}?fatto=rettificato"
        ))
        .await;
    assert_eq!(text_of(&page.body, "saldo"), "€ 1.464,50");
    assert!(page.body.contains("Rettifica registrata."));
    assert!(page.body.contains("bonifico arrivato senza RF"));

    // Refused inputs and an overdraft: told next to the field, the balance unchanged.
    let page = office
        .post(
            &path,
            &[("direction", ""), ("amount", "dieci"), ("reason", "")],
        )
        .await;
    assert_eq!(page.status, 422);
    for id in ["direction-error", "amount-error", "reason-error"] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let page = office
        .post(
            &path,
            &[
                ("direction", "debit"),
                ("amount", "2000"),
                ("reason", "troppo"),
            ],
        )
        .await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("id=\"amount-error\""));
    assert!(page.body.contains("€ 1.464,50"));
    let entries: i64 = prepaid_entries::table
        .filter(prepaid_entries::account_id.eq(&account))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(entries, 1);
    assert_eq!(
        app.prepaid_balance_and_ledger_sum(&customer.user_id)
            .0
            .to_string(),
        "1464.50"
    );
}

#[tokio::test]
async fn a_coupon_is_voided_through_the_page_and_refunded() {
    let (sink, port) = crate::smtp::SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, PRICE);
    let response = app
        .order(
            &customer.token,
            json!([{ "product": PRODUCT, "quantity": 1 }]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let coupon_id: String = coupons::table
        .select(coupons::id)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(
        app.prepaid_balance_and_ledger_sum(&customer.user_id)
            .0
            .to_string(),
        "0.00"
    );
    // The customer quotes the code from the email; the operator types it (any case).
    let code = sink
        .wait_for(2, Duration::from_secs(20))
        .await
        .iter()
        .flat_map(|m| crate::smtp::coupon_codes(&crate::smtp::decoded(m)))
        .next()
        .expect("the coupon email");
    let (office, _) = Session::signed_in(&app, &operator.email).await;

    let typo = format!(
        "{}{}",
        &code[..code.len() - 1],
        if code.ends_with('A') { 'B' } else { 'A' }
    );
    for (typed, message) in [
        ("nessuno", "Il codice non è valido"),
        (typo.as_str(), "Il codice non è valido"),
        (
            "0193b5c0-0000-7000-8000-000000000000",
            "Nessun coupon ha questo codice",
        ),
    ] {
        let page = office
            .post(
                "/backoffice/coupon",
                &[("coupon_id", typed), ("reason", "errore")],
            )
            .await;
        assert_eq!(page.status, 422, "{typed}");
        assert!(page.body.contains("id=\"coupon_id-error\""), "{typed}");
        assert!(page.body.contains(message), "{typed}: {}", page.body);
    }

    let page = office
        .post(
            "/backoffice/coupon",
            &[
                ("coupon_id", &code.to_lowercase()),
                ("reason", "acquistato per errore"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(text_of(&page.body, "coupon-annullato"), code.to_uppercase());
    assert_eq!(text_of(&page.body, "rimborso"), "€ 31,72");
    assert_eq!(
        app.prepaid_balance_and_ledger_sum(&customer.user_id)
            .0
            .to_string(),
        PRICE
    );

    // Sent again by its id (the API's and the audit log's): refused, nothing refunded twice.
    let page = office
        .post(
            "/backoffice/coupon",
            &[
                ("coupon_id", &coupon_id),
                ("reason", "acquistato per errore"),
            ],
        )
        .await;
    assert_eq!(page.status, 409);
    assert!(
        page.body.contains("questo risulta annullato"),
        "{}",
        page.body
    );
    assert_eq!(
        app.prepaid_balance_and_ledger_sum(&customer.user_id)
            .0
            .to_string(),
        PRICE
    );
}

#[tokio::test]
async fn a_dead_email_is_retried_through_the_page() {
    // Nobody listens on the SMTP port: with one attempt, the emails die at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with_smtp(port, &[("RINNOVO_MAIL_MAX_ATTEMPTS", "1".into())]).await;
    let operator = app.back_office("visura").await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, PRICE);
    app.order(
        &customer.token,
        json!([{ "product": PRODUCT, "quantity": 1 }]),
    )
    .await;
    let (office, _) = Session::signed_in(&app, &operator.email).await;
    let mut dead = Vec::new();
    for _ in 0..100 {
        let body = app
            .get_json(&operator.token, "/api/v1/backoffice/emails?status=dead")
            .await;
        dead = body["emails"].as_array().unwrap().clone();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = dead.first().expect("a dead email")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = office.get("/backoffice/email").await;
    assert!(page
        .body
        .contains(&format!("action=\"/backoffice/email/{id}/riprova\"")));
    assert!(page.body.contains(&customer.email));

    // Another brand's operator cannot retry it.
    let lextel = app.back_office("lextel").await;
    let (lextel_office, _) = Session::signed_in_to(&app, "lextel", &lextel.email).await;
    let page = lextel_office
        .post(&format!("/backoffice/email/{id}/riprova"), &[])
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("id=\"form-error\""));
    assert!(page
        .body
        .contains("non è più tra quelle non consegnate del tuo marchio"));

    // The 303 says the email was dead and is back in the queue (it may die again at
    // once here, where nobody listens).
    let page = office
        .post(&format!("/backoffice/email/{id}/riprova"), &[])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.unwrap(), "/backoffice/email?fatto=riprova");
    let page = office.get("/backoffice/email?fatto=riprova").await;
    assert!(page.body.contains("di nuovo in coda"));
}
