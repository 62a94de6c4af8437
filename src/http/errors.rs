//! One identity for every domain error: the problem `type` slug, the HTTP status, the
//! title, the input field and rule where there is one, the English detail and the Italian
//! message the pages show. The problem JSON ([`ApiError`]) and the pages (`web::WebError`)
//! are both made from it, so the API and the pages cannot tell the same refusal apart.
//!
//! A new domain error is added here, and only here: one `impl Identify` that gives each
//! variant its identity (a storage failure is handed back as `Err`, mapped as every
//! storage failure is: 503 unavailable, 503 read-only, or 500), naming its kind of refusal
//! (status, slug, title) from the table in `problem::kinds`, where a new kind is added once.

use super::italian::{
    billing_field, euro, invoice_status_label, order_status_label, password_rule,
    payment_status_label,
};
use super::problem::kinds::*;
use super::problem::{ApiError, FieldError, ProblemKind};
use crate::agent::{AgentAuthError, ChallengeError, DeviceError};
use crate::auth::account::AccountError;
use crate::auth::confirmation::ConfirmationError;
use crate::auth::management::ManagementError;
use crate::auth::officer_applications::{ApplicationError, ApplicationStatus};
use crate::auth::recovery::RecoveryError;
use crate::auth::sessions::SessionError;
use crate::auth::throttle::Throttled;
use crate::auth::UserError;
use crate::billing::{BillingError, InvalidField};
use crate::catalog::bulk::HolderListError;
use crate::catalog::{CatalogError, ProductChangeError, ProposalError};
use crate::coupons::{ShownStatus, StatusCheckError, VoidError};
use crate::invoices::export::{PeriodError, MAX_DAYS};
use crate::invoices::receipts::ReceiptError;
use crate::invoices::transmission::TransmissionError;
use crate::invoices::InvoiceError;
use crate::lookup::LookupError;
use crate::mail::outbox::RetryError as EmailRetryError;
use crate::orders::checkout::CheckoutError;
use crate::orders::resend::ResendError;
use crate::orders::OrderError;
use crate::payments::card::CardError;
use crate::payments::manual::TargetError;
use crate::payments::queue::ManualError;
use crate::payments::reconcile::ImportError;
use crate::payments::statement::StatementError;
use crate::prepaid::PrepaidError;
use crate::renewals::info::InfoError;
use crate::renewals::install::InstallError;
use crate::renewals::request::{Refusal, RequestError};

/// How the refusal is framed in problem JSON: some have their own variant of
/// [`ApiError`] (and headers: `WWW-Authenticate`, `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// 400 `invalid-field`: the detail is prefixed with the field's name.
    Invalid,
    Refused,
    /// 401 `unauthorized`, with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// 429 `too-many-requests`, with `Retry-After`.
    Throttled {
        retry_after_seconds: i64,
    },
}

/// What a domain refusal is, for every front end.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The status, the problem `type` and its title.
    pub kind: ProblemKind,
    /// The problem's `detail`, in English.
    pub detail: String,
    /// The input field the refusal is about, and the rule it broke.
    pub field: Option<(String, &'static str)>,
    /// What the pages tell the user.
    pub italian: String,
    /// Every field refused at once, when there are several (a list's invalid lines).
    errors: Vec<FieldError>,
    shape: Shape,
}

/// A domain error that has an [`Identity`]; `Err` is a storage failure instead.
pub trait Identify {
    fn identify(self) -> Result<Identity, anyhow::Error>;
}

