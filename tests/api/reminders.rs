//! Renewal reminders at 90, 30 and 7 days before expiry, once each.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use rinnovo::db::schema::{certificates, devices, emails, holders};
use rinnovo::renewals::reminders;
use serde_json::Value;

use crate::helpers::spawn_app_with;

fn reminders_for(app: &crate::helpers::TestApp, device: &str) -> Vec<Value> {
    let mut conn = app.pool.get().unwrap();
    emails::table
        .filter(emails::kind.eq("renewal_reminder"))
        .filter(emails::reference.eq(device))
        .order(emails::created_at.asc())
        .select(emails::context)
        .load::<String>(&mut conn)
        .unwrap()
        .iter()
        .map(|c| serde_json::from_str(c).unwrap())
        .collect()
}

#[tokio::test]
async fn each_threshold_is_reminded_once_with_what_to_buy() {
    // The worker stays out of the way: the test drives `send_due` with its own clock.
    let app = spawn_app_with(
        rinnovo::startup::StartOptions { demo: true },
        &[("RINNOVO_RUN_WORKERS", "false".into())],
    )
    .await;
    let mut conn = app.pool.get().unwrap();
    let policy = rinnovo::renewals::RenewalPolicy::default();
    let now = Utc::now();
    // Mario Rossi's Visura card: both certificates expire in 45 days (demo data).
    let card = "1205100000";
    assert!(reminders::send_due(&mut conn, &policy, now).unwrap() >= 1);
    let sent = reminders_for(&app, card);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["days"], 90);
    assert_eq!(sent[0]["certificates"].as_array().unwrap().len(), 2);
    let to_buy: Vec<&str> = sent[0]["to_buy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        to_buy,
        ["RIN-FIRMA", "RIN-CNS"],
        "the cheapest cover, as the shop proposes"
    );
    // The strict templates render it (a missing value would fail here, not in an inbox),
    // with the address of the site that the dispatcher adds to every email.
    let mut context = sent[0].clone();
    context["public_url"] = "https://rinnovo.example".into();
    let rendered = rinnovo::mail::templates::render("renewal_reminder", &context).unwrap();
    // The shop, and the renewal instructions.
    for path in ["/negozio\n", "/negozio/come-rinnovare"] {
        let link = format!("https://rinnovo.example{path}");
        assert!(rendered.text.contains(&link), "{link}: {}", rendered.text);
    }
    assert!(rendered
        .html
        .contains("href=\"https://rinnovo.example/negozio/come-rinnovare\""));
    assert!(
        rendered.subject.contains("90 giorni"),
        "{}",
        rendered.subject
    );
    assert!(rendered.text.contains("RIN-FIRMA"), "{}", rendered.text);

    // Again at once, and twice at the same time from two workers: nothing new.
    assert_eq!(reminders::send_due(&mut conn, &policy, now).unwrap(), 0);
    let later = now + Duration::days(16); // 29 days left: the 30-day reminder
    let (a, b) = std::thread::scope(|scope| {
        let one = scope
            .spawn(|| reminders::send_due(&mut app.pool.get().unwrap(), &policy, later).unwrap());
        let two = scope
            .spawn(|| reminders::send_due(&mut app.pool.get().unwrap(), &policy, later).unwrap());
        (one.join().unwrap(), two.join().unwrap())
    });
    assert!(a + b >= 1);
    let sent = reminders_for(&app, card);
    assert_eq!(
        sent.len(),
        2,
        "the 30-day reminder once, whatever the workers"
    );
    assert_eq!(sent[1]["days"], 30);

    // A holder without an email address hears nothing; expired certificates neither.
    diesel::update(holders::table.filter(holders::codice_fiscale.eq("RSSMRA80A01H501U")))
        .set(holders::email.eq(None::<String>))
        .execute(&mut conn)
        .unwrap();
    let last = now + Duration::days(40);
    reminders::send_due(&mut conn, &policy, last).unwrap();
    assert_eq!(reminders_for(&app, card).len(), 2);
    let gone = now + Duration::days(46);
    reminders::send_due(&mut conn, &policy, gone).unwrap();
    let expired_card: i64 = certificates::table
        .inner_join(devices::table)
        .filter(devices::serial_number.eq(card))
        .filter(certificates::not_after.lt(gone.naive_utc()))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(expired_card, 2);
    let after: i64 = emails::table
        .filter(emails::reference.eq(card))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(after, 2);
}
