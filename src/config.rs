//! Configuration from `RINNOVO_*` environment variables. Every value has a documented
//! default (README, "Configuration"); a wrong value stops the start with a message
//! naming the variable, and all wrong values are reported at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::DatabaseUrl;
use crate::invoices::channel::{ChannelSettings, FIRST_SDI_ADDRESS};
use crate::renewals::issuance::IssuanceSettings;
use crate::renewals::RenewalPolicy;
use crate::secrets::MIN_SECRET_BYTES;
use crate::workers::RetryPolicy;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub db_pool_size: u32,
    /// How long a request waits for a free connection before it is answered 503.
    pub db_pool_wait: std::time::Duration,
    /// Connections of the background workers, apart from the requests' (`db_pool_size`).
    pub worker_pool_size: u32,
    /// HTTP worker threads; `None` means one per core.
    pub http_workers: Option<usize>,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    /// HS256 key for access tokens. `None`: generated once into the data directory.
    pub jwt_secret: Option<Secret>,
    /// HMAC key under which coupon codes are stored. `None`: generated into the data dir.
    pub coupon_key: Option<Secret>,
    /// Bearer token `GET /metrics` requires. `None`: the metrics are open.
    pub metrics_token: Option<Secret>,
    pub access_token_ttl: Duration,
    /// Where emails go: lettre's SMTP URL. `None`: `.eml` files in `mail_dir`.
    pub smtp_url: Option<Secret>,
    pub mail_dir: PathBuf,
    pub mail_max_attempts: u32,
    pub mail_retry_base: Duration,
    /// Dispatch loops (and SMTP connections) per process.
    pub mail_concurrency: u32,
    /// How often an idle dispatcher looks for due emails that no signal announced (a
    /// retry coming due, a lease running out, an email another process queued).
    pub mail_poll: Duration,
    /// The address users reach the service at, for links in emails.
    pub public_url: String,
    /// Run the background workers (email dispatcher, reservation expiry, SdI transmitter...)
    /// inside `serve`.
    pub run_workers: bool,
    /// How long an order or top-up paid by transfer waits for its money.
    pub reservation: chrono::Duration,
    /// How often the expiry worker looks for reservations past their deadline.
    pub expiry_interval: Duration,
    /// How often the reminder worker looks for certificates nearing expiry.
    pub reminder_interval: Duration,
    /// Devices the reminder worker handles per batch.
    pub reminder_batch_size: i64,
    /// The pause a worker makes between two batches when there is more to do: on SQLite
    /// every batch holds the single writer lock, and requests waiting for it must get
    /// their turn before the next batch takes it again.
    pub worker_pause: Duration,
    /// Largest statement file accepted by the import.
    pub statement_max_bytes: usize,
    /// How many times and for how long a device is renewed; validity of new certificates.
    pub renewal_policy: RenewalPolicy,
    /// How often the issuance worker looks for queued renewals.
    pub issuance_interval: Duration,
    /// Batch size, attempts and retry delay of the issuance worker.
    pub issuance: IssuanceSettings,
    /// How many holder lookups a user and a client address may make.
    pub lookup_limits: crate::lookup::LookupLimits,
    /// Where documents go to the SdI: files in the data directory, or PEC.
    pub sdi_channel: ChannelSettings,
    /// Attempts and first retry delay of the SdI transmitter.
    pub sdi_retry: RetryPolicy,
    /// Card payments: `None` when no provider is configured (the card is not offered).
    pub card: Option<CardConfig>,
}

