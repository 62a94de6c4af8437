//! Errors as RFC 9457 `application/problem+json`. [`ApiError`] is the one error type of
//! the HTTP layer: each variant maps once, here, to a kind of problem (a status and a
//! stable problem `type`), and [`kinds`] is the one table of every kind the API answers with.
//! Domain errors reach it through their identity (`errors.rs`), shared with the pages.
//! [`problem_for_any_error`] makes sure that responses actix produces on its own (unknown
//! route, wrong method, body too large) are problem JSON as well.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::validation::Rule;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The problem document. `type` is a relative URI whose last segment names the problem
/// (documented in the README); clients switch on it, never on `title` or `detail`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Which input field broke which rule.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub rule: String,
    pub detail: String,
}

impl FieldError {
    fn broken(field: &str, error: &impl Rule) -> Self {
        Self {
            field: field.to_owned(),
            rule: error.rule().to_owned(),
            detail: error.to_string(),
        }
    }
}

/// A kind of refusal, as a client tells it apart: the HTTP status, the problem `type`
/// slug and its title. Each is declared once, in `kinds`, however many domain errors (or
/// refusals of the HTTP layer itself: a malformed body, a role that may not call) end in
/// it. A slug that means something else on another endpoint (`unknown-certificate`: not
/// in the registry at sign-in, not on the device in a renewal, not this service's CA's in
/// the renewal information) is a kind of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemKind {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
}

/// Declares each kind as a constant, one line a kind, so the table reads as a table.
macro_rules! problem_kinds {
    ($($name:ident: $status:ident, $slug:literal, $title:literal;)*) => {
        $(pub const $name: ProblemKind = ProblemKind {
            status: StatusCode::$status,
            slug: $slug,
            title: $title,
        };)*

        /// Every kind, for what must name them all (the README's table of errors).
        #[cfg(test)]
        pub const ALL: &[ProblemKind] = &[$($name),*];
    };
}

