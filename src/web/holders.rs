//! "Più titolari": a registration officer or a studio pastes (or uploads as a text or CSV
//! file) the codici fiscali of many holders, sees every device of the brand with its
//! renewal status and the coupons proposed, downloads the table as CSV, and goes on to the
//! usual summary and confirmation with every proposed coupon in one order. The same domain
//! functions as `POST /api/v1/holders/bulk-lookup`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use base64::Engine;
use chrono::Utc;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::shop::{method, status_of};
use super::{
    euro, form_status, refusal, with_retry_after, BuyerPage, Csrf, Identity, PageResult, WebError,
};
use crate::catalog::bulk::{self, BulkLookup, HolderList};
use crate::http::italian::certificate_kind_label;
use crate::orders::PaymentMethod;

const PATH: &str = "/negozio/acquista/titolari";
const TITLE: &str = "Più titolari";
/// The whole form: a thousand codici fiscali, even as CSV lines with names, fit well.
const FORM_MAX_BYTES: usize = 512 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages! { cfg;
        get  PATH => form_page,
        post PATH => look_up,
    }
}

async fn form_page(shop: BuyerPage, query: super::Query) -> PageResult {
    let method = method(&shop.state, query.get("metodo"))?;
    render_form(&shop, method, "", None, StatusCode::OK)
}

/// The form, with what was pasted and why it was refused, if it was.
fn render_form(
    shop: &BuyerPage,
    method: PaymentMethod,
    pasted: &str,
    error: Option<&str>,
    status: StatusCode,
) -> PageResult {
    shop.render(
        status,
        "titolari",
        json!({
            "title": TITLE,
            "metodo": method.as_str(),
            "pasted": pasted,
            "error": error,
            "max_holders": bulk::MAX_HOLDERS,
            // The wide layout: a table of eight columns, read on a desktop screen.
            "desk": true,
            "result": null,
        }),
    )
}

/// The form again with a refusal, and its `Retry-After` when it is a rate limit.
fn refused(
    shop: &BuyerPage,
    method: PaymentMethod,
    pasted: &str,
    identity: Identity,
) -> PageResult {
    let status = form_status(&identity);
    let response = render_form(shop, method, pasted, Some(&identity.italian), status)?;
    Ok(with_retry_after(response, &identity))
}

async fn look_up(shop: BuyerPage, request: HttpRequest, payload: web::Payload) -> PageResult {
    let form = read_form(&request, payload).await?;
    Csrf::check(&request, &form.csrf_token)?;
    let method = method(&shop.state, Some(&form.metodo))?;
    // A file chosen is the list; otherwise what was pasted.
    let text = match &form.file {
        Some(file) if !file.is_empty() => String::from_utf8_lossy(file).into_owned(),
        _ => form.pasted.clone(),
    };
    let list = match HolderList::parse(&text) {
        Ok(list) => list,
        Err(error) => return refused(&shop, method, &form.pasted, refusal(error)?),
    };
    let asker = shop.lookup_asker(&request);
    let found = shop
        .read(move |conn, user| {
            let now = Utc::now();
            Ok(bulk::lookup_many_as(
                conn,
                &asker,
                &list,
                &user.brand_id,
                now,
            ))
        })
        .await?;
    let found = match found {
        Ok(found) => found,
        Err(error) => return refused(&shop, method, &form.pasted, refusal(error)?),
    };
    let result = result_context(&found)?;
    shop.render(
        StatusCode::OK,
        "titolari",
        json!({
            "title": TITLE,
            "metodo": method.as_str(),
            "pasted": form.pasted,
            "error": null,
            "max_holders": bulk::MAX_HOLDERS,
            // The wide layout: a table of eight columns, read on a desktop screen.
            "desk": true,
            "result": result,
        }),
    )
}

