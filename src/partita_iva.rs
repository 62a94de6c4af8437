//! The partita IVA, the Italian VAT number of a company: 11 digits, the last a check digit
//! over the other ten (the Luhn scheme of DM 23/12/1976). Typed with spaces or the `IT`
//! prefix of the EU VIES form, it is stored as the 11 digits.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PartitaIva(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitaIvaError {
    #[error("a partita IVA has 11 digits")]
    Length,
    #[error("a partita IVA has only digits")]
    NotDigits,
    #[error("the partita IVA's last digit does not match the others: a typo?")]
    CheckDigit,
}

impl crate::validation::Rule for PartitaIvaError {
    fn rule(&self) -> &'static str {
        match self {
            Self::Length => "length",
            Self::NotDigits => "digits",
            Self::CheckDigit => "check_digit",
        }
    }
}

impl PartitaIva {
    pub fn parse(input: &str) -> Result<Self, PartitaIvaError> {
        let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let digits = compact
            .strip_prefix("IT")
            .or_else(|| compact.strip_prefix("it"))
            .unwrap_or(&compact);
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(PartitaIvaError::NotDigits);
        }
        if digits.len() != 11 {
            return Err(PartitaIvaError::Length);
        }
        // Eleven zeros pass the check digit, and are no company.
        if digits.bytes().all(|b| b == b'0') || check_digit(&digits[..10]) != digits.as_bytes()[10]
        {
            return Err(PartitaIvaError::CheckDigit);
        }
        Ok(Self(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For rows already validated when stored.
    pub(crate) fn from_stored(stored: String) -> Self {
        Self(stored)
    }
}

/// The check digit (as an ASCII byte) of the first ten digits: the digits in odd places
/// are added as they are, those in even places doubled (less 9 when over 9).
fn check_digit(first_ten: &str) -> u8 {
    let sum: u32 = first_ten
        .bytes()
        .map(|b| u32::from(b - b'0'))
        .enumerate()
        .map(|(i, d)| match i % 2 {
            0 => d,
            _ if d * 2 > 9 => d * 2 - 9,
            _ => d * 2,
        })
        .sum();
    b'0' + ((10 - sum % 10) % 10) as u8
}

impl fmt::Display for PartitaIva {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::Rule;

    #[test]
    fn accepts_valid_numbers_as_typed() {
        for typed in [
            "00743110157",
            "IT00743110157",
            " 0074 3110 157 ",
            "12345678903",
        ] {
            let parsed = PartitaIva::parse(typed).unwrap();
            assert!(
                parsed.as_str().len() == 11 && parsed.as_str().bytes().all(|b| b.is_ascii_digit())
            );
        }
        assert_eq!(
            PartitaIva::parse("it 00743110157").unwrap().as_str(),
            "00743110157"
        );
    }

    #[test]
    fn refuses_each_rule() {
        assert_eq!(
            PartitaIva::parse("0074311015").unwrap_err().rule(),
            "length"
        );
        assert_eq!(PartitaIva::parse("").unwrap_err().rule(), "length");
        assert_eq!(
            PartitaIva::parse("0074311015A").unwrap_err().rule(),
            "digits"
        );
        assert_eq!(
            PartitaIva::parse("00743110158").unwrap_err().rule(),
            "check_digit"
        );
        assert_eq!(
            PartitaIva::parse("00000000000").unwrap_err().rule(),
            "check_digit"
        );
    }

    #[test]
    fn every_single_digit_typo_is_caught() {
        let valid = "00743110157";
        for place in 0..11 {
            for digit in b'0'..=b'9' {
                let mut typo = valid.as_bytes().to_vec();
                if typo[place] == digit {
                    continue;
                }
                typo[place] = digit;
                let typo = String::from_utf8(typo).unwrap();
                assert!(PartitaIva::parse(&typo).is_err(), "{typo} accepted");
            }
        }
    }
}
