//! README's "Try it", run as written: a new user pastes its blocks one after the other
//! against `serve --demo`, so a block that no longer works is a broken first hour.

use std::process::Command;

use crate::cli::{rinnovo, serve};
use crate::helpers::TestDatabase;

/// Where the README says the demo listens; replaced by the test server's address.
const README_ADDRESS: &str = "http://127.0.0.1:8080";

/// The ```sh blocks of the README's "## Try it" section, in order.
fn try_it_blocks(readme: &str) -> Vec<String> {
    let start = readme.find("\n## Try it\n").expect("a \"Try it\" section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("```").expect("a closed block");
        blocks.push(body[..close].to_owned());
        rest = &body[close + 3..];
    }
    blocks
}

/// One bash for every block, so variables carry over as in the user's terminal; each
/// block announces itself, so a failure names the block that stopped. `cargo run --`
/// runs the binary under test, with the server's database and data directory.
fn script(blocks: &[String], address: &str) -> String {
    let mut script = String::from(
        "set -euo pipefail\n\
         cargo() {\n\
           [ \"$1\" = run ] || return 64; shift\n\
           if [ \"$1\" = --bin ] && [ \"$2\" = rinnovo-agent ] && [ \"$3\" = -- ]; then\n\
             shift 3; \"$RINNOVO_AGENT_BIN\" \"$@\"\n\
           else [ \"$1\" = -- ] || return 64; shift; \"$RINNOVO_BIN\" \"$@\"; fi\n\
         }\n",
    );
    for (n, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '== block {}' >&2\n", n + 1));
        script.push_str(&block.replace(README_ADDRESS, address));
        script.push('\n');
    }
    script
}

#[test]
fn try_it_has_the_blocks_a_new_user_needs() {
    let readme = include_str!("../../README.md");
    let blocks = try_it_blocks(readme).join("\n");
    for step in [
        "cliente@demo.example",
        "\"payment_method\":\"prepaid\"",
        "data/mail/",
        "\"payment_method\":\"bank_transfer\"",
        "demo statement --order",
        "backoffice/statements",
        "incaricato@demo.example",
        "agent/renewals",
    ] {
        assert!(
            blocks.contains(step),
            "\"Try it\" lost the step with {step}"
        );
    }
    assert!(
        !readme.contains("uuidgen"),
        "uuidgen is not on a fresh Debian"
    );
}

/// A `serve --demo` of the test database on a free port, as a reader starts it.
struct DemoServer {
    process: std::process::Child,
    address: String,
    log: std::thread::JoinHandle<Vec<String>>,
}

impl DemoServer {
    fn start(database: &TestDatabase, data_dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut command = rinnovo(database);
        command
            .env("RINNOVO_DATA_DIR", data_dir)
            .envs(env.iter().copied())
            .args(["serve", "--demo"]);
        let (process, port, lines) = serve(command);
        // Keep reading the log, so the server never blocks on a full pipe.
        let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
        Self {
            process,
            address: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Runs `blocks` in one bash in the database's directory, as the reader would; stops
    /// the server and answers the output, or fails the test naming the block that stopped.
    fn run(
        mut self,
        blocks: &[String],
        database: &TestDatabase,
        data_dir: &std::path::Path,
    ) -> String {
        let output = Command::new("timeout")
            .args(["180", "bash", "-c"])
            .arg(script(blocks, &self.address))
            .current_dir(database.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", database.dir.path())
            .env("RINNOVO_BIN", env!("CARGO_BIN_EXE_rinnovo"))
            .env("RINNOVO_AGENT_BIN", env!("CARGO_BIN_EXE_rinnovo-agent"))
            .env("RINNOVO_AGENT_SERVER", &self.address)
            .env("RINNOVO_DATABASE_URL", &database.url)
            .env("RINNOVO_DATA_DIR", data_dir)
            .env("RINNOVO_LOG", "warn")
            .output()
            .unwrap();
        Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .unwrap();
        self.process.wait().unwrap();
        let log = self.log.join().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "a README block failed ({:?}):\n{stderr}\nstdout:\n{}\nserver log (last lines):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            log[log.len().saturating_sub(20)..].join("\n")
        );
        assert!(
            stderr.contains(&format!("== block {}", blocks.len())),
            "{stderr}"
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

#[test]
fn try_it_runs_as_written() {
    let database = TestDatabase::create();
    let data_dir = database.dir.path().join("data");
    let server = DemoServer::start(&database, &data_dir, &[]);
    let blocks = try_it_blocks(include_str!("../../README.md"));
    assert!(blocks.len() >= 5, "{blocks:?}");
    let stdout = server.run(&blocks, &database, &data_dir);
    // The path ends where the README says it does: the renewed certificate installed.
    assert!(stdout.trim_end().ends_with("\"installed\""), "{stdout}");
}

/// The ```sh block of the README's section `heading` (the first one).
fn section_block(readme: &str, heading: &str) -> String {
    let start = readme.find(heading).expect("the section");
    let body = &readme[start..];
    let open = body.find("```sh\n").expect("a sh block") + 6;
    let close = body[open..].find("```").expect("a closed block");
    body[open..open + close].to_owned()
}

#[test]
fn the_agent_section_renews_on_a_token_as_written() {
    crate::agent_token::softhsm_or_fail();
    let database = TestDatabase::create();
    let data_dir = database.dir.path().join("data");
    let server = DemoServer::start(
        &database,
        &data_dir,
        &[("RINNOVO_ISSUANCE_INTERVAL_SECS", "1")],
    );
    let readme = include_str!("../../README.md");
    // Try it's first two blocks buy the combined coupon ($COUPON) the section asks for.
    let mut blocks = try_it_blocks(readme)[..2].to_vec();
    blocks.push(section_block(readme, "\n## Agent: `rinnovo-agent`\n"));
    let stdout = server.run(&blocks, &database, &data_dir);
    // Both certificates renewed, confirmed, and their new keys never leave the token.
    assert_eq!(stdout.matches("\nconfirmed: ").count(), 2, "{stdout}");
    assert_eq!(
        stdout.matches("never extractable").count(),
        2,
        "the two private keys: {stdout}"
    );
}

#[test]
fn a_broken_block_fails_the_run() {
    let blocks = vec![
        "true".to_owned(),
        "curl -fsS http://127.0.0.1:8080/nowhere".to_owned(),
    ];
    let output = Command::new("bash")
        .arg("-c")
        .arg(script(&blocks, "http://127.0.0.1:9"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("== block 2"));
}

#[test]
fn only_a_demo_gets_the_demo_users() {
    let database = TestDatabase::create();
    let plain = rinnovo(&database).arg("seed").output().unwrap();
    assert!(plain.status.success(), "{plain:?}");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("@demo.example"));
    let demo = rinnovo(&database)
        .args(["seed", "--demo"])
        .output()
        .unwrap();
    assert!(demo.status.success(), "{demo:?}");
    let stdout = String::from_utf8_lossy(&demo.stdout);
    for user in [
        "cliente@demo.example",
        "incaricato@demo.example",
        "operatore@demo.example",
    ] {
        assert!(stdout.contains(user), "{stdout}");
    }
    // Again: the users are there already, nothing fails.
    let again = rinnovo(&database)
        .args(["seed", "--demo"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
}

/// The README's table of demo holders: (codice fiscale, what the Visura shop's lookup
/// shows), read from its rows.
fn demo_holder_rows(readme: &str) -> Vec<(String, String)> {
    let start = readme
        .find("| codice fiscale | holder | what the Visura shop's lookup shows |")
        .expect("the demo holders' table");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[3].to_owned())
        })
        .collect()
}

/// The first number before " days left" in a row's text.
fn days_left_in(text: &str) -> Option<i64> {
    let end = text.find(" days left")?;
    let digits = text[..end].rsplit(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

#[tokio::test]
async fn the_demo_table_says_what_the_lookup_shows() {
    let rows = demo_holder_rows(include_str!("../../README.md"));
    assert!(rows.len() >= 5, "{rows:?}");
    let app = crate::helpers::spawn_demo_app().await;
    let customer = app.customer("visura").await;
    for (codice_fiscale, said) in rows {
        let response = app.lookup(&customer.token, &codice_fiscale).await;
        if said.contains("unknown-holder") {
            assert_eq!(response.status(), 404, "{codice_fiscale}: {said}");
            continue;
        }
        assert_eq!(response.status(), 200, "{codice_fiscale}");
        let found: serde_json::Value = response.json().await.unwrap();
        let renewals: Vec<&serde_json::Value> = found["devices"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["certificates"].as_array().unwrap())
            .map(|c| &c["renewal"])
            .collect();
        // Every status the row names is one the lookup shows, with its days left.
        for status in ["renewable", "not_yet_renewable"] {
            if said.contains(&format!("`{status}`")) {
                assert!(
                    renewals.iter().any(|r| r["status"] == status),
                    "{codice_fiscale}: the README says {status}: {found}"
                );
            }
        }
        if let Some(days) = days_left_in(&said) {
            let shown = renewals
                .iter()
                .find(|r| r["status"] == "renewable")
                .map(|r| r["days_left"].clone());
            assert_eq!(
                shown,
                Some(days.into()),
                "{codice_fiscale}: the README says {days} days left: {found}"
            );
        }
        // A device the row names is one this shop shows.
        for serial in said.split('`').filter(|s| s.len() == 10) {
            if serial.chars().all(|c| c.is_ascii_digit()) {
                assert!(
                    found["devices"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|d| d["serial_number"] == serial),
                    "{codice_fiscale}: the README names device {serial}: {found}"
                );
            }
        }
    }
}
