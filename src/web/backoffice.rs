//! The back-office pages (`/backoffice`): for operators of a brand. Thin handlers over
//! the same domain functions as the JSON API (`http::payments`, `http::prepaid`,
//! `http::emails`, `http::coupons`): the rules, the audit and the brand scoping stay in
//! the domain modules; here are the forms, the Italian messages and the pages.
//!
//! Every POST checks the CSRF token first, then the operator, then makes the domain call
//! in one go; a success answers 303 back to the page (`?fatto=...` says what was done), a
//! refused input or a domain refusal shows the page again with the message next to the
//! field.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Operator;
use super::{euro, merge, see_other, signed_in_context, Csrf, WebError, COUPON_CODE_INVALID};
use super::{page, with_conn};
use crate::auth::User;
use crate::brands::{self, Brand};
use crate::coupons::{self, CouponCode, VoidError};
use crate::email_address::EmailAddress;
use crate::http::AppState;
use crate::mail::outbox;
use crate::money::{Money, MoneyError, PositiveMoney};
use crate::orders::{self, OrderFilter, OrderStatus};
use crate::payments::matching::PaymentStatus;
use crate::payments::queue::{self, Filter, ManualError, PaymentView};
use crate::payments::reconcile::{self, ImportContext, ImportError};
use crate::payments::statement;
use crate::payments::CreditorReference;
use crate::prepaid::{self, Adjustment, Direction, EntryKind, PrepaidError};
use crate::secrets::hex;
use crate::validation::{Reason, TextError};

/// Payments per page of the work queue.
const QUEUE_PAGE: i64 = 100;
/// Statements listed on the import page.
const STATEMENTS_SHOWN: i64 = 200;
/// Ledger entries per page of an account.
const ENTRIES_PAGE: i64 = 50;
/// Dead emails listed.
const EMAILS_SHOWN: i64 = 500;
/// The CSRF token is 64 hex digits; anything much longer in its form part is not one.
const TOKEN_PART_MAX: usize = 256;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/backoffice", web::get().to(home))
        .route("/backoffice/estratti", web::get().to(statements))
        .route("/backoffice/estratti", web::post().to(import))
        .route("/backoffice/pagamenti", web::get().to(payments))
        .route("/backoffice/pagamenti/{id}", web::get().to(payment))
        .route(
            "/backoffice/pagamenti/{id}/abbina",
            web::post().to(match_payment),
        )
        .route(
            "/backoffice/pagamenti/{id}/rimborsa",
            web::post().to(refund_payment),
        )
        .route("/backoffice/ordini", web::get().to(orders_page))
        .route("/backoffice/riepilogo", web::get().to(summary))
        .route("/backoffice/prepagati", web::get().to(accounts))
        .route("/backoffice/prepagati/{account}", web::get().to(account))
        .route(
            "/backoffice/prepagati/{account}/rettifica",
            web::post().to(adjust),
        )
        .route("/backoffice/email", web::get().to(emails))
        .route(
            "/backoffice/email/{id}/riprova",
            web::post().to(retry_email),
        )
        .route("/backoffice/coupon", web::get().to(coupon_form))
        .route("/backoffice/coupon", web::post().to(void_coupon));
}

async fn home(_request: HttpRequest, Operator(_user): Operator) -> Result<HttpResponse, WebError> {
    Ok(see_other("/backoffice/pagamenti"))
}

// ---------------------------------------------------------------------------------------
// Plumbing

fn brand_of(conn: &mut crate::db::DbConnection, id: &str) -> Result<Brand, WebError> {
    brands::find(conn, id)?
        .ok_or_else(|| WebError::Unexpected(anyhow::anyhow!("brand {id} missing")))
}

/// The layout's context (who, brand, nav, CSRF token) and the page's title.
fn base(user: &User, brand: &Brand, csrf: &Csrf, title: &str) -> Value {
    merge(
        signed_in_context(user, &brand.name, csrf),
        json!({ "title": title }),
    )
}

/// The operator of a POST, once its CSRF token has been checked.
async fn operator_of(request: &HttpRequest) -> Result<User, WebError> {
    let Operator(user) = Operator::extract(request).await?;
    Ok(user)
}

/// What `?fatto=` says was done, in words.
fn done_message(fatto: Option<&str>) -> Value {
    match fatto {
        Some("abbinato") => json!("Pagamento abbinato."),
        Some("rimborsato") => json!("Pagamento segnato come rimborsato."),
        Some("rettificato") => json!("Rettifica registrata."),
        Some("riprova") => json!("L'email è di nuovo in coda di invio."),
        _ => Value::Null,
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    fatto: Option<String>,
}

fn date_it(date: NaiveDate) -> String {
    date.format("%d/%m/%Y").to_string()
}

fn time_it(time: DateTime<Utc>) -> String {
    time.format("%d/%m/%Y %H:%M UTC").to_string()
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("«{}» non è una data come 2026-11-23.", text.trim()))
}

fn reason_error(error: &TextError) -> String {
    match error {
        TextError::TooShort(n) => format!("Scrivi il motivo: almeno {n} caratteri."),
        TextError::TooLong(n) => format!("Il motivo può avere al massimo {n} caratteri."),
        TextError::ControlCharacter => "Il motivo non può contenere caratteri di controllo.".into(),
    }
}

/// An amount typed the Italian way ("1.464,50") or the other ("1464.50").
fn parse_amount(text: &str) -> Result<PositiveMoney, String> {
    let text = text.trim();
    let normal = if text.contains(',') {
        text.replace('.', "").replace(',', ".")
    } else {
        text.to_owned()
    };
    PositiveMoney::parse(&normal).map_err(|e| match e {
        MoneyError::NotANumber(_) => {
            format!("«{text}» non è un importo: scrivilo come 12,50.")
        }
        MoneyError::TooPrecise(_) => "L'importo può avere al massimo due decimali.".into(),
        MoneyError::TooLarge(_) => "L'importo è troppo grande.".into(),
        MoneyError::NotPositive(_) => "L'importo deve essere maggiore di zero.".into(),
    })
}

fn status_label(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Matched => "abbinato",
        PaymentStatus::Partial => "parziale",
        PaymentStatus::Overpaid => "eccedente",
        PaymentStatus::Duplicate => "doppio",
        PaymentStatus::Unmatched => "da abbinare",
        PaymentStatus::Refunded => "rimborsato",
        PaymentStatus::Reversed => "stornato",
        PaymentStatus::Reversal => "storno",
    }
}

