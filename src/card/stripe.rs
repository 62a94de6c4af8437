//! Stripe: Checkout Sessions for the hosted page, Refunds, and webhook events, as Stripe
//! documents them (form-encoded requests with a secret key, an `Idempotency-Key` on every
//! POST, JSON answers). The API base is configurable so that tests point it at a local
//! server that speaks the same API.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::provider::{
    CardProvider, Notification, NotificationError, ProviderError, Refund, RefundRequest,
    RefundState, Session, SessionRequest, SessionState, Subject,
};
use super::signature;

/// How long a notification's signature stays good: Stripe's libraries default to five
/// minutes.
pub const TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

pub struct Stripe {
    client: reqwest::Client,
    api_base: String,
    /// Never logged: this type has no `Debug`.
    secret_key: String,
    /// Every signing secret accepted (more than one while one is rotated).
    webhook_secrets: Vec<String>,
}

impl Stripe {
    pub fn new(
        api_base: &str,
        secret_key: String,
        webhook_secrets: Vec<String>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self {
            client,
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key,
            webhook_secrets,
        })
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let response = request
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Unavailable(e.without_url().to_string()))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ProviderError::Unavailable(format!(
                "HTTP {status}: {}",
                error_message(&body)
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::Refused(format!(
                "HTTP {status}: {}",
                error_message(&body)
            )));
        }
        serde_json::from_slice(&body).map_err(|e| ProviderError::Malformed(e.to_string()))
    }
}

/// Stripe's error message, if the body is its error object.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        error: ErrorBody,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
        code: Option<String>,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => match (error.code, error.message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (_, Some(message)) => message,
            (Some(code), None) => code,
            (None, None) => "no message".into(),
        },
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

/// A Checkout Session as Stripe answers it (the fields rinnovo reads).
#[derive(Debug, Deserialize)]
struct CheckoutSession {
    id: String,
    url: Option<String>,
    status: Option<String>,
    payment_status: Option<String>,
    amount_total: Option<i64>,
    currency: Option<String>,
    /// An id, or the object when expanded.
    payment_intent: Option<serde_json::Value>,
    expires_at: Option<i64>,
}

impl CheckoutSession {
    /// What the session says, read in the light of the event that carried it, if any.
    fn into_session(self, event: Option<&str>) -> Session {
        let state = match (
            event,
            self.status.as_deref(),
            self.payment_status.as_deref(),
        ) {
            (Some("checkout.session.async_payment_failed"), _, _) => SessionState::Failed,
            (Some("checkout.session.expired"), _, _) | (_, Some("expired"), _) => {
                SessionState::Expired
            }
            (_, _, Some("paid")) => SessionState::Paid,
            (_, Some("complete"), _) => SessionState::Processing,
            _ => SessionState::Open,
        };
        let payment_id = match self.payment_intent {
            Some(serde_json::Value::String(id)) => Some(id),
            Some(serde_json::Value::Object(object)) => object
                .get("id")
                .and_then(|id| id.as_str())
                .map(str::to_owned),
            _ => None,
        };
        Session {
            id: self.id,
            url: self.url,
            state,
            amount_cents: self.amount_total.unwrap_or(0),
            currency: self.currency.unwrap_or_default().to_uppercase(),
            payment_id,
            expires_at: self
                .expires_at
                .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)),
        }
    }
}

#[derive(Debug, Deserialize)]
struct StripeRefund {
    id: String,
    status: Option<String>,
    amount: i64,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

impl From<StripeRefund> for Refund {
    fn from(refund: StripeRefund) -> Self {
        Refund {
            id: refund.id,
            // `requires_action` is still on its way.
            state: refund
                .status
                .as_deref()
                .and_then(RefundState::parse)
                .unwrap_or(RefundState::Pending),
            amount_cents: refund.amount,
            reference: refund.metadata.get("rinnovo_refund_id").cloned(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: serde_json::Value,
}

impl CardProvider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn create_session<'a>(
        &'a self,
        request: &'a SessionRequest,
    ) -> BoxFuture<'a, Result<Session, ProviderError>> {
        Box::pin(async move {
            let form: Vec<(&str, String)> = vec![
                ("mode", "payment".into()),
                ("client_reference_id", request.reference.clone()),
                ("customer_email", request.customer_email.clone()),
                ("success_url", request.success_url.clone()),
                ("cancel_url", request.cancel_url.clone()),
                ("expires_at", request.expires_at.timestamp().to_string()),
                (
                    "line_items[0][price_data][currency]",
                    request.currency.to_lowercase(),
                ),
                (
                    "line_items[0][price_data][unit_amount]",
                    request.amount.cents().to_string(),
                ),
                (
                    "line_items[0][price_data][product_data][name]",
                    request.description.clone(),
                ),
                ("line_items[0][quantity]", "1".into()),
                (
                    "metadata[rinnovo_card_payment_id]",
                    request.reference.clone(),
                ),
                (
                    "payment_intent_data[metadata][rinnovo_card_payment_id]",
                    request.reference.clone(),
                ),
            ];
            let session: CheckoutSession = self
                .call(
                    self.client
                        .post(format!("{}/v1/checkout/sessions", self.api_base))
                        .header("Idempotency-Key", &request.idempotency_key)
                        .form(&form),
                )
                .await?;
            Ok(session.into_session(None))
        })
    }

    fn session<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<Session, ProviderError>> {
        Box::pin(async move {
            let id = percent_encoding::utf8_percent_encode(
                session_id,
                percent_encoding::NON_ALPHANUMERIC,
            );
            let session: CheckoutSession = self
                .call(
                    self.client
                        .get(format!("{}/v1/checkout/sessions/{id}", self.api_base)),
                )
                .await?;
            Ok(session.into_session(None))
        })
    }

    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<Refund, ProviderError>> {
        Box::pin(async move {
            let form: Vec<(&str, String)> = vec![
                ("payment_intent", request.payment_id.clone()),
                ("amount", request.amount.cents().to_string()),
                ("reason", "requested_by_customer".into()),
                (
                    "metadata[rinnovo_refund_id]",
                    request.idempotency_key.clone(),
                ),
            ];
            let refund: StripeRefund = self
                .call(
                    self.client
                        .post(format!("{}/v1/refunds", self.api_base))
                        .header("Idempotency-Key", &request.idempotency_key)
                        .form(&form),
                )
                .await?;
            Ok(refund.into())
        })
    }

    fn notification(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Notification, NotificationError> {
        signature::verify(
            header("Stripe-Signature").as_deref(),
            body,
            &self.webhook_secrets,
            TOLERANCE,
            now,
        )?;
        let event: Event =
            serde_json::from_slice(body).map_err(|_| NotificationError::MalformedBody)?;
        let subject = if event.kind.starts_with("checkout.session.") {
            let session: CheckoutSession = serde_json::from_value(event.data.object)
                .map_err(|_| NotificationError::MalformedBody)?;
            Subject::Session(session.into_session(Some(&event.kind)))
        } else if event.kind.starts_with("refund.") {
            let refund: StripeRefund = serde_json::from_value(event.data.object)
                .map_err(|_| NotificationError::MalformedBody)?;
            Subject::Refund(refund.into())
        } else {
            Subject::Other
        };
        Ok(Notification {
            event_id: event.id,
            kind: event.kind,
            subject,
        })
    }
}
