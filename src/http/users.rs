//! The back-office's user management: find the brand's users, disable and enable them,
//! take the registration-officer role back (`auth::management` holds the rules).

use actix_web::HttpResponse;
use actix_web::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::json::JsonObject;
use super::operation::{backoffice_action, backoffice_list, Acting, Found, Listing};
use super::problem::FieldErrors;
use super::query::{one_of_all, page_of};
use super::responses::{problem_response_type, BadReason, NotOperator};
use super::{ApiError, ApiResult, Problem};
use crate::auth::management::{self, SearchText, UserChange, UserFilter, UserStatus};
use crate::auth::{Role, User};
use crate::validation::Reason;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A piece of the email or of the name, any case.
    #[param(example = "rossi")]
    q: Option<String>,
    /// Only users with this role.
    #[param(value_type = Option<Role>)]
    role: Option<String>,
    /// Only active or only disabled users.
    #[param(value_type = Option<UserStatus>)]
    status: Option<String>,
}

/// A user of the brand as the back-office sees it (never the password).
#[derive(Serialize, utoipa::ToSchema)]
struct UserResponse {
    id: String,
    #[schema(example = "maria.rossi@example.it")]
    email: String,
    #[schema(example = "Maria Rossi")]
    name: String,
    role: Role,
    status: UserStatus,
    created_at: DateTime<Utc>,
    /// When the user was disabled; `null` while active.
    #[schema(required = true)]
    disabled_at: Option<DateTime<Utc>>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            status: user.status(),
            id: user.id,
            email: user.email.as_str().to_owned(),
            name: user.name,
            role: user.role,
            created_at: user.created_at,
            disabled_at: user.disabled_at,
        }
    }
}

page_of!(
    /// A page of the brand's users, newest first.
    UserListResponse { users: UserResponse }
);

/// Why the operator acts (kept in the audit log).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[schema(example = "the customer asked to close the account")]
    reason: String,
}

problem_response_type!(
    /// The user id names no user of the operator's brand.
    UnknownUser,
    404,
    "No user of the brand has this id (`/problems/unknown-user`)"
);

backoffice_list!(
    /// Find the brand's users
    ///
    /// Back-office operators only; the users of the operator's brand, newest first, found by a
    /// piece of their email or name, their role and whether they are disabled.
    list = "/api/v1/backoffice/users" as "users_list",
    filters ListQuery, answers UserListResponse "A page of users",
    by search
);

async fn search(Listing(state, operator, listed): Listing<ListQuery>) -> Found<UserResponse> {
    let query = &listed.filter;
    let mut errors = FieldErrors::default();
    let role = errors.check_optional("role", query.role.as_deref(), |text| {
        one_of_all("role", text)
    });
    let status = errors.check_optional("status", query.status.as_deref(), |text| {
        one_of_all("status", text)
    });
    let text = errors.check_optional("q", query.q.as_deref(), SearchText::parse);
    let page = listed.page_checked(&mut errors);
    errors.finish()?;
    let filter = UserFilter { text, role, status };
    let read = move |conn: &mut _| management::search(conn, &operator.brand, &filter, page);
    listed
        .read_page(&state, page, read, UserResponse::from)
        .await
}

backoffice_action!(
    /// Show one user of the brand
    ///
    /// Back-office operators only.
    get show = "/api/v1/backoffice/users/{id}" as "users_show",
    on "id" "The user's id",
    answers (status = 200, description = "The user", body = UserResponse),
    refuses (NotOperator, UnknownUser),
    by show_user
);

async fn show_user(Acting(state, operator, id): Acting) -> ApiResult {
    let user = state
        .with_conn(move |conn| management::find_in_brand(conn, &operator.brand, &id))
        .await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(user)))
}

fn reason(body: JsonObject<ReasonRequest>) -> Result<Reason, ApiError> {
    let mut errors = FieldErrors::default();
    let reason = errors.check("reason", Reason::parse(&body.into_inner().reason));
    errors.finish()?;
    Ok(reason.expect("checked"))
}

backoffice_action!(
    /// Disable a user: no sign-in, every session ended at once
    ///
    /// Back-office operators only, for users of their brand, other operators too but not
    /// themself. The user's refresh tokens, access tokens and browser sessions stop working
    /// at once; signing in answers 403 `/problems/account-disabled` (after the password
    /// matched).
    post disable = "/api/v1/backoffice/users/{id}/disable" as "users_disable",
    on "id" "The user's id", takes ReasonRequest,
    answers (status = 200, description = "Disabled", body = UserResponse),
    refuses (
        BadReason,
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`), or the user is the caller (`/problems/own-account`)",
            body = Problem, content_type = "application/problem+json"),
        UnknownUser,
        (status = 409, description = "The user is disabled already (`/problems/user-state`)",
            body = Problem, content_type = "application/problem+json"),
    ),
    by |acting, body| act_on_user(acting, body, UserChange::Disable)
);

backoffice_action!(
    /// Enable a disabled user again
    ///
    /// Back-office operators only, for users of their brand. The user may sign in again; the
    /// sessions ended by the disabling stay ended.
    post enable = "/api/v1/backoffice/users/{id}/enable" as "users_enable",
    on "id" "The user's id", takes ReasonRequest,
    answers (status = 200, description = "Enabled", body = UserResponse),
    refuses (
        BadReason,
        NotOperator,
        UnknownUser,
        (status = 409, description = "The user is not disabled (`/problems/user-state`)",
            body = Problem, content_type = "application/problem+json"),
    ),
    by |acting, body| act_on_user(acting, body, UserChange::Enable)
);

backoffice_action!(
    /// Make a registration officer a customer again
    ///
    /// Back-office operators only, for users of their brand. The user's sessions end with
    /// it, so the customer's limits apply at once; they sign in again as a customer.
    post remove_officer_role = "/api/v1/backoffice/users/{id}/remove-officer-role"
        as "users_remove_officer_role",
    on "id" "The user's id", takes ReasonRequest,
    answers (status = 200, description = "The user is a customer now", body = UserResponse),
    refuses (
        BadReason,
        NotOperator,
        UnknownUser,
        (status = 409, description = "The user is not a registration officer \
(`/problems/not-an-officer`)", body = Problem, content_type = "application/problem+json"),
    ),
    by |acting, body| act_on_user(acting, body, UserChange::RemoveOfficerRole)
);

/// Makes `change` for the operator to the user, with the body's reason; the user after.
async fn act_on_user(
    Acting(state, operator, id): Acting,
    body: JsonObject<ReasonRequest>,
    change: UserChange,
) -> ApiResult {
    let reason = reason(body)?;
    let user = state
        .with_conn(move |conn| {
            management::make(conn, operator.acting(), &id, change, &reason, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(user)))
}
