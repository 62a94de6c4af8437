//! Card payments over HTTP: the provider's notifications (signed, verified on the raw
//! body before anything is read), the buyer's way back to the provider's page, and the
//! back-office's list, detail and refunds. The rules are in `payments::card`.

use actix_web::{get, post};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract::{BackOffice, CurrentUser};
use super::json::JsonObject;
use super::operation::{backoffice_action, backoffice_list, Acting, Found, Listing};
use super::problem::kinds;
use super::query::{one_of_all, page_of};
use super::responses::{problem_response_type, NotOperator};
use super::{ApiError, ApiResult, AppState, Problem, State};
use crate::card::store::{self, RefundRow, RefundStatus};
use crate::card::{CardPayment, CardStatus};
use crate::money::Money;
use crate::payments::card::refunds::{self, Coupons};
use crate::payments::card::{notifications, CardError, Till};
use crate::validation::Reason;

problem_response_type!(
    /// The id names no card payment of the operator's brand.
    UnknownCardPayment,
    404,
    "No card payment of the brand has this id (`/problems/unknown-card-payment`)"
);

/// A card payment as the buyer and the back-office see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CardPaymentView {
    pub id: String,
    pub status: CardStatus,
    /// The provider's page to send the buyer to, while it is open.
    pub checkout_url: Option<String>,
    #[schema(value_type = String, example = "63.44")]
    pub amount: Money,
    #[schema(example = "EUR")]
    pub currency: String,
    /// Until when the provider's page takes the payment.
    pub expires_at: DateTime<Utc>,
}

impl From<&CardPayment> for CardPaymentView {
    fn from(payment: &CardPayment) -> Self {
        Self {
            id: payment.id.clone(),
            status: payment.status,
            checkout_url: payment
                .checkout_url
                .clone()
                .filter(|_| payment.status == CardStatus::Open),
            amount: payment.amount,
            currency: payment.currency.clone(),
            expires_at: payment.expires_at,
        }
    }
}

/// Opens the provider's page of a card order or top-up just placed (or replayed), and
/// writes its URL into the stored answer `body` (`card.checkout_url`). A provider that does
/// not answer is a 503: the same request again (same Idempotency-Key) finds the order and
/// tries the page again.
pub async fn open_page_into(state: &AppState, body: String) -> Result<String, ApiError> {
    let mut json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| ApiError::Unexpected(e.into()))?;
    let (Some(card), Some(id)) = (
        state.card.as_ref(),
        json["card"]["id"].as_str().map(str::to_owned),
    ) else {
        return Ok(body);
    };
    let url = state.open_card_page(card, &id).await?;
    json["card"]["checkout_url"] = serde_json::Value::String(url);
    json["card"]["status"] = serde_json::Value::String(CardStatus::Open.as_str().into());
    serde_json::to_string(&json).map_err(|e| ApiError::Unexpected(e.into()))
}

/// The outcome of a notification.
#[derive(Serialize, utoipa::ToSchema)]
struct NotificationResponse {
    /// What it did: settled, held, ended, waiting, already_applied, unknown_session,
    /// refund, unknown_refund or ignored.
    outcome: String,
}