impl Identity {
    /// A refusal of `kind`, with its English `detail` and what the pages tell the user.
    pub fn of(kind: ProblemKind, detail: impl ToString, italian: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.to_string(),
            field: None,
            italian: italian.into(),
            errors: Vec::new(),
            shape: Shape::Refused,
        }
    }

    /// 400 `invalid-field` naming several fields, each with its rule and detail.
    fn invalid_fields(
        errors: Vec<FieldError>,
        detail: impl ToString,
        italian: impl Into<String>,
    ) -> Self {
        Self {
            errors,
            ..Self::of(INVALID_FIELD, detail, italian)
        }
    }

    /// 400 `invalid-field` for billing data, every wrong field at once; `prefix` says where
    /// the data sit in the request (`buyer.` in a resend). The error page shows the first
    /// field's Italian text; the forms show each field's by its input.
    fn invalid_billing(fields: Vec<InvalidField>, prefix: &str) -> Result<Self, anyhow::Error> {
        use crate::validation::Rule;
        let first = fields
            .first()
            .ok_or_else(|| anyhow::anyhow!("billing data refused with no field"))?;
        let italian = billing_field(first.field, &first.error);
        let errors = (fields.iter())
            .map(|invalid| FieldError {
                field: format!("{prefix}{}", invalid.field),
                rule: invalid.error.rule().to_owned(),
                detail: invalid.error.to_string(),
            })
            .collect();
        // No detail of its own: an invalid-field problem's detail is made from its fields.
        Ok(Self {
            errors,
            shape: Shape::Invalid,
            ..Self::of(INVALID_FIELD, "", italian)
        })
    }

    /// 400 `invalid-field`: an input value that breaks `rule`.
    pub fn invalid(
        field: impl Into<String>,
        rule: &'static str,
        detail: impl ToString,
        italian: impl Into<String>,
    ) -> Self {
        Self {
            field: Some((field.into(), rule)),
            shape: Shape::Invalid,
            ..Self::of(INVALID_FIELD, detail, italian)
        }
    }

    fn unauthorized(detail: impl ToString, italian: impl Into<String>) -> Self {
        Self {
            shape: Shape::Unauthorized,
            ..Self::of(UNAUTHORIZED, detail, italian)
        }
    }

    /// 429 `too-many-requests` from the password throttle, with `Retry-After`.
    fn throttled(throttled: Throttled, detail: impl ToString) -> Self {
        let retry_after_seconds = throttled.retry_after_seconds;
        Self::too_many(
            retry_after_seconds,
            detail,
            format!("Troppi tentativi con una password errata: riprova tra {retry_after_seconds} secondi."),
        )
    }

    /// 429 `too-many-requests` from a rate limit, with `Retry-After`.
    fn too_many(retry_after_seconds: i64, detail: impl ToString, italian: String) -> Self {
        Self {
            shape: Shape::Throttled {
                retry_after_seconds,
            },
            ..Self::of(TOO_MANY_REQUESTS, detail, italian)
        }
    }

    /// The seconds to wait before retrying, for a refusal that is a rate limit.
    pub fn retry_after_seconds(&self) -> Option<i64> {
        match self.shape {
            Shape::Throttled {
                retry_after_seconds,
            } => Some(retry_after_seconds),
            _ => None,
        }
    }

    /// The refusal is about one input field.
    fn on_field(mut self, field: impl Into<String>, rule: &'static str) -> Self {
        self.field = Some((field.into(), rule));
        self
    }
}

impl From<Identity> for ApiError {
    fn from(identity: Identity) -> Self {
        let Identity {
            kind,
            detail,
            field,
            errors,
            shape,
            ..
        } = identity;
        match shape {
            Shape::Invalid => {
                let named = field.map(|(field, rule)| FieldError {
                    field,
                    rule: rule.to_owned(),
                    detail,
                });
                ApiError::Invalid(named.into_iter().chain(errors).collect())
            }
            Shape::Unauthorized => ApiError::Unauthorized(detail),
            Shape::Throttled {
                retry_after_seconds,
            } => ApiError::TooManyRequests {
                retry_after_seconds,
                detail,
            },
            Shape::Refused => {
                // As for an invalid field: the problem's detail names the field, the
                // field's own error does not say its name again.
                let (detail, field) = match field {
                    Some((field, rule)) => {
                        let named = format!("{field}: {detail}");
                        let field = FieldError {
                            field,
                            rule: rule.to_owned(),
                            detail,
                        };
                        (named, Some(field))
                    }
                    None => (detail, None),
                };
                ApiError::Refused {
                    kind,
                    errors: field.into_iter().chain(errors).collect(),
                    detail,
                }
            }
        }
    }
}

impl<E: Identify> From<E> for ApiError {
    fn from(error: E) -> Self {
        match error.identify() {
            Ok(identity) => identity.into(),
            Err(storage) => ApiError::storage(storage),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The identities, one impl per domain error enum.

/// A wait as the pages say it: minutes when it is long.
fn italian_wait(seconds: i64) -> String {
    match seconds {
        ..=1 => "un secondo".to_owned(),
        2..=119 => format!("{seconds} secondi"),
        _ => format!("{} minuti", (seconds + 59) / 60),
    }
}

/// A client's requests over their limit, as the pages say it.
fn too_many_italian(seconds: i64) -> String {
    format!("Troppe richieste: riprova tra {}.", italian_wait(seconds))
}

impl Identify for LookupError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            LookupError::UnknownHolder => Ok(Identity::of(UNKNOWN_HOLDER, detail, "Nessun dispositivo di questo negozio risulta intestato a questo codice fiscale.")),
            LookupError::TooManyLookups {
                retry_after_seconds,
            } => Ok(Identity::too_many(
                retry_after_seconds,
                detail,
                format!(
                    "Troppe ricerche di titolari: riprova tra {}.",
                    italian_wait(retry_after_seconds)
                ),
            )),
            LookupError::ListOverAllowance {
                holders,
                allowance,
                retry_after_seconds,
            } => Ok(Identity::too_many(
                retry_after_seconds,
                detail,
                format!(
                    "L'elenco ha {holders} titolari, più delle {allowance} ricerche che il tuo profilo consente: dividilo in elenchi più corti."
                ),
            )),
            LookupError::Storage(e) => Err(e),
        }
    }
}

