//! The SdI's notification files (the "messaggi" schema, `MessaggiTypes_v1.1.xsd`): what
//! each says about which file. The root element names the notification; its children are
//! unqualified. The enveloped signature (`ds:Signature`) is not checked here: the file
//! comes from the brand's own PEC mailbox or the SdI's site, and the operator imports it.
//!
//! A notification's file name is the name of the file it is about, without the
//! extension, then `_<kind>_<progressive of up to 3 characters>.xml`:
//! `IT01234567897_0000A_RC_001.xml`.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::xml_tree::Element;

text_enum!(
    /// The kinds of notification, by their two-letter code in file names.
    NotificationKind {
        /// Ricevuta di consegna: delivered to the buyer's channel.
        Delivered => "RC",
        /// Notifica di scarto: refused by the SdI's checks; the document counts as not
        /// issued until it is sent again.
        Rejected => "NS",
        /// Notifica di mancata consegna: issued, but the buyer's channel did not take it;
        /// the buyer finds it in their area riservata (cassetto fiscale).
        NotDelivered => "MC",
        /// Notifica di esito: a public administration buyer accepted or refused it.
        Outcome => "NE",
        /// Notifica di decorrenza termini: the public administration did not answer in time.
        TermsElapsed => "DT",
        /// Attestazione di avvenuta trasmissione con impossibilità di recapito.
        TransmittedUndeliverable => "AT",
        /// File dei metadati: sent with an invoice received (the buyer's side).
        Metadata => "MT",
    }
);

impl NotificationKind {
    /// The root element of its file.
    fn root_element(self) -> &'static str {
        match self {
            Self::Delivered => "RicevutaConsegna",
            Self::Rejected => "NotificaScarto",
            Self::NotDelivered => "NotificaMancataConsegna",
            Self::Outcome => "NotificaEsito",
            Self::TermsElapsed => "NotificaDecorrenzaTermini",
            Self::TransmittedUndeliverable => "AttestazioneTrasmissioneFattura",
            Self::Metadata => "MetadatiInvioFile",
        }
    }

    fn of_root(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| kind.root_element() == name)
    }

    /// Whether the file carries `DataOraRicezione` (when the SdI received the document).
    fn has_reception_time(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Rejected | Self::NotDelivered | Self::TransmittedUndeliverable
        )
    }
}

/// One error of a notifica di scarto's ListaErrori.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SdiError {
    /// The SdI's five-digit code (`00305`...).
    #[schema(example = "00305")]
    pub code: String,
    #[schema(example = "1.4.1.1.2 <IdCodice> non valido")]
    pub description: String,
    /// What to do about it, when the SdI says.
    pub hint: Option<String>,
}

/// A notification as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub kind: NotificationKind,
    /// The SdI's identifier of the document file it is about.
    pub identificativo_sdi: String,
    /// The document file it is about.
    pub nome_file: String,
    /// When the SdI received the document file, for the kinds that say.
    pub received_at: Option<DateTime<Utc>>,
    /// When the buyer's channel took it (ricevuta di consegna).
    pub delivered_at: Option<DateTime<Utc>>,
    pub message_id: String,
    /// The ListaErrori of a notifica di scarto; empty otherwise.
    pub errors: Vec<SdiError>,
    /// The Descrizione of a mancata consegna or decorrenza termini, if any.
    pub description: Option<String>,
}

/// Why a file is not a notification this service reads: the rule it breaks and what was
/// wrong, in English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file_name}: {detail}")]
pub struct NotificationRefused {
    pub file_name: String,
    /// `utf8`, `xml`, `known_notification`, `required_element`, `identificativo_sdi`,
    /// `date_time`, `file_name_kind`.
    pub rule: &'static str,
    pub detail: String,
}

