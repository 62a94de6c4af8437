//! Building and running the service: pool, migrations, seeds, HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::auth::tokens::{self, TokenIssuer};
use crate::config::Config;
use crate::coupons::{CouponKey, COUPON_KEY_FILE};
use crate::db::{self, Pool};
use crate::http::{self, AppState};
use crate::invoices::transmitter::TransmitSettings;
use crate::mail::{dispatcher, DispatchSettings, Transport};
use crate::secrets;
use crate::seed;

#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// Load (or refresh) the demo registry from `seeds/demo.json`, and create the demo
    /// users (see [`crate::demo`]).
    pub demo: bool,
}

pub struct Application {
    port: u16,
    server: Server,
    pool: Pool,
    workers: Option<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Connects, migrates, seeds and binds. Fails with a clear message before serving
    /// anything if the database or the address is not usable.
    pub async fn build(config: Config, options: StartOptions) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let pool = prepare_database(config.clone(), options).await?;

        let listener = TcpListener::bind(config.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let port = listener.local_addr()?.port();
        let secret = secrets::load_or_create(
            config.jwt_secret.as_ref().map(|s| s.expose()),
            &config.data_dir,
            tokens::SECRET_FILE,
        )?;
        let coupon_key = CouponKey::new(secrets::load_or_create(
            config.coupon_key.as_ref().map(|s| s.expose()),
            &config.data_dir,
            COUPON_KEY_FILE,
        )?);
        // The embedded CA is made on first start, so a broken data directory shows now
        // rather than at the first renewal; `rinnovo device enroll` signs with it.
        let ca = Arc::new(crate::ca::EmbeddedCa::open_or_create(&config.data_dir)?);
        let access_ttl = chrono::Duration::from_std(config.access_token_ttl)?;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            config: config.clone(),
            tokens: Arc::new(TokenIssuer::new(&secret, access_ttl)),
            coupon_key: Arc::new(coupon_key),
            ca,
            csrf_key: Arc::new(crate::auth::web_sessions::CsrfKey::derive(&secret)),
            card: card_settings(&config)?,
        });

        let metrics = web::Data::new(http::metrics::Metrics::new()?);

        let mut server = HttpServer::new(move || {
            App::new()
                // HEAD answers as GET does, without the body (RFC 9110 §9.3.2): routes
                // are declared for GET only, so a HEAD is routed as a GET. The connection
                // was told the request is a HEAD when it was read, and sends no body.
                // Innermost, so the request log and the metrics still say HEAD.
                //
                // A URL longer than any of ours is refused here with a problem body, and so
                // is a query string sent to an endpoint that takes none.
                .wrap_fn(|mut request, service| {
                    use actix_web::dev::Service;
                    use futures_util::future::{ready, Either};
                    if request.method() == actix_web::http::Method::HEAD {
                        request.head_mut().method = actix_web::http::Method::GET;
                    }
                    let refusal = http::refuse_long_url(&request)
                        .or_else(|| http::refuse_undeclared_query(&request));
                    if let Some(refusal) = refusal {
                        return Either::Left(ready(Ok(request.into_response(refusal))));
                    }
                    Either::Right(service.call(request))
                })
                .wrap(http::problem_json_for_all_errors())
                .wrap_fn(|request, service| {
                    use actix_web::dev::Service;
                    let request_id = request.extensions().get::<RequestId>().copied();
                    let response = service.call(request);
                    async move {
                        let mut response = response.await?;
                        let Some(id) = request_id.map(|id| id.to_string()) else {
                            return Ok(response.map_into_boxed_body());
                        };
                        if let Ok(value) = HeaderValue::from_str(&id) {
                            response
                                .headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), value);
                        }
                        // Problem bodies name it too, for clients reporting a failure.
                        Ok(http::problem::with_request_id(response, &id))
                    }
                })
                .wrap_fn(|request, service| {
                    use actix_web::dev::Service;
                    let timer = http::metrics::RequestTimer::start(&request);
                    let response = service.call(request);
                    async move {
                        let response = response.await;
                        timer.finish(&response);
                        response
                    }
                })
                .wrap(TracingLogger::<crate::telemetry::RedactedRootSpan>::new())
                .app_data(state.clone())
                .app_data(metrics.clone())
                .configure(http::configure)
                .configure(crate::web::configure)
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        // A client gets 10 s to send its request head and 5 s to close; idle
        // connections live 75 s (longer than the usual proxy's 60 s, so the proxy closes
        // first and never reuses a connection we are closing). Slow-loris clients cannot
        // hold workers; large uploads are bounded by the body limits instead.
        .client_request_timeout(std::time::Duration::from_secs(10))
        .client_disconnect_timeout(std::time::Duration::from_secs(5))
        .keep_alive(std::time::Duration::from_secs(75))
        .shutdown_timeout(config.shutdown_timeout.as_secs());
        if let Some(workers) = config.http_workers {
            server = server.workers(workers);
        }
        let server = server.run();
        let workers = if config.run_workers {
            // The workers' own connections: on a pool shared with requests, the
            // dispatcher would wait in line behind every request whenever the service
            // is busy, and the codes reach the buyer late exactly then.
            let worker_pool = {
                let config = config.clone();
                tokio::task::spawn_blocking(move || {
                    db::build_pool(&config.database_url, config.worker_pool_size)
                })
                .await??
            };
            Some(tokio::spawn(run_workers(worker_pool, config.clone())?))
        } else {
            None
        };
        tracing::info!(
            port,
            database = %config.database_url.redacted(),
            "rinnovo is listening"
        );
        Ok(Self {
            port,
            server,
            pool,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Serves until SIGINT/SIGTERM, then stops accepting and lets requests in flight
    /// finish (up to `RINNOVO_SHUTDOWN_TIMEOUT_SECS`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(workers) = self.workers {
            // Workers hold leases, not transactions: an email being sent when we stop is
            // taken over by another dispatcher when its lease runs out.
            workers.abort();
        }
        result
    }
}

