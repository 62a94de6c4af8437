//! Fault tests: what the service does when something it depends on fails, and that it
//! recovers on its own once the fault is gone (README, "Reliability"). Each test proves
//! one thing; all of them poll with deadlines rather than sleeping for fixed times.

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rinnovo::db::schema::{audit_log, emails, renewals};
use rinnovo::db::Backend;
use serde_json::json;

use crate::helpers::{spawn_app_with_smtp, TestApp};
use crate::smtp::{free_port, SmtpSink};

/// Polls `check` every 50 ms until it returns `Some`, panicking with `what` and the last
/// observation after `timeout`.
async fn eventually<T, D: std::fmt::Debug>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, D>,
) -> T {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => assert!(
                started.elapsed() < timeout,
                "{what}: not reached after {timeout:?}; last seen: {last:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Statuses of the outbox rows and their attempts.
fn outbox(app: &TestApp) -> Vec<(String, String, String, i32)> {
    emails::table
        .select((
            emails::recipient,
            emails::kind,
            emails::status,
            emails::attempts,
        ))
        .order(emails::id)
        .load(&mut app.pool.get().unwrap())
        .unwrap()
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or("")
}

/// Emails are queued while the mail server is down, retried with backoff, and once the
/// server is back every one is delivered exactly once; none is given up as `dead`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_queued_while_smtp_is_down_are_delivered_once_when_it_is_back() {
    // Nothing listens on this port until the sink starts on it below.
    let port = free_port();
    let app = spawn_app_with_smtp(
        port,
        &[
            ("RINNOVO_MAIL_RETRY_BASE_SECS", "1".into()),
            ("RINNOVO_MAIL_MAX_ATTEMPTS", "20".into()),
        ],
    )
    .await;
    let mut buyers = Vec::new();
    for _ in 0..4 {
        let buyer = app.customer("visura").await;
        app.credit(&buyer.user_id, "100.00");
        let response = app
            .order(
                &buyer.token,
                json!([{ "product": "RIN-FIRMA", "quantity": 1 }]),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "order: {}",
            response.text().await.unwrap()
        );
        buyers.push(buyer.email);
    }
    // Every email has failed at least twice: the server was down and they were retried.
    let queued = eventually(Duration::from_secs(30), "every email retried", || {
        let rows = outbox(&app);
        let retried = rows
            .iter()
            .all(|(_, _, status, attempts)| status == "pending" && *attempts >= 2);
        if retried && !rows.is_empty() {
            Ok(rows)
        } else {
            Err(rows)
        }
    })
    .await;
    for buyer in &buyers {
        assert!(
            queued.iter().filter(|(to, ..)| to == buyer).count() >= 2,
            "a prepaid order sends its receipt and its coupons: {queued:?}"
        );
    }

    let (sink, _) = SmtpSink::start(port).await;
    let expected = queued.len();
    eventually(Duration::from_secs(60), "every email sent", || {
        let rows = outbox(&app);
        if rows.iter().all(|(_, _, status, _)| status == "sent") {
            Ok(())
        } else {
            Err(rows)
        }
    })
    .await;
    // Two dispatcher polls more: nothing is sent again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), expected, "{messages:#?}");
    let mut per_email: HashMap<(String, String), usize> = HashMap::new();
    for message in &messages {
        let key = (
            header(message, "To: ").to_owned(),
            header(message, "Subject: ").to_owned(),
        );
        *per_email.entry(key).or_default() += 1;
    }
    assert!(
        per_email.values().all(|&n| n == 1),
        "an email was delivered twice: {per_email:#?}"
    );
    for buyer in &buyers {
        let in_outbox = queued.iter().filter(|(to, ..)| to == buyer).count();
        let delivered = messages
            .iter()
            .filter(|m| header(m, "To: ").contains(buyer.as_str()))
            .count();
        assert_eq!(delivered, in_outbox, "emails to {buyer}");
    }
    let dead = outbox(&app)
        .into_iter()
        .filter(|(_, _, status, _)| status == "dead")
        .count();
    assert_eq!(dead, 0);
}

/// A child process killed on drop (and reaped), so a failing test leaves none behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn renewal_counts(conn: &mut rinnovo::db::DbConnection) -> HashMap<String, i64> {
    renewals::table
        .group_by(renewals::status)
        .select((renewals::status, diesel::dsl::count_star()))
        .load::<(String, i64)>(conn)
        .unwrap()
        .into_iter()
        .collect()
}

