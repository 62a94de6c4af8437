//! A large statement imported through the real `rinnovo serve`, in its own process, whose
//! memory is read from /proc: the import must stay within a bound whatever the file's
//! size, and hand the memory back afterwards.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::cli::{add_user, rinnovo, serve};
use crate::helpers::TestDatabase;

/// The service's peak resident memory allowed while it imports the file (README,
/// Performance).
const PEAK_LIMIT_MB: u64 = 250;
/// How far above the idle figure the resident memory may stay once the import is done.
const AFTER_MARGIN_MB: u64 = 40;
const PASSWORD: &str = "statement memory password";
/// The brand's (visura's, seeded).
const IBAN: &str = "IT60X0542811101000000123456";
const OTHER_IBAN: &str = "IT02L1234512345123456789012";

struct Server {
    process: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `field` of /proc/<pid>/status, in MB.
fn status_mb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse().ok())
        .unwrap();
    kb / 1024
}

/// A camt.053 of about `megabytes` MB: booked credits, each with its own bank reference
/// and an RF code no order has. The first quarter of the file is a statement of the
/// brand's account, whose entries are stored, unmatched, and wait for the back office
/// (the import's whole path but an order's fulfilment); the rest a statement of another
/// account, read and listed as skipped, so that the test reads a file of the full size
/// in a sensible time in the debug build. Answers the brand's entries and the others.
fn write_statement(path: &std::path::Path, megabytes: usize) -> (usize, usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let today = chrono::Utc::now().date_naive();
    write!(
        file,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>MEMORY-{today}</MsgId><CreDtTm>{today}T20:00:00</CreDtTm></GrpHdr>\n"
    )
    .unwrap();
    let mut counts = [0, 0];
    let mut written = 0;
    let mut entry = String::new();
    let mut number = 0;
    for (statement, iban, size) in [
        (0, IBAN, megabytes * 1024 * 1024 / 4),
        (1, OTHER_IBAN, megabytes * 1024 * 1024),
    ] {
        writeln!(
            file,
            "<Stmt><Id>MEMORY-{today}-{statement}</Id><CreDtTm>{today}T20:00:00</CreDtTm>\
             <Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>"
        )
        .unwrap();
        while written < size {
            number += 1;
            counts[statement] += 1;
            let (euro, cents) = (10 + number % 90, number % 100);
            entry.clear();
            writeln!(
                entry,
                "<Ntry><Amt Ccy=\"EUR\">{euro}.{cents:02}</Amt><CdtDbtInd>CRDT</CdtDbtInd>\
                 <Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{today}</Dt></BookgDt>\
                 <ValDt><Dt>{today}</Dt></ValDt><AcctSvcrRef>MEM{number:09}</AcctSvcrRef><BkTxCd/>\
                 <NtryDtls><TxDtls><Refs><AcctSvcrRef>MEM{number:09}</AcctSvcrRef>\
                 <EndToEndId>NOTPROVIDED</EndToEndId></Refs><Amt Ccy=\"EUR\">{euro}.{cents:02}</Amt>\
                 <RltdPties><Dbtr><Pty><Nm>Studio Rossi {number}</Nm></Pty></Dbtr></RltdPties>\
                 <RmtInf><Ustrd>RINNOVO FIRMA RF00{number:013}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
            )
            .unwrap();
            file.write_all(entry.as_bytes()).unwrap();
            written += entry.len();
        }
        writeln!(file, "</Stmt>").unwrap();
    }
    writeln!(file, "</BkToCstmrStmt></Document>").unwrap();
    file.flush().unwrap();
    (counts[0], counts[1])
}

fn start(database: &TestDatabase) -> Server {
    for args in [&["migrate"][..], &["seed"][..]] {
        let output = rinnovo(database).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
    }
    let office = ["visura", "office@memory.example", "Office", "back_office"];
    let added = add_user(database, office, PASSWORD);
    assert!(added.status.success(), "{added:?}");
    let mut command = rinnovo(database);
    command
        .env("RINNOVO_LOG", "warn,rinnovo::startup=info")
        .env(
            "RINNOVO_JWT_SECRET",
            "statement-memory-secret-statement-memory-secret",
        )
        .arg("serve");
    let (process, port, lines) = serve(command);
    // Keep reading the log, so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    Server {
        process,
        address: format!("http://127.0.0.1:{port}"),
    }
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl").arg("-s").args(args).output().unwrap();
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_50_mb_statement_is_imported_in_bounded_memory_and_the_memory_goes_back() {
    let database = TestDatabase::create();
    let file = database.dir.path().join("statement.xml");
    let (entries, others) = write_statement(&file, 50);
    let server = start(&database);
    let pid = server.process.id();
    let login = curl(&[
        &format!("{}/api/v1/auth/login", server.address),
        "-H",
        "content-type: application/json",
        "-d",
        &serde_json::json!({"brand": "visura", "email": "office@memory.example", "password": PASSWORD})
            .to_string(),
    ]);
    let login: serde_json::Value = serde_json::from_str(&login).unwrap();
    let token = login["access_token"].as_str().expect("a token").to_owned();
    let idle = status_mb(pid, "VmRSS");

    let started = Instant::now();
    let report = curl(&[
        &format!("{}/api/v1/backoffice/statements", server.address),
        "-H",
        &format!("authorization: Bearer {token}"),
        "-H",
        "content-type: application/xml",
        "--data-binary",
        &format!("@{}", file.display()),
    ]);
    let seconds = started.elapsed().as_secs_f64();
    let report: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|_| panic!("{report}"));
    assert_eq!(report["entries"], entries, "{report}");
    assert_eq!(report["new_entries"], entries, "{report}");
    assert_eq!(
        report["outcomes"]["unmatched"]["count"], entries,
        "{report}"
    );
    assert_eq!(
        report["skipped_statements"][0]["entries"], others,
        "{report}"
    );

    let peak = status_mb(pid, "VmHWM");
    std::thread::sleep(Duration::from_secs(3));
    let after = status_mb(pid, "VmRSS");
    eprintln!(
        "{entries} + {others} entries ({} MB) in {seconds:.1} s: idle {idle} MB, \
         peak {peak} MB, after {after} MB",
        std::fs::metadata(&file).unwrap().len() / (1024 * 1024)
    );
    assert!(peak <= PEAK_LIMIT_MB, "peak {peak} MB > {PEAK_LIMIT_MB} MB");
    assert!(
        after <= idle + AFTER_MARGIN_MB,
        "{after} MB after the import, {idle} MB before"
    );
}
