//! The reference agent, the real `rinnovo-agent` binary, renewing the certificates of a
//! device on a real PKCS#11 token (SoftHSM2, a fresh token per test) against the real
//! server. The device's current keys and certificates are imported onto the token; the
//! agent makes the new keys there.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::{Duration, Utc};
use diesel::prelude::*;
use rinnovo::ca::{CertificateAuthority, Profile, Subject};
use rinnovo::db::schema::{agent_challenges, certificates, renewals};
use rinnovo::registry::csr::key_fingerprint;
use x509_parser::prelude::*;

use crate::agent::{ca, enroll, Device};
use crate::helpers::TestApp;
use crate::renewals::{app_with_sink, buy, coupon_status, issue_batch};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "246810";
const SO_PIN: &str = "13579111";

/// Fails (never skips) where SoftHSM2 is missing, saying how to install it.
pub(crate) fn softhsm_or_fail() {
    assert!(
        Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok()
            && Path::new(MODULE).exists(),
        "SoftHSM2 is needed for the agent's tests: apt-get install -y softhsm2 opensc \
         (it gives softhsm2-util, {MODULE} and pkcs11-tool)"
    );
}

/// A fresh SoftHSM2 token in the test's own directory.
struct SoftToken {
    conf: PathBuf,
    label: String,
}

fn run(mut command: Command) -> Output {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?}: {output:?}");
    output
}

impl SoftToken {
    fn init(app: &TestApp, label: &str) -> Self {
        softhsm_or_fail();
        let dir = app.database.dir.path().join(format!("softhsm-{label}"));
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        let token = Self {
            conf,
            label: label.to_owned(),
        };
        let mut init = token.command("softhsm2-util");
        init.args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", SO_PIN, "--pin", PIN]);
        run(init);
        token
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SOFTHSM2_CONF", &self.conf);
        command
    }

    fn pkcs11_tool(&self) -> Command {
        let mut command = self.command("pkcs11-tool");
        command
            .args(["--module", MODULE, "--token-label", &self.label])
            .args(["--login", "--pin", PIN]);
        command
    }

    /// Puts the device's keys and certificates on the token, as the card's issuer did.
    fn import(&self, device: &Device) {
        for (id, kind) in [("01", "signature"), ("02", "authentication")] {
            let mut import = self.command("softhsm2-util");
            import
                .arg("--import")
                .arg(device.file(kind, ".key.pem"))
                .args(["--token", &self.label, "--label", kind, "--id", id])
                .args(["--pin", PIN]);
            run(import);
            let der = device.file(kind, ".der");
            let mut convert = Command::new("openssl");
            convert
                .args(["x509", "-outform", "DER", "-in"])
                .arg(device.file(kind, ".pem"))
                .arg("-out")
                .arg(&der);
            run(convert);
            let mut write = self.pkcs11_tool();
            write
                .arg("--write-object")
                .arg(&der)
                .args(["--type", "cert", "--id", id, "--label", kind]);
            run(write);
        }
    }

    /// The agent on this token; the PIN from the environment.
    fn agent(&self, app: &TestApp, pin: &str, args: &[&str]) -> Command {
        let mut command = self.command(env!("CARGO_BIN_EXE_rinnovo-agent"));
        command
            .env("RINNOVO_AGENT_PIN", pin)
            .args(["--module", MODULE, "--token", &self.label])
            .args(["--server", &app.address])
            .args(args);
        command
    }

