//! Applications for the registration-officer role: a customer applies and sees the
//! outcome; the back-office lists them and decides (`auth::officer_applications` holds the
//! rules).

use actix_web::HttpResponse;
use actix_web::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract::Buyer;
use super::json::JsonObject;
use super::operation::{backoffice_action, backoffice_list, Acting, Found, Listing};
use super::problem::FieldErrors;
use super::query::{one_of_all, page_of};
use super::responses::{problem_response_type, BadReason, NotBuyer, NotOperator};
use super::{ApiError, ApiResult, Problem, State};
use crate::auth::officer_applications::{
    self, Application, ApplicationError, ApplicationForm, ApplicationStatus, CompanyName, Decision,
    PhoneNumber,
};
use crate::email_address::EmailAddress;
use crate::partita_iva::PartitaIva;
use crate::validation::Reason;

/// A customer's application for the registration-officer role.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRequest {
    /// The company's name (ragione sociale).
    #[schema(example = "Studio Rossi S.r.l.")]
    company_name: String,
    /// The company's partita IVA: 11 digits, the last a check digit (`IT` and spaces allowed).
    #[schema(example = "00743110157")]
    vat_number: String,
    /// The company's PEC or email address.
    #[schema(example = "studiorossi@pec.it")]
    contact_email: String,
    /// Optional.
    #[serde(default)]
    #[schema(example = "+39 06 1234567")]
    phone: Option<String>,
    /// Optional: what the operator should know.
    #[serde(default)]
    note: Option<String>,
}

/// An application and where it stands.
#[derive(Serialize, utoipa::ToSchema)]
struct ApplicationResponse {
    id: String,
    /// The applicant (a user of the brand).
    user_id: String,
    #[schema(example = "maria.rossi@example.it")]
    applicant_email: String,
    applicant_name: String,
    company_name: String,
    #[schema(value_type = String, example = "00743110157")]
    vat_number: PartitaIva,
    contact_email: String,
    #[schema(required = true)]
    phone: Option<String>,
    #[schema(required = true)]
    note: Option<String>,
    status: ApplicationStatus,
    created_at: DateTime<Utc>,
    /// `null` while pending.
    #[schema(required = true)]
    decided_at: Option<DateTime<Utc>>,
    /// Why it was refused; `null` unless refused.
    #[schema(required = true)]
    refusal_reason: Option<String>,
}

impl From<Application> for ApplicationResponse {
    fn from(a: Application) -> Self {
        Self {
            id: a.id,
            user_id: a.user_id,
            applicant_email: a.applicant_email,
            applicant_name: a.applicant_name,
            company_name: a.company_name,
            vat_number: a.vat_number,
            contact_email: a.contact_email,
            phone: a.phone,
            note: a.note,
            status: a.status,
            created_at: a.created_at,
            decided_at: a.decided_at,
            refusal_reason: a.refusal_reason,
        }
    }
}

page_of!(
    /// A page of the brand's applications in one status, oldest first, with the total.
    ApplicationListResponse { applications: ApplicationResponse }
);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Which applications: `pending` (default), `approved` or `refused`.
    #[param(value_type = Option<ApplicationStatus>, default = "pending")]
    status: Option<String>,
}

/// Why an application is refused (emailed to the applicant, kept in the audit log).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusalRequest {
    #[schema(example = "the partita IVA is not the company's")]
    reason: String,
}

problem_response_type!(
    /// The application id names no application of the operator's brand.
    UnknownApplication,
    404,
    "No application of the brand has this id (`/problems/unknown-application`)"
);
problem_response_type!(
    /// The application was decided before.
    AlreadyDecided,
    409,
    "The application was approved or refused already (`/problems/application-decided`)"
);

/// Application form fields as the domain takes them, or every invalid one.
fn form(body: ApplicationRequest) -> Result<ApplicationForm, ApiError> {
    let mut errors = FieldErrors::default();
    let company_name = errors.check("company_name", CompanyName::parse(&body.company_name));
    let vat_number = errors.check("vat_number", PartitaIva::parse(&body.vat_number));
    let contact_email = errors.check("contact_email", EmailAddress::parse(&body.contact_email));
    let phone = body
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map(|p| errors.check("phone", PhoneNumber::parse(p)));
    let note = body
        .note
        .as_deref()
        .map(|n| errors.check("note", officer_applications::note(n)));
    errors.finish()?;
    Ok(ApplicationForm {
        company_name: company_name.expect("checked"),
        vat_number: vat_number.expect("checked"),
        contact_email: contact_email.expect("checked"),
        phone: phone.flatten(),
        note: note.flatten(),
    })
}

