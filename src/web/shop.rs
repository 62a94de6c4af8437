//! The shop, as the source documents describe it: sign-in or sign-up for a brand, then
//! the purchase path: payment method → the holder's codice fiscale → the devices and the
//! proposed coupons (or the manual list) → summary → confirmation. The steps before the
//! confirmation are GET forms carrying their choices in the query string (bookmarkable,
//! no state kept on the server); only the purchase itself is a POST, with a CSRF token
//! and an idempotency key made when the summary was shown, so a double click buys once.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    document_row, euro, merge, page, refusal, see_other, with_conn, BuyerPage, CheckedForm, Csrf,
    NoFields, PageResult, Query, VisitorPage, WebError,
};
use crate::auth::confirmation::{self, ConfirmationError};
use crate::auth::{
    account, password, sessions, web_sessions, NewPassword, NewUser, Role, UserError,
};
use crate::billing;
use crate::brands;
use crate::card::{CardPayment, CardStatus};
use crate::catalog::{self, Product, ProposalError, RequestedLine};
use crate::email_address::EmailAddress;
use crate::http::card_payments;
use crate::http::downloads::{pdf_download, xml_download};
use crate::http::AppState;
use crate::idempotency::{self, IdempotencyError, IdempotencyKey};
use crate::invoices;
use crate::lookup::{self, Eligibility, RenewalStatus};
use crate::orders::checkout::{self, Cart, CheckoutError};
use crate::orders::{self, resend, OrderError, OrderStatus, PaymentMethod};
use crate::payments::card::{sessions as card_sessions, CardError};
use crate::prepaid::{self, PrepaidError};
use crate::registry::{CertificateKind, CodiceFiscale};
use crate::validation::PersonName;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/negozio", web::get().to(home))
        .route("/negozio/stile.css", web::get().to(stylesheet))
        .route("/negozio/esci", web::post().to(sign_out))
        .route("/negozio/acquista", web::get().to(choose_method))
        .route("/negozio/acquista/titolare", web::get().to(holder))
        .route("/negozio/acquista/dispositivi", web::get().to(devices))
        .route("/negozio/acquista/coupon", web::get().to(manual_list))
        .route("/negozio/acquista/riepilogo", web::get().to(summary))
        .route("/negozio/acquista/conferma", web::post().to(confirm))
        .route("/negozio/ordini/{id}", web::get().to(order))
        .route("/negozio/fatture/{id}/xml", web::get().to(document_xml))
        .route("/negozio/fatture/{id}/pdf", web::get().to(document_pdf))
        .route(
            "/negozio/ordini/{id}/invia-codici",
            web::post().to(resend_codes),
        )
        .route(
            "/negozio/ordini/{id}/paga-con-carta",
            web::post().to(pay_by_card),
        )
        .route("/negozio/{brand}/accedi", web::get().to(sign_in_form))
        .route("/negozio/{brand}/accedi", web::post().to(sign_in))
        .route("/negozio/{brand}/iscriviti", web::get().to(sign_up_form))
        .route("/negozio/{brand}/iscriviti", web::post().to(sign_up));
}

