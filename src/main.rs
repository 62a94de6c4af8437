//! The `rinnovo` command line.

use clap::{Parser, Subcommand};
use rinnovo::audit::Actor;
use rinnovo::auth::{confirmation, users, NewPassword, NewUser, Role};
use rinnovo::config::Config;
use rinnovo::email_address::EmailAddress;
use rinnovo::registry::CodiceFiscale;
use rinnovo::startup::{self, Application, StartOptions};
use rinnovo::validation::PersonName;

#[derive(Parser)]
#[command(
    name = "rinnovo",
    version,
    about = "Renewal coupons for qualified-signature certificates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve the HTTP API (configuration: RINNOVO_* variables).
    Serve {
        /// Load (or refresh) the demo registry, so every renewal status is on show.
        #[arg(long)]
        demo: bool,
    },
    /// Run the background workers (email dispatcher, reservation expiry, renewal
    /// reminders, issuance batch, SdI transmitter) without the HTTP API, until
    /// SIGINT/SIGTERM. Any number may run, on any machines sharing the database.
    Worker,
    /// Issue the queued renewals now, batch after batch until none is due, print what
    /// happened as JSON and exit. Safe alongside running workers.
    IssueBatch,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load the base seeds (brands) and, with --demo, the demo registry, then exit.
    Seed {
        #[arg(long)]
        demo: bool,
    },
    /// Manage users (back-office operators, registration officers).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Devices for demos and tests.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Helpers for playing the demo.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Write a bank statement (camt.053) that pays the given orders awaiting a transfer:
    /// each one's amount due with its RF code, to its brand's IBAN. Import it in the
    /// back-office like a real one.
    Statement {
        /// An order's id; repeat for more (all of one brand).
        #[arg(long = "order", required = true)]
        orders: Vec<String>,
        /// Where to write the statement; `-` for standard output.
        #[arg(long, default_value = "-")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Give a registered holder a new device with a signature and an authentication
    /// certificate from the embedded CA, and write their keys and certificates as PEM into
    /// DIR (keys 0600), with the CA chain: then anyone can play the desktop agent with
    /// openssl.
    Enroll {
        #[arg(long)]
        codice_fiscale: String,
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value = "visura")]
        brand: String,
        /// smart_card or usb_key
        #[arg(long, default_value = "smart_card")]
        kind: String,
        /// Days until the certificates expire (1 to 1095; under 90 they are renewable now).
        #[arg(long, default_value_t = 1095)]
        expires_in: i64,
        /// Make the keys on a PKCS#11 token (e.g. SoftHSM2) and write the certificates
        /// there too, as a card's issuer would: then `rinnovo-agent` renews from it. Only
        /// the certificates and the chain go into DIR.
        #[arg(long, requires_all = ["token", "pin"])]
        pkcs11_module: Option<std::path::PathBuf>,
        /// The token's label (with --pkcs11-module).
        #[arg(long, requires = "pkcs11_module")]
        token: Option<String>,
        /// The token's user PIN (with --pkcs11-module).
        #[arg(long, requires = "pkcs11_module")]
        pin: Option<String>,
    },
}

/// Where `device enroll` makes the keys when not here: a token.
struct EnrollOnToken {
    module: std::path::PathBuf,
    label: String,
    pin: String,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (one line); with
    /// --generate-password a strong one is made and printed once.
    Add {
        #[arg(long)]
        brand: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// customer, registration_officer or back_office
        #[arg(long)]
        role: String,
        #[arg(long)]
        codice_fiscale: Option<String>,
        #[arg(long)]
        generate_password: bool,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("rinnovo: {error}");
            exit_now(2);
        }
    };
    rinnovo::telemetry::init(config.log_format);
    match run(cli.command, config).await {
        Ok(()) => exit_now(0),
        Err(error) => {
            eprintln!("rinnovo: {error:#}");
            exit_now(1);
        }
    }
}