/// The table, the coupons proposed, the CSV to download and the way to the summary.
fn result_context(found: &BulkLookup) -> Result<Value, WebError> {
    let mut rows = Vec::new();
    for holder in &found.holders {
        let Some(named) = &holder.holder else {
            rows.push(json!({
                "line": holder.line,
                "codice_fiscale": holder.codice_fiscale.as_str(),
                "holder": null,
                "status": "nessun dispositivo di questo negozio intestato a questo codice fiscale",
                "status_code": "unknown",
            }));
            continue;
        };
        let name = format!("{} {}", named.given_name, named.surname);
        for device in &holder.devices {
            for certificate in &device.view.certificates {
                let (code, text) = status_of(&certificate.renewal);
                let renewable = certificate.renewal.is_renewable();
                let coupon = found
                    .coupon_for(device, certificate.certificate.kind)
                    .filter(|_| renewable);
                let text = if renewable && device.no_fitting_product() {
                    format!("{text}; il negozio non vende un coupon adatto")
                } else {
                    text
                };
                rows.push(json!({
                    "line": holder.line,
                    "codice_fiscale": holder.codice_fiscale.as_str(),
                    "holder": name,
                    "serial": device.view.device.serial_number,
                    "kind": certificate_kind_label(certificate.certificate.kind),
                    "expires_on": certificate.certificate.not_after.format("%d/%m/%Y").to_string(),
                    "status": text,
                    "status_code": code,
                    "coupon": coupon.map(|p| p.name.clone()),
                }));
            }
        }
    }
    let proposals: Vec<Value> = found
        .proposed
        .iter()
        .filter_map(|line| {
            let product = found.products.iter().find(|p| p.id == line.product)?;
            Some(json!({ "name": product.name, "price": euro(product.net_price), "quantity": line.quantity }))
        })
        .collect();
    // The summary takes `q_<code>` quantities, as the manual list sends them.
    let order_fields: Vec<Value> = found
        .proposed
        .iter()
        .filter_map(|line| {
            let product = found.products.iter().find(|p| p.id == line.product)?;
            Some(json!({ "name": format!("q_{}", product.code), "value": line.quantity }))
        })
        .collect();
    // The file goes with the page, so downloading it is no second lookup (each counts).
    let csv = found.csv().map_err(WebError::Unexpected)?;
    let csv = base64::engine::general_purpose::STANDARD.encode(csv);
    Ok(json!({
        "holders": found.holders.len(),
        "found": found.found(),
        "rows": rows,
        "proposals": proposals,
        "coupons": found.coupons(),
        "order_fields": order_fields,
        "csv_url": format!("data:text/csv;charset=utf-8;base64,{csv}"),
        "csv_name": format!("titolari-{}.csv", found.as_of.format("%Y%m%d")),
    }))
}

/// The parts of the page's form.
#[derive(Default)]
struct HolderForm {
    csrf_token: String,
    metodo: String,
    pasted: String,
    file: Option<Vec<u8>>,
}

/// Reads the multipart form (the file field needs it), at most [`FORM_MAX_BYTES`] in
/// all; parts other than the form's are read and dropped. The CSRF token is checked by
/// the caller once the form is read: the bound keeps a forged form from costing much.
async fn read_form(request: &HttpRequest, payload: web::Payload) -> Result<HolderForm, WebError> {
    if !crate::http::is_multipart_form(request) {
        // Not the page's form: it cannot carry the token.
        return Err(WebError::Csrf);
    }
    let too_large = || WebError::Refused {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!(
            "Il modulo supera {} KB: l'elenco può avere al massimo {} titolari.",
            FORM_MAX_BYTES / 1024,
            bulk::MAX_HOLDERS
        ),
    };
    let unreadable = |e: actix_multipart::MultipartError| WebError::Refused {
        status: StatusCode::BAD_REQUEST,
        message: format!("Il modulo non si può leggere: {e}."),
    };
    let mut multipart = actix_multipart::Multipart::new(request.headers(), payload);
    let mut form = HolderForm::default();
    let mut read = 0;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(unreadable)?;
        let (name, _) = crate::http::part_names(&field);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(unreadable)?;
            read += chunk.len();
            if read > FORM_MAX_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "csrf_token" => form.csrf_token = text(),
            "metodo" => form.metodo = text(),
            "codici_fiscali" => form.pasted = text(),
            "file" => form.file = Some(bytes),
            _ => {}
        }
    }
    Ok(form)
}