/// Every kind of problem the API answers with, by name.
pub mod kinds {
    use super::{ProblemKind, StatusCode};
    #[rustfmt::skip]
    problem_kinds! {
        ACCOUNT_DISABLED: FORBIDDEN, "account-disabled", "Forbidden";
        AGENT_CHALLENGE: UNAUTHORIZED, "agent-challenge", "Challenge not valid";
        ALREADY_OFFICER: CONFLICT, "already-officer", "Already a registration officer";
        APPLICATION_DECIDED: CONFLICT, "application-decided", "Application already decided";
        APPLICATION_PENDING: CONFLICT, "application-pending", "Application already pending";
        BAD_SIGNATURE: UNAUTHORIZED, "bad-signature", "Signature not valid";
        BILLING_DATA_MISSING: CONFLICT, "billing-data-missing", "Billing data missing";
        CARD_PAYMENTS_OFF: NOT_FOUND, "card-payments-off", "Card payments are off";
        CARD_PAYMENT_CLOSED: CONFLICT, "card-payment-closed", "Card payment closed";
        CARD_PAYMENT_STATE: CONFLICT, "card-payment-state", "Not possible in this state";
        CERTIFICATE_NOT_VALID_NOW: UNAUTHORIZED, "certificate-not-valid-now", "Certificate not valid now";
        COUPON_ALREADY_USED: CONFLICT, "coupon-not-available", "Coupon already used";
        COUPON_EXPIRED: UNPROCESSABLE_ENTITY, "coupon-expired", "Coupon expired";
        COUPON_NOT_AVAILABLE: CONFLICT, "coupon-not-available", "Coupon not available";
        COUPON_OTHER_BRAND: UNPROCESSABLE_ENTITY, "coupon-other-brand", "Coupon of another brand";
        COUPON_WRONG_KIND: UNPROCESSABLE_ENTITY, "coupon-wrong-kind", "Coupon for another certificate";
        CREDIT_EXCEEDS_INVOICE: CONFLICT, "credit-exceeds-invoice", "Credit exceeds invoice";
        CSR_OLD_KEY: UNPROCESSABLE_ENTITY, "csr-old-key", "CSR reuses a key";
        CSR_SUBJECT_MISMATCH: UNPROCESSABLE_ENTITY, "csr-subject-mismatch", "CSR subject differs";
        DEVICE_END_OF_LIFE: CONFLICT, "device-end-of-life", "Device at the end of its life";
        DEVICE_GONE: NOT_FOUND, "unknown-device", "Unknown device";
        DEVICE_RENEWAL_LIMIT: CONFLICT, "device-renewal-limit", "Device already renewed";
        EMAIL_ALREADY_CONFIRMED: CONFLICT, "email-already-confirmed", "Email already confirmed";
        EMAIL_NOT_CONFIRMED: FORBIDDEN, "email-not-confirmed", "Forbidden";
        EMAIL_TAKEN: CONFLICT, "email-taken", "Email taken";
        FORBIDDEN_ROLE: FORBIDDEN, "forbidden-role", "Forbidden";
        IDEMPOTENCY_KEY_REUSED: UNPROCESSABLE_ENTITY, "idempotency-key-reused", "Idempotency key reused";
        INSUFFICIENT_FUNDS: CONFLICT, "insufficient-funds", "Insufficient funds";
        INTERNAL: INTERNAL_SERVER_ERROR, "internal", "Internal error";
        INVALID_FIELD: BAD_REQUEST, "invalid-field", "Invalid field";
        INVALID_NOTIFICATION: BAD_REQUEST, "invalid-notification", "Invalid notification";
        INVALID_SDI_NOTIFICATION: UNPROCESSABLE_ENTITY, "invalid-sdi-notification", "Not an SdI notification";
        INVOICE_NOT_REJECTED: CONFLICT, "invoice-not-rejected", "Invoice not rejected";
        MALFORMED_REQUEST: BAD_REQUEST, "malformed-request", "Malformed request";
        METHOD_NOT_ALLOWED: METHOD_NOT_ALLOWED, "method-not-allowed", "Method Not Allowed";
        NOTHING_TO_REFUND: CONFLICT, "nothing-to-refund", "Nothing to refund";
        NOTHING_TO_RENEW: UNPROCESSABLE_ENTITY, "nothing-to-renew", "Nothing to renew";
        NOT_AN_OFFICER: CONFLICT, "not-an-officer", "Not a registration officer";
        NOT_OF_THIS_CA: NOT_FOUND, "unknown-certificate", "Unknown certificate";
        NOT_ON_DEVICE: NOT_FOUND, "unknown-certificate", "Certificate not on this device";
        NO_APPLICATION: NOT_FOUND, "no-application", "No application";
        NO_BILLING_DATA: NOT_FOUND, "billing-data-missing", "Billing data missing";
        NO_ROUTE: NOT_FOUND, "not-found", "Not Found";
        NO_UNUSED_CODES: CONFLICT, "no-unused-codes", "No unused codes";
        ORDER_NOT_FULFILLED: CONFLICT, "order-not-fulfilled", "Order not fulfilled";
        ORDER_TOO_LARGE: UNPROCESSABLE_ENTITY, "order-too-large", "Order too large";
        OTHER_BRAND: FORBIDDEN, "other-brand", "Forbidden";
        OUTSIDE_RENEWAL_WINDOW: CONFLICT, "outside-renewal-window", "Outside the renewal window";
        OWN_ACCOUNT: FORBIDDEN, "own-account", "Forbidden";
        PAYLOAD_TOO_LARGE: PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large";
        PAYMENT_PROVIDER_REFUSED: BAD_GATEWAY, "payment-provider-refused", "Payment provider refused";
        PAYMENT_PROVIDER_UNAVAILABLE: SERVICE_UNAVAILABLE, "payment-provider-unavailable", "Payment provider unavailable";
        PAYMENT_STATE: CONFLICT, "payment-state", "Not possible in this state";
        RENEWAL_NOT_ISSUED: CONFLICT, "renewal-not-issued", "Renewal not issued";
        RENEWAL_PENDING: CONFLICT, "renewal-pending", "Renewal already in progress";
        RENEWED_CERTIFICATE_NOT_ACTIVE: CONFLICT, "certificate-not-active", "Certificate revoked or superseded";
        RESET_LINK_INVALID: BAD_REQUEST, "reset-link-invalid", "Reset link not valid";
        SDI_NOTIFICATION_CONFLICT: CONFLICT, "sdi-notification-conflict", "Another notification has this file name";
        SIGNATURE_CERTIFICATE_SIGN_IN: UNAUTHORIZED, "signature-certificate-sign-in", "Signature certificate cannot sign in";
        SIGN_IN_CERTIFICATE_NOT_ACTIVE: UNAUTHORIZED, "certificate-not-active", "Certificate revoked or superseded";
        SIGN_IN_UNKNOWN_CERTIFICATE: UNAUTHORIZED, "unknown-certificate", "Certificate not in the registry";
        STATEMENT_OF_ANOTHER_ACCOUNT: UNPROCESSABLE_ENTITY, "statement-of-another-account", "Statement of another account";
        STORAGE_READ_ONLY: SERVICE_UNAVAILABLE, "storage-read-only", "Storage read-only";
        TOO_MANY_REQUESTS: TOO_MANY_REQUESTS, "too-many-requests", "Too many requests";
        UNAUTHORIZED: UNAUTHORIZED, "unauthorized", "Unauthorized";
        UNAVAILABLE: SERVICE_UNAVAILABLE, "unavailable", "Service unavailable";
        UNKNOWN_ACCOUNT: NOT_FOUND, "unknown-account", "Unknown account";
        UNKNOWN_APPLICATION: NOT_FOUND, "unknown-application", "Unknown application";
        UNKNOWN_CARD_PAYMENT: NOT_FOUND, "unknown-card-payment", "Unknown card payment";
        UNKNOWN_COUPON: NOT_FOUND, "unknown-coupon", "Unknown coupon";
        UNKNOWN_COUPON_CODE: UNPROCESSABLE_ENTITY, "unknown-coupon", "Unknown coupon";
        UNKNOWN_DEAD_REFUND: NOT_FOUND, "unknown-dead-refund", "Unknown dead refund";
        UNKNOWN_EMAIL: NOT_FOUND, "unknown-email", "Unknown email";
        UNKNOWN_HOLDER: NOT_FOUND, "unknown-holder", "Unknown holder";
        UNKNOWN_INVOICE: NOT_FOUND, "unknown-invoice", "Unknown invoice";
        UNKNOWN_ORDER: NOT_FOUND, "unknown-order", "Unknown order";
        UNKNOWN_PAYMENT: NOT_FOUND, "unknown-payment", "Unknown payment";
        UNKNOWN_PRODUCT: NOT_FOUND, "unknown-product", "Unknown product";
        UNKNOWN_RENEWAL: NOT_FOUND, "unknown-renewal", "Unknown renewal";
        UNKNOWN_TRANSMISSION: NOT_FOUND, "unknown-transmission", "Unknown transmission";
        UNKNOWN_USER: NOT_FOUND, "unknown-user", "Unknown user";
        UNTRUSTED_CERTIFICATE: UNAUTHORIZED, "untrusted-certificate", "Certificate not trusted";
        URL_TOO_LONG: URI_TOO_LONG, "url-too-long", "URI Too Long";
        USER_STATE: CONFLICT, "user-state", "Not possible in this state";
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input values broke the rules of their types; each error names field and rule.
    #[error("{}", describe_fields(.0))]
    Invalid(Vec<FieldError>),
    /// The body (or query) could not be read at all: not JSON, wrong shape.
    #[error("{0}")]
    MalformedRequest(String),
    /// No valid credentials: missing, expired, forged or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// A rule of the domain refused the request (forbidden, not found, conflict...).
    #[error("{detail}")]
    Refused {
        kind: ProblemKind,
        detail: String,
        /// The input field the refusal is about, when there is one.
        errors: Vec<FieldError>,
    },
    #[error("{detail}")]
    TooManyRequests {
        retry_after_seconds: i64,
        detail: String,
    },
    /// The database cannot be reached now; worth retrying later.
    #[error("the service cannot reach its database; retry shortly")]
    Unavailable(#[source] anyhow::Error),
    /// The database is there but takes no writes: read-only, disk full, or failing writes.
    /// Reads still work; worth retrying once an operator fixed the storage.
    #[error("{detail}")]
    StorageReadOnly {
        detail: &'static str,
        #[source]
        cause: anyhow::Error,
    },
    /// A defect or an unforeseen failure: logged with its cause, never shown.
    #[error("an unexpected error occurred")]
    Unexpected(#[source] anyhow::Error),
}

fn describe_fields(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("{}: {}", one.field, one.detail),
        many => format!(
            "{} fields are invalid: {}",
            many.len(),
            many.iter()
                .map(|e| e.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl ApiError {
    /// One field broke its rule (as [`FieldErrors::check`] reports each of several).
    pub fn broken_field(field: &str, error: impl Rule) -> Self {
        Self::Invalid(vec![FieldError::broken(field, &error)])
    }

    pub fn invalid_field(field: &str, rule: &str, detail: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.to_owned(),
            rule: rule.to_owned(),
            detail: detail.into(),
        }])
    }

    /// A refusal of `kind`, with its English `detail`.
    pub fn refused(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self::Refused {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A refusal about one input field: the problem names the field and the rule too.
    pub fn on_field(self, field: &str, rule: &str) -> Self {
        match self {
            Self::Refused { kind, detail, .. } => Self::Refused {
                errors: vec![FieldError {
                    field: field.to_owned(),
                    rule: rule.to_owned(),
                    detail: detail.clone(),
                }],
                kind,
                detail,
            },
            other => other,
        }
    }

    /// Storage failures: unreachable database → 503, a database that takes no writes →
    /// 503, anything else → 500.
    pub fn storage(error: anyhow::Error) -> Self {
        if let Some(detail) = refuses_writes(&error) {
            Self::StorageReadOnly {
                detail,
                cause: error,
            }
        } else if is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Unexpected(error)
        }
    }

    /// The kind of problem this is: its status, `type` and title.
    fn kind(&self) -> ProblemKind {
        match self {
            Self::Invalid(_) => kinds::INVALID_FIELD,
            Self::MalformedRequest(_) => kinds::MALFORMED_REQUEST,
            Self::Unauthorized(_) => kinds::UNAUTHORIZED,
            Self::Refused { kind, .. } => *kind,
            Self::TooManyRequests { .. } => kinds::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => kinds::UNAVAILABLE,
            Self::StorageReadOnly { .. } => kinds::STORAGE_READ_ONLY,
            Self::Unexpected(_) => kinds::INTERNAL,
        }
    }

    fn problem(&self) -> Problem {
        let errors = match self {
            Self::Invalid(fields) => fields.clone(),
            Self::Refused { errors, .. } => errors.clone(),
            _ => vec![],
        };
        Problem::of(self.kind(), self.to_string(), errors)
    }
}

impl Problem {
    fn of(kind: ProblemKind, detail: String, errors: Vec<FieldError>) -> Self {
        Self {
            problem_type: format!("/problems/{}", kind.slug),
            title: kind.title.to_owned(),
            status: kind.status.as_u16(),
            detail,
            errors,
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        Self::storage(error.into())
    }
}

/// Collects the field errors of one request, so a client learns every wrong field at
/// once instead of one per round trip.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn check<T, E: Rule>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(FieldError::broken(field, &error));
                None
            }
        }
    }

    /// Adds a field refused elsewhere (by a domain function that checks a whole input).
    pub fn refuse<E: Rule>(&mut self, field: &str, error: E) {
        self.check::<(), E>(field, Err(error));
    }

    /// Checks a field the request may leave out: absent is no error, present must parse.
    pub fn check_optional<T, E: Rule>(
        &mut self,
        field: &str,
        text: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        text.and_then(|text| self.check(field, parse(text)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.0))
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind().status
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unexpected(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
            Self::StorageReadOnly { cause, .. } => {
                tracing::error!(error = %cause, "the database takes no writes")
            }
            _ => {}
        }
        let mut response = problem_response(&self.problem());
        let headers = response.headers_mut();
        match self {
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::StorageReadOnly { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            }
            Self::TooManyRequests {
                retry_after_seconds,
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

pub fn problem_response(problem: &Problem) -> HttpResponse {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(PROBLEM_CONTENT_TYPE)
        .json(problem)
}

/// For `ErrorHandlers::default_handler`: an error response that is not problem JSON yet
/// (actix's own 404, 405, 413...) gets a problem body for its status; the shop's HTML
/// error pages are left alone. Headers such as
/// `Allow` are kept.
pub fn problem_for_any_error<B>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Problem JSON already, or an error page of the shop (HTML for people, not clients).
    let is_problem_or_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
        });
    if is_problem_or_page {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let problem = match status {
        StatusCode::NOT_FOUND => Problem::of(
            kinds::NO_ROUTE,
            "no resource at this address".to_owned(),
            vec![],
        ),
        StatusCode::METHOD_NOT_ALLOWED => Problem::of(
            kinds::METHOD_NOT_ALLOWED,
            format!("{} is not allowed here", response.request().method()),
            vec![],
        ),
        StatusCode::PAYLOAD_TOO_LARGE => Problem::of(
            kinds::PAYLOAD_TOO_LARGE,
            "the request body is larger than allowed".to_owned(),
            vec![],
        ),
        // Whatever else actix answers on its own keeps its status, under a generic type.
        _ => {
            let reason = status.canonical_reason().unwrap_or("Error");
            Problem {
                problem_type: "/problems/http-error".to_owned(),
                title: reason.to_owned(),
                status: status.as_u16(),
                detail: reason.to_owned(),
                errors: vec![],
            }
        }
    };
    let (request, old) = response.into_parts();
    let mut new = problem_response(&problem);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    let response: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(request, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(response))
}

/// Adds `"request_id"` (an RFC 9457 extension member) to a problem JSON body, the id of
/// the `x-request-id` header and of the request's log lines, so a client reporting a
/// failure can quote it. Other responses, and bodies that are not an in-memory JSON
/// object, pass unchanged.
pub fn with_request_id<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
    request_id: &str,
) -> ServiceResponse<BoxBody> {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
    if !is_problem {
        return response.map_into_boxed_body();
    }
    response.map_body(|_, body| {
        let bytes = match body.try_into_bytes() {
            Ok(bytes) => bytes,
            Err(body) => return BoxBody::new(body),
        };
        let is_object_without_id = matches!(
            serde_json::from_slice::<serde_json::Value>(&bytes),
            Ok(serde_json::Value::Object(members)) if !members.contains_key("request_id")
        );
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_end();
        if !is_object_without_id || !text.ends_with('}') {
            return BoxBody::new(bytes);
        }
        // Spliced in before the closing brace, so the members keep their order.
        let open = &text[..text.len() - 1];
        let separator = if open.trim_end().ends_with('{') {
            ""
        } else {
            ","
        };
        let id = serde_json::Value::from(request_id);
        BoxBody::new(format!("{open}{separator}\"request_id\":{id}}}"))
    })
}

/// Errors that mean "the database is not there right now" rather than "this request is
/// wrong": a pool that cannot hand out a connection, or a connection lost mid-query.
fn is_unavailable(error: &anyhow::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    error.chain().any(|cause| {
        if cause.downcast_ref::<diesel::r2d2::PoolError>().is_some() {
            return true;
        }
        matches!(
            cause.downcast_ref::<DieselError>(),
            Some(DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _
            ))
        )
    })
}

/// SQLite errors that mean "the database file takes no writes now" (SQLITE_READONLY,
/// SQLITE_FULL, SQLITE_IOERR: a read-only file or file system, a full disk, a failing
/// one), with the detail to tell the client. diesel reports them as
/// `DatabaseErrorKind::Unknown` with SQLite's message, so the message is what is matched.
/// PostgreSQL reports its own storage trouble (`53100 disk_full`, read-only transactions)
/// differently, and never with these texts.
fn refuses_writes(error: &anyhow::Error) -> Option<&'static str> {
    use diesel::result::Error as DieselError;
    error.chain().find_map(|cause| {
        let Some(DieselError::DatabaseError(_, info)) = cause.downcast_ref::<DieselError>() else {
            return None;
        };
        let message = info.message();
        if message.contains("readonly database") {
            Some("the database is read-only right now: nothing can be changed; reading still works; retry later")
        } else if message.contains("database or disk is full") {
            Some("the database's disk is full: nothing can be changed; reading still works; retry later")
        } else if message.contains("disk I/O error") {
            Some("the database cannot write to its disk right now: nothing can be changed; reading still works; retry later")
        } else {
            None
        }
    })
}

