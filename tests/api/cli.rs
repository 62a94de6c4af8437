//! The `rinnovo` binary itself: configuration errors, migrate, seed, serve and a
//! graceful stop on SIGTERM.

use std::io::{BufRead, BufReader, Lines, Write as _};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestDatabase;

pub(crate) fn rinnovo(database: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rinnovo"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RINNOVO_DATABASE_URL", &database.url)
        .env("RINNOVO_DATA_DIR", database.dir.path())
        .env("RINNOVO_LOG", "info");
    command
}

/// Starts `serve` (a `rinnovo(..)` command with its arguments) on a free port with a JSON
/// log, and waits until it says it listens: the process, its port, and the rest of its log
/// (read it, or the server blocks on a full pipe).
pub(crate) fn serve(mut command: Command) -> (Child, u16, Lines<BufReader<ChildStderr>>) {
    let mut process = command
        .env("RINNOVO_BIND", "127.0.0.1:0")
        .env("RINNOVO_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(process.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("serve logs its port").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("JSON log line expected ({e}): {line}"));
        if entry["message"] == "rinnovo is listening" {
            break entry["port"].as_u64().unwrap() as u16;
        }
    };
    (process, port, lines)
}

/// `rinnovo user add` with the password typed on stdin, as an operator adds a user.
pub(crate) fn add_user(
    database: &TestDatabase,
    [brand, email, name, role]: [&str; 4],
    password: &str,
) -> std::process::Output {
    let mut child = rinnovo(database)
        .args(["user", "add", "--brand", brand, "--email", email])
        .args(["--name", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn wrong_configuration_stops_with_every_problem_named() {
    let database = TestDatabase::create();
    let output = rinnovo(&database)
        .env("RINNOVO_BIND", "not-an-address")
        .env("RINNOVO_DB_POOL_SIZE", "many")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RINNOVO_BIND 'not-an-address'"), "{stderr}");
    assert!(stderr.contains("RINNOVO_DB_POOL_SIZE 'many'"), "{stderr}");
}

#[test]
fn an_unreachable_database_is_reported_without_the_password() {
    let database = TestDatabase::create();
    let output = rinnovo(&database)
        .env(
            "RINNOVO_DATABASE_URL",
            "postgres://app:hunter2@127.0.0.1:1/rinnovo?connect_timeout=2",
        )
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to postgres://app:***@127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// A one-shot command exits with its own status, every time. It used to die of a
/// segmentation fault (or a Kerberos assertion) in about one run in twelve on PostgreSQL,
/// after its work was done and without a word: the exit handlers of libpq's TLS and
/// Kerberos libraries ran while a pool thread was still opening a connection with them.
#[test]
fn one_shot_commands_exit_with_their_own_status_every_time() {
    let database = TestDatabase::create();
    let first = rinnovo(&database).arg("migrate").output().unwrap();
    assert!(first.status.success(), "{first:?}");
    for run in 0..60 {
        let output = rinnovo(&database)
            .env("RINNOVO_LOG", "warn")
            .arg("migrate")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "run {run}: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "database is up to date\n"
        );
        assert!(output.stderr.is_empty(), "run {run}: {output:?}");
    }
}

#[test]
fn migrate_then_seed_then_seed_again() {
    let database = TestDatabase::create();
    let migrate = rinnovo(&database).arg("migrate").output().unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    for _ in 0..2 {
        let seed = rinnovo(&database)
            .args(["seed", "--demo"])
            .output()
            .unwrap();
        assert!(seed.status.success(), "{seed:?}");
    }
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let database = TestDatabase::create();
    let mut served = rinnovo(&database);
    served.args(["serve", "--demo"]);
    let (mut child, port, lines) = serve(served);
    let body = std::process::Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/health/ready")])
        .output()
        .unwrap();
    assert!(body.status.success());
    // Paths carry coupon codes and codici fiscali: the request log names the route, never
    // the path.
    let code = rinnovo::coupons::CouponCode::generate().formatted();
    for path in [
        format!("/api/v1/coupons/{code}/status"),
        "/api/v1/holders/RSSMRA80A01H501U/devices".to_owned(),
    ] {
        std::process::Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{port}{path}")])
            .output()
            .unwrap();
    }

    let started = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let log = rest.join("\n");
    assert!(
        log.contains("/api/v1/coupons/{code}/status"),
        "the route is logged: {log}"
    );
    assert!(!log.contains(&code), "a coupon code in the log: {log}");
    assert!(
        !log.contains("RSSMRA80A01H501U"),
        "a codice fiscale in the log"
    );
}

#[test]
fn user_add_reads_the_password_from_stdin_or_generates_one() {
    let database = TestDatabase::create();
    let output = add_user(
        &database,
        ["visura", "Ops@Visura.example", "Operatore", "back_office"],
        "operatore molto sicuro",
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("created back_office ops@visura.example (visura)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("molto sicuro"),
        "a typed password is never echoed"
    );

    let generated = rinnovo(&database)
        .args([
            "user",
            "add",
            "--brand",
            "lextel",
            "--email",
            "io@lextel.example",
            "--name",
            "IR",
            "--role",
            "registration_officer",
            "--generate-password",
        ])
        .output()
        .unwrap();
    assert!(generated.status.success(), "{generated:?}");
    let stdout = String::from_utf8_lossy(&generated.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the generated password is shown once");
    assert_eq!(password.len(), 20);

    let duplicate = rinnovo(&database)
        .args([
            "user",
            "add",
            "--brand",
            "lextel",
            "--email",
            "io@lextel.example",
            "--name",
            "IR",
            "--role",
            "customer",
            "--generate-password",
        ])
        .output()
        .unwrap();
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));

    let bad_role = rinnovo(&database)
        .args([
            "user",
            "add",
            "--brand",
            "visura",
            "--email",
            "x@visura.example",
            "--name",
            "X",
            "--role",
            "admin",
            "--generate-password",
        ])
        .output()
        .unwrap();
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("--role"));
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl").args(args).output().unwrap()
}

#[test]
fn an_enrolled_device_has_certificates_that_openssl_verifies_and_the_registry_knows() {
    use diesel::prelude::*;
    use rinnovo::db::schema::{certificates, devices, holders};

    let database = TestDatabase::create();
    let seed = rinnovo(&database)
        .args(["seed", "--demo"])
        .output()
        .unwrap();
    assert!(seed.status.success(), "{seed:?}");
    let out = database.dir.path().join("device");
    let out_text = out.to_str().unwrap();
    let enroll = |cf: &str, days: &str| {
        rinnovo(&database)
            .args([
                "device",
                "enroll",
                "--codice-fiscale",
                cf,
                "--out",
                out_text,
            ])
            .args(["--expires-in", days])
            .output()
            .unwrap()
    };
    let enrolled = enroll("BNCLRA85T52F205E", "45");
    assert!(enrolled.status.success(), "{enrolled:?}");
    let stdout = String::from_utf8_lossy(&enrolled.stdout);
    assert!(stdout.contains("enrolled"), "{stdout}");

    // The chain verifies from the embedded root, and each certificate has its profile.
    let ca = database.dir.path().join("ca");
    let root = ca.join("root.pem");
    let chain = out.join("chain.pem");
    for kind in ["signature", "authentication"] {
        let certificate = out.join(format!("{kind}.pem"));
        let verify = openssl(&[
            "verify",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            chain.to_str().unwrap(),
            certificate.to_str().unwrap(),
        ]);
        assert!(verify.status.success(), "{kind}: {verify:?}");
        let text = openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            certificate.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&text.stdout).into_owned();
        assert!(
            text.contains("serialNumber = TINIT-BNCLRA85T52F205E"),
            "{text}"
        );
        assert!(text.contains("CN = BIANCHI LAURA"), "{text}");
        if kind == "signature" {
            assert!(text.contains("Non Repudiation"), "{text}");
            assert!(!text.contains("Digital Signature"), "{text}");
        } else {
            assert!(text.contains("Digital Signature"), "{text}");
            assert!(text.contains("TLS Web Client Authentication"), "{text}");
        }
        // The key matches the certificate, and only its owner may read it.
        let key = out.join(format!("{kind}.key.pem"));
        let from_key = openssl(&["pkey", "-pubout", "-in", key.to_str().unwrap()]);
        let from_cert = openssl(&[
            "x509",
            "-noout",
            "-pubkey",
            "-in",
            certificate.to_str().unwrap(),
        ]);
        assert_eq!(from_key.stdout, from_cert.stdout);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{kind} key");
    }
    for key in ["root.key.pem", "issuing.key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }

    // The registry has the device with both certificates active, serials as openssl
    // prints them, expiring in 45 days (renewable now).
    let url = rinnovo::db::DatabaseUrl::parse(&database.url).unwrap();
    let mut conn = rinnovo::db::build_pool(&url, 1).unwrap().get().unwrap();
    // (`seed --demo` enrolled the demo agent's device for another holder.)
    let rows: Vec<(String, String, String, chrono::NaiveDateTime)> = certificates::table
        .inner_join(devices::table.inner_join(holders::table))
        .filter(holders::codice_fiscale.eq("BNCLRA85T52F205E"))
        .filter(devices::brand_id.eq("visura"))
        .filter(certificates::issuer.like("%Embedded Issuing CA%"))
        .select((
            certificates::kind,
            certificates::serial_number,
            certificates::status,
            certificates::not_after,
        ))
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), 2);
    for (kind, serial, status, not_after) in rows {
        assert_eq!(status, "active");
        let certificate = out.join(format!("{kind}.pem"));
        let printed = openssl(&[
            "x509",
            "-noout",
            "-serial",
            "-in",
            certificate.to_str().unwrap(),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&printed.stdout).trim(),
            format!("serial={serial}")
        );
        let days = (not_after - chrono::Utc::now().naive_utc()).num_days();
        assert!((44..=45).contains(&days), "{days}");
    }

    // A second device reuses the same CA; bad input is refused with the rule.
    let root_before = std::fs::read(&root).unwrap();
    let second = enroll("RSSMRA80A01H501U", "1095");
    assert!(second.status.success(), "{second:?}");
    assert_eq!(std::fs::read(&root).unwrap(), root_before);
    let unknown = enroll("NRIANN90E45F839C", "30");
    assert!(
        unknown.status.success(),
        "a registered holder without devices may enroll: {unknown:?}"
    );
    let not_registered = enroll("MRTMTT25D09F205Z", "30");
    assert!(!not_registered.status.success());
    assert!(String::from_utf8_lossy(&not_registered.stderr).contains("no holder"));
    let too_long = enroll("BNCLRA85T52F205E", "2000");
    assert!(!too_long.status.success());
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("--expires-in"));
}

/// The service and the CLI share one SQLite database, as an operator does when adding a
/// user to a running service. The user must be able to sign in at once, every time: the
/// service once dropped its own locks on the file (by opening it to test writability), and
/// the CLI, closing, took itself for the last user and removed the WAL under the service,
/// which then read an old database (401) or failed to write (500).
#[tokio::test]
async fn users_added_by_the_cli_sign_in_at_once_on_the_running_service() {
    let app = crate::helpers::spawn_app().await;
    let password = "cavallo batteria graffetta 2026";
    for round in 0..6 {
        // A customer through the service between CLI runs, so its pool opens connections.
        app.customer("visura").await;
        let email = format!("operatore-{round}@example.it");
        let output = add_user(
            &app.database,
            ["visura", &email, "Operatore", "back_office"],
            password,
        );
        assert!(output.status.success(), "{output:?}");
        let response = app.login("visura", &email, password).await;
        assert_eq!(
            response.status(),
            200,
            "round {round}: {}",
            response.text().await.unwrap()
        );
    }
}