/// A configured secret. Debug never shows it, so a logged `Config` leaks nothing.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `var`, so tests can configure without touching the
    /// process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());

        let data_dir = PathBuf::from(get("RINNOVO_DATA_DIR").unwrap_or(DEFAULT_DATA_DIR.into()));
        let default_db = format!("sqlite://{}", data_dir.join("rinnovo.sqlite3").display());
        let database_url =
            match DatabaseUrl::parse(&get("RINNOVO_DATABASE_URL").unwrap_or(default_db)) {
                Ok(url) => Some(url),
                Err(e) => {
                    problems.push(format!("RINNOVO_DATABASE_URL {e}"));
                    None
                }
            };

        let bind_text = get("RINNOVO_BIND").unwrap_or(DEFAULT_BIND.into());
        let bind = bind_text.parse::<SocketAddr>().ok();
        if bind.is_none() {
            problems.push(format!(
                "RINNOVO_BIND '{bind_text}' is not an address:port such as 127.0.0.1:8080 or [::]:8080"
            ));
        }

        let mut number = |name: &str, default: u64, min: u64, max: u64| -> u64 {
            let Some(text) = get(name) else {
                return default;
            };
            match text.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    problems.push(format!(
                        "{name} '{text}' must be a whole number from {min} to {max}"
                    ));
                    default
                }
            }
        };
        let db_pool_size = number("RINNOVO_DB_POOL_SIZE", default_pool_size(), 1, 1024) as u32;
        let db_pool_wait =
            std::time::Duration::from_secs(number("RINNOVO_DB_POOL_WAIT_SECS", 5, 1, 300));
        let worker_pool_size = number("RINNOVO_WORKER_POOL_SIZE", 3, 1, 256) as u32;
        let http_workers = match number("RINNOVO_HTTP_WORKERS", 0, 0, 1024) {
            0 => None,
            n => Some(n as usize),
        };
        let shutdown_timeout =
            Duration::from_secs(number("RINNOVO_SHUTDOWN_TIMEOUT_SECS", 30, 0, 3600));

        let access_token_ttl =
            Duration::from_secs(number("RINNOVO_ACCESS_TOKEN_TTL_SECS", 900, 60, 86_400));
        let mail_max_attempts = number("RINNOVO_MAIL_MAX_ATTEMPTS", 8, 1, 100) as u32;
        let mail_retry_base =
            Duration::from_secs(number("RINNOVO_MAIL_RETRY_BASE_SECS", 30, 1, 3600));
        let mail_concurrency = number("RINNOVO_MAIL_CONCURRENCY", 8, 1, 128) as u32;
        let mail_poll = Duration::from_millis(number("RINNOVO_MAIL_POLL_MS", 500, 10, 3_600_000));
        let reservation =
            chrono::Duration::days(number("RINNOVO_RESERVATION_DAYS", 10, 1, 90) as i64);
        let expiry_interval =
            Duration::from_secs(number("RINNOVO_EXPIRY_INTERVAL_SECS", 60, 1, 86_400));
        let reminder_interval =
            Duration::from_secs(number("RINNOVO_REMINDER_INTERVAL_SECS", 3600, 1, 86_400));
        let reminder_batch_size = number("RINNOVO_REMINDER_BATCH_SIZE", 200, 1, 10_000) as i64;
        let worker_pause = Duration::from_millis(number("RINNOVO_WORKER_PAUSE_MS", 100, 0, 60_000));
        let statement_max_bytes =
            number("RINNOVO_STATEMENT_MAX_MB", 200, 1, 4096) as usize * 1024 * 1024;
        let renewal_policy = RenewalPolicy {
            max_renewals_per_device: number("RINNOVO_DEVICE_MAX_RENEWALS", 1, 0, 100) as u32,
            device_life_years: number("RINNOVO_DEVICE_LIFE_YEARS", 6, 1, 50) as u32,
            validity_days: number("RINNOVO_CERTIFICATE_VALIDITY_DAYS", 1095, 1, 3650) as i64,
        };
        let issuance_interval =
            Duration::from_secs(number("RINNOVO_ISSUANCE_INTERVAL_SECS", 60, 1, 86_400));
        let issuance = IssuanceSettings {
            batch_size: number("RINNOVO_ISSUANCE_BATCH_SIZE", 500, 1, 10_000) as i64,
            max_attempts: number("RINNOVO_ISSUANCE_MAX_ATTEMPTS", 5, 1, 100) as i32,
            retry_base: chrono::Duration::seconds(number(
                "RINNOVO_ISSUANCE_RETRY_BASE_SECS",
                60,
                1,
                86_400,
            ) as i64),
            lease: chrono::Duration::seconds(
                number("RINNOVO_ISSUANCE_LEASE_SECS", 300, 1, 86_400) as i64
            ),
            validity_days: renewal_policy.validity_days,
            ..IssuanceSettings::default()
        };

        let sdi_retry = RetryPolicy {
            max_attempts: number("RINNOVO_SDI_MAX_ATTEMPTS", 8, 1, 100) as i32,
            base: chrono::Duration::seconds(
                number("RINNOVO_SDI_RETRY_BASE_SECS", 60, 1, 86_400) as i64
            ),
        };

        let card_timing = CardTiming {
            session_lifetime: chrono::Duration::minutes(number(
                "RINNOVO_CARD_SESSION_MINUTES",
                60,
                30,
                1440,
            ) as i64),
            first_check_after: chrono::Duration::seconds(number(
                "RINNOVO_CARD_CHECK_AFTER_SECS",
                600,
                0,
                86_400,
            ) as i64),
            worker_interval: Duration::from_secs(number(
                "RINNOVO_CARD_WORKER_INTERVAL_SECS",
                30,
                1,
                3600,
            )),
        };

        let defaults = crate::lookup::LookupLimits::default();
        let lookup_limits = crate::lookup::LookupLimits {
            customer_per_hour: number(
                "RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR",
                defaults.customer_per_hour as u64,
                1,
                1_000_000,
            ) as i64,
            customer_per_day: number(
                "RINNOVO_LOOKUPS_CUSTOMER_PER_DAY",
                defaults.customer_per_day as u64,
                1,
                1_000_000,
            ) as i64,
            officer_per_hour: number(
                "RINNOVO_LOOKUPS_OFFICER_PER_HOUR",
                defaults.officer_per_hour as u64,
                1,
                1_000_000,
            ) as i64,
            officer_per_day: number(
                "RINNOVO_LOOKUPS_OFFICER_PER_DAY",
                defaults.officer_per_day as u64,
                1,
                1_000_000,
            ) as i64,
            address_per_hour: number(
                "RINNOVO_LOOKUPS_ADDRESS_PER_HOUR",
                defaults.address_per_hour as u64,
                1,
                1_000_000,
            ) as i64,
            address_per_day: number(
                "RINNOVO_LOOKUPS_ADDRESS_PER_DAY",
                defaults.address_per_day as u64,
                1,
                1_000_000,
            ) as i64,
        };

        // Secrets are optional (generated into the data dir), but never short.
        let secret = |name: &str, problems: &mut Vec<String>| {
            let value = get(name).map(Secret);
            if value.as_ref().is_some_and(|s| s.0.len() < MIN_SECRET_BYTES) {
                problems.push(format!(
                    "{name} must have at least {MIN_SECRET_BYTES} characters (e.g. openssl rand -hex 32)"
                ));
            }
            value
        };
        let jwt_secret = secret("RINNOVO_JWT_SECRET", &mut problems);
        let coupon_key = secret("RINNOVO_COUPON_KEY", &mut problems);
        let metrics_token = secret("RINNOVO_METRICS_TOKEN", &mut problems);

        let smtp_url = get("RINNOVO_SMTP_URL").map(Secret);
        if let Some(Err(e)) = smtp_url
            .as_ref()
            .map(|u| crate::mail::smtp::SmtpSettings::parse(u.expose()))
        {
            problems.push(e.to_string());
        }
        let mail_dir = get("RINNOVO_MAIL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("mail"));
        let run_workers = match get("RINNOVO_RUN_WORKERS").as_deref() {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(other) => {
                problems.push(format!(
                    "RINNOVO_RUN_WORKERS '{other}' must be true or false"
                ));
                true
            }
        };
        let public_url = get("RINNOVO_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{bind_text}"))
            .trim_end_matches('/')
            .to_owned();

        let sdi_channel = sdi_channel(&get, &data_dir, &mut problems);
        let card = card_provider(&get, card_timing, &mut problems);

        let log_format = match get("RINNOVO_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                problems.push(format!("RINNOVO_LOG_FORMAT '{other}' must be text or json"));
                LogFormat::Text
            }
        };

        match (database_url, bind) {
            (Some(database_url), Some(bind)) if problems.is_empty() => Ok(Self {
                database_url,
                bind,
                data_dir,
                db_pool_size,
                db_pool_wait,
                worker_pool_size,
                http_workers,
                shutdown_timeout,
                log_format,
                jwt_secret,
                coupon_key,
                metrics_token,
                access_token_ttl,
                smtp_url,
                mail_dir,
                mail_max_attempts,
                mail_retry_base,
                mail_concurrency,
                mail_poll,
                public_url,
                run_workers,
                reservation,
                expiry_interval,
                reminder_interval,
                reminder_batch_size,
                worker_pause,
                statement_max_bytes,
                renewal_policy,
                issuance_interval,
                issuance,
                lookup_limits,
                sdi_channel,
                sdi_retry,
                card,
            }),
            _ => Err(ConfigError { problems }),
        }
    }
}

