//! The buyer's billing data: who the invoice is made out to (the FatturaPA's
//! CessionarioCommittente) and how the SdI reaches them. One profile per user, in
//! `billing_profiles`, which this module alone writes.
//!
//! A buyer is a person (nome, cognome, codice fiscale) or a business or professional
//! (denominazione, or nome and cognome; partita IVA; codice fiscale where it has one),
//! with an address, and reached by the SdI through a codice destinatario, a PEC address,
//! or neither (`0000000`: the invoice waits in the buyer's cassetto fiscale). Ordering
//! needs a profile (`orders::checkout`): an invoice without its buyer cannot be issued.

pub mod fields;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::db::schema::billing_profiles;
use crate::db::{write_transaction, DbConnection};
use crate::email_address::EmailAddress;
use crate::partita_iva::PartitaIva;
use crate::registry::CodiceFiscale;
use crate::validation::Rule;

pub use fields::{
    BusinessCodiceFiscale, Cap, CodiceDestinatario, Comune, Denominazione, FieldError, Indirizzo,
    NamePart, Nazione, Provincia, NO_CODICE_DESTINATARIO,
};

/// A buyer's billing data, every value valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingProfile {
    pub buyer: BuyerIdentity,
    pub address: Address,
    pub delivery: SdiDelivery,
}

/// Who the buyer is, for the tax office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyerIdentity {
    Person {
        nome: NamePart,
        cognome: NamePart,
        codice_fiscale: CodiceFiscale,
    },
    Business {
        name: BusinessName,
        partita_iva: PartitaIva,
        codice_fiscale: Option<BusinessCodiceFiscale>,
    },
}

/// A company's denominazione, or the nome and cognome of a sole trader or professional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusinessName {
    Denominazione(Denominazione),
    Person { nome: NamePart, cognome: NamePart },
}

/// The buyer's address (the FatturaPA's `Sede`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub indirizzo: Indirizzo,
    /// Required in Italy; abroad, where there is one.
    pub cap: Option<Cap>,
    pub comune: Comune,
    /// A province code, `EE` abroad.
    pub provincia: Provincia,
    pub nazione: Nazione,
}

impl Address {
    /// The FatturaPA's `CAP`: the CAP in Italy, `00000` abroad (the field takes 5 digits).
    pub fn document_cap(&self) -> &str {
        match &self.cap {
            Some(cap) if self.nazione.is_italy() => cap.as_str(),
            _ => "00000",
        }
    }
}

/// How the SdI delivers the buyer's invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdiDelivery {
    CodiceDestinatario(CodiceDestinatario),
    Pec(EmailAddress),
    /// Neither: `0000000`, the invoice goes to the buyer's cassetto fiscale.
    CassettoFiscale,
}

impl SdiDelivery {
    /// The FatturaPA's `CodiceDestinatario`: the buyer's, or `0000000` (with a PEC, or
    /// with no channel at all).
    pub fn codice_destinatario(&self) -> &str {
        match self {
            Self::CodiceDestinatario(code) => code.as_str(),
            Self::Pec(_) | Self::CassettoFiscale => NO_CODICE_DESTINATARIO,
        }
    }

    /// The FatturaPA's `PECDestinatario`, when the buyer gave one.
    pub fn pec(&self) -> Option<&EmailAddress> {
        match self {
            Self::Pec(pec) => Some(pec),
            _ => None,
        }
    }
}

/// `person` or `business`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuyerKind {
    Person,
    Business,
}

impl BuyerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Business => "business",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "person" => Some(Self::Person),
            "business" => Some(Self::Business),
            _ => None,
        }
    }
}

impl BillingProfile {
    pub fn kind(&self) -> BuyerKind {
        match self.buyer {
            BuyerIdentity::Person { .. } => BuyerKind::Person,
            BuyerIdentity::Business { .. } => BuyerKind::Business,
        }
    }

