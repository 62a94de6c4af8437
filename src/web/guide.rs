//! The front door and what a newcomer needs before and after buying: `/` leads to the
//! shop (the only place a person starts from), and the renewal instructions page, the
//! one the layout's footer and the coupon email link.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{page, see_other, Csrf, PageResult};
use crate::http::State;

/// Where the renewal instructions are, for the layout and the emails.
pub const RENEWAL_GUIDE: &str = "/negozio/come-rinnovare";

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages! { cfg;
        get  "/" => front_door,
        get  RENEWAL_GUIDE => renewal_guide,
    }
}

/// A browser or a client that opens the bare address is sent to the shop; nothing else
/// lives at `/` (the API is under `/api/v1`).
async fn front_door() -> HttpResponse {
    see_other("/negozio")
}

async fn renewal_guide(state: State, request: HttpRequest) -> PageResult {
    let csrf = Csrf::of(&request);
    page(
        &state,
        &csrf,
        StatusCode::OK,
        "come_rinnovare",
        json!({
            "title": "Come rinnovare",
            "user": null,
            "brand_name": null,
            "csrf_token": csrf.token,
            // The page says what the rule is, not a copy of it.
            "window_days": crate::lookup::RENEWAL_WINDOW_DAYS,
        }),
    )
}