/// Receive a notification from the card payment provider (Stripe webhook)
///
/// Public, but believed only when signed: the `Stripe-Signature` header is checked on the
/// raw body against the configured signing secrets (several during a rotation), within
/// five minutes of its timestamp. A forged, altered or stale notification is refused with
/// nothing stored. Each event is applied once, by its id, however many times it is
/// delivered; an event about a session that is not ours is acknowledged (and logged).
#[utoipa::path(
    operation_id = "card_notifications_receive",
    security(()),
    request_body(content = String, content_type = "application/json",
        description = "The provider's event, exactly as sent (the signature covers these bytes)"),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix time>,v1=<hex HMAC-SHA256>`")),
    responses(
        (status = 200, description = "Applied, or acknowledged", body = NotificationResponse),
        (status = 400, description = "No signature, a signature that does not match, a \
timestamp out of the window, or a body that is not an event (`/problems/invalid-notification`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No card payment provider is configured \
(`/problems/card-payments-off`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/card/notifications")]
pub async fn notification(state: State, request: HttpRequest, body: web::Bytes) -> ApiResult {
    // Unsigned is refused first, whatever the configuration: nothing unsigned is read.
    if !request.headers().contains_key("Stripe-Signature") {
        return Err(invalid_notification(
            crate::card::provider::NotificationError::Unsigned,
        ));
    }
    let card = state.card.as_ref().ok_or(ApiError::from(CardError::Off))?;
    let now = Utc::now();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let notification = card
        .provider
        .notification(&header, &body, now)
        .map_err(invalid_notification)?;
    let provider = card.provider.name();
    let app = state.clone();
    let outcome = state
        .with_conn(move |conn| {
            let till = Till {
                coupon_key: &app.coupon_key,
                public_url: &app.config.public_url,
            };
            notifications::receive(conn, till, provider, &notification, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(NotificationResponse {
        outcome: outcome.as_str().to_owned(),
    }))
}

fn invalid_notification(error: crate::card::provider::NotificationError) -> ApiError {
    tracing::warn!(%error, "card notification refused");
    ApiError::refused(kinds::INVALID_NOTIFICATION, error.to_string())
}

/// The page again
///
/// The buyer of an order or top-up paid by card (or an operator of its brand): the URL of
/// the provider's page while it is open, opening it if the first attempt failed.
#[utoipa::path(
    operation_id = "card_payments_page",
    params(("id" = String, Path, description = "The card payment's id (`card.id` of the order or top-up)")),
    responses(
        (status = 200, description = "The page is open", body = CardPaymentView),
        (status = 404, description = "No such card payment visible to the caller \
(`/problems/unknown-card-payment`), or card payments are off (`/problems/card-payments-off`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment is no longer waiting \
(`/problems/card-payment-closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider did not answer; try again \
(`/problems/payment-provider-unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/card-payments/{id}/page")]
pub async fn page(state: State, user: CurrentUser, id: web::Path<String>) -> ApiResult {
    let card = state.card.clone().ok_or(ApiError::from(CardError::Off))?;
    let id = id.into_inner();
    let lookup = id.clone();
    state
        .with_conn(move |conn| {
            store::find(conn, &lookup)?
                .filter(|p| user.viewer().may_see(&p.brand_id, &p.user_id))
                .ok_or(ApiError::from(CardError::UnknownPayment))
        })
        .await?;
    state.open_card_page(&card, &id).await?;
    let payment = state
        .with_conn(move |conn| {
            store::find(conn, &id)?.ok_or(ApiError::from(CardError::UnknownPayment))
        })
        .await?;
    Ok(HttpResponse::Ok().json(CardPaymentView::from(&payment)))
}

/// A card payment in the back-office's list.
#[derive(Serialize, utoipa::ToSchema)]
struct BackOfficeCardPayment {
    #[serde(flatten)]
    payment: CardPaymentView,
    provider: String,
    order_id: Option<String>,
    top_up_id: Option<String>,
    user_id: String,
    /// The provider's session (Stripe: `cs_...`).
    session_id: Option<String>,
    /// The provider's payment (Stripe: the PaymentIntent `pi_...`).
    provider_payment_id: Option<String>,
    /// What the provider says was paid, in euro.
    #[schema(value_type = Option<String>)]
    paid: Option<Money>,
    paid_currency: Option<String>,
    #[schema(value_type = String)]
    refunded: Money,
    /// Why it is held.
    note: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Its refunds (in the detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    refunds: Option<Vec<RefundView>>,
}

impl BackOfficeCardPayment {
    fn new(payment: &CardPayment, refunds: Option<Vec<RefundRow>>) -> Self {
        Self {
            payment: CardPaymentView::from(payment),
            provider: payment.provider.clone(),
            order_id: payment.order_id().map(str::to_owned),
            top_up_id: payment.top_up_id().map(str::to_owned),
            user_id: payment.user_id.clone(),
            session_id: payment.session_id.clone(),
            provider_payment_id: payment.provider_payment_id.clone(),
            paid: payment.paid_cents.map(Money::from_cents),
            paid_currency: payment.paid_currency.clone(),
            refunded: payment.refunded,
            note: payment.note.clone(),
            created_at: payment.created_at,
            updated_at: payment.updated_at,
            refunds: refunds.map(|rows| rows.into_iter().map(RefundView::from).collect()),
        }
    }
}

/// A refund asked of the provider.
#[derive(Serialize, utoipa::ToSchema)]
struct RefundView {
    id: String,
    #[schema(value_type = String)]
    amount: Money,
    /// How many coupons it voided.
    coupons: i32,
    credit_note_id: Option<String>,
    reason: String,
    /// `pending` (to be sent), `sent`, or `dead` (given up: retry from the back-office).
    status: RefundStatus,
    provider_refund_id: Option<String>,
    /// What the provider says of it: pending, succeeded, failed, canceled.
    provider_status: Option<String>,
    attempts: i32,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<RefundRow> for RefundView {
    fn from(row: RefundRow) -> Self {
        Self {
            id: row.id,
            amount: Money::from_cents(row.amount_cents),
            coupons: row.coupons,
            credit_note_id: row.credit_note_id,
            reason: row.reason,
            status: row.status,
            provider_refund_id: row.provider_refund_id,
            provider_status: row.provider_status,
            attempts: row.attempts,
            last_error: row.last_error,
            created_at: row.created_at.and_utc(),
        }
    }
}

page_of!(CardPaymentList {
    card_payments: BackOfficeCardPayment
});

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only card payments in this state.
    #[param(value_type = Option<CardStatus>)]
    status: Option<String>,
}

backoffice_list!(
    /// The brand's card payments, newest first, a page at a time
    ///
    /// Back-office operators: each with the provider's ids and state, what was paid, what was
    /// refunded, and why it is held.
    list = "/api/v1/backoffice/card-payments" as "card_payments_list",
    filters ListQuery, answers CardPaymentList "A page of the card payments",
    by find
);

async fn find(
    Listing(state, operator, listed): Listing<ListQuery>,
) -> Found<BackOfficeCardPayment> {
    let paging = listed.page()?;
    let status = (listed.filter.status.as_deref())
        .map(|text| one_of_all("status", text))
        .transpose()
        .map_err(|rule| rule.on("status"))?;
    let read = move |conn: &mut _| store::list(conn, &operator.brand, status, paging);
    let view = |payment| BackOfficeCardPayment::new(&payment, None);
    listed.read_page(&state, paging, read, view).await
}

backoffice_action!(
    /// One card payment of the brand, with its refunds
    get show = "/api/v1/backoffice/card-payments/{id}" as "card_payments_show",
    on "id" "The card payment's id",
    answers (status = 200, description = "The card payment", body = BackOfficeCardPayment),
    refuses (UnknownCardPayment, NotOperator),
    by show_payment
);

async fn show_payment(Acting(state, operator, id): Acting) -> ApiResult {
    let view = state
        .with_conn(move |conn| {
            let (payment, refunds) = crate::payments::card::of_brand(conn, &operator.brand, &id)?;
            Ok::<_, ApiError>(BackOfficeCardPayment::new(&payment, Some(refunds)))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A refund to make.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardRefundRequest {
    /// Why (kept in the audit log), 3 to 500 characters.
    reason: String,
    /// The ids of the order's unused coupons to refund; every unused one when absent. Not
    /// for a held payment, which is refunded whole.
    #[serde(default)]
    coupons: Option<Vec<String>>,
}

/// The refund asked for.
#[derive(Serialize, utoipa::ToSchema)]
struct RefundResponse {
    refund_id: String,
    #[schema(value_type = String)]
    amount: Money,
    coupons: usize,
    /// The credit note's number (TD04), for an order that was invoiced.
    credit_note: Option<String>,
    card_payment: BackOfficeCardPayment,
}

backoffice_action!(
    /// Refund a card payment
    ///
    /// Back-office operators. A paid order: its unused coupons (all, or those listed) are
    /// voided and credited by a credit note, and the credit note's total is refunded through
    /// the provider. A held payment is refunded whole. The refund is sent to the provider
    /// with an idempotency key, right away and again by the worker until it is taken.
    post refund = "/api/v1/backoffice/card-payments/{id}/refunds" as "card_payments_refund",
    on "id" "The card payment's id", takes CardRefundRequest,
    answers (status = 201, description = "The refund is asked for", body = RefundResponse),
    refuses (
        (status = 400, description = "A missing or too short reason, or a coupon that is not \
an unused coupon of the order (`/problems/invalid-field`)",
            body = Problem, content_type = "application/problem+json"),
        UnknownCardPayment,
        (status = 409, description = "The payment is not paid or held \
(`/problems/card-payment-state`), or nothing is left to refund (`/problems/nothing-to-refund`)",
            body = Problem, content_type = "application/problem+json"),
        NotOperator,
    ),
    by refund_payment
);

async fn refund_payment(
    Acting(state, operator, id): Acting,
    body: JsonObject<CardRefundRequest>,
) -> ApiResult {
    let body = body.into_inner();
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::broken_field("reason", e))?;
    let coupons = match body.coupons {
        Some(ids) if ids.is_empty() => return Err(ApiError::invalid_field(
            "coupons",
            "not_empty",
            "coupons must list at least one coupon id, or be left out to refund every unused one",
        )),
        Some(ids) => Coupons::Chosen(ids),
        None => Coupons::AllUnused,
    };
    let lookup = id.clone();
    let requested = state
        .with_conn(move |conn| {
            let who = refunds::ByHand {
                operator: operator.acting(),
                reason: &reason,
            };
            refunds::refund(conn, &who, &id, &coupons, Utc::now())
        })
        .await?;
    refunds::send_now(&state.pool, state.card.as_ref()).await;
    let payment = state
        .with_conn(move |conn| {
            let payment = store::find(conn, &lookup)?.ok_or(CardError::UnknownPayment)?;
            Ok::<_, ApiError>(BackOfficeCardPayment::new(&payment, None))
        })
        .await?;
    Ok(HttpResponse::Created().json(RefundResponse {
        refund_id: requested.refund_id,
        amount: requested.amount,
        coupons: requested.coupons,
        credit_note: requested.credit_note,
        card_payment: payment,
    }))
}

/// Send a given-up refund again
///
/// Back-office operators: a refund the provider did not take after the last attempt
/// (`status: dead`, its error in `last_error`) goes back in the queue from zero attempts,
/// and is sent at once; the same idempotency key, so it can never refund twice.
#[utoipa::path(
    operation_id = "card_payments_retry_refund",
    params(
        ("id" = String, Path, description = "The card payment's id"),
        ("refund_id" = String, Path, description = "The refund's id"),
    ),
    responses(
        (status = 200, description = "Queued again (and sent if the provider answered)", body = BackOfficeCardPayment),
        (status = 404, description = "No dead refund of this card payment of the brand has this id \
(`/problems/unknown-dead-refund`)", body = Problem, content_type = "application/problem+json"),
        NotOperator,
    )
)]
#[post("/api/v1/backoffice/card-payments/{id}/refunds/{refund_id}/retry")]
pub async fn retry_refund(
    state: State,
    BackOffice(operator): BackOffice,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (id, refund_id) = path.into_inner();
    let lookup = id.clone();
    state
        .with_conn(move |conn| refunds::retry(conn, operator.acting(), &id, &refund_id, Utc::now()))
        .await?;
    refunds::send_now(&state.pool, state.card.as_ref()).await;
    let view = state
        .with_conn(move |conn| {
            let payment = store::find(conn, &lookup)?.ok_or(CardError::UnknownPayment)?;
            let refunds = store::refunds_of(conn, &payment.id)?;
            Ok::<_, ApiError>(BackOfficeCardPayment::new(&payment, Some(refunds)))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
