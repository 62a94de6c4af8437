//! Renewal reminders at 90, 30 and 7 days before expiry, once each.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use rinnovo::db::schema::{certificates, devices, emails, holders, renewal_reminders};
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
    let rendered = rinnovo::mail::templates::render(
        rinnovo::mail::templates::EmailKind::RenewalReminder,
        &context,
    )
    .unwrap();
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
    crate::smtp::assert_email_text_snapshot("renewal_reminder", &rendered.text);

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

/// A valid codice fiscale, a different one for each `n` below 28.
fn codice_fiscale(n: u32) -> String {
    let mut code = format!("TSTHLD80A{:02}H501", n % 28 + 1).into_bytes();
    code.push(rinnovo::registry::codice_fiscale::check_character(&code));
    String::from_utf8(code).unwrap()
}

/// Registers a holder with one Visura card whose two certificates expire in 20 days (the
/// 30-day reminder is due), with `email` as the holder's address; returns the card's
/// serial number.
fn holder_due_a_reminder(app: &crate::helpers::TestApp, n: u32, email: Option<&str>) -> String {
    let holder = app.add_holder(&codice_fiscale(n), "Prova", &format!("Titolare{n}"));
    app.set_holder_email(&holder, email);
    let serial = format!("99000{n:05}");
    let device = app.add_device(&holder, &serial);
    let expiry = Utc::now() + Duration::days(20);
    for kind in ["signature", "authentication"] {
        app.add_certificate(&device, kind, expiry, "active");
    }
    serial
}

fn reminder_recipients(app: &crate::helpers::TestApp) -> Vec<(String, String)> {
    emails::table
        .filter(emails::kind.eq("renewal_reminder"))
        .order(emails::reference)
        .select((emails::reference.assume_not_null(), emails::recipient))
        .load(&mut app.pool.get().unwrap())
        .unwrap()
}

#[tokio::test]
async fn the_worker_reminds_holders_with_an_address_and_queues_nothing_for_the_others() {
    // The worker as `serve` runs it, looking every second, one device per batch.
    let app = spawn_app_with(
        rinnovo::startup::StartOptions::default(),
        &[
            ("RINNOVO_REMINDER_INTERVAL_SECS", "1".into()),
            ("RINNOVO_REMINDER_BATCH_SIZE", "1".into()),
            ("RINNOVO_WORKER_PAUSE_MS", "10".into()),
        ],
    )
    .await;
    let without_address = holder_due_a_reminder(&app, 0, None);
    let empty_address = holder_due_a_reminder(&app, 1, Some(""));
    let with_address: Vec<String> = (2..5)
        .map(|n| holder_due_a_reminder(&app, n, Some(&format!("titolare{n}@example.it"))))
        .collect();

    let mut queued = Vec::new();
    for _ in 0..100 {
        queued = reminder_recipients(&app);
        if queued.len() >= with_address.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Two more rounds: whatever the worker would queue for the others, it has by now.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let expected: Vec<(String, String)> = (2..5)
        .zip(&with_address)
        .map(|(n, serial)| (serial.clone(), format!("titolare{n}@example.it")))
        .collect();
    assert_eq!(
        reminder_recipients(&app),
        expected,
        "first seen: {queued:?}"
    );
    // Not even recorded as handled: a holder who gains an address later is reminded.
    let recorded: i64 = renewal_reminders::table
        .inner_join(certificates::table.inner_join(devices::table))
        .filter(devices::serial_number.eq_any([&without_address, &empty_address]))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(recorded, 0);
}

#[tokio::test]
async fn a_batch_handles_at_most_its_bound_of_devices_that_owe_a_reminder() {
    let app = spawn_app_with(
        rinnovo::startup::StartOptions::default(),
        &[("RINNOVO_RUN_WORKERS", "false".into())],
    )
    .await;
    let mut conn = app.pool.get().unwrap();
    let policy = rinnovo::renewals::RenewalPolicy::default();
    // Registered first, so they come first by id: a batch must not spend its bound on
    // them.
    holder_due_a_reminder(&app, 0, None);
    holder_due_a_reminder(&app, 1, Some(""));
    for n in 2..7 {
        holder_due_a_reminder(&app, n, Some(&format!("titolare{n}@example.it")));
    }
    let now = Utc::now();

    let first = reminders::send_batch(&mut conn, &policy, now, None, 2).unwrap();
    assert_eq!(first.queued, 2, "{first:?}");
    assert_eq!(reminder_recipients(&app).len(), 2);
    let second = reminders::send_batch(&mut conn, &policy, now, first.next.as_deref(), 2).unwrap();
    assert_eq!(second.queued, 2, "{second:?}");
    let third = reminders::send_batch(&mut conn, &policy, now, second.next.as_deref(), 2).unwrap();
    assert_eq!(
        third,
        reminders::Batch {
            queued: 1,
            next: None
        }
    );
    let recipients = reminder_recipients(&app);
    assert_eq!(recipients.len(), 5, "each device once: {recipients:?}");

    // Nothing owed any more: the next round finds no device at all, rather than paging
    // through the ones already reminded.
    let again = reminders::send_batch(&mut conn, &policy, now, None, 1).unwrap();
    assert_eq!(again, reminders::Batch::default());
    assert_eq!(reminder_recipients(&app).len(), 5);
}
