//! Prometheus metrics at `GET /metrics` (text exposition format): requests by route
//! pattern, method and status with their durations, the database pool, and the shared
//! queues (email outbox, issuance, payments, SdI transmissions and the documents not yet
//! transmitted) read from the database at scrape time, so
//! every process reports the same truth. With `RINNOVO_METRICS_TOKEN` set, a scrape
//! needs `Authorization: Bearer <token>`.
//!
//! Labels never carry a request's path: the route is the pattern
//! (`/api/v1/holders/{codice_fiscale}/devices`), so codici fiscali and coupon codes stay
//! out of the metrics and the number of series stays bounded.

use actix_web::get;
use std::time::Instant;

use actix_web::dev::ServiceResponse;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use sha2::{Digest, Sha256};

use super::{ApiError, ApiResult, Problem, State};
use crate::invoices::transmission;
use crate::mail::outbox;
use crate::payments::queue;
use crate::registry::RenewalState;
use crate::renewals::issuance;

/// The label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The metrics of one application (one registry each, so several apps in one process,
/// as in the tests, do not mix their counts).
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    outbox_pending: IntGauge,
    outbox_dead: IntGauge,
    outbox_oldest_age: Gauge,
    issuance_depth: IntGaugeVec,
    issuance_oldest_age: Gauge,
    payments: IntGaugeVec,
    sdi_untransmitted: IntGauge,
    sdi_near_deadline: IntGauge,
    sdi_pending: IntGauge,
    sdi_sent: IntCounterVec,
    sdi_failures: IntCounterVec,
    sdi_dead: IntGaugeVec,
    card_payments: IntGaugeVec,
    card_notifications: IntCounterVec,
    card_refunds: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let registrar = Registrar(&registry);
        Ok(Self {
            requests: registrar.add(IntCounterVec::new(
                Opts::new("rinnovo_http_requests_total", "HTTP requests answered"),
                &["method", "route", "status"],
            ))?,
            durations: registrar.add(HistogramVec::new(
                HistogramOpts::new(
                    "rinnovo_http_request_duration_seconds",
                    "Time from request to response head",
                ),
                &["method", "route"],
            ))?,
            pool_connections: registrar.add(IntGaugeVec::new(
                Opts::new(
                    "rinnovo_db_pool_connections",
                    "Database connections of this process's pool",
                ),
                &["state"],
            ))?,
            pool_max: registrar.add(IntGauge::new(
                "rinnovo_db_pool_max_connections",
                "Largest size of this process's database pool",
            ))?,
            outbox_pending: registrar.add(IntGauge::new(
                "rinnovo_outbox_pending_emails",
                "Emails waiting to be sent (first attempt or retry)",
            ))?,
            outbox_dead: registrar.add(IntGauge::new(
                "rinnovo_outbox_dead_emails",
                "Emails given up after the last attempt, waiting for the back-office",
            ))?,
            outbox_oldest_age: registrar.add(Gauge::new(
                "rinnovo_outbox_oldest_pending_age_seconds",
                "Age of the oldest pending email (0 when none)",
            ))?,
            issuance_depth: registrar.add(IntGaugeVec::new(
                Opts::new(
                    "rinnovo_issuance_queue_depth",
                    "Renewals waiting for (queued) or in (issuing) an issuance batch",
                ),
                &["status"],
            ))?,
            issuance_oldest_age: registrar.add(Gauge::new(
                "rinnovo_issuance_oldest_queued_age_seconds",
                "Age of the oldest queued renewal (0 when none)",
            ))?,
            payments: registrar.add(IntGaugeVec::new(
                Opts::new(
                    "rinnovo_payments",
                    "Stored statement payments by reconciliation status",
                ),
                &["status"],
            ))?,
            sdi_untransmitted: registrar.add(IntGauge::new(
                "rinnovo_sdi_untransmitted_documents",
                "Invoices and credit notes issued and not yet transmitted to the SdI",
            ))?,
            sdi_near_deadline: registrar.add(IntGauge::new(
                "rinnovo_sdi_untransmitted_near_deadline_documents",
                "Documents not yet transmitted to the SdI dated 10 or more days ago (the law \
                 allows 12)",
            ))?,
            sdi_pending: registrar.add(IntGauge::new(
                "rinnovo_sdi_pending_files",
                "Files waiting to be sent to the SdI (first attempt or retry)",
            ))?,
            sdi_sent: registrar.add(IntCounterVec::new(
                Opts::new("rinnovo_sdi_files_sent_total", "Files sent to the SdI"),
                &["channel"],
            ))?,
            sdi_failures: registrar.add(IntCounterVec::new(
                Opts::new(
                    "rinnovo_sdi_send_failures_total",
                    "Failed attempts to send a file to the SdI",
                ),
                &["channel"],
            ))?,
            card_payments: registrar.add(IntGaugeVec::new(
                Opts::new(
                    "rinnovo_card_payments",
                    "Card payments (provider sessions) by status",
                ),
                &["status"],
            ))?,
            card_notifications: registrar.add(IntCounterVec::new(
                Opts::new(
                    "rinnovo_card_notifications_total",
                    "Card provider notifications applied, by outcome (redeliveries are not counted again)",
                ),
                &["outcome"],
            ))?,
            card_refunds: registrar.add(IntGaugeVec::new(
                Opts::new(
                    "rinnovo_card_refunds",
                    "Card refunds by what the provider says of them (requested: not yet answered)",
                ),
                &["status"],
            ))?,
            sdi_dead: registrar.add(IntGaugeVec::new(
                Opts::new(
                    "rinnovo_sdi_dead_files",
                    "Files given up after the last attempt, waiting for the back-office",
                ),
                &["channel"],
            ))?,
            registry,
        })
    }
}

