//! The desktop agent's sign-in, played with openssl: the device's key signs the
//! challenge, exactly as an agent would with the card.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use rinnovo::ca::{CertificateAuthority, DeviceKey, EmbeddedCa, Issued, Profile, Subject};
use rinnovo::db::schema::{certificates, devices};
use rinnovo::registry::enroll::{enroll_device, Enrolled};
use rinnovo::registry::{CodiceFiscale, DeviceKind};
use serde_json::{json, Value};

use crate::helpers::{spawn_demo_app, TestApp};

pub(crate) const HOLDER: &str = "BNCLRA85T52F205E";

/// A device enrolled for the demo holder; its keys and certificates written to files.
pub(crate) struct Device {
    pub(crate) enrolled: Enrolled,
    pub(crate) dir: PathBuf,
}

impl Device {
    pub(crate) fn file(&self, kind: &str, suffix: &str) -> PathBuf {
        self.dir.join(format!("{kind}{suffix}"))
    }
    pub(crate) fn certificate(&self, kind: &str) -> String {
        std::fs::read_to_string(self.file(kind, ".pem")).unwrap()
    }
}

pub(crate) fn ca(app: &TestApp) -> EmbeddedCa {
    EmbeddedCa::open_or_create(app.database.dir.path()).unwrap()
}

pub(crate) fn enroll(app: &TestApp, name: &str) -> Device {
    enroll_expiring(app, name, 40)
}