fn payment_status_text(status: &str) -> String {
    PaymentStatus::parse(status).map_or_else(|| status.to_owned(), |s| status_label(s).to_owned())
}

fn unmatched_reason_label(reason: &str) -> String {
    match reason {
        "no_reference" => "senza codice RF".into(),
        "unknown_reference" => "codice RF sconosciuto".into(),
        "reservation_expired" => "prenotazione scaduta".into(),
        "order_cancelled" => "ordine annullato".into(),
        "original_not_found" => "accredito originale non trovato".into(),
        "balance_too_low" => "credito prepagato già speso".into(),
        other => other.into(),
    }
}

fn order_status_label(status: &str) -> String {
    match status {
        "awaiting_payment" => "in attesa di pagamento".into(),
        "paid" => "pagato".into(),
        "fulfilled" => "evaso".into(),
        "expired" => "scaduto".into(),
        "cancelled" => "annullato".into(),
        other => other.into(),
    }
}

fn coupon_status_label(status: &str) -> String {
    match status {
        "available" => "disponibile".into(),
        "reserved" => "prenotato per un rinnovo".into(),
        "redeemed" => "già utilizzato".into(),
        "voided" => "già annullato".into(),
        "expired" => "scaduto".into(),
        other => other.into(),
    }
}

fn entry_kind_label(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::TopUp => "Ricarica",
        EntryKind::OrderDebit => "Pagamento ordine",
        EntryKind::Refund => "Rimborso",
        EntryKind::OverpaymentCredit => "Accredito eccedenza",
        EntryKind::Adjustment => "Rettifica",
    }
}

fn insufficient_funds(balance: Money, requested: Money) -> String {
    format!(
        "Il saldo del conto prepagato è {}, servono {}: il cliente ha già speso il credito.",
        euro(balance),
        euro(requested)
    )
}

/// `camt.053.001.08`, `postal-csv-1`: the version says the format too; the CBI envelope's
/// does not.
fn format_label(format: &str, version: &str) -> String {
    if version.starts_with("camt.") || version.starts_with("postal-csv") {
        version.to_owned()
    } else {
        format!("{format} ({version})")
    }
}

fn or_dash(text: Option<String>) -> String {
    text.filter(|t| !t.is_empty())
        .unwrap_or_else(|| "—".to_owned())
}

// ---------------------------------------------------------------------------------------
// Statements

fn statements_context(
    user: &User,
    brand: &Brand,
    csrf: &Csrf,
    list: Vec<queue::StatementView>,
    max_bytes: usize,
    error: Option<String>,
) -> Value {
    let statements: Vec<Value> = list
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "imported_at": time_it(s.imported_at),
                "file_name": or_dash(s.file_name),
                "format": format_label(&s.format, &s.version),
                "entries": s.entries,
                "new_entries": s.new_entries,
                "ignored_entries": s.ignored_entries,
            })
        })
        .collect();
    merge(
        base(user, brand, csrf, "Estratti conto"),
        json!({
            "statements": statements,
            "max_mb": max_bytes.div_ceil(1024 * 1024),
            "error": error,
        }),
    )
}

async fn statements_page(
    state: &web::Data<AppState>,
    csrf: &Csrf,
    user: User,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let brand_id = user.brand_id.clone();
    let (brand, list) = with_conn(state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let list =
            queue::statements(conn, &brand_id, STATEMENTS_SHOWN).map_err(WebError::storage)?;
        Ok((brand, list))
    })
    .await?;
    let max = state.config.statement_max_bytes;
    let context = statements_context(&user, &brand, csrf, list, max, error);
    page(state, csrf, status, "bo_estratti", context)
}

async fn statements(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    statements_page(&state, &csrf, user, StatusCode::OK, None).await
}

/// Why an uploaded statement was not imported, shown next to the file field.
struct Refused(StatusCode, String);

impl Refused {
    fn unreadable(error: impl std::fmt::Display) -> Self {
        Self(
            StatusCode::BAD_REQUEST,
            format!("Il file non è arrivato per intero ({error}): riprova."),
        )
    }
}

/// Reads the upload: the `csrf_token` part first (checked, then the operator, before any
/// byte of the file is read), then the `file` part, refused past `limit` bytes without
/// reading the rest. The page's form puts the token before the file, as browsers send
/// parts in the order of the form.
async fn read_upload(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(User, Result<(Vec<u8>, Option<String>), Refused>), WebError> {
    let multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        // Not our form: it cannot carry the token.
        return Err(WebError::Csrf);
    }
    let mut form = actix_multipart::Multipart::new(request.headers(), payload);
    let mut user = None;
    while let Some(field) = form.next().await {
        let mut field = match field {
            Ok(field) => field,
            Err(e) if user.is_some() => {
                return Ok((user.expect("set"), Err(Refused::unreadable(e))))
            }
            Err(_) => return Err(WebError::Csrf),
        };
        let (name, file_name) = match field.content_disposition() {
            Some(disposition) => (
                disposition.get_name().unwrap_or_default().to_owned(),
                disposition.get_filename().map(str::to_owned),
            ),
            None => (String::new(), None),
        };
        match (name.as_str(), &user) {
            ("csrf_token", None) => {
                let mut token = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(|_| WebError::Csrf)?;
                    if token.len() + chunk.len() > TOKEN_PART_MAX {
                        return Err(WebError::Csrf);
                    }
                    token.extend_from_slice(&chunk);
                }
                Csrf::check(request, &String::from_utf8_lossy(&token))?;
                user = Some(operator_of(request).await?);
            }
            // The file before the token: not the page's form.
            ("file", None) => return Err(WebError::Csrf),
            ("file", Some(_)) => {
                let user = user.expect("checked");
                let mut bytes = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = match chunk {
                        Ok(chunk) => chunk,
                        Err(e) => return Ok((user, Err(Refused::unreadable(e)))),
                    };
                    if bytes.len() + chunk.len() > limit {
                        let message = format!(
                            "Il file supera il limite di {} MB: dividi l'estratto o chiedi di alzare il limite (RINNOVO_STATEMENT_MAX_MB).",
                            limit.div_ceil(1024 * 1024)
                        );
                        return Ok((user, Err(Refused(StatusCode::PAYLOAD_TOO_LARGE, message))));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                return Ok((user, Ok((bytes, file_name))));
            }
            _ => {
                // Another part: read and ignore it.
                while let Some(chunk) = field.next().await {
                    if chunk.is_err() {
                        break;
                    }
                }
            }
        }
    }
    match user {
        Some(user) => Ok((
            user,
            Err(Refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Scegli il file dell'estratto conto da importare.".into(),
            )),
        )),
        None => Err(WebError::Csrf),
    }
}