/// The card payment provider (Stripe) and its timing.
#[derive(Debug, Clone)]
pub struct CardConfig {
    /// `RINNOVO_STRIPE_SECRET_KEY` (`sk_live_...` or `sk_test_...`).
    pub secret_key: Secret,
    /// `RINNOVO_STRIPE_WEBHOOK_SECRETS`: the endpoint's signing secrets (`whsec_...`),
    /// comma-separated; more than one while a secret is rotated.
    pub webhook_secrets: Vec<Secret>,
    /// `RINNOVO_STRIPE_API_BASE`, `https://api.stripe.com` unless a test server stands in.
    pub api_base: String,
    pub timing: CardTiming,
}

/// How long a card page stays open, and when the worker asks the provider about it.
#[derive(Debug, Clone, Copy)]
pub struct CardTiming {
    /// `RINNOVO_CARD_SESSION_MINUTES` (30 to 1440, default 60): Stripe's own bounds.
    pub session_lifetime: chrono::Duration,
    /// `RINNOVO_CARD_CHECK_AFTER_SECS` (default 600): how long after opening the page the
    /// worker first asks the provider, should no notification have come; then at
    /// growing intervals.
    pub first_check_after: chrono::Duration,
    /// `RINNOVO_CARD_WORKER_INTERVAL_SECS` (default 30): the worker's pause when idle.
    pub worker_interval: Duration,
}

