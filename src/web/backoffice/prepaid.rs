//! Prepaid accounts: the search, one account's ledger, and adjustments by hand.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::email_address::EmailAddress;
use crate::prepaid::{self, Adjustment, Direction, PrepaidError};
use crate::validation::Reason;
use crate::web::{euro, refusal, OperatorPage, PageResult};

use super::{
    done_message, done_redirect, entry_kind_label, filters_status, parse_amount, reason_error,
    time_it, url_segment, OperatorForm,
};

/// Ledger entries per page of an account.
const ENTRIES_PAGE: i64 = 50;

#[derive(Deserialize)]
pub struct AccountsQuery {
    email: Option<String>,
}

pub(super) async fn accounts(visit: OperatorPage, query: web::Query<AccountsQuery>) -> PageResult {
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
    let (brand, found) = visit
        .read(move |conn, brand_id| match email {
            Some(email) => Ok(prepaid::find_by_email(conn, brand_id, &email)?),
            None => Ok(Vec::new()),
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
    let status = filters_status(error.is_none());
    let context =
        json!({ "email": typed, "error": error, "searched": searched, "accounts": accounts });
    visit.render(&brand, "Conti prepagati", status, "bo_prepagati", context)
}

#[derive(Default)]
pub(super) struct AdjustmentForm {
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

pub(super) async fn account_page(
    visit: &OperatorPage,
    account_id: String,
    before: Option<i64>,
    form: AdjustmentForm,
    done: Value,
    status: StatusCode,
) -> PageResult {
    let (brand, (account, entries)) = visit
        .read(move |conn, brand_id| {
            let account = prepaid::account_of_brand(conn, brand_id, &account_id)?;
            let entries = prepaid::entries(conn, &account.id, before, ENTRIES_PAGE)?;
            Ok((account, entries))
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
    visit.render(
        &brand,
        "Conto prepagato",
        status,
        "bo_prepagato",
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
    )
}

pub(super) async fn account(
    visit: OperatorPage,
    account_id: web::Path<String>,
    query: web::Query<EntriesQuery>,
) -> PageResult {
    let query = query.into_inner();
    let before = query
        .prima
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|s| *s > 0);
    let done = done_message(query.fatto.as_deref());
    let form = AdjustmentForm::default();
    let id = account_id.into_inner();
    account_page(&visit, id, before, form, done, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AdjustmentFields {
    amount: String,
    direction: String,
    reason: String,
}

pub(super) async fn adjust(
    OperatorForm { visit, fields }: OperatorForm<AdjustmentFields>,
    account_id: web::Path<String>,
) -> PageResult {
    let account_id = account_id.into_inner();
    let AdjustmentFields {
        amount,
        direction,
        reason,
    } = fields;
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
    let status = if let (Some(amount), Some(direction), Some(reason)) = (amount, direction, reason)
    {
        let adjustment = Adjustment {
            direction,
            amount,
            reason,
        };
        let id = account_id.clone();
        let outcome = visit
            .as_operator(move |conn, operator| {
                match prepaid::adjust(conn, operator.acting(), &id, adjustment, Utc::now()) {
                    Ok(_) => Ok(Ok(())),
                    // Too little credit to take back is the amount's fault: shown next to it.
                    Err(short @ PrepaidError::InsufficientFunds { .. }) => Ok(Err(refusal(short)?)),
                    Err(other) => Err(other.into()),
                }
            })
            .await?;
        match outcome {
            Ok(()) => {
                let path = format!("/backoffice/prepagati/{}", url_segment(&account_id));
                return Ok(done_redirect(&path, "rettificato"));
            }
            Err(identity) => {
                form.amount_error = Some(identity.italian);
                identity.kind.status
            }
        }
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    account_page(&visit, account_id, None, form, Value::Null, status).await
}