/// Ends the process at once, without C exit handlers and library destructors.
///
/// A normal exit runs them while the pool's background threads may still be opening a
/// PostgreSQL connection: libpq's TLS (OpenSSL's `atexit` cleanup) and Kerberos
/// (its destructors) then free what that thread is using, and the process dies of a
/// segmentation fault or an abort *after* its work is done, silently, with a failing exit
/// status: 8 runs of `rinnovo migrate` in 100 did, on this machine. Nothing is lost by skipping them:
/// every transaction is committed before this point and every file written is closed; the
/// standard streams are flushed here.
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process; it touches no memory of this program.
    unsafe { libc::_exit(code) }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => {
            // Left to `worker` processes, the emails this one queues are announced to them.
            rinnovo::mail::wake::others_dispatch(!config.run_workers);
            let app = Application::build(config, StartOptions { demo }).await?;
            app.run_until_stopped().await?;
        }
        Command::Worker => {
            let config = std::sync::Arc::new(config);
            let pool = startup::migrate(config.clone()).await?;
            rinnovo::mail::wake::listen_to_other_processes(&config.database_url);
            let workers = startup::run_workers(pool, config)?;
            tracing::info!("rinnovo worker started");
            tokio::select! {
                _ = workers => {}
                _ = shutdown_signal() => tracing::info!("rinnovo worker stopping"),
            }
        }
        Command::IssueBatch => {
            let config = std::sync::Arc::new(config);
            let ca = rinnovo::ca::EmbeddedCa::open_or_create(&config.data_dir)?;
            let pool = startup::migrate(config.clone()).await?;
            let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                rinnovo::renewals::issuance::drain(&pool, &ca, &config.issuance)
            })
            .await??;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Migrate => {
            startup::migrate(config.into()).await?;
            println!("database is up to date");
        }
        Command::Seed { demo } => {
            startup::prepare_database(config.into(), StartOptions { demo }).await?;
            println!(
                "seeds loaded{}",
                if demo { " (with demo registry)" } else { "" }
            );
        }
        Command::User {
            command:
                UserCommand::Add {
                    brand,
                    email,
                    name,
                    role,
                    codice_fiscale,
                    generate_password,
                },
        } => {
            let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let name = PersonName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("--role: must be customer, registration_officer or back_office")
            })?;
            let codice_fiscale = codice_fiscale
                .map(|cf| CodiceFiscale::parse(&cf))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--codice-fiscale: {e}"))?;
            let (password_text, show) = if generate_password {
                (generated_password(), true)
            } else {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            };
            let password = NewPassword::parse(&password_text, Some(&email))
                .map_err(|e| anyhow::anyhow!("password: {e}"))?;
            let pool = startup::prepare_database(config.into(), StartOptions::default()).await?;
            let new = NewUser {
                brand_id: brand,
                email,
                name,
                password,
                role,
                codice_fiscale,
            };
            let user = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut conn = pool.get()?;
                let now = chrono::Utc::now();
                // The operator typed the address and vouches for it: no link to open.
                rinnovo::db::write_transaction(&mut conn, |conn| {
                    let user = users::create(conn, new, &Actor::Cli, now)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    confirmation::confirmed_by_operator(conn, &user, now)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok::<_, anyhow::Error>(user)
                })
            })
            .await??;
            println!(
                "created {} {} ({}) id {}",
                user.role, user.email, user.brand_id, user.id
            );
            if show {
                println!("password: {password_text}");
            }
        }
        Command::Device {
            command:
                DeviceCommand::Enroll {
                    codice_fiscale,
                    out,
                    brand,
                    kind,
                    expires_in,
                    pkcs11_module,
                    token,
                    pin,
                },
        } => {
            let on_token = match (pkcs11_module, token, pin) {
                (Some(module), Some(label), Some(pin)) => {
                    Some(EnrollOnToken { module, label, pin })
                }
                _ => None,
            };
            enroll(
                config,
                &codice_fiscale,
                &out,
                brand,
                &kind,
                expires_in,
                on_token,
            )
            .await?
        }
        Command::Demo {
            command: DemoCommand::Statement { orders, out },
        } => {
            let pool = startup::migrate(config.into()).await?;
            let xml = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut conn = pool.get()?;
                rinnovo::demo::statement(&mut conn, &orders, chrono::Utc::now())
            })
            .await??;
            if out.as_os_str() == "-" {
                print!("{xml}");
            } else {
                std::fs::write(&out, xml)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            }
        }
    }
    Ok(())
}

