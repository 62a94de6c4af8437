//! Applications for the registration-officer role: a customer applies with the company's
//! data, an operator of the brand approves (the user becomes a registration officer) or
//! refuses with a reason, and the applicant is emailed the outcome. The one writer of
//! `officer_applications`.
//!
//! A user has at most one pending application (a unique index says so, whatever the
//! concurrency). Deciding is one conditional update of a pending row: of two operators
//! deciding the same application at once, exactly one does, the other is told it was
//! decided already.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;
use uuid::Uuid;

use super::users::{self, User, UserError};
use super::Role;
use crate::audit::{self, Actor, AuditEntry, Operator};
use crate::brands;
use crate::db::schema::{officer_applications, users as users_table};
use crate::db::{self, write_transaction, DbConnection};
use crate::email_address::EmailAddress;
use crate::mail::outbox::{self, OutgoingEmail};
use crate::mail::templates::EmailKind;
use crate::paging::{Page, Paged};
use crate::partita_iva::PartitaIva;
use crate::validation::{Reason, Text};

/// A company's name as registered.
pub type CompanyName = Text<2, 200>;
/// What the applicant adds for the operator; may be empty. Typed in a text area, so its
/// line breaks are read as spaces (see [`note`]).
pub type ApplicationNote = Text<0, 1000>;

/// The note as typed, its line breaks (and tabs) made spaces: the other control
/// characters are still refused.
pub fn note(typed: &str) -> Result<ApplicationNote, crate::validation::TextError> {
    let spaced = typed.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
    ApplicationNote::parse(&spaced)
}

/// A phone number as people type it: digits, spaces and `+ - / . ( )`, 6 to 20 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a phone number has 6 to 20 digits, and only spaces and + - / . ( ) besides")]
pub struct PhoneNumberError;

impl crate::validation::Rule for PhoneNumberError {
    fn rule(&self) -> &'static str {
        "phone"
    }
}

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let trimmed = input.trim();
        let digits = trimmed.chars().filter(char::is_ascii_digit).count();
        let allowed = trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '/' | '.' | '(' | ')'));
        if allowed && (6..=20).contains(&digits) && trimmed.len() <= 30 {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(PhoneNumberError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_enum!(
    /// An application's life: `pending` → `approved` | `refused`.
    ApplicationStatus { Pending => "pending", Approved => "approved", Refused => "refused" }
);

/// What a customer applies with.
#[derive(Debug, Clone)]
pub struct ApplicationForm {
    pub company_name: CompanyName,
    pub vat_number: PartitaIva,
    /// The company's PEC or email.
    pub contact_email: EmailAddress,
    pub phone: Option<PhoneNumber>,
    pub note: Option<ApplicationNote>,
}

#[derive(Debug, Clone)]
pub struct Application {
    pub id: String,
    pub brand_id: String,
    pub user_id: String,
    /// The applicant's account email and name (as they are now).
    pub applicant_email: String,
    pub applicant_name: String,
    pub company_name: String,
    pub vat_number: PartitaIva,
    pub contact_email: String,
    pub phone: Option<String>,
    pub note: Option<String>,
    pub status: ApplicationStatus,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub refusal_reason: Option<String>,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum ApplicationError {
        #[error("you already have a pending application")]
        AlreadyPending,
        #[error("you are a registration officer already")]
        AlreadyOfficer,
        #[error("no application of your brand has this id")]
        UnknownApplication,
        #[error("you have not applied")]
        NoApplication,
        #[error("the application was {0} already")]
        AlreadyDecided(ApplicationStatus),
    }
    storage from UserError
}

impl From<DieselError> for ApplicationError {
    fn from(error: DieselError) -> Self {
        match error {
            // The one-pending-per-user index: a second application raced the first.
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Self::AlreadyPending
            }
            other => Self::Storage(other.into()),
        }
    }
}

/// An application read joined to its applicant's user row, as every reader shows it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = officer_applications)]
struct ApplicationRow {
    id: String,
    brand_id: String,
    user_id: String,
    #[diesel(select_expression = users_table::email)]
    applicant_email: String,
    #[diesel(select_expression = users_table::name)]
    applicant_name: String,
    company_name: String,
    vat_number: String,
    contact_email: String,
    phone: Option<String>,
    note: Option<String>,
    status: ApplicationStatus,
    created_at: NaiveDateTime,
    decided_at: Option<NaiveDateTime>,
    refusal_reason: Option<String>,
}

fn from_row(row: ApplicationRow) -> Result<Application, ApplicationError> {
    Ok(Application {
        status: row.status,
        id: row.id,
        brand_id: row.brand_id,
        user_id: row.user_id,
        applicant_email: row.applicant_email,
        applicant_name: row.applicant_name,
        company_name: row.company_name,
        vat_number: PartitaIva::from_stored(row.vat_number),
        contact_email: row.contact_email,
        phone: row.phone,
        note: row.note,
        created_at: row.created_at.and_utc(),
        decided_at: row.decided_at.map(|t| t.and_utc()),
        refusal_reason: row.refusal_reason,
    })
}

/// A customer applies for the registration-officer role. One pending application at a
/// time; an officer need not apply.
pub fn apply(
    conn: &mut DbConnection,
    user_id: &str,
    form: ApplicationForm,
    now: DateTime<Utc>,
) -> Result<Application, ApplicationError> {
    write_transaction(conn, |conn| {
        let user = users::find(conn, user_id)?.ok_or(UserError::NotFound)?;
        let pending: bool = diesel::select(diesel::dsl::exists(
            officer_applications::table
                .filter(officer_applications::user_id.eq(user_id))
                .filter(officer_applications::status.eq(ApplicationStatus::Pending.as_str())),
        ))
        .get_result(conn)?;
        if let Some(refused) = why_not_apply(user.role, pending) {
            return Err(refused);
        }
        let id = Uuid::now_v7().to_string();
        diesel::insert_into(officer_applications::table)
            .values((
                officer_applications::id.eq(&id),
                officer_applications::brand_id.eq(&user.brand_id),
                officer_applications::user_id.eq(user_id),
                officer_applications::company_name.eq(form.company_name.as_str()),
                officer_applications::vat_number.eq(form.vat_number.as_str()),
                officer_applications::contact_email.eq(form.contact_email.as_str()),
                officer_applications::phone.eq(form.phone.as_ref().map(PhoneNumber::as_str)),
                officer_applications::note.eq(form
                    .note
                    .as_ref()
                    .map(ApplicationNote::as_str)
                    .filter(|n| !n.is_empty())),
                officer_applications::status.eq(ApplicationStatus::Pending.as_str()),
                officer_applications::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&user.brand_id),
                actor: &Actor::User(user.id.clone()),
                action: "officer_application.submitted",
                subject_type: "officer_application",
                subject_id: &id,
                details: json!({
                    "company_name": form.company_name.as_str(),
                    "vat_number": form.vat_number.as_str(),
                }),
            },
            now,
        )?;
        find(conn, &id)?.ok_or(ApplicationError::UnknownApplication)
    })
}

fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Application>, ApplicationError> {
    officer_applications::table
        .inner_join(users_table::table)
        .filter(officer_applications::id.eq(id))
        .select(ApplicationRow::as_select())
        .first::<ApplicationRow>(conn)
        .optional()?
        .map(from_row)
        .transpose()
}

/// Why a user of `role` may not apply now, with an application of theirs `pending` or
/// not; `None`: they may. Only a customer applies, one application at a time; an officer
/// need not.
fn why_not_apply(role: Role, pending: bool) -> Option<ApplicationError> {
    if role != Role::Customer {
        Some(ApplicationError::AlreadyOfficer)
    } else if pending {
        Some(ApplicationError::AlreadyPending)
    } else {
        None
    }
}

/// Where a user stands with the role: their latest application, and whether they may
/// apply now (as [`apply`] decides).
pub struct Standing {
    pub latest: Option<Application>,
    pub may_apply: bool,
}

pub fn standing(conn: &mut DbConnection, user: &User) -> Result<Standing, ApplicationError> {
    let latest = latest_of_user(conn, &user.id)?;
    // One pending application at a time, so a pending one is the latest.
    let pending = latest
        .as_ref()
        .is_some_and(|a| a.status == ApplicationStatus::Pending);
    Ok(Standing {
        may_apply: why_not_apply(user.role, pending).is_none(),
        latest,
    })
}

/// The user's latest application, if they ever applied.
pub fn latest_of_user(
    conn: &mut DbConnection,
    user_id: &str,
) -> Result<Option<Application>, ApplicationError> {
    officer_applications::table
        .inner_join(users_table::table)
        .filter(officer_applications::user_id.eq(user_id))
        .order((
            officer_applications::created_at.desc(),
            officer_applications::id.desc(),
        ))
        .select(ApplicationRow::as_select())
        .first::<ApplicationRow>(conn)
        .optional()?
        .map(from_row)
        .transpose()
}

