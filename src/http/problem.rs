//! Errors as RFC 9457 `application/problem+json`. [`ApiError`] is the one error type of
//! the HTTP layer: each variant maps once, here, to a status and a stable problem `type`.
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
        status: StatusCode,
        problem: &'static str,
        title: &'static str,
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

    pub fn not_found(
        problem: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self::refused(StatusCode::NOT_FOUND, problem, title, detail)
    }

    pub fn forbidden(problem: &'static str, detail: impl Into<String>) -> Self {
        Self::refused(StatusCode::FORBIDDEN, problem, "Forbidden", detail)
    }

    pub fn conflict(problem: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::refused(StatusCode::CONFLICT, problem, title, detail)
    }

    pub fn refused(
        status: StatusCode,
        problem: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self::Refused {
            status,
            problem,
            title,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A refusal about one input field: the problem names the field and the rule too.
    pub fn on_field(self, field: &str, rule: &str) -> Self {
        match self {
            Self::Refused {
                status,
                problem,
                title,
                detail,
                ..
            } => Self::Refused {
                errors: vec![FieldError {
                    field: field.to_owned(),
                    rule: rule.to_owned(),
                    detail: detail.clone(),
                }],
                status,
                problem,
                title,
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

    fn problem(&self) -> Problem {
        let (problem, title, errors) = match self {
            Self::Invalid(fields) => ("invalid-field", "Invalid field", fields.clone()),
            Self::MalformedRequest(_) => ("malformed-request", "Malformed request", vec![]),
            Self::Unauthorized(_) => ("unauthorized", "Unauthorized", vec![]),
            Self::Refused {
                problem,
                title,
                errors,
                ..
            } => (*problem, *title, errors.clone()),
            Self::TooManyRequests { .. } => ("too-many-requests", "Too many requests", vec![]),
            Self::Unavailable(_) => ("unavailable", "Service unavailable", vec![]),
            Self::StorageReadOnly { .. } => ("storage-read-only", "Storage read-only", vec![]),
            Self::Unexpected(_) => ("internal", "Internal error", vec![]),
        };
        Problem {
            problem_type: format!("/problems/{problem}"),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail: self.to_string(),
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
        match self {
            Self::Invalid(_) | Self::MalformedRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Refused { status, .. } => *status,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::StorageReadOnly { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
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
    let (problem, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no resource at this address".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            format!("{} is not allowed here", response.request().method()),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "the request body is larger than allowed".to_owned(),
        ),
        _ => (
            "http-error",
            status.canonical_reason().unwrap_or("error").to_owned(),
        ),
    };
    let (request, old) = response.into_parts();
    let mut new = problem_response(&Problem {
        problem_type: format!("/problems/{problem}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        errors: vec![],
    });
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