async fn home(state: web::Data<AppState>, request: HttpRequest) -> PageResult {
    let csrf = Csrf::of(&request);
    let all = with_conn(&state, |conn| Ok(brands::list(conn)?)).await?;
    let brands: Vec<Value> = all
        .iter()
        .map(|b| json!({ "id": b.id, "name": b.name }))
        .collect();
    page(
        &state,
        &csrf,
        StatusCode::OK,
        "negozio",
        // No title of its own: the layout names the site, once.
        json!({ "title": null, "brands": brands, "user": null, "brand_name": null, "csrf_token": csrf.token }),
    )
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(super::pages::STYLESHEET)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInForm {
    email: String,
    password: String,
}

const SIGN_IN: (&str, &str) = ("accedi", "Accedi");
const SIGN_UP: (&str, &str) = ("iscriviti", "Iscriviti");

async fn sign_in_form(visitor: VisitorPage, query: Query) -> PageResult {
    // After a password reset (`?password=nuova`), say so above the form.
    let notice = (query.get("password").map(String::as_str) == Some("nuova"))
        .then_some("La nuova password è impostata: accedi con quella.");
    let fields = json!({ "email": "", "error": null, "notice": notice });
    visitor.render(StatusCode::OK, SIGN_IN, fields)
}

/// Signs the user in: a server-side session in an HttpOnly cookie, then the shop.
fn signed_in(state: &AppState, brand: &str, role: Role, token: &str) -> PageResult {
    let mut response = see_other(super::home_of(role));
    let brand_cookie = actix_web::cookie::Cookie::build(super::BRAND_COOKIE, brand.to_owned())
        .path("/")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .secure(super::secure(state))
        .permanent()
        .finish();
    for cookie in [super::session_cookie(state, token), brand_cookie] {
        response
            .add_cookie(&cookie)
            .map_err(|e| WebError::Unexpected(e.into()))?;
    }
    Ok(response)
}

async fn sign_in(
    CheckedForm(form): CheckedForm<SignInForm>,
    visitor: VisitorPage,
    request: HttpRequest,
) -> PageResult {
    let VisitorPage { state, brand, .. } = &visitor;
    let SignInForm { email, password } = form;
    let client = crate::http::client_address(&request);
    let now = Utc::now();
    let (brand_id, typed) = (brand.id.clone(), email.clone());
    let login = with_conn(state, move |conn| {
        Ok(sessions::start_login(conn, &brand_id, &typed, &client, now))
    })
    .await?;
    let login = match login {
        Ok(login) => login,
        Err(error) => return sign_in_refused(&visitor, &email, error),
    };
    let hash = login.password_hash.clone();
    let matches = web::block(move || password::verify(&password, hash.as_deref())).await?;
    let outcome = with_conn(state, move |conn| {
        match sessions::close_attempt(conn, login, matches, now) {
            Ok(user) => Ok(Ok((user.role, web_sessions::start(conn, &user.id, now)?))),
            Err(error) => Ok(Err(error)),
        }
    })
    .await?;
    match outcome {
        Ok((role, token)) => signed_in(state, &brand.id, role, &token),
        Err(error) => sign_in_refused(&visitor, &email, error),
    }
}

/// Wrong credentials or a disabled account: the form again, with the message;
/// throttling: its error page.
fn sign_in_refused(
    visitor: &VisitorPage,
    email: &str,
    error: sessions::SessionError,
) -> PageResult {
    let identity = refusal(error)?;
    // Wrong credentials, or a disabled account (told only once the password matched).
    if identity.status != StatusCode::UNAUTHORIZED && identity.slug != "account-disabled" {
        return Err(identity.into());
    }
    let fields = json!({ "email": email, "error": identity.italian, "notice": null });
    visitor.render(identity.status, SIGN_IN, fields)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignUpForm {
    name: String,
    email: String,
    password: String,
}

async fn sign_up_form(visitor: VisitorPage) -> PageResult {
    let fields = json!({ "name": "", "email": "", "error": null, "errors": {} });
    visitor.render(StatusCode::OK, SIGN_UP, fields)
}

async fn sign_up(CheckedForm(form): CheckedForm<SignUpForm>, visitor: VisitorPage) -> PageResult {
    let VisitorPage { state, brand, .. } = &visitor;
    let mut errors = BTreeMap::new();
    let name = PersonName::parse(&form.name)
        .map_err(|e| errors.insert("name", crate::http::italian::person_name_rule(&e)))
        .ok();
    let email = EmailAddress::parse(&form.email)
        .map_err(|e| errors.insert("email", crate::http::italian::email_rule(&e).to_owned()))
        .ok();
    let password = match NewPassword::parse(&form.password, email.as_ref()) {
        Ok(password) => Some(password),
        Err(e) => {
            errors.insert(
                "password",
                crate::http::italian::password_rule(&e).to_owned(),
            );
            None
        }
    };
    let (Some(name), Some(email), Some(password)) = (name, email, password) else {
        return sign_up_again(&visitor, &form, errors);
    };
    let new = NewUser {
        brand_id: brand.id.clone(),
        email,
        name,
        password,
        role: Role::Customer,
        codice_fiscale: None,
    };
    let now = Utc::now();
    let public_url = state.config.public_url.clone();
    let created = with_conn(state, move |conn| {
        match account::sign_up(conn, new, &public_url, now) {
            Ok(user) => Ok(Ok(web_sessions::start(conn, &user.id, now)?)),
            Err(taken @ UserError::EmailTaken) => Ok(Err(refusal(taken)?)),
            Err(other) => Err(other.into()),
        }
    })
    .await?;
    match created {
        Ok(token) => signed_in(state, &brand.id, Role::Customer, &token),
        Err(taken) => {
            let message = format!("{} Accedi, o usa un'altra email.", taken.italian);
            let errors = BTreeMap::from([("email", message)]);
            sign_up_again(&visitor, &form, errors)
        }
    }
}

fn sign_up_again(
    visitor: &VisitorPage,
    form: &SignUpForm,
    errors: BTreeMap<&str, String>,
) -> PageResult {
    let fields = json!({ "name": form.name, "email": form.email, "errors": errors, "error": null });
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    visitor.render(status, SIGN_UP, fields)
}

async fn sign_out(
    state: web::Data<AppState>,
    request: HttpRequest,
    _: CheckedForm<NoFields>,
) -> PageResult {
    let brand = super::brand_hint(&request);
    if let Some(token) = request
        .cookie(super::SESSION_COOKIE)
        .map(|c| c.value().to_owned())
    {
        with_conn(&state, move |conn| Ok(web_sessions::end(conn, &token)?)).await?;
    }
    let mut response = see_other(&format!("/negozio/{brand}/accedi"));
    response
        .add_removal_cookie(&super::expired_cookie(super::SESSION_COOKIE))
        .map_err(|e| WebError::Unexpected(e.into()))?;
    Ok(response)
}

/// The payment methods the shop offers: the guide's (a cheque is paid like a postal
/// slip, with the order's RF code, and matched when it shows on the statement); without
/// `metodo` the shop proposes the prepaid account. Any other value is refused rather than
/// read as prepaid: a page must never charge the account for a method the
/// customer did not choose. The card only when a provider is configured: otherwise an
/// order placed by card could never be paid.
pub(super) fn method(state: &AppState, text: Option<&String>) -> Result<PaymentMethod, WebError> {
    match text.map(String::as_str) {
        None | Some("prepaid") => Ok(PaymentMethod::Prepaid),
        Some("bank_transfer") => Ok(PaymentMethod::BankTransfer),
        Some("postal_slip") => Ok(PaymentMethod::PostalSlip),
        Some("cheque") => Ok(PaymentMethod::Cheque),
        Some("card") if state.card.is_some() => Ok(PaymentMethod::Card),
        Some(_) => Err(WebError::Refused {
            status: StatusCode::BAD_REQUEST,
            message: "Metodo di pagamento sconosciuto: scegli conto prepagato, bonifico \
                      bancario, bollettino postale o assegno."
                .into(),
        }),
    }
}

fn method_label(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Prepaid => "Conto Prepagato",
        PaymentMethod::BankTransfer => "Bonifico bancario",
        PaymentMethod::PostalSlip => "Bollettino postale",
        PaymentMethod::Cheque => "Assegno",
        PaymentMethod::Card => "Carta di credito",
    }
}

/// The billing form, saying why, and back to the purchase once saved.
fn billing_first() -> HttpResponse {
    see_other(&format!("{}?dopo=acquista", super::billing::PATH))
}

async fn choose_method(shop: BuyerPage) -> PageResult {
    let (balance, has_billing) = shop
        .read(|conn, user| {
            let balance = prepaid::account_of_owner(conn, &user.id)?.balance;
            Ok((balance, billing::profile_of(conn, &user.id)?.is_some()))
        })
        .await?;
    // Every order is invoiced: first who to invoice, then the purchase.
    if !has_billing {
        return Ok(billing_first());
    }
    // The choices the page shows, so that the count it states is theirs.
    let mut methods = vec![
        json!({ "value": "prepaid", "label": "Preleva da Conto Prepagato",
                "help": format!("(saldo disponibile: {})", euro(balance)) }),
        json!({ "value": "bank_transfer", "label": "Bonifico bancario", "help": null }),
        json!({ "value": "postal_slip", "label": "Bollettino postale", "help": null }),
        json!({ "value": "cheque", "label": "Assegno",
                "help": format!("(intestato a {}, con il codice di prenotazione nella causale)",
                                shop.brand.name) }),
    ];
    if shop.state.card.is_some() {
        methods.push(json!({ "value": "card", "label": "Carta di credito",
            "help": "(paghi sulla pagina sicura del circuito di pagamento; i codici arrivano via email pochi minuti dopo il pagamento)" }));
    }
    shop.render(
        StatusCode::OK,
        "metodo",
        json!({ "title": "Modalità di pagamento", "offered": methods.len(), "methods": methods }),
    )
}

async fn holder(
    BuyerPage {
        state, csrf, base, ..
    }: BuyerPage,
    query: Query,
) -> PageResult {
    let method = method(&state, query.get("metodo"))?;
    let context = merge(
        base,
        json!({ "title": "Titolare", "metodo": method.as_str(), "codice_fiscale": "", "error": null }),
    );
    page(&state, &csrf, StatusCode::OK, "titolare", context)
}

pub(super) fn kind_label(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Signature => "Sottoscrizione",
        CertificateKind::Authentication => "Autenticazione",
    }
}