impl Identify for HolderListError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            HolderListError::Empty => Identity::invalid(
                "codici_fiscali",
                "required",
                detail,
                "L'elenco è vuoto: scrivi un codice fiscale per riga, o scegli un file.",
            ),
            HolderListError::TooMany { found, max } => Identity::invalid(
                "codici_fiscali",
                "max_items",
                detail,
                format!("L'elenco ha {found} titolari: al massimo {max} alla volta. Dividilo in elenchi più corti."),
            ),
            HolderListError::InvalidLines(invalid) => {
                let italian = format!(
                    "Nulla è stato cercato: {} righe non sono codici fiscali validi. {}.",
                    invalid.len(),
                    invalid
                        .iter()
                        .map(|i| format!("Riga {}: {}", i.line, i.error.in_italian()))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                // Element `line - 1` of the JSON list; line `line` of a text.
                let errors = invalid
                    .into_iter()
                    .map(|i| FieldError {
                        field: format!("codici_fiscali[{}]", i.line - 1),
                        rule: i.error.rule().to_owned(),
                        detail: format!("line {}: {}", i.line, i.error),
                    })
                    .collect();
                Identity::invalid_fields(errors, detail, italian)
            }
        })
    }
}

impl Identify for CatalogError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let field = |line: usize| format!("lines[{}].product", line - 1);
        let detail = self.to_string();
        Ok(match self {
            CatalogError::UnknownProduct { line, product } => Identity::invalid(
                field(line),
                "known_product",
                detail,
                format!("Riga {line}: nessun prodotto '{product}' in questo negozio: scegli i coupon dall'elenco del negozio."),
            ),
            CatalogError::InactiveProduct { line, product } => Identity::invalid(
                field(line),
                "active_product",
                detail,
                format!("Riga {line}: '{product}' non è più in vendita."),
            ),
            CatalogError::UnavailableProduct {
                line,
                product: _,
                name,
                notice,
            } => Identity::invalid(
                field(line),
                "available_product",
                detail,
                format!("Riga {line}: «{name}» è momentaneamente non disponibile: {notice}"),
            ),
            CatalogError::DuplicateProduct { first, second } => Identity::invalid(
                field(second),
                "unique_product",
                detail,
                format!("Lo stesso prodotto è sulle righe {first} e {second}: metti la quantità su una riga sola."),
            ),
            CatalogError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for ProposalError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            ProposalError::Lookup(e) => return e.identify(),
            ProposalError::UnknownDevice(serial) => Identity::invalid(
                "device_serial",
                "known_device",
                detail,
                format!("Il titolare non ha un dispositivo {serial} in questo negozio."),
            ),
            ProposalError::NothingToRenew(serial) => Identity::of(
                NOTHING_TO_RENEW,
                detail,
                format!("Nessun certificato del dispositivo {serial} si può rinnovare ora."),
            ),
            ProposalError::NoFittingProduct => Identity::of(
                NOTHING_TO_RENEW,
                detail,
                "Il negozio non vende un coupon adatto a ciò che serve al dispositivo.",
            ),
            ProposalError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for ProductChangeError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            ProductChangeError::NotFound => Ok(Identity::of(UNKNOWN_PRODUCT, detail, "Nessun prodotto ha questo identificativo.")),
            ProductChangeError::NothingToChange => Ok(Identity::invalid(
                "active",
                "some_change",
                detail,
                "Niente da cambiare: indica se il prodotto è in vendita, o se è momentaneamente non disponibile.",
            )),
            ProductChangeError::Storage(e) => Err(e),
        }
    }
}

impl Identify for PrepaidError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            PrepaidError::InsufficientFunds { balance, requested } => Identity::of(
                INSUFFICIENT_FUNDS,
                detail,
                format!(
                    "Il saldo del conto prepagato ({}) non basta: servono {}.",
                    euro(balance),
                    euro(requested)
                ),
            ),
            // An account of another brand is as good as absent for this caller, but the
            // operator asked for it by id, so say why rather than pretend.
            PrepaidError::OtherBrand => Identity::of(
                OTHER_BRAND,
                detail,
                "Il conto prepagato è di un altro marchio.",
            ),
            PrepaidError::UnknownAccount => Identity::of(
                UNKNOWN_ACCOUNT,
                detail,
                "Nessun conto prepagato ha questo identificativo.",
            ),
            PrepaidError::MethodNotOffered(_) => Identity::invalid(
                "payment_method",
                "one_of",
                detail,
                "Una ricarica si paga con bonifico bancario, bollettino postale o assegno, \
                 o con carta quando il pagamento con carta è disponibile.",
            ),
            PrepaidError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for OrderError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            OrderError::Prepaid(e) => e.identify(),
            OrderError::NotFound => Ok(Identity::of(UNKNOWN_ORDER, detail, "Ordine non trovato.")),
            OrderError::Storage(e) => Err(e),
        }
    }
}

impl Identify for InvoiceError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            InvoiceError::NotFound => Ok(Identity::of(
                UNKNOWN_INVOICE,
                detail,
                "Fattura non trovata.",
            )),
            InvoiceError::OverCredit { .. } => Ok(Identity::of(
                CREDIT_EXCEEDS_INVOICE,
                detail,
                "La nota di credito stornerebbe più di quanto la fattura ha venduto.",
            )),
            InvoiceError::Storage(e) => Err(e),
        }
    }
}

