//! `rinnovo-agent`: the reference desktop agent. It renews the certificates on the
//! holder's token through PKCS#11: the new key is made on the token and never leaves it,
//! the CSR is signed there, and the certificate is written next to its key. See the
//! README, "Agent".
//!
//! Every step can be interrupted: what is on the token and what the service says are
//! enough to go on (`resume`), and nothing is removed from the token before the service
//! has confirmed the certificate that replaces it.

mod service;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use rinnovo::pkcs11::{Kind, PendingKey, Selector, Token, TokenCertificate};
use service::{Service, ServiceError};

#[derive(Parser)]
#[command(
    name = "rinnovo-agent",
    version,
    about = "Renews the certificates on a signature token (PKCS#11) with rinnovo"
)]
struct Cli {
    /// The token's PKCS#11 module (from the card's middleware).
    #[arg(long, default_value = "/usr/lib/softhsm/libsofthsm2.so")]
    module: PathBuf,
    /// The token's label.
    #[arg(long, conflicts_with = "slot")]
    token: Option<String>,
    /// The token's slot number (when there is no label to go by).
    #[arg(long)]
    slot: Option<u64>,
    /// A file holding the PIN (first line). Without it, RINNOVO_AGENT_PIN, else a prompt.
    #[arg(long)]
    pin_file: Option<PathBuf>,
    /// The rinnovo service.
    #[arg(
        long,
        env = "RINNOVO_AGENT_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Shows each certificate on the token and where it stands for renewal.
    Status,
    /// Renews every renewable certificate: new key on the token, CSR, request, wait,
    /// install, confirm, and only then remove the old certificate and key.
    Renew {
        /// A coupon code: `CODE` for every renewable certificate (a coupon that covers
        /// both), or `signature=CODE` / `authentication=CODE` for one kind. Repeatable.
        #[arg(long = "coupon", required = true)]
        coupons: Vec<String>,
    },
    /// Finishes an interrupted renewal from what the token and the service say.
    Resume,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rinnovo-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let selector = match (&cli.token, cli.slot) {
        (Some(label), _) => Selector::Label(label.clone()),
        (None, Some(slot)) => Selector::Slot(slot),
        (None, None) => bail!("say which token: --token LABEL or --slot N"),
    };
    // The token first: a wrong PIN ends the run before anything is sent.
    let token = {
        let pin = read_pin(cli.pin_file.as_deref())?;
        Token::open(&cli.module, &selector, &pin)?
    };
    let mut service = Service::new(&cli.server);
    sign_in(&token, &mut service).await?;
    match cli.command {
        Command::Status => {}
        Command::Renew { coupons } => {
            let submitted = submit(&token, &service, &coupons).await?;
            if submitted == 0 {
                println!("nothing to renew now");
            }
            finish(&token, &mut service).await?;
        }
        Command::Resume => finish(&token, &mut service).await?,
    }
    print_status(&token, &service.certificates().await?)
}

/// The PIN, asked once: from `--pin-file`, RINNOVO_AGENT_PIN or the terminal.
fn read_pin(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the PIN file {}", file.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if let Ok(pin) = std::env::var("RINNOVO_AGENT_PIN") {
        return Ok(pin);
    }
    prompt_pin()
}

/// Reads a line from the terminal with echo off.
fn prompt_pin() -> anyhow::Result<String> {
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to ask the PIN on: use --pin-file or RINNOVO_AGENT_PIN")?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a file descriptor we own.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let echo_off = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if echo_off {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: a valid termios for the same descriptor.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut writer = &tty;
    write!(writer, "PIN: ")?;
    writer.flush()?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if echo_off {
        // SAFETY: restores what tcgetattr gave.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    writeln!(writer)?;
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Signs in with an authentication certificate on the token and its key, the newest
/// first: one just written but not yet confirmed is not in the registry yet, and the old
/// one still signs in until the confirmation.
async fn sign_in(token: &Token, service: &mut Service) -> anyhow::Result<()> {
    let mut candidates: Vec<TokenCertificate> = token
        .certificates()?
        .into_iter()
        .filter(|c| c.kind == Kind::Authentication)
        .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.not_after));
    let mut last_refusal = None;
    for certificate in candidates {
        let Some(key) = token.private_key(&certificate.id)? else {
            continue;
        };
        let nonce = service.challenge().await?;
        let signature = token.sign(key, certificate.algorithm, nonce.as_bytes())?;
        let signature = base64::engine::general_purpose::STANDARD.encode(signature);
        match service
            .sign_in(&certificate.pem(), &nonce, &signature)
            .await
        {
            Ok(()) => return Ok(()),
            Err(ServiceError::Refused(refused)) if refused.status == 401 => {
                last_refusal = Some(refused);
            }
            Err(other) => return Err(other.into()),
        }
    }
    match last_refusal {
        Some(refused) => Err(anyhow!(refused).context("sign-in refused")),
        None => bail!(
            "the token holds no authentication certificate with its key \
             (this agent uses RSA and EC P-256 keys)"
        ),
    }
}

