//! ISO 11649 creditor references ("RF codes"): `RF`, two check digits, and up to 21
//! letters or digits. The payer copies it into the payment reason; the check digits let
//! us find it again in whatever the bank or the post office wrote there.
//!
//! Check digits are ISO 7064 mod 97-10, as for IBANs: move `RF` and the check digits to
//! the end, read letters as numbers (A = 10 … Z = 35), and the whole must be 1 mod 97.
//! The remainder is computed digit by digit, so 25-character references never overflow.

use std::fmt;

use crate::secrets::random_bytes;
use crate::validation::Rule;

/// A valid creditor reference, stored in its electronic form: uppercase, no spaces
/// (`RF18539007547034`). Printed in groups of four (`RF18 5390 0754 7034`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, diesel::deserialize::FromSqlRow)]
pub struct CreditorReference(String);

// A stored RF code is read straight into the type: what was stored was parsed first.
read_from_text_column!(CreditorReference, |text| {
    CreditorReference::parse(text).map_err(|e| format!("stored RF code '{text}': {e}"))
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditorReferenceError {
    #[error("a creditor reference starts with RF")]
    Prefix,
    #[error("a creditor reference has 5 to 25 characters, this one has {0}")]
    Length(usize),
    #[error("the two characters after RF must be digits")]
    CheckDigitsNotDigits,
    #[error("character '{0}' cannot be in a creditor reference (letters and digits only)")]
    Character(char),
    #[error("the check digits do not match: the reference has a typo")]
    CheckDigits,
}

impl Rule for CreditorReferenceError {
    fn rule(&self) -> &'static str {
        match self {
            Self::Prefix => "rf_prefix",
            Self::Length(_) => "length",
            Self::CheckDigitsNotDigits => "check_digits_format",
            Self::Character(_) => "alphanumeric",
            Self::CheckDigits => "check_digits",
        }
    }
}

/// `value mod 97` of the reference's numeric form (letters as two digits), from the
/// characters in the order given.
fn mod97(chars: impl Iterator<Item = u8>) -> u32 {
    chars.fold(0u32, |remainder, c| {
        let value = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            _ => (c - b'A') as u32 + 10,
        };
        if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        }
    })
}

/// The two check digits for a reference body: 98 − (body + "RF00" mod 97).
fn check_digits(body: &[u8]) -> u32 {
    98 - mod97(body.iter().copied().chain(*b"RF00"))
}

impl CreditorReference {
    /// A new reference from 16 random digits (about 53 bits from the OS CSPRNG): not an
    /// order number anyone could guess or enumerate, and easy to read out on the phone.
    pub fn generate() -> Self {
        let bytes = random_bytes::<16>();
        // Each byte below 250 gives one uniform digit; the rest are drawn again.
        let mut digits: Vec<u8> = bytes
            .iter()
            .filter(|&&b| b < 250)
            .map(|b| b'0' + b % 10)
            .collect();
        while digits.len() < 16 {
            let more = random_bytes::<8>();
            digits.extend(more.iter().filter(|&&b| b < 250).map(|b| b'0' + b % 10));
        }
        digits.truncate(16);
        Self::from_body(&digits)
    }

    fn from_body(body: &[u8]) -> Self {
        let check = check_digits(body);
        Self(format!(
            "RF{check:02}{}",
            std::str::from_utf8(body).expect("ASCII")
        ))
    }

