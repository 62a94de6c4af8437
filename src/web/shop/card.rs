//! A card order's way to the provider's page and back: opening the page, asking again,
//! and what the order's page says while the provider decides.

use actix_web::web;
use serde_json::{json, Value};

use crate::card::{CardPayment, CardProgress, CardSettings, CardStatus};
use crate::http::{AppState, State};
use crate::orders::{self, OrderStatus, PaymentMethod};
use crate::payments::card::CardError;
use crate::web::{see_other, with_conn, BuyerPage, CheckedForm, NoFields, PageResult, WebError};

/// A page of rinnovo saying the provider's page could not be opened (`?carta=`).
pub(in crate::web) const CARD_UNAVAILABLE: &str = "non-disponibile";
/// A page of rinnovo that moves on to the provider's page just opened (`?carta=`).
pub(in crate::web) const CARD_OPENED: &str = "apri";

/// Opens the provider's page of card payment `payment_id` and sends the buyer on to it
/// through `back`, the page of rinnovo that shows the payment: the pages' policy lets forms
/// lead only to rinnovo, so a form's redirect straight to the provider would be blocked by
/// the browser; a page's own move is not. What was bought or asked for is already
/// committed, so a provider that does not answer is no reason to lose it: `back` says so
/// and its button asks again (the same card payment, the same page).
pub(in crate::web) async fn through_page(
    state: &AppState,
    card: &CardSettings,
    payment_id: &str,
    back: &str,
) -> PageResult {
    let separator = if back.contains('?') { '&' } else { '?' };
    match state.open_card_page(card, payment_id).await {
        Ok(_) => Ok(see_other(&format!("{back}{separator}carta={CARD_OPENED}"))),
        Err(CardError::Provider(error)) => {
            tracing::warn!(%error, payment = payment_id, "card page not opened: the buyer may retry");
            Ok(see_other(&format!(
                "{back}{separator}carta={CARD_UNAVAILABLE}"
            )))
        }
        Err(other) => Err(other.into()),
    }
}

/// Sends the buyer to the provider's page of the order's card payment, through the
/// order's page ([`through_page`]).
pub(super) async fn to_card_page(state: &State, order_id: &str) -> PageResult {
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
    through_page(state, card, &payment.id, &order_page).await
}

/// "Paga con carta": the provider's page of the buyer's order again, after the provider
/// did not answer or the buyer came back without paying.
pub(super) async fn pay_by_card(
    shop: BuyerPage,
    id: web::Path<String>,
    _: CheckedForm<NoFields>,
) -> PageResult {
    let id = id.into_inner();
    let lookup = id.clone();
    shop.read(move |conn, user| {
        orders::visible(conn, &user.into(), &lookup)?;
        Ok(())
    })
    .await?;
    to_card_page(&shop.state, &id).await
}

/// What the order's page says of its card payment. A return from the provider's page
/// proves nothing: the page shows what the provider has told rinnovo, and reloads itself
/// while that may still change.
pub(super) fn card_context(
    order: &orders::Order,
    payment: Option<&CardPayment>,
    offered: bool,
    shown: Option<&str>,
) -> Value {
    if order.payment_method != PaymentMethod::Card {
        return json!({ "card": false });
    }
    let progress = CardProgress::of(
        order.status == OrderStatus::AwaitingPayment,
        matches!(order.status, OrderStatus::Expired | OrderStatus::Cancelled),
        payment,
    );
    let waiting = progress.waiting;
    json!({
        "card": true,
        "card_waiting": waiting,
        "card_held": progress.held,
        "card_ended": progress.ended,
        "card_can_pay": progress.page_open && offered,
        "card_unavailable": waiting && shown == Some(CARD_UNAVAILABLE),
        // Just opened: on to the provider's page (the link says where, should the move
        // not happen).
        "card_page": payment
            .filter(|p| waiting && shown == Some(CARD_OPENED) && p.status == CardStatus::Open)
            .and_then(|p| p.checkout_url.clone()),
        "refresh": progress.may_still_change(),
    })
}