fn certificates_of(seen: &Value) -> Vec<Value> {
    seen["device"]["certificates"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

fn kind_of(certificate: &Value) -> anyhow::Result<Kind> {
    match text(certificate, "kind") {
        "signature" => Ok(Kind::Signature),
        "authentication" => Ok(Kind::Authentication),
        other => bail!("the service lists a certificate of unknown kind {other:?}"),
    }
}

/// The coupon for a certificate of `kind`: `kind=CODE` first, else a bare `CODE`.
fn coupon_for(coupons: &[String], kind: Kind) -> Option<&str> {
    let prefix = format!("{}=", kind.as_str());
    coupons
        .iter()
        .find_map(|c| c.strip_prefix(&prefix))
        .or_else(|| {
            coupons
                .iter()
                .find(|c| !c.contains('='))
                .map(String::as_str)
        })
}

/// Requests the renewal of every renewable certificate, in one request (so that a coupon
/// that covers both serves both). The new keys are made on the token first; if the
/// service refuses, they are removed again. Returns how many were submitted.
async fn submit(token: &Token, service: &Service, coupons: &[String]) -> anyhow::Result<usize> {
    let on_token = token.certificates()?;
    let mut pending = token.pending_keys()?;
    let mut made = Vec::new();
    let mut items = Vec::new();
    for certificate in certificates_of(&service.certificates().await?) {
        if text(&certificate["renewal"], "status") != "renewable" {
            continue;
        }
        let kind = kind_of(&certificate)?;
        let Some(coupon) = coupon_for(coupons, kind) else {
            println!(
                "{}: renewable, but no coupon given for it (--coupon {}=CODE)",
                kind.as_str(),
                kind.as_str()
            );
            continue;
        };
        let serial = text(&certificate, "serial_number");
        let old = on_token
            .iter()
            .find(|c| c.serial == serial)
            .ok_or_else(|| {
                anyhow!(
                    "the service's {} certificate (serial {serial}) is not on this token",
                    kind.as_str()
                )
            })?;
        // A key made by a run that stopped before the request is used, not doubled.
        let key = match pending
            .iter()
            .position(|k| k.kind == kind && k.algorithm == old.algorithm)
        {
            Some(at) => pending.remove(at),
            None => {
                let key = token.generate_key_pair(old.algorithm, kind)?;
                made.push(key.id.clone());
                key
            }
        };
        items.push(json!({
            "certificate_id": text(&certificate, "id"),
            "csr": csr(token, &key, &old.subject)?,
            "coupon_code": coupon,
        }));
    }
    if items.is_empty() {
        return Ok(0);
    }
    match service.request_renewals(items).await {
        Ok(answer) => {
            for renewal in answer["renewals"].as_array().into_iter().flatten() {
                println!(
                    "submitted: {} renewal {}",
                    text(renewal, "kind"),
                    text(renewal, "id")
                );
            }
            Ok(answer["renewals"].as_array().map_or(0, Vec::len))
        }
        Err(e) => {
            for id in made {
                token.destroy(&id)?;
            }
            Err(anyhow!(e).context("the renewal was not requested"))
        }
    }
}

/// A PKCS#10 request with the old certificate's subject, signed on the token by the new key.
fn csr(token: &Token, key: &PendingKey, subject: &[(Vec<u64>, String)]) -> anyhow::Result<String> {
    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    for (oid, value) in subject {
        name.push(rcgen::DnType::CustomDnType(oid.clone()), value.as_str());
    }
    params.distinguished_name = name;
    let signer = csr_signer::OnToken { token, key };
    Ok(params.serialize_request(&signer)?.pem()?)
}

mod csr_signer {
    use super::{PendingKey, Token};
    use rinnovo::pkcs11::Algorithm;

    /// The new key on the token, as rcgen's remote signing key.
    pub struct OnToken<'a> {
        pub token: &'a Token,
        pub key: &'a PendingKey,
    }

    impl rcgen::PublicKeyData for OnToken<'_> {
        fn der_bytes(&self) -> &[u8] {
            &self.key.public_key
        }
        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            match self.key.algorithm {
                Algorithm::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
                Algorithm::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            }
        }
    }

    impl rcgen::SigningKey for OnToken<'_> {
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
            self.token
                .sign(self.key.private, self.key.algorithm, message)
                .map_err(|_| rcgen::Error::RemoteKeyError)
        }
    }
}

