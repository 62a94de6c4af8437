//! The values of a buyer's billing data that have a rule of their own: CAP, provincia,
//! nazione, codice destinatario, and the codice fiscale of a business. Each can only hold
//! a valid value; each refusal names its rule.

use std::fmt;

use serde::Serialize;

use crate::partita_iva::{PartitaIva, PartitaIvaError};
use crate::registry::{CodiceFiscale, CodiceFiscaleError};
use crate::validation::{Rule, Text};

/// A company's name as the FatturaPA takes it (`Denominazione`, at most 80 characters).
pub type Denominazione = Text<1, 80>;
/// `Nome` or `Cognome` of the FatturaPA (at most 60 characters each).
pub type NamePart = Text<1, 60>;
/// `Indirizzo` (street and number) of the FatturaPA.
pub type Indirizzo = Text<1, 60>;
/// `Comune` of the FatturaPA.
pub type Comune = Text<1, 60>;

/// The province codes of Italy (sigle automobilistiche), `EE` (abroad) aside. With the
/// four Sardinian codes of 2005-2016 (CI, OG, OT, VS): addresses still carry them and
/// the regional law 9/2023 brings those provinces back.
const PROVINCE: &[&str] = &[
    "AG", "AL", "AN", "AO", "AP", "AQ", "AR", "AT", "AV", "BA", "BG", "BI", "BL", "BN", "BO", "BR",
    "BS", "BT", "BZ", "CA", "CB", "CE", "CH", "CI", "CL", "CN", "CO", "CR", "CS", "CT", "CZ", "EN",
    "FC", "FE", "FG", "FI", "FM", "FR", "GE", "GO", "GR", "IM", "IS", "KR", "LC", "LE", "LI", "LO",
    "LT", "LU", "MB", "MC", "ME", "MI", "MN", "MO", "MS", "MT", "NA", "NO", "NU", "OG", "OR", "OT",
    "PA", "PC", "PD", "PE", "PG", "PI", "PN", "PO", "PR", "PT", "PU", "PV", "PZ", "RA", "RC", "RE",
    "RG", "RI", "RM", "RN", "RO", "SA", "SI", "SO", "SP", "SR", "SS", "SU", "SV", "TA", "TE", "TN",
    "TO", "TP", "TR", "TS", "TV", "UD", "VA", "VB", "VC", "VE", "VI", "VR", "VS", "VT", "VV",
];

/// The ISO 3166-1 alpha-2 country codes.
const NAZIONI: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI \
    BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY \
    CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN \
    GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH \
    KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO \
    MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL \
    PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV \
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN \
    VU WF WS YE YT ZA ZM ZW";

/// The province code of an address abroad.
pub const ABROAD: &str = "EE";

