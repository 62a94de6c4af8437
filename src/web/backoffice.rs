//! The back-office pages (`/backoffice`): for operators of a brand.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{see_other, Operator, WebError};

/// (name, source) of the back-office templates, registered with the shop's.
pub const TEMPLATES: &[(&str, &str)] = &[];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/backoffice", web::get().to(home));
}

async fn home(_request: HttpRequest, Operator(_user): Operator) -> Result<HttpResponse, WebError> {
    Ok(see_other("/backoffice/pagamenti"))
}
