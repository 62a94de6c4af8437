//! The issuance batch against the real database: workers racing over one queue, a dead
//! worker's lease taken over, a revoked certificate rejected, a failing CA given up on.
//! Renewals are queued through the domain function (CSRs made in-process), so a test can
//! queue dozens quickly; the HTTP path is covered in `renewals.rs`.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use rinnovo::ca::{CaError, CertificateAuthority, EmbeddedCa, Issued, Profile, Subject};
use rinnovo::coupons::{CouponCode, CouponKey, COUPON_KEY_FILE};
use rinnovo::db::schema::{certificates, emails, holders, renewals};
use rinnovo::renewals::issuance::{run_batch, BatchReport, IssuanceSettings};
use rinnovo::renewals::request::{request, RenewalItem};
use rinnovo::renewals::{csr, RenewalPolicy};

use crate::agent::{ca, enroll};
use crate::helpers::TestApp;
use crate::renewals::{app_with_sink, buy, coupon_status, wait_for_email};
use crate::smtp::assert_email_snapshot;

/// The embedded CA, counting what it is asked to sign; down for one profile if told.
struct CountingCa {
    inner: EmbeddedCa,
    keys: Mutex<Vec<Vec<u8>>>,
    down_for: Option<Profile>,
}

impl CountingCa {
    fn new(inner: EmbeddedCa) -> Self {
        Self {
            inner,
            keys: Mutex::new(Vec::new()),
            down_for: None,
        }
    }
}