async fn not_found() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NotFound().finish()
}

pub fn dispatch_settings(config: &Config) -> DispatchSettings {
    DispatchSettings {
        public_url: config.public_url.clone(),
        max_attempts: config.mail_max_attempts as i32,
        concurrency: config.mail_concurrency as usize,
        retry_base: chrono::Duration::from_std(config.mail_retry_base)
            .unwrap_or(chrono::Duration::seconds(30)),
        batch_pause: config.worker_pause,
        idle_poll: config.mail_poll,
        ..DispatchSettings::default()
    }
}

pub fn transmit_settings(config: &Config) -> TransmitSettings {
    TransmitSettings {
        retry: config.sdi_retry,
        batch_pause: config.worker_pause,
        ..TransmitSettings::default()
    }
}

/// The background workers (the email dispatcher, the reservation expiry, the renewal
/// reminders, the issuance batch and the SdI transmitter), as one future. Fails at once
/// if the mail transport or the SdI channel cannot be set up.
pub fn run_workers(
    pool: Pool,
    config: Arc<Config>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let transport = Transport::new(
        config.smtp_url.as_ref().map(|s| s.expose()),
        config.mail_dir.clone(),
    )?;
    let settings = dispatch_settings(&config);
    let dispatch = dispatcher::run(pool.clone(), Arc::new(transport), settings);
    let expiry = crate::payments::expiry::run(pool.clone(), config.expiry_interval);
    let reminders = crate::renewals::reminders::run(
        pool.clone(),
        config.renewal_policy,
        crate::renewals::reminders::Pacing {
            interval: config.reminder_interval,
            batch_devices: config.reminder_batch_size,
            pause: config.worker_pause,
        },
    );
    let ca: Arc<dyn crate::ca::CertificateAuthority> =
        Arc::new(crate::ca::EmbeddedCa::open_or_create(&config.data_dir)?);
    let issuance = crate::renewals::issuance::run(
        pool.clone(),
        ca,
        config.issuance.clone(),
        config.issuance_interval,
        config.worker_pause,
    );
    let card = card_settings(&config)?.map(|card| {
        let coupon_key = CouponKey::new(secrets::load_or_create(
            config.coupon_key.as_ref().map(|s| s.expose()),
            &config.data_dir,
            COUPON_KEY_FILE,
        )?);
        let timing = config.card.as_ref().map(|c| c.timing).expect("configured");
        let worker = crate::payments::card::worker::CardWorker {
            pool: pool.clone(),
            card,
            coupon_key: Arc::new(coupon_key),
            public_url: config.public_url.clone(),
            check_interval: timing.first_check_after.max(chrono::Duration::seconds(1)),
            refund_retry: crate::payments::card::refunds::retry_policy(),
            batch_pause: config.worker_pause,
        };
        anyhow::Ok(crate::payments::card::worker::run(
            worker,
            timing.worker_interval,
        ))
    });
    let card = card.transpose()?;
    let transmitter =
        crate::invoices::transmitter::run(pool, &config.sdi_channel, transmit_settings(&config))?;
    Ok(async move {
        let card = async move {
            if let Some(card) = card {
                card.await;
            }
        };
        tokio::join!(dispatch, expiry, reminders, issuance, transmitter, card);
    })
}