/// `rinnovo issue-batch` killed with SIGKILL in the middle of its work: the renewals it
/// had claimed stay `issuing` until their lease runs out, then the next run issues them.
/// Every renewal ends `issued` with exactly one certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuance_worker_killed_mid_batch_leaves_nothing_half_done() {
    const RENEWALS: usize = 300;
    let (app, sink) = crate::renewals::app_with_sink(&[]).await;
    let queued = crate::issuance::queue(&app, &sink, RENEWALS as u32).await;
    assert_eq!(queued.len(), RENEWALS);

    let issue_batch = |app: &TestApp| {
        let mut command = crate::cli::rinnovo(&app.database);
        command
            .env("RINNOVO_ISSUANCE_BATCH_SIZE", "20")
            .env("RINNOVO_ISSUANCE_LEASE_SECS", "2")
            .env("RINNOVO_LOG", "warn")
            .arg("issue-batch");
        command
    };
    let child = KillOnDrop(
        issue_batch(&app)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The batch issues 300 certificates in well under a second, too fast to aim a kill
    // at by timing. So: wait for its first stored batch, then take the database's write lock
    // (SQLite: BEGIN IMMEDIATE; PostgreSQL: LOCK TABLE renewals), which freezes the
    // worker at its next claim or store, mid-way; kill it while it waits; let go.
    let pool = app.pool.clone();
    let (killed_at, at_kill) = tokio::task::spawn_blocking(move || {
        let mut child = child;
        let mut conn = pool.get().unwrap();
        let started = Instant::now();
        loop {
            let counts = renewal_counts(&mut conn);
            if counts.get("issued").is_some_and(|&n| n > 0) {
                break;
            }
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!("issue-batch ended before any claim was seen: {status:?}, {counts:?}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "issue-batch claimed nothing: {counts:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        match conn.backend() {
            Backend::Sqlite => conn.batch_execute("BEGIN IMMEDIATE").unwrap(),
            Backend::Postgres => conn
                .batch_execute("BEGIN; LOCK TABLE renewals IN EXCLUSIVE MODE")
                .unwrap(),
        }
        // Let the worker run into the lock (and block there), then kill it.
        std::thread::sleep(Duration::from_millis(200));
        let counts = renewal_counts(&mut conn);
        child.0.kill().unwrap(); // SIGKILL
        let status = child.0.wait().unwrap();
        conn.batch_execute("ROLLBACK").unwrap();
        (status, counts)
    })
    .await
    .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        killed_at.signal(),
        Some(9),
        "killed by SIGKILL: {killed_at:?}"
    );
    let issued_before = at_kill.get("issued").copied().unwrap_or(0);
    let issuing_before = at_kill.get("issuing").copied().unwrap_or(0);
    eprintln!("at the kill: {at_kill:?}");
    assert!(
        (issued_before as usize) < RENEWALS && issued_before + issuing_before > 0,
        "the kill must land mid-way: {at_kill:?}"
    );

    // Past the lease of whatever the dead worker held.
    let lease_ends: Vec<chrono::NaiveDateTime> = renewals::table
        .filter(renewals::status.eq("issuing"))
        .select(renewals::claimed_until.assume_not_null())
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    if let Some(last) = lease_ends.iter().max() {
        let wait = (last.and_utc() - chrono::Utc::now()).num_milliseconds() + 200;
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    let started = Instant::now();
    let second = tokio::task::spawn_blocking(move || issue_batch(&app).output().map(|o| (o, app)))
        .await
        .unwrap()
        .unwrap();
    let (output, app) = second;
    assert!(
        output.status.success(),
        "second issue-batch: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("second run: {report} in {:?}", started.elapsed());

    let mut conn = app.pool.get().unwrap();
    let counts = renewal_counts(&mut conn);
    assert_eq!(
        counts,
        HashMap::from([("issued".to_owned(), RENEWALS as i64)]),
        "every renewal issued, none left issuing"
    );
    let serials: Vec<Option<String>> = renewals::table
        .select(renewals::issued_serial_number)
        .load(&mut conn)
        .unwrap();
    let mut serials: Vec<String> = serials.into_iter().flatten().collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), RENEWALS, "one distinct serial per renewal");
    // One certificate stored per renewal: one `renewal.issued` audit entry each.
    let issued_entries: Vec<String> = audit_log::table
        .filter(audit_log::action.eq("renewal.issued"))
        .select(audit_log::subject_id)
        .load(&mut conn)
        .unwrap();
    let mut per_renewal: HashMap<&str, usize> = HashMap::new();
    for id in &issued_entries {
        *per_renewal.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(per_renewal.len(), RENEWALS);
    assert!(
        per_renewal.values().all(|&n| n == 1),
        "a renewal was stored twice"
    );
}

/// Files made immutable with `chattr +i`, made writable again on drop (also when the test
/// fails, or the temporary directory could not be removed).
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    /// `None` when the file system or the user cannot do it (not ext4-like, not root).
    fn set(files: Vec<std::path::PathBuf>) -> Option<Self> {
        let guard = Self(files);
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .args(&guard.0)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .args(&self.0)
            .status();
    }
}

async fn signup(app: &TestApp) -> reqwest::Response {
    let email = format!("ro-{}@example.it", uuid::Uuid::new_v4().simple());
    app.post_json(
        "/api/v1/auth/signup",
        &json!({ "brand": "visura", "name": "Studio Test", "email": email, "password": crate::helpers::PASSWORD }),
    )
    .await
}

/// Reads and the readiness probe answer while writes are refused.
async fn reads_still_work(app: &TestApp, token: &str) {
    let products = app.get_as(token, "/api/v1/products").await;
    assert_eq!(products.status(), 200, "reads still work");
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

/// Signs up until a write passes (only 503s meanwhile, 10 s at most); how long it took.
async fn writes_recover(app: &TestApp) -> Duration {
    let started = Instant::now();
    loop {
        let response = signup(app).await;
        let status = response.status().as_u16();
        if status == 201 {
            return started.elapsed();
        }
        let body = response.text().await.unwrap();
        assert_eq!(status, 503, "only 503 while recovering: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "writes did not recover: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SQLite's own check of the whole file finds nothing wrong.
fn assert_intact(conn: &mut rinnovo::db::DbConnection) {
    let check: Vec<IntegrityCheck> = diesel::sql_query("PRAGMA integrity_check")
        .load(conn)
        .unwrap();
    assert_eq!(
        check.len(),
        1,
        "{:?}",
        check.iter().map(|c| &c.integrity_check).collect::<Vec<_>>()
    );
    assert_eq!(check[0].integrity_check, "ok");
}

/// The SQLite file turns read-only under the running service: writes answer a 503
/// `storage-read-only` problem (no 500, no panic), reads keep working, and once the file
/// is writable again writes work at once, on the same process, and the database is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sqlite_file_refuses_writes_with_503_and_recovers() {
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty()) {
        // About the SQLite file; PostgreSQL's outage is the restart test below.
        return;
    }
    let app = crate::helpers::spawn_app().await;
    let customer = app.customer("visura").await;
    let database = app.database.dir.path().join("rinnovo.sqlite3");
    let wal = app.database.dir.path().join("rinnovo.sqlite3-wal");
    assert!(wal.exists(), "the database runs in WAL mode");
    // Tests run as root, which ignores file modes: `chmod a-w` changes nothing. The
    // immutable attribute binds root too: opening the file for writing fails with EPERM
    // and writes through descriptors already open fail, so SQLite answers "disk I/O
    // error" on the pool's open connections and "attempt to write a readonly database"
    // on new ones. The -shm file stays writable: SQLite maps it into memory, and a write
    // to a mapped immutable file kills the process with SIGBUS (readers need it too).
    let Some(guard) = Immutable::set(vec![database.clone(), wal.clone()]) else {
        eprintln!("skipped: chattr +i does not work here (needs root on ext4/xfs/btrfs)");
        return;
    };

    for attempt in 0..3 {
        let response = signup(&app).await;
        let body = crate::helpers::problem(response, 503).await;
        assert_eq!(
            body["type"], "/problems/storage-read-only",
            "write {attempt}: {body}"
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("read-only") || detail.contains("disk"),
            "{body}"
        );
    }
    reads_still_work(&app, &customer.token).await;

    drop(guard);
    let took = writes_recover(&app).await;
    eprintln!("writes recovered in {took:?}");
    assert_intact(&mut app.pool.get().unwrap());
}

#[derive(QueryableByName)]
struct IntegrityCheck {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

/// `pg_ctlcluster` on the machine's one cluster (`/etc/postgresql/<version>/main`).
fn pg_ctlcluster(action: &str) -> std::process::Output {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql: a Debian-style PostgreSQL installation")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .min()
        .expect("a PostgreSQL version in /etc/postgresql");
    std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .output()
        .expect("pg_ctlcluster runs")
}

/// PostgreSQL stopped; started again on drop, also when the test fails, so the server
/// every other test uses is never left down.
struct PostgresStopped;

impl PostgresStopped {
    fn stop() -> Self {
        let guard = Self;
        let output = pg_ctlcluster("stop");
        assert!(output.status.success(), "pg_ctlcluster stop: {output:?}");
        guard
    }
}

impl Drop for PostgresStopped {
    fn drop(&mut self) {
        let output = pg_ctlcluster("start");
        if !output.status.success() {
            eprintln!("pg_ctlcluster start: {output:?}");
        }
    }
}

/// One request of the load loop.
#[derive(Debug)]
struct Sample {
    /// Since the load started.
    at: Duration,
    took: Duration,
    path: &'static str,
    status: u16,
    problem_type: Option<String>,
}

/// PostgreSQL restarted under the running service: while it is down, requests answer a
/// 503 `unavailable` problem within seconds (no 500, no hang), and once it is back the
/// same process answers 200 again without being restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts PostgreSQL; run alone: .ci/run runs it after the other tests"]
async fn postgres_restarted_under_load_answers_503_then_recovers() {
    if std::env::var("TEST_DATABASE_URL").map_or(true, |u| u.trim().is_empty()) {
        // About PostgreSQL; there is no server to restart on SQLite.
        return;
    }
    let app = crate::helpers::spawn_app().await;
    let customer = app.customer("visura").await;
    const PATHS: [&str; 2] = ["/health/ready", "/api/v1/products"];
    for path in PATHS {
        assert_eq!(
            app.get_as(&customer.token, path).await.status(),
            200,
            "{path}"
        );
    }

    let load_started = Instant::now();
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let load = {
        let running = running.clone();
        let (address, token) = (app.address.clone(), customer.token.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut samples = Vec::new();
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                for path in PATHS {
                    let sent = Instant::now();
                    let response = client
                        .get(format!("{address}{path}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("the service answers");
                    let status = response.status().as_u16();
                    let problem_type = if status == 200 {
                        None
                    } else {
                        let body: serde_json::Value =
                            response.json().await.unwrap_or(serde_json::Value::Null);
                        Some(
                            body["type"]
                                .as_str()
                                .unwrap_or("not problem JSON")
                                .to_owned(),
                        )
                    };
                    samples.push(Sample {
                        at: sent - load_started,
                        took: sent.elapsed(),
                        path,
                        status,
                        problem_type,
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = tokio::task::spawn_blocking(PostgresStopped::stop)
        .await
        .unwrap();
    let down_at = load_started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::spawn_blocking(move || drop(stopped))
        .await
        .unwrap();
    let up_at = load_started.elapsed();

    // Back: both endpoints answer 200 again within seconds, same process.
    let recovered = loop {
        let mut all_ok = true;
        for path in PATHS {
            all_ok &= app.get_as(&customer.token, path).await.status() == 200;
        }
        if all_ok {
            break load_started.elapsed();
        }
        assert!(
            load_started.elapsed() - up_at < Duration::from_secs(20),
            "no recovery 20 s after PostgreSQL started again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let samples = load.await.unwrap();
    let context = format!(
        "down at {down_at:?}, up at {up_at:?}, recovered at {recovered:?}; samples:\n{samples:#?}"
    );
    eprintln!(
        "{} requests, down at {down_at:?}, up at {up_at:?}, recovered at {recovered:?}, slowest {:?}",
        samples.len(),
        samples.iter().map(|s| s.took).max().unwrap()
    );
    for sample in &samples {
        match sample.status {
            200 => {}
            503 => assert_eq!(
                sample.problem_type.as_deref(),
                Some("/problems/unavailable"),
                "{sample:?}\n{context}"
            ),
            _ => panic!("only 200 or 503: {sample:?}\n{context}"),
        }
        assert!(
            sample.took < Duration::from_secs(7),
            "no request hangs: {sample:?}\n{context}"
        );
    }
    assert!(
        samples.iter().any(|s| s.status == 503),
        "the outage was seen: {context}"
    );
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= recovered).collect();
    assert!(
        after.iter().all(|s| s.status == 200),
        "all 200 once recovered: {context}"
    );
    for path in PATHS {
        let unavailable = samples
            .iter()
            .filter(|s| s.path == path && s.status == 503)
            .count();
        eprintln!("{path}: {unavailable} answers 503 during the outage");
    }
}

/// A small tmpfs mounted on `dir`, unmounted on drop (lazily: the service still holds its
/// files open when a failing test unwinds).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// `None` when mounting is not allowed here (not root, no CAP_SYS_ADMIN).
    fn mount(dir: std::path::PathBuf, size: &str) -> Option<Self> {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self(dir))
    }

    /// Fills the disk to the last byte with one file, which it returns.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 4096, 512, 1] {
            let buffer = vec![0xA5u8; chunk];
            while file.write_all(&buffer).is_ok() {}
        }
        assert!(file.sync_all().is_err() || file.write_all(&[0]).is_err());
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The SQLite file's disk fills up under the running service: writes answer a 503
/// `storage-read-only` problem saying the disk is full (never a 500), a refused write
/// leaves nothing behind, reads keep working; once space is freed writes work again on
/// the same process, and the database is intact with everything written before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_and_recovers_when_space_is_freed() {
    use rinnovo::db::schema::users;
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty()) {
        // About the SQLite file; PostgreSQL's outage is the restart test below.
        return;
    }
    // The database alone on a 16 MB disk; the data directory (secrets, mail) stays off it.
    let mut database = crate::helpers::TestDatabase::create();
    let Some(disk) = SmallDisk::mount(database.dir.path().join("disk"), "16m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    database.url = format!(
        "sqlite://{}",
        database.dir.path().join("disk/rinnovo.sqlite3").display()
    );
    let app = crate::helpers::spawn_on(database, Default::default(), &[]).await;
    let disk = disk; // unmounted before the app's directory is removed
    let customer = app.customer("visura").await;

    // An empty WAL, so the next write must take new space on the disk rather than reuse
    // room the WAL file already has.
    app.pool
        .get()
        .unwrap()
        .batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let filler = disk.fill();

    // A background worker may still find room in a page already allocated; the first
    // sign-ups may pass. Each answer is 201 or 503, and the 503 comes soon.
    let mut refused = Vec::new();
    for attempt in 0.. {
        let email = format!("full-{attempt}@example.it");
        let response = app
            .post_json(
                "/api/v1/auth/signup",
                &json!({ "brand": "visura", "name": "Studio Pieno", "email": email, "password": crate::helpers::PASSWORD }),
            )
            .await;
        match response.status().as_u16() {
            201 => assert!(refused.is_empty(), "a write passed after a refusal"),
            503 => {
                assert_eq!(
                    response
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap()),
                    Some("30")
                );
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["type"], "/problems/storage-read-only", "{body}");
                assert!(
                    body["detail"].as_str().unwrap().contains("disk is full"),
                    "{body}"
                );
                refused.push(email);
                if refused.len() == 3 {
                    break;
                }
            }
            other => panic!(
                "attempt {attempt}: {other} {}",
                response.text().await.unwrap()
            ),
        }
        assert!(attempt < 50, "no write was refused on a full disk");
    }
    reads_still_work(&app, &customer.token).await;

    std::fs::remove_file(&filler).unwrap();
    writes_recover(&app).await;

    let mut conn = app.pool.get().unwrap();
    assert_intact(&mut conn);
    let half_stored: i64 = users::table
        .filter(users::email.eq_any(&refused))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(half_stored, 0, "a refused sign-up left a user behind");
    drop(conn);
    let me = app.get_as(&customer.token, "/api/v1/me").await;
    assert_eq!(
        me.status(),
        200,
        "what was written before the disk filled is there"
    );
    drop(disk);
}