/// Extractor errors (JSON body, path, query) as problems naming what was wrong.
pub fn json_error(error: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            error.into()
        }
        JsonPayloadError::ContentType => ApiError::MalformedRequest(
            "the body must be JSON, sent with Content-Type: application/json".into(),
        )
        .into(),
        JsonPayloadError::Deserialize(e) => {
            ApiError::MalformedRequest(format!("the JSON body does not fit: {e}")).into()
        }
        other => ApiError::MalformedRequest(format!("the body cannot be read: {other}")).into(),
    }
}

pub fn path_error(error: actix_web::error::PathError) -> actix_web::Error {
    ApiError::MalformedRequest(format!("the address does not fit: {error}")).into()
}

pub fn query_error(error: actix_web::error::QueryPayloadError) -> actix_web::Error {
    malformed_query(error).into()
}

pub fn malformed_query(error: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::MalformedRequest(format!("the query string does not fit: {error}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::kinds;

    /// Clients switch on the problem `type`: the README's table of errors is where they
    /// learn each one, so a kind of refusal added here without its row fails.
    #[test]
    fn the_readme_names_every_kind_of_refusal() {
        let readme = include_str!("../../README.md");
        let missing: Vec<&str> = kinds::ALL
            .iter()
            .map(|kind| kind.slug)
            .filter(|slug| !readme.contains(&format!("`/problems/{slug}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "no row in the README's Errors table: {missing:?}"
        );
    }

    /// The API document names, in each operation's responses, the problem types a client
    /// may meet there: each must be a kind this table has, documented under the status that
    /// kind is answered with, or a client reading the document switches on a refusal that
    /// never comes.
    #[test]
    fn the_api_document_names_each_problem_under_its_own_status() {
        let mut statuses: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for kind in kinds::ALL {
            statuses
                .entry(kind.slug)
                .or_default()
                .push(kind.status.as_u16());
        }
        let document = serde_json::to_value(crate::http::openapi::document()).unwrap();
        let mut wrong = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let Some(responses) = operation["responses"].as_object() else {
                    continue;
                };
                for (status, response) in responses {
                    let description = response["description"].as_str().unwrap_or_default();
                    for named in description.split("/problems/").skip(1) {
                        let slug: String = named
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                            .collect();
                        let known = statuses.get(slug.as_str());
                        if !known.is_some_and(|s| s.iter().any(|s| s.to_string() == *status)) {
                            wrong.push(format!("{method} {path} {status}: {slug} is {known:?}"));
                        }
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