impl Identify for ReceiptError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            ReceiptError::NoFile => Identity::invalid(
                "file",
                "required",
                detail,
                "Scegli uno o più file di notifica del SdI da importare.",
            ),
            ReceiptError::TooManyFiles => Identity::invalid(
                "file",
                "max_files",
                detail,
                format!(
                    "Puoi importare al massimo {} notifiche alla volta.",
                    crate::invoices::receipts::MAX_FILES
                ),
            ),
            ReceiptError::NoFileName => Identity::invalid(
                "file_name",
                "required",
                detail,
                "Manca il nome del file della notifica: il nome dice di quale notifica si tratta.",
            ),
            ReceiptError::BadFileName(_) => Identity::invalid(
                "file_name",
                "sdi_file_name",
                detail,
                "Il nome del file non è quello di una notifica del SdI (come IT01234567897_00001_RC_001.xml).",
            ),
            ReceiptError::Refused(refused) => {
                let italian = format!(
                    "Il file {} non è una notifica del SdI che rinnovo sa leggere ({}): non è stato importato nulla.",
                    refused.file_name,
                    sdi_notification_rule(refused.rule)
                );
                Identity::of(INVALID_SDI_NOTIFICATION, detail, italian)
                .on_field("file", refused.rule)
            }
            ReceiptError::FileNameTaken(file_name) => Identity::of(SDI_NOTIFICATION_CONFLICT, detail, format!(
                    "È già stata importata un'altra notifica con il nome {file_name}, con un contenuto diverso: non è stato importato nulla."
                ))
            .on_field("file_name", "unique"),
            ReceiptError::UnknownDocument => Identity::of(UNKNOWN_INVOICE, detail, "Nessun documento del tuo marchio ha questo identificativo."),
            ReceiptError::NotRejected(status) => Identity::of(INVOICE_NOT_REJECTED, detail, format!(
                    "Il documento risulta «{}»: si invia di nuovo solo un documento scartato dallo SdI.",
                    invoice_status_label(status)
                )),
            ReceiptError::InvalidBuyer(fields) => Identity::invalid_billing(fields, "buyer.")?,
            ReceiptError::Storage(e) => return Err(e),
        })
    }
}

/// A notification rule, as the pages say it.
fn sdi_notification_rule(rule: &str) -> &'static str {
    match rule {
        "utf8" => "non è un testo UTF-8",
        "xml" => "non è un file XML ben formato",
        "known_notification" => "non è una ricevuta o notifica del SdI",
        "required_element" => "manca un elemento obbligatorio, come NomeFile o MessageId",
        "identificativo_sdi" => "l'IdentificativoSdI non è un numero",
        "date_time" => "una data e ora non è valida",
        "file_name_kind" => "il nome del file indica un altro tipo di notifica",
        _ => "contenuto non valido",
    }
}

impl Identify for TransmissionError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            TransmissionError::NotDead => Ok(Identity::of(UNKNOWN_TRANSMISSION, detail, "Questa trasmissione non è più tra quelle non riuscite del tuo marchio (forse è già stata rimessa in coda).")),
            TransmissionError::Storage(e) => Err(e),
        }
    }
}

impl Identify for EmailRetryError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            EmailRetryError::NotDead => Ok(Identity::of(UNKNOWN_EMAIL, detail, "Questa email non è più tra quelle non consegnate del tuo marchio (forse è già stata rimessa in coda).")),
            EmailRetryError::Storage(e) => Err(e),
        }
    }
}

impl Identify for ResendError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            ResendError::NotFound => Identity::of(UNKNOWN_ORDER, detail, "Ordine non trovato."),
            ResendError::NotFulfilled(status) => Identity::of(ORDER_NOT_FULFILLED, detail, format!(
                    "L'ordine è {}: i codici esistono solo quando è evaso.",
                    order_status_label(status)
                )),
            ResendError::NothingUnused => Identity::of(NO_UNUSED_CODES, detail, "L'ordine non ha più codici da usare: sono già stati usati, annullati o sono scaduti."),
            ResendError::TooOften(seconds) => Identity::too_many(
                seconds,
                detail,
                format!(
                    "I codici di questo ordine sono già stati inviati di nuovo più volte: riprova tra {}.",
                    italian_wait(seconds)
                ),
            ),
            ResendError::Confirmation(e) => return e.identify(),
            ResendError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for CheckoutError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            CheckoutError::NoLines => {
                Identity::invalid("lines", "not_empty", detail, "Scegli almeno un coupon.")
            }
            CheckoutError::QuantityNotPositive { line } => Identity::invalid(
                format!("lines[{line}].quantity"),
                "range",
                detail,
                format!("Riga {}: la quantità deve essere almeno 1.", line + 1),
            ),
            CheckoutError::TooLarge { cap, total, .. } => Identity::of(
                ORDER_TOO_LARGE,
                detail,
                format!(
                    "In un ordine puoi acquistare al massimo {cap} coupon; ne hai scelti {total}."
                ),
            ),
            CheckoutError::BillingDataMissing => billing_data_missing(
                BILLING_DATA_MISSING,
                "the buyer has no billing data yet: an invoice needs the buyer's name, tax code \
                 and address; set them with PUT /api/v1/me/billing, then order",
            ),
            CheckoutError::CardNotOffered => Identity::invalid(
                "payment_method",
                "card_offered",
                detail,
                "Il pagamento con carta non è disponibile: scegli un altro metodo.",
            ),
            CheckoutError::Billing(e) => return e.identify(),
            CheckoutError::Catalog(e) => return e.identify(),
            CheckoutError::Order(e) => return e.identify(),
        })
    }
}