/// A device whose certificates expire in `days`.
pub(crate) fn enroll_expiring(app: &TestApp, name: &str, days: i64) -> Device {
    let mut conn = app.pool.get().unwrap();
    let now = Utc::now();
    let enrolled = enroll_device(
        &mut conn,
        &ca(app),
        &CodiceFiscale::parse(HOLDER).unwrap(),
        "visura",
        DeviceKind::SmartCard,
        now + Duration::days(days),
        now,
    )
    .unwrap();
    let dir = app.database.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for certificate in &enrolled.certificates {
        let kind = certificate.kind.as_str();
        std::fs::write(
            dir.join(format!("{kind}.key.pem")),
            certificate.key.private_pem().unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{kind}.pem")), &certificate.issued.pem).unwrap();
    }
    Device { enrolled, dir }
}

/// An authentication certificate for the demo holder's key `public_key` (DER SPKI),
/// issued by the service's CA but not registered.
fn issue_for_holder(app: &TestApp, public_key: &[u8]) -> Issued {
    let now = Utc::now();
    ca(app)
        .issue(
            &Subject {
                codice_fiscale: HOLDER.into(),
                given_name: "Laura".into(),
                surname: "Bianchi".into(),
            },
            public_key,
            Profile::Authentication,
            now - Duration::days(1),
            now + Duration::days(30),
        )
        .unwrap()
}

/// `openssl dgst -sha256 -sign key` over the text, base64.
pub(crate) fn sign(key: &Path, text: &str, extra: &[&str]) -> String {
    let message = key.with_extension("msg");
    std::fs::write(&message, text).unwrap();
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .args(extra)
        .arg(&message)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    base64::engine::general_purpose::STANDARD.encode(output.stdout)
}

pub(crate) async fn challenge(app: &TestApp) -> String {
    let response = app.post_json("/api/v1/agent/challenges", &json!({})).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["nonce"].as_str().unwrap().to_owned()
}

pub(crate) async fn session(
    app: &TestApp,
    certificate: &str,
    nonce: &str,
    signature: &str,
) -> (u16, Value) {
    let response = app
        .post_json(
            "/api/v1/agent/sessions",
            &json!({ "certificate": certificate, "nonce": nonce, "signature": signature }),
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn an_agent_holding_the_authentication_key_gets_a_token_for_that_device() {
    let app = spawn_demo_app().await;
    let device = enroll(&app, "card");
    let nonce = challenge(&app).await;
    let signature = sign(&device.file("authentication", ".key.pem"), &nonce, &[]);
    let (status, body) = session(
        &app,
        &device.certificate("authentication"),
        &nonce,
        &signature,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["device_id"], device.enrolled.device_id.as_str());
    assert_eq!(body["expires_in"], 900);
    // An agent token is not an access token for the rest of the API.
    let me = app
        .client
        .get(format!("{}/api/v1/me", app.address))
        .bearer_auth(body["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    // The certificate may also come as base64 DER.
    let pem = device.certificate("authentication");
    let der_base64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let nonce = challenge(&app).await;
    let signature = sign(&device.file("authentication", ".key.pem"), &nonce, &[]);
    let (status, body) = session(&app, &der_base64, &nonce, &signature).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn the_signature_certificate_never_signs_in() {
    let app = spawn_demo_app().await;
    let device = enroll(&app, "card");
    // What the CA put in each certificate: nonRepudiation only in the signature one.
    let key_usage = |kind: &str| {
        let output = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "keyUsage", "-in"])
            .arg(device.file(kind, ".pem"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(key_usage("signature").contains("Non Repudiation"));
    assert!(!key_usage("authentication").contains("Non Repudiation"));
    assert!(key_usage("authentication").contains("Digital Signature"));

    // Even with a perfect signature by its own key, active and in the registry.
    let nonce = challenge(&app).await;
    let signature = sign(&device.file("signature", ".key.pem"), &nonce, &[]);
    let (status, body) = session(&app, &device.certificate("signature"), &nonce, &signature).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["type"], "/problems/signature-certificate-sign-in");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("authentication certificate"),
        "{body}"
    );
}

#[tokio::test]
async fn rsa_keys_sign_with_pkcs1_or_pss() {
    let app = spawn_demo_app().await;
    // An RSA-2048 key made by openssl, certified by the service's CA and registered.
    let dir = app.database.dir.path().join("rsa");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.pem");
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success());
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    let device = enroll(&app, "for-rsa");
    let issued = issue_for_holder(&app, &public.stdout);
    // It replaces the enrolled authentication certificate in the registry.
    let mut conn = app.pool.get().unwrap();
    diesel::update(
        certificates::table
            .filter(certificates::device_id.eq(&device.enrolled.device_id))
            .filter(certificates::kind.eq("authentication")),
    )
    .set(certificates::serial_number.eq(&issued.serial_number))
    .execute(&mut conn)
    .unwrap();
    drop(conn);
    for extra in [
        &[][..],
        &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
        ][..],
    ] {
        let nonce = challenge(&app).await;
        let signature = sign(&key, &nonce, extra);
        let (status, body) = session(&app, &issued.pem, &nonce, &signature).await;
        assert_eq!(status, 201, "{extra:?}: {body}");
    }
}

#[tokio::test]
async fn every_refusal_has_its_problem() {
    let app = spawn_demo_app().await;
    let device = enroll(&app, "card");
    let key = device.file("authentication", ".key.pem");
    let certificate = device.certificate("authentication");

    // A replayed challenge: the first use burns it.
    let nonce = challenge(&app).await;
    let signature = sign(&key, &nonce, &[]);
    assert_eq!(session(&app, &certificate, &nonce, &signature).await.0, 201);
    let (status, body) = session(&app, &certificate, &nonce, &signature).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("/problems/agent-challenge"))
    );
    // A nonce the service never gave.
    let (status, body) = session(&app, &certificate, "made-up", &signature).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("/problems/agent-challenge"))
    );

    // A signature by another key (the signature key), or over other bytes.
    let nonce = challenge(&app).await;
    let wrong = sign(&device.file("signature", ".key.pem"), &nonce, &[]);
    let (status, body) = session(&app, &certificate, &nonce, &wrong).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("/problems/bad-signature"))
    );
    let nonce = challenge(&app).await;
    let other_bytes = sign(&key, "something else", &[]);
    let (status, body) = session(&app, &certificate, &nonce, &other_bytes).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("/problems/bad-signature"))
    );

    // A certificate from elsewhere: self-signed by openssl for the same key.
    let self_signed = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-days",
            "30",
            "-subj",
            "/CN=BIANCHI LAURA",
            "-key",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(self_signed.status.success());
    let nonce = challenge(&app).await;
    let signature = sign(&key, &nonce, &[]);
    let (status, body) = session(
        &app,
        &String::from_utf8(self_signed.stdout).unwrap(),
        &nonce,
        &signature,
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("/problems/untrusted-certificate"))
    );

    // Issued by the service's CA but never registered.
    let stray = DeviceKey::generate().unwrap();
    let issued = issue_for_holder(&app, &stray.public_der);
    let stray_key = app.database.dir.path().join("stray.key.pem");
    std::fs::write(&stray_key, &stray.private_pem).unwrap();
    let nonce = challenge(&app).await;
    let signature = sign(&stray_key, &nonce, &[]);
    let (status, body) = session(&app, &issued.pem, &nonce, &signature).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("/problems/unknown-certificate"))
    );

    // Revoked in the registry.
    let mut conn = app.pool.get().unwrap();
    diesel::update(
        certificates::table
            .filter(certificates::device_id.eq(&device.enrolled.device_id))
            .filter(certificates::kind.eq("authentication")),
    )
    .set(certificates::status.eq("revoked"))
    .execute(&mut conn)
    .unwrap();
    drop(conn);
    let nonce = challenge(&app).await;
    let signature = sign(&key, &nonce, &[]);
    let (status, body) = session(&app, &certificate, &nonce, &signature).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("/problems/certificate-not-active"))
    );

    // Not a certificate, not base64: 400 naming the field.
    let (status, body) = session(&app, "not a certificate!", &nonce, &signature).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["field"], "certificate");
    let (status, body) = session(&app, &certificate, &nonce, "***").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["field"], "signature");
}

