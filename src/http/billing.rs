//! `GET/PUT /api/v1/me/billing`: the buyer's billing data, what their invoices are made
//! out to. Required before the first order.

use actix_web::HttpResponse;
use actix_web::{get, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract::Buyer;
use super::json::JsonObject;
use super::responses::{AccountGone, NotBuyer};
use super::{ApiResult, Problem, State};
use crate::billing::{self, BillingError, BillingInput, BuyerKind, StoredProfile};

/// The billing data as stored: `null` for what does not apply or was not given.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BillingResponse {
    kind: BuyerKind,
    /// A company's name (business only); `null` when nome and cognome are given instead.
    #[schema(example = "Studio Rossi S.r.l.")]
    denominazione: Option<String>,
    #[schema(example = json!(null))]
    nome: Option<String>,
    #[schema(example = json!(null))]
    cognome: Option<String>,
    /// A person's 16 characters; a company's 11 digits.
    #[schema(example = "00743110157")]
    codice_fiscale: Option<String>,
    /// Business only.
    #[schema(example = "00743110157")]
    partita_iva: Option<String>,
    #[schema(example = "Via Roma 1")]
    indirizzo: String,
    /// 5 digits in Italy; abroad the local postal code, or `null`.
    #[schema(example = "00184")]
    cap: Option<String>,
    #[schema(example = "Roma")]
    comune: String,
    /// Two letters; `EE` abroad.
    #[schema(example = "RM")]
    provincia: String,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "IT")]
    nazione: String,
    /// The code the SdI delivers by; `null` when a PEC or nothing was given.
    #[schema(example = "M5UXCR1")]
    codice_destinatario: Option<String>,
    #[schema(format = Email, example = json!(null))]
    pec: Option<String>,
    /// What the invoice will carry as `CodiceDestinatario`: the code, or `0000000` (with a
    /// PEC, or with neither: the invoice waits in the buyer's cassetto fiscale).
    #[schema(example = "M5UXCR1")]
    sdi_codice_destinatario: String,
    updated_at: DateTime<Utc>,
}

impl From<StoredProfile> for BillingResponse {
    fn from(stored: StoredProfile) -> Self {
        let profile = stored.profile;
        let input = profile.to_input();
        Self {
            kind: profile.kind(),
            denominazione: input.denominazione,
            nome: input.nome,
            cognome: input.cognome,
            codice_fiscale: input.codice_fiscale,
            partita_iva: input.partita_iva,
            indirizzo: input.indirizzo.unwrap_or_default(),
            cap: input.cap,
            comune: input.comune.unwrap_or_default(),
            provincia: input.provincia.unwrap_or_default(),
            nazione: input.nazione.unwrap_or_default(),
            codice_destinatario: input.codice_destinatario,
            pec: input.pec,
            sdi_codice_destinatario: profile.delivery.codice_destinatario().to_owned(),
            updated_at: stored.updated_at,
        }
    }
}

/// The whole billing data; an absent, `null` or empty member is "not given".
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingRequest {
    /// `person` (nome, cognome, codice_fiscale) or `business` (denominazione or nome and
    /// cognome, partita_iva, codice_fiscale where it has one).
    #[serde(default)]
    #[schema(example = "business")]
    kind: Option<String>,
    /// At most 80 characters. A business gives it, or nome and cognome, not both.
    #[serde(default)]
    #[schema(example = "Studio Rossi S.r.l.")]
    denominazione: Option<String>,
    /// At most 60 characters.
    #[serde(default)]
    #[schema(example = json!(null))]
    nome: Option<String>,
    /// At most 60 characters.
    #[serde(default)]
    #[schema(example = json!(null))]
    cognome: Option<String>,
    /// Required for a person (16 characters); for a business optional, 16 characters or
    /// 11 digits with the partita IVA's check digit.
    #[serde(default)]
    #[schema(example = "00743110157")]
    codice_fiscale: Option<String>,
    /// Business only: 11 digits, the last a check digit.
    #[serde(default)]
    #[schema(example = "00743110157")]
    partita_iva: Option<String>,
    /// At most 60 characters.
    #[serde(default)]
    #[schema(example = "Via Roma 1")]
    indirizzo: Option<String>,
    /// Exactly 5 digits in Italy; abroad optional, 1 to 10 letters, digits, spaces or
    /// hyphens.
    #[serde(default)]
    #[schema(example = "00184")]
    cap: Option<String>,
    /// At most 60 characters.
    #[serde(default)]
    #[schema(example = "Roma")]
    comune: Option<String>,
    /// An Italian province code (`RM`); abroad `EE` or nothing.
    #[serde(default)]
    #[schema(example = "RM")]
    provincia: Option<String>,
    /// ISO 3166-1 alpha-2; `IT` when not given.
    #[serde(default)]
    #[schema(example = "IT")]
    nazione: Option<String>,
    /// Exactly 7 letters or digits. Either this or `pec`, or neither (`0000000`).
    #[serde(default)]
    #[schema(example = "M5UXCR1")]
    codice_destinatario: Option<String>,
    /// A PEC address the SdI delivers to (an email address); `null` or an empty text for
    /// none, as every optional field here (the form sends empty fields).
    #[serde(default)]
    #[schema(example = json!(null))]
    pec: Option<String>,
}

impl From<BillingRequest> for BillingInput {
    fn from(r: BillingRequest) -> Self {
        Self {
            kind: r.kind,
            denominazione: r.denominazione,
            nome: r.nome,
            cognome: r.cognome,
            codice_fiscale: r.codice_fiscale,
            partita_iva: r.partita_iva,
            indirizzo: r.indirizzo,
            cap: r.cap,
            comune: r.comune,
            provincia: r.provincia,
            nazione: r.nazione,
            codice_destinatario: r.codice_destinatario,
            pec: r.pec,
        }
    }
}

/// The signed-in buyer's billing data
///
/// Customers and registration officers. 404 `billing-data-missing` until they are given.
#[utoipa::path(
    operation_id = "me_billing_get",
    responses(
        (status = 200, description = "The billing data", body = BillingResponse),
        AccountGone,
        NotBuyer,
        (status = 404, description = "No billing data yet (`/problems/billing-data-missing`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/me/billing")]
pub async fn get(state: State, Buyer(user): Buyer) -> ApiResult {
    let stored = state
        .with_conn(move |conn| {
            billing::stored_profile(conn, &user.id)?.ok_or(BillingError::Missing)
        })
        .await?;
    Ok(HttpResponse::Ok().json(BillingResponse::from(stored)))
}

/// Set the signed-in buyer's billing data
///
/// Customers and registration officers; the whole data each time (what is not given is
/// no longer kept). Needed before the first order: every invoice is made out from it. Every
/// invalid field is reported at once in the problem's `errors`, each with its rule
/// (`required`, `max_length`, `check_digit`, `cap`, `provincia`, `nazione`,
/// `codice_destinatario`, `email`, `exclusive`, `one_of`...).
#[utoipa::path(
    operation_id = "me_billing_put",
    request_body = BillingRequest,
    responses(
        (status = 200, description = "The billing data as stored", body = BillingResponse),
        (status = 400, description = "Invalid fields (`/problems/invalid-field`) or a \
            malformed body (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        AccountGone,
        NotBuyer,
    )
)]
#[put("/api/v1/me/billing")]
pub async fn put(state: State, Buyer(user): Buyer, body: JsonObject<BillingRequest>) -> ApiResult {
    let input = BillingInput::from(body.into_inner());
    let stored = state
        .with_conn(move |conn| billing::update(conn, &user.id, &user.brand, &input, Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(BillingResponse::from(stored)))
}
