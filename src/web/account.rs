//! A buyer's own things: profile (name, email, password), prepaid balance and statement,
//! orders with their invoice numbers, coupons with their status; the email confirmation
//! link's page and the "send the link again" action; and the public coupon status check
//! ("Verifica Stato Coupon").

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::paging::{page_numbered, pager, rows_and_pager, PageQuery};
use super::{
    euro, page, refusal, see_other, with_conn, with_retry_after, BuyerPage, CheckedForm, Csrf,
    NoFields, PageResult, WebError,
};
use crate::auth::account::{self, CurrentSession};
use crate::auth::confirmation::{self, LINK_VALID_HOURS};
use crate::auth::{password, NewPassword, ProfileChanges, Viewer};
use crate::card::store as card_store;
use crate::card::{CardProgress, CardStatus};
use crate::coupons::{self, CouponCode};
use crate::email_address::EmailAddress;
use crate::http::italian::{covers_label, entry_kind_label, order_status_label};
use crate::http::problem::kinds;
use crate::http::State;
use crate::money::PositiveMoney;
use crate::orders;
use crate::paging::Page;
use crate::payments::card::CardError;
use crate::prepaid::{self, top_ups};
use crate::validation::PersonName;
use crate::web::shop::card::{through_page, CARD_OPENED, CARD_UNAVAILABLE};

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages! { cfg;
        get  "/negozio/profilo" => profile,
        post "/negozio/profilo" => update_profile,
        post "/negozio/profilo/esci-ovunque" => sign_out_everywhere,
        get  "/negozio/conferma-email" => confirmation_page,
        post "/negozio/conferma-email" => confirm_email,
        post "/negozio/conferma-email/invia" => resend_link,
        get  "/negozio/prepagato" => prepaid_statement,
        post "/negozio/prepagato/ricarica-con-carta" => top_up_by_card,
        get  "/negozio/ordini" => order_list,
        get  "/negozio/coupon" => coupon_list,
        get  "/negozio/coupon/esporta" => coupon_export,
        get  "/negozio/verifica-coupon" => check_coupon,
    }
}

