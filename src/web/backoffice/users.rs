//! Users of the brand: the search, one user's page with disable, enable and removal of
//! the registration-officer role, and the applications for that role to approve or refuse.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::management::{
    self, ManagementError, SearchText, UserChange, UserFilter, UserStatus,
};
use crate::auth::officer_applications::{self, ApplicationStatus, Decision};
use crate::auth::{Role, User};
use crate::http::italian::user_status_label;
use crate::paging::Page;
use crate::validation::Reason;
use crate::web::{form_status, refusal, role_label, NoFields, OperatorPage, PageResult};

use super::{
    done_redirect, filters_status, page_numbered, pager, reason_error, rows_and_pager, time_it,
    url_segment, OperatorForm,
};

fn user_row(user: &User) -> Value {
    json!({
        "id": user.id,
        "email": user.email.to_string(),
        "name": user.name,
        "role": role_label(user.role),
        "status": user_status_label(user.status()),
        "disabled": user.disabled_at.is_some(),
        "created_at": time_it(user.created_at),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UsersQuery {
    q: String,
    ruolo: String,
    stato: String,
    pagina: String,
}

pub(super) async fn users(visit: OperatorPage, query: web::Query<UsersQuery>) -> PageResult {
    let UsersQuery {
        q,
        ruolo,
        stato,
        pagina,
    } = query.into_inner();
    let mut errors = Vec::new();
    let role = match ruolo.trim() {
        "" => None,
        text => Role::parse(text).or_else(|| {
            errors.push("Scegli un ruolo dall'elenco.");
            None
        }),
    };
    let status = match stato.trim() {
        "" => None,
        text => UserStatus::parse(text).or_else(|| {
            errors.push("Scegli uno stato dall'elenco.");
            None
        }),
    };
    let text = SearchText::parse(&q)
        .map_err(|_| {
            errors.push(
                "Il testo da cercare può avere al massimo 200 caratteri, senza caratteri di controllo.",
            )
        })
        .ok();
    let page = page_numbered(&pagina);
    let valid = errors.is_empty();
    let filter = UserFilter {
        text: text.filter(|_| valid),
        role,
        status,
    };
    let (brand, found) = visit
        .read(move |conn, brand_id| Ok(management::search(conn, brand_id, &filter, page)?))
        .await?;
    let filters = [("q", q.as_str()), ("ruolo", &ruolo), ("stato", &stato)];
    let pager = pager("/backoffice/utenti", &filters, page, found.total);
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| json!({ "value": r.as_str(), "label": role_label(*r), "selected": r.as_str() == ruolo }))
        .collect();
    let statuses: Vec<Value> = UserStatus::ALL
        .iter()
        .map(|s| json!({ "value": s.as_str(), "label": user_status_label(*s), "selected": s.as_str() == stato }))
        .collect();
    let context = json!({
        "q": q,
        "roles": roles,
        "statuses": statuses,
        "error": (!valid).then(|| errors.join(" ")),
        "users": found.items.iter().map(user_row).collect::<Vec<_>>(),
        "total": found.total,
        "first": page.offset() + 1,
        "last": page.offset() + found.items.len() as i64,
        "pager": pager,
    });
    visit.render(
        &brand,
        "Utenti",
        filters_status(valid),
        "bo_utenti",
        context,
    )
}

/// One of the user page's forms, as it was typed, and what is wrong with it.
#[derive(Default)]
pub(super) struct ActionForm {
    /// Which form; `None` on a page that was not posted.
    change: Option<UserChange>,
    reason: String,
    error: Option<String>,
}

pub(super) async fn user_page(
    visit: &OperatorPage,
    user_id: String,
    form: ActionForm,
    done: Value,
    status: StatusCode,
) -> PageResult {
    let own = user_id == visit.user.id;
    let (brand, (user, disabled_reason)) = visit
        .read(move |conn, brand_id| {
            let user = management::find_in_brand(conn, brand_id, &user_id)?;
            let reason = management::disabled_reason(conn, &user.id)?;
            Ok((user, reason))
        })
        .await?;
    // A change's form is offered where the domain would make it.
    let operator = visit.user.acting();
    let offered = |change| management::why_not(operator, &user, change).is_none();
    // A refusal whose form the page no longer shows (the user changed meanwhile) is said
    // at the top instead.
    let shown = form.change.is_none_or(offered);
    let form_of = |change: UserChange| {
        let this = shown && form.change == Some(change);
        offered(change).then(|| {
            json!({
                "reason": if this { form.reason.as_str() } else { "" },
                "error": if this { form.error.clone() } else { None },
            })
        })
    };
    let context = json!({
        "done": done,
        "error": if shown { None } else { form.error.clone() },
        "account": user_row(&user),
        "own": own,
        "disabled_reason": disabled_reason,
        "disable": form_of(UserChange::Disable),
        "enable": form_of(UserChange::Enable),
        "demote": form_of(UserChange::RemoveOfficerRole),
    });
    visit.render(&brand, "Utente", status, "bo_utente", context)
}

#[derive(Deserialize)]
pub struct DoneQuery {
    fatto: Option<String>,
    /// The page of a list (see `page_numbered`).
    #[serde(default)]
    pagina: String,
}

fn done_message(fatto: Option<&str>) -> Value {
    match fatto {
        Some("disattivato") => json!("Utente disattivato: le sue sessioni sono terminate."),
        Some("riattivato") => json!("Utente riattivato: può accedere di nuovo."),
        Some("cliente") => {
            json!("L'utente ora è un cliente: le sue sessioni sono terminate.")
        }
        Some("approvata") => {
            json!("Richiesta accolta: l'utente ora è incaricato alla registrazione.")
        }
        Some("respinta") => json!("Richiesta respinta: l'utente riceverà il motivo per email."),
        _ => Value::Null,
    }
}

pub(super) async fn user(
    visit: OperatorPage,
    user_id: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> PageResult {
    let done = done_message(query.fatto.as_deref());
    let form = ActionForm::default();
    user_page(&visit, user_id.into_inner(), form, done, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReasonFields {
    reason: String,
}

/// Makes `change` with the form's reason; `done` names it in the page's address after.
async fn act(
    OperatorForm { visit, fields }: OperatorForm<ReasonFields>,
    user_id: String,
    change: UserChange,
    done: &'static str,
) -> PageResult {
    let mut form = ActionForm {
        change: Some(change),
        reason: fields.reason.clone(),
        error: None,
    };
    let status = match Reason::parse(&fields.reason) {
        Err(e) => {
            form.error = Some(reason_error(&e));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Ok(reason) => {
            let id = user_id.clone();
            let outcome = visit
                .as_operator(move |conn, operator| {
                    match management::make(
                        conn,
                        operator.acting(),
                        &id,
                        change,
                        &reason,
                        Utc::now(),
                    ) {
                        Ok(_) => Ok(Ok(())),
                        Err(ManagementError::UnknownUser) => {
                            Err(ManagementError::UnknownUser.into())
                        }
                        Err(other) => Ok(Err(refusal(other)?)),
                    }
                })
                .await?;
            match outcome {
                Ok(()) => {
                    let path = format!("/backoffice/utenti/{}", url_segment(&user_id));
                    return Ok(done_redirect(&path, done));
                }
                Err(identity) => {
                    let status = form_status(&identity);
                    form.error = Some(identity.italian);
                    status
                }
            }
        }
    };
    user_page(&visit, user_id, form, Value::Null, status).await
}

pub(super) async fn disable(
    form: OperatorForm<ReasonFields>,
    user_id: web::Path<String>,
) -> PageResult {
    act(
        form,
        user_id.into_inner(),
        UserChange::Disable,
        "disattivato",
    )
    .await
}

pub(super) async fn enable(
    form: OperatorForm<ReasonFields>,
    user_id: web::Path<String>,
) -> PageResult {
    act(form, user_id.into_inner(), UserChange::Enable, "riattivato").await
}

pub(super) async fn remove_officer_role(
    form: OperatorForm<ReasonFields>,
    user_id: web::Path<String>,
) -> PageResult {
    let change = UserChange::RemoveOfficerRole;
    act(form, user_id.into_inner(), change, "cliente").await
}

/// The refusal form of one application, as typed, and what is wrong with it.
#[derive(Default)]
pub(super) struct RefusalForm {
    application_id: String,
    reason: String,
    error: Option<String>,
}

pub(super) async fn applications_page(
    visit: &OperatorPage,
    page: Page,
    refusal_form: RefusalForm,
    done: Value,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let (brand, list) = visit
        .read(move |conn, brand_id| {
            Ok(officer_applications::list(
                conn,
                brand_id,
                ApplicationStatus::Pending,
                page,
            )?)
        })
        .await?;
    let (applications, pager) =
        rows_and_pager("/backoffice/utenti/richieste", &[], page, list, |a| {
            let this = a.id == refusal_form.application_id;
            json!({
                "id": a.id,
                "user_id": a.user_id,
                "applicant_email": a.applicant_email,
                "applicant_name": a.applicant_name,
                "company_name": a.company_name,
                "vat_number": a.vat_number.as_str(),
                "contact_email": a.contact_email,
                "phone": a.phone.unwrap_or_else(|| "—".into()),
                "note": a.note.unwrap_or_else(|| "—".into()),
                "created_at": time_it(a.created_at),
                "reason": if this { refusal_form.reason.as_str() } else { "" },
                "reason_error": if this { refusal_form.error.clone() } else { None },
            })
        });
    let context = json!({
        "done": done,
        "error": error,
        "applications": applications,
        "pager": pager,
    });
    visit.render(
        &brand,
        "Richieste di incarico alla registrazione",
        status,
        "bo_richieste",
        context,
    )
}

pub(super) async fn applications(visit: OperatorPage, query: web::Query<DoneQuery>) -> PageResult {
    let done = done_message(query.fatto.as_deref());
    let page = page_numbered(&query.pagina);
    applications_page(
        &visit,
        page,
        RefusalForm::default(),
        done,
        None,
        StatusCode::OK,
    )
    .await
}

/// Decides the application; a refusal of the domain (decided already, unknown) is shown on
/// the list, next to the refusal's reason when it is the reason's fault.
async fn decide(
    visit: OperatorPage,
    application_id: String,
    decision: Decision,
    mut form: RefusalForm,
) -> PageResult {
    let done = match decision {
        Decision::Approve => "approvata",
        Decision::Refuse(_) => "respinta",
    };
    let id = application_id;
    let outcome = visit
        .as_operator(move |conn, operator| {
            match officer_applications::decide(conn, operator.acting(), &id, decision, Utc::now()) {
                Ok(_) => Ok(Ok(())),
                Err(other) => Ok(Err(refusal(other)?)),
            }
        })
        .await?;
    match outcome {
        Ok(()) => Ok(done_redirect("/backoffice/utenti/richieste", done)),
        Err(identity) => {
            let status = form_status(&identity);
            form.error = None;
            let (page, message) = (Page::default(), Some(identity.italian));
            applications_page(&visit, page, form, Value::Null, message, status).await
        }
    }
}

pub(super) async fn approve(
    form: OperatorForm<NoFields>,
    application_id: web::Path<String>,
) -> PageResult {
    let form_state = RefusalForm::default();
    decide(
        form.visit,
        application_id.into_inner(),
        Decision::Approve,
        form_state,
    )
    .await
}

pub(super) async fn refuse(
    OperatorForm { visit, fields }: OperatorForm<ReasonFields>,
    application_id: web::Path<String>,
) -> PageResult {
    let application_id = application_id.into_inner();
    let mut form_state = RefusalForm {
        application_id: application_id.clone(),
        reason: fields.reason.clone(),
        error: None,
    };
    match Reason::parse(&fields.reason) {
        Ok(reason) => decide(visit, application_id, Decision::Refuse(reason), form_state).await,
        Err(e) => {
            form_state.error = Some(reason_error(&e));
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let page = Page::default();
            applications_page(&visit, page, form_state, Value::Null, None, status).await
        }
    }
}
