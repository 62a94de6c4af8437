//! The API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and doc comments (a handler's first paragraph is the operation's summary,
//! the rest its description), served at `/api/openapi.json`, with an interactive viewer at
//! `/api/docs`. Its operations are the router's: both come from the one list in
//! `http::operations`.

use std::sync::{Arc, LazyLock};

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rinnovo",
        description = "Renewal coupons and certificate renewal for Italian qualified-signature \
devices: lookup by codice fiscale, catalog, orders paid from a prepaid account or by transfer \
with an RF code, statement reconciliation, and the desktop agent's renewal API. Errors are \
RFC 9457 problem JSON (`application/problem+json`) whose `type` names the problem.",
        license(name = "Proprietary")
    ),
    modifiers(&SecuritySchemes),
    // Most operations are a signed-in user's: they need an access token unless their own
    // annotation says otherwise (`security(())` for the public ones, the agent's token for
    // the agent's).
    security(("access_token" = [])),
    // Named only by a query parameter's `value_type`, which does not bring its schema.
    components(schemas(crate::invoices::InvoiceStatus)),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "auth", description = "Sign-up, sign-in, tokens, password reset, email confirmation"),
        (name = "me", description = "The signed-in user's own account: profile, billing data, sessions, the officer application"),
        (name = "lookup", description = "A holder's devices and the renewal status of each certificate"),
        (name = "catalog", description = "Products and quotes"),
        (name = "orders", description = "Orders, paid from the prepaid account or by transfer"),
        (name = "coupons", description = "Coupons and their public status check"),
        (name = "prepaid", description = "The prepaid account and top-ups by transfer"),
        (name = "payments", description = "Card payments: the provider's notifications and the way back to its page"),
        (name = "back-office", description = "Operators of a brand: statements, payments, accounts, emails, coupons, users"),
        (name = "agent", description = "The desktop agent: sign-in with the device's certificate, renewal requests, download, install"),
        (name = "renewal-info", description = "ACME Renewal Information (RFC 9773)"),
    )
)]
struct Base;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "access_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A user's access token from POST /api/v1/auth/login (15 minutes; \
                         refresh with POST /api/v1/auth/refresh).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "agent_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A desktop agent's token from POST /api/v1/agent/sessions (15 minutes), \
                         scoped to one device.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The whole document: the base (info, tags, security schemes) and every operation.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = Base::openapi();
    let mut described = super::operations::Described::default();
    super::operations::all(&mut described);
    document.paths.merge(described.paths);
    document
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(described.schemas);
    document_request_id(&mut document);
    document_body_limit(&mut document);
    document_common_failures(&mut document);
    document_unauthorized(&mut document);
    document
}

/// Every body is read under a size limit (`JSON_BODY_LIMIT`, or the statement limit), and
/// a larger one is refused with 413 before the handler runs: every operation that takes a
/// body documents it, here once rather than in each annotation. An operation with a limit
/// of its own describes its 413 itself, and keeps it.
fn document_body_limit(document: &mut utoipa::openapi::OpenApi) {
    let too_large =
        problem_response("The body is larger than allowed (`/problems/payload-too-large`)").build();
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            if operation.request_body.is_some() {
                operation
                    .responses
                    .responses
                    .entry("413".into())
                    .or_insert_with(|| too_large.clone().into());
            }
        }
    }
}