/// Takes every renewal under way to its end: waits for the batch, writes the certificate
/// next to its key, confirms, then removes the old objects; and removes old objects a
/// previous run left after a confirmation.
async fn finish(token: &Token, service: &mut Service) -> anyhow::Result<()> {
    let seen = service.certificates().await?;
    for certificate in certificates_of(&seen) {
        let renewal = &certificate["renewal"];
        if !matches!(
            text(renewal, "status"),
            "renewal_pending" | "ready_to_install"
        ) {
            continue;
        }
        let kind = kind_of(&certificate)?;
        let renewal_id = text(renewal, "renewal_id");
        wait_until_issued(token, service, kind, renewal_id).await?;
        let chain = service.chain(renewal_id).await?;
        let (_, leaf) = x509_parser::pem::parse_x509_pem(chain.as_bytes())
            .map_err(|e| anyhow!("the service sent an unreadable certificate: {e}"))?;
        let new_certificate = TokenCertificate::parse(Vec::new(), leaf.contents.clone())
            .ok_or_else(|| anyhow!("the service sent an unreadable certificate"))?;
        let on_token = token.certificates()?;
        if !on_token.iter().any(|c| c.serial == new_certificate.serial) {
            let key = token
                .pending_keys()?
                .into_iter()
                .find(|k| k.public_key == new_certificate.public_key)
                .ok_or_else(|| {
                    anyhow!(
                        "the key of the new {} certificate is not on this token: \
                         insert the token the renewal was made on",
                        kind.as_str()
                    )
                })?;
            token.install_certificate(&key, &leaf.contents)?;
            println!(
                "installed on the token: {} certificate {}",
                kind.as_str(),
                new_certificate.serial
            );
        }
        service.installed(renewal_id).await?;
        println!("confirmed: {} renewal {renewal_id}", kind.as_str());
        let old_serial = text(&certificate, "serial_number");
        if let Some(old) = on_token.iter().find(|c| c.serial == old_serial) {
            token.destroy(&old.id)?;
            println!("removed the old {} certificate and key", kind.as_str());
        }
    }
    remove_replaced(token, &service.certificates().await?)
}

/// Old certificates the service no longer lists (superseded by a confirmed renewal)
/// whose replacement of the same kind is on the token: they and their keys go. A
/// certificate without a listed replacement stays, whatever the service says.
fn remove_replaced(token: &Token, seen: &Value) -> anyhow::Result<()> {
    let listed: Vec<String> = certificates_of(seen)
        .iter()
        .map(|c| text(c, "serial_number").to_owned())
        .collect();
    let on_token = token.certificates()?;
    for old in on_token.iter().filter(|c| !listed.contains(&c.serial)) {
        let replaced = on_token.iter().any(|c| {
            c.kind == old.kind && listed.contains(&c.serial) && c.not_after > old.not_after
        });
        if replaced {
            token.destroy(&old.id)?;
            println!("removed the old {} certificate and key", old.kind.as_str());
        }
    }
    Ok(())
}

async fn wait_until_issued(
    token: &Token,
    service: &mut Service,
    kind: Kind,
    renewal_id: &str,
) -> anyhow::Result<()> {
    loop {
        let renewal = match service.renewal(renewal_id).await {
            Ok(renewal) => renewal,
            // The agent token lasts 15 minutes, a wait may last longer: sign in again.
            Err(ServiceError::Refused(refused)) if refused.status == 401 => {
                sign_in(token, service).await?;
                continue;
            }
            Err(other) => return Err(other.into()),
        };
        match renewal.status.as_str() {
            "issued" | "installed" => {
                eprintln!("\r{}: issued{:30}", kind.as_str(), "");
                return Ok(());
            }
            "queued" | "issuing" => {
                let wait = renewal.retry_after_seconds.unwrap_or(10).max(1);
                eprint!(
                    "\r{}: {}, next check in {wait} s{:10}",
                    kind.as_str(),
                    renewal.status,
                    ""
                );
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            }
            other => bail!(
                "the renewal of the {} certificate ended {other}: its coupon is available \
                 again; the new key stays on the token until a new request uses it",
                kind.as_str()
            ),
        }
    }
}

fn print_status(token: &Token, seen: &Value) -> anyhow::Result<()> {
    let on_token = token.certificates()?;
    let pending = token.pending_keys()?;
    for certificate in certificates_of(seen) {
        let renewal = &certificate["renewal"];
        if text(renewal, "status") == "renewable"
            && pending
                .iter()
                .any(|k| k.kind.as_str() == text(&certificate, "kind"))
        {
            println!(
                "a new {} key is on the token, made by a run that stopped before its request: \
                 `rinnovo-agent renew` uses it",
                text(&certificate, "kind")
            );
        }
        let state = match text(renewal, "status") {
            "renewable" => format!("renewable ({} days left)", renewal["days_left"]),
            "not_yet_renewable" => format!(
                "not yet renewable: the window opens on {}",
                text(renewal, "window_opens_on")
            ),
            "renewal_pending" => format!(
                "renewal_pending (renewal {}): run `rinnovo-agent resume` to wait for it",
                text(renewal, "renewal_id")
            ),
            "ready_to_install" => format!(
                "ready_to_install (renewal {}): run `rinnovo-agent resume`",
                text(renewal, "renewal_id")
            ),
            "expired" => format!("expired on {}", text(renewal, "expired_on")),
            "not_renewable" => format!("not renewable: {}", text(renewal, "reason")),
            other => other.to_owned(),
        };
        let serial = text(&certificate, "serial_number");
        let where_ = if on_token.iter().any(|c| c.serial == serial) {
            "on the token"
        } else {
            "NOT on this token"
        };
        println!(
            "{} {} serial {serial}, valid until {} ({where_}): {state}",
            text(&certificate, "kind"),
            text(&certificate, "status"),
            text(&certificate, "not_after"),
        );
    }
    Ok(())
}