pub(super) fn status_of(renewal: &RenewalStatus) -> (&'static str, String) {
    match renewal {
        RenewalStatus::Revoked => ("revoked", "revocato".into()),
        RenewalStatus::Superseded => ("superseded", "sostituito dal suo rinnovo".into()),
        RenewalStatus::DeviceRenewedEnough { .. } => (
            "renewal-limit",
            "non rinnovabile: il dispositivo è già stato rinnovato il numero massimo di volte \
             consentito, serve un dispositivo nuovo"
                .into(),
        ),
        RenewalStatus::DeviceEndOfLife { end_of_life, years } => (
            "end-of-life",
            format!(
                "non rinnovabile: il dispositivo è a fine vita dal {} ({years} anni dalla prima \
                 attivazione), serve un dispositivo nuovo",
                end_of_life.format("%d/%m/%Y")
            ),
        ),
        RenewalStatus::RenewalPending { .. } => ("pending", "rinnovo in corso".into()),
        RenewalStatus::ReadyToInstall { .. } => ("ready", "nuovo certificato da installare".into()),
        RenewalStatus::Eligibility(Eligibility::Renewable { days_left, .. }) => (
            "renewable",
            format!("rinnovabile ora (scade tra {days_left} giorni)"),
        ),
        RenewalStatus::Eligibility(Eligibility::NotYetRenewable { window_opens_at }) => (
            "not-yet",
            format!(
                "non ancora rinnovabile (dal {})",
                window_opens_at.format("%d/%m/%Y")
            ),
        ),
        RenewalStatus::Eligibility(Eligibility::Expired { .. }) => {
            ("expired", "scaduto: non rinnovabile".into())
        }
    }
}