    /// Runs the agent off the test's runtime, so that the server keeps answering.
    async fn run_agent(&self, app: &TestApp, args: &[&str]) -> Output {
        let mut command = self.agent(app, PIN, args);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    async fn agent_ok(&self, app: &TestApp, args: &[&str]) -> String {
        let output = self.run_agent(app, args).await;
        assert!(
            output.status.success(),
            "rinnovo-agent {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The CKA_IDs (hex) of the objects of a type (`cert`, `privkey`, `pubkey`).
    fn ids(&self, object_type: &str) -> Vec<String> {
        let mut list = self.pkcs11_tool();
        list.args(["--list-objects", "--type", object_type]);
        let listing = String::from_utf8(run(list).stdout).unwrap();
        listing
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ID:"))
            .map(|id| id.trim().to_owned())
            .collect()
    }

    fn read(&self, object_type: &str, id: &str) -> Vec<u8> {
        let mut read = self.pkcs11_tool();
        read.args(["--read-object", "--type", object_type, "--id", id]);
        run(read).stdout
    }

    /// A line of the private key `id`'s listing: `Access:` (sensitive, never
    /// extractable...) or `Usage:` (sign, decrypt...).
    fn private_key_line(&self, id: &str, line: &str) -> String {
        let mut list = self.pkcs11_tool();
        list.args(["--list-objects", "--type", "privkey"]);
        let listing = String::from_utf8(run(list).stdout).unwrap();
        listing
            .split("Private Key Object")
            .find(|object| {
                object
                    .lines()
                    .any(|l| l.trim().strip_prefix("ID:").map(str::trim) == Some(id))
            })
            .and_then(|object| object.lines().find_map(|l| l.trim().strip_prefix(line)))
            .unwrap_or_else(|| panic!("no private key {id} on the token: {listing}"))
            .trim()
            .to_owned()
    }

    /// Each certificate on the token (serial, as the registry writes it), after checking
    /// that its key pair is next to it: the public key is the certificate's, and but for
    /// the `imported` ones the private key is sensitive, has never been extractable and
    /// only signs.
    fn certificates_with_their_keys(&self, imported: &[String]) -> Vec<String> {
        let mut serials = Vec::new();
        for id in self.ids("cert") {
            let der = self.read("cert", &id);
            let (_, certificate) = X509Certificate::from_der(&der).unwrap();
            assert_eq!(
                self.read("pubkey", &id),
                certificate.public_key().raw,
                "the public key next to certificate {id} is its own"
            );
            let serial = rinnovo::ca::serial_hex(certificate.raw_serial());
            if !imported.contains(&serial) {
                let access = self.private_key_line(&id, "Access:");
                assert!(
                    access.contains("always sensitive") && access.contains("never extractable"),
                    "private key {id}: {access}"
                );
                assert_eq!(
                    self.private_key_line(&id, "Usage:"),
                    "sign",
                    "private key {id}"
                );
            }
            serials.push(serial);
        }
        serials.sort();
        serials
    }
}

/// Replaces the device's EC keys with RSA-2048 ones, certified by the service's CA for
/// the same holder and dates, in the registry and in the device's files.
fn make_rsa(app: &TestApp, device: &Device) {
    let mut conn = app.pool.get().unwrap();
    for (kind, profile) in [
        ("signature", Profile::Signature),
        ("authentication", Profile::Authentication),
    ] {
        let key = device.file(kind, ".key.pem");
        let mut generate = Command::new("openssl");
        generate
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .arg("-out")
            .arg(&key);
        run(generate);
        let mut public = Command::new("openssl");
        public
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key);
        let public = run(public).stdout;
        let now = Utc::now();
        let issued = ca(app)
            .issue(
                &Subject {
                    codice_fiscale: crate::agent::HOLDER.into(),
                    given_name: "Laura".into(),
                    surname: "Bianchi".into(),
                },
                &public,
                profile,
                now - Duration::days(1000),
                now + Duration::days(40),
            )
            .unwrap();
        std::fs::write(device.file(kind, ".pem"), &issued.pem).unwrap();
        diesel::update(
            certificates::table
                .filter(certificates::device_id.eq(&device.enrolled.device_id))
                .filter(certificates::kind.eq(kind)),
        )
        .set((
            certificates::serial_number.eq(&issued.serial_number),
            certificates::not_after.eq(issued.not_after.naive_utc()),
            certificates::public_key_sha256.eq(key_fingerprint(&public)),
        ))
        .execute(&mut conn)
        .unwrap();
    }
}

fn renewal_count(app: &TestApp, device: &Device) -> i64 {
    let mut conn = app.pool.get().unwrap();
    renewals::table
        .filter(renewals::device_id.eq(&device.enrolled.device_id))
        .count()
        .get_result(&mut conn)
        .unwrap()
}

fn old_serials(device: &Device) -> Vec<String> {
    ["signature", "authentication"]
        .iter()
        .map(|kind| {
            let pem = std::fs::read(device.file(kind, ".pem")).unwrap();
            let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
            let (_, certificate) = X509Certificate::from_der(&pem.contents).unwrap();
            rinnovo::ca::serial_hex(certificate.raw_serial())
        })
        .collect()
}

/// Both certificates renewed with one combined coupon, the batch issuing while the agent
/// waits; the old objects gone, the new ones on the token with their keys.
async fn renew_both(rsa: bool) {
    let (app, sink) = app_with_sink(&[("RINNOVO_ISSUANCE_INTERVAL_SECS", "1".into())]).await;
    let code = buy(&app, &sink, "visura", "RIN-FIRMA-CNS", 1)
        .await
        .remove(0);
    let device = enroll(&app, "card");
    if rsa {
        make_rsa(&app, &device);
    }
    let token = SoftToken::init(&app, "card");
    token.import(&device);
    let old = old_serials(&device);

    let status = token.agent_ok(&app, &["status"]).await;
    assert_eq!(status.matches("renewable (").count(), 2, "{status}");
    assert_eq!(status.matches("(on the token)").count(), 2, "{status}");

    let renewed = token.agent_ok(&app, &["renew", "--coupon", &code]).await;
    for line in [
        "submitted: signature renewal",
        "submitted: authentication renewal",
        "installed on the token: signature certificate",
        "installed on the token: authentication certificate",
        "confirmed: signature renewal",
        "confirmed: authentication renewal",
        "removed the old signature certificate and key",
        "removed the old authentication certificate and key",
    ] {
        assert!(renewed.contains(line), "{line}: {renewed}");
    }
    assert_eq!(coupon_status(&app, &code).await, "redeemed");
    assert_eq!(renewal_count(&app, &device), 2);

    // On the token: the two new certificates, each with its non-extractable key.
    let on_token = token.certificates_with_their_keys(&old);
    assert_eq!(on_token.len(), 2, "{on_token:?}");
    assert!(on_token.iter().all(|s| !old.contains(s)), "{on_token:?}");
    assert_eq!(token.ids("privkey").len(), 2);

    // The agent signs in with the new authentication certificate and sees them active.
    let status = token.agent_ok(&app, &["status"]).await;
    assert_eq!(status.matches(" active serial ").count(), 2, "{status}");
    for serial in &on_token {
        assert!(status.contains(serial), "{serial}: {status}");
    }

    // Old objects left by a run stopped after its confirmations go with `resume`; the
    // certificates in use and their keys stay.
    token.import(&device);
    assert_eq!(token.ids("cert").len(), 4);
    let resumed = token.agent_ok(&app, &["resume"]).await;
    assert_eq!(resumed.matches("removed the old").count(), 2, "{resumed}");
    assert_eq!(token.certificates_with_their_keys(&old), on_token);
    assert_eq!(token.ids("privkey").len(), 2);
    assert_eq!(renewal_count(&app, &device), 2);
}

#[tokio::test]
async fn the_agent_renews_both_certificates_on_an_ec_token() {
    renew_both(false).await;
}

#[tokio::test]
async fn the_agent_renews_both_certificates_on_an_rsa_token() {
    renew_both(true).await;
}

#[tokio::test]
async fn a_device_enrolled_on_the_token_renews_from_it() {
    let (app, sink) = app_with_sink(&[("RINNOVO_ISSUANCE_INTERVAL_SECS", "1".into())]).await;
    let code = buy(&app, &sink, "visura", "RIN-FIRMA-CNS", 1)
        .await
        .remove(0);
    let token = SoftToken::init(&app, "enrolled");
    let out = app.database.dir.path().join("enrolled");
    let mut enroll = crate::cli::rinnovo(&app.database);
    enroll
        .env("SOFTHSM2_CONF", &token.conf)
        .args(["device", "enroll", "--codice-fiscale", crate::agent::HOLDER])
        .arg("--out")
        .arg(&out)
        .args(["--expires-in", "40", "--pkcs11-module", MODULE])
        .args(["--token", "enrolled", "--pin", PIN]);
    let enrolled = String::from_utf8(run(enroll).stdout).unwrap();
    assert!(
        enrolled.contains("key and certificate on the token"),
        "{enrolled}"
    );
    // No key in a file: both were made on the token, and never leave it.
    assert!(!out.join("signature.key.pem").exists());
    assert!(!out.join("authentication.key.pem").exists());
    let made_there = token.certificates_with_their_keys(&[]);
    assert_eq!(made_there.len(), 2);

    let status = token.agent_ok(&app, &["status"]).await;
    assert_eq!(status.matches("renewable (").count(), 2, "{status}");
    assert_eq!(status.matches("(on the token)").count(), 2, "{status}");
    let renewed = token.agent_ok(&app, &["renew", "--coupon", &code]).await;
    assert_eq!(renewed.matches("confirmed:").count(), 2, "{renewed}");
    let on_token = token.certificates_with_their_keys(&[]);
    assert_eq!(on_token.len(), 2);
    assert!(on_token.iter().all(|s| !made_there.contains(s)));
}

/// `renew --coupon signature=CODE`, killed once it says the request is sent (the batch
/// asleep, it would wait): the lines it printed.
async fn renew_until_submitted(token: &SoftToken, app: &TestApp, code: &str) -> Vec<String> {
    let signature_coupon = format!("signature={code}");
    let mut agent = token.agent(app, PIN, &["renew", "--coupon", &signature_coupon]);
    agent.stdout(Stdio::piped()).stderr(Stdio::null());
    tokio::task::spawn_blocking(move || {
        let mut child = agent.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = Vec::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            let done = line.starts_with("submitted:");
            seen.push(line);
            if done {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        seen
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_certificate_written_but_not_confirmed_is_confirmed_by_resume() {
    let (app, sink) = app_with_sink(&[]).await;
    let code = buy(&app, &sink, "visura", "RIN-FIRMA", 1).await.remove(0);
    let device = enroll(&app, "card");
    let token = SoftToken::init(&app, "card");
    token.import(&device);
    let old = old_serials(&device);
    renew_until_submitted(&token, &app, &code).await;
    assert_eq!(issue_batch(&app)["issued"], 1);

    // A run stopped between writing the certificate and confirming it: the certificate
    // is on the token next to its new key, the service not told.
    let nonce = crate::agent::challenge(&app).await;
    let signature = crate::agent::sign(&device.file("authentication", ".key.pem"), &nonce, &[]);
    let (_, body) = crate::agent::session(
        &app,
        &device.certificate("authentication"),
        &nonce,
        &signature,
    )
    .await;
    let agent_token = body["token"].as_str().unwrap();
    let seen = app
        .get_json(agent_token, "/api/v1/agent/certificates")
        .await;
    let renewal_id = seen["device"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "signature")
        .unwrap()["renewal"]["renewal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let chain = app
        .client
        .get(format!(
            "{}/api/v1/agent/renewals/{renewal_id}",
            app.address
        ))
        .bearer_auth(agent_token)
        .header("Accept", "application/pem-certificate-chain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, leaf) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    let leaf_file = app.database.dir.path().join("new-signature.der");
    std::fs::write(&leaf_file, &leaf.contents).unwrap();
    let new_key_id = token
        .ids("privkey")
        .into_iter()
        .find(|id| id != "01" && id != "02")
        .unwrap();
    let mut write = token.pkcs11_tool();
    write.arg("--write-object").arg(&leaf_file).args([
        "--type",
        "cert",
        "--id",
        &new_key_id,
        "--label",
        "signature",
    ]);
    run(write);

    let resumed = token.agent_ok(&app, &["resume"]).await;
    assert!(
        resumed.contains("confirmed: signature renewal")
            && !resumed.contains("installed on the token")
            && resumed.contains("removed the old signature certificate and key"),
        "{resumed}"
    );
    assert_eq!(renewal_count(&app, &device), 1);
    assert_eq!(coupon_status(&app, &code).await, "redeemed");
    let on_token = token.certificates_with_their_keys(&old);
    assert_eq!(on_token.len(), 2);
    assert!(!on_token.contains(&old[0]));
}

#[tokio::test]
async fn killed_after_submitting_resume_finishes_the_one_renewal() {
    // The batch asleep: the agent waits until it is killed.
    let (app, sink) = app_with_sink(&[]).await;
    let code = buy(&app, &sink, "visura", "RIN-FIRMA", 1).await.remove(0);
    let device = enroll(&app, "card");
    let token = SoftToken::init(&app, "card");
    token.import(&device);
    let old = old_serials(&device);

    let submitted = renew_until_submitted(&token, &app, &code).await;
    assert!(
        submitted
            .last()
            .unwrap()
            .starts_with("submitted: signature renewal"),
        "{submitted:?}"
    );
    assert_eq!(coupon_status(&app, &code).await, "reserved");
    // The new key is on the token, the old certificates and keys too.
    assert_eq!(token.ids("privkey").len(), 3);
    assert_eq!(token.ids("cert").len(), 2);

    let status = token.agent_ok(&app, &["status"]).await;
    assert!(status.contains("renewal_pending"), "{status}");
    assert!(!status.contains("a new signature key"), "{status}");
    assert_eq!(issue_batch(&app)["issued"], 1);
    let resumed = token.agent_ok(&app, &["resume"]).await;
    assert!(
        resumed.contains("installed on the token: signature certificate")
            && resumed.contains("removed the old signature certificate and key"),
        "{resumed}"
    );
    assert_eq!(renewal_count(&app, &device), 1, "never a second renewal");
    assert_eq!(coupon_status(&app, &code).await, "redeemed");
    let on_token = token.certificates_with_their_keys(&old);
    assert_eq!(on_token.len(), 2);
    assert!(
        !on_token.contains(&old[0]),
        "the old signature certificate is gone"
    );
    assert!(on_token.contains(&old[1]), "the authentication one stays");

    // Again: nothing left to do, nothing asked twice.
    token.agent_ok(&app, &["resume"]).await;
    assert_eq!(renewal_count(&app, &device), 1);
    assert_eq!(token.certificates_with_their_keys(&old), on_token);
}

#[tokio::test]
async fn a_key_made_by_a_run_stopped_before_its_request_is_used_not_doubled() {
    let (app, sink) = app_with_sink(&[("RINNOVO_ISSUANCE_INTERVAL_SECS", "1".into())]).await;
    let code = buy(&app, &sink, "visura", "RIN-FIRMA", 1).await.remove(0);
    let device = enroll(&app, "card");
    let token = SoftToken::init(&app, "card");
    token.import(&device);
    // What a run leaves when stopped between the new key and the request.
    let mut keypair = token.pkcs11_tool();
    keypair
        .args(["--keypairgen", "--key-type", "EC:prime256v1", "--id", "99"])
        .args(["--label", "rinnovo-new signature", "--sensitive"]);
    run(keypair);

    let status = token.agent_ok(&app, &["status"]).await;
    assert!(
        status.contains("a new signature key is on the token"),
        "{status}"
    );
    let signature_coupon = format!("signature={code}");
    token
        .agent_ok(&app, &["renew", "--coupon", &signature_coupon])
        .await;
    assert_eq!(token.ids("privkey").len(), 2, "no second new key");
    let ids = token.ids("cert");
    assert!(ids.contains(&"99".to_owned()), "{ids:?}");
    assert_eq!(renewal_count(&app, &device), 1);
    let status = token.agent_ok(&app, &["status"]).await;
    assert!(!status.contains("a new signature key"), "{status}");
}

#[tokio::test]
async fn a_refused_coupon_is_told_and_the_new_keys_go() {
    let (app, sink) = app_with_sink(&[]).await;
    let cns = buy(&app, &sink, "visura", "RIN-CNS", 1).await.remove(0);
    let device = enroll(&app, "card");
    let token = SoftToken::init(&app, "card");
    token.import(&device);

    // A coupon for the authentication certificate given for the signature one.
    let wrong_kind = format!("signature={cns}");
    let output = token
        .run_agent(&app, &["renew", "--coupon", &wrong_kind])
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the coupon is for another kind of certificate"),
        "{stderr}"
    );
    assert_eq!(token.ids("privkey").len(), 2, "the key made for it is gone");
    assert_eq!(coupon_status(&app, &cns).await, "available");
    assert_eq!(renewal_count(&app, &device), 0);
}

#[tokio::test]
async fn a_wrong_pin_is_told_and_nothing_is_sent() {
    let app = crate::helpers::spawn_demo_app().await;
    let device = enroll(&app, "card");
    let token = SoftToken::init(&app, "card");
    token.import(&device);
    let mut agent = token.agent(&app, "000000", &["renew", "--coupon", "ANY-CODE"]);
    let output = tokio::task::spawn_blocking(move || agent.output().unwrap())
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wrong PIN"), "{stderr}");
    assert!(
        !stderr.contains("000000"),
        "the PIN is never shown: {stderr}"
    );
    let mut conn = app.pool.get().unwrap();
    let challenges: i64 = agent_challenges::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(challenges, 0, "not even a challenge was asked for");

    // A token that is not there.
    let elsewhere = SoftToken {
        conf: token.conf.clone(),
        label: "elsewhere".into(),
    };
    let mut agent = elsewhere.agent(&app, PIN, &["status"]);
    let output = tokio::task::spawn_blocking(move || agent.output().unwrap())
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no token labelled \"elsewhere\""),
        "{stderr}"
    );
}
