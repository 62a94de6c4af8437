//! Starts the real application on a random port against a fresh database: a SQLite file
//! in a temporary directory, or, when `TEST_DATABASE_URL` names a PostgreSQL server, a
//! new database on it made for this test alone and dropped afterwards.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rinnovo::config::Config;
use rinnovo::db::schema::{certificates, devices, holders};
use rinnovo::db::{Backend, DatabaseUrl, Pool};
use rinnovo::startup::{Application, StartOptions};
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: Pool,
    pub database: TestDatabase,
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    /// Keeps the SQLite file's directory alive; the data dir of the test too.
    pub dir: tempfile::TempDir,
    /// (server URL, database name) of a PostgreSQL database to drop at the end.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub fn create() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match std::env::var("TEST_DATABASE_URL") {
            Ok(server_url) if !server_url.trim().is_empty() => {
                let name = format!("rinnovo_test_{}", Uuid::new_v4().simple());
                let mut admin = PgConnection::establish(&server_url)
                    .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is not reachable: {e}"));
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create the test database");
                Self {
                    url: with_database_name(&server_url, &name),
                    backend: Backend::Postgres,
                    dir,
                    postgres: Some((server_url, name)),
                }
            }
            _ => {
                let path: PathBuf = dir.path().join("rinnovo.sqlite3");
                Self {
                    url: format!("sqlite://{}", path.display()),
                    backend: Backend::Sqlite,
                    dir,
                    postgres: None,
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server_url, name)) = &self.postgres {
            if let Ok(mut admin) = PgConnection::establish(server_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// Replaces the database name (the path) of a postgres:// URL, keeping any query.
pub fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The configuration a test app runs with: the test's database, port 0, one worker.
pub fn test_config(database: &TestDatabase) -> Config {
    let url = database.url.clone();
    let data_dir = database.dir.path().display().to_string();
    Config::from_lookup(|name| match name {
        "RINNOVO_DATABASE_URL" => Some(url.clone()),
        "RINNOVO_DATA_DIR" => Some(data_dir.clone()),
        "RINNOVO_BIND" => Some("127.0.0.1:0".into()),
        "RINNOVO_HTTP_WORKERS" => Some("1".into()),
        "RINNOVO_DB_POOL_SIZE" => Some("8".into()),
        "RINNOVO_SHUTDOWN_TIMEOUT_SECS" => Some("1".into()),
        _ => None,
    })
    .expect("test configuration is valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(StartOptions::default()).await
}

pub async fn spawn_demo_app() -> TestApp {
    spawn_app_with(StartOptions { demo: true }).await
}

async fn spawn_app_with(options: StartOptions) -> TestApp {
    let database = TestDatabase::create();
    let app = Application::build(test_config(&database), options)
        .await
        .expect("the application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        pool,
        database,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn lookup(&self, codice_fiscale: &str) -> reqwest::Response {
        self.get(&format!("/api/v1/holders/{codice_fiscale}/devices"))
            .await
    }

    /// Registers a holder and returns its id.
    pub fn add_holder(&self, codice_fiscale: &str, given_name: &str, surname: &str) -> String {
        let id = Uuid::now_v7().to_string();
        diesel::insert_into(holders::table)
            .values((
                holders::id.eq(&id),
                holders::codice_fiscale.eq(codice_fiscale),
                holders::given_name.eq(given_name),
                holders::surname.eq(surname),
                holders::created_at.eq(Utc::now().naive_utc()),
            ))
            .execute(&mut self.pool.get().unwrap())
            .expect("insert holder");
        id
    }

    /// Registers a device of the holder and returns its id.
    pub fn add_device(&self, holder_id: &str, serial_number: &str) -> String {
        let id = Uuid::now_v7().to_string();
        diesel::insert_into(devices::table)
            .values((
                devices::id.eq(&id),
                devices::holder_id.eq(holder_id),
                devices::brand_id.eq("visura"),
                devices::serial_number.eq(serial_number),
                devices::kind.eq("smart_card"),
                devices::activated_at.eq(Utc::now().naive_utc()),
                devices::created_at.eq(Utc::now().naive_utc()),
            ))
            .execute(&mut self.pool.get().unwrap())
            .expect("insert device");
        id
    }

    /// Registers a certificate on the device and returns its id.
    pub fn add_certificate(
        &self,
        device_id: &str,
        kind: &str,
        not_after: DateTime<Utc>,
        status: &str,
    ) -> String {
        let id = Uuid::now_v7().to_string();
        let not_after: NaiveDateTime = not_after.naive_utc();
        diesel::insert_into(certificates::table)
            .values((
                certificates::id.eq(&id),
                certificates::device_id.eq(device_id),
                certificates::kind.eq(kind),
                certificates::issuer.eq("CN=Test CA"),
                certificates::serial_number.eq(Uuid::new_v4().simple().to_string()),
                certificates::subject.eq("CN=TEST"),
                certificates::not_before.eq(not_after - chrono::Duration::days(3 * 365)),
                certificates::not_after.eq(not_after),
                certificates::status.eq(status),
                certificates::created_at.eq(Utc::now().naive_utc()),
            ))
            .execute(&mut self.pool.get().unwrap())
            .expect("insert certificate");
        id
    }
}

/// Reads a problem response and checks the parts every problem has.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "problems are served as application/problem+json"
    );
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().unwrap().starts_with("/problems/"),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}

#[allow(dead_code)]
pub fn database_url(app: &TestApp) -> DatabaseUrl {
    DatabaseUrl::parse(&app.database.url).unwrap()
}
