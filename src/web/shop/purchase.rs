//! The summary, priced by the domain, and the purchase it confirms: one POST with a CSRF
//! token and the idempotency key made with the summary, so a double click buys once.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::Utc;
use serde_json::{json, Value};

use super::card::to_card_page;
use super::choose::{cart, choose_again, late_context, requested};
use super::{billing_first, method};
use crate::auth::confirmation::ConfirmationError;
use crate::http::italian::payment_method_label;
use crate::idempotency::{self, IdempotencyError, IdempotencyKey};
use crate::lookup;
use crate::orders::checkout::{self, Cart, CheckoutError};
use crate::orders::{self, OrderError, PaymentMethod};
use crate::prepaid::PrepaidError;
use crate::registry::CodiceFiscale;
use crate::web::{
    euro, merge, refusal, see_other, with_conn, BuyerPage, Csrf, PageResult, Query, WebError,
};

pub(super) async fn summary(shop: BuyerPage, request: HttpRequest, query: Query) -> PageResult {
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
            let asker = shop.lookup_asker(&request);
            let found = shop
                .read(move |conn, user| {
                    Ok(lookup::lookup_as(
                        conn,
                        &asker,
                        &codice_fiscale,
                        &user.brand_id,
                        Utc::now(),
                    )?)
                })
                .await?;
            Some(found)
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
                "method_label": payment_method_label(method),
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

pub(super) async fn confirm(
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
    let buyer = match orders::Buyer::of(user) {
        Ok(buyer) => buyer,
        Err(unconfirmed) => return unconfirmed_page(&shop, unconfirmed),
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
    shop.render(identity.kind.status, "errore", context)
}

/// An unconfirmed buyer at the purchase: why not (the layout's banner beside it has the
/// button that sends the link again).
fn unconfirmed_page(shop: &BuyerPage, refused: ConfirmationError) -> PageResult {
    let identity = refusal(refused)?;
    let context = json!({ "title": "Conferma la tua email", "detail": identity.italian });
    shop.render(identity.kind.status, "errore", context)
}