impl Identify for CardError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            CardError::Off => Identity::of(CARD_PAYMENTS_OFF, detail, "Il pagamento con carta non è disponibile."),
            CardError::UnknownPayment => Identity::of(UNKNOWN_CARD_PAYMENT, detail, "Nessun pagamento con carta del tuo marchio ha questo identificativo."),
            CardError::NotPayable(status) => Identity::of(CARD_PAYMENT_CLOSED, detail, format!(
                    "Il pagamento con carta è {}: la pagina di pagamento non si può più aprire.",
                    status.italian()
                )),
            CardError::NotRefundable(status) => Identity::of(CARD_PAYMENT_STATE, detail, format!(
                    "Si rimborsa solo un pagamento con carta pagato o trattenuto; questo è {}.",
                    status.italian()
                )),
            CardError::TopUpNotRefundable => Identity::of(CARD_PAYMENT_STATE, detail, "Una ricarica pagata con carta si rimborsa con una rettifica del conto prepagato."),
            CardError::CouponNotRefundable(id) => Identity::invalid(
                "coupons",
                "unused_coupon_of_order",
                detail,
                format!("Il coupon {id} non è un coupon non usato di questo ordine."),
            ),
            CardError::NothingToRefund => Identity::of(NOTHING_TO_REFUND, detail, "Non resta nulla da rimborsare: ogni coupon dell'ordine è usato, annullato o già rimborsato."),
            CardError::UnknownDeadRefund => Identity::of(UNKNOWN_DEAD_REFUND, detail, "Questo pagamento con carta non ha un rimborso abbandonato con questo identificativo."),
            CardError::Provider(e) if e.is_temporary() => Identity::of(PAYMENT_PROVIDER_UNAVAILABLE, format!("{e}; retry the same request (with the same Idempotency-Key)"), "Il servizio di pagamento con carta non risponde: riprova tra qualche istante."),
            CardError::Provider(e) => Identity::of(PAYMENT_PROVIDER_REFUSED, e.to_string(), "Il servizio di pagamento con carta ha rifiutato la richiesta: riprova più tardi o scegli un altro metodo."),
            CardError::Prepaid(e) => return e.identify(),
            CardError::Invoice(e) => return e.identify(),
            CardError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for ManualError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let state = |detail: String, italian: String| Identity::of(PAYMENT_STATE, detail, italian);
        let detail = self.to_string();
        Ok(match self {
            ManualError::UnknownPayment => Identity::of(UNKNOWN_PAYMENT, detail, "Nessun pagamento del tuo marchio ha questo identificativo."),
            ManualError::UnknownOrder => Identity::of(UNKNOWN_ORDER, detail, "Nessun ordine del tuo marchio ha questo identificativo."),
            ManualError::NotUnmatched(status) => state(
                detail,
                format!(
                    "Si può abbinare a mano solo un accredito da abbinare; questo pagamento è {}.",
                    payment_status_label(status)
                ),
            ),
            ManualError::NotRefundable(status) => state(
                detail,
                format!(
                    "Si può rimborsare solo un accredito da abbinare, doppio o eccedente; questo pagamento è {}.",
                    payment_status_label(status)
                ),
            ),
            ManualError::OrderNotPayable(status) => state(
                detail,
                format!(
                    "L'ordine è {}: può ricevere un pagamento solo un ordine in attesa di pagamento, scaduto o già pagato.",
                    order_status_label(status)
                ),
            ),
            ManualError::Prepaid(e) => return e.identify(),
            ManualError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for TargetError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let italian = match self {
            TargetError::Neither => {
                "Scrivi l'identificativo dell'ordine (o quello del conto prepagato)."
            }
            TargetError::Both => "Scrivi l'ordine oppure il conto prepagato, non entrambi.",
        };
        Ok(Identity::invalid("order_id", "one_of", self, italian))
    }
}

impl Identify for PeriodError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        use crate::validation::Rule;
        let italian = match self {
            PeriodError::Reversed => "La data finale viene prima di quella iniziale.".to_owned(),
            PeriodError::TooLong => {
                format!("Il periodo può coprire al massimo {MAX_DAYS} giorni.")
            }
        };
        Ok(Identity::invalid("to", self.rule(), self, italian))
    }
}