/// Why a value of the billing data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("is required")]
    Required,
    #[error("must be one of: {0}")]
    OneOf(&'static str),
    #[error("give either the denominazione or nome and cognome, not both")]
    NameOrDenominazione,
    #[error("give either a codice destinatario or a PEC address, not both")]
    CodeOrPec,
    #[error("{0}")]
    Text(#[from] crate::validation::TextError),
    #[error("an Italian CAP has exactly 5 digits")]
    Cap,
    #[error("a foreign postal code has 1 to 10 letters, digits, spaces or hyphens")]
    ForeignPostalCode,
    #[error("'{0}' is not an Italian province code (two letters such as RM; EE only abroad)")]
    Provincia(String),
    #[error("an address abroad has provincia EE")]
    ProvinciaAbroad,
    #[error("'{0}' is not an ISO 3166-1 alpha-2 country code (such as IT)")]
    Nazione(String),
    #[error("a codice destinatario has exactly 7 letters or digits")]
    CodiceDestinatario,
    #[error("{0}")]
    PartitaIva(#[from] PartitaIvaError),
    #[error("{0}")]
    CodiceFiscale(#[from] CodiceFiscaleError),
    #[error("{0}")]
    Pec(#[from] crate::email_address::EmailAddressError),
}

impl Rule for FieldError {
    fn rule(&self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::OneOf(_) => "one_of",
            Self::NameOrDenominazione | Self::CodeOrPec => "exclusive",
            Self::Text(e) => e.rule(),
            Self::Cap | Self::ForeignPostalCode => "cap",
            Self::Provincia(_) | Self::ProvinciaAbroad => "provincia",
            Self::Nazione(_) => "nazione",
            Self::CodiceDestinatario => "codice_destinatario",
            Self::PartitaIva(e) => e.rule(),
            Self::CodiceFiscale(e) => e.rule(),
            Self::Pec(e) => e.rule(),
        }
    }
}

fn compact_upper(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The postal code: in Italy exactly 5 digits; abroad 1 to 10 letters, digits, spaces or
/// hyphens (the FatturaPA has room for an Italian CAP only, and takes `00000` there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Cap(String);

impl Cap {
    pub fn parse(input: &str, nazione: &Nazione) -> Result<Self, FieldError> {
        let trimmed = input.trim();
        if nazione.is_italy() {
            if trimmed.len() == 5 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Self(trimmed.to_owned()));
            }
            return Err(FieldError::Cap);
        }
        let upper = trimmed.to_ascii_uppercase();
        if (1..=10).contains(&upper.len())
            && upper
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        {
            Ok(Self(upper))
        } else {
            Err(FieldError::ForeignPostalCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A province code: one of Italy's, or `EE` for an address abroad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Provincia(String);

impl Provincia {
    /// `EE` for an address abroad (an empty field means it too); otherwise a real code.
    pub fn parse(input: &str, nazione: &Nazione) -> Result<Self, FieldError> {
        let code = compact_upper(input);
        if !nazione.is_italy() {
            return match code.as_str() {
                "" | ABROAD => Ok(Self(ABROAD.to_owned())),
                _ => Err(FieldError::ProvinciaAbroad),
            };
        }
        if PROVINCE.contains(&code.as_str()) {
            Ok(Self(code))
        } else {
            Err(FieldError::Provincia(input.trim().to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 country code, `IT` when none is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Nazione(String);

impl Nazione {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let code = compact_upper(input);
        if code.is_empty() {
            return Ok(Self::italy());
        }
        if code.len() == 2 && NAZIONI.split_whitespace().any(|n| n == code) {
            Ok(Self(code))
        } else {
            Err(FieldError::Nazione(input.trim().to_owned()))
        }
    }

    pub fn italy() -> Self {
        Self("IT".to_owned())
    }

    pub fn is_italy(&self) -> bool {
        self.0 == "IT"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The code the SdI delivers a buyer's invoices by: 7 letters or digits (uppercase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CodiceDestinatario(String);

/// The codice destinatario of a buyer the SdI has no channel for (a consumer, or a
/// business that gave none): the invoice waits in their cassetto fiscale.
pub const NO_CODICE_DESTINATARIO: &str = "0000000";

impl CodiceDestinatario {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let code = compact_upper(input);
        if code.len() == 7 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(code))
        } else {
            Err(FieldError::CodiceDestinatario)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `0000000`: no channel given.
    pub fn is_none_code(&self) -> bool {
        self.0 == NO_CODICE_DESTINATARIO
    }
}

/// The codice fiscale of a business: a person's (16 characters, a sole trader or a
/// professional) or a company's (11 digits, checked as a partita IVA, often the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusinessCodiceFiscale {
    Person(CodiceFiscale),
    Company(PartitaIva),
}

impl BusinessCodiceFiscale {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let compact = compact_upper(input);
        if !compact.is_empty() && compact.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self::Company(PartitaIva::parse(&compact)?))
        } else {
            Ok(Self::Person(CodiceFiscale::parse(&compact)?))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Person(cf) => cf.as_str(),
            Self::Company(numeric) => numeric.as_str(),
        }
    }
}

impl fmt::Display for BusinessCodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BusinessCodiceFiscale {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it() -> Nazione {
        Nazione::italy()
    }

    #[test]
    fn cap_has_five_digits_in_italy_only() {
        assert_eq!(Cap::parse(" 00184 ", &it()).unwrap().as_str(), "00184");
        for bad in ["0018", "001845", "0018A", ""] {
            assert_eq!(Cap::parse(bad, &it()).unwrap_err().rule(), "cap", "{bad}");
        }
        let france = Nazione::parse("fr").unwrap();
        assert_eq!(Cap::parse("75001", &france).unwrap().as_str(), "75001");
        assert_eq!(
            Cap::parse("sw1a 1aa", &Nazione::parse("GB").unwrap())
                .unwrap()
                .as_str(),
            "SW1A 1AA"
        );
        assert_eq!(Cap::parse("", &france).unwrap_err().rule(), "cap");
    }

    #[test]
    fn provincia_is_a_real_code() {
        assert_eq!(Provincia::parse("rm", &it()).unwrap().as_str(), "RM");
        assert_eq!(Provincia::parse("SU", &it()).unwrap().as_str(), "SU");
        for bad in ["XX", "EE", "R", "ROM", ""] {
            assert_eq!(
                Provincia::parse(bad, &it()).unwrap_err().rule(),
                "provincia",
                "{bad}"
            );
        }
        let abroad = Nazione::parse("DE").unwrap();
        assert_eq!(Provincia::parse("", &abroad).unwrap().as_str(), "EE");
        assert_eq!(Provincia::parse("ee", &abroad).unwrap().as_str(), "EE");
        assert_eq!(
            Provincia::parse("RM", &abroad).unwrap_err().rule(),
            "provincia"
        );
    }

    #[test]
    fn nazione_is_iso_3166_alpha_2() {
        assert!(Nazione::parse("").unwrap().is_italy());
        assert_eq!(Nazione::parse(" de ").unwrap().as_str(), "DE");
        for bad in ["XX", "ITA", "I", "UK"] {
            assert_eq!(Nazione::parse(bad).unwrap_err().rule(), "nazione", "{bad}");
        }
        assert_eq!(NAZIONI.split_whitespace().count(), 249);
    }

    #[test]
    fn codice_destinatario_has_seven_characters() {
        assert_eq!(
            CodiceDestinatario::parse("m5uxcr1").unwrap().as_str(),
            "M5UXCR1"
        );
        assert!(CodiceDestinatario::parse("0000000").unwrap().is_none_code());
        for bad in ["M5UXCR", "M5UXCR12", "M5UX-R1", ""] {
            assert_eq!(
                CodiceDestinatario::parse(bad).unwrap_err().rule(),
                "codice_destinatario",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_business_codice_fiscale_is_a_persons_or_eleven_checked_digits() {
        assert!(matches!(
            BusinessCodiceFiscale::parse("00743110157").unwrap(),
            BusinessCodiceFiscale::Company(_)
        ));
        assert!(matches!(
            BusinessCodiceFiscale::parse("rssmra80a01h501u").unwrap(),
            BusinessCodiceFiscale::Person(_)
        ));
        assert_eq!(
            BusinessCodiceFiscale::parse("00743110158")
                .unwrap_err()
                .rule(),
            "check_digit"
        );
        assert_eq!(
            BusinessCodiceFiscale::parse("0074311015")
                .unwrap_err()
                .rule(),
            "length"
        );
        assert_eq!(
            BusinessCodiceFiscale::parse("RSSMRA80A01H501")
                .unwrap_err()
                .rule(),
            "length"
        );
    }
}