/// Reads the notification file `file_name` holding `bytes`.
pub fn parse(file_name: &str, bytes: &[u8]) -> Result<Notification, NotificationRefused> {
    let refused = |rule: &'static str, detail: String| NotificationRefused {
        file_name: file_name.to_owned(),
        rule,
        detail,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|e| refused("utf8", format!("not UTF-8 text ({e})")))?;
    let root = Element::parse_document(text.trim_start_matches('\u{feff}'))
        .map_err(|e| refused("xml", format!("not XML: {} at {}", e.message, e.location)))?;
    let kind = NotificationKind::of_root(&root.name).ok_or_else(|| {
        refused(
            "known_notification",
            format!(
                "<{}> is not a notification of the SdI (RicevutaConsegna, NotificaScarto, \
                 NotificaMancataConsegna, NotificaEsito, NotificaDecorrenzaTermini, \
                 AttestazioneTrasmissioneFattura, MetadatiInvioFile)",
                root.name
            ),
        )
    })?;
    if let Some(named) = kind_in_file_name(file_name) {
        if named != kind {
            return Err(refused(
                "file_name_kind",
                format!(
                    "the file name says {} but the file is a {}",
                    named.as_str(),
                    kind.root_element()
                ),
            ));
        }
    }
    let required = |name: &str| {
        root.text_at(name).map(str::to_owned).ok_or_else(|| {
            refused(
                "required_element",
                format!("<{}> has no <{name}>", kind.root_element()),
            )
        })
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, NotificationRefused> {
        root.text_at(name)
            .map(|text| {
                date_time(text).ok_or_else(|| {
                    refused(
                        "date_time",
                        format!("<{name}> '{text}' is not a date and time"),
                    )
                })
            })
            .transpose()
    };
    let identificativo_sdi = required("IdentificativoSdI")?;
    if identificativo_sdi.len() > 12 || !identificativo_sdi.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(
            "identificativo_sdi",
            format!(
                "<IdentificativoSdI> '{identificativo_sdi}' is not a number of up to 12 digits"
            ),
        ));
    }
    let nome_file = required("NomeFile")?;
    let received_at = time("DataOraRicezione")?;
    if kind.has_reception_time() && received_at.is_none() {
        required("DataOraRicezione")?;
    }
    let delivered_at = time("DataOraConsegna")?;
    if kind == NotificationKind::Delivered && delivered_at.is_none() {
        required("DataOraConsegna")?;
    }
    let message_id = required("MessageId")?;
    let errors: Vec<SdiError> = root
        .find_all("ListaErrori/Errore")
        .into_iter()
        .map(|error| SdiError {
            code: error.text_at("Codice").unwrap_or_default().to_owned(),
            description: error.text_at("Descrizione").unwrap_or_default().to_owned(),
            hint: error.text_at("Suggerimento").map(str::to_owned),
        })
        .collect();
    if kind == NotificationKind::Rejected && errors.is_empty() {
        required("ListaErrori/Errore")?;
    }
    Ok(Notification {
        kind,
        identificativo_sdi,
        nome_file,
        received_at,
        delivered_at,
        message_id,
        errors,
        description: root.text_at("Descrizione").map(str::to_owned),
    })
}

/// The kind a notification's file name says (`..._RC_001.xml`), if it follows the rule.
fn kind_in_file_name(file_name: &str) -> Option<NotificationKind> {
    let stem = file_name.strip_suffix(".xml")?;
    let mut parts = stem.rsplitn(3, '_');
    let progressive = parts.next()?;
    let kind = parts.next()?;
    parts.next()?;
    let progressive_ok = (1..=3).contains(&progressive.len())
        && progressive
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    progressive_ok
        .then(|| NotificationKind::parse(kind))
        .flatten()
}

/// An `xsd:dateTime`: with its offset (`2026-12-01T10:15:00.000+01:00`, `...Z`), or
/// without one, which the SdI means as Italian time.
fn date_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Some(with_offset.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    // The offset in force at that local time; an hour's doubt at the autumn change is
    // harmless for dates shown to the operator.
    let offset = italian_offset(local - Duration::hours(1));
    Some(Utc.from_utc_datetime(&(local - offset)))
}

/// The last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next_month = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("a valid month");
    let last = next_month.pred_opt().expect("a day before");
    let back = last.weekday().num_days_from_sunday();
    last - Duration::days(back.into())
}