    /// Accepts any case, spaces and dashes: what a person or a bank wrote.
    pub fn parse(input: &str) -> Result<Self, CreditorReferenceError> {
        let compact: Vec<u8> = input
            .bytes()
            .filter(|b| !matches!(b, b' ' | b'\t' | b'-' | b'\r' | b'\n'))
            .map(|b| b.to_ascii_uppercase())
            .collect();
        if !compact.starts_with(b"RF") {
            return Err(CreditorReferenceError::Prefix);
        }
        if !(5..=25).contains(&compact.len()) {
            return Err(CreditorReferenceError::Length(compact.len()));
        }
        if !compact[2..4].iter().all(u8::is_ascii_digit) {
            return Err(CreditorReferenceError::CheckDigitsNotDigits);
        }
        if let Some(&bad) = compact[4..].iter().find(|b| !b.is_ascii_alphanumeric()) {
            return Err(CreditorReferenceError::Character(bad as char));
        }
        let rearranged = compact[4..].iter().chain(&compact[..4]).copied();
        if mod97(rearranged) != 1 {
            return Err(CreditorReferenceError::CheckDigits);
        }
        Ok(Self(String::from_utf8(compact).expect("ASCII")))
    }

    /// Finds a reference in free text (a payment reason), even split by spaces or line
    /// breaks: from each `RF` that starts a word, the following groups of letters and
    /// digits are joined, and the longest join that ends at a group boundary and passes
    /// the check digits wins. Words after the reference make the join fail the check and
    /// are dropped; a chance match of the check digits (1 in 97) would need the words to
    /// sit right after a real reference.
    pub fn find_in(text: &str) -> Option<Self> {
        let upper = text.to_ascii_uppercase();
        let bytes = upper.as_bytes();
        let mut found: Option<Self> = None;
        for start in 0..bytes.len().saturating_sub(1) {
            let starts_word = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
            if !starts_word || &bytes[start..start + 2] != b"RF" {
                continue;
            }
            let mut joined: Vec<u8> = Vec::new();
            let mut boundaries: Vec<usize> = Vec::new();
            let mut i = start;
            while i < bytes.len() && joined.len() <= 25 {
                let b = bytes[i];
                if b.is_ascii_alphanumeric() {
                    joined.push(b);
                } else if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'-') {
                    if boundaries.last() != Some(&joined.len()) {
                        boundaries.push(joined.len());
                    }
                } else {
                    break;
                }
                i += 1;
            }
            boundaries.push(joined.len());
            let candidate = boundaries
                .iter()
                .rev()
                .filter(|&&end| (5..=25).contains(&end))
                .find_map(|&end| Self::parse(std::str::from_utf8(&joined[..end]).ok()?).ok());
            if let Some(candidate) = candidate {
                if found.as_ref().is_none_or(|f| candidate.0.len() > f.0.len()) {
                    found = Some(candidate);
                }
            }
        }
        found
    }

    /// The electronic form: `RF18539007547034`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The paper form, in groups of four: `RF18 5390 0754 7034`.
    pub fn printed(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).expect("ASCII"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for CreditorReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.printed())
    }
}