    /// The profile as typed values, as the forms and the API show it (`None`: not given).
    pub fn to_input(&self) -> BillingInput {
        let text = |t: &str| Some(t.to_owned());
        let mut input = BillingInput {
            kind: text(self.kind().as_str()),
            indirizzo: text(self.address.indirizzo.as_str()),
            cap: self.address.cap.as_ref().map(|c| c.as_str().to_owned()),
            comune: text(self.address.comune.as_str()),
            provincia: text(self.address.provincia.as_str()),
            nazione: text(self.address.nazione.as_str()),
            ..BillingInput::default()
        };
        match &self.buyer {
            BuyerIdentity::Person {
                nome,
                cognome,
                codice_fiscale,
            } => {
                input.nome = text(nome.as_str());
                input.cognome = text(cognome.as_str());
                input.codice_fiscale = text(codice_fiscale.as_str());
            }
            BuyerIdentity::Business {
                name,
                partita_iva,
                codice_fiscale,
            } => {
                match name {
                    BusinessName::Denominazione(d) => input.denominazione = text(d.as_str()),
                    BusinessName::Person { nome, cognome } => {
                        input.nome = text(nome.as_str());
                        input.cognome = text(cognome.as_str());
                    }
                }
                input.partita_iva = text(partita_iva.as_str());
                input.codice_fiscale = codice_fiscale.as_ref().map(|cf| cf.to_string());
            }
        }
        match &self.delivery {
            SdiDelivery::CodiceDestinatario(code) => {
                input.codice_destinatario = text(code.as_str())
            }
            SdiDelivery::Pec(pec) => input.pec = Some(pec.to_string()),
            SdiDelivery::CassettoFiscale => {}
        }
        input
    }
}

/// The billing data as typed (a form, a request body): every value a text, an empty one
/// the same as none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BillingInput {
    pub kind: Option<String>,
    pub denominazione: Option<String>,
    pub nome: Option<String>,
    pub cognome: Option<String>,
    pub codice_fiscale: Option<String>,
    pub partita_iva: Option<String>,
    pub indirizzo: Option<String>,
    pub cap: Option<String>,
    pub comune: Option<String>,
    pub provincia: Option<String>,
    pub nazione: Option<String>,
    pub codice_destinatario: Option<String>,
    pub pec: Option<String>,
}

/// A value of the billing data that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// The field as the request and the form name it (`cap`, `partita_iva`...).
    pub field: &'static str,
    pub error: FieldError,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum BillingError {
        /// Every value that breaks a rule, so the buyer learns them all at once.
        #[error("invalid billing data: {}", describe(.0))]
        Invalid(Vec<InvalidField>),
        #[error("no billing data yet: an invoice needs the buyer's name, tax code and address")]
        Missing,
    }
    storage from diesel::result::Error
}

fn describe(fields: &[InvalidField]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.error))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects the refusals of one parse.
struct Checks(Vec<InvalidField>);

impl Checks {
    fn check<T>(&mut self, field: &'static str, result: Result<T, FieldError>) -> Option<T> {
        result
            .map_err(|error| self.0.push(InvalidField { field, error }))
            .ok()
    }

    /// A value the rule needs: absent is `required`, present must parse.
    fn required<T, E: Into<FieldError>>(
        &mut self,
        field: &'static str,
        text: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match text {
            None => self.check(field, Err(FieldError::Required)),
            Some(text) => self.check(field, parse(text).map_err(Into::into)),
        }
    }

