//! The brand's orders, found by RF code, invoice number, email or state.

use actix_web::web;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::money::Money;
use crate::orders::{self, OrderFilter, OrderStatus};
use crate::web::{euro, OperatorPage, PageResult};

use super::{
    filters_status, or_dash, order_status_label, page_numbered, query_string, rows_and_pager,
    state_filter, time_it, url_segment,
};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OrdersQuery {
    /// An RF code, invoice number, email address or order id: whatever the customer quotes.
    cerca: String,
    stato: String,
    /// The unmatched payment the operator is looking an order for (the link from its page):
    /// each order found then links back to that payment with the order filled in.
    pagamento: String,
    pagina: String,
}

pub(super) async fn orders_page(visit: OperatorPage, query: web::Query<OrdersQuery>) -> PageResult {
    let query = query.into_inner();
    let (search, stato, payment_id) = (
        query.cerca.trim(),
        query.stato.trim(),
        query.pagamento.trim(),
    );
    let mut filter = match search {
        "" => OrderFilter::default(),
        text => OrderFilter::from_search_text(text),
    };
    let mut stato_error = None;
    match state_filter::<OrderStatus>(stato) {
        Ok(Some(status)) => filter.status = Some(status),
        Ok(None) => {}
        Err(refused) => stato_error = Some(refused),
    }
    let valid = stato_error.is_none();
    let page = page_numbered(&query.pagina);
    let (brand, found) = visit
        .read_list(valid, move |conn, brand_id| {
            Ok(orders::list(conn, brand_id, None, &filter, page)?)
        })
        .await?;
    let filters = [
        ("cerca", search),
        ("stato", stato),
        ("pagamento", payment_id),
    ];
    let total = found.total;
    let (rows, pager) = rows_and_pager("/backoffice/ordini", &filters, page, found, |o| {
        json!({
            "id": o.id,
            "date": time_it(o.created_at),
            "email": o.email,
            "total": euro(o.gross_total),
            "due": (o.amount_due() > Money::ZERO).then(|| euro(o.amount_due())),
            "status_label": order_status_label(o.status),
            "reference": o.payment_reference.as_ref().map(|r| r.printed()),
            "invoice_number": or_dash(o.invoice_number.clone()),
            "resend_link": o.status.resends_codes().then(|| {
                format!("/backoffice/coupon?{}", query_string(&[("ordine", &o.id)]))
            }),
            "match_link": (!payment_id.is_empty()).then(|| format!(
                "/backoffice/pagamenti/{}?{}",
                url_segment(payment_id),
                query_string(&[("ordine", &o.id)])
            )),
        })
    });
    let statuses: Vec<Value> = OrderStatus::ALL
        .iter()
        .map(|s| json!({ "value": s.as_str(), "label": order_status_label(*s), "selected": s.as_str() == stato }))
        .collect();
    let searched = !search.is_empty() || !stato.is_empty();
    visit.render(
        &brand,
        "Ordini",
        filters_status(valid),
        "bo_ordini",
        json!({
            "filters": { "cerca": search, "stato": stato, "pagamento": payment_id },
            "errors": { "stato": stato_error },
            "statuses": statuses,
            "searched": searched,
            "found": match (searched, total) {
                (true, 1) => "1 ordine trovato".to_owned(),
                (true, n) => format!("{n} ordini trovati"),
                (false, 1) => "L'unico ordine".to_owned(),
                (false, n) => format!("{n} ordini, dal più recente"),
            },
            "orders": rows,
            "pager": pager,
        }),
    )
}