/// The card payment provider, when one is configured.
pub fn card_settings(config: &Config) -> anyhow::Result<Option<crate::card::CardSettings>> {
    let Some(card) = &config.card else {
        return Ok(None);
    };
    let stripe = crate::card::stripe::Stripe::new(
        &card.api_base,
        card.secret_key.expose().to_owned(),
        card.webhook_secrets
            .iter()
            .map(|s| s.expose().to_owned())
            .collect(),
    )?;
    Ok(Some(crate::card::CardSettings {
        provider: Arc::new(stripe),
        session_lifetime: card.timing.session_lifetime,
    }))
}

/// Opens the pool and applies pending migrations, on a blocking thread.
pub async fn migrate(config: Arc<Config>) -> anyhow::Result<Pool> {
    tokio::task::spawn_blocking(move || {
        let pool = db::build_pool_waiting(
            &config.database_url,
            config.db_pool_size,
            config.db_pool_wait,
        )?;
        let applied = db::run_migrations(&mut *pool.get()?)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
        Ok(pool)
    })
    .await?
}

/// Where `serve --demo` puts the keys and certificates of a device to play the desktop
/// agent with.
pub const DEMO_AGENT_DIR: &str = "demo-agent";

/// Once per data directory: a device for the demo holder Giulia Romano with real
/// certificates of the embedded CA, 45 days from expiry, its files in `demo-agent/`
/// (what `rinnovo device enroll` makes), so the demo shows the renewal end to end.
fn demo_agent_device(
    conn: &mut db::DbConnection,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    use crate::registry::enroll;
    let dir = data_dir.join(DEMO_AGENT_DIR);
    if dir.exists() {
        return Ok(());
    }
    let ca = crate::ca::EmbeddedCa::open_or_create(data_dir)?;
    let now = chrono::Utc::now();
    let enrolled = enroll::enroll_device(
        conn,
        &ca,
        &crate::registry::CodiceFiscale::parse("RMNGLI88C52H501Q")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        "visura",
        crate::registry::DeviceKind::UsbKey,
        now + chrono::Duration::days(45),
        now,
    )?;
    enroll::write_files(
        &enrolled,
        &crate::ca::CertificateAuthority::chain_pem(&ca),
        &dir,
    )?;
    tracing::info!(device = %enrolled.serial_number, dir = %dir.display(), "demo agent device enrolled");
    Ok(())
}

/// Migrations, then the base seeds (brands) and, if asked, the demo registry and users.
pub async fn prepare_database(config: Arc<Config>, options: StartOptions) -> anyhow::Result<Pool> {
    let data_dir = config.data_dir.clone();
    let pool = migrate(config).await?;
    let seeding = pool.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut conn = seeding.get()?;
        let report = seed::load_base(&mut conn)?;
        tracing::debug!(?report, "base seeds loaded");
        if options.demo {
            let report = seed::load_demo(&mut conn, chrono::Utc::now())?;
            tracing::info!(?report, "demo registry loaded");
            demo_agent_device(&mut conn, &data_dir)?;
            let created = crate::demo::ensure_users(&mut conn, chrono::Utc::now())?;
            tracing::info!(created, "demo users ready");
            // Printed, not only logged: the first thing a new user needs is whom to sign in as.
            println!("{}", crate::demo::users_block());
        }
        Ok(())
    })
    .await??;
    Ok(pool)
}