async fn profile(shop: BuyerPage, query: web::Query<BTreeMap<String, String>>) -> PageResult {
    let pending = shop
        .read(|conn, user| Ok(confirmation::pending_email(conn, &user.id, Utc::now())?))
        .await?;
    let officer = shop.read(super::officer::status_on_profile).await?;
    shop.render(
        StatusCode::OK,
        "profilo",
        json!({
            "title": "Il tuo profilo",
            "name": shop.user.name,
            "email": shop.user.email.to_string(),
            "pending_email": pending.map(|e| e.to_string()),
            "saved": query.contains_key("salvato"),
            "errors": {},
            "officer": officer,
            "officer_sent": query.contains_key("richiesta"),
        }),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ProfileForm {
    csrf_token: String,
    name: String,
    email: String,
    current_password: String,
    new_password: String,
}

async fn update_profile(
    request: HttpRequest,
    shop: BuyerPage,
    form: web::Form<ProfileForm>,
) -> PageResult {
    Csrf::check(&request, &form.csrf_token)?;
    let form = form.into_inner();
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    let name = PersonName::parse(&form.name)
        .map_err(|e| errors.insert("name", crate::http::italian::person_name_rule(&e)))
        .ok();
    let email = EmailAddress::parse(&form.email)
        .map_err(|e| errors.insert("email", crate::http::italian::email_rule(&e).into()))
        .ok();
    let new_password = if form.new_password.is_empty() {
        None
    } else {
        match NewPassword::parse(&form.new_password, email.as_ref()) {
            Ok(password) => Some(password),
            Err(e) => {
                errors.insert(
                    "new_password",
                    crate::http::italian::password_rule(&e).into(),
                );
                None
            }
        }
    };
    if !errors.is_empty() {
        return profile_again(&shop, &form, errors).await;
    }
    let now = Utc::now();
    // A new password or a new address needs the current password: a session left open
    // is not enough.
    let asks = account::needs_current_password(&shop.user, new_password.is_some(), email.as_ref());
    let reauthentication = match asks {
        true => {
            let client = crate::http::client_address(&request);
            let confirmation = shop
                .read(move |conn, user| {
                    Ok(account::begin_reauthentication(
                        conn, &user.id, &client, now,
                    )?)
                })
                .await?;
            let hash = confirmation.password_hash.clone();
            let current = form.current_password.clone();
            let matches = web::block(move || password::verify(&current, Some(&hash))).await?;
            Some((confirmation, matches))
        }
        false => None,
    };
    let changes = ProfileChanges {
        name,
        codice_fiscale: None,
        new_password,
    };
    let public_url = shop.state.config.public_url.clone();
    let token = request
        .cookie(super::SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let updated = shop
        .read(move |conn, user| {
            let session = CurrentSession::Page { token: &token };
            match account::update_profile(
                conn,
                &user.id,
                changes,
                email,
                reauthentication,
                session,
                &public_url,
                now,
            ) {
                Ok(_) => Ok(Ok(())),
                Err(refused) => Ok(Err(refusal(refused)?)),
            }
        })
        .await?;
    match updated {
        Ok(()) => Ok(see_other("/negozio/profilo?salvato=1")),
        // A wrong current password or a taken email: next to its field; anything else
        // (too many wrong passwords) is its own page.
        Err(refused) => match refused.field.as_ref().map(|(field, _)| field.as_str()) {
            Some("current_password") => {
                let errors = BTreeMap::from([("current_password", refused.italian)]);
                profile_again(&shop, &form, errors).await
            }
            _ if refused.kind == kinds::EMAIL_TAKEN => {
                let errors = BTreeMap::from([("email", refused.italian)]);
                profile_again(&shop, &form, errors).await
            }
            _ => Err(refused.into()),
        },
    }
}

/// Ends every session of the buyer, this browser's too, and shows the sign-in form.
async fn sign_out_everywhere(shop: BuyerPage, _: CheckedForm<NoFields>) -> PageResult {
    shop.read(|conn, user| Ok(account::sign_out_everywhere(conn, &user.id, Utc::now())?))
        .await?;
    let mut response = see_other(&format!("/negozio/{}/accedi", shop.brand.id));
    response
        .add_removal_cookie(&super::expired_cookie(super::SESSION_COOKIE))
        .map_err(|e| WebError::Unexpected(e.into()))?;
    Ok(response)
}

async fn profile_again(
    shop: &BuyerPage,
    form: &ProfileForm,
    errors: BTreeMap<&str, String>,
) -> PageResult {
    let officer = shop.read(super::officer::status_on_profile).await?;
    shop.render(
        StatusCode::UNPROCESSABLE_ENTITY,
        "profilo",
        json!({
            "title": "Il tuo profilo",
            "name": form.name,
            "email": form.email,
            "pending_email": null,
            "saved": false,
            "errors": errors,
            "officer": officer,
            "officer_sent": false,
        }),
    )
}

/// The confirmation page's context for whoever opened it: the layout of a signed-in
/// user's pages, or a visitor's.
async fn confirmation_context(
    state: &State,
    request: &HttpRequest,
    csrf: &Csrf,
) -> Result<(Option<crate::auth::User>, Value), WebError> {
    let user = super::optional_session_user(request).await?;
    let base = match &user {
        Some(user) => {
            let brand = super::brand_named(state, user.brand_id.clone()).await?;
            super::signed_in_context(user, &brand.name, csrf)
        }
        None => json!({ "user": null, "brand_name": null, "csrf_token": csrf.token }),
    };
    let page = json!({
        "title": "Conferma l'indirizzo email",
        "token": null,
        "error": null,
        "confirmed": false,
        "sent": false,
    });
    Ok((user, super::merge(base, page)))
}

/// What the link in the email opens. Opening it changes nothing: mail scanners and link
/// previews fetch links on their own, so the confirmation is the button's POST.
async fn confirmation_page(
    state: State,
    request: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
) -> PageResult {
    let csrf = Csrf::of(&request);
    let (_, mut context) = confirmation_context(&state, &request, &csrf).await?;
    let token = query.get("token").map(|t| t.trim()).unwrap_or_default();
    let status = if token.is_empty() {
        context["error"] = json!("Il link è incompleto: copialo per intero dall'email.");
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        context["token"] = json!(token);
        StatusCode::OK
    };
    page(&state, &csrf, status, "conferma_email", context)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConfirmForm {
    token: String,
}

async fn confirm_email(
    state: State,
    request: HttpRequest,
    CheckedForm(form): CheckedForm<ConfirmForm>,
) -> PageResult {
    let csrf = Csrf::of(&request);
    let (user, mut context) = confirmation_context(&state, &request, &csrf).await?;
    let caller = user.map(|u| u.id);
    let token = form.token;
    let outcome = with_conn(&state, move |conn| {
        match confirmation::confirm(conn, &token, caller.as_deref(), Utc::now()) {
            Ok(user) => Ok(Ok(user)),
            Err(refused) => Ok(Err(refusal(refused)?)),
        }
    })
    .await?;
    match outcome {
        Ok(confirmed) => {
            context["confirmed"] = json!(true);
            context["email"] = json!(confirmed.email.to_string());
            // The banner asking to confirm was computed before: it is gone now.
            if context["user"].is_object() {
                context["user"]["email"] = json!(confirmed.email.to_string());
                context["user"]["email_unconfirmed"] = json!(false);
                context["next"] = json!("/negozio/acquista");
                context["next_label"] = json!("Vai al negozio");
            } else {
                context["next"] = json!(format!("/negozio/{}/accedi", confirmed.brand_id));
                context["next_label"] = json!("Accedi");
            }
            page(&state, &csrf, StatusCode::OK, "conferma_email", context)
        }
        Err(refused) => {
            context["error"] = json!(refused.italian);
            let status = super::form_status(&refused);
            page(&state, &csrf, status, "conferma_email", context)
        }
    }
}

/// "Invia di nuovo il link", from the banner every page of an unconfirmed buyer shows.
async fn resend_link(shop: BuyerPage, _: CheckedForm<NoFields>) -> PageResult {
    let public_url = shop.state.config.public_url.clone();
    shop.read(move |conn, user| {
        Ok(confirmation::resend(
            conn,
            &user.id,
            &public_url,
            Utc::now(),
        )?)
    })
    .await?;
    shop.render(
        StatusCode::OK,
        "conferma_email",
        json!({
            "title": "Link inviato",
            "token": null,
            "error": null,
            "confirmed": false,
            "sent": true,
            "email": shop.user.email.to_string(),
            "hours": LINK_VALID_HOURS,
        }),
    )
}

/// The statement page's `?ricarica=` top-up, as the page shows it: its real state, not
/// what a return from the provider's page suggests.
fn top_up_shown(
    top_up: &top_ups::TopUp,
    progress: CardProgress,
    offered: bool,
    carta: Option<&str>,
) -> Value {
    json!({
        "amount": euro(top_up.amount),
        "paid": top_up.status == top_ups::TopUpStatus::Paid,
        "waiting": progress.may_still_change(),
        "held": progress.held,
        "ended": progress.ended,
        "unavailable": progress.waiting && offered && carta == Some(CARD_UNAVAILABLE),
    })
}

/// What the statement page shows of a top-up just asked for (`?ricarica=`, `?carta=`).
struct TopUpView {
    top_up: Value,
    refresh: bool,
    card_page: Option<String>,
}

async fn top_up_view(
    shop: &BuyerPage,
    id: Option<String>,
    carta: Option<String>,
) -> Result<Option<TopUpView>, WebError> {
    let Some(id) = id else {
        return Ok(None);
    };
    let (top_up, payment) = shop
        .read(move |conn, user| {
            let top_up = top_ups::find(conn, &id)?
                // Someone else's top-up is as unknown as a made-up one.
                .filter(|t| Viewer::from(user).may_see(&t.brand_id, &t.user_id))
                .ok_or_else(|| {
                    WebError::NotFound("Nessuna ricarica con questo identificativo.".into())
                })?;
            let payment = card_store::of_top_up(conn, &id).map_err(WebError::storage)?;
            Ok((top_up, payment))
        })
        .await?;
    let progress = CardProgress::of(
        top_up.status == top_ups::TopUpStatus::AwaitingPayment,
        top_up.status == top_ups::TopUpStatus::Expired,
        payment.as_ref(),
    );
    let offered = shop.state.card.is_some();
    let shown = top_up_shown(&top_up, progress, offered, carta.as_deref());
    let waiting = progress.may_still_change();
    let card_page = payment
        .filter(|p| {
            waiting && carta.as_deref() == Some(CARD_OPENED) && p.status == CardStatus::Open
        })
        .and_then(|p| p.checkout_url);
    Ok(Some(TopUpView {
        top_up: shown,
        refresh: waiting,
        card_page,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StatementQuery {
    ricarica: Option<String>,
    carta: Option<String>,
    pagina: String,
}

async fn prepaid_statement(shop: BuyerPage, query: web::Query<StatementQuery>) -> PageResult {
    let StatementQuery {
        ricarica,
        carta,
        pagina,
    } = query.into_inner();
    let shown = top_up_view(&shop, ricarica, carta).await?;
    let page = page_numbered(&pagina);
    statement_page(&shop, shown, page, "", None, StatusCode::OK).await
}

async fn statement_page(
    shop: &BuyerPage,
    shown: Option<TopUpView>,
    page: Page,
    typed_amount: &str,
    amount_error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let (account, entries, total) = shop
        .read(move |conn, user| {
            let account = prepaid::account_of_owner(conn, &user.id)?;
            let total = prepaid::entry_count(conn, &account.id)?;
            // An account's entries are numbered 1, 2, 3... and never removed, so the
            // page that skips `offset` of the newest starts below `total - offset + 1`.
            let before = (page.offset() > 0).then(|| total - page.offset() + 1);
            let entries = prepaid::entries(conn, &account.id, before, page.limit())?;
            Ok((account, entries, total))
        })
        .await?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "date": e.created_at.format("%d/%m/%Y %H:%M").to_string(),
                "kind": entry_kind_label(e.kind),
                "description": e.description,
                "amount": euro(e.amount),
                "balance_after": euro(e.balance_after),
            })
        })
        .collect();
    let (top_up, refresh, card_page) = match shown {
        Some(view) => (view.top_up, view.refresh, view.card_page),
        None => (Value::Null, false, None),
    };
    shop.render(
        status,
        "prepagato",
        json!({
            "title": "Conto prepagato",
            "balance": euro(account.balance),
            "entries": entries,
            "pager": pager("/negozio/prepagato", &[], page, total),
            "card": shop.state.card.is_some(),
            "top_up": top_up,
            "refresh": refresh,
            "card_page": card_page,
            "form": { "amount": typed_amount },
            "errors": { "amount": amount_error },
        }),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TopUpForm {
    amount: String,
}

/// "Ricarica con carta di credito": the top-up is stored, then the provider's page is
/// opened and the buyer sent on to it through the statement page, which shows the
/// top-up's state on the way back.
async fn top_up_by_card(shop: BuyerPage, CheckedForm(form): CheckedForm<TopUpForm>) -> PageResult {
    let Some(card) = shop.state.card.clone() else {
        return Err(CardError::Off.into());
    };
    // Typed the Italian way ("50,00") or not ("50.00").
    let typed = form.amount.trim().to_owned();
    let amount = match PositiveMoney::parse(&typed.replace(',', ".")) {
        Ok(amount) => amount,
        Err(_) => {
            let message = "Indica un importo maggiore di zero, come 50,00.".to_owned();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return statement_page(&shop, None, Page::default(), &typed, Some(message), status)
                .await;
        }
    };
    let buyer = prepaid::Buyer::of(&shop.user)?;
    let settings = card.clone();
    let requested = shop
        .read(move |conn, _| {
            match top_ups::request_by_card(conn, &buyer, amount, &settings, Utc::now()) {
                Ok(done) => Ok(Ok(done)),
                Err(error) => Ok(Err(refusal(error)?)),
            }
        })
        .await?;
    let (top_up, payment) = match requested {
        Ok(done) => done,
        Err(identity) => {
            let status = super::form_status(&identity);
            return statement_page(
                &shop,
                None,
                Page::default(),
                &typed,
                Some(identity.italian),
                status,
            )
            .await;
        }
    };
    let page = format!("/negozio/prepagato?ricarica={}", top_up.id);
    through_page(&shop.state, &card, &payment.id, &page).await
}

async fn order_list(shop: BuyerPage, query: web::Query<PageQuery>) -> PageResult {
    let page = page_numbered(&query.pagina);
    let list = shop
        .read(move |conn, user| {
            let (brand, owner) = (&user.brand_id, Some(user.id.as_str()));
            Ok(orders::list(conn, brand, owner, &Default::default(), page)?)
        })
        .await?;
    let (orders, pager) = rows_and_pager("/negozio/ordini", &[], page, list, |o| {
        json!({
            "id": o.id,
            "date": o.created_at.format("%d/%m/%Y").to_string(),
            "invoice_number": o.invoice_number,
            "status": order_status_label(o.status),
            "total": euro(o.gross_total),
            "coupons": o.coupon_count,
        })
    });
    let context = json!({ "title": "I tuoi ordini", "orders": orders, "pager": pager });
    shop.render(StatusCode::OK, "ordini", context)
}

async fn coupon_list(shop: BuyerPage, query: web::Query<PageQuery>) -> PageResult {
    let page = page_numbered(&query.pagina);
    let list = shop
        .read(move |conn, user| {
            coupons::page_for_owner(conn, &user.id, page, Utc::now()).map_err(WebError::storage)
        })
        .await?;
    let (coupons, pager) = rows_and_pager("/negozio/coupon", &[], page, list, |c| {
        json!({
            "hint": c.hint,
            "order_id": c.order_id,
            "product": c.product_name,
            "invoice_number": c.invoice_number,
            "status": c.status.italian(),
            "valid_until": c.valid_until.format("%d/%m/%Y").to_string(),
        })
    });
    shop.render(
        StatusCode::OK,
        "miei_coupon",
        json!({ "title": "I tuoi coupon", "coupons": coupons, "pager": pager }),
    )
}

/// The buyer's coupons as a CSV download, as the API's export.
async fn coupon_export(shop: BuyerPage) -> PageResult {
    let file = shop
        .read(|conn, user| {
            coupons::export::csv_for_owner(conn, &user.id, Utc::now()).map_err(WebError::storage)
        })
        .await?;
    Ok(crate::http::csv_download(file))
}

/// Public, like the API's: anyone holding a code may check it; rate-limited per address.
async fn check_coupon(
    state: State,
    request: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
) -> PageResult {
    let csrf = Csrf::of(&request);
    let typed = query.get("codice").cloned().unwrap_or_default();
    let mut context = json!({
        "title": "Verifica stato coupon",
        "user": null,
        "brand_name": null,
        "csrf_token": csrf.token,
        "codice": typed,
        "error": null,
        "result": null,
    });
    if typed.trim().is_empty() {
        return page(&state, &csrf, StatusCode::OK, "verifica", context);
    }
    let code = match CouponCode::parse(&typed) {
        Ok(code) => code,
        Err(_) => {
            context["error"] = json!(super::COUPON_CODE_INVALID);
            return page(
                &state,
                &csrf,
                StatusCode::UNPROCESSABLE_ENTITY,
                "verifica",
                context,
            );
        }
    };
    let client = crate::http::client_address(&request);
    let key = state.coupon_key.clone();
    let checked = with_conn(&state, move |conn| {
        Ok(coupons::public_status(
            conn,
            &key,
            &code,
            &client,
            Utc::now(),
        ))
    })
    .await?;
    match checked {
        Ok(status) => {
            context["result"] = json!({
                "status": status.status.italian(),
                "covers": covers_label(status.covers),
                "valid_until": status.valid_until.format("%d/%m/%Y").to_string(),
            });
            page(&state, &csrf, StatusCode::OK, "verifica", context)
        }
        Err(error) => {
            let identity = refusal(error)?;
            context["error"] = json!(identity.italian);
            let response = page(&state, &csrf, identity.kind.status, "verifica", context)?;
            Ok(with_retry_after(response, &identity))
        }
    }
}