async fn import(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let (user, upload) = read_upload(&request, payload, state.config.statement_max_bytes).await?;
    let csrf = Csrf::of(&request);
    let (bytes, file_name) = match upload {
        Ok((bytes, _)) if bytes.is_empty() => {
            let message = "Il file è vuoto: scegli il file dell'estratto conto.".to_owned();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return statements_page(&state, &csrf, user, status, Some(message)).await;
        }
        Ok(upload) => upload,
        Err(Refused(status, message)) => {
            return statements_page(&state, &csrf, user, status, Some(message)).await
        }
    };
    // Parsing a large file takes CPU: off the async workers.
    let parsed = web::block(move || {
        let sha256 = hex(&Sha256::digest(&bytes));
        statement::parse(&bytes).map(|parsed| (parsed, sha256))
    })
    .await?;
    let (parsed, sha256) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let message = format!(
                "Il file non è un estratto conto che rinnovo sa leggere (camt.053, camt.054 o CSV postale), e non è stato importato nulla. Dove: {}. Problema: {}.",
                error.location, error.message
            );
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return statements_page(&state, &csrf, user, status, Some(message)).await;
        }
    };
    let app = state.clone();
    let (operator_id, brand_id) = (user.id.clone(), user.brand_id.clone());
    let outcome = with_conn(&state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let context = ImportContext {
            brand: &brand,
            operator_id: &operator_id,
            coupon_key: &app.coupon_key,
            public_url: &app.config.public_url,
            file_name: file_name.as_deref(),
            file_sha256: &sha256,
        };
        match reconcile::import(&app.pool, conn, &context, &parsed, Utc::now()) {
            Ok(report) => Ok(Ok((brand, report, parsed))),
            Err(ImportError::ForeignAccount { account, iban, postal, .. }) => Ok(Err(format!(
                "Il conto {account} dell'estratto non è un conto di {} (IBAN {iban}, conto postale {postal}): file o marchio sbagliato. Non è stato importato nulla.",
                brand.name
            ))),
            Err(ImportError::Storage(e)) => Err(WebError::storage(e)),
        }
    })
    .await?;
    let (brand, report, parsed) = match outcome {
        Ok(done) => done,
        Err(message) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return statements_page(&state, &csrf, user, status, Some(message)).await;
        }
    };
    // The usual outcomes always, with zero; the others when the file had some.
    let outcomes: Vec<Value> = PaymentStatus::ALL
        .iter()
        .filter(|s| {
            matches!(
                s,
                PaymentStatus::Matched
                    | PaymentStatus::Partial
                    | PaymentStatus::Overpaid
                    | PaymentStatus::Duplicate
                    | PaymentStatus::Unmatched
            ) || report.outcomes.contains_key(s)
        })
        .map(|s| {
            let (count, amount) = report
                .outcomes
                .get(s)
                .map(|t| (t.count, t.amount))
                .unwrap_or((0, Money::ZERO));
            json!({
                "status": s.as_str(),
                "label": status_label(*s),
                "count": count,
                "amount": euro(amount),
                "unmatched": *s == PaymentStatus::Unmatched && count > 0,
            })
        })
        .collect();
    let context = merge(
        base(&user, &brand, &csrf, "Estratto importato"),
        json!({
            "statement_id": report.statement_id,
            "format": format_label(parsed.format.as_str(), &parsed.version),
            "entries": report.entries,
            "new_entries": report.new_entries,
            "already_imported": report.already_imported,
            "ignored": report.ignored,
            "outcomes": outcomes,
        }),
    );
    page(
        &state,
        &csrf,
        StatusCode::OK,
        "bo_estratto_importato",
        context,
    )
}

// ---------------------------------------------------------------------------------------
// Orders

#[derive(Deserialize, Default)]
pub struct OrdersQuery {
    /// An RF code, invoice number, email address or order id: whatever the customer quotes.
    #[serde(default)]
    cerca: String,
    #[serde(default)]
    stato: String,
    /// The unmatched payment the operator is looking an order for (the link from its page):
    /// each order found then links back to that payment with the order filled in.
    #[serde(default)]
    pagamento: String,
}

/// How many orders the page shows: a search finds a handful; the unfiltered list is the
/// newest.
const ORDERS_PAGE: i64 = 100;

async fn orders_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
    query: web::Query<OrdersQuery>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let query = query.into_inner();
    let (search, stato, payment_id) = (
        query.cerca.trim(),
        query.stato.trim(),
        query.pagamento.trim(),
    );
    let mut filter = match search {
        "" => OrderFilter::default(),
        text => OrderFilter::from_search_text(text),
    };
    let mut stato_error = None;
    if !stato.is_empty() {
        filter.status = OrderStatus::parse(stato);
        if filter.status.is_none() {
            stato_error = Some("Scegli uno degli stati dell'elenco.");
        }
    }
    let brand_id = user.brand_id.clone();
    let valid = stato_error.is_none();
    let (brand, found) = with_conn(&state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let found = if valid {
            orders::list(conn, &brand_id, None, &filter, ORDERS_PAGE)?
        } else {
            Vec::new()
        };
        Ok((brand, found))
    })
    .await?;
    let rows: Vec<Value> = found
        .iter()
        .map(|o| {
            json!({
                "id": o.id,
                "date": time_it(o.created_at),
                "email": o.email,
                "total": euro(o.gross_total),
                "due": (o.amount_due() > Money::ZERO).then(|| euro(o.amount_due())),
                "status_label": order_status_label(o.status.as_str()),
                "reference": o.payment_reference.as_ref().map(|r| r.printed()),
                "invoice_number": or_dash(o.invoice_number.clone()),
                "match_link": (!payment_id.is_empty()).then(|| format!(
                    "/backoffice/pagamenti/{}?{}",
                    url_segment(payment_id),
                    query_string(&[("ordine", &o.id)])
                )),
            })
        })
        .collect();
    let statuses: Vec<Value> = OrderStatus::ALL
        .iter()
        .map(|s| json!({ "value": s.as_str(), "label": order_status_label(s.as_str()), "selected": s.as_str() == stato }))
        .collect();
    let searched = !search.is_empty() || !stato.is_empty();
    let context = merge(
        base(&user, &brand, &csrf, "Ordini"),
        json!({
            "filters": { "cerca": search, "stato": stato, "pagamento": payment_id },
            "errors": { "stato": stato_error },
            "statuses": statuses,
            "searched": searched,
            "found": match (searched, rows.len()) {
                (true, 1) => "1 ordine trovato".to_owned(),
                (true, n) => format!("{n} ordini trovati"),
                (false, 1) => "L'unico ordine".to_owned(),
                (false, n) => format!("Gli ultimi {n} ordini"),
            },
            "orders": rows,
            "limit": ORDERS_PAGE,
            "capped": rows.len() as i64 == ORDERS_PAGE,
        }),
    );
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(&state, &csrf, status, "bo_ordini", context)
}

