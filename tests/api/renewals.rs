//! Renewal through the desktop agent, played with openssl: new keys and CSRs made by the
//! `openssl` CLI, the challenge signed with `openssl dgst`, coupons bought through the
//! API and read from the emails, the batch run by `rinnovo issue-batch`, the chain
//! checked with `openssl verify`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use rinnovo::db::schema::{certificates, coupons, devices, renewals};
use serde_json::{json, Value};

use crate::agent::{challenge, enroll, enroll_expiring, session, sign, Device};
use crate::helpers::{problem, retry_after, spawn_app_with, TestApp};
use crate::smtp::{assert_email_snapshot, coupon_codes, decoded, masked_snapshots, SmtpSink};

/// The subject of the demo holder's certificates, as `openssl req -subj` takes it.
pub(crate) const SUBJECT: &str =
    "/C=IT/SN=BIANCHI/GN=LAURA/serialNumber=TINIT-BNCLRA85T52F205E/CN=BIANCHI LAURA";

/// A demo app whose emails go to `sink`, with the issuance worker asleep: the tests run
/// the batch themselves. `extra` adds configuration.
pub(crate) async fn app_with_sink(extra: &[(&str, String)]) -> (TestApp, SmtpSink) {
    let (sink, port) = SmtpSink::start(0).await;
    // The first value given wins: `extra` before the defaults.
    let mut vars = extra.to_vec();
    vars.extend([
        ("RINNOVO_SMTP_URL", format!("smtp://127.0.0.1:{port}")),
        ("RINNOVO_ISSUANCE_INTERVAL_SECS", "86400".to_owned()),
    ]);
    let app = spawn_app_with(rinnovo::startup::StartOptions { demo: true }, &vars).await;
    (app, sink)
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl").args(args).output().unwrap();
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
    output.stdout
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A new key made by openssl: "rsa" (2048 bits), "rsa1024", "p521" or "ec" (P-256).
fn new_key(dir: &Path, name: &str, algorithm: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let key = dir.join(format!("{name}.key.pem"));
    let options: &[&str] = match algorithm {
        "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "rsa1024" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        "p521" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        _ => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let mut args = vec!["genpkey"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["-out", arg(&key)]);
    openssl(&args);
    key
}

/// `openssl req -new`: a CSR for `subject`, signed with `key`.
fn csr(key: &Path, subject: &str) -> String {
    String::from_utf8(openssl(&[
        "req",
        "-new",
        "-key",
        arg(key),
        "-subj",
        subject,
        "-sha256",
    ]))
    .unwrap()
}

/// Signs in as the device, with its authentication certificate and key.
async fn sign_in(app: &TestApp, device: &Device) -> String {
    let kind = "authentication";
    let nonce = challenge(app).await;
    let signature = sign(&device.file(kind, ".key.pem"), &nonce, &[]);
    let (status, body) = session(app, &device.certificate(kind), &nonce, &signature).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn seen(app: &TestApp, token: &str) -> Value {
    app.get_json(token, "/api/v1/agent/certificates").await
}

/// The certificate of `kind` as the agent sees it.
fn seen_certificate<'a>(seen: &'a Value, kind: &str) -> &'a Value {
    seen["device"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} certificate in {seen}"))
}

async fn certificate_id(app: &TestApp, token: &str, kind: &str) -> String {
    seen_certificate(&seen(app, token).await, kind)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn request(app: &TestApp, token: &str, renewals: Value) -> (u16, Value) {
    let response = app
        .post_json_as(
            token,
            "/api/v1/agent/renewals",
            &json!({ "renewals": renewals }),
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A request for one certificate, with a CSR of the subject on a fresh EC key (`key`, a
/// file name under `keys`) and `coupon`.
async fn request_one(
    app: &TestApp,
    token: &str,
    keys: &Path,
    key: &str,
    certificate_id: &str,
    coupon: &str,
) -> (u16, Value) {
    let csr = csr(&new_key(keys, key, "ec"), SUBJECT);
    request(app, token, json!([item(certificate_id, &csr, coupon)])).await
}

fn item(certificate_id: &str, csr: &str, coupon: &str) -> Value {
    json!({ "certificate_id": certificate_id, "csr": csr, "coupon_code": coupon })
}

/// Buys `quantity` coupons of `product` with prepaid, as a customer (or a registration
/// officer for more than 20) of `brand`, and reads the codes from the delivery email.
pub(crate) async fn buy(
    app: &TestApp,
    sink: &SmtpSink,
    brand: &str,
    product: &str,
    quantity: u32,
) -> Vec<String> {
    let buyer = if quantity > 20 {
        app.user_with_role(brand, rinnovo::auth::Role::RegistrationOfficer)
            .await
    } else {
        app.customer(brand).await
    };
    app.credit(&buyer.user_id, "5000.00");
    let response = app
        .order(
            &buyer.token,
            json!([{ "product": product, "quantity": quantity }]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let to = format!("To: {}", buyer.email);
    let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
    loop {
        let delivery = sink
            .messages()
            .iter()
            .map(|m| decoded(m))
            .find(|m| m.contains(&to) && m.contains("i tuoi coupon"));
        if let Some(delivery) = delivery {
            let codes = coupon_codes(&delivery);
            assert_eq!(codes.len(), quantity as usize);
            return codes;
        }
        assert!(std::time::Instant::now() < deadline, "no coupon email");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

pub(crate) async fn coupon_status(app: &TestApp, code: &str) -> String {
    let body: Value = app
        .get(&format!("/api/v1/coupons/{code}/status"))
        .await
        .json()
        .await
        .unwrap();
    body["status"].as_str().unwrap().to_owned()
}

/// `rinnovo issue-batch` on the app's database and data directory.
pub(crate) fn issue_batch(app: &TestApp) -> Value {
    issue_batch_with(app, &[])
}

fn issue_batch_with(app: &TestApp, env: &[(&str, &str)]) -> Value {
    let output = crate::cli::rinnovo(&app.database)
        .envs(env.iter().copied())
        .arg("issue-batch")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

pub(crate) async fn wait_for_email(sink: &SmtpSink, needle: &str, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
    loop {
        let found: Vec<String> = sink
            .messages()
            .iter()
            .map(|m| decoded(m))
            .filter(|m| m.contains(needle))
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} emails with {needle:?}: {found:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_whole_renewal_played_with_openssl() {
    let (app, sink) = app_with_sink(&[]).await;
    let code = buy(&app, &sink, "visura", "RIN-FIRMA-CNS", 1)
        .await
        .remove(0);
    let device = enroll(&app, "card");
    let token = sign_in(&app, &device).await;
    let before = seen(&app, &token).await;
    let old_signature = seen_certificate(&before, "signature").clone();
    let old_authentication = seen_certificate(&before, "authentication").clone();
    assert_eq!(old_signature["renewal"]["status"], "renewable");

    // New keys made on the "device": RSA for the signature, EC for the authentication.
    let keys = device.dir.join("new");
    let signature_key = new_key(&keys, "signature", "rsa");
    let authentication_key = new_key(&keys, "authentication", "ec");
    let (status, body) = request(
        &app,
        &token,
        json!([
            item(
                old_signature["id"].as_str().unwrap(),
                &csr(&signature_key, SUBJECT),
                &code
            ),
            item(
                old_authentication["id"].as_str().unwrap(),
                &csr(&authentication_key, SUBJECT),
                &code
            ),
        ]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let queued = body["renewals"].as_array().unwrap();
    assert_eq!(queued.len(), 2);
    assert!(queued.iter().all(|r| r["status"] == "queued"));
    let id_of = |kind: &str| -> String {
        queued.iter().find(|r| r["kind"] == kind).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (signature_renewal, authentication_renewal) = (id_of("signature"), id_of("authentication"));
    assert_eq!(coupon_status(&app, &code).await, "reserved");
    let pending = seen(&app, &token).await;
    for kind in ["signature", "authentication"] {
        assert_eq!(
            seen_certificate(&pending, kind)["renewal"]["status"],
            "renewal_pending"
        );
    }
    assert_eq!(pending["device"]["renew_together"], json!([]));

    // While queued: the status with Retry-After; no certificate to download yet.
    let status_path = format!("/api/v1/agent/renewals/{signature_renewal}");
    let response = app.get_as(&token, &status_path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["retry-after"], "86400");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    assert!(body.get("certificate").is_none());
    let early = app
        .client
        .get(format!("{}{status_path}", app.address))
        .bearer_auth(&token)
        .header("Accept", "application/pem-certificate-chain")
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 409);
    assert!(early.headers().contains_key("retry-after"));
    let early_install = app
        .post_json_as(&token, &format!("{status_path}/installed"), &json!({}))
        .await;
    assert_eq!(early_install.status(), 409);

    // The batch.
    let report = issue_batch(&app);
    assert_eq!(report["issued"], 2, "{report}");
    assert_eq!(issue_batch(&app)["claimed"], 0, "nothing issued twice");
    let ready = seen(&app, &token).await;
    for kind in ["signature", "authentication"] {
        assert_eq!(
            seen_certificate(&ready, kind)["renewal"]["status"],
            "ready_to_install"
        );
    }

    // Download as PEM; openssl verifies the chain and reads the profiles.
    let ca_dir = app.database.dir.path().join("ca");
    let out = device.dir.join("downloaded");
    std::fs::create_dir_all(&out).unwrap();
    for (renewal, kind, key) in [
        (&signature_renewal, "signature", &signature_key),
        (
            &authentication_renewal,
            "authentication",
            &authentication_key,
        ),
    ] {
        let response = app
            .client
            .get(format!("{}/api/v1/agent/renewals/{renewal}", app.address))
            .bearer_auth(&token)
            .header("Accept", "application/pem-certificate-chain")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/pem-certificate-chain"
        );
        let chain = response.text().await.unwrap();
        assert_eq!(
            chain.matches("-----BEGIN CERTIFICATE-----").count(),
            3,
            "{chain}"
        );
        let leaf = &chain[..chain.find("-----END CERTIFICATE-----").unwrap() + 26];
        let leaf_file = out.join(format!("{kind}.pem"));
        std::fs::write(&leaf_file, leaf).unwrap();
        let verified = openssl(&[
            "verify",
            "-CAfile",
            arg(&ca_dir.join("root.pem")),
            "-untrusted",
            arg(&ca_dir.join("issuing.pem")),
            arg(&leaf_file),
        ]);
        assert!(String::from_utf8_lossy(&verified).contains(": OK"));
        let text = String::from_utf8(openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            arg(&leaf_file),
        ]))
        .unwrap();
        assert!(
            text.contains("serialNumber = TINIT-BNCLRA85T52F205E"),
            "{text}"
        );
        if kind == "signature" {
            assert!(text.contains("Non Repudiation"), "{text}");
            assert!(!text.contains("Digital Signature"), "{text}");
            assert!(text.contains("rsaEncryption"), "{text}");
        } else {
            assert!(text.contains("Digital Signature"), "{text}");
            assert!(text.contains("TLS Web Client Authentication"), "{text}");
            assert!(!text.contains("Non Repudiation"), "{text}");
        }
        // The certificate holds the key made on the device.
        assert_eq!(
            openssl(&["x509", "-noout", "-pubkey", "-in", arg(&leaf_file)]),
            openssl(&["pkey", "-pubout", "-in", arg(key)])
        );
        // Valid three years from now.
        let dates = String::from_utf8(openssl(&[
            "x509",
            "-noout",
            "-enddate",
            "-in",
            arg(&leaf_file),
        ]))
        .unwrap();
        let year = (Utc::now() + Duration::days(3 * 365))
            .format("%Y")
            .to_string();
        assert!(dates.contains(&year), "{dates}");
    }
    // JSON too, with the chain.
    let body = app.get_json(&token, &status_path).await;
    assert_eq!(body["status"], "issued");
    assert_eq!(
        body["certificate"]["pem_chain"]
            .as_str()
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        3
    );

    // Installed: confirmed twice, changed once.
    let confirm = |renewal: String| {
        let app = &app;
        let token = &token;
        async move {
            let response = app
                .post_json_as(
                    token,
                    &format!("/api/v1/agent/renewals/{renewal}/installed"),
                    &json!({}),
                )
                .await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = confirm(signature_renewal.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "installed");
    let (status, again) = confirm(signature_renewal.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(again["new_certificate_id"], first["new_certificate_id"]);
    assert_eq!(again["installed_at"], first["installed_at"]);
    assert_eq!(coupon_status(&app, &code).await, "redeemed");
    let (status, _) = confirm(authentication_renewal.clone()).await;
    assert_eq!(status, 200);

    let after = seen(&app, &token).await;
    for (kind, old) in [
        ("signature", &old_signature),
        ("authentication", &old_authentication),
    ] {
        let new = seen_certificate(&after, kind);
        assert_eq!(new["status"], "active");
        assert_ne!(new["id"], old["id"]);
        assert_ne!(new["serial_number"], old["serial_number"]);
        // Renewable once by default: the new certificate's window will open, but this
        // device will never be renewed again, and the agent is told so rather than when.
        assert_eq!(new["renewal"]["status"], "not_renewable");
        assert_eq!(new["renewal"]["reason"], "device_renewal_limit");
    }
    assert_eq!(
        after["device"]["certificates"].as_array().unwrap().len(),
        2,
        "old ones superseded"
    );
    let mut conn = app.pool.get().unwrap();
    let statuses: Vec<String> = certificates::table
        .filter(certificates::id.eq_any([
            old_signature["id"].as_str().unwrap(),
            old_authentication["id"].as_str().unwrap(),
        ]))
        .select(certificates::status)
        .load(&mut conn)
        .unwrap();
    assert_eq!(statuses, ["superseded", "superseded"]);
    drop(conn);

    // The old certificate no longer signs in; the new one does, with the new key.
    let nonce = challenge(&app).await;
    let signature = sign(&device.file("authentication", ".key.pem"), &nonce, &[]);
    let (status, body) = session(
        &app,
        &device.certificate("authentication"),
        &nonce,
        &signature,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "/problems/certificate-not-active");
    let nonce = challenge(&app).await;
    let signature = sign(&authentication_key, &nonce, &[]);
    let new_pem = std::fs::read_to_string(out.join("authentication.pem")).unwrap();
    let (status, body) = session(&app, &new_pem, &nonce, &signature).await;
    assert_eq!(status, 201, "{body}");

    // The holder hears of each installed certificate.
    let emails = wait_for_email(&sink, "installato", 2).await;
    assert!(
        emails
            .iter()
            .all(|m| m.contains("To: laura.bianchi@example.it")),
        "{emails:?}"
    );
    assert_email_snapshot("renewal_installed", &emails[0]);
}

#[tokio::test]
async fn every_refusal_of_a_renewal_request_has_its_problem() {
    let (app, sink) = app_with_sink(&[]).await;
    let mut codes = buy(&app, &sink, "visura", "RIN-FIRMA", 4).await;
    let cns_code = buy(&app, &sink, "visura", "RIN-CNS", 1).await.remove(0);
    let other_brand_code = buy(&app, &sink, "lextel", "RIN-FIRMA", 1).await.remove(0);
    let device = enroll(&app, "card");
    let other_device = enroll(&app, "other");
    let token = sign_in(&app, &device).await;
    let signature_id = certificate_id(&app, &token, "signature").await;
    let keys = device.dir.join("new");
    let good_csr = csr(&new_key(&keys, "good", "ec"), SUBJECT);
    let code = codes.remove(0);

    // Every refusal's body, for the snapshot of what an agent is told.
    let refusals = std::cell::RefCell::new(Vec::new());
    let refused = |renewals: Value, status: u16, problem: &'static str, field: &'static str| {
        let (app, token, refusals) = (&app, &token, &refusals);
        async move {
            let (got, body) = request(app, token, renewals).await;
            assert_eq!(got, status, "{problem}: {body}");
            assert_eq!(body["type"], format!("/problems/{problem}"), "{body}");
            let fields: Vec<&str> = body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{field} in {body}");
            refusals.borrow_mut().push(body.clone());
            body
        }
    };

    // The request's shape and each field's own rules.
    refused(json!([]), 400, "invalid-field", "renewals").await;
    refused(
        json!([item(&signature_id, "not a csr", &code)]),
        400,
        "invalid-field",
        "renewals[0].csr",
    )
    .await;
    refused(
        json!([item(&signature_id, &good_csr, "ABCD")]),
        400,
        "invalid-field",
        "renewals[0].coupon_code",
    )
    .await;
    let weak = csr(&new_key(&keys, "weak", "rsa1024"), SUBJECT);
    let body = refused(
        json!([item(&signature_id, &weak, &code)]),
        400,
        "invalid-field",
        "renewals[0].csr",
    )
    .await;
    assert_eq!(body["errors"][0]["rule"], "key-strength");
    let p521 = csr(&new_key(&keys, "p521", "p521"), SUBJECT);
    let body = refused(
        json!([item(&signature_id, &p521, &code)]),
        400,
        "invalid-field",
        "renewals[0].csr",
    )
    .await;
    assert_eq!(body["errors"][0]["rule"], "key-strength");
    // A CSR altered after signing proves nothing.
    let der = openssl(&[
        "req",
        "-in",
        arg(&write(&keys, "good.csr", &good_csr)),
        "-outform",
        "DER",
    ]);
    let mut tampered = der.clone();
    let at = tampered.windows(7).position(|w| w == b"BIANCHI").unwrap();
    tampered[at] = b'b';
    let tampered_pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &tampered)
    );
    let body = refused(
        json!([item(&signature_id, &tampered_pem, &code)]),
        400,
        "invalid-field",
        "renewals[0].csr",
    )
    .await;
    assert_eq!(body["errors"][0]["rule"], "proof-of-possession");

    // The certificate.
    let other_token = sign_in(&app, &other_device).await;
    let other_id = certificate_id(&app, &other_token, "signature").await;
    refused(
        json!([item(&other_id, &good_csr, &code)]),
        404,
        "unknown-certificate",
        "renewals[0].certificate_id",
    )
    .await;
    let second_csr = csr(&new_key(&keys, "second", "ec"), SUBJECT);
    refused(
        json!([
            item(&signature_id, &good_csr, &code),
            item(&signature_id, &second_csr, &code)
        ]),
        400,
        "invalid-field",
        "renewals[1].certificate_id",
    )
    .await;

    // The CSR against the certificate: same subject, a new key.
    let other_subject = csr(
        &new_key(&keys, "other-subject", "ec"),
        "/C=IT/SN=ROSSI/GN=MARIO/serialNumber=TINIT-RSSMRA80A01H501U/CN=ROSSI MARIO",
    );
    refused(
        json!([item(&signature_id, &other_subject, &code)]),
        422,
        "csr-subject-mismatch",
        "renewals[0].csr",
    )
    .await;
    let old_key = csr(&device.file("signature", ".key.pem"), SUBJECT);
    refused(
        json!([item(&signature_id, &old_key, &code)]),
        422,
        "csr-old-key",
        "renewals[0].csr",
    )
    .await;
    let other_certificates_key = csr(&device.file("authentication", ".key.pem"), SUBJECT);
    refused(
        json!([item(&signature_id, &other_certificates_key, &code)]),
        422,
        "csr-old-key",
        "renewals[0].csr",
    )
    .await;

    // The coupon.
    let unknown = rinnovo::coupons::CouponCode::generate().formatted();
    refused(
        json!([item(&signature_id, &good_csr, &unknown)]),
        422,
        "unknown-coupon",
        "renewals[0].coupon_code",
    )
    .await;
    refused(
        json!([item(&signature_id, &good_csr, &cns_code)]),
        422,
        "coupon-wrong-kind",
        "renewals[0].coupon_code",
    )
    .await;
    refused(
        json!([item(&signature_id, &good_csr, &other_brand_code)]),
        422,
        "coupon-other-brand",
        "renewals[0].coupon_code",
    )
    .await;
    let expired_code = codes.remove(0);
    let key = rinnovo::coupons::CouponKey::new(
        rinnovo::secrets::load_or_create(
            None,
            app.database.dir.path(),
            rinnovo::coupons::COUPON_KEY_FILE,
        )
        .unwrap(),
    );
    let hash = |code: &str| key.hash(&rinnovo::coupons::CouponCode::parse(code).unwrap());
    diesel::update(coupons::table.filter(coupons::code_hash.eq(hash(&expired_code))))
        .set(coupons::valid_until.eq((Utc::now() - Duration::days(1)).naive_utc()))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    refused(
        json!([item(&signature_id, &good_csr, &expired_code)]),
        422,
        "coupon-expired",
        "renewals[0].coupon_code",
    )
    .await;
    let voided_code = codes.remove(0);
    diesel::update(coupons::table.filter(coupons::code_hash.eq(hash(&voided_code))))
        .set(coupons::status.eq("voided"))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    refused(
        json!([item(&signature_id, &good_csr, &voided_code)]),
        409,
        "coupon-not-available",
        "renewals[0].coupon_code",
    )
    .await;

    // What the agent is told of each, word for word, pinned in one reviewed snapshot.
    masked_snapshots().bind(|| {
        insta::assert_json_snapshot!(
            "renewal_request_refusals",
            refusals.borrow().clone(),
            { "[].request_id" => "[request id]" }
        );
    });

    // Nothing was reserved or queued by any refusal.
    assert_eq!(coupon_status(&app, &code).await, "available");
    let queued: i64 = renewals::table
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(queued, 0);

    // A good request; then the same certificate again, and the same coupon elsewhere.
    let (status, body) =
        request(&app, &token, json!([item(&signature_id, &good_csr, &code)])).await;
    assert_eq!(status, 201, "{body}");
    let again_csr = csr(&new_key(&keys, "again", "ec"), SUBJECT);
    refused(
        json!([item(&signature_id, &again_csr, &codes[0])]),
        409,
        "renewal-pending",
        "renewals[0].certificate_id",
    )
    .await;
    let authentication_id = certificate_id(&app, &token, "authentication").await;
    let (status, body) = request(
        &app,
        &other_token,
        json!([item(&other_id, &again_csr, &code)]),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "/problems/coupon-not-available");
    assert_eq!(body["errors"][0]["field"], "renewals[0].coupon_code");
    // A key asked for in a renewal is as used as a certificate's.
    refused(
        json!([item(&authentication_id, &good_csr, &cns_code)]),
        422,
        "csr-old-key",
        "renewals[0].csr",
    )
    .await;
    // A two-item request is taken whole or not at all: the second item's refusal leaves
    // the first coupon untouched.
    let fresh = codes.remove(0);
    let other_signature_csr = csr(&new_key(&keys, "other-signature", "ec"), SUBJECT);
    let other_authentication_csr = csr(&new_key(&keys, "other-authentication", "ec"), SUBJECT);
    let other_authentication_id = certificate_id(&app, &other_token, "authentication").await;
    let (status, body) = request(
        &app,
        &other_token,
        json!([
            item(&other_id, &other_signature_csr, &fresh),
            item(
                &other_authentication_id,
                &other_authentication_csr,
                &unknown
            ),
        ]),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "renewals[1].coupon_code");
    assert_eq!(coupon_status(&app, &fresh).await, "available");

    // Its certificate, asked for before the batch issues it: not yet, and when to ask again.
    let renewal_id = pending_renewal_id(&app, &token).await;
    let early = app
        .client
        .get(format!(
            "{}/api/v1/agent/renewals/{renewal_id}",
            app.address
        ))
        .bearer_auth(&token)
        .header("Accept", "application/pem-certificate-chain")
        .send()
        .await
        .unwrap();
    assert!(early.headers().contains_key("retry-after"));
    let body = problem(early, 409).await;
    assert_eq!(body["type"], "/problems/renewal-not-issued");

    // Another device's renewal is unknown to this one.
    let response = app
        .get_as(
            &other_token,
            &format!("/api/v1/agent/renewals/{renewal_id}"),
        )
        .await;
    assert_eq!(
        problem(response, 404).await["type"],
        "/problems/unknown-renewal"
    );
    let response = app
        .post_json_as(
            &other_token,
            &format!("/api/v1/agent/renewals/{renewal_id}/installed"),
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(response, 404).await["type"],
        "/problems/unknown-renewal"
    );
    // And an access token of the shop is not an agent token.
    let customer = app.customer("visura").await;
    let (status, _) = request(
        &app,
        &customer.token,
        json!([item(&signature_id, &good_csr, &code)]),
    )
    .await;
    assert_eq!(status, 401);
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, content).unwrap();
    file
}

/// The renewal pending on the agent's signature certificate.
async fn pending_renewal_id(app: &TestApp, token: &str) -> String {
    seen_certificate(&seen(app, token).await, "signature")["renewal"]["renewal_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_window_the_registry_and_the_device_life_refuse_too() {
    // New certificates valid 30 days, so a renewed device is at once in its window again.
    let (app, sink) = app_with_sink(&[("RINNOVO_CERTIFICATE_VALIDITY_DAYS", "30".into())]).await;
    let codes = buy(&app, &sink, "visura", "RIN-FIRMA", 5).await;
    let keys = app.database.dir.path().join("keys");

    // Too early: 200 days left.
    let young = enroll_expiring(&app, "young", 200);
    let token = sign_in(&app, &young).await;
    let id = certificate_id(&app, &token, "signature").await;
    let (status, body) = request_one(&app, &token, &keys, "a", &id, &codes[0]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "/problems/outside-renewal-window");

    // Expired in the registry (the agent signs in with the other certificate).
    let device = enroll(&app, "expired");
    let token = sign_in(&app, &device).await;
    let id = certificate_id(&app, &token, "signature").await;
    let mut conn = app.pool.get().unwrap();
    diesel::update(certificates::table.filter(certificates::id.eq(&id)))
        .set(certificates::not_after.eq((Utc::now() - Duration::hours(1)).naive_utc()))
        .execute(&mut conn)
        .unwrap();
    let (status, body) = request_one(&app, &token, &keys, "b", &id, &codes[0]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "/problems/outside-renewal-window");
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // Revoked.
    diesel::update(certificates::table.filter(certificates::id.eq(&id)))
        .set((
            certificates::status.eq("revoked"),
            certificates::not_after.eq((Utc::now() + Duration::days(10)).naive_utc()),
        ))
        .execute(&mut conn)
        .unwrap();
    let (status, body) = request_one(&app, &token, &keys, "c", &id, &codes[0]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "/problems/certificate-not-active");

    // Past the device's life: first activated seven years ago.
    let old = enroll(&app, "old");
    diesel::update(devices::table.filter(devices::id.eq(&old.enrolled.device_id)))
        .set(devices::activated_at.eq((Utc::now() - Duration::days(7 * 365)).naive_utc()))
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    let token = sign_in(&app, &old).await;
    let aged = seen(&app, &token).await;
    let certificate = seen_certificate(&aged, "signature");
    assert_eq!(certificate["renewal"]["status"], "not_renewable", "{aged}");
    assert_eq!(
        certificate["renewal"]["reason"], "device_end_of_life",
        "{aged}"
    );
    let id = certificate_id(&app, &token, "signature").await;
    let (status, body) = request_one(&app, &token, &keys, "d", &id, &codes[0]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "/problems/device-end-of-life");

    // Renewable once: renewed, installed, in its window again, and refused.
    let once = enroll(&app, "once");
    let token = sign_in(&app, &once).await;
    let id = certificate_id(&app, &token, "signature").await;
    let (status, body) = request_one(&app, &token, &keys, "e", &id, &codes[1]).await;
    assert_eq!(status, 201, "{body}");
    let renewal = body["renewals"][0]["id"].as_str().unwrap().to_owned();
    let report = issue_batch_with(&app, &[("RINNOVO_CERTIFICATE_VALIDITY_DAYS", "30")]);
    assert_eq!(report["issued"], 1);
    let response = app
        .post_json_as(
            &token,
            &format!("/api/v1/agent/renewals/{renewal}/installed"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let renewed = seen(&app, &token).await;
    let new = seen_certificate(&renewed, "signature");
    // In its window, and yet the agent is told, with why, that it cannot be renewed.
    assert_eq!(new["renewal"]["status"], "not_renewable", "{renewed}");
    assert_eq!(
        new["renewal"]["reason"], "device_renewal_limit",
        "{renewed}"
    );
    assert_eq!(new["renewal"]["renewals"], 1, "{renewed}");
    let (status, body) = request_one(
        &app,
        &token,
        &keys,
        "f",
        new["id"].as_str().unwrap(),
        &codes[2],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "/problems/device-renewal-limit");
    // The holder's lookup says the same, and the shop proposes a coupon for the other
    // certificate only: never one the renewal would refuse.
    let serial: String = devices::table
        .filter(devices::id.eq(&once.enrolled.device_id))
        .select(devices::serial_number)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    let customer = app.customer("visura").await;
    let found: Value = app
        .lookup(&customer.token, crate::agent::HOLDER)
        .await
        .json()
        .await
        .unwrap();
    let device = found["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["serial_number"] == serial.as_str())
        .unwrap();
    let signature = device["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "signature")
        .unwrap();
    assert_eq!(signature["renewal"]["status"], "not_renewable", "{device}");
    assert_eq!(signature["renewal"]["reason"], "device_renewal_limit");
    assert_eq!(
        device["renew_together"],
        json!(["authentication"]),
        "{device}"
    );
    let quote = app
        .post_json_as(
            &customer.token,
            "/api/v1/quotes",
            &json!({ "codice_fiscale": crate::agent::HOLDER, "device_serial": serial }),
        )
        .await;
    assert_eq!(quote.status(), 200);
    let quote: Value = quote.json().await.unwrap();
    let lines = quote["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{quote}");
    assert_eq!(lines[0]["code"], "RIN-CNS", "{quote}");
    // Its other certificate still has its one renewal.
    let other = certificate_id(&app, &token, "authentication").await;
    let cns = buy(&app, &sink, "visura", "RIN-CNS", 1).await;
    let (status, body) = request_one(&app, &token, &keys, "g", &other, &cns[0]).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_concurrent_requests_with_one_coupon_exactly_one_wins() {
    // Several HTTP workers, so the twenty requests really run side by side.
    let (app, sink) = app_with_sink(&[("RINNOVO_HTTP_WORKERS", "8".into())]).await;
    // Twenty devices of the holder, each signed in.
    let mut agents = Vec::new();
    for n in 0..20 {
        let device = enroll(&app, &format!("card-{n}"));
        let token = sign_in(&app, &device).await;
        let signature = certificate_id(&app, &token, "signature").await;
        let authentication = certificate_id(&app, &token, "authentication").await;
        agents.push((device, token, signature, authentication));
    }
    // Two rounds (one coupon per certificate kind), each twenty requests at once.
    for (round, product, kind) in [
        (0, "RIN-FIRMA", "signature"),
        (1, "RIN-CNS", "authentication"),
    ] {
        let code = buy(&app, &sink, "visura", product, 1).await.remove(0);
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(agents.len()));
        let attempts: Vec<_> = agents
            .iter()
            .map(|(device, token, signature, authentication)| {
                let id = if round == 0 {
                    signature
                } else {
                    authentication
                };
                let key = new_key(&device.dir.join("new"), kind, "ec");
                let body = json!({ "renewals": [item(id, &csr(&key, SUBJECT), &code)] });
                let request = app
                    .client
                    .post(format!("{}/api/v1/agent/renewals", app.address))
                    .bearer_auth(token)
                    .json(&body);
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    (status, response.json::<Value>().await.unwrap())
                })
            })
            .collect();
        let mut won = 0;
        for attempt in attempts {
            let (status, body) = attempt.await.unwrap();
            match status {
                201 => won += 1,
                409 => assert_eq!(body["type"], "/problems/coupon-not-available", "{body}"),
                _ => panic!("{status}: {body}"),
            }
        }
        assert_eq!(won, 1, "{kind}");
        assert_eq!(coupon_status(&app, &code).await, "reserved");
    }
    let mut conn = app.pool.get().unwrap();
    let queued: i64 = renewals::table.count().get_result(&mut conn).unwrap();
    assert_eq!(queued, 2, "one renewal per coupon");
}

#[tokio::test]
async fn a_device_asking_for_renewals_too_often_is_told_to_wait() {
    let (app, sink) = app_with_sink(&[]).await;
    let code = buy(&app, &sink, "visura", "RIN-FIRMA", 1).await.remove(0);
    let device = enroll(&app, "eager");
    let token = sign_in(&app, &device).await;
    let good_csr = csr(&new_key(&device.dir.join("new"), "k", "ec"), SUBJECT);
    let unknown = json!([item("no-such-certificate", &good_csr, &code)]);
    // Every request counts, refused or not: sixty are answered on their merits...
    for _ in 0..60 {
        let (status, body) = request(&app, &token, unknown.clone()).await;
        assert_ne!(status, 429, "{body}");
    }
    // ...and the next one is told when to come back, whatever it asks.
    let response = app
        .post_json_as(
            &token,
            "/api/v1/agent/renewals",
            &json!({ "renewals": unknown }),
        )
        .await;
    assert_eq!(response.status(), 429);
    let retry_after = retry_after(&response);
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "/problems/too-many-requests", "{body}");
}