async fn devices(shop: BuyerPage, request: HttpRequest, query: Query) -> PageResult {
    let method = method(&shop.state, query.get("metodo"))?;
    let typed = query.get("codice_fiscale").cloned().unwrap_or_default();
    // The holder form again, with why the lookup gave nothing to show.
    let holder_again = |status: StatusCode, error: String| {
        let context = json!({ "title": "Titolare", "metodo": method.as_str(), "codice_fiscale": typed, "error": error });
        shop.render(status, "titolare", context)
    };
    let codice_fiscale = match CodiceFiscale::parse(&typed) {
        Ok(cf) => cf,
        Err(e) => {
            let error = format!("Codice fiscale non valido: {}.", e.in_italian());
            return holder_again(StatusCode::UNPROCESSABLE_ENTITY, error);
        }
    };
    let now = Utc::now();
    let limits = shop.state.config.lookup_limits;
    let policy = shop.state.config.renewal_policy;
    let caller = shop.lookup_caller(&request);
    let found = shop
        .read(move |conn, user| {
            Ok(holder_proposal(
                conn,
                &policy,
                &limits,
                &caller,
                &user.brand_id,
                &codice_fiscale,
                now,
            ))
        })
        .await?;
    let (found, proposed, products) = match found {
        Ok(found) => found,
        // As the API answers: an unknown holder or device, nothing that fits, too many
        // lookups, each with its own message and status; only a storage failure is an
        // error page.
        Err(error) => {
            let identity = refusal(error)?;
            let retry_after = identity.retry_after_seconds();
            let mut response = holder_again(identity.status, identity.italian)?;
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(seconds),
                );
            }
            return Ok(response);
        }
    };
    let devices: Vec<Value> = found
        .devices
        .iter()
        .map(|device| {
            let certificates: Vec<Value> = device
                .certificates
                .iter()
                .map(|c| {
                    let (code, text) = status_of(&c.renewal);
                    json!({
                        "kind": kind_label(c.certificate.kind),
                        "expires_on": c.certificate.not_after.format("%d/%m/%Y").to_string(),
                        "status": text,
                        "status_code": code,
                    })
                })
                .collect();
            json!({
                "serial": device.device.serial_number,
                "certificates": certificates,
                "both": device.renew_together.len() == 2,
            })
        })
        .collect();
    let proposals: Vec<Value> = proposed
        .iter()
        .filter_map(|line| {
            products
                .iter()
                .find(|p| p.id == line.product || p.code == line.product)
                .map(|p| {
                    json!({ "code": p.code, "name": p.name, "price": euro(p.net_price), "quantity": line.quantity })
                })
        })
        .collect();
    let late = late_context(&shop.state, method, &found);
    shop.render(
        StatusCode::OK,
        "dispositivi",
        merge(
            json!({
                "title": "Dispositivi",
                "metodo": method.as_str(),
                "holder": format!("{} {}", found.holder.given_name, found.holder.surname),
                "codice_fiscale": found.holder.codice_fiscale.as_str(),
                "devices": devices,
                "proposals": proposals,
            }),
            late,
        ),
    )
}

/// The holder's devices and the coupons proposed for the renewable ones (summed over the
/// devices), with the brand's products to name them.
fn holder_proposal(
    conn: &mut crate::db::DbConnection,
    policy: &lookup::RenewalPolicy,
    limits: &lookup::LookupLimits,
    caller: &lookup::Caller,
    brand: &str,
    codice_fiscale: &CodiceFiscale,
    now: chrono::DateTime<Utc>,
) -> Result<(lookup::Lookup, Vec<RequestedLine>, Vec<Product>), ProposalError> {
    let found = lookup::lookup_as(conn, policy, limits, caller, codice_fiscale, brand, now)?;
    let mut proposed: Vec<RequestedLine> = Vec::new();
    for device in found
        .devices
        .iter()
        .filter(|d| !d.renew_together.is_empty())
    {
        let serial = &device.device.serial_number;
        for line in catalog::propose_for_device(conn, policy, brand, codice_fiscale, serial, now)? {
            match proposed.iter_mut().find(|p| p.product == line.product) {
                Some(existing) => existing.quantity += line.quantity,
                None => proposed.push(line),
            }
        }
    }
    let products = catalog::list(conn, brand, false).map_err(ProposalError::Storage)?;
    Ok((found, proposed, products))
}

