//! What every "parse, don't validate" error of an input value has: the name of the rule
//! it broke (stable, for clients) and a sentence for people (its Display).

pub trait Rule: std::fmt::Display {
    fn rule(&self) -> &'static str;
}

impl Rule for crate::registry::CodiceFiscaleError {
    fn rule(&self) -> &'static str {
        self.rule()
    }
}

impl Rule for crate::email_address::EmailAddressError {
    fn rule(&self) -> &'static str {
        self.rule()
    }
}

impl Rule for crate::money::MoneyError {
    fn rule(&self) -> &'static str {
        self.rule()
    }
}

// Here rather than in paging.rs, so that paging (which db/ reads pages into) imports
// nothing of the domain.
impl Rule for crate::paging::PageError {
    fn rule(&self) -> &'static str {
        self.rule()
    }
}

/// A short free text typed by a person (a name, a reason): trimmed, within bounds, no
/// control characters, and no bidirectional overrides or isolates (U+202A–U+202E,
/// U+2066–U+2069): they make a name read backwards on invoices, emails and the
/// back-office pages (`Rossi` shown for `issoR`), and no name needs them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Text<const MIN: usize, const MAX: usize>(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must have at least {0} characters")]
    TooShort(usize),
    #[error("must have at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not contain characters that change the writing direction (U+202A–U+202E, U+2066–U+2069)")]
    DirectionOverride,
}

impl Rule for TextError {
    fn rule(&self) -> &'static str {
        match self {
            Self::TooShort(_) => "min_length",
            Self::TooLong(_) => "max_length",
            Self::ControlCharacter => "printable",
            Self::DirectionOverride => "no_direction_override",
        }
    }
}

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    pub fn parse(input: &str) -> Result<Self, TextError> {
        let trimmed = input.trim();
        let length = trimmed.chars().count();
        if length < MIN {
            return Err(TextError::TooShort(MIN));
        }
        if length > MAX {
            return Err(TextError::TooLong(MAX));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(TextError::ControlCharacter);
        }
        if trimmed
            .chars()
            .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        {
            return Err(TextError::DirectionOverride);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A person's name as shown on invoices and emails.
pub type PersonName = Text<1, 200>;
/// Why an operator did something by hand: kept in the audit log, so it must say something.
pub type Reason = Text<3, 500>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bounds() {
        assert_eq!(
            PersonName::parse("  Mario Rossi ").unwrap().as_str(),
            "Mario Rossi"
        );
        assert_eq!(PersonName::parse("   ").unwrap_err().rule(), "min_length");
        assert_eq!(Reason::parse("ok").unwrap_err().rule(), "min_length");
        assert_eq!(
            PersonName::parse(&"x".repeat(201)).unwrap_err().rule(),
            "max_length"
        );
        assert_eq!(
            PersonName::parse("a\u{0}b").unwrap_err().rule(),
            "printable"
        );
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            assert_eq!(
                PersonName::parse(&format!("Mario{c}issoR"))
                    .unwrap_err()
                    .rule(),
                "no_direction_override"
            );
        }
    }
}