// ---------------------------------------------------------------------------------------
// Payments

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    #[serde(default)]
    stato: String,
    #[serde(default)]
    dal: String,
    #[serde(default)]
    al: String,
    #[serde(default)]
    rf: String,
    #[serde(default)]
    pagina: String,
    /// The payments of one statement (the link from the statements page).
    #[serde(default)]
    estratto: String,
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if !value.is_empty() {
            query.append_pair(name, value);
        }
    }
    query.finish()
}

fn payment_row(p: &PaymentView) -> Value {
    json!({
        "id": p.id,
        "date": date_it(p.booking_date),
        "amount": euro(p.amount),
        "payer": or_dash(p.payer_name.clone()),
        "reference": or_dash(p.reference.clone()),
        "status": p.status.as_str(),
        "status_label": status_label(p.status),
        "reason": p.reason.as_deref().map(unmatched_reason_label),
        "order_id": or_dash(p.order_id.clone()),
        "debit": p.direction != "credit",
    })
}

async fn payments(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let query = query.into_inner();
    let mut errors = serde_json::Map::new();
    for field in ["stato", "dal", "al", "rf"] {
        errors.insert(field.into(), Value::Null);
    }
    let status = match query.stato.trim() {
        "" => None,
        text => match PaymentStatus::parse(text) {
            Some(status) => Some(status),
            None => {
                errors.insert("stato".into(), json!("Scegli uno degli stati dell'elenco."));
                None
            }
        },
    };
    let mut date = |field: &str, text: &str| match text.trim() {
        "" => None,
        text => match parse_date(text) {
            Ok(date) => Some(date),
            Err(message) => {
                errors.insert(field.into(), json!(message));
                None
            }
        },
    };
    let from = date("dal", &query.dal);
    let to = date("al", &query.al);
    let reference = match query.rf.trim() {
        "" => None,
        text => match CreditorReference::parse(text) {
            Ok(reference) => Some(reference.as_str().to_owned()),
            Err(e) => {
                errors.insert(
                    "rf".into(),
                    json!(format!(
                        "«{text}» non è un codice RF valido ({e}): controlla di averlo copiato per intero."
                    )),
                );
                None
            }
        },
    };
    let page_number = query
        .pagina
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=100_000).contains(n))
        .unwrap_or(1);
    let valid = errors.values().all(Value::is_null);
    let filter = Filter {
        status,
        from,
        to,
        reference,
        statement_id: Some(query.estratto.trim().to_owned()).filter(|s| !s.is_empty()),
        order_id: None,
    };
    let brand_id = user.brand_id.clone();
    let (brand, found) = with_conn(&state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let found = if valid {
            Some(
                queue::list(
                    conn,
                    &brand_id,
                    &filter,
                    QUEUE_PAGE,
                    (page_number - 1) * QUEUE_PAGE,
                )
                .map_err(WebError::storage)?,
            )
        } else {
            None
        };
        Ok((brand, found))
    })
    .await?;
    let statuses: Vec<Value> = PaymentStatus::ALL
        .iter()
        .map(|s| {
            json!({ "value": s.as_str(), "label": status_label(*s), "selected": s.as_str() == query.stato.trim() })
        })
        .collect();
    let filters = [
        ("stato", query.stato.trim()),
        ("dal", query.dal.trim()),
        ("al", query.al.trim()),
        ("rf", query.rf.trim()),
        ("estratto", query.estratto.trim()),
    ];
    let link = |n: i64| {
        let n = n.to_string();
        let mut pairs = filters.to_vec();
        if n != "1" {
            pairs.push(("pagina", &n));
        }
        format!("/backoffice/pagamenti?{}", query_string(&pairs))
    };
    let (rows, totals, previous, next) = match &found {
        Some((list, totals)) => (
            list.iter().map(payment_row).collect::<Vec<_>>(),
            json!({
                "count": totals.count,
                "noun": if totals.count == 1 { "pagamento" } else { "pagamenti" },
                "amount": euro(totals.amount),
            }),
            (page_number > 1).then(|| link(page_number - 1)),
            (page_number * QUEUE_PAGE < totals.count).then(|| link(page_number + 1)),
        ),
        None => (Vec::new(), Value::Null, None, None),
    };
    let context = merge(
        base(&user, &brand, &csrf, "Pagamenti"),
        json!({
            "filters": { "stato": query.stato.trim(), "dal": query.dal.trim(), "al": query.al.trim(), "rf": query.rf.trim(), "estratto": query.estratto.trim() },
            "errors": errors,
            "statuses": statuses,
            "payments": rows,
            "totals": totals,
            "page": page_number,
            "paged": previous.is_some() || next.is_some(),
            "previous": previous,
            "next": next,
        }),
    );
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(&state, &csrf, status, "bo_pagamenti", context)
}

/// What the two forms of a payment's page hold: typed values, messages per field, and
/// the message of a refusal of the domain.
#[derive(Default)]
struct PaymentForms {
    order_id: String,
    account_id: String,
    match_reason: String,
    refund_reason: String,
    order_id_error: Option<String>,
    match_reason_error: Option<String>,
    match_error: Option<String>,
    refund_reason_error: Option<String>,
    refund_error: Option<String>,
}

