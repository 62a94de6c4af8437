//! An email address that the mailer can deliver to, stored lowercased so that the same
//! mailbox typed with other capitals is one account.
//!
//! Coupon codes go out in one email, and it is the only copy of them: an address the
//! mailer cannot send to loses them. So the type accepts only the plain, common form, the
//! one every mail server takes: `local@domain`, ASCII only, where
//!
//! - the local part is a dot-atom (letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots
//!   between them), at most 64 characters: no quoted local part (`"john doe"@...`);
//! - the domain is a host name of at least two labels (letters, digits, inner hyphens,
//!   at most 63 characters each, the last one not all digits): no IP literal
//!   (`ip@[127.0.0.1]`), no dotless host (`user@localhost`), no bare IP address;
//! - the whole is at most 254 characters,
//!
//! and lettre's own parser (the one the dispatcher runs on every recipient) must accept it
//! too. Internationalised addresses (non-ASCII) are refused: delivering them needs
//! SMTPUTF8 on every hop, which rinnovo cannot count on.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailAddressError {
    #[error("an email address has at most 254 characters")]
    TooLong,
    #[error("'{0}' is not an email address such as nome@example.it")]
    Invalid(String),
    /// An address in a form the standard allows but the mailer cannot deliver to.
    #[error(
        "'{address}' cannot receive our emails: {why}; use an address such as nome@example.it"
    )]
    Undeliverable { address: String, why: &'static str },
}

impl EmailAddressError {
    pub fn rule(&self) -> &'static str {
        match self {
            Self::TooLong => "max_length",
            Self::Invalid(_) => "email",
            Self::Undeliverable { .. } => "deliverable_email",
        }
    }
}

const MAX_LENGTH: usize = 254;
const MAX_LOCAL_LENGTH: usize = 64;
const MAX_LABEL_LENGTH: usize = 63;

/// The characters of a dot-atom besides letters and digits (RFC 5322 `atext`).
const ATEXT_SYMBOLS: &str = "!#$%&'*+/=?^_`{|}~-";

fn undeliverable(address: &str, why: &'static str) -> EmailAddressError {
    EmailAddressError::Undeliverable {
        address: address.to_owned(),
        why,
    }
}

fn is_dot_atom(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ATEXT_SYMBOLS.contains(c))
        })
}

