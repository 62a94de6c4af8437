//! The `rinnovo` binary itself: configuration errors, migrate, seed, serve and a
//! graceful stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestDatabase;

fn rinnovo(database: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rinnovo"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RINNOVO_DATABASE_URL", &database.url)
        .env("RINNOVO_DATA_DIR", database.dir.path())
        .env("RINNOVO_LOG", "info");
    command
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
    let mut child = rinnovo(&database)
        .env("RINNOVO_BIND", "127.0.0.1:0")
        .env("RINNOVO_LOG_FORMAT", "json")
        .args(["serve", "--demo"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("serve logs its port").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("JSON log line expected ({e}): {line}"));
        if entry["message"] == "rinnovo is listening" {
            break entry["port"].as_u64().unwrap();
        }
    };
    let body = std::process::Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/health/ready")])
        .output()
        .unwrap();
    assert!(body.status.success());

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
}

#[test]
fn user_add_reads_the_password_from_stdin_or_generates_one() {
    use std::io::Write;
    let database = TestDatabase::create();
    let mut child = rinnovo(&database)
        .args([
            "user",
            "add",
            "--brand",
            "visura",
            "--email",
            "Ops@Visura.example",
            "--name",
            "Operatore",
            "--role",
            "back_office",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"operatore molto sicuro\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
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
