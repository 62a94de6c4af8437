//! Starts the real application on a random port against a fresh database: a SQLite file
//! in a temporary directory, or, when `TEST_DATABASE_URL` names a PostgreSQL server, a
//! new database on it made for this test alone and dropped afterwards.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rinnovo::audit::Actor;
use rinnovo::auth::confirmation;
use rinnovo::auth::{users, NewPassword, NewUser, Role};
use rinnovo::config::Config;
use rinnovo::db::schema::{certificates, devices, emails, holders};
use rinnovo::db::{Backend, DatabaseUrl, DbConnection, Pool};
use rinnovo::email_address::EmailAddress;
use rinnovo::money::Money;
use rinnovo::prepaid;
use rinnovo::startup::{Application, StartOptions};
use rinnovo::validation::PersonName;
use serde_json::json;
use uuid::Uuid;

pub const PASSWORD: &str = "una password lunga";

/// A signed-in user: their access token and who they are.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub email: String,
}

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

/// The configuration a test app runs with: the test's database, port 0, one worker,
/// quick email retries; `extra` adds or overrides variables.
pub fn test_config(database: &TestDatabase, extra: &[(&str, String)]) -> Config {
    let url = database.url.clone();
    let data_dir = database.dir.path().display().to_string();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Config::from_lookup(|name| {
        if let Some((_, value)) = extra.iter().find(|(k, _)| k == name) {
            return Some(value.clone());
        }
        match name {
            "RINNOVO_DATABASE_URL" => Some(url.clone()),
            "RINNOVO_DATA_DIR" => Some(data_dir.clone()),
            "RINNOVO_BIND" => Some("127.0.0.1:0".into()),
            "RINNOVO_HTTP_WORKERS" => Some("1".into()),
            "RINNOVO_DB_POOL_SIZE" => Some("8".into()),
            "RINNOVO_SHUTDOWN_TIMEOUT_SECS" => Some("1".into()),
            "RINNOVO_MAIL_RETRY_BASE_SECS" => Some("1".into()),
            _ => None,
        }
    })
    .expect("test configuration is valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(StartOptions::default(), &[]).await
}

/// An app whose requests wait up to 30 s for a database connection instead of 5: for
/// the tests that fire a hundred requests at once to check an invariant (not the wait),
/// which a loaded machine would otherwise answer in part with 503.
pub async fn spawn_app_for_a_crowd() -> TestApp {
    let wait = ("RINNOVO_DB_POOL_WAIT_SECS", "30".to_owned());
    spawn_app_with(StartOptions::default(), &[wait]).await
}

pub async fn spawn_demo_app() -> TestApp {
    spawn_app_with(StartOptions { demo: true }, &[]).await
}

/// An app whose emails go to an SMTP server on `smtp_port` of loopback.
pub async fn spawn_app_with_smtp(smtp_port: u16, extra: &[(&str, String)]) -> TestApp {
    let mut vars = vec![("RINNOVO_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))];
    vars.extend(extra.iter().cloned());
    spawn_app_with(StartOptions::default(), &vars).await
}

pub async fn spawn_app_with(options: StartOptions, extra: &[(&str, String)]) -> TestApp {
    spawn_on(TestDatabase::create(), options, extra).await
}

impl TestApp {
    /// A second service process on the same database (own port, own pool), as when
    /// several machines share one PostgreSQL. It shares this app's data directory, so it
    /// has the same signing secret and coupon key.
    pub async fn another_process(&self) -> (String, Pool) {
        let config = test_config(&self.database, &[("RINNOVO_RUN_WORKERS", "false".into())]);
        let app = Application::build(config, StartOptions::default())
            .await
            .expect("the second process starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let pool = app.pool().clone();
        tokio::spawn(app.run_until_stopped());
        (address, pool)
    }
}

pub async fn spawn_on(
    database: TestDatabase,
    options: StartOptions,
    extra: &[(&str, String)],
) -> TestApp {
    let app = Application::build(test_config(&database, extra), options)
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

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// GET as `token`, the body as JSON (whatever the status: assert it where it matters).
    pub async fn get_json(&self, token: &str, path: &str) -> serde_json::Value {
        self.get_as(token, path)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json_as(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// PATCH /api/v1/me as `token`.
    pub async fn patch_me(&self, token: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .patch(format!("{}/api/v1/me", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Signs in from another client address: `ip` is any address of the loopback network
    /// (127.0.0.0/8), which the server sees as the TCP peer.
    pub async fn login_from(
        &self,
        ip: &str,
        brand: &str,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().expect("an IP address"))
            .build()
            .expect("a client")
            .post(format!("{}/api/v1/auth/login", self.address))
            .json(&json!({ "brand": brand, "email": email, "password": password }))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn lookup(&self, token: &str, codice_fiscale: &str) -> reqwest::Response {
        self.get_as(token, &format!("/api/v1/holders/{codice_fiscale}/devices"))
            .await
    }

    pub async fn login(&self, brand: &str, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({ "brand": brand, "email": email, "password": password }),
        )
        .await
    }

    /// Signs up a new customer of `brand` through the API and signs them in.
    pub async fn customer(&self, brand: &str) -> SignedIn {
        let email = format!("cliente-{}@example.it", Uuid::new_v4().simple());
        let response = self
            .post_json(
                "/api/v1/auth/signup",
                &json!({ "brand": brand, "name": "Studio Test", "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "signup: {}",
            response.text().await.unwrap()
        );
        let customer = self.signed_in(brand, &email).await;
        self.confirm_email(&customer).await;
        self.give_billing_data(&customer).await;
        customer
    }

    /// PUT as `token`.
    pub async fn put_json_as(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .put(format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Gives `user` valid billing data (a person), as a buyer does before the first order.
    pub async fn give_billing_data(&self, user: &SignedIn) {
        let response = self
            .put_json_as(&user.token, "/api/v1/me/billing", &billing_person())
            .await;
        assert_eq!(
            response.status(),
            200,
            "billing data: {}",
            response.text().await.unwrap()
        );
    }

    /// Signs up a new customer of `brand` through the API and signs them in, without
    /// opening the confirmation link: they cannot order yet.
    pub async fn unconfirmed_customer(&self, brand: &str) -> SignedIn {
        let email = format!("nuovo-{}@example.it", Uuid::new_v4().simple());
        let response = self
            .post_json(
                "/api/v1/auth/signup",
                &json!({ "brand": brand, "name": "Studio Nuovo", "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(response.status(), 201, "signup");
        self.signed_in(brand, &email).await
    }

    /// Confirms the user's address as the user does: reads the token from the newest
    /// confirmation email to it and sends it to `POST /api/v1/auth/email/confirm`.
    pub async fn confirm_email(&self, user: &SignedIn) {
        let token = self.confirmation_token(&user.email).await;
        let response = self
            .post_json_as(
                &user.token,
                "/api/v1/auth/email/confirm",
                &json!({ "token": token }),
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "confirm: {}",
            response.text().await.unwrap()
        );
    }

    /// The token of the newest confirmation link emailed to `address`, read from the
    /// email wherever it is: its outbox row while it waits to be sent, the `.eml` file the
    /// app wrote (no SMTP server configured), or the SMTP listener it went to (taken out
    /// of it, as a user reads and deletes it). Waits up to 20 seconds.
    pub async fn confirmation_token(&self, address: &str) -> String {
        let started = std::time::Instant::now();
        loop {
            let newest: Option<(String, String, String)> = emails::table
                .filter(emails::kind.eq("email_confirmation"))
                .filter(emails::recipient.eq(address.to_lowercase()))
                .order(emails::created_at.desc())
                .select((emails::id, emails::status, emails::context))
                .first(&mut self.pool.get().unwrap())
                .optional()
                .expect("read the outbox");
            if let Some((id, status, context)) = newest {
                if status == "sent" {
                    // The outbox keeps no copy of a sent email; the message carries the
                    // row's id in its Message-ID.
                    let delivered = self
                        .take_mail_file_containing(&id)
                        .or_else(|| crate::smtp::take_message_containing(&id));
                    if let Some(token) = delivered.and_then(|m| token_in(&crate::smtp::decoded(&m)))
                    {
                        return token;
                    }
                } else if status == "dead" || started.elapsed() > std::time::Duration::from_secs(3)
                {
                    // Not delivered (no mail server, or no dispatcher in this test).
                    if let Some(token) = token_in(&context) {
                        return token;
                    }
                }
            }
            if started.elapsed() > std::time::Duration::from_secs(20) {
                let rows: Vec<(String, String, String)> = emails::table
                    .select((emails::kind, emails::recipient, emails::status))
                    .load(&mut self.pool.get().unwrap())
                    .unwrap_or_default();
                let files: Vec<_> = std::fs::read_dir(self.database.dir.path().join("mail"))
                    .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
                    .unwrap_or_default();
                panic!("no confirmation email to {address}; outbox {rows:?}; files {files:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The `.eml` file of the app's mail directory that contains `needle`, taken out of
    /// it (read and deleted, so that the tests counting files count their own).
    fn take_mail_file_containing(&self, needle: &str) -> Option<String> {
        let dir = self.database.dir.path().join("mail");
        let (path, message) = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                Some((path.clone(), std::fs::read_to_string(path).ok()?))
            })
            .find(|(_, message)| message.contains(needle))?;
        std::fs::remove_file(path).expect("delete the read message");
        Some(message.replace("\r\n", "\n"))
    }

    /// Creates a user of any role directly (as `rinnovo user add` does) and signs in.
    pub async fn user_with_role(&self, brand: &str, role: Role) -> SignedIn {
        let email = format!("{}-{}@example.it", role, Uuid::new_v4().simple());
        let new = NewUser {
            brand_id: brand.into(),
            email: EmailAddress::parse(&email).unwrap(),
            name: PersonName::parse("Operatore Test").unwrap(),
            password: NewPassword::parse(PASSWORD, None).unwrap(),
            role,
            codice_fiscale: None,
        };
        let mut conn = self.pool.get().unwrap();
        let user = users::create(&mut conn, new, &Actor::Cli, Utc::now()).expect("create user");
        confirmation::confirmed_by_operator(&mut conn, &user, Utc::now()).expect("confirm user");
        let signed_in = self.signed_in(brand, &email).await;
        if matches!(role, Role::Customer | Role::RegistrationOfficer) {
            self.give_billing_data(&signed_in).await;
        }
        signed_in
    }

    pub async fn back_office(&self, brand: &str) -> SignedIn {
        self.user_with_role(brand, Role::BackOffice).await
    }

    /// Credits the user's prepaid account (as the back-office would).
    pub fn credit(&self, user_id: &str, amount: &str) {
        let mut conn = self.pool.get().unwrap();
        let account = prepaid::account_of_owner(&mut conn, user_id).unwrap();
        prepaid::post(
            &mut conn,
            &account.id,
            prepaid::Posting {
                kind: prepaid::EntryKind::TopUp,
                amount: Money::parse(amount).unwrap(),
                description: "test top-up",
                reference: None,
                actor_id: None,
            },
            Utc::now(),
        )
        .unwrap();
    }

    /// Places an order with a fresh Idempotency-Key.
    pub async fn order(&self, token: &str, lines: serde_json::Value) -> reqwest::Response {
        self.order_with_key(token, &Uuid::new_v4().to_string(), lines)
            .await
    }

    pub async fn order_with_key(
        &self,
        token: &str,
        key: &str,
        lines: serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/orders", self.address))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "lines": lines, "payment_method": "prepaid" }))
            .send()
            .await
            .expect("request sent")
    }

    /// Asks for a top-up of `amount` (euro, as text) paid by `method`, with a fresh
    /// Idempotency-Key.
    pub async fn top_up(&self, token: &str, amount: &str, method: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/prepaid/topups", self.address))
            .bearer_auth(token)
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({ "amount": amount, "payment_method": method }))
            .send()
            .await
            .expect("request sent")
    }

    /// Uploads every file as a statement at the same moment (all requests wait at one
    /// barrier), as several operators or a retrying script would: each answer's status and
    /// body, in the files' order.
    pub async fn upload_statements_at_once(
        &self,
        token: &str,
        files: Vec<String>,
    ) -> Vec<(u16, serde_json::Value)> {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(files.len()));
        let uploads: Vec<_> = files
            .into_iter()
            .map(|file| {
                let client = self.client.clone();
                let url = format!("{}/api/v1/backoffice/statements", self.address);
                let (token, barrier) = (token.to_owned(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let response = client
                        .post(url)
                        .bearer_auth(token)
                        .body(file)
                        .send()
                        .await
                        .expect("upload sent");
                    let status = response.status().as_u16();
                    (status, response.json().await.expect("a JSON answer"))
                })
            })
            .collect();
        let mut answers = Vec::new();
        for upload in uploads {
            answers.push(upload.await.expect("upload task"));
        }
        answers
    }

    async fn signed_in(&self, brand: &str, email: &str) -> SignedIn {
        let response = self.login(brand, email, PASSWORD).await;
        assert_eq!(response.status(), 200, "login");
        let body: serde_json::Value = response.json().await.unwrap();
        SignedIn {
            token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
        }
    }

    /// The signing secret the app generated into its data directory.
    pub fn jwt_secret(&self) -> Vec<u8> {
        std::fs::read(self.database.dir.path().join("jwt-secret")).expect("jwt-secret file")
    }

    /// Balance and ledger sum of the user's prepaid account, read from the database.
    pub fn prepaid_balance_and_ledger_sum(&self, user_id: &str) -> (Money, Money) {
        let mut conn = self.pool.get().unwrap();
        let account = prepaid::account_of_owner(&mut conn, user_id).unwrap();
        let sum = prepaid::ledger_sum(&mut conn, &account.id).unwrap();
        (account.balance, sum)
    }

    /// Registers a holder and returns its id.
    pub fn add_holder(&self, codice_fiscale: &str, given_name: &str, surname: &str) -> String {
        let mut conn = self.pool.get().unwrap();
        insert_holder(&mut conn, codice_fiscale, given_name, surname)
    }

    /// Gives the holder this email address, or takes theirs away (`None`), as a registry
    /// loaded from elsewhere may have it: an empty string is a missing address too.
    pub fn set_holder_email(&self, holder_id: &str, email: Option<&str>) {
        diesel::update(holders::table.find(holder_id))
            .set(holders::email.eq(email))
            .execute(&mut self.pool.get().unwrap())
            .expect("update holder");
    }

    /// Registers a device of the holder and returns its id.
    pub fn add_device(&self, holder_id: &str, serial_number: &str) -> String {
        insert_device(
            &mut self.pool.get().unwrap(),
            holder_id,
            "visura",
            serial_number,
        )
    }

    /// Registers a certificate on the device and returns its id.
    pub fn add_certificate(
        &self,
        device_id: &str,
        kind: &str,
        not_after: DateTime<Utc>,
        status: &str,
    ) -> String {
        let mut conn = self.pool.get().unwrap();
        insert_certificate(&mut conn, device_id, kind, not_after, status)
    }

    /// Registers many holders, each with their devices and the devices' certificates, in
    /// one transaction: a list of a thousand holders is seeded in a second.
    pub fn add_holders(&self, holders: &[TestHolder]) {
        let mut conn = self.pool.get().unwrap();
        conn.transaction(|conn| {
            for holder in holders {
                let holder_id = insert_holder(conn, &holder.codice_fiscale, "Titolare", "Test");
                for device in &holder.devices {
                    let device_id = insert_device(conn, &holder_id, device.brand, &device.serial);
                    for (kind, not_after) in &device.certificates {
                        insert_certificate(conn, &device_id, kind, *not_after, "active");
                    }
                }
            }
            diesel::QueryResult::Ok(())
        })
        .expect("seed the holders");
    }
}

/// A holder to seed with [`TestApp::add_holders`].
pub struct TestHolder {
    pub codice_fiscale: String,
    pub devices: Vec<TestDevice>,
}

/// A device of `brand` with active certificates (kind, not after).
pub struct TestDevice {
    pub brand: &'static str,
    pub serial: String,
    pub certificates: Vec<(&'static str, DateTime<Utc>)>,
}

/// A valid codice fiscale for each `index` (distinct for the first 26^6), for tests
/// that need many holders.
pub fn nth_codice_fiscale(index: usize) -> String {
    let mut code: Vec<u8> = (0..6u32)
        .map(|i| b'A' + (index / 26usize.pow(i) % 26) as u8)
        .collect();
    code.extend(b"80A01H501");
    code.push(rinnovo::registry::codice_fiscale::check_character(&code));
    String::from_utf8(code).expect("ASCII")
}

fn insert_holder(
    conn: &mut DbConnection,
    codice_fiscale: &str,
    given_name: &str,
    surname: &str,
) -> String {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(holders::table)
        .values((
            holders::id.eq(&id),
            holders::codice_fiscale.eq(codice_fiscale),
            holders::given_name.eq(given_name),
            holders::surname.eq(surname),
            holders::created_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .expect("insert holder");
    id
}

fn insert_device(conn: &mut DbConnection, holder_id: &str, brand: &str, serial: &str) -> String {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(devices::table)
        .values((
            devices::id.eq(&id),
            devices::holder_id.eq(holder_id),
            devices::brand_id.eq(brand),
            devices::serial_number.eq(serial),
            devices::kind.eq("smart_card"),
            devices::activated_at.eq(Utc::now().naive_utc()),
            devices::created_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .expect("insert device");
    id
}

fn insert_certificate(
    conn: &mut DbConnection,
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
        .execute(conn)
        .expect("insert certificate");
    id
}

/// The seconds a refused (429) response asks the client to wait, from its Retry-After.
pub fn retry_after(response: &reqwest::Response) -> i64 {
    response.headers()["retry-after"]
        .to_str()
        .expect("Retry-After is text")
        .parse()
        .expect("Retry-After is whole seconds")
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

/// The token of the first confirmation link (`conferma-email?token=<64 hex>`) in a text.
pub fn token_in(text: &str) -> Option<String> {
    let marker = "conferma-email?token=";
    text.match_indices(marker).find_map(|(at, _)| {
        let token: String = text[at + marker.len()..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        (token.len() == 64).then_some(token)
    })
}

/// Valid billing data of a person.
pub fn billing_person() -> serde_json::Value {
    serde_json::json!({
        "kind": "person",
        "nome": "Maria",
        "cognome": "Rossi",
        "codice_fiscale": "RSSMRA80A01H501U",
        "indirizzo": "Via Roma 1",
        "cap": "00184",
        "comune": "Roma",
        "provincia": "RM",
    })
}

/// Valid billing data of a company reached through a codice destinatario.
pub fn billing_business() -> serde_json::Value {
    serde_json::json!({
        "kind": "business",
        "denominazione": "Studio Rossi S.r.l.",
        "partita_iva": "00743110157",
        "codice_fiscale": "00743110157",
        "indirizzo": "Corso Buenos Aires 10",
        "cap": "20124",
        "comune": "Milano",
        "provincia": "MI",
        "nazione": "IT",
        "codice_destinatario": "M5UXCR1",
    })
}