async fn payment_page(
    state: &web::Data<AppState>,
    csrf: &Csrf,
    user: User,
    id: String,
    forms: PaymentForms,
    done: Value,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let brand_id = user.brand_id.clone();
    let (brand, found) = with_conn(state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let found = queue::find(conn, &brand_id, &id).map_err(WebError::storage)?;
        Ok((brand, found))
    })
    .await?;
    let p = found.ok_or_else(|| {
        WebError::NotFound("Nessun pagamento del tuo marchio ha questo identificativo.".into())
    })?;
    let credit = p.direction == "credit";
    let can_match = credit && p.status == PaymentStatus::Unmatched;
    let can_refund = credit
        && matches!(
            p.status,
            PaymentStatus::Unmatched | PaymentStatus::Duplicate | PaymentStatus::Overpaid
        );
    let top_error = forms
        .match_error
        .clone()
        .filter(|_| !can_match)
        .or_else(|| forms.refund_error.clone().filter(|_| !can_refund));
    let context = merge(
        base(&user, &brand, csrf, "Pagamento"),
        json!({
            "done": done,
            "payment": {
                "id": p.id,
                "statement_id": p.statement_id,
                "direction": if credit { "accredito" } else { "addebito" },
                "status": p.status.as_str(),
                "status_label": status_label(p.status),
                "reason": p.reason.as_deref().map(unmatched_reason_label),
                "amount": euro(p.amount),
                "applied": euro(p.applied),
                "credited": euro(p.credited),
                "booking_date": date_it(p.booking_date),
                "value_date": p.value_date.map(date_it),
                "account": p.account,
                "bank_reference": or_dash(p.bank_reference.clone()),
                "payer": or_dash(p.payer_name.clone()),
                "remittance": or_dash(Some(p.remittance.clone())),
                "reference": or_dash(p.reference.clone()),
                "order_id": p.order_id,
                "top_up_id": p.top_up_id,
                "account_id": p.account_id,
                "reverses_payment_id": p.reverses_payment_id,
                "resolved_at": p.resolved_at.map(time_it),
                "resolution_note": p.resolution_note,
            },
            "can_match": can_match,
            // The orders page, searching by the payment's RF code (a typo finds nothing, and
            // the operator types what the remittance or the payer suggests instead).
            "find_order_link": format!(
                "/backoffice/ordini?{}",
                query_string(&[
                    ("pagamento", p.id.as_str()),
                    ("cerca", p.reference.as_deref().unwrap_or_default()),
                ])
            ),
            "can_refund": can_refund,
            // A refusal whose form is no longer shown (the payment changed state meanwhile).
            "top_error": top_error,
            "form": {
                "order_id": forms.order_id,
                "account_id": forms.account_id,
                "match_reason": forms.match_reason,
                "refund_reason": forms.refund_reason,
            },
            "errors": {
                "order_id": forms.order_id_error,
                "match_reason": forms.match_reason_error,
                "match": forms.match_error.filter(|_| can_match),
                "refund_reason": forms.refund_reason_error,
                "refund": forms.refund_error.filter(|_| can_refund),
            },
        }),
    );
    page(state, csrf, status, "bo_pagamento", context)
}

#[derive(Deserialize)]
pub struct PaymentQuery {
    fatto: Option<String>,
    /// The order chosen on the orders page, filled into the match form.
    ordine: Option<String>,
}

async fn payment(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
    id: web::Path<String>,
    query: web::Query<PaymentQuery>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let query = query.into_inner();
    let done = done_message(query.fatto.as_deref());
    let forms = PaymentForms {
        order_id: query.ordine.unwrap_or_default().trim().to_owned(),
        ..PaymentForms::default()
    };
    payment_page(
        &state,
        &csrf,
        user,
        id.into_inner(),
        forms,
        done,
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct MatchForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    order_id: String,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    reason: String,
}

/// A refusal of the domain: shown on the page (`Ok`), or the error page (`Err`).
fn manual_refusal(error: ManualError) -> Result<(StatusCode, String), WebError> {
    let conflict = StatusCode::CONFLICT;
    match error {
        ManualError::UnknownPayment => Err(WebError::NotFound(
            "Nessun pagamento del tuo marchio ha questo identificativo.".into(),
        )),
        ManualError::UnknownOrder => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nessun ordine del tuo marchio ha questo identificativo.".into(),
        )),
        ManualError::NotUnmatched(status) => Ok((
            conflict,
            format!(
                "Si può abbinare a mano solo un accredito da abbinare; questo pagamento è {}.",
                payment_status_text(&status)
            ),
        )),
        ManualError::NotRefundable(status) => Ok((
            conflict,
            format!(
                "Si può rimborsare solo un accredito da abbinare, doppio o eccedente; questo pagamento è {}.",
                payment_status_text(&status)
            ),
        )),
        ManualError::OrderNotPayable(status) => Ok((
            conflict,
            format!(
                "L'ordine è {}: può ricevere un pagamento solo un ordine in attesa di pagamento, scaduto o già pagato.",
                order_status_label(&status)
            ),
        )),
        ManualError::Prepaid(PrepaidError::InsufficientFunds { balance, requested }) => {
            Ok((conflict, insufficient_funds(balance, requested)))
        }
        ManualError::Prepaid(PrepaidError::UnknownAccount) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nessun conto prepagato ha questo identificativo.".into(),
        )),
        ManualError::Prepaid(PrepaidError::OtherBrand) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Il conto prepagato è di un altro marchio.".into(),
        )),
        ManualError::Prepaid(PrepaidError::Storage(e)) | ManualError::Storage(e) => {
            Err(WebError::storage(e))
        }
    }
}

