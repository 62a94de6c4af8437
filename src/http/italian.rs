//! How amounts and states are written for Italian readers: the pages and the Italian
//! messages of the error identities (`errors`) share these, so a state reads the same in
//! a table and in a refusal. And what a form says of a value that breaks an input rule (a
//! text's length, an email address, a partita IVA, a password, the billing fields): once
//! per rule, so every form that takes such a value words its refusal the same way.

use crate::auth::management::UserStatus;
use crate::auth::Role;
use crate::card::store::RefundStatus;
use crate::catalog::Covers;
use crate::invoices::transmission::TransmissionStatus;
use crate::invoices::{DocumentKind, InvoiceStatus};
use crate::orders::OrderStatus;
use crate::payments::matching::PaymentStatus;
use crate::prepaid::EntryKind;
use crate::registry::CertificateKind;
use crate::transfer::PaymentMethod;

/// `€ 1.464,00`, the Italian way (kept beside the money, which the documents print too).
pub use crate::money::euro;

pub fn payment_status_label(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Matched => "abbinato",
        PaymentStatus::Partial => "parziale",
        PaymentStatus::Overpaid => "eccedente",
        PaymentStatus::Duplicate => "doppio",
        PaymentStatus::Unmatched => "da abbinare",
        PaymentStatus::Refunded => "rimborsato",
        PaymentStatus::Reversed => "stornato",
        PaymentStatus::Reversal => "storno",
    }
}

/// An order's state as the shop's and the back-office's pages say it.
pub fn order_status_label(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::AwaitingPayment => "in attesa di pagamento",
        OrderStatus::Paid => "pagato",
        OrderStatus::Fulfilled => "evaso",
        OrderStatus::Expired => "scaduto",
        OrderStatus::Cancelled => "annullato",
    }
}

/// What the pages say of a new password that breaks the rule.
/// The rule's own length, so the message cannot drift from it.
static TOO_SHORT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "La password deve avere almeno {} caratteri.",
        crate::auth::password::MIN_LENGTH
    )
});

pub fn password_rule(error: &crate::auth::PasswordError) -> &'static str {
    use crate::auth::PasswordError::*;
    match error {
        TooShort => TOO_SHORT.as_str(),
        TooLong => "La password è troppo lunga.",
        TooRepetitive => "La password deve avere almeno 5 caratteri diversi.",
        Common => "Questa password è tra le più usate: scegline un'altra.",
        ContainsEmail => "La password non deve contenere l'indirizzo email.",
    }
}

/// What a form says next to a text that breaks its rule (`validation::Text`), the same words
/// for every field: `label` names the field with its article ("il motivo", "la ragione
/// sociale").
pub fn text_rule(label: &str, error: &crate::validation::TextError) -> String {
    use crate::validation::TextError;
    let mut letters = label.chars();
    let subject: String = letters.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(letters).collect()
    });
    match error {
        TextError::TooShort(min) if *min <= 1 => format!("Indica {label}."),
        TextError::TooShort(min) => format!("Indica {label}: almeno {min} caratteri."),
        TextError::TooLong(max) => format!("{subject} può avere al massimo {max} caratteri."),
        TextError::ControlCharacter => {
            format!("{subject} non può contenere caratteri di controllo.")
        }
        TextError::DirectionOverride => {
            format!("{subject} non può contenere caratteri che invertono la direzione del testo.")
        }
    }
}

/// What a form says next to a refused name of a person or business (sign-up, profile).
pub fn person_name_rule(error: &crate::validation::TextError) -> String {
    text_rule("il nome o la ragione sociale", error)
}

/// What a form says next to a refused email address (sign-up, profile).
pub fn email_rule(error: &crate::email_address::EmailAddressError) -> &'static str {
    use crate::email_address::EmailAddressError;
    match error {
        EmailAddressError::TooLong => "L'indirizzo email è troppo lungo (al massimo 254 caratteri).",
        EmailAddressError::Invalid(_) => "Indica un indirizzo email valido, come nome@esempio.it.",
        EmailAddressError::Undeliverable { .. } => {
            "Non possiamo inviare email a questo indirizzo (virgolette, indirizzi IP tra parentesi quadre e lettere accentate non sono ammessi): usa un indirizzo come nome@esempio.it."
        }
    }
}

/// What a form says next to a refused partita IVA (the officer's application, billing).
pub fn partita_iva_rule(error: &crate::partita_iva::PartitaIvaError) -> &'static str {
    use crate::partita_iva::PartitaIvaError;
    match error {
        PartitaIvaError::Length => "La partita IVA ha 11 cifre.",
        PartitaIvaError::NotDigits => "La partita IVA ha solo cifre (al più preceduta da IT).",
        PartitaIvaError::CheckDigit => {
            "L'ultima cifra della partita IVA non corrisponde alle altre: controlla di averla scritta bene."
        }
    }
}

