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

use super::{euro, merge, page, see_other, with_conn, Csrf, Query, Shopper, WebError};
use crate::auth::{password, sessions, users, web_sessions, NewPassword, NewUser, Role, User};
use crate::brands::{self, Brand};
use crate::catalog::{self, Product, RequestedLine};
use crate::email_address::EmailAddress;
use crate::http::AppState;
use crate::idempotency::{self, IdempotencyError, IdempotencyKey};
use crate::lookup::{self, Eligibility, RenewalStatus};
use crate::orders::{self, OrderError, OrderStatus, PaymentMethod};
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
        .route("/negozio/{brand}/accedi", web::get().to(sign_in_form))
        .route("/negozio/{brand}/accedi", web::post().to(sign_in))
        .route("/negozio/{brand}/iscriviti", web::get().to(sign_up_form))
        .route("/negozio/{brand}/iscriviti", web::post().to(sign_up));
}

pub(super) async fn brand_named(
    state: &web::Data<AppState>,
    id: String,
) -> Result<Brand, WebError> {
    with_conn(state, move |conn| {
        brands::find(conn, &id)?
            .ok_or_else(|| WebError::NotFound(format!("Nessun negozio '{id}'.")))
    })
    .await
}

async fn home(state: web::Data<AppState>, request: HttpRequest) -> Result<HttpResponse, WebError> {
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
        json!({ "title": "Rinnovo firma digitale", "brands": brands, "user": null, "brand_name": null, "csrf_token": csrf.token }),
    )
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(super::pages::STYLESHEET)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn anonymous_context(brand: &Brand, csrf: &Csrf, title: &str) -> Value {
    json!({ "title": title, "brand": brand.id, "brand_name": brand.name, "user": null, "csrf_token": csrf.token })
}

async fn sign_in_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    brand: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let brand = brand_named(&state, brand.into_inner()).await?;
    let csrf = Csrf::of(&request);
    let context = merge(
        anonymous_context(&brand, &csrf, "Accedi"),
        json!({ "email": "", "error": null }),
    );
    page(&state, &csrf, StatusCode::OK, "accedi", context)
}