/// A page of the brand's applications in `status`, oldest first (the queue's order), and
/// how many are in that status.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    status: ApplicationStatus,
    page: Page,
) -> Result<Paged<Application>, ApplicationError> {
    let query = || {
        officer_applications::table
            .inner_join(users_table::table)
            .filter(officer_applications::brand_id.eq(brand_id.to_owned()))
            .filter(officer_applications::status.eq(status.as_str()))
            .into_boxed()
    };
    db::load_page(conn, page, query, |query| {
        query
            .order((
                officer_applications::created_at.asc(),
                officer_applications::id.asc(),
            ))
            .select(ApplicationRow::as_select())
    })?
    .try_map(from_row)
}

/// The operator's decision on an application.
#[derive(Debug, Clone)]
pub enum Decision {
    Approve,
    Refuse(Reason),
}

/// Decides a pending application of the operator's brand: approving makes the applicant
/// a registration officer (from the next refresh of their API session; at once on the
/// pages); either way the applicant is emailed the outcome. Audited.
pub fn decide(
    conn: &mut DbConnection,
    operator: Operator<'_>,
    application_id: &str,
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<Application, ApplicationError> {
    let Operator {
        id: operator_id,
        brand_id,
    } = operator;
    // An id that is no UUID names nothing (and its bytes never reach the database).
    if Uuid::parse_str(application_id).is_err() {
        return Err(ApplicationError::UnknownApplication);
    }
    write_transaction(conn, |conn| {
        let application = find(conn, application_id)?
            .filter(|a| a.brand_id == brand_id)
            .ok_or(ApplicationError::UnknownApplication)?;
        let (status, reason) = match &decision {
            Decision::Approve => (ApplicationStatus::Approved, None),
            Decision::Refuse(reason) => (ApplicationStatus::Refused, Some(reason.as_str())),
        };
        let decided = diesel::update(
            officer_applications::table
                .filter(officer_applications::id.eq(&application.id))
                .filter(officer_applications::status.eq(ApplicationStatus::Pending.as_str())),
        )
        .set((
            officer_applications::status.eq(status.as_str()),
            officer_applications::decided_at.eq(now.naive_utc()),
            officer_applications::decided_by.eq(operator_id),
            officer_applications::refusal_reason.eq(reason),
        ))
        .execute(conn)?;
        if decided != 1 {
            let current = find(conn, &application.id)?.map_or(application.status, |a| a.status);
            return Err(ApplicationError::AlreadyDecided(current));
        }
        let applicant = users::find(conn, &application.user_id)?.ok_or(UserError::NotFound)?;
        let role_changed = matches!(decision, Decision::Approve)
            && users::change_role(
                conn,
                &applicant.id,
                Role::Customer,
                Role::RegistrationOfficer,
                now,
            )?;
        let actor = operator.actor();
        audit::record_all(
            conn,
            [
                Some(AuditEntry {
                    brand_id: Some(brand_id),
                    actor: &actor,
                    action: match status {
                        ApplicationStatus::Approved => "officer_application.approved",
                        _ => "officer_application.refused",
                    },
                    subject_type: "officer_application",
                    subject_id: &application.id,
                    details: json!({ "user_id": applicant.id, "reason": reason }),
                }),
                role_changed.then(|| AuditEntry {
                    brand_id: Some(brand_id),
                    actor: &actor,
                    action: "user.role_changed",
                    subject_type: "user",
                    subject_id: &applicant.id,
                    details: json!({
                        "from": Role::Customer.as_str(),
                        "to": Role::RegistrationOfficer.as_str(),
                        "application_id": application.id,
                    }),
                }),
            ]
            .into_iter()
            .flatten()
            .collect(),
            now,
        )?;
        notify(conn, &applicant, &application, status, reason, now)?;
        find(conn, &application.id)?.ok_or(ApplicationError::UnknownApplication)
    })
}

/// The applicant's email about the decision, through the outbox, to the account's address.
fn notify(
    conn: &mut DbConnection,
    applicant: &User,
    application: &Application,
    status: ApplicationStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ApplicationError> {
    let brand = brands::existing(conn, &applicant.brand_id)?;
    outbox::enqueue(
        conn,
        &OutgoingEmail {
            brand_id: brand.id.clone(),
            kind: EmailKind::OfficerDecision,
            reference: Some(application.id.clone()),
            sender: brand.sender_address,
            recipient: applicant.email.as_str().to_owned(),
            context: json!({
                "brand": brand.name,
                "name": applicant.name,
                "company_name": application.company_name,
                "vat_number": application.vat_number.as_str(),
                "approved": status == ApplicationStatus::Approved,
                "reason": reason.unwrap_or_default(),
            }),
            attachment: None,
        },
        now,
    )?;
    Ok(())
}
