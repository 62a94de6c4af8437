//! The steps of the purchase before its summary: the payment method, the holder's
//! codice fiscale, their devices with the coupons proposed for them, or the manual list of
//! products. Each is a GET form that carries the earlier choices in its query string.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use chrono::Utc;
use serde_json::{json, Value};

use super::{billing_first, method, status_of};
use crate::billing;
use crate::catalog::{self, RequestedLine};
use crate::http::italian::{certificate_kind_label, payment_method_label};
use crate::http::AppState;
use crate::lookup;
use crate::orders::checkout::{self, Cart};
use crate::orders::PaymentMethod;
use crate::prepaid;
use crate::registry::CodiceFiscale;
use crate::web::{
    euro, merge, page, refusal, with_retry_after, BuyerPage, PageResult, Query, WebError,
};

pub(super) async fn choose_method(shop: BuyerPage) -> PageResult {
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
    let choice = |method: PaymentMethod, help: Value| json!({ "value": method.as_str(), "label": payment_method_label(method), "help": help });
    let mut methods = vec![
        json!({ "value": "prepaid", "label": "Preleva da Conto Prepagato",
                "help": format!("(saldo disponibile: {})", euro(balance)) }),
        choice(PaymentMethod::BankTransfer, Value::Null),
        choice(PaymentMethod::PostalSlip, Value::Null),
        choice(
            PaymentMethod::Cheque,
            json!(format!(
                "(intestato a {}, con il codice di prenotazione nella causale)",
                shop.brand.name
            )),
        ),
    ];
    if shop.state.card.is_some() {
        methods.push(choice(
            PaymentMethod::Card,
            json!("(paghi sulla pagina sicura del circuito di pagamento; i codici arrivano via email pochi minuti dopo il pagamento)"),
        ));
    }
    shop.render(
        StatusCode::OK,
        "metodo",
        json!({ "title": "Modalità di pagamento", "offered": methods.len(), "methods": methods }),
    )
}

pub(super) async fn holder(
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

pub(super) async fn devices(shop: BuyerPage, request: HttpRequest, query: Query) -> PageResult {
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
    let asker = shop.lookup_asker(&request);
    let found = shop
        .read(move |conn, user| {
            Ok(catalog::propose_for_holder(
                conn,
                &asker,
                &user.brand_id,
                &codice_fiscale,
                now,
            ))
        })
        .await?;
    let catalog::HolderProposal {
        found,
        proposed,
        products,
    } = match found {
        Ok(proposal) => proposal,
        // As the API answers: an unknown holder or device, nothing that fits, too many
        // lookups, each with its own message and status; only a storage failure is an
        // error page.
        Err(error) => {
            let identity = refusal(error)?;
            let response = holder_again(identity.kind.status, identity.italian.clone())?;
            return Ok(with_retry_after(response, &identity));
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
                        "kind": certificate_kind_label(c.certificate.kind),
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
                        "kind": certificate_kind_label(c.certificate.kind),
                        "expires_on": c.certificate.not_after.format("%d/%m/%Y").to_string(),
                    })
                })
        })
        .collect()
}

/// The warning's context: the certificates at risk and how long a payment may take.
pub(super) fn late_context(
    state: &AppState,
    method: PaymentMethod,
    found: &lookup::Lookup,
) -> Value {
    let reservation = state.config.reservation;
    json!({
        "late": late_for(method, reservation, found),
        "late_method": method.italian(),
        "reservation_days": reservation.num_days(),
        "clearing_days": crate::transfer::CLEARING_WORKING_DAYS,
        "card": state.card.is_some(),
    })
}

pub(super) async fn manual_list(shop: BuyerPage, query: Query) -> PageResult {
    let method = method(&shop.state, query.get("metodo"))?;
    manual_page(&shop, method, &query, None, StatusCode::OK).await
}

pub(super) async fn manual_page(
    shop: &BuyerPage,
    method: PaymentMethod,
    quantities: &HashMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let products = shop
        .read(|conn, user| {
            catalog::visible_to(conn, &user.brand_id, user.role).map_err(WebError::storage)
        })
        .await?;
    let products: Vec<Value> = products
        .iter()
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
pub(super) fn requested(fields: &HashMap<String, String>) -> Result<Vec<RequestedLine>, String> {
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
pub(super) async fn cart(
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
pub(super) async fn choose_again(
    shop: &BuyerPage,
    method: PaymentMethod,
    fields: &HashMap<String, String>,
    message: String,
) -> PageResult {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    manual_page(shop, method, fields, Some(message), status).await
}