fn is_host_name(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.iter().all(|label| {
        (1..=MAX_LABEL_LENGTH).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    }) && labels
        .last()
        .is_some_and(|top| !top.chars().all(|c| c.is_ascii_digit()))
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, EmailAddressError> {
        let trimmed = input.trim();
        if trimmed.len() > MAX_LENGTH {
            return Err(EmailAddressError::TooLong);
        }
        let invalid = || EmailAddressError::Invalid(trimmed.to_owned());
        let lowered = trimmed.to_lowercase();
        if !lowered.is_ascii() {
            return Err(undeliverable(trimmed, "it has characters other than ASCII"));
        }
        let (local, domain) = lowered.rsplit_once('@').ok_or_else(invalid)?;
        if local.starts_with('"') {
            return Err(undeliverable(trimmed, "it has a quoted local part"));
        }
        if domain.starts_with('[') {
            return Err(undeliverable(
                trimmed,
                "its domain is an IP address in brackets",
            ));
        }
        if !is_dot_atom(local) || local.len() > MAX_LOCAL_LENGTH || domain.is_empty() {
            return Err(invalid());
        }
        if !domain.contains('.') {
            return Err(undeliverable(trimmed, "its domain has no dot"));
        }
        if !is_host_name(domain) {
            return Err(invalid());
        }
        // The dispatcher parses every recipient with lettre: what it refuses is lost mail.
        lettre::Address::from_str(&lowered).map_err(|_| invalid())?;
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For rows already validated when stored.
    pub(crate) fn from_stored(stored: String) -> Self {
        Self(stored)
    }
}

/// An address its owner proved to read: the only kind codes, receipts and invoices are
/// sent to. Made only by `auth::confirmation::confirmed_email`, from a user whose address
/// is confirmed; it lives here, beside the address, so that the prepaid account and the
/// orders can ask for one without depending on the accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedEmail(EmailAddress);

impl ConfirmedEmail {
    /// For `auth::confirmation` alone, which checked the proof.
    pub(crate) fn proven(address: EmailAddress) -> Self {
        Self(address)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for ConfirmedEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::{Mailbox, MultiPart};
    use lettre::Message;
    use proptest::prelude::*;

    /// What the dispatcher does with a recipient (`mail::dispatcher::build_message`):
    /// parse it as a mailbox and build a message to it.
    fn the_mailer_takes(address: &EmailAddress) -> Result<(), String> {
        let to: Mailbox = address.as_str().parse().map_err(|e| format!("{e}"))?;
        let from: Mailbox = "Visura <noreply@visura.example.it>"
            .parse()
            .map_err(|e| format!("{e}"))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject("prova")
            .multipart(MultiPart::alternative_plain_html(
                "testo".to_owned(),
                "<p>testo</p>".to_owned(),
            ))
            .map_err(|e| e.to_string())?;
        let recipients = message.envelope().to();
        if recipients.len() != 1 || recipients[0].to_string() != address.as_str() {
            return Err(format!("envelope recipients {recipients:?}"));
        }
        Ok(())
    }

    #[test]
    fn normalises_and_validates() {
        assert_eq!(
            EmailAddress::parse("  Mario.Rossi@Example.IT ")
                .unwrap()
                .as_str(),
            "mario.rossi@example.it"
        );
        for bad in [
            "",
            "mario",
            "mario@",
            "@example.it",
            "mario rossi@example.it",
            "mario..rossi@example.it",
            ".mario@example.it",
            "mario.@example.it",
            "mario@example..it",
            "mario@-example.it",
            "mario@example-.it",
            "mario@example.it.",
            "mario@exa_mple.it",
            "mario@@example.it",
            "mario@1.2.3.4",
            "ma(commento)rio@example.it",
        ] {
            assert_eq!(
                EmailAddress::parse(bad).map_err(|e| e.rule()),
                Err("email"),
                "{bad:?}"
            );
        }
        for undeliverable in [
            "\"john doe\"@example.it",
            "\"mario\"@example.it",
            "ip@[127.0.0.1]",
            "ip@[IPv6:::1]",
            "a@localhost",
            "mariò@example.it",
            "mario@exämple.it",
        ] {
            assert_eq!(
                EmailAddress::parse(undeliverable).map_err(|e| e.rule()),
                Err("deliverable_email"),
                "{undeliverable:?}"
            );
        }
        let long = format!("{}@example.it", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long).unwrap_err().rule(), "max_length");
        let long_local = format!("{}@example.it", "a".repeat(65));
        assert_eq!(
            EmailAddress::parse(&long_local).unwrap_err().rule(),
            "email"
        );
    }

    #[test]
    fn the_tricky_addresses_it_accepts_are_sent_by_the_mailer() {
        for tricky in [
            "a@b.co",
            "o'brien@example.ie",
            "mario+coupon@example.it",
            "x!#$%&'*+/=?^_`{|}~-y@example.it",
            "{mario}@example.it",
            "mario=rossi@example.it",
            "1234@123.example.it",
            "mario@xn--exmple-cua.it",
            "mario@a-b.c-d.it",
            "MARIO@EXAMPLE.IT",
            &format!("{}@example.it", "a".repeat(64)),
            &format!(
                "m@{}.it",
                ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join(".")
            ),
        ] {
            let address = EmailAddress::parse(tricky).unwrap_or_else(|e| panic!("{tricky}: {e}"));
            the_mailer_takes(&address).unwrap_or_else(|e| panic!("{tricky}: {e}"));
        }
    }

    proptest! {
        /// Every address the type accepts, from generated local parts and domains (and
        /// from arbitrary text that happens to parse), goes through the mailer's parser
        /// and message builder.
        #[test]
        fn every_accepted_address_is_sent_by_the_mailer(
            local in "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.\"() @\\[\\]-]{1,70}",
            domain in "[a-zA-Z0-9.\\[\\]-]{1,40}",
        ) {
            let typed = format!("{local}@{domain}");
            if let Ok(address) = EmailAddress::parse(&typed) {
                prop_assert!(the_mailer_takes(&address).is_ok(), "{typed}: {:?}", the_mailer_takes(&address));
            }
        }

        #[test]
        fn generated_plain_addresses_are_accepted_and_sent(
            atoms in proptest::collection::vec("[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}", 1..4),
            labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4),
            top in "[a-z]{2,6}",
        ) {
            let typed = format!("{}@{}.{top}", atoms.join("."), labels.join("."));
            let address = EmailAddress::parse(&typed);
            prop_assert!(address.is_ok(), "{typed}: {address:?}");
            let address = address.unwrap();
            prop_assert!(the_mailer_takes(&address).is_ok(), "{typed}: {:?}", the_mailer_takes(&address));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = EmailAddress::parse(&text);
        }
    }
}