/// The certificates of the holder's flow (the ones renewable now) that may expire before a
/// payment by `method` reaches us, so before their coupon is sent: each as the warning
/// names it. Warned and not refused: the reservation is the longest a payment may take,
/// and a transfer made today is usually on time; the buyer is told the risk and the
/// methods that pay at once.
fn late_for(
    method: PaymentMethod,
    reservation: chrono::Duration,
    found: &lookup::Lookup,
) -> Vec<Value> {
    let Some(paid_at_latest) = method.paid_at_latest(reservation, found.as_of) else {
        return Vec::new();
    };
    found
        .devices
        .iter()
        .flat_map(|device| {
            device
                .certificates
                .iter()
                .filter(|c| c.renewal.is_renewable() && c.certificate.not_after < paid_at_latest)
                .map(|c| {
                    json!({
                        "serial": device.device.serial_number,
                        "kind": kind_label(c.certificate.kind),
                        "expires_on": c.certificate.not_after.format("%d/%m/%Y").to_string(),
                    })
                })
        })
        .collect()
}

/// The warning's context: the certificates at risk and how long a payment may take.
fn late_context(state: &AppState, method: PaymentMethod, found: &lookup::Lookup) -> Value {
    let reservation = state.config.reservation;
    json!({
        "late": late_for(method, reservation, found),
        "late_method": method.italian(),
        "reservation_days": reservation.num_days(),
        "clearing_days": crate::transfer::CLEARING_WORKING_DAYS,
        "card": state.card.is_some(),
    })
}

async fn manual_list(shop: BuyerPage, query: Query) -> PageResult {
    let method = method(&shop.state, query.get("metodo"))?;
    manual_page(&shop, method, &query, None, StatusCode::OK).await
}

async fn manual_page(
    shop: &BuyerPage,
    method: PaymentMethod,
    quantities: &HashMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let products = shop
        .read(|conn, user| catalog::list(conn, &user.brand_id, false).map_err(WebError::storage))
        .await?;
    let products: Vec<Value> = products
        .iter()
        .filter(|p| p.active)
        .map(|p| {
            let quantity = quantities
                .get(&format!("q_{}", p.code))
                .cloned()
                .unwrap_or_else(|| "0".into());
            json!({
                "code": p.code,
                "name": p.name,
                "price": euro(p.net_price),
                "quantity": quantity,
                "unavailable": p.unavailable.as_ref().map(|n| n.as_str()),
            })
        })
        .collect();
    shop.render(
        status,
        "coupon",
        json!({ "title": "Scelta dei coupon", "metodo": method.as_str(), "products": products, "error": error }),
    )
}

/// The `q_<CODE>` quantities of a form, as lines (zero and blank skipped). `Err` is the
/// message for the manual list; the role's cap is the domain's to check.
fn requested(fields: &HashMap<String, String>) -> Result<Vec<RequestedLine>, String> {
    let mut codes: Vec<&String> = fields.keys().filter(|k| k.starts_with("q_")).collect();
    codes.sort();
    let mut lines = Vec::new();
    for key in codes {
        let text = fields[key].trim();
        if text.is_empty() {
            continue;
        }
        let code = &key[2..];
        // The message says what to type: 0 (or nothing) leaves a product out.
        let quantity: u32 = match text.parse::<i64>() {
            Ok(n) if n < 0 => {
                return Err(format!(
                    "La quantità di {code} non può essere negativa: indica quanti coupon vuoi, o 0 per non acquistarlo."
                ))
            }
            Ok(n) => u32::try_from(n).unwrap_or(u32::MAX),
            Err(_) => {
                return Err(format!(
                    "La quantità di {code} deve essere un numero intero, come 1 o 2 (0 per non acquistarlo)."
                ))
            }
        };
        if quantity > 0 {
            lines.push(RequestedLine {
                product: key[2..].to_owned(),
                quantity,
            });
        }
    }
    Ok(lines)
}

/// The choice of the form, checked and priced by the domain. `Ok(Err(message))` is for
/// the manual list: a wrong choice, not a failure.
async fn cart(
    shop: &BuyerPage,
    fields: &HashMap<String, String>,
) -> Result<Result<(Vec<RequestedLine>, Cart), String>, WebError> {
    let lines = match requested(fields) {
        Ok(lines) => lines,
        Err(message) => return Ok(Err(message)),
    };
    shop.read(
        move |conn, user| match checkout::price(conn, &user.brand_id, user.role, &lines) {
            Ok(cart) => Ok(Ok((lines, cart))),
            Err(error) => Ok(Err(refusal(error)?.italian)),
        },
    )
    .await
}