async fn match_payment(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    form: web::Form<MatchForm>,
) -> Result<HttpResponse, WebError> {
    Csrf::check(&request, &form.csrf_token)?;
    let user = operator_of(&request).await?;
    let csrf = Csrf::of(&request);
    let id = id.into_inner();
    let MatchForm {
        order_id,
        account_id,
        reason,
        ..
    } = form.into_inner();
    let (order_id, account_id) = (order_id.trim().to_owned(), account_id.trim().to_owned());
    let mut forms = PaymentForms {
        order_id: order_id.clone(),
        account_id: account_id.clone(),
        match_reason: reason.clone(),
        ..PaymentForms::default()
    };
    let parsed_reason = Reason::parse(&reason)
        .map_err(|e| forms.match_reason_error = Some(reason_error(&e)))
        .ok();
    let target = match (order_id.is_empty(), account_id.is_empty()) {
        (false, true) => Some((Some(order_id), None)),
        (true, false) => Some((None, Some(account_id))),
        (true, true) => {
            forms.order_id_error =
                Some("Scrivi l'identificativo dell'ordine (o quello del conto prepagato).".into());
            None
        }
        (false, false) => {
            forms.order_id_error =
                Some("Scrivi l'ordine oppure il conto prepagato, non entrambi.".into());
            None
        }
    };
    let (Some(reason), Some((order_id, account_id))) = (parsed_reason, target) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return payment_page(&state, &csrf, user, id, forms, Value::Null, status).await;
    };
    let app = state.clone();
    let (operator_id, brand_id, payment_id) = (user.id.clone(), user.brand_id.clone(), id.clone());
    let outcome = with_conn(&state, move |conn| {
        let who = queue::Operator {
            id: &operator_id,
            brand_id: &brand_id,
            reason: &reason,
        };
        let now = Utc::now();
        let result = match (order_id, account_id) {
            (Some(order_id), _) => queue::match_to_order(
                conn,
                &who,
                &app.coupon_key,
                &app.config.public_url,
                &payment_id,
                &order_id,
                now,
            ),
            (None, Some(account_id)) => {
                queue::match_to_account(conn, &who, &payment_id, &account_id, now)
            }
            (None, None) => unreachable!("checked above"),
        };
        Ok(result.map(|_| ()))
    })
    .await?;
    match outcome {
        Ok(()) => Ok(see_other(&format!(
            "/backoffice/pagamenti/{}?fatto=abbinato",
            url_segment(&id)
        ))),
        Err(error) => {
            let unknown_target = matches!(
                error,
                ManualError::UnknownOrder
                    | ManualError::Prepaid(PrepaidError::UnknownAccount)
                    | ManualError::Prepaid(PrepaidError::OtherBrand)
            );
            let (status, message) = manual_refusal(error)?;
            if unknown_target {
                forms.order_id_error = Some(message);
            } else {
                forms.match_error = Some(message);
            }
            payment_page(&state, &csrf, user, id, forms, Value::Null, status).await
        }
    }
}

#[derive(Deserialize)]
pub struct RefundForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    reason: String,
}

async fn refund_payment(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    form: web::Form<RefundForm>,
) -> Result<HttpResponse, WebError> {
    Csrf::check(&request, &form.csrf_token)?;
    let user = operator_of(&request).await?;
    let csrf = Csrf::of(&request);
    let id = id.into_inner();
    let RefundForm { reason, .. } = form.into_inner();
    let mut forms = PaymentForms {
        refund_reason: reason.clone(),
        ..PaymentForms::default()
    };
    let reason = match Reason::parse(&reason) {
        Ok(reason) => reason,
        Err(e) => {
            forms.refund_reason_error = Some(reason_error(&e));
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return payment_page(&state, &csrf, user, id, forms, Value::Null, status).await;
        }
    };
    let (operator_id, brand_id, payment_id) = (user.id.clone(), user.brand_id.clone(), id.clone());
    let outcome = with_conn(&state, move |conn| {
        let who = queue::Operator {
            id: &operator_id,
            brand_id: &brand_id,
            reason: &reason,
        };
        Ok(queue::refund(conn, &who, &payment_id, Utc::now()).map(|_| ()))
    })
    .await?;
    match outcome {
        Ok(()) => Ok(see_other(&format!(
            "/backoffice/pagamenti/{}?fatto=rimborsato",
            url_segment(&id)
        ))),
        Err(error) => {
            let (status, message) = manual_refusal(error)?;
            forms.refund_error = Some(message);
            payment_page(&state, &csrf, user, id, forms, Value::Null, status).await
        }
    }
}

/// An id as a path segment of a redirect (ids are UUIDs, but a Location is no place to
/// trust that).
fn url_segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

// ---------------------------------------------------------------------------------------
// Daily summary

#[derive(Deserialize)]
pub struct SummaryQuery {
    data: Option<String>,
}

async fn summary(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let typed = query.into_inner().data.unwrap_or_default();
    let (day, error) = match typed.trim() {
        "" => (Some(Utc::now().date_naive()), None),
        text => match parse_date(text) {
            Ok(day) => (Some(day), None),
            Err(message) => (None, Some(message)),
        },
    };
    let brand_id = user.brand_id.clone();
    let (brand, rows) = with_conn(&state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let rows = match day {
            Some(day) => {
                Some(queue::daily_summary(conn, &brand_id, day).map_err(WebError::storage)?)
            }
            None => None,
        };
        Ok((brand, rows))
    })
    .await?;
    let (outcomes, total) = match &rows {
        Some(rows) => {
            let (mut count, mut amount) = (0, Money::ZERO);
            let outcomes: Vec<Value> = rows
                .iter()
                .map(|(status, totals)| {
                    count += totals.count;
                    amount = amount + totals.amount;
                    json!({
                        "status": status.as_str(),
                        "label": status_label(*status),
                        "count": totals.count,
                        "amount": euro(totals.amount),
                    })
                })
                .collect();
            (outcomes, json!({ "count": count, "amount": euro(amount) }))
        }
        None => (Vec::new(), Value::Null),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let context = merge(
        base(&user, &brand, &csrf, "Riepilogo giornaliero"),
        json!({
            "data": day.map_or_else(|| typed.trim().to_owned(), |d| d.to_string()),
            "day_label": day.map(date_it),
            "error": error,
            "outcomes": outcomes,
            "total": total,
        }),
    );
    page(&state, &csrf, status, "bo_riepilogo", context)
}

// ---------------------------------------------------------------------------------------
// Prepaid accounts

#[derive(Deserialize)]
pub struct AccountsQuery {
    email: Option<String>,
}

async fn accounts(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
    query: web::Query<AccountsQuery>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let typed = query
        .into_inner()
        .email
        .unwrap_or_default()
        .trim()
        .to_owned();
    let (email, error) = match typed.as_str() {
        "" => (None, None),
        text => match EmailAddress::parse(text) {
            Ok(email) => (Some(email), None),
            Err(_) => (
                None,
                Some(format!(
                    "«{text}» non è un indirizzo email come nome@esempio.it."
                )),
            ),
        },
    };
    let searched = email.is_some();
    let brand_id = user.brand_id.clone();
    let (brand, found) = with_conn(&state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let found = match email {
            Some(email) => {
                prepaid::find_by_email(conn, &brand_id, &email).map_err(prepaid_storage)?
            }
            None => Vec::new(),
        };
        Ok((brand, found))
    })
    .await?;
    let accounts: Vec<Value> = found
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id,
                "email": a.owner_email.to_string(),
                "balance": euro(a.balance),
                "updated_at": time_it(a.updated_at),
            })
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let context = merge(
        base(&user, &brand, &csrf, "Conti prepagati"),
        json!({ "email": typed, "error": error, "searched": searched, "accounts": accounts }),
    );
    page(&state, &csrf, status, "bo_prepagati", context)
}