impl Identify for ImportError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            ImportError::ForeignAccount { account, iban, postal, .. } => Identity::of(STATEMENT_OF_ANOTHER_ACCOUNT, detail, format!(
                    "Il conto {account} dell'estratto non è un conto del marchio (IBAN {iban}, conto postale {postal}): file o marchio sbagliato. Non è stato importato nulla."
                )),
            ImportError::EmptyFile => Identity::invalid("file", "required", detail, "Il file è vuoto: scegli il file dell'estratto conto."),
            ImportError::Unreadable(error) => error.identify()?,
            ImportError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for StatementError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let italian = format!(
            "Il file non è un estratto conto che rinnovo sa leggere (camt.053, camt.054 o CSV postale), e non è stato importato nulla. Dove: {}. Problema: {}.",
            self.location, self.message
        );
        Ok(Identity::invalid(
            "file",
            self.kind,
            self.to_string(),
            italian,
        ))
    }
}

impl Identify for StatusCheckError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            StatusCheckError::UnknownCode => Ok(Identity::of(
                UNKNOWN_COUPON,
                detail,
                "Nessun coupon ha questo codice.",
            )),
            StatusCheckError::TooManyChecks {
                retry_after_seconds,
            } => Ok(Identity::too_many(
                retry_after_seconds,
                detail,
                format!(
                    "Troppe verifiche: riprova tra {}.",
                    italian_wait(retry_after_seconds)
                ),
            )),
            StatusCheckError::Storage(e) => Err(e),
        }
    }
}

impl Identify for VoidError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            VoidError::NotFound => Identity::of(
                UNKNOWN_COUPON,
                detail,
                "Nessun coupon ha questo codice o identificativo.",
            ),
            VoidError::OtherBrand => {
                Identity::of(OTHER_BRAND, detail, "Il coupon è di un altro marchio.")
            }
            VoidError::NotAvailable(status) => Identity::of(
                COUPON_NOT_AVAILABLE,
                detail,
                format!(
                    "Si può annullare solo un coupon disponibile; questo risulta {}.",
                    ShownStatus::from(status).italian()
                ),
            ),
            VoidError::Prepaid(e) => return e.identify(),
            VoidError::Credit(e) => return e.identify(),
            VoidError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for UserError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            UserError::EmailTaken => Identity::of(
                EMAIL_TAKEN,
                detail,
                "Esiste già un account con questa email.",
            ),
            UserError::UnknownBrand(_) => Identity::invalid(
                "brand",
                "known_brand",
                detail,
                "Nessun negozio con questo nome.",
            ),
            UserError::NotFound => Identity::unauthorized(
                "this account no longer exists",
                "Questo account non esiste più.",
            ),
            UserError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for SessionError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            SessionError::Throttled(throttled) => Identity::throttled(throttled, detail),
            SessionError::InvalidCredentials | SessionError::InvalidRefreshToken => {
                Identity::unauthorized(detail, "Email o password errati.")
            }
            SessionError::AccountDisabled => Identity::of(
                ACCOUNT_DISABLED,
                detail,
                "Questo account è stato disattivato: per riattivarlo contatta l'assistenza.",
            ),
            SessionError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for AccountError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            AccountError::Throttled(throttled) => Identity::throttled(throttled, detail),
            AccountError::WrongCurrentPassword => Identity::invalid(
                "current_password",
                "matches",
                detail,
                "La password attuale non è corretta.",
            ),
            AccountError::User(e) => return e.identify(),
            AccountError::Confirmation(e) => return e.identify(),
            AccountError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for RecoveryError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        use crate::validation::Rule;
        let detail = self.to_string();
        Ok(match self {
            RecoveryError::TooManyRequests {
                retry_after_seconds,
            } => Identity::too_many(
                retry_after_seconds,
                detail,
                format!(
                    "Troppe richieste di una nuova password da questo indirizzo: riprova tra {}.",
                    italian_wait(retry_after_seconds)
                ),
            ),
            RecoveryError::LinkInvalid => Identity::of(
                RESET_LINK_INVALID,
                detail,
                "Il link per impostare una nuova password non è più valido: è scaduto, è già \
                 stato usato, oppure ne hai chiesto uno più recente. Chiedine uno nuovo.",
            )
            .on_field("token", "live_link"),
            RecoveryError::Password(e) => {
                Identity::invalid("new_password", e.rule(), detail, password_rule(&e))
            }
            RecoveryError::User(e) => return e.identify(),
            RecoveryError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for ConfirmationError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            ConfirmationError::NotConfirmed => Identity::of(EMAIL_NOT_CONFIRMED, detail, "Prima di acquistare o ricaricare il conto conferma il tuo indirizzo email: apri il link che ti abbiamo inviato."),
            ConfirmationError::InvalidLink => Identity::invalid(
                "token",
                "valid_link",
                detail,
                "Il link di conferma non è valido: è scaduto, è già stato usato o è di un altro account. Chiedine uno nuovo.",
            ),
            ConfirmationError::AlreadyConfirmed => Identity::of(EMAIL_ALREADY_CONFIRMED, detail, "Il tuo indirizzo email è già confermato."),
            ConfirmationError::EmailTaken => Identity::of(EMAIL_TAKEN, detail, "Esiste già un account con questo indirizzo email: l'indirizzo non è stato cambiato.")
            .on_field("email", "unique"),
            ConfirmationError::TooManyEmails {
                retry_after_seconds,
            } => Identity::too_many(
                retry_after_seconds,
                detail,
                format!(
                    "Ti abbiamo già inviato diverse email di conferma: riprova tra {}.",
                    italian_wait(retry_after_seconds)
                ),
            ),
            ConfirmationError::User(e) => return e.identify(),
            ConfirmationError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for ChallengeError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            ChallengeError::TooMany(seconds) => Ok(Identity::too_many(
                seconds,
                detail,
                too_many_italian(seconds),
            )),
            ChallengeError::Storage(e) => Err(e.into()),
        }
    }
}