impl CertificateAuthority for CountingCa {
    fn issue(
        &self,
        subject: &Subject,
        public_key: &[u8],
        profile: Profile,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<Issued, CaError> {
        if self.down_for == Some(profile) {
            return Err(CaError::Signing("the HSM does not answer".into()));
        }
        self.keys.lock().unwrap().push(public_key.to_vec());
        self.inner
            .issue(subject, public_key, profile, not_before, not_after)
    }
    fn chain_pem(&self) -> String {
        self.inner.chain_pem()
    }
    fn issuer_name(&self) -> String {
        self.inner.issuer_name()
    }
    fn issuing_certificate_der(&self) -> Vec<u8> {
        self.inner.issuing_certificate_der()
    }
}

/// A CA that is down.
struct FailingCa;

impl CertificateAuthority for FailingCa {
    fn issue(
        &self,
        _: &Subject,
        _: &[u8],
        _: Profile,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Issued, CaError> {
        Err(CaError::Signing("the HSM does not answer".into()))
    }
    fn chain_pem(&self) -> String {
        String::new()
    }
    fn issuer_name(&self) -> String {
        String::new()
    }
    fn issuing_certificate_der(&self) -> Vec<u8> {
        Vec::new()
    }
}

/// A CSR for the demo holder, with a fresh P-256 key, made in-process.
fn holder_csr() -> csr::CheckedCsr {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    for (oid, value) in [
        (vec![2, 5, 4, 6], "IT"),
        (vec![2, 5, 4, 4], "BIANCHI"),
        (vec![2, 5, 4, 42], "LAURA"),
        (vec![2, 5, 4, 5], "TINIT-BNCLRA85T52F205E"),
        (vec![2, 5, 4, 3], "BIANCHI LAURA"),
    ] {
        name.push(rcgen::DnType::CustomDnType(oid), value);
    }
    params.distinguished_name = name;
    csr::check(&params.serialize_request(&key).unwrap().pem().unwrap()).unwrap()
}

/// `count` devices, each with its signature certificate's renewal queued with a coupon
/// of its own. Returns (renewal id, coupon code).
pub(crate) async fn queue(
    app: &TestApp,
    sink: &crate::smtp::SmtpSink,
    count: u32,
) -> Vec<(String, String)> {
    let codes = buy(app, sink, "visura", "RIN-FIRMA", count).await;
    let key = CouponKey::new(
        rinnovo::secrets::load_or_create(None, app.database.dir.path(), COUPON_KEY_FILE).unwrap(),
    );
    let mut queued = Vec::new();
    for (n, code) in codes.into_iter().enumerate() {
        let device = enroll(app, &format!("card-{n}"));
        let mut conn = app.pool.get().unwrap();
        let certificate_id: String = certificates::table
            .filter(certificates::device_id.eq(&device.enrolled.device_id))
            .filter(certificates::kind.eq("signature"))
            .select(certificates::id)
            .first(&mut conn)
            .unwrap();
        let item = RenewalItem {
            certificate_id,
            csr: holder_csr(),
            coupon: CouponCode::parse(&code).unwrap(),
        };
        let done = request(
            &mut conn,
            &key,
            &RenewalPolicy::default(),
            &device.enrolled.device_id,
            "visura",
            &[item],
            Utc::now(),
        )
        .unwrap();
        queued.push((done[0].id.clone(), code));
    }
    queued
}

fn status_of(app: &TestApp, renewal_id: &str) -> String {
    renewals::table
        .filter(renewals::id.eq(renewal_id))
        .select(renewals::status)
        .first(&mut app.pool.get().unwrap())
        .unwrap()
}

/// The recipients of the "ready to install" emails queued for the renewal.
fn ready_emails(app: &TestApp, renewal_id: &str) -> Vec<String> {
    emails::table
        .filter(emails::kind.eq("renewal_ready"))
        .filter(emails::reference.eq(renewal_id))
        .select(emails::recipient)
        .load(&mut app.pool.get().unwrap())
        .unwrap()
}

fn settings(batch_size: i64) -> IssuanceSettings {
    IssuanceSettings {
        batch_size,
        signers: 1,
        ..IssuanceSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_racing_over_one_queue_issue_each_renewal_once() {
    let (app, sink) = app_with_sink(&[]).await;
    let queued = queue(&app, &sink, 24).await;
    let ca = CountingCa::new(ca(&app));
    // Small batches, so the two workers claim many times each and keep colliding.
    let reports: Vec<Vec<BatchReport>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (pool, ca) = (app.pool.clone(), &ca);
                scope.spawn(move || {
                    let mut conn = pool.get().unwrap();
                    let mut reports = Vec::new();
                    loop {
                        let report = run_batch(&mut conn, ca, &settings(2), Utc::now()).unwrap();
                        if report.claimed == 0 {
                            return reports;
                        }
                        reports.push(report);
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let issued: usize = reports.iter().flatten().map(|r| r.issued).sum();
    let claimed: usize = reports.iter().flatten().map(|r| r.claimed).sum();
    assert_eq!(issued, 24);
    assert_eq!(claimed, 24, "no renewal claimed twice");
    let keys = ca.keys.lock().unwrap();
    assert_eq!(keys.len(), 24, "the CA signed each renewal once");
    let mut distinct = keys.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 24);
    for (renewal, _) in &queued {
        assert_eq!(status_of(&app, renewal), "issued");
    }
    let serials: Vec<Option<String>> = renewals::table
        .select(renewals::issued_serial_number)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    let mut distinct: Vec<_> = serials.iter().flatten().collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 24);
    // The holder hears once per issued renewal that the certificate is ready to install.
    let holder_email: Option<String> = holders::table
        .filter(holders::codice_fiscale.eq(crate::agent::HOLDER))
        .select(holders::email)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    for (renewal, _) in &queued {
        let sent = ready_emails(&app, renewal);
        assert_eq!(sent.len(), 1, "{renewal}: {sent:?}");
        if let Some(address) = &holder_email {
            assert_eq!(&sent[0], address);
        }
    }
}

#[tokio::test]
async fn a_dead_workers_renewal_is_taken_over_when_its_lease_runs_out() {
    let (app, sink) = app_with_sink(&[]).await;
    let queued = queue(&app, &sink, 2).await;
    let (dead, alive) = (&queued[0].0, &queued[1].0);
    // One renewal claimed by a worker killed mid-batch (lease over), one by a worker
    // still at it (lease running).
    let mut conn = app.pool.get().unwrap();
    for (id, lease_end) in [
        (dead, Utc::now() - Duration::seconds(1)),
        (alive, Utc::now() + Duration::minutes(5)),
    ] {
        diesel::update(renewals::table.filter(renewals::id.eq(id)))
            .set((
                renewals::status.eq("issuing"),
                renewals::claimed_until.eq(lease_end.naive_utc()),
                renewals::claim_token.eq("another-worker"),
                renewals::attempts.eq(1),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let report = run_batch(&mut conn, &ca(&app), &settings(10), Utc::now()).unwrap();
    assert_eq!(report.claimed, 1);
    assert_eq!(report.issued, 1);
    assert_eq!(status_of(&app, dead), "issued");
    assert_eq!(
        status_of(&app, alive),
        "issuing",
        "a live lease is respected"
    );
    // The one issued is told, once; the one still being issued is not yet.
    assert_eq!(ready_emails(&app, dead).len(), 1);
    assert!(ready_emails(&app, alive).is_empty());
    let again = run_batch(&mut conn, &ca(&app), &settings(10), Utc::now()).unwrap();
    assert_eq!(again.issued, 0);
    assert_eq!(ready_emails(&app, dead).len(), 1, "never twice");
    let delivered = crate::renewals::wait_for_email(&sink, "pronto da installare", 1).await;
    assert_email_snapshot("renewal_ready", &delivered[0]);
}

#[tokio::test]
async fn a_renewal_of_a_certificate_revoked_meanwhile_is_rejected_and_frees_its_coupon() {
    let (app, sink) = app_with_sink(&[]).await;
    let queued = queue(&app, &sink, 1).await;
    let (renewal, code) = &queued[0];
    assert_eq!(coupon_status(&app, code).await, "reserved");
    let mut conn = app.pool.get().unwrap();
    let certificate_id: String = renewals::table
        .filter(renewals::id.eq(renewal))
        .select(renewals::certificate_id)
        .first(&mut conn)
        .unwrap();
    diesel::update(certificates::table.filter(certificates::id.eq(&certificate_id)))
        .set(certificates::status.eq("revoked"))
        .execute(&mut conn)
        .unwrap();
    let ca = CountingCa::new(ca(&app));
    let report = run_batch(&mut conn, &ca, &settings(10), Utc::now()).unwrap();
    drop(conn);
    assert_eq!(report.rejected, 1);
    assert!(ca.keys.lock().unwrap().is_empty(), "nothing signed");
    assert_eq!(status_of(&app, renewal), "rejected");
    assert_eq!(coupon_status(&app, code).await, "available");
    let emails = wait_for_email(&sink, "non riuscito", 1).await;
    assert_email_snapshot("renewal_failed", &emails[0]);
}

#[tokio::test]
async fn a_failing_ca_is_retried_with_backoff_then_the_renewal_fails_and_frees_its_coupon() {
    let (app, sink) = app_with_sink(&[]).await;
    let queued = queue(&app, &sink, 1).await;
    let (renewal, code) = &queued[0];
    let settings = IssuanceSettings {
        max_attempts: 2,
        retry_base: Duration::minutes(1),
        ..settings(10)
    };
    let mut conn = app.pool.get().unwrap();
    let now = Utc::now();
    let first = run_batch(&mut conn, &FailingCa, &settings, now).unwrap();
    assert_eq!(first.retrying, 1);
    let (status, next, error): (String, chrono::NaiveDateTime, Option<String>) = renewals::table
        .filter(renewals::id.eq(renewal))
        .select((
            renewals::status,
            renewals::next_attempt_at,
            renewals::last_error,
        ))
        .first(&mut conn)
        .unwrap();
    assert_eq!(status, "queued");
    assert!(next.and_utc() >= now + Duration::seconds(59), "{next}");
    assert!(error.unwrap().contains("HSM"));
    // Not due yet: nothing to claim.
    assert_eq!(
        run_batch(&mut conn, &FailingCa, &settings, now).unwrap(),
        BatchReport::default()
    );
    let second = run_batch(&mut conn, &FailingCa, &settings, now + Duration::minutes(2)).unwrap();
    drop(conn);
    assert_eq!(second.failed, 1);
    assert_eq!(status_of(&app, renewal), "failed");
    assert_eq!(coupon_status(&app, code).await, "available");
    // The email is queued at the batch's (simulated) time, two minutes from now.
    let queued: Vec<(String, String)> = rinnovo::db::schema::emails::table
        .filter(rinnovo::db::schema::emails::reference.eq(renewal))
        .select((
            rinnovo::db::schema::emails::kind,
            rinnovo::db::schema::emails::recipient,
        ))
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(
        queued,
        [(
            "renewal_failed".to_owned(),
            "laura.bianchi@example.it".to_owned()
        )]
    );
}

/// A coupon bought for both certificates whose signature renewal went through and whose
/// authentication renewal failed at the CA: the holder asks again with the same coupon,
/// for the authentication certificate only, on the same device, and gets it. Nowhere
/// else: not on another device, not twice for one kind.
#[tokio::test]
async fn a_combined_coupon_serves_again_the_renewal_that_failed() {
    use rinnovo::renewals::install::confirm_installed;
    use rinnovo::renewals::request::{Refusal, RequestError};

    let (app, sink) = app_with_sink(&[]).await;
    let code = buy(&app, &sink, "visura", "RIN-FIRMA-CNS", 1)
        .await
        .remove(0);
    let key = CouponKey::new(
        rinnovo::secrets::load_or_create(None, app.database.dir.path(), COUPON_KEY_FILE).unwrap(),
    );
    let certificate_of = |device_id: &str, kind: &str| -> String {
        certificates::table
            .filter(certificates::device_id.eq(device_id))
            .filter(certificates::kind.eq(kind))
            .filter(certificates::status.eq("active"))
            .select(certificates::id)
            .first(&mut app.pool.get().unwrap())
            .unwrap()
    };
    let ask = |device_id: &str, kinds: &[&str]| {
        let items: Vec<RenewalItem> = kinds
            .iter()
            .map(|kind| RenewalItem {
                certificate_id: certificate_of(device_id, kind),
                csr: holder_csr(),
                coupon: CouponCode::parse(&code).unwrap(),
            })
            .collect();
        request(
            &mut app.pool.get().unwrap(),
            &key,
            &RenewalPolicy::default(),
            device_id,
            "visura",
            &items,
            Utc::now(),
        )
    };
    let device = enroll(&app, "card-both").enrolled.device_id;
    let first = ask(&device, &["signature", "authentication"]).unwrap();
    let (signature, authentication) = (first[0].id.clone(), first[1].id.clone());
    let once = IssuanceSettings {
        max_attempts: 1,
        ..settings(10)
    };
    let report = run_batch(
        &mut app.pool.get().unwrap(),
        &CountingCa {
            down_for: Some(Profile::Authentication),
            ..CountingCa::new(ca(&app))
        },
        &once,
        Utc::now(),
    )
    .unwrap();
    assert_eq!((report.issued, report.failed), (1, 1), "{report:?}");
    assert_eq!(status_of(&app, &authentication), "failed");
    // The signature renewal still holds the coupon; installing it redeems the coupon.
    assert_eq!(coupon_status(&app, &code).await, "reserved");
    confirm_installed(
        &mut app.pool.get().unwrap(),
        &device,
        &signature,
        Utc::now(),
    )
    .unwrap();
    assert_eq!(coupon_status(&app, &code).await, "redeemed");

    // Not on another device, redeemed as it is.
    let other = enroll(&app, "card-other").enrolled.device_id;
    match ask(&other, &["authentication"]) {
        Err(RequestError::Refused {
            refusal: Refusal::CouponNotAvailable(_),
            ..
        }) => {}
        other => panic!(
            "another device used the coupon: {:?}",
            other.map(|q| q.len())
        ),
    }
    // The failed one, on its device: queued with the same coupon, which stays redeemed;
    // asked eight times at once, exactly once.
    let barrier = std::sync::Barrier::new(8);
    let answers: Vec<_> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    ask(&device, &["authentication"])
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut won: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    // The others are refused, whichever check saw the winner first (the open renewal,
    // the coupon's use for this kind, the device's renewal count), never a storage error.
    for answer in answers.iter().filter(|a| a.is_err()) {
        assert!(
            matches!(
                answer,
                Err(RequestError::Refused {
                    refusal: Refusal::AlreadyPending { .. }
                        | Refusal::CouponNotAvailable(_)
                        | Refusal::DeviceRenewedEnough { .. },
                    ..
                })
            ),
            "{answer:?}"
        );
    }
    let again = won.remove(0);
    assert_eq!(status_of(&app, &again[0].id), "queued");
    assert_eq!(coupon_status(&app, &code).await, "redeemed");
    let report = run_batch(&mut app.pool.get().unwrap(), &ca(&app), &once, Utc::now()).unwrap();
    assert_eq!(report.issued, 1, "{report:?}");
    confirm_installed(
        &mut app.pool.get().unwrap(),
        &device,
        &again[0].id,
        Utc::now(),
    )
    .unwrap();
    let used: i64 = renewals::table
        .filter(renewals::status.eq("installed"))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(
        used, 2,
        "one certificate of each kind, one device, one coupon"
    );
    // And no third time: the device's new authentication certificate is not renewable
    // yet, and the coupon has served both kinds.
    assert!(ask(&device, &["authentication"]).is_err());
    assert!(ask(&other, &["signature"]).is_err());
}
