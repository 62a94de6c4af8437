//! An email address that lettre will accept as a recipient, stored lowercased so that
//! the same mailbox typed with other capitals is one account.

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
}

impl EmailAddressError {
    pub fn rule(&self) -> &'static str {
        match self {
            Self::TooLong => "max_length",
            Self::Invalid(_) => "email",
        }
    }
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, EmailAddressError> {
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err(EmailAddressError::TooLong);
        }
        let lowered = trimmed.to_lowercase();
        let address = lettre::Address::from_str(&lowered)
            .map_err(|_| EmailAddressError::Invalid(trimmed.to_owned()))?;
        // lettre accepts dotless domains ("user@localhost"); customers' mail never is.
        if !address.domain().contains('.') {
            return Err(EmailAddressError::Invalid(trimmed.to_owned()));
        }
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

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "a@localhost",
        ] {
            assert_eq!(
                EmailAddress::parse(bad).unwrap_err().rule(),
                "email",
                "{bad}"
            );
        }
        let long = format!("{}@example.it", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long).unwrap_err().rule(), "max_length");
    }
}