impl Identify for DeviceError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            DeviceError::Gone => Ok(Identity::of(
                DEVICE_GONE,
                detail,
                "Il dispositivo non è più nel registro.",
            )),
            DeviceError::Storage(e) => Err(e),
        }
    }
}

impl Identify for AgentAuthError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        let unauthorized = |kind, italian: &str| Identity::of(kind, detail.clone(), italian);
        Ok(match self {
            AgentAuthError::MalformedCertificate(_) => Identity::invalid(
                "certificate",
                "x509",
                detail,
                "Il certificato non è leggibile.",
            ),
            AgentAuthError::MalformedSignature => {
                Identity::invalid("signature", "base64", detail, "La firma non è leggibile.")
            }
            AgentAuthError::Challenge => unauthorized(AGENT_CHALLENGE,
                "La sfida è scaduta o è già stata usata: chiedine un'altra.",
            ),
            AgentAuthError::Untrusted => unauthorized(UNTRUSTED_CERTIFICATE,
                "Il certificato non è stato emesso da un'autorità riconosciuta.",
            ),
            AgentAuthError::SignatureCertificate => unauthorized(SIGNATURE_CERTIFICATE_SIGN_IN,
                "Il certificato di firma non serve ad accedere: usa il certificato di autenticazione (CNS) del dispositivo.",
            ),
            AgentAuthError::OutsideValidity { .. } => unauthorized(CERTIFICATE_NOT_VALID_NOW,
                "Il certificato non è valido in questo momento.",
            ),
            AgentAuthError::UnknownCertificate => unauthorized(SIGN_IN_UNKNOWN_CERTIFICATE,
                "Il certificato non è nel registro.",
            ),
            AgentAuthError::NotActive(_) => unauthorized(SIGN_IN_CERTIFICATE_NOT_ACTIVE,
                "Il certificato è revocato o sostituito.",
            ),
            AgentAuthError::Signature => unauthorized(BAD_SIGNATURE,
                "La firma non è valida.",
            ),
            AgentAuthError::Storage(e) => return Err(e.into()),
        })
    }
}

impl Identify for RequestError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let (index, refusal) = match self {
            RequestError::Storage(e) => return Err(e),
            RequestError::TooMany(seconds) => {
                let detail = self.to_string();
                return Ok(Identity::too_many(
                    seconds,
                    detail,
                    too_many_italian(seconds),
                ));
            }
            RequestError::Refused { index, refusal } => (index, refusal),
        };
        let field = format!("renewals[{index}].{}", refusal.field());
        // The refusal's own words: the problem's detail adds the field's name.
        let detail = refusal.to_string();
        let (kind, rule, italian) = match &refusal {
            Refusal::UnknownCertificate(_) => (NOT_ON_DEVICE, "device-certificate", "Il certificato non è su questo dispositivo.".to_owned()),
            Refusal::DuplicateCertificate => (INVALID_FIELD, "unique", "Il certificato è indicato due volte.".to_owned()),
            Refusal::NotActive(_) => (RENEWED_CERTIFICATE_NOT_ACTIVE, "active", "Il certificato è revocato o sostituito: si rinnova solo un certificato attivo.".to_owned()),
            Refusal::TooEarly { window_opens_at } => (OUTSIDE_RENEWAL_WINDOW, "renewal-window", format!("Troppo presto: la finestra di rinnovo si apre il {}.", window_opens_at.format("%d/%m/%Y"))),
            Refusal::Expired { .. } => (OUTSIDE_RENEWAL_WINDOW, "renewal-window", "Il certificato è scaduto: non si può rinnovare, solo sostituire.".to_owned()),
            Refusal::AlreadyPending { .. } => (RENEWAL_PENDING, "not-pending", "Un rinnovo di questo certificato è già in corso.".to_owned()),
            Refusal::DeviceRenewedEnough { .. } => (DEVICE_RENEWAL_LIMIT, "renewable-once", "Questo certificato del dispositivo è già stato rinnovato il numero massimo di volte.".to_owned()),
            Refusal::DeviceEndOfLife { .. } => (DEVICE_END_OF_LIFE, "device-life", "Il dispositivo è a fine vita: serve un dispositivo nuovo.".to_owned()),
            Refusal::SubjectMismatch { .. } => (CSR_SUBJECT_MISMATCH, "same-subject", "Il soggetto della richiesta deve essere identico a quello del certificato attuale.".to_owned()),
            Refusal::OldKey => (CSR_OLD_KEY, "new-key", "La richiesta usa una chiave già usata dal dispositivo: serve una chiave nuova.".to_owned()),
            Refusal::UnknownCoupon => (UNKNOWN_COUPON_CODE, "known-coupon", "Nessun coupon ha questo codice.".to_owned()),
            Refusal::CouponOtherBrand => (COUPON_OTHER_BRAND, "same-brand", "Il coupon è di un altro marchio.".to_owned()),
            Refusal::CouponExpired { .. } => (COUPON_EXPIRED, "unexpired", "Il coupon è scaduto.".to_owned()),
            Refusal::CouponNotAvailable(_) => (COUPON_ALREADY_USED, "available", "Il coupon è già stato usato o non è disponibile.".to_owned()),
            Refusal::CouponWrongKind { .. } => (COUPON_WRONG_KIND, "covers-kind", "Il coupon è per un altro tipo di certificato.".to_owned()),
        };
        Ok(Identity::of(kind, detail, italian).on_field(field, rule))
    }
}