/// The manual list again, with why the choice was refused.
async fn choose_again(
    shop: &BuyerPage,
    method: PaymentMethod,
    fields: &HashMap<String, String>,
    message: String,
) -> PageResult {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    manual_page(shop, method, fields, Some(message), status).await
}

async fn summary(shop: BuyerPage, request: HttpRequest, query: Query) -> PageResult {
    let method = method(&shop.state, query.get("metodo"))?;
    let (_, Cart { products, quote }) = match cart(&shop, &query).await? {
        Ok(cart) => cart,
        Err(message) => return choose_again(&shop, method, &query, message).await,
    };
    // The holder's flow carries the codice fiscale: the summary names the holder whose
    // certificates the coupons renew, looked up again (and counted, as every lookup is:
    // a summary must be no way around the limits).
    let holder = match query.get("codice_fiscale").filter(|cf| !cf.is_empty()) {
        None => None,
        Some(typed) => {
            let Ok(codice_fiscale) = CodiceFiscale::parse(typed) else {
                return Err(WebError::Refused {
                    status: StatusCode::BAD_REQUEST,
                    message: "Codice fiscale del titolare non valido.".into(),
                });
            };
            let limits = shop.state.config.lookup_limits;
            let policy = shop.state.config.renewal_policy;
            let caller = shop.lookup_caller(&request);
            let found = shop
                .read(move |conn, user| {
                    Ok(lookup::lookup_as(
                        conn,
                        &policy,
                        &limits,
                        &caller,
                        &codice_fiscale,
                        &user.brand_id,
                        Utc::now(),
                    ))
                })
                .await?;
            match found {
                Ok(found) => Some(found),
                Err(error) => {
                    let identity = refusal(error)?;
                    return Err(WebError::Refused {
                        status: identity.status,
                        message: identity.italian,
                    });
                }
            }
        }
    };
    let holder_context = match &holder {
        Some(found) => merge(
            json!({
                "holder": {
                    "name": format!("{} {}", found.holder.given_name, found.holder.surname),
                    "codice_fiscale": found.holder.codice_fiscale.as_str(),
                },
            }),
            late_context(&shop.state, method, found),
        ),
        None => json!({ "holder": null, "late": [] }),
    };
    let lines: Vec<Value> = products
        .iter()
        .zip(&quote.lines)
        .map(|((product, quantity), line)| {
            json!({
                "code": product.code,
                "name": product.name,
                "quantity": quantity,
                "net": euro(line.net_amount),
                "vat_rate": format!("{:.2}", line.vat_rate.percent()).replace('.', ","),
                "gross": euro(line.informative_gross),
            })
        })
        .collect();
    shop.render(
        StatusCode::OK,
        "riepilogo",
        merge(
            json!({
                "title": "Riepilogo",
                "metodo": method.as_str(),
                "method_label": method_label(method),
                "lines": lines,
                "net_total": euro(quote.net_total),
                "vat_total": euro(quote.vat_total),
                "gross_total": euro(quote.gross_total),
                "idempotency_key": uuid::Uuid::new_v4().to_string(),
            }),
            holder_context,
        ),
    )
}

async fn confirm(
    request: HttpRequest,
    shop: BuyerPage,
    form: web::Form<HashMap<String, String>>,
) -> PageResult {
    let form = form.into_inner();
    Csrf::check(
        &request,
        form.get("csrf_token").map(String::as_str).unwrap_or(""),
    )?;
    let (state, user) = (&shop.state, &shop.user);
    let method = method(state, form.get("metodo"))?;
    let key = IdempotencyKey::parse(form.get("chiave").map(String::as_str).unwrap_or(""))
        .map_err(|_| WebError::Csrf)?;
    let lines = match requested(&form) {
        Ok(lines) => lines,
        Err(message) => return choose_again(&shop, method, &form, message).await,
    };
    // The same summary confirmed twice (a double click, a reload) is one purchase.
    let fingerprint = idempotency::fingerprint(&format!(
        "web-order|{}|{}",
        method.as_str(),
        lines
            .iter()
            .map(|l| format!("{}={}", l.product, l.quantity))
            .collect::<Vec<_>>()
            .join(",")
    ));
    let app = state.clone();
    let email = match confirmation::confirmed_email(user) {
        Ok(email) => email,
        Err(unconfirmed) => return unconfirmed_page(&shop, unconfirmed),
    };
    let buyer = orders::Buyer {
        user_id: user.id.clone(),
        brand_id: user.brand_id.clone(),
        name: user.name.clone(),
        email,
    };
    let role = user.role;
    let placed = with_conn(state, move |conn| {
        let now = Utc::now();
        let till = app.till();
        let outcome = idempotency::run(conn, &buyer.user_id, &key, &fingerprint, now, |conn| {
            let order = checkout::place_order(conn, &till, &buyer, role, method, &lines, now)?;
            Ok::<_, CheckoutError>((201, order.id))
        });
        match outcome {
            Ok(outcome) => Ok(Ok(outcome.body)),
            Err(IdempotencyError::KeyReused) => Err(WebError::Csrf),
            Err(IdempotencyError::Work(refused)) => Ok(Err(refused)),
        }
    })
    .await?;
    let refused = match placed {
        Ok(order_id) if method == PaymentMethod::Card => {
            return to_card_page(state, &order_id).await
        }
        Ok(order_id) => return Ok(see_other(&format!("/negozio/ordini/{order_id}"))),
        Err(refused) => refused,
    };
    if matches!(refused, CheckoutError::BillingDataMissing) {
        return Ok(billing_first());
    }
    let short_of_funds = matches!(
        refused,
        CheckoutError::Order(OrderError::Prepaid(PrepaidError::InsufficientFunds { .. }))
    );
    let identity = refusal(refused)?;
    if !short_of_funds {
        // A choice the summary accepted and the purchase did not (the catalog changed
        // meanwhile): the list again, with why.
        return choose_again(&shop, method, &form, identity.italian).await;
    }
    let detail = format!(
        "{} Ricarica il conto, o scegli il pagamento con bonifico o bollettino.",
        identity.italian
    );
    let context = json!({ "title": "Saldo insufficiente", "detail": detail });
    shop.render(identity.status, "errore", context)
}