/// Italy's offset from UTC at the UTC time `at`: summer time (+2) from 01:00 UTC of the
/// last Sunday of March to 01:00 UTC of the last Sunday of October, +1 otherwise (the EU
/// rule).
fn italian_offset(at: NaiveDateTime) -> Duration {
    let year = at.year();
    let starts = last_sunday(year, 3).and_hms_opt(1, 0, 0).expect("valid");
    let ends = last_sunday(year, 10).and_hms_opt(1, 0, 0).expect("valid");
    if at >= starts && at < ends {
        Duration::hours(2)
    } else {
        Duration::hours(1)
    }
}

/// The date in Italy at `at`.
pub fn italian_date(at: DateTime<Utc>) -> NaiveDate {
    let naive = at.naive_utc();
    (naive + italian_offset(naive)).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCARTO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ns3:NotificaScarto xmlns:ns3="http://ivaservizi.agenziaentrate.gov.it/docs/xsd/messaggi/v1.0" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" versione="1.0">
  <IdentificativoSdI>4242</IdentificativoSdI>
  <NomeFile>IT01234567897_00001.xml</NomeFile>
  <DataOraRicezione>2026-12-01T10:15:00.000+01:00</DataOraRicezione>
  <ListaErrori>
    <Errore><Codice>00305</Codice><Descrizione>IdCodice non valido</Descrizione><Suggerimento>Correggi</Suggerimento></Errore>
    <Errore><Codice>00311</Codice><Descrizione>CodiceDestinatario non valido</Descrizione></Errore>
  </ListaErrori>
  <MessageId>123456</MessageId>
  <ds:Signature><ds:SignedInfo/></ds:Signature>
</ns3:NotificaScarto>"#;

    #[test]
    fn a_scarto_gives_its_file_and_errors() {
        let parsed = parse("IT01234567897_00001_NS_001.xml", SCARTO.as_bytes()).unwrap();
        assert_eq!(parsed.kind, NotificationKind::Rejected);
        assert_eq!(parsed.identificativo_sdi, "4242");
        assert_eq!(parsed.nome_file, "IT01234567897_00001.xml");
        assert_eq!(parsed.message_id, "123456");
        assert_eq!(
            parsed.received_at.unwrap().to_rfc3339(),
            "2026-12-01T09:15:00+00:00"
        );
        assert_eq!(parsed.errors.len(), 2);
        assert_eq!(parsed.errors[0].hint.as_deref(), Some("Correggi"));
        assert_eq!(parsed.errors[1].hint, None);
    }

    #[test]
    fn each_broken_file_names_its_rule() {
        let rule = |name: &str, text: &str| parse(name, text.as_bytes()).unwrap_err().rule;
        assert_eq!(rule("a.xml", "not xml <"), "xml");
        assert_eq!(rule("a.xml", "<Fattura/>"), "known_notification");
        assert_eq!(rule("x_RC_001.xml", SCARTO), "file_name_kind");
        assert_eq!(
            rule(
                "a.xml",
                &SCARTO.replace("<NomeFile>IT01234567897_00001.xml</NomeFile>", "")
            ),
            "required_element"
        );
        assert_eq!(
            rule("a.xml", &SCARTO.replace("2026-12-01T10:15", "ieri")),
            "date_time"
        );
        assert_eq!(
            rule("a.xml", &SCARTO.replace(">4242<", ">abc<")),
            "identificativo_sdi"
        );
        assert_eq!(parse("a.xml", &[0xff, 0xfe]).unwrap_err().rule, "utf8");
    }

    #[test]
    fn times_without_offset_are_italian() {
        let winter = date_time("2026-12-01T23:30:00").unwrap();
        assert_eq!(winter.to_rfc3339(), "2026-12-01T22:30:00+00:00");
        let summer = date_time("2026-07-01T12:00:00.5").unwrap();
        assert_eq!(summer.to_rfc3339(), "2026-07-01T10:00:00.500+00:00");
        assert_eq!(
            italian_date(Utc.with_ymd_and_hms(2026, 12, 1, 23, 30, 0).unwrap()),
            NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
        );
        assert_eq!(
            last_sunday(2026, 3),
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()
        );
        assert_eq!(
            last_sunday(2026, 10),
            NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()
        );
    }
}