impl Identify for InfoError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        match self {
            InfoError::UnknownCertificate => Ok(Identity::of(
                NOT_OF_THIS_CA,
                detail,
                "Nessun certificato emesso da questo servizio ha questo CertID.",
            )),
            InfoError::Storage(e) => Err(e),
        }
    }
}

impl Identify for InstallError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            InstallError::NotFound(_) => Identity::of(
                UNKNOWN_RENEWAL,
                detail,
                "Nessun rinnovo ha questo identificativo.",
            ),
            InstallError::NotIssued(_) => Identity::of(
                RENEWAL_NOT_ISSUED,
                detail,
                "Il nuovo certificato non è ancora stato emesso.",
            ),
            InstallError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for ManagementError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        let state = |detail: String, italian: &str| Identity::of(USER_STATE, detail, italian);
        Ok(match self {
            ManagementError::UnknownUser => Identity::of(
                UNKNOWN_USER,
                detail,
                "Nessun utente del tuo marchio ha questo identificativo.",
            ),
            ManagementError::OwnAccount => Identity::of(
                OWN_ACCOUNT,
                detail,
                "Non puoi disattivare il tuo account: chiedilo a un altro operatore.",
            ),
            ManagementError::AlreadyDisabled => state(detail, "L'utente è già disattivato."),
            ManagementError::NotDisabled => state(detail, "L'utente è già attivo."),
            ManagementError::NotAnOfficer(_) => Identity::of(
                NOT_AN_OFFICER,
                detail,
                "L'utente non è un incaricato alla registrazione.",
            ),
            ManagementError::Storage(e) => return Err(e),
        })
    }
}

impl Identify for ApplicationError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            ApplicationError::AlreadyPending => Identity::of(
                APPLICATION_PENDING,
                detail,
                "Hai già una richiesta in attesa: ti scriveremo appena sarà esaminata.",
            ),
            ApplicationError::AlreadyOfficer => Identity::of(
                ALREADY_OFFICER,
                detail,
                "Sei già incaricato alla registrazione.",
            ),
            ApplicationError::UnknownApplication => Identity::of(
                UNKNOWN_APPLICATION,
                detail,
                "Nessuna richiesta del tuo marchio ha questo identificativo.",
            ),
            ApplicationError::NoApplication => {
                Identity::of(NO_APPLICATION, detail, "Non hai presentato richieste.")
            }
            ApplicationError::AlreadyDecided(status) => Identity::of(
                APPLICATION_DECIDED,
                detail,
                match status {
                    ApplicationStatus::Approved => "La richiesta è già stata accolta.",
                    ApplicationStatus::Refused => "La richiesta è già stata respinta.",
                    ApplicationStatus::Pending => "La richiesta è ancora in attesa.",
                },
            ),
            ApplicationError::Storage(e) => return Err(e),
        })
    }
}

/// `billing-data-missing` on the `billing` field: the buyer gave no billing data yet.
fn billing_data_missing(kind: ProblemKind, detail: &str) -> Identity {
    Identity::of(
        kind,
        detail,
        "Prima del primo ordine servono i tuoi dati di fatturazione: chi intesta la fattura, \
         il codice fiscale o la partita IVA e l'indirizzo.",
    )
    .on_field("billing", "required")
}

impl Identify for BillingError {
    fn identify(self) -> Result<Identity, anyhow::Error> {
        let detail = self.to_string();
        Ok(match self {
            BillingError::Invalid(fields) => Identity::invalid_billing(fields, "")?,
            BillingError::Missing => billing_data_missing(NO_BILLING_DATA, &detail),
            BillingError::Storage(e) => return Err(e),
        })
    }
}