/// Apply for the registration-officer role
///
/// Customers only, one pending application at a time. An operator of the brand approves or
/// refuses it; the outcome is emailed.
#[utoipa::path(
    operation_id = "me_officer_application_create",
    request_body = ApplicationRequest,
    responses(
        (status = 201, description = "The application, pending", body = ApplicationResponse,
            headers(("Location" = String, description = "`/api/v1/me/officer-application`"))),
        (status = 400, description = "Invalid fields (`/problems/invalid-field`: company_name, \
vat_number, contact_email, phone, note; every wrong field listed) or a malformed body \
(`/problems/malformed-request`)", body = Problem, content_type = "application/problem+json"),
        NotBuyer,
        (status = 409, description = "An application is pending already \
(`/problems/application-pending`), or the caller is a registration officer already \
(`/problems/already-officer`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/me/officer-application")]
pub async fn apply(
    state: State,
    Buyer(user): Buyer,
    body: JsonObject<ApplicationRequest>,
) -> ApiResult {
    let form = form(body.into_inner())?;
    let application = state
        .with_conn(move |conn| officer_applications::apply(conn, &user.id, form, Utc::now()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", "/api/v1/me/officer-application"))
        .json(ApplicationResponse::from(application)))
}

/// The caller's latest application for the registration-officer role
///
/// Customers and registration officers: where their latest application stands.
#[utoipa::path(
    operation_id = "me_officer_application_get",
    responses(
        (status = 200, description = "The latest application", body = ApplicationResponse),
        NotBuyer,
        (status = 404, description = "The caller never applied (`/problems/no-application`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/me/officer-application")]
pub async fn mine(state: State, Buyer(user): Buyer) -> ApiResult {
    let application = state
        .with_conn(move |conn| {
            officer_applications::latest_of_user(conn, &user.id)?
                .ok_or(ApplicationError::NoApplication)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ApplicationResponse::from(application)))
}

backoffice_list!(
    /// List the brand's applications for the registration-officer role
    ///
    /// Back-office operators only; pending ones by default, oldest first, a page at a time.
    list = "/api/v1/backoffice/officer-applications" as "officer_applications_list",
    filters ListQuery, answers ApplicationListResponse "A page of the applications",
    by find
);

async fn find(Listing(state, operator, listed): Listing<ListQuery>) -> Found<ApplicationResponse> {
    let mut errors = FieldErrors::default();
    let status = errors.check_optional("status", listed.filter.status.as_deref(), |text| {
        one_of_all("status", text)
    });
    let page = listed.page_checked(&mut errors);
    errors.finish()?;
    let status = status.unwrap_or(ApplicationStatus::Pending);
    let read = move |conn: &mut _| officer_applications::list(conn, &operator.brand, status, page);
    listed
        .read_page(&state, page, read, ApplicationResponse::from)
        .await
}

async fn decide(
    state: State,
    operator: super::extract::CurrentUser,
    id: String,
    decision: Decision,
) -> ApiResult {
    let application = state
        .with_conn(move |conn| {
            officer_applications::decide(conn, operator.acting(), &id, decision, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(ApplicationResponse::from(application)))
}

backoffice_action!(
    /// Approve an application: the applicant becomes a registration officer
    ///
    /// Back-office operators only, for pending applications of their brand. The applicant is
    /// emailed; the new role is in their access tokens from their next refresh or sign-in.
    post approve = "/api/v1/backoffice/officer-applications/{id}/approve"
        as "officer_applications_approve",
    on "id" "The application's id",
    answers (status = 200, description = "Approved", body = ApplicationResponse),
    refuses (NotOperator, UnknownApplication, AlreadyDecided),
    by approve_application
);

async fn approve_application(Acting(state, operator, id): Acting) -> ApiResult {
    decide(state, operator, id, Decision::Approve).await
}

backoffice_action!(
    /// Refuse an application, with a reason
    ///
    /// Back-office operators only, for pending applications of their brand. The applicant is
    /// emailed the reason and may apply again.
    post refuse = "/api/v1/backoffice/officer-applications/{id}/refuse"
        as "officer_applications_refuse",
    on "id" "The application's id", takes RefusalRequest,
    answers (status = 200, description = "Refused", body = ApplicationResponse),
    refuses (BadReason, NotOperator, UnknownApplication, AlreadyDecided),
    by refuse_application
);

async fn refuse_application(
    Acting(state, operator, id): Acting,
    body: JsonObject<RefusalRequest>,
) -> ApiResult {
    let mut errors = FieldErrors::default();
    let reason = errors.check("reason", Reason::parse(&body.into_inner().reason));
    errors.finish()?;
    let decision = Decision::Refuse(reason.expect("checked"));
    decide(state, operator, id, decision).await
}