fn prepaid_storage(error: PrepaidError) -> WebError {
    match error {
        PrepaidError::Storage(e) => WebError::storage(e),
        PrepaidError::UnknownAccount => {
            WebError::NotFound("Nessun conto prepagato ha questo identificativo.".into())
        }
        PrepaidError::OtherBrand => {
            WebError::Forbidden("Il conto prepagato è di un altro marchio.".into())
        }
        other => WebError::Unexpected(anyhow::anyhow!("{other}")),
    }
}

#[derive(Default)]
struct AdjustmentForm {
    amount: String,
    direction: String,
    reason: String,
    amount_error: Option<String>,
    direction_error: Option<String>,
    reason_error: Option<String>,
}

#[derive(Deserialize)]
pub struct EntriesQuery {
    fatto: Option<String>,
    prima: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn account_page(
    state: &web::Data<AppState>,
    csrf: &Csrf,
    user: User,
    account_id: String,
    before: Option<i64>,
    form: AdjustmentForm,
    done: Value,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let brand_id = user.brand_id.clone();
    let (brand, account, entries) = with_conn(state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let account = prepaid::account(conn, &account_id).map_err(prepaid_storage)?;
        if account.brand_id != brand_id {
            return Err(prepaid_storage(PrepaidError::OtherBrand));
        }
        let entries =
            prepaid::entries(conn, &account.id, before, ENTRIES_PAGE).map_err(prepaid_storage)?;
        Ok((brand, account, entries))
    })
    .await?;
    let older = match entries.last() {
        Some(last) if entries.len() as i64 == ENTRIES_PAGE && last.seq > 1 => Some(format!(
            "/backoffice/prepagati/{}?prima={}",
            url_segment(&account.id),
            last.seq
        )),
        _ => None,
    };
    let rows: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "date": time_it(e.created_at),
                "kind": entry_kind_label(e.kind),
                "description": e.description,
                "amount": euro(e.amount),
                "balance_after": euro(e.balance_after),
            })
        })
        .collect();
    let context = merge(
        base(&user, &brand, csrf, "Conto prepagato"),
        json!({
            "done": done,
            "account": {
                "id": account.id,
                "email": account.owner_email.to_string(),
                "balance": euro(account.balance),
                "updated_at": time_it(account.updated_at),
            },
            "entries": rows,
            "older": older,
            "newest": before.map(|_| format!("/backoffice/prepagati/{}", url_segment(&account.id))),
            "form": {
                "amount": form.amount,
                "credit": form.direction == "credit",
                "debit": form.direction == "debit",
                "reason": form.reason,
            },
            "errors": {
                "amount": form.amount_error,
                "direction": form.direction_error,
                "reason": form.reason_error,
            },
        }),
    );
    page(state, csrf, status, "bo_prepagato", context)
}

async fn account(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
    account_id: web::Path<String>,
    query: web::Query<EntriesQuery>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let query = query.into_inner();
    let before = query
        .prima
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|s| *s > 0);
    let done = done_message(query.fatto.as_deref());
    let form = AdjustmentForm::default();
    let id = account_id.into_inner();
    account_page(&state, &csrf, user, id, before, form, done, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct AdjustmentFields {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    reason: String,
}

async fn adjust(
    state: web::Data<AppState>,
    request: HttpRequest,
    account_id: web::Path<String>,
    fields: web::Form<AdjustmentFields>,
) -> Result<HttpResponse, WebError> {
    Csrf::check(&request, &fields.csrf_token)?;
    let user = operator_of(&request).await?;
    let csrf = Csrf::of(&request);
    let account_id = account_id.into_inner();
    let AdjustmentFields {
        amount,
        direction,
        reason,
        ..
    } = fields.into_inner();
    let mut form = AdjustmentForm {
        amount: amount.clone(),
        direction: direction.clone(),
        reason: reason.clone(),
        ..AdjustmentForm::default()
    };
    let amount = parse_amount(&amount)
        .map_err(|message| form.amount_error = Some(message))
        .ok();
    let direction = Direction::parse(direction.trim())
        .ok_or_else(|| form.direction_error = Some("Scegli accredito o addebito.".into()))
        .ok();
    let reason = Reason::parse(&reason)
        .map_err(|e| form.reason_error = Some(reason_error(&e)))
        .ok();
    let (Some(amount), Some(direction), Some(reason)) = (amount, direction, reason) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return account_page(
            &state,
            &csrf,
            user,
            account_id,
            None,
            form,
            Value::Null,
            status,
        )
        .await;
    };
    let adjustment = Adjustment {
        direction,
        amount,
        reason,
    };
    let (operator_id, brand_id, id) = (user.id.clone(), user.brand_id.clone(), account_id.clone());
    let outcome = with_conn(&state, move |conn| {
        match prepaid::adjust(conn, &operator_id, &brand_id, &id, adjustment, Utc::now()) {
            Ok(_) => Ok(Ok(())),
            Err(PrepaidError::InsufficientFunds { balance, requested }) => {
                Ok(Err(insufficient_funds(balance, requested)))
            }
            Err(other) => Err(prepaid_storage(other)),
        }
    })
    .await?;
    match outcome {
        Ok(()) => Ok(see_other(&format!(
            "/backoffice/prepagati/{}?fatto=rettificato",
            url_segment(&account_id)
        ))),
        Err(message) => {
            form.amount_error = Some(message);
            let status = StatusCode::CONFLICT;
            account_page(
                &state,
                &csrf,
                user,
                account_id,
                None,
                form,
                Value::Null,
                status,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------
// Dead emails

async fn emails_page(
    state: &web::Data<AppState>,
    csrf: &Csrf,
    user: User,
    done: Value,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let brand_id = user.brand_id.clone();
    let (brand, list) = with_conn(state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let list = outbox::list(conn, &brand_id, "dead", EMAILS_SHOWN)?;
        Ok((brand, list))
    })
    .await?;
    let emails: Vec<Value> = list
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "created_at": time_it(e.created_at.and_utc()),
                "recipient": e.recipient,
                "subject": e.subject,
                "kind": e.kind,
                "reference": or_dash(e.reference),
                "attempts": e.attempts,
                "last_error": or_dash(e.last_error),
            })
        })
        .collect();
    let context = merge(
        base(&user, &brand, csrf, "Email non consegnate"),
        json!({ "done": done, "error": error, "emails": emails }),
    );
    page(state, csrf, status, "bo_email", context)
}