/// RFC 9773 CertID of a certificate file, from what openssl prints.
fn cert_id(certificate: &Path) -> String {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(["x509", "-noout"])
            .args(args)
            .arg("-in")
            .arg(certificate)
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let hex_bytes = |text: &str| -> Vec<u8> {
        let digits: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    };
    let aki = run(&["-ext", "authorityKeyIdentifier"]);
    let key_line = aki
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .trim_start_matches("keyid:");
    let serial = run(&["-serial"]);
    let serial = serial.trim().trim_start_matches("serial=");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}",
        b64.encode(hex_bytes(key_line)),
        b64.encode(hex_bytes(serial))
    )
}

#[tokio::test]
async fn renewal_info_suggests_the_window_of_a_known_certificate() {
    let app = spawn_demo_app().await;
    let device = enroll(&app, "card");
    let id = cert_id(&device.file("signature", ".pem"));
    let response = app
        .client
        .get(format!("{}/api/v1/renewal-info/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["retry-after"], "21600");
    let body: Value = response.json().await.unwrap();
    let not_after = device.enrolled.certificates[0].issued.not_after;
    let start: chrono::DateTime<Utc> = body["suggestedWindow"]["start"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end: chrono::DateTime<Utc> = body["suggestedWindow"]["end"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(start, not_after - Duration::days(90));
    assert_eq!(end, not_after - Duration::days(7));

    // Unknown serial, another issuer's key identifier, and a malformed CertID.
    let (key, _) = id.split_once('.').unwrap();
    for (path, status) in [
        (format!("{key}.AQIDBA"), 404),
        (format!("AQIDBA.{}", id.split_once('.').unwrap().1), 404),
        ("not-a-cert-id".to_owned(), 400),
    ] {
        let response = app
            .client
            .get(format!("{}/api/v1/renewal-info/{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        let expected = if status == 404 {
            "/problems/unknown-certificate"
        } else {
            "/problems/invalid-field"
        };
        assert_eq!(body["type"], expected, "{path}: {body}");
    }
}

#[tokio::test]
async fn the_agent_sees_its_device_with_statuses_and_the_coupons_that_fit() {
    let app = spawn_demo_app().await;
    let device = enroll(&app, "card");
    let nonce = challenge(&app).await;
    let signature = sign(&device.file("authentication", ".key.pem"), &nonce, &[]);
    let (status, body) = session(
        &app,
        &device.certificate("authentication"),
        &nonce,
        &signature,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let get = |token: Option<String>| {
        let request = app
            .client
            .get(format!("{}/api/v1/agent/certificates", app.address));
        async move {
            let request = match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = get(Some(token.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["device"]["serial_number"],
        device.enrolled.serial_number.as_str()
    );
    let certificates = body["device"]["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 2);
    for certificate in certificates {
        assert_eq!(certificate["status"], "active");
        assert_eq!(
            certificate["renewal"]["status"], "renewable",
            "40 days left"
        );
    }
    assert_eq!(
        body["device"]["renew_together"],
        json!(["signature", "authentication"])
    );
    let fits = |kind: &str| -> Vec<String> {
        let mut codes: Vec<String> = body["coupons_that_fit"][kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        codes.sort();
        codes
    };
    assert_eq!(
        fits("signature"),
        ["RIN-FIRMA", "RIN-FIRMA-CNS", "RIN-FIRMA-RUOLO"]
    );
    assert_eq!(
        fits("authentication"),
        ["RIN-CNS", "RIN-CNS-PROF", "RIN-FIRMA-CNS"]
    );

    // Without a token, or with a customer's access token: 401.
    assert_eq!(get(None).await.0, 401);
    let customer = app.customer("visura").await;
    assert_eq!(get(Some(customer.token.clone())).await.0, 401);

    // The device left the brand's registry after the sign-in: told gone, by name.
    diesel::update(devices::table.filter(devices::id.eq(&device.enrolled.device_id)))
        .set(devices::brand_id.eq("lextel"))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    let (status, body) = get(Some(token)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], "/problems/unknown-device");
}