async fn enroll(
    config: Config,
    codice_fiscale: &str,
    out: &std::path::Path,
    brand: String,
    kind: &str,
    expires_in: i64,
    on_token: Option<EnrollOnToken>,
) -> anyhow::Result<()> {
    use rinnovo::registry::enroll::{self, VALIDITY_DAYS};
    let codice_fiscale = CodiceFiscale::parse(codice_fiscale)
        .map_err(|e| anyhow::anyhow!("--codice-fiscale: {e}"))?;
    let kind = rinnovo::registry::DeviceKind::parse(kind)
        .ok_or_else(|| anyhow::anyhow!("--kind: must be smart_card or usb_key"))?;
    anyhow::ensure!(
        (1..=VALIDITY_DAYS).contains(&expires_in),
        "--expires-in: must be 1 to {VALIDITY_DAYS} days"
    );
    let ca = rinnovo::ca::EmbeddedCa::open_or_create(&config.data_dir)?;
    let pool = startup::prepare_database(config.into(), StartOptions::default()).await?;
    let now = chrono::Utc::now();
    let expires_at = now + chrono::Duration::days(expires_in);
    let enrolled = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut conn = pool.get()?;
        let enrolled = match &on_token {
            None => enroll::enroll_device(
                &mut conn,
                &ca,
                &codice_fiscale,
                &brand,
                kind,
                expires_at,
                now,
            )?,
            Some(target) => {
                let token = rinnovo::pkcs11::Token::open(
                    &target.module,
                    &rinnovo::pkcs11::Selector::Label(target.label.clone()),
                    &target.pin,
                )?;
                let keys = token_keys(&token)?;
                let public = |key: &rinnovo::pkcs11::PendingKey| enroll::NewKey::OnToken {
                    public_der: key.subject_public_key_info(),
                };
                let enrolled = enroll::enroll_device_with_keys(
                    &mut conn,
                    &ca,
                    &codice_fiscale,
                    &brand,
                    kind,
                    [public(&keys[0]), public(&keys[1])],
                    expires_at,
                    now,
                );
                let installed = enrolled.map_err(anyhow::Error::from).and_then(|enrolled| {
                    for (key, certificate) in keys.iter().zip(&enrolled.certificates) {
                        let (_, der) =
                            x509_parser::pem::parse_x509_pem(certificate.issued.pem.as_bytes())?;
                        token.install_certificate(key, &der.contents)?;
                    }
                    Ok(enrolled)
                });
                if installed.is_err() {
                    // No certificate on the token then: its new keys are of no use.
                    for key in &keys {
                        token.destroy(&key.id)?;
                    }
                }
                installed?
            }
        };
        Ok((enrolled, rinnovo::ca::CertificateAuthority::chain_pem(&ca)))
    })
    .await??;
    let (enrolled, chain) = enrolled;
    enroll::write_files(&enrolled, &chain, out)?;
    for certificate in &enrolled.certificates {
        let kind = certificate.kind.as_str();
        println!(
            "{kind}: serial {} valid until {} ({kind}.pem{})",
            certificate.issued.serial_number,
            certificate.issued.not_after.format("%Y-%m-%d %H:%M:%S UTC"),
            if certificate.key.private_pem().is_some() {
                format!(", {kind}.key.pem")
            } else {
                ", key and certificate on the token".to_owned()
            },
        );
    }
    println!(
        "device {} enrolled; CA chain in chain.pem; files in {}",
        enrolled.serial_number,
        out.display()
    );
    Ok(())
}

/// The signature's and the authentication's key pairs (EC P-256), made on the token; if
/// the second cannot be made, the first is removed again.
fn token_keys(token: &rinnovo::pkcs11::Token) -> anyhow::Result<[rinnovo::pkcs11::PendingKey; 2]> {
    use rinnovo::pkcs11::{Algorithm, Kind};
    let signature = token.generate_key_pair(Algorithm::EcP256, Kind::Signature)?;
    match token.generate_key_pair(Algorithm::EcP256, Kind::Authentication) {
        Ok(authentication) => Ok([signature, authentication]),
        Err(e) => {
            token.destroy(&signature.id)?;
            Err(e.into())
        }
    }
}

/// 20 characters from a 56-symbol alphabet without look-alikes (~116 bits).
fn generated_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    // 256 is not a multiple of 56: reject the top values so every symbol is equally likely.
    let mut out = String::new();
    let mut pool = bytes.to_vec();
    while out.len() < 20 {
        if pool.is_empty() {
            let mut more = [0u8; 20];
            getrandom::fill(&mut more).expect("the operating system's random source");
            pool.extend_from_slice(&more);
        }
        let b = pool.pop().expect("refilled above");
        if (b as usize) < 256 - 256 % ALPHABET.len() {
            out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
        }
    }
    out
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