    fn optional<T, E: Into<FieldError>>(
        &mut self,
        field: &'static str,
        text: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<Option<T>> {
        match text {
            None => Some(None),
            Some(text) => self.check(field, parse(text).map_err(Into::into)).map(Some),
        }
    }
}

/// A typed value, `None` when absent or blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// Checks every value of `input`: the profile, or every value that breaks a rule. The
/// values of the other kind of buyer (a partita IVA for a person) are not kept.
pub fn parse(input: &BillingInput) -> Result<BillingProfile, Vec<InvalidField>> {
    let mut checks = Checks(Vec::new());
    let kind = match given(&input.kind) {
        None => checks.check("kind", Err(FieldError::Required)),
        Some(kind) => checks.check(
            "kind",
            BuyerKind::parse(kind).ok_or(FieldError::OneOf("person, business")),
        ),
    };
    let buyer = match kind {
        Some(BuyerKind::Person) => {
            let nome = checks.required("nome", given(&input.nome), NamePart::parse);
            let cognome = checks.required("cognome", given(&input.cognome), NamePart::parse);
            let codice_fiscale = checks.required(
                "codice_fiscale",
                given(&input.codice_fiscale),
                CodiceFiscale::parse,
            );
            match (nome, cognome, codice_fiscale) {
                (Some(nome), Some(cognome), Some(codice_fiscale)) => Some(BuyerIdentity::Person {
                    nome,
                    cognome,
                    codice_fiscale,
                }),
                _ => None,
            }
        }
        Some(BuyerKind::Business) => {
            let name = business_name(&mut checks, input);
            let partita_iva =
                checks.required("partita_iva", given(&input.partita_iva), PartitaIva::parse);
            let codice_fiscale = checks.optional(
                "codice_fiscale",
                given(&input.codice_fiscale),
                BusinessCodiceFiscale::parse,
            );
            match (name, partita_iva, codice_fiscale) {
                (Some(name), Some(partita_iva), Some(codice_fiscale)) => {
                    Some(BuyerIdentity::Business {
                        name,
                        partita_iva,
                        codice_fiscale,
                    })
                }
                _ => None,
            }
        }
        None => None,
    };
    let address = address(&mut checks, input);
    let delivery = delivery(&mut checks, input);
    match (buyer, address, delivery) {
        (Some(buyer), Some(address), Some(delivery)) if checks.0.is_empty() => Ok(BillingProfile {
            buyer,
            address,
            delivery,
        }),
        _ => Err(checks.0),
    }
}

fn business_name(checks: &mut Checks, input: &BillingInput) -> Option<BusinessName> {
    let (denominazione, nome, cognome) = (
        given(&input.denominazione),
        given(&input.nome),
        given(&input.cognome),
    );
    match (denominazione, nome.or(cognome)) {
        (Some(_), Some(_)) => checks.check("denominazione", Err(FieldError::NameOrDenominazione)),
        (Some(d), None) => checks
            .required("denominazione", Some(d), Denominazione::parse)
            .map(BusinessName::Denominazione),
        (None, Some(_)) => {
            let nome = checks.required("nome", nome, NamePart::parse);
            let cognome = checks.required("cognome", cognome, NamePart::parse);
            Some(BusinessName::Person {
                nome: nome?,
                cognome: cognome?,
            })
        }
        (None, None) => checks.check("denominazione", Err(FieldError::Required)),
    }
}

fn address(checks: &mut Checks, input: &BillingInput) -> Option<Address> {
    let indirizzo = checks.required("indirizzo", given(&input.indirizzo), Indirizzo::parse);
    let comune = checks.required("comune", given(&input.comune), Comune::parse);
    let nazione = checks.check(
        "nazione",
        Nazione::parse(given(&input.nazione).unwrap_or("")),
    );
    // The CAP and the provincia follow the country: without a valid one, they wait.
    let (cap, provincia) = match &nazione {
        Some(nazione) => (
            match nazione.is_italy() {
                true => checks
                    .required("cap", given(&input.cap), |c| Cap::parse(c, nazione))
                    .map(Some),
                false => checks.optional("cap", given(&input.cap), |c| Cap::parse(c, nazione)),
            },
            checks.check(
                "provincia",
                match (given(&input.provincia), nazione.is_italy()) {
                    (None, true) => Err(FieldError::Required),
                    (typed, _) => Provincia::parse(typed.unwrap_or(""), nazione),
                },
            ),
        ),
        None => (None, None),
    };
    Some(Address {
        indirizzo: indirizzo?,
        cap: cap?,
        comune: comune?,
        provincia: provincia?,
        nazione: nazione?,
    })
}

fn delivery(checks: &mut Checks, input: &BillingInput) -> Option<SdiDelivery> {
    let code = checks.optional(
        "codice_destinatario",
        given(&input.codice_destinatario),
        CodiceDestinatario::parse,
    );
    let pec = checks.optional("pec", given(&input.pec), EmailAddress::parse);
    match (code?, pec?) {
        (Some(code), Some(_)) if !code.is_none_code() => {
            checks.check("pec", Err(FieldError::CodeOrPec))
        }
        (_, Some(pec)) => Some(SdiDelivery::Pec(pec)),
        (Some(code), None) if !code.is_none_code() => Some(SdiDelivery::CodiceDestinatario(code)),
        _ => Some(SdiDelivery::CassettoFiscale),
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = billing_profiles)]
struct Row {
    kind: String,
    denominazione: Option<String>,
    nome: Option<String>,
    cognome: Option<String>,
    codice_fiscale: Option<String>,
    partita_iva: Option<String>,
    indirizzo: String,
    cap: Option<String>,
    comune: String,
    provincia: String,
    nazione: String,
    codice_destinatario: Option<String>,
    pec: Option<String>,
    updated_at: NaiveDateTime,
}

/// A stored profile and when it last changed.
#[derive(Debug, Clone)]
pub struct StoredProfile {
    pub profile: BillingProfile,
    pub updated_at: DateTime<Utc>,
}

/// The billing data of `user_id`, `None` when they gave none yet.
pub fn profile_of(
    conn: &mut DbConnection,
    user_id: &str,
) -> Result<Option<BillingProfile>, BillingError> {
    Ok(stored_profile(conn, user_id)?.map(|stored| stored.profile))
}

/// As [`profile_of`], with when it last changed.
pub fn stored_profile(
    conn: &mut DbConnection,
    user_id: &str,
) -> Result<Option<StoredProfile>, BillingError> {
    let row: Option<Row> = billing_profiles::table
        .find(user_id)
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    row.map(|row| stored_from_row(user_id, row)).transpose()
}

/// The billing data of each of `user_ids` that gave some, by user id: what the invoices
/// of a batch of fulfilled orders need, in one read.
pub fn profiles_of(
    conn: &mut DbConnection,
    user_ids: &[&str],
) -> Result<HashMap<String, BillingProfile>, BillingError> {
    let rows: Vec<(String, Row)> = billing_profiles::table
        .filter(billing_profiles::user_id.eq_any(user_ids))
        .select((billing_profiles::user_id, Row::as_select()))
        .load(conn)?;
    rows.into_iter()
        .map(|(user_id, row)| {
            let stored = stored_from_row(&user_id, row)?;
            Ok((user_id, stored.profile))
        })
        .collect()
}

fn stored_from_row(user_id: &str, row: Row) -> Result<StoredProfile, BillingError> {
    let input = BillingInput {
        kind: Some(row.kind),
        denominazione: row.denominazione,
        nome: row.nome,
        cognome: row.cognome,
        codice_fiscale: row.codice_fiscale,
        partita_iva: row.partita_iva,
        indirizzo: Some(row.indirizzo),
        cap: row.cap,
        comune: Some(row.comune),
        provincia: Some(row.provincia),
        nazione: Some(row.nazione),
        codice_destinatario: row.codice_destinatario,
        pec: row.pec,
    };
    // Stored only after these very checks: a row that fails them was changed by hand.
    let profile = parse(&input).map_err(|invalid| {
        anyhow::anyhow!(
            "the billing data of user {user_id} no longer passes its checks: {}",
            describe(&invalid)
        )
    })?;
    Ok(StoredProfile {
        profile,
        updated_at: row.updated_at.and_utc(),
    })
}

/// Sets the billing data of `user_id` (of brand `brand_id`) to `input`, whole: every value
/// checked, then stored and audited in one transaction.
pub fn update(
    conn: &mut DbConnection,
    user_id: &str,
    brand_id: &str,
    input: &BillingInput,
    now: DateTime<Utc>,
) -> Result<StoredProfile, BillingError> {
    let profile = parse(input).map_err(BillingError::Invalid)?;
    let stored = profile.to_input();
    let at = now.naive_utc();
    // The columns an update rewrites, written once for the insert and for the update.
    macro_rules! profile_columns {
        () => {
            (
                billing_profiles::kind.eq(profile.kind().as_str()),
                billing_profiles::denominazione.eq(&stored.denominazione),
                billing_profiles::nome.eq(&stored.nome),
                billing_profiles::cognome.eq(&stored.cognome),
                billing_profiles::codice_fiscale.eq(&stored.codice_fiscale),
                billing_profiles::partita_iva.eq(&stored.partita_iva),
                billing_profiles::indirizzo.eq(stored.indirizzo.clone().unwrap_or_default()),
                billing_profiles::cap.eq(&stored.cap),
                billing_profiles::comune.eq(stored.comune.clone().unwrap_or_default()),
                billing_profiles::provincia.eq(stored.provincia.clone().unwrap_or_default()),
                billing_profiles::nazione.eq(stored.nazione.clone().unwrap_or_default()),
                billing_profiles::codice_destinatario.eq(&stored.codice_destinatario),
                billing_profiles::pec.eq(&stored.pec),
                billing_profiles::updated_at.eq(at),
            )
        };
    }
    let values = (
        billing_profiles::user_id.eq(user_id),
        billing_profiles::brand_id.eq(brand_id),
        billing_profiles::created_at.eq(at),
        profile_columns!(),
    );
    write_transaction(conn, |conn| {
        upsert!(
            conn,
            billing_profiles::table,
            values,
            on billing_profiles::user_id,
            set profile_columns!()
        )?;
        // Who changed what kind of data, not the data: it is in the row, and the log
        // keeps no personal data it does not need.
        audit::record_own_account(
            conn,
            brand_id,
            user_id,
            "user.billing_updated",
            json!({
                "kind": profile.kind().as_str(),
                "nazione": profile.address.nazione.as_str(),
                "sdi_channel": match profile.delivery {
                    SdiDelivery::CodiceDestinatario(_) => "codice_destinatario",
                    SdiDelivery::Pec(_) => "pec",
                    SdiDelivery::CassettoFiscale => "none",
                },
            }),
            now,
        )?;
        Ok::<_, BillingError>(())
    })?;
    Ok(StoredProfile {
        profile,
        updated_at: now,
    })
}

/// The rule names of `fields`, for tests and logs: `cap:cap`, `pec:email`...
pub fn rules(fields: &[InvalidField]) -> Vec<String> {
    fields
        .iter()
        .map(|f| format!("{}:{}", f.field, f.error.rule()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> BillingInput {
        BillingInput {
            kind: Some("person".into()),
            nome: Some("Maria".into()),
            cognome: Some("Rossi".into()),
            codice_fiscale: Some("RSSMRA80A01H501U".into()),
            indirizzo: Some("Via Roma 1".into()),
            cap: Some("00184".into()),
            comune: Some("Roma".into()),
            provincia: Some("RM".into()),
            ..BillingInput::default()
        }
    }

    fn business() -> BillingInput {
        BillingInput {
            kind: Some("business".into()),
            denominazione: Some("Studio Rossi S.r.l.".into()),
            partita_iva: Some("00743110157".into()),
            codice_destinatario: Some("M5UXCR1".into()),
            nome: None,
            cognome: None,
            codice_fiscale: None,
            ..person()
        }
    }

    #[test]
    fn a_person_needs_name_and_codice_fiscale() {
        let profile = parse(&person()).unwrap();
        assert_eq!(profile.kind(), BuyerKind::Person);
        assert_eq!(profile.address.nazione.as_str(), "IT");
        assert_eq!(profile.delivery, SdiDelivery::CassettoFiscale);
        assert_eq!(profile.delivery.codice_destinatario(), "0000000");
        let missing = BillingInput {
            codice_fiscale: None,
            nome: Some("  ".into()),
            ..person()
        };
        assert_eq!(
            rules(&parse(&missing).unwrap_err()),
            ["nome:required", "codice_fiscale:required"]
        );
    }

    #[test]
    fn a_business_needs_a_name_and_a_partita_iva() {
        let profile = parse(&business()).unwrap();
        assert_eq!(profile.delivery.codice_destinatario(), "M5UXCR1");
        let sole_trader = BillingInput {
            denominazione: None,
            nome: Some("Mario".into()),
            cognome: Some("Rossi".into()),
            codice_fiscale: Some("RSSMRA80A01H501U".into()),
            ..business()
        };
        assert!(matches!(
            parse(&sole_trader).unwrap().buyer,
            BuyerIdentity::Business {
                name: BusinessName::Person { .. },
                codice_fiscale: Some(BusinessCodiceFiscale::Person(_)),
                ..
            }
        ));
        let both = BillingInput {
            nome: Some("Mario".into()),
            ..business()
        };
        assert_eq!(
            rules(&parse(&both).unwrap_err()),
            ["denominazione:exclusive"]
        );
        let half = BillingInput {
            denominazione: None,
            nome: Some("Mario".into()),
            ..business()
        };
        assert_eq!(rules(&parse(&half).unwrap_err()), ["cognome:required"]);
        let nameless = BillingInput {
            denominazione: None,
            partita_iva: Some("00743110158".into()),
            ..business()
        };
        assert_eq!(
            rules(&parse(&nameless).unwrap_err()),
            ["denominazione:required", "partita_iva:check_digit"]
        );
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let bad = BillingInput {
            kind: Some("business".into()),
            denominazione: Some("x".repeat(81)),
            partita_iva: Some("00743110158".into()),
            codice_fiscale: Some("0074311015".into()),
            cap: Some("0018".into()),
            provincia: Some("XX".into()),
            codice_destinatario: Some("M5UXCR".into()),
            pec: Some("not an address".into()),
            nome: None,
            cognome: None,
            ..person()
        };
        assert_eq!(
            rules(&parse(&bad).unwrap_err()),
            [
                "denominazione:max_length",
                "partita_iva:check_digit",
                "codice_fiscale:length",
                "cap:cap",
                "provincia:provincia",
                "codice_destinatario:codice_destinatario",
                "pec:email",
            ]
        );
        let no_kind = BillingInput {
            kind: Some("company".into()),
            nazione: Some("XX".into()),
            ..person()
        };
        assert_eq!(
            rules(&parse(&no_kind).unwrap_err()),
            ["kind:one_of", "nazione:nazione"]
        );
    }

    #[test]
    fn the_sdi_channel_is_a_code_a_pec_or_neither() {
        let pec = BillingInput {
            codice_destinatario: None,
            pec: Some("Studio@PEC.example.it".into()),
            ..business()
        };
        let profile = parse(&pec).unwrap();
        assert_eq!(profile.delivery.codice_destinatario(), "0000000");
        assert_eq!(
            profile.delivery.pec().unwrap().as_str(),
            "studio@pec.example.it"
        );
        let both = BillingInput {
            pec: Some("studio@pec.example.it".into()),
            ..business()
        };
        assert_eq!(rules(&parse(&both).unwrap_err()), ["pec:exclusive"]);
        let zeros_and_pec = BillingInput {
            codice_destinatario: Some("0000000".into()),
            ..pec
        };
        assert!(matches!(
            parse(&zeros_and_pec).unwrap().delivery,
            SdiDelivery::Pec(_)
        ));
        let no_channel = BillingInput {
            codice_destinatario: None,
            ..business()
        };
        assert_eq!(
            parse(&no_channel).unwrap().delivery,
            SdiDelivery::CassettoFiscale
        );
    }

    #[test]
    fn abroad_the_cap_is_free_and_the_provincia_ee() {
        let abroad = BillingInput {
            nazione: Some("DE".into()),
            cap: Some("10115".into()),
            provincia: None,
            comune: Some("Berlin".into()),
            ..business()
        };
        let profile = parse(&abroad).unwrap();
        assert_eq!(profile.address.provincia.as_str(), "EE");
        assert_eq!(profile.address.document_cap(), "00000");
        assert_eq!(parse(&person()).unwrap().address.document_cap(), "00184");
    }

    #[test]
    fn a_profile_reads_back_as_it_was_typed() {
        for input in [person(), business()] {
            let profile = parse(&input).unwrap();
            assert_eq!(parse(&profile.to_input()).unwrap(), profile);
        }
    }
}