impl fmt::Debug for CreditorReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CreditorReference({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    use proptest::prelude::*;

    #[test]
    fn a_stored_code_loads_as_itself_and_a_damaged_one_fails_the_read() {
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        let read = |conn: &mut diesel::SqliteConnection, text: &str| {
            diesel::select(text.into_sql::<Text>()).get_result::<CreditorReference>(conn)
        };
        assert_eq!(
            read(&mut conn, "RF18539007547034").unwrap().as_str(),
            "RF18539007547034"
        );
        let error = format!("{:?}", read(&mut conn, "RF19539007547034").unwrap_err());
        assert!(
            error.contains("stored RF code 'RF19539007547034'"),
            "{error}"
        );
    }

    #[test]
    fn known_vectors() {
        // The standard's example and published ones.
        for valid in [
            "RF18539007547034",
            "RF18 5390 0754 7034",
            "rf18-5390-0754-7034",
            "RF712348231",
            "RF45G72UUR",
            "RF6518K5",
        ] {
            assert!(CreditorReference::parse(valid).is_ok(), "{valid}");
        }
        assert_eq!(
            CreditorReference::parse("RF18539007547034")
                .unwrap()
                .printed(),
            "RF18 5390 0754 7034"
        );
        assert_eq!(
            CreditorReference::from_body(b"539007547034").as_str(),
            "RF18539007547034"
        );
    }

    #[test]
    fn each_rule_is_named() {
        let rule = |s: &str| CreditorReference::parse(s).unwrap_err().rule();
        assert_eq!(rule("XX18539007547034"), "rf_prefix");
        assert_eq!(rule("RF18"), "length");
        assert_eq!(rule("RF18 5390 0754 7034 0000 0000 00"), "length");
        assert_eq!(rule("RFAB539007547034"), "check_digits_format");
        assert_eq!(rule("RF18539007547_34"), "alphanumeric");
        assert_eq!(rule("RF19539007547034"), "check_digits");
        assert_eq!(rule("RF18539007547043"), "check_digits");
    }

    #[test]
    fn found_in_payment_reasons() {
        let find = |text: &str| CreditorReference::find_in(text).map(|r| r.as_str().to_owned());
        let rf = Some("RF18539007547034".to_owned());
        assert_eq!(find("PAGAMENTO ORDINE RF18539007547034 COUPON"), rf);
        assert_eq!(find("Causale: rf18 5390 0754 7034 rinnovo firma"), rf);
        assert_eq!(
            find("RF18 5390\\n0754 7034"),
            None,
            "a literal backslash is not a line break"
        );
        assert_eq!(find("RF18 5390\n0754\r\n7034 SALDO"), rf);
        // The EPC convention for unstructured remittance marks the reference with /RFB/.
        assert_eq!(find("/RFB/RF18539007547034/"), rf);
        assert_eq!(
            find("XRF18539007547034"),
            None,
            "not at the start of a word"
        );
        assert_eq!(find("bonifico senza riferimento"), None);
        assert_eq!(
            find("RF19 5390 0754 7034"),
            None,
            "bad check digits are not a reference"
        );
        assert_eq!(find("REF. RF18-5390-0754-7034."), rf);
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![b'0'..=b'9', b'A'..=b'Z'], 1..=21)
    }

    proptest! {
        #[test]
        fn made_references_validate(body in body()) {
            let made = CreditorReference::from_body(&body);
            prop_assert_eq!(CreditorReference::parse(made.as_str()).unwrap(), made.clone());
            prop_assert_eq!(CreditorReference::parse(&made.printed().to_lowercase()).unwrap(), made);
        }

        #[test]
        fn a_changed_digit_is_caught(body in proptest::collection::vec(b'0'..=b'9', 2..=21), position in 0usize..21, shift in 1u8..10) {
            let made = CreditorReference::from_body(&body);
            let mut bytes = made.as_str().as_bytes().to_vec();
            let index = 4 + position % body.len();
            bytes[index] = b'0' + (bytes[index] - b'0' + shift) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(CreditorReference::parse(&changed).unwrap_err(), CreditorReferenceError::CheckDigits);
        }

        #[test]
        fn found_when_split_anywhere(body in proptest::collection::vec(b'0'..=b'9', 8..=21), cut in 1usize..20, words in "[A-Z]{3,8}") {
            let made = CreditorReference::from_body(&body);
            let text = made.as_str();
            let cut = 4 + cut % (text.len() - 4);
            let split = format!("SALDO {}\n{} {words}", &text[..cut], &text[cut..]);
            let found = CreditorReference::find_in(&split);
            // A chance check-digit match with the trailing word is possible (1 in 97 per
            // boundary); when it happens the found reference still starts with ours.
            prop_assert!(found.as_ref().is_some_and(|f| f.as_str().starts_with(text)), "{split:?} → {found:?}");
        }

        #[test]
        fn generated_references_are_valid_and_differ(_n in 0..20u8) {
            let a = CreditorReference::generate();
            let b = CreditorReference::generate();
            prop_assert_ne!(&a, &b);
            prop_assert_eq!(a.as_str().len(), 20);
            prop_assert!(CreditorReference::parse(a.as_str()).is_ok());
        }

        #[test]
        fn any_text_never_panics(text in ".{0,80}") {
            let _ = CreditorReference::find_in(&text);
            let _ = CreditorReference::parse(&text);
        }
    }
}
