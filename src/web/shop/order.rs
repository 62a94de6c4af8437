//! The buyer's order after the purchase: its page (how to pay, the codes' email, the
//! invoice and credit notes), the documents' downloads, and the codes sent again.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde_json::{json, Value};

use super::card::card_context;
use crate::http::downloads::{pdf_download, xml_download};
use crate::invoices;
use crate::orders::{self, resend, OrderStatus, PaymentMethod};
use crate::web::{
    document_row, euro, merge, see_other, BuyerPage, CheckedForm, NoFields, PageResult, Query,
    WebError,
};

pub(super) async fn show(shop: BuyerPage, id: web::Path<String>, query: Query) -> PageResult {
    // `?codici=N`: the page after N new codes were sent.
    let codes_resent = query.get("codici").and_then(|n| n.parse::<usize>().ok());
    let id = id.into_inner();
    let (order, documents, card_payment) = shop
        .read(move |conn, user| {
            let order = orders::visible(conn, &user.into(), &id)?;
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
pub(super) async fn document_xml(shop: BuyerPage, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let document = shop
        .read(move |conn, user| Ok(invoices::document(conn, &user.into(), &id)?))
        .await?;
    Ok(xml_download(&document.file_name, document.xml))
}

/// The buyer's document's courtesy copy, downloaded with the page's session.
pub(super) async fn document_pdf(shop: BuyerPage, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let copy = shop
        .read(move |conn, user| Ok(invoices::courtesy_copy(conn, &user.into(), &id)?))
        .await?;
    Ok(pdf_download(copy))
}

/// "Invia di nuovo i codici": the unused codes of the buyer's order are replaced and the
/// new ones emailed ([`resend::resend_unused_codes`], as the API does).
pub(super) async fn resend_codes(
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