/// An unconfirmed buyer at the purchase: why not (the layout's banner beside it has the
/// button that sends the link again).
fn unconfirmed_page(shop: &BuyerPage, refused: ConfirmationError) -> PageResult {
    let identity = refusal(refused)?;
    let context = json!({ "title": "Conferma la tua email", "detail": identity.italian });
    shop.render(identity.status, "errore", context)
}

/// The order's page saying the provider's page could not be opened (`?carta=`).
const CARD_UNAVAILABLE: &str = "non-disponibile";
/// The order's page that moves on to the provider's page just opened (`?carta=`).
const CARD_OPENED: &str = "apri";

/// Sends the buyer to the provider's page of the order's card payment, through the
/// order's page: the pages' policy lets forms lead only to rinnovo, so a form's redirect
/// straight to the provider would be blocked by the browser; a page's own move is not.
/// The order is already committed, so a provider that does not answer is no reason to
/// lose it: the order's page says so and its button asks again (the same card payment,
/// the same page).
async fn to_card_page(state: &web::Data<AppState>, order_id: &str) -> PageResult {
    let order_page = format!("/negozio/ordini/{order_id}");
    let Some(card) = state.card.as_ref() else {
        return Ok(see_other(&order_page));
    };
    let lookup = order_id.to_owned();
    let payment = with_conn(state, move |conn| {
        crate::card::store::of_order(conn, &lookup).map_err(WebError::storage)
    })
    .await?
    .ok_or(CardError::UnknownPayment)?;
    let opened = card_sessions::checkout_url(
        &state.pool,
        card,
        &state.config.public_url,
        &payment.id,
        card_payments::card_timing(state),
    )
    .await;
    match opened {
        Ok(_) => Ok(see_other(&format!("{order_page}?carta={CARD_OPENED}"))),
        Err(CardError::Provider(error)) => {
            tracing::warn!(%error, order = order_id, "card page not opened: the buyer may retry");
            Ok(see_other(&format!("{order_page}?carta={CARD_UNAVAILABLE}")))
        }
        Err(other) => Err(other.into()),
    }
}

/// "Paga con carta": the provider's page of the buyer's order again, after the provider
/// did not answer or the buyer came back without paying.
async fn pay_by_card(
    shop: BuyerPage,
    id: web::Path<String>,
    _: CheckedForm<NoFields>,
) -> PageResult {
    let id = id.into_inner();
    let lookup = id.clone();
    shop.read(move |conn, user| {
        orders::find(conn, &lookup)?
            .filter(|o| o.user_id == user.id)
            .ok_or(OrderError::NotFound)?;
        Ok(())
    })
    .await?;
    to_card_page(&shop.state, &id).await
}

/// What the order's page says of its card payment. A return from the provider's page
/// proves nothing: the page shows what the provider has told rinnovo, and reloads itself
/// while that may still change.
fn card_context(
    order: &orders::Order,
    payment: Option<&CardPayment>,
    offered: bool,
    shown: Option<&str>,
) -> Value {
    if order.payment_method != PaymentMethod::Card {
        return json!({ "card": false });
    }
    let awaiting = order.status == OrderStatus::AwaitingPayment;
    let status = payment.map(|p| p.status);
    let ended = matches!(order.status, OrderStatus::Expired | OrderStatus::Cancelled)
        || matches!(status, Some(CardStatus::Expired | CardStatus::Failed));
    let waiting = awaiting && !ended;
    json!({
        "card": true,
        "card_waiting": waiting,
        "card_held": awaiting && status == Some(CardStatus::Held),
        "card_ended": ended,
        "card_can_pay": waiting && offered && status.is_some_and(CardStatus::is_waiting),
        "card_unavailable": waiting && shown == Some(CARD_UNAVAILABLE),
        // Just opened: on to the provider's page (the link says where, should the move
        // not happen).
        "card_page": payment
            .filter(|p| waiting && shown == Some(CARD_OPENED) && p.status == CardStatus::Open)
            .and_then(|p| p.checkout_url.clone()),
        // A held payment waits for the back-office, not for the provider.
        "refresh": waiting && status != Some(CardStatus::Held),
    })
}

