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