async fn emails(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let done = done_message(query.fatto.as_deref());
    emails_page(&state, &csrf, user, done, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct TokenOnly {
    #[serde(default)]
    csrf_token: String,
}

async fn retry_email(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    form: web::Form<TokenOnly>,
) -> Result<HttpResponse, WebError> {
    Csrf::check(&request, &form.csrf_token)?;
    let user = operator_of(&request).await?;
    let brand_id = user.brand_id.clone();
    let id = id.into_inner();
    let requeued = with_conn(&state, move |conn| {
        Ok(outbox::retry(conn, &brand_id, &id, Utc::now())?)
    })
    .await?;
    if requeued {
        return Ok(see_other("/backoffice/email?fatto=riprova"));
    }
    let csrf = Csrf::of(&request);
    let message = "Questa email non è più tra quelle non consegnate del tuo marchio (forse è già stata rimessa in coda).".to_owned();
    emails_page(
        &state,
        &csrf,
        user,
        Value::Null,
        Some(message),
        StatusCode::NOT_FOUND,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Coupons

#[derive(Default)]
struct VoidState {
    coupon_id: String,
    reason: String,
    coupon_id_error: Option<String>,
    reason_error: Option<String>,
    error: Option<String>,
    refunded: Option<Money>,
}

async fn coupon_page(
    state: &web::Data<AppState>,
    csrf: &Csrf,
    user: User,
    form: VoidState,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let brand_id = user.brand_id.clone();
    let brand = with_conn(state, move |conn| brand_of(conn, &brand_id)).await?;
    let voided = form
        .refunded
        .map(|refund| json!({ "coupon_id": form.coupon_id, "refunded": euro(refund) }));
    let fresh = voided.is_some();
    let context = merge(
        base(&user, &brand, csrf, "Coupon"),
        json!({
            "voided": voided,
            "form": {
                "coupon_id": if fresh { String::new() } else { form.coupon_id },
                "reason": if fresh { String::new() } else { form.reason },
            },
            "errors": {
                "coupon_id": form.coupon_id_error,
                "reason": form.reason_error,
                "form": form.error,
            },
        }),
    );
    page(state, csrf, status, "bo_coupon", context)
}

async fn coupon_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    Operator(user): Operator,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    coupon_page(&state, &csrf, user, VoidState::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct VoidFields {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    coupon_id: String,
    #[serde(default)]
    reason: String,
}

/// Voids a coupon and shows what went back to the owner's prepaid account. The result is
/// the answer to the POST itself: sent again (a reload), the void is refused as the coupon
/// is no longer available, so nothing happens twice.
/// What the operator typed into the void form: the code the customer quotes, or the id
/// the API and the audit log use.
enum CouponTyped {
    Code(CouponCode),
    Id(String),
}

async fn void_coupon(
    state: web::Data<AppState>,
    request: HttpRequest,
    fields: web::Form<VoidFields>,
) -> Result<HttpResponse, WebError> {
    Csrf::check(&request, &fields.csrf_token)?;
    let user = operator_of(&request).await?;
    let csrf = Csrf::of(&request);
    let VoidFields {
        coupon_id, reason, ..
    } = fields.into_inner();
    let coupon_id = coupon_id.trim().to_owned();
    let mut form = VoidState {
        coupon_id: coupon_id.clone(),
        reason: reason.clone(),
        ..VoidState::default()
    };
    let typed = if coupon_id.is_empty() {
        form.coupon_id_error =
            Some("Scrivi il codice o l'identificativo del coupon da annullare.".into());
        None
    } else if uuid::Uuid::parse_str(&coupon_id).is_ok() {
        Some(CouponTyped::Id(coupon_id.clone()))
    } else {
        CouponCode::parse(&coupon_id)
            .map_err(|_| {
                form.coupon_id_error = Some(COUPON_CODE_INVALID.into());
            })
            .ok()
            .map(|code| {
                form.coupon_id = code.formatted();
                CouponTyped::Code(code)
            })
    };
    let reason = Reason::parse(&reason)
        .map_err(|e| form.reason_error = Some(reason_error(&e)))
        .ok();
    let (Some(reason), Some(typed)) = (reason, typed) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return coupon_page(&state, &csrf, user, form, status).await;
    };
    let (operator_id, brand_id) = (user.id.clone(), user.brand_id.clone());
    let key = state.coupon_key.clone();
    let outcome = with_conn(&state, move |conn| {
        let id = match typed {
            CouponTyped::Code(code) => coupons::id_by_code(conn, &key, &code)
                .map_err(WebError::storage)?
                .unwrap_or_default(),
            CouponTyped::Id(id) => id,
        };
        match coupons::void(conn, &operator_id, &brand_id, &id, &reason, Utc::now()) {
            Ok(refund) => Ok(Ok(refund)),
            Err(VoidError::Storage(e)) | Err(VoidError::Prepaid(PrepaidError::Storage(e))) => {
                Err(WebError::storage(e))
            }
            Err(other) => Ok(Err(other)),
        }
    })
    .await?;
    let status = match outcome {
        Ok(refund) => {
            form.refunded = Some(refund);
            StatusCode::OK
        }
        Err(VoidError::NotFound) => {
            form.coupon_id_error = Some("Nessun coupon ha questo codice o identificativo.".into());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(VoidError::OtherBrand) => {
            form.coupon_id_error = Some("Il coupon è di un altro marchio.".into());
            StatusCode::FORBIDDEN
        }
        Err(VoidError::NotAvailable(status)) => {
            form.coupon_id_error = Some(format!(
                "Si può annullare solo un coupon disponibile; questo è {}.",
                coupon_status_label(&status)
            ));
            StatusCode::CONFLICT
        }
        Err(VoidError::Prepaid(e)) => {
            form.error = Some(match e {
                PrepaidError::InsufficientFunds { balance, requested } => {
                    insufficient_funds(balance, requested)
                }
                _ => "Il rimborso sul conto prepagato del cliente non è riuscito.".into(),
            });
            StatusCode::CONFLICT
        }
        Err(VoidError::Storage(e)) => return Err(WebError::storage(e)),
    };
    coupon_page(&state, &csrf, user, form, status).await
}