/// What the billing form says next to a value that breaks its rule.
pub fn billing_field(field: &str, error: &crate::billing::FieldError) -> String {
    use crate::billing::FieldError;
    let label = match field {
        "kind" => "il tipo di intestatario",
        "denominazione" => "la denominazione",
        "nome" => "il nome",
        "cognome" => "il cognome",
        "codice_fiscale" => "il codice fiscale",
        "partita_iva" => "la partita IVA",
        "indirizzo" => "l'indirizzo",
        "cap" => "il CAP",
        "comune" => "il comune",
        "provincia" => "la provincia",
        "nazione" => "la nazione",
        "codice_destinatario" => "il codice destinatario",
        _ => "l'indirizzo PEC",
    };
    match error {
        FieldError::Required => format!("Indica {label}."),
        FieldError::OneOf(_) => "Scegli persona fisica oppure impresa o professionista.".into(),
        FieldError::NameOrDenominazione => {
            "Indica la denominazione oppure nome e cognome, non entrambi.".into()
        }
        FieldError::CodeOrPec => {
            "Indica il codice destinatario oppure l'indirizzo PEC, non entrambi.".into()
        }
        FieldError::Text(rule) => text_rule(label, rule),
        FieldError::Cap => "Il CAP ha esattamente 5 cifre.".into(),
        FieldError::ForeignPostalCode => {
            "Il codice postale estero ha da 1 a 10 lettere, cifre, spazi o trattini.".into()
        }
        FieldError::Provincia(typed) => {
            format!("'{typed}' non è la sigla di una provincia italiana (due lettere, come RM).")
        }
        FieldError::ProvinciaAbroad => "Per un indirizzo all'estero la provincia è EE.".into(),
        FieldError::Nazione(typed) => {
            format!("'{typed}' non è il codice di una nazione (due lettere ISO 3166, come IT).")
        }
        FieldError::CodiceDestinatario => {
            "Il codice destinatario ha esattamente 7 lettere o cifre.".into()
        }
        FieldError::PartitaIva(e) => {
            use crate::partita_iva::PartitaIvaError;
            match (field, e) {
                ("codice_fiscale", PartitaIvaError::CheckDigit) => "L'ultima cifra del codice fiscale numerico non corrisponde alle altre: controlla di averlo scritto bene.".into(),
                ("codice_fiscale", _) => "Il codice fiscale di una società ha 11 cifre; quello di una persona 16 caratteri.".into(),
                (_, e) => partita_iva_rule(e).into(),
            }
        }
        FieldError::CodiceFiscale(e) => {
            format!("Il codice fiscale non è valido: {}.", e.in_italian())
        }
        FieldError::Pec(_) => "Indica un indirizzo PEC valido, come nome@pec.esempio.it.".into(),
    }
}

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Customer => "cliente",
        Role::RegistrationOfficer => "incaricato alla registrazione",
        Role::BackOffice => "back-office",
    }
}

pub fn user_status_label(status: UserStatus) -> &'static str {
    match status {
        UserStatus::Active => "attivo",
        UserStatus::Disabled => "disattivato",
    }
}

pub fn certificate_kind_label(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Signature => "Sottoscrizione",
        CertificateKind::Authentication => "Autenticazione",
    }
}

/// What a product's coupon renews.
pub fn covers_label(covers: Covers) -> &'static str {
    match covers {
        Covers::Signature => "firma (sottoscrizione)",
        Covers::Authentication => "autenticazione (CNS)",
        Covers::Both => "firma e autenticazione",
    }
}

pub fn payment_method_label(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Prepaid => "Conto Prepagato",
        PaymentMethod::BankTransfer => "Bonifico bancario",
        PaymentMethod::PostalSlip => "Bollettino postale",
        PaymentMethod::Cheque => "Assegno",
        PaymentMethod::Card => "Carta di credito",
    }
}

/// A line of a prepaid statement.
pub fn entry_kind_label(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::TopUp => "Ricarica",
        EntryKind::OrderDebit => "Acquisto coupon",
        EntryKind::Refund => "Rimborso",
        EntryKind::OverpaymentCredit => "Eccedenza di versamento",
        EntryKind::Adjustment => "Rettifica",
    }
}

pub fn document_kind_label(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Invoice => "Fattura",
        DocumentKind::CreditNote => "Nota di credito",
    }
}

/// Where an invoice or credit note is on its way through the SdI.
pub fn invoice_status_label(status: InvoiceStatus) -> &'static str {
    match status {
        InvoiceStatus::Issued => "emessa, in attesa di invio allo SdI",
        InvoiceStatus::Transmitted => "inviata allo SdI",
        InvoiceStatus::Delivered => "consegnata",
        InvoiceStatus::Rejected => "scartata dallo SdI",
        InvoiceStatus::NotDelivered => "non consegnata: disponibile nel cassetto fiscale",
    }
}

/// Where a card refund is on its way to the provider.
pub fn refund_status_label(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Pending => "da inviare",
        RefundStatus::Sent => "inviato",
        RefundStatus::Dead => "non riuscito: da riprovare",
    }
}

/// Where a file is in the SdI outbox.
pub fn transmission_status_label(status: TransmissionStatus) -> &'static str {
    match status {
        TransmissionStatus::Pending => "in coda",
        TransmissionStatus::Sent => "inviato",
        TransmissionStatus::Dead => "non riuscito",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_rule_names_its_field_the_same_way_everywhere() {
        use crate::validation::TextError;
        assert_eq!(
            text_rule("il motivo", &TextError::TooShort(3)),
            "Indica il motivo: almeno 3 caratteri."
        );
        assert_eq!(
            text_rule("il CAP", &TextError::TooShort(1)),
            "Indica il CAP."
        );
        assert_eq!(
            text_rule("la ragione sociale", &TextError::TooLong(200)),
            "La ragione sociale può avere al massimo 200 caratteri."
        );
        assert_eq!(
            text_rule("l'indirizzo", &TextError::ControlCharacter),
            "L'indirizzo non può contenere caratteri di controllo."
        );
    }

    #[test]
    fn the_length_rule_says_the_length_the_rule_has() {
        let message = password_rule(&crate::auth::PasswordError::TooShort);
        let min = crate::auth::password::MIN_LENGTH.to_string();
        assert!(
            message.contains(&format!("almeno {min} caratteri")),
            "{message}"
        );
    }
}