async fn order(shop: BuyerPage, id: web::Path<String>, query: Query) -> PageResult {
    // `?codici=N`: the page after N new codes were sent.
    let codes_resent = query.get("codici").and_then(|n| n.parse::<usize>().ok());
    let id = id.into_inner();
    let (order, documents, card_payment) = shop
        .read(move |conn, user| {
            let order = orders::find(conn, &id)?
                // Someone else's order is as unknown as a made-up one.
                .filter(|o| o.user_id == user.id)
                .ok_or(OrderError::NotFound)?;
            let documents = invoices::documents_of_order(conn, &user.into(), &id)?;
            let card_payment = match order.payment_method {
                PaymentMethod::Card => {
                    crate::card::store::of_order(conn, &id).map_err(WebError::storage)?
                }
                _ => None,
            };
            Ok((order, documents, card_payment))
        })
        .await?;
    let card = card_context(
        &order,
        card_payment.as_ref(),
        shop.state.card.is_some(),
        query.get("carta").map(String::as_str),
    );
    let documents: Vec<Value> = documents
        .iter()
        .map(|d| document_row(d, "/negozio/fatture"))
        .collect();
    let lines: Vec<Value> = order
        .lines
        .iter()
        .map(|l| json!({ "name": l.product_name, "quantity": l.quantity, "net": euro(l.net_amount) }))
        .collect();
    let prepaid = order.payment_method == PaymentMethod::Prepaid;
    let fulfilled = order.status == OrderStatus::Fulfilled;
    let by_card = order.payment_method == PaymentMethod::Card;
    // Paid at once (prepaid) or by card once the provider confirmed: the same words.
    let concluded = prepaid || (by_card && fulfilled);
    let title = if concluded {
        "Acquisto concluso"
    } else if by_card {
        "Pagamento con carta"
    } else {
        "In attesa del versamento"
    };
    let context = json!({
            "title": title,
            "prepaid": concluded,
            "fulfilled": order.status == OrderStatus::Fulfilled,
            "invoice_number": order.invoice_number,
            "email": order.email,
            "rf_code": order.payment_reference.as_ref().map(|r| r.printed()),
            "amount": euro(order.amount_due()),
            "iban": (order.payment_method == PaymentMethod::BankTransfer).then_some(&shop.brand.iban),
            "postal_account": (order.payment_method == PaymentMethod::PostalSlip).then_some(&shop.brand.postal_account),
            "beneficiary": shop.brand.name,
            "reserved_until": order.reserved_until.map(|t| t.format("%d/%m/%Y").to_string()),
            "lines": lines,
            "documents": documents,
            "order_id": order.id,
            "codes_resent": codes_resent,
            "account_email": shop.user.email.as_str(),
    });
    shop.render(StatusCode::OK, "ordine", merge(context, card))
}

/// The buyer's document's FatturaPA file, downloaded with the page's session.
async fn document_xml(shop: BuyerPage, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let document = shop
        .read(move |conn, user| Ok(invoices::document(conn, &user.into(), &id)?))
        .await?;
    Ok(xml_download(&document.file_name, document.xml))
}

/// The buyer's document's courtesy copy, downloaded with the page's session.
async fn document_pdf(shop: BuyerPage, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let copy = shop
        .read(move |conn, user| Ok(invoices::courtesy_copy(conn, &user.into(), &id)?))
        .await?;
    Ok(pdf_download(copy))
}

/// "Invia di nuovo i codici": the unused codes of the buyer's order are replaced and the
/// new ones emailed ([`resend::resend_unused_codes`], as the API does).
async fn resend_codes(
    shop: BuyerPage,
    id: web::Path<String>,
    _: CheckedForm<NoFields>,
) -> PageResult {
    let id = id.into_inner();
    let state = shop.state.clone();
    let order_id = id.clone();
    let resent = shop
        .read(move |conn, user| {
            Ok(resend::resend_unused_codes(
                conn,
                &state.coupon_key,
                &state.config.public_url,
                &resend::Requester::Owner {
                    user_id: &user.id,
                    brand_id: &user.brand_id,
                },
                &order_id,
                Utc::now(),
            )?)
        })
        .await?;
    // The id named an order of the buyer's, so it is a plain id fit for a URL.
    Ok(see_other(&format!(
        "/negozio/ordini/{id}?codici={}",
        resent.codes
    )))
}