/// Signs the user in: a server-side session in an HttpOnly cookie, then the shop.
fn signed_in(
    state: &AppState,
    brand: &str,
    role: Role,
    token: &str,
) -> Result<HttpResponse, WebError> {
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
    state: web::Data<AppState>,
    request: HttpRequest,
    brand: web::Path<String>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, WebError> {
    Csrf::check(&request, &form.csrf_token)?;
    let brand = brand_named(&state, brand.into_inner()).await?;
    let SignInForm {
        email, password, ..
    } = form.into_inner();
    let client = crate::http::client_address(&request);
    let now = Utc::now();
    let (brand_id, typed) = (brand.id.clone(), email.clone());
    let login = with_conn(&state, move |conn| {
        sessions::start_login(conn, &brand_id, &typed, &client, now).map_err(login_error)
    })
    .await;
    let login = match login {
        Ok(login) => login,
        Err(WebError::Forbidden(message)) => {
            return refused_sign_in(&state, &request, &brand, &email, &message)
        }
        Err(other) => return Err(other),
    };
    let hash = login.password_hash.clone();
    let matches = web::block(move || password::verify(&password, hash.as_deref())).await?;
    let outcome = with_conn(&state, move |conn| {
        let user = sessions::close_attempt(conn, login, matches, now).map_err(login_error)?;
        Ok((user.role, web_sessions::start(conn, &user.id, now)?))
    })
    .await;
    match outcome {
        Ok((role, token)) => signed_in(&state, &brand.id, role, &token),
        Err(WebError::Forbidden(message)) => {
            refused_sign_in(&state, &request, &brand, &email, &message)
        }
        Err(other) => Err(other),
    }
}

fn login_error(error: sessions::SessionError) -> WebError {
    match error {
        sessions::SessionError::Throttled(t) => WebError::TooManyRequests(format!(
            "Troppi tentativi di accesso non riusciti: riprova tra {} secondi.",
            t.retry_after_seconds
        )),
        sessions::SessionError::InvalidCredentials
        | sessions::SessionError::InvalidRefreshToken => {
            WebError::Forbidden("Email o password errati.".into())
        }
        sessions::SessionError::Storage(e) => WebError::storage(e),
    }
}

fn refused_sign_in(
    state: &AppState,
    request: &HttpRequest,
    brand: &Brand,
    email: &str,
    message: &str,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(request);
    let context = merge(
        anonymous_context(brand, &csrf, "Accedi"),
        json!({ "email": email, "error": message }),
    );
    page(state, &csrf, StatusCode::UNAUTHORIZED, "accedi", context)
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn sign_up_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    brand: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let brand = brand_named(&state, brand.into_inner()).await?;
    let csrf = Csrf::of(&request);
    let context = merge(
        anonymous_context(&brand, &csrf, "Iscriviti"),
        json!({ "name": "", "email": "", "error": null, "errors": {} }),
    );
    page(&state, &csrf, StatusCode::OK, "iscriviti", context)
}

async fn sign_up(
    state: web::Data<AppState>,
    request: HttpRequest,
    brand: web::Path<String>,
    form: web::Form<SignUpForm>,
) -> Result<HttpResponse, WebError> {
    Csrf::check(&request, &form.csrf_token)?;
    let brand = brand_named(&state, brand.into_inner()).await?;
    let form = form.into_inner();
    let mut errors = BTreeMap::new();
    let name = PersonName::parse(&form.name)
        .map_err(|_| {
            errors.insert(
                "name",
                "Indica il nome o la ragione sociale (al massimo 200 caratteri).",
            )
        })
        .ok();
    let email = EmailAddress::parse(&form.email)
        .map_err(|_| {
            errors.insert(
                "email",
                "Indica un indirizzo email valido, come nome@esempio.it.",
            )
        })
        .ok();
    let password = match NewPassword::parse(&form.password, email.as_ref()) {
        Ok(password) => Some(password),
        Err(e) => {
            errors.insert("password", password_rule_in_italian(&e));
            None
        }
    };
    let (Some(name), Some(email), Some(password)) = (name, email, password) else {
        return sign_up_again(&state, &request, &brand, &form, errors, None);
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
    let created = with_conn(&state, move |conn| {
        match users::create(conn, new, &crate::audit::Actor::System, now) {
            Ok(user) => Ok(Ok(web_sessions::start(conn, &user.id, now)?)),
            Err(crate::auth::UserError::EmailTaken) => Ok(Err(())),
            Err(e) => Err(WebError::storage(anyhow::anyhow!(e))),
        }
    })
    .await?;
    match created {
        Ok(token) => signed_in(&state, &brand.id, Role::Customer, &token),
        Err(()) => sign_up_again(
            &state,
            &request,
            &brand,
            &form,
            BTreeMap::from([(
                "email",
                "Esiste già un account con questa email: accedi, o usa un'altra email.",
            )]),
            None,
        ),
    }
}

pub(super) fn password_rule_in_italian(error: &crate::auth::PasswordError) -> &'static str {
    use crate::auth::PasswordError::*;
    match error {
        TooShort => "La password deve avere almeno 12 caratteri.",
        TooLong => "La password è troppo lunga.",
        TooRepetitive => "La password deve avere almeno 5 caratteri diversi.",
        Common => "Questa password è tra le più usate: scegline un'altra.",
        ContainsEmail => "La password non deve contenere l'indirizzo email.",
    }
}

fn sign_up_again(
    state: &AppState,
    request: &HttpRequest,
    brand: &Brand,
    form: &SignUpForm,
    errors: BTreeMap<&str, &str>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(request);
    let context = merge(
        anonymous_context(brand, &csrf, "Iscriviti"),
        json!({ "name": form.name, "email": form.email, "errors": errors, "error": error }),
    );
    page(
        state,
        &csrf,
        StatusCode::UNPROCESSABLE_ENTITY,
        "iscriviti",
        context,
    )
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

async fn sign_out(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    Csrf::check(&request, &form.csrf_token)?;
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

/// The payment methods the shop offers (cheques are for the back-office to record).
fn method(text: Option<&String>) -> PaymentMethod {
    match text.map(String::as_str) {
        Some("bank_transfer") => PaymentMethod::BankTransfer,
        Some("postal_slip") => PaymentMethod::PostalSlip,
        _ => PaymentMethod::Prepaid,
    }
}

fn method_label(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Prepaid => "Conto Prepagato",
        PaymentMethod::BankTransfer => "Bonifico bancario",
        PaymentMethod::PostalSlip => "Bollettino postale",
        PaymentMethod::Cheque => "Assegno",
    }
}

pub(super) async fn buyer_context(
    state: &web::Data<AppState>,
    user: &User,
    csrf: &Csrf,
) -> Result<(Brand, Value), WebError> {
    let brand_id = user.brand_id.clone();
    let brand = brand_named(state, brand_id).await?;
    let base = super::signed_in_context(user, &brand.name, csrf);
    Ok((brand, base))
}

async fn choose_method(
    state: web::Data<AppState>,
    request: HttpRequest,
    Shopper(user): Shopper,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let (_, base) = buyer_context(&state, &user, &csrf).await?;
    let owner = user.id.clone();
    let balance = with_conn(&state, move |conn| {
        prepaid::account_of_owner(conn, &owner)
            .map(|a| a.balance)
            .map_err(|e| WebError::storage(anyhow::anyhow!(e)))
    })
    .await?;
    let context = merge(
        base,
        json!({ "title": "Modalità di pagamento", "balance": euro(balance) }),
    );
    page(&state, &csrf, StatusCode::OK, "metodo", context)
}

async fn holder(
    state: web::Data<AppState>,
    request: HttpRequest,
    Shopper(user): Shopper,
    query: Query,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let (_, base) = buyer_context(&state, &user, &csrf).await?;
    let method = method(query.get("metodo"));
    let context = merge(
        base,
        json!({ "title": "Titolare", "metodo": method.as_str(), "codice_fiscale": "", "error": null }),
    );
    page(&state, &csrf, StatusCode::OK, "titolare", context)
}

fn kind_label(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Signature => "Sottoscrizione",
        CertificateKind::Authentication => "Autenticazione",
    }
}

fn status_of(renewal: &RenewalStatus) -> (&'static str, String) {
    match renewal {
        RenewalStatus::Revoked => ("revoked", "revocato".into()),
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

async fn devices(
    state: web::Data<AppState>,
    request: HttpRequest,
    Shopper(user): Shopper,
    query: Query,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let (_, base) = buyer_context(&state, &user, &csrf).await?;
    let method = method(query.get("metodo"));
    let typed = query.get("codice_fiscale").cloned().unwrap_or_default();
    let codice_fiscale = match CodiceFiscale::parse(&typed) {
        Ok(cf) => cf,
        Err(e) => {
            let context = merge(
                base,
                json!({ "title": "Titolare", "metodo": method.as_str(), "codice_fiscale": typed,
                        "error": format!("Codice fiscale non valido: {}.", e.in_italian()) }),
            );
            return page(
                &state,
                &csrf,
                StatusCode::UNPROCESSABLE_ENTITY,
                "titolare",
                context,
            );
        }
    };
    let brand = user.brand_id.clone();
    let now = Utc::now();
    let found = with_conn(&state, move |conn| {
        let found = match lookup::lookup(conn, &codice_fiscale, &brand, now) {
            Ok(found) => found,
            Err(lookup::LookupError::UnknownHolder) => return Ok(None),
            Err(lookup::LookupError::Storage(e)) => return Err(WebError::storage(e)),
        };
        let mut proposed: Vec<RequestedLine> = Vec::new();
        for device in &found.devices {
            if device.renew_together.is_empty() {
                continue;
            }
            let lines = catalog::propose_for_device(
                conn,
                &brand,
                &codice_fiscale,
                &device.device.serial_number,
                now,
            )
            .map_err(|e| WebError::storage(anyhow::anyhow!("{e}")))?;
            for line in lines {
                match proposed.iter_mut().find(|p| p.product == line.product) {
                    Some(existing) => existing.quantity += line.quantity,
                    None => proposed.push(line),
                }
            }
        }
        let products = catalog::list(conn, &brand, false).map_err(WebError::storage)?;
        Ok(Some((found, proposed, products)))
    })
    .await?;
    let Some((found, proposed, products)) = found else {
        let context = merge(
            base,
            json!({ "title": "Titolare", "metodo": method.as_str(), "codice_fiscale": typed,
                    "error": "Nessun titolare registrato con questo codice fiscale." }),
        );
        return page(&state, &csrf, StatusCode::NOT_FOUND, "titolare", context);
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
    let context = merge(
        base,
        json!({
            "title": "Dispositivi",
            "metodo": method.as_str(),
            "holder": format!("{} {}", found.holder.given_name, found.holder.surname),
            "devices": devices,
            "proposals": proposals,
        }),
    );
    page(&state, &csrf, StatusCode::OK, "dispositivi", context)
}

async fn manual_list(
    state: web::Data<AppState>,
    request: HttpRequest,
    Shopper(user): Shopper,
    query: Query,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let method = method(query.get("metodo"));
    manual_page(&state, &csrf, &user, method, &query, None, StatusCode::OK).await
}

async fn manual_page(
    state: &web::Data<AppState>,
    csrf: &Csrf,
    user: &User,
    method: PaymentMethod,
    quantities: &HashMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let (_, base) = buyer_context(state, user, csrf).await?;
    let brand = user.brand_id.clone();
    let products = with_conn(state, move |conn| {
        catalog::list(conn, &brand, false).map_err(WebError::storage)
    })
    .await?;
    let products: Vec<Value> = products
        .iter()
        .filter(|p| p.active)
        .map(|p| {
            let quantity = quantities
                .get(&format!("q_{}", p.code))
                .cloned()
                .unwrap_or_else(|| "0".into());
            json!({ "code": p.code, "name": p.name, "price": euro(p.net_price), "quantity": quantity })
        })
        .collect();
    let context = merge(
        base,
        json!({ "title": "Scelta dei coupon", "metodo": method.as_str(), "products": products, "error": error }),
    );
    page(state, csrf, status, "coupon", context)
}

/// The `q_<CODE>` quantities of a form, checked against the role's cap. `Err` is the
/// message for the manual list.
fn requested(fields: &HashMap<String, String>, role: Role) -> Result<Vec<RequestedLine>, String> {
    let cap = catalog::max_coupons_per_order(role);
    let mut lines = Vec::new();
    let mut total: u64 = 0;
    let mut codes: Vec<&String> = fields.keys().filter(|k| k.starts_with("q_")).collect();
    codes.sort();
    for key in codes {
        let text = fields[key].trim();
        if text.is_empty() {
            continue;
        }
        let quantity: u32 = text
            .parse()
            .map_err(|_| format!("La quantità di {} deve essere un numero intero.", &key[2..]))?;
        if quantity == 0 {
            continue;
        }
        total += u64::from(quantity);
        lines.push(RequestedLine {
            product: key[2..].to_owned(),
            quantity,
        });
    }
    if lines.is_empty() {
        return Err("Scegli almeno un coupon.".into());
    }
    if total > u64::from(cap) {
        return Err(format!(
            "In un ordine puoi acquistare al massimo {cap} coupon; ne hai scelti {total}."
        ));
    }
    Ok(lines)
}

/// The buyer's choice, checked and priced: what the summary shows and the purchase buys.
struct Cart {
    lines: Vec<RequestedLine>,
    products: Vec<(Product, u32)>,
    quote: catalog::Quote,
}

/// The `q_<CODE>` fields checked against the role's cap and priced from the catalog.
/// `Ok(Err(message))` is for the manual list: a wrong choice, not a failure.
async fn cart(
    state: &web::Data<AppState>,
    user: &User,
    fields: &HashMap<String, String>,
) -> Result<Result<Cart, String>, WebError> {
    let lines = match requested(fields, user.role) {
        Ok(lines) => lines,
        Err(message) => return Ok(Err(message)),
    };
    let brand = user.brand_id.clone();
    with_conn(state, move |conn| {
        match catalog::resolve(conn, &brand, &lines) {
            Ok(products) => {
                let items: Vec<_> = products.iter().map(|(p, q)| (p.priced(), *q)).collect();
                let quote = catalog::quote(&items);
                Ok(Ok(Cart {
                    lines,
                    products,
                    quote,
                }))
            }
            Err(catalog::CatalogError::Storage(e)) => Err(WebError::storage(e)),
            Err(other) => Ok(Err(format!("Scelta non valida: {other}."))),
        }
    })
    .await
}

async fn summary(
    state: web::Data<AppState>,
    request: HttpRequest,
    Shopper(user): Shopper,
    query: Query,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let method = method(query.get("metodo"));
    let Cart {
        products, quote, ..
    } = match cart(&state, &user, &query).await? {
        Ok(cart) => cart,
        Err(message) => {
            return manual_page(
                &state,
                &csrf,
                &user,
                method,
                &query,
                Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let (_, base) = buyer_context(&state, &user, &csrf).await?;
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
    let context = merge(
        base,
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
    );
    page(&state, &csrf, StatusCode::OK, "riepilogo", context)
}

async fn confirm(
    state: web::Data<AppState>,
    request: HttpRequest,
    Shopper(user): Shopper,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    Csrf::check(
        &request,
        form.get("csrf_token").map(String::as_str).unwrap_or(""),
    )?;
    let csrf = Csrf::of(&request);
    let method = method(form.get("metodo"));
    let key = IdempotencyKey::parse(form.get("chiave").map(String::as_str).unwrap_or(""))
        .map_err(|_| WebError::Csrf)?;
    let Cart {
        lines,
        products,
        quote,
    } = match cart(&state, &user, &form).await? {
        Ok(cart) => cart,
        Err(message) => {
            return manual_page(
                &state,
                &csrf,
                &user,
                method,
                &form,
                Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
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
    let buyer = orders::Buyer {
        user_id: user.id.clone(),
        brand_id: user.brand_id.clone(),
        name: user.name.clone(),
        email: user.email.to_string(),
    };
    let placed = with_conn(&state, move |conn| {
        let now = Utc::now();
        let outcome = idempotency::run(conn, &buyer.user_id, &key, &fingerprint, now, |conn| {
            let order = if method.is_transfer() {
                orders::place_by_transfer(conn, &buyer, method, &products, &quote, app.config.reservation, now)?
            } else {
                orders::place_prepaid(conn, &app.coupon_key, &buyer, &products, &quote, &app.config.public_url, now)?
            };
            Ok::<_, OrderError>((201, order.id))
        });
        match outcome {
            Ok(outcome) => Ok(Ok(outcome.body)),
            Err(IdempotencyError::KeyReused) => Err(WebError::Csrf),
            Err(IdempotencyError::Work(OrderError::Prepaid(PrepaidError::InsufficientFunds {
                balance,
                requested,
            }))) => Ok(Err(format!(
                "Il saldo del conto prepagato ({}) non basta: servono {}. Ricarica il conto, o scegli il pagamento con bonifico o bollettino.",
                euro(balance),
                euro(requested)
            ))),
            Err(IdempotencyError::Work(e)) => Err(WebError::storage(anyhow::anyhow!(e))),
        }
    })
    .await?;
    match placed {
        Ok(order_id) => Ok(see_other(&format!("/negozio/ordini/{order_id}"))),
        Err(message) => {
            let (_, base) = buyer_context(&state, &user, &csrf).await?;
            let context = merge(
                base,
                json!({ "title": "Saldo insufficiente", "detail": message }),
            );
            page(&state, &csrf, StatusCode::CONFLICT, "errore", context)
        }
    }
}

async fn order(
    state: web::Data<AppState>,
    request: HttpRequest,
    Shopper(user): Shopper,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let csrf = Csrf::of(&request);
    let (brand, base) = buyer_context(&state, &user, &csrf).await?;
    let id = id.into_inner();
    let order = with_conn(&state, move |conn| {
        orders::find(conn, &id).map_err(|e| WebError::storage(anyhow::anyhow!(e)))
    })
    .await?
    // Someone else's order is as unknown as a made-up one.
    .filter(|o| o.user_id == user.id)
    .ok_or_else(|| WebError::NotFound("Ordine non trovato.".into()))?;
    let lines: Vec<Value> = order
        .lines
        .iter()
        .map(|l| json!({ "name": l.product_name, "quantity": l.quantity, "net": euro(l.net_amount) }))
        .collect();
    let prepaid = order.payment_method == PaymentMethod::Prepaid;
    let context = merge(
        base,
        json!({
            "title": if prepaid { "Acquisto concluso" } else { "In attesa del versamento" },
            "prepaid": prepaid,
            "fulfilled": order.status == OrderStatus::Fulfilled,
            "invoice_number": order.invoice_number,
            "email": order.email,
            "rf_code": order.payment_reference.as_ref().map(|r| r.printed()),
            "amount": euro(order.amount_due()),
            "iban": (order.payment_method == PaymentMethod::BankTransfer).then_some(&brand.iban),
            "postal_account": (order.payment_method == PaymentMethod::PostalSlip).then_some(&brand.postal_account),
            "beneficiary": brand.name,
            "reserved_until": order.reserved_until.map(|t| t.format("%d/%m/%Y").to_string()),
            "lines": lines,
        }),
    );
    page(&state, &csrf, StatusCode::OK, "ordine", context)
}