/// A problem response referring to the `Problem` schema.
fn problem_response(description: &str) -> utoipa::openapi::ResponseBuilder {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new().description(description).content(
        super::problem::PROBLEM_CONTENT_TYPE,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

/// The failures any operation may answer with, stated once here rather than in every
/// annotation: 500 (a bug: `/problems/internal`), and 503 with Retry-After when the
/// database cannot be reached or takes no writes (`ApiError::Unavailable`,
/// `ApiError::StorageReadOnly`). Only the liveness probe touches no database.
fn document_common_failures(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let internal = problem_response("Unexpected failure (`/problems/internal`)").build();
    let unavailable = problem_response(
        "The database cannot be reached (`/problems/unavailable`) or takes no writes \
         (`/problems/storage-read-only`)",
    )
    .header(
        "Retry-After",
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some("Seconds to wait before retrying"))
            .build(),
    )
    .build();
    let unknown_parameter = problem_response(
        "A query parameter: this endpoint takes none (`/problems/invalid-field`, rule \
         `unknown_parameter`, each parameter named)",
    )
    .build();
    for (path, item) in document.paths.paths.iter_mut() {
        for operation in operations(item) {
            let takes_query = operation
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
            let responses = &mut operation.responses.responses;
            if path.starts_with("/api/") && !takes_query {
                responses
                    .entry("400".into())
                    .or_insert_with(|| unknown_parameter.clone().into());
            }
            responses
                .entry("500".into())
                .or_insert_with(|| internal.clone().into());
            if path != "/health/live" {
                responses
                    .entry("503".into())
                    .or_insert_with(|| unavailable.clone().into());
            }
        }
    }
}

/// A secured operation refuses a request without a valid token with 401 and
/// `WWW-Authenticate: Bearer` (`ApiError::Unauthorized`): stated once here, by scheme.
/// An operation whose 401 says more (an account that no longer exists, a metrics token)
/// describes it itself, and keeps it.
fn document_unauthorized(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let unauthorized = |description: &str| {
        problem_response(description)
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("`Bearer`"))
                    .build(),
            )
            .build()
    };
    let user = unauthorized("Missing, invalid or expired access token (`/problems/unauthorized`)");
    let agent = unauthorized(
        "Agent token missing, malformed, expired or invalid (`/problems/unauthorized`)",
    );
    let default_security = document.security.clone();
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            let security = operation.security.as_ref().or(default_security.as_ref());
            let response = match security_schemes(security).first().map(String::as_str) {
                Some("access_token") => &user,
                Some("agent_token") => &agent,
                _ => continue,
            };
            operation
                .responses
                .responses
                .entry("401".into())
                .or_insert_with(|| response.clone().into());
        }
    }
}

/// The security schemes of requirements (an operation's own, or else the document's).
/// `SecurityRequirement` keeps its map private; its JSON form is that map.
fn security_schemes(requirements: Option<&Vec<SecurityRequirement>>) -> Vec<String> {
    requirements
        .into_iter()
        .flatten()
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .filter_map(|value| {
            value
                .as_object()
                .map(|map| map.keys().cloned().collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    super::operations::by_method(item).map(|(_, operation)| operation)
}

/// Every problem body carries the request's id, spliced in by a middleware after the
/// body is serialised (`problem::with_request_id`), so `Problem` itself has no such field:
/// the schema learns of it here.
fn document_request_id(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;
    let Some(components) = document.components.as_mut() else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(problem))) = components.schemas.get_mut("Problem") {
        problem.properties.insert(
            "request_id".into(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "The id of the request (also in the `x-request-id` response header and \
                     in the service's logs): quote it when reporting a problem.",
                ))
                .into(),
        );
    }
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    document().to_pretty_json().unwrap_or_else(|e| {
        format!("{{\"error\":\"the OpenAPI document failed to serialize: {e}\"}}")
    })
});

/// `GET /api/openapi.json`
pub async fn json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(DOCUMENT.as_str())
}

/// What the docs pages may load: only this origin. Swagger UI's files are served from the
/// binary, so a compromised CDN cannot run script on the shop's origin, and the viewer
/// works offline. Swagger UI sets inline styles and draws icons as data: URLs.
const VIEWER_CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

static VIEWER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::from("/api/openapi.json")));

/// `GET /api/docs`: the viewer's files are relative to the folder, so the bare path
/// moves to `/api/docs/`.
pub async fn viewer_root() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/api/docs/"))
        .finish()
}

/// `GET /api/docs/{file}`: Swagger UI over the document, from the files vendored in the
/// binary.
pub async fn viewer(file: web::Path<String>) -> HttpResponse {
    match utoipa_swagger_ui::serve(&file, VIEWER_CONFIG.clone()) {
        Ok(Some(found)) => HttpResponse::Ok()
            .content_type(found.content_type)
            .insert_header((header::CONTENT_SECURITY_POLICY, VIEWER_CSP))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(found.bytes.into_owned()),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(error) => {
            tracing::error!(%error, "the API viewer could not be served");
            HttpResponse::InternalServerError().finish()
        }
    }
}