/// The card provider from `RINNOVO_STRIPE_*`: configured when the secret key is set,
/// which then needs at least one webhook signing secret.
fn card_provider(
    get: &impl Fn(&str) -> Option<String>,
    timing: CardTiming,
    problems: &mut Vec<String>,
) -> Option<CardConfig> {
    let secret_key = get("RINNOVO_STRIPE_SECRET_KEY")?;
    let webhook_secrets: Vec<Secret> = get("RINNOVO_STRIPE_WEBHOOK_SECRETS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Secret(s.to_owned()))
        .collect();
    if webhook_secrets.is_empty() {
        problems.push(
            "RINNOVO_STRIPE_WEBHOOK_SECRETS must hold the webhook endpoint's signing secret \
             (whsec_...), or several separated by commas while one is rotated"
                .into(),
        );
    }
    let api_base = get("RINNOVO_STRIPE_API_BASE")
        .unwrap_or_else(|| "https://api.stripe.com".into())
        .trim_end_matches('/')
        .to_owned();
    if url::Url::parse(&api_base).is_err() {
        problems.push(format!(
            "RINNOVO_STRIPE_API_BASE '{api_base}' is not a URL such as https://api.stripe.com"
        ));
    }
    Some(CardConfig {
        secret_key: Secret(secret_key),
        webhook_secrets,
        api_base,
        timing,
    })
}

/// The SdI channel: `RINNOVO_SDI_CHANNEL` `file` (default: `$RINNOVO_DATA_DIR/sdi/outbox`)
/// or `pec`, which needs `RINNOVO_SDI_SMTP_URL` (TLS only, see
/// [`SmtpSettings::parse_tls_only`](crate::mail::smtp::SmtpSettings::parse_tls_only)) and
/// sends to `RINNOVO_SDI_ADDRESS`. The SMTP URL carries the PEC mailbox's password: no
/// message quotes it.
fn sdi_channel(
    get: &impl Fn(&str) -> Option<String>,
    data_dir: &std::path::Path,
    problems: &mut Vec<String>,
) -> ChannelSettings {
    let file = ChannelSettings::File(data_dir.join("sdi").join("outbox"));
    let sdi_address = get("RINNOVO_SDI_ADDRESS").unwrap_or_else(|| FIRST_SDI_ADDRESS.into());
    if sdi_address.parse::<lettre::Address>().is_err() {
        problems.push(format!(
            "RINNOVO_SDI_ADDRESS '{sdi_address}' is not an email address such as {FIRST_SDI_ADDRESS}"
        ));
    }
    let smtp_url = get("RINNOVO_SDI_SMTP_URL");
    match get("RINNOVO_SDI_CHANNEL").as_deref() {
        None | Some("file") => file,
        Some("pec") => match smtp_url.map(|url| {
            crate::mail::smtp::SmtpSettings::parse_tls_only("RINNOVO_SDI_SMTP_URL", &url)
        }) {
            Some(Ok(smtp)) => ChannelSettings::Pec { smtp, sdi_address },
            Some(Err(e)) => {
                problems.push(e.to_string());
                file
            }
            None => {
                problems.push(
                    "RINNOVO_SDI_SMTP_URL is needed with RINNOVO_SDI_CHANNEL=pec: the PEC \
                     provider's SMTP server, e.g. smtps://user:password@smtps.pec.example.it"
                        .into(),
                );
                file
            }
        },
        Some(other) => {
            problems.push(format!("RINNOVO_SDI_CHANNEL '{other}' must be file or pec"));
            file
        }
    }
}

/// Two connections per core plus one: the database does the work, and on few cores more
/// connections only add switching (measured in benches/lookup.sh: 4 beat 8 and 32 on 2
/// cores). At least 4, so a slow query never starves the rest.
fn default_pool_size() -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
    (2 * cores + 1).max(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_sqlite_in_the_data_dir_on_localhost() {
        let config = config(&[]).unwrap();
        assert_eq!(
            config.database_url,
            DatabaseUrl::Sqlite("./data/rinnovo.sqlite3".into())
        );
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert!(config.db_pool_size >= 4);
        assert_eq!(config.http_workers, None);
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(config.jwt_secret.is_none());
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
    }

    #[test]
    fn lookup_limits_default_higher_for_officers_and_can_be_set() {
        let limits = config(&[]).unwrap().lookup_limits;
        assert_eq!(limits, crate::lookup::LookupLimits::default());
        assert!(limits.officer_per_hour > limits.customer_per_hour);
        assert!(limits.officer_per_day > limits.customer_per_day);
        assert!(limits.address_per_hour >= limits.officer_per_hour);
        let set = config(&[("RINNOVO_LOOKUPS_CUSTOMER_PER_HOUR", "5")]).unwrap();
        assert_eq!(set.lookup_limits.customer_per_hour, 5);
        let problems = config(&[("RINNOVO_LOOKUPS_OFFICER_PER_DAY", "0")])
            .unwrap_err()
            .problems;
        assert!(
            problems[0].contains("RINNOVO_LOOKUPS_OFFICER_PER_DAY"),
            "{problems:?}"
        );
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let config =
            config(&[("RINNOVO_JWT_SECRET", "a-very-long-secret-value-0123456789")]).unwrap();
        assert!(!format!("{config:?}").contains("a-very-long"));
    }

    #[test]
    fn the_sdi_channel_is_files_unless_pec_is_configured() {
        let default = config(&[("RINNOVO_DATA_DIR", "/srv/rinnovo")]).unwrap();
        assert!(matches!(
            default.sdi_channel,
            ChannelSettings::File(ref dir) if dir == std::path::Path::new("/srv/rinnovo/sdi/outbox")
        ));
        let pec = config(&[
            ("RINNOVO_SDI_CHANNEL", "pec"),
            (
                "RINNOVO_SDI_SMTP_URL",
                "smtps://fatture:segreto-pec@smtps.pec.example.it",
            ),
        ])
        .unwrap();
        assert!(matches!(
            pec.sdi_channel,
            ChannelSettings::Pec { ref sdi_address, .. } if sdi_address == FIRST_SDI_ADDRESS
        ));
        assert!(!format!("{pec:?}").contains("segreto-pec"));
        let text = config(&[
            ("RINNOVO_SDI_CHANNEL", "pec"),
            (
                "RINNOVO_SDI_SMTP_URL",
                "smtp://fatture:segreto-pec@pec.example.it?tls=none",
            ),
            ("RINNOVO_SDI_ADDRESS", "not an address"),
        ])
        .unwrap_err()
        .to_string();
        assert!(text.contains("RINNOVO_SDI_SMTP_URL"), "{text}");
        assert!(text.contains("RINNOVO_SDI_ADDRESS"), "{text}");
        assert!(!text.contains("segreto-pec"), "{text}");
        let missing = config(&[("RINNOVO_SDI_CHANNEL", "pec")]).unwrap_err();
        assert!(missing.to_string().contains("RINNOVO_SDI_SMTP_URL"));
        assert!(config(&[("RINNOVO_SDI_CHANNEL", "fax")]).is_err());
    }

    #[test]
    fn the_data_dir_moves_the_default_database() {
        let config = config(&[("RINNOVO_DATA_DIR", "/srv/rinnovo")]).unwrap();
        assert_eq!(
            config.database_url,
            DatabaseUrl::Sqlite("/srv/rinnovo/rinnovo.sqlite3".into())
        );
    }

    #[test]
    fn every_wrong_value_is_reported_by_name() {
        let error = config(&[
            ("RINNOVO_DATABASE_URL", "mysql://x/y"),
            ("RINNOVO_BIND", "localhost"),
            ("RINNOVO_DB_POOL_SIZE", "0"),
            ("RINNOVO_DB_POOL_WAIT_SECS", "0"),
            ("RINNOVO_LOG_FORMAT", "xml"),
            ("RINNOVO_JWT_SECRET", "short"),
        ])
        .unwrap_err();
        let text = error.to_string();
        assert_eq!(error.problems.len(), 6, "{text}");
        assert!(!text.contains("short"), "the secret is not echoed: {text}");
        for name in [
            "RINNOVO_DATABASE_URL",
            "RINNOVO_BIND",
            "RINNOVO_DB_POOL_SIZE",
            "RINNOVO_DB_POOL_WAIT_SECS",
            "RINNOVO_LOG_FORMAT",
            "RINNOVO_JWT_SECRET",
        ] {
            assert!(text.contains(name), "{text}");
        }
    }
}
