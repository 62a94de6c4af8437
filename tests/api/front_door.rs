//! What a newcomer meets first: the bare address leads to the shop, every page points to
//! the renewal instructions and the coupon check, and the coupon email links the pages a
//! person uses rather than the JSON API.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with_smtp};
use crate::smtp::{coupon_codes, decoded, SmtpSink};
use crate::web_client::Browser;

/// The text of the page's `<title>`.
fn title_of(body: &str) -> &str {
    let start = body.find("<title>").expect("a title") + "<title>".len();
    let end = body[start..].find("</title>").unwrap();
    &body[start..start + end]
}

#[tokio::test]
async fn the_bare_address_leads_to_the_shop() {
    let app = spawn_app().await;
    let visitor = Browser::anonymous(&app, "visura").await;
    let page = visitor.get("/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/negozio"));
    let page = visitor.get("/negozio").await;
    assert_eq!(page.status, 200);
}

#[tokio::test]
async fn every_page_links_the_renewal_instructions_and_the_coupon_check() {
    let app = spawn_app().await;
    let customer = app.customer("visura").await;
    let visitor = Browser::anonymous(&app, "visura").await;
    let (buyer, _) = Browser::signed_in(&app, &customer.email).await;
    for (who, path) in [
        (&visitor, "/negozio"),
        (&visitor, "/negozio/visura/accedi"),
        (&buyer, "/negozio/profilo"),
    ] {
        let page = who.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        for link in [
            "href=\"/negozio/come-rinnovare\"",
            "href=\"/negozio/verifica-coupon\"",
        ] {
            assert!(page.body.contains(link), "{path} links {link}");
        }
    }

    let page = visitor.get("/negozio/come-rinnovare").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1>Come rinnovare i certificati</h1>"));
    assert!(page.body.contains("Completa il rinnovo"));
    // The window the page states is the lookup's rule.
    let window = format!("ultimi {} giorni", rinnovo::lookup::RENEWAL_WINDOW_DAYS);
    assert!(page.body.contains(&window), "{}", page.body);
}

#[tokio::test]
async fn page_titles_name_the_site_once() {
    let app = spawn_app().await;
    let visitor = Browser::anonymous(&app, "visura").await;
    let page = visitor.get("/negozio").await;
    assert_eq!(title_of(&page.body), "Rinnovo firma digitale");
    for path in ["/negozio/come-rinnovare", "/negozio/verifica-coupon"] {
        let page = visitor.get(path).await;
        let title = title_of(&page.body);
        assert_eq!(
            title.matches("Rinnovo firma digitale").count(),
            1,
            "{path}: {title}"
        );
    }
}

#[tokio::test]
async fn the_coupon_email_links_the_check_page_with_the_code_and_the_instructions() {
    let (sink, port) = SmtpSink::start(0).await;
    let app = spawn_app_with_smtp(port, &[]).await;
    let customer = app.customer("visura").await;
    app.credit(&customer.user_id, "40.00");
    let response = app
        .order(
            &customer.token,
            json!([{ "product": "RIN-FIRMA-CNS", "quantity": 1 }]),
        )
        .await;
    assert_eq!(response.status(), 201);

    let messages = sink.wait_for(2, Duration::from_secs(20)).await;
    let delivery = messages
        .iter()
        .map(|m| decoded(m))
        .find(|m| m.contains("i tuoi coupon"))
        .expect("coupon email");
    assert!(!delivery.contains("/api/"), "{delivery}");
    assert!(!delivery.contains("&lt;codice&gt;") && !delivery.contains("<codice>"));
    assert!(delivery.contains("/negozio/come-rinnovare"), "{delivery}");
    let code = coupon_codes(&delivery).remove(0);
    let check = format!("/negozio/verifica-coupon?codice={code}");
    assert!(delivery.contains(&check), "{delivery}");

    // The link opens the check page with the code filled in and its status.
    let visitor = Browser::anonymous(&app, "visura").await;
    let page = visitor.get(&check).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&format!("value=\"{code}\"")));
    assert!(page.body.contains("disponibile"), "{}", page.body);
}