/// Registers each metric as it is made, so none can be made and then left out of the
/// scrape.
struct Registrar<'a>(&'a Registry);

impl Registrar<'_> {
    fn add<M: Collector + Clone + 'static>(
        &self,
        made: prometheus::Result<M>,
    ) -> prometheus::Result<M> {
        let metric = made?;
        self.0.register(Box::new(metric.clone()))?;
        Ok(metric)
    }
}

/// Taken when a request comes in (in a middleware), recorded when its response leaves.
pub struct RequestTimer {
    metrics: Option<web::Data<Metrics>>,
    method: &'static str,
    route: String,
    start: Instant,
}

impl RequestTimer {
    pub fn start(request: &actix_web::dev::ServiceRequest) -> Self {
        Self {
            metrics: request.app_data::<web::Data<Metrics>>().cloned(),
            method: method_label(request.method()),
            route: request
                .request()
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED.to_owned()),
            start: Instant::now(),
        }
    }

    pub fn finish<B>(self, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let Some(metrics) = self.metrics else {
            return;
        };
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        metrics
            .requests
            .with_label_values(&[self.method, &self.route, status.as_str()])
            .inc();
        metrics
            .durations
            .with_label_values(&[self.method, &self.route])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

/// The standard methods by name; anything else is `other`, so a client cannot make up
/// label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Prometheus metrics (text exposition format)
///
/// Requests by route pattern, method and status with their durations, the database pool, and
/// the shared queues (email outbox, issuance, payments) read from the database at scrape time.
/// When the server is configured with `RINNOVO_METRICS_TOKEN`, the scrape needs
/// `Authorization: Bearer <metrics token>` (a static token, neither an access nor an agent
/// token); otherwise it is public.
#[utoipa::path(
    operation_id = "metrics_scrape",
    security(()),
    responses(
        (status = 200, description = "The metrics, Prometheus text format 0.0.4 \
            (`Cache-Control: no-store`)",
            body = String, content_type = "text/plain; version=0.0.4",
            headers(("Cache-Control" = String, description = "Always `no-store`"))),
        (status = 401, description = "A metrics token is configured and the request's bearer \
            token is missing or wrong (`/problems/unauthorized`)",
            body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    )
)]
#[get("/metrics")]
pub async fn scrape(request: HttpRequest, state: State, metrics: web::Data<Metrics>) -> ApiResult {
    if let Some(token) = &state.config.metrics_token {
        authorize(&request, token.expose())?;
    }
    // Before this scrape takes a connection of its own.
    let pool = state.pool.state();
    metrics
        .pool_connections
        .with_label_values(&["idle"])
        .set(pool.idle_connections.into());
    metrics.pool_connections.with_label_values(&["in_use"]).set(
        pool.connections
            .saturating_sub(pool.idle_connections)
            .into(),
    );
    metrics.pool_max.set(state.pool.max_size().into());

    let now = Utc::now();
    let (emails, renewals, payments, sdi, untransmitted, card) = state
        .with_conn(move |conn| -> diesel::QueryResult<_> {
            Ok((
                outbox::stats(conn)?,
                issuance::stats(conn)?,
                queue::count_by_status(conn)?,
                transmission::stats(conn)?,
                transmission::untransmitted(conn, None, now.date_naive())?,
                crate::card::store::stats(conn)?,
            ))
        })
        .await?;
    metrics.outbox_pending.set(emails.pending);
    metrics.outbox_dead.set(emails.dead);
    metrics
        .outbox_oldest_age
        .set(age_seconds(emails.oldest_pending, now));
    metrics
        .issuance_depth
        .with_label_values(&[RenewalState::Queued.as_str()])
        .set(renewals.queued);
    metrics
        .issuance_depth
        .with_label_values(&[RenewalState::Issuing.as_str()])
        .set(renewals.issuing);
    metrics
        .issuance_oldest_age
        .set(age_seconds(renewals.oldest_queued, now));
    for (status, count) in payments {
        metrics
            .payments
            .with_label_values(&[status.as_str()])
            .set(count);
    }

    metrics.sdi_untransmitted.set(untransmitted.total);
    metrics.sdi_near_deadline.set(untransmitted.near_deadline);
    metrics.sdi_pending.set(sdi.pending);
    for (channel, counts) in &sdi.by_channel {
        catch_up(&metrics.sdi_sent.with_label_values(&[channel]), counts.sent);
        catch_up(
            &metrics.sdi_failures.with_label_values(&[channel]),
            counts.failures,
        );
        metrics
            .sdi_dead
            .with_label_values(&[channel])
            .set(counts.dead);
    }

    for (status, count) in &card.payments {
        metrics
            .card_payments
            .with_label_values(&[status.as_str()])
            .set(*count);
    }
    for (outcome, count) in &card.events {
        catch_up(
            &metrics.card_notifications.with_label_values(&[outcome]),
            *count,
        );
    }
    for (status, count) in &card.refunds {
        metrics
            .card_refunds
            .with_label_values(&[status])
            .set(*count);
    }

    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&metrics.registry.gather(), &mut body)
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, prometheus::TEXT_FORMAT))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// Brings a counter up to `total`, counted in the database (so every process reports the
/// same, whichever sent the files). Totals only grow; a smaller one leaves it as it is.
fn catch_up(counter: &prometheus::IntCounter, total: i64) {
    let total = total.max(0) as u64;
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

fn age_seconds(oldest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
    oldest.map_or(0.0, |t| {
        ((now - t).num_milliseconds() as f64 / 1000.0).max(0.0)
    })
}

/// `Authorization: Bearer <token>`, compared through SHA-256 digests in constant time.
fn authorize(request: &HttpRequest, token: &str) -> Result<(), ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, value)| value.trim());
    let matches = presented.is_some_and(|presented| {
        let (a, b) = (Sha256::digest(presented), Sha256::digest(token));
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    });
    if matches {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "the metrics need Authorization: Bearer with the metrics token".into(),
        ))
    }
}
