//! Coupon codes: 80 bits from the operating system's CSPRNG, written in Crockford base32
//! (no I, L, O, U: nothing to confuse when typing) in groups of four, then one check
//! character (Luhn mod 32) that catches every single typo, and every swap of two adjacent
//! characters except `0`↔`Z` (Luhn's one blind spot), before any database lookup:
//! `7KQ2-M0ZD-4HXN-P9RB-T`.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secrets::{hex, random_bytes};
use crate::validation::Rule;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const PAYLOAD_CHARS: usize = 16; // 16 × 5 bits = 80 bits

/// A code whose check character is right. Debug shows only the last characters.
#[derive(Clone, PartialEq, Eq)]
pub struct CouponCode(String); // the 17 canonical characters, no dashes

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponCodeError {
    #[error("a coupon code has 17 characters (without dashes), this one has {0}")]
    Length(usize),
    #[error("character {position} ('{found}') is not used in coupon codes")]
    Character { position: usize, found: char },
    #[error("the code has a typo: its check character does not match")]
    CheckCharacter,
}

impl Rule for CouponCodeError {
    fn rule(&self) -> &'static str {
        match self {
            Self::Length(_) => "length",
            Self::Character { .. } => "alphabet",
            Self::CheckCharacter => "check_character",
        }
    }
}

fn value_of(byte: u8) -> Option<u32> {
    ALPHABET.iter().position(|&c| c == byte).map(|v| v as u32)
}

/// Luhn mod N over the payload's values: the check character that makes the sum zero.
fn check_character(payload: &[u8]) -> u8 {
    let n = ALPHABET.len() as u32;
    let mut factor = 2;
    let mut sum = 0;
    for &byte in payload.iter().rev() {
        let mut addend = factor * value_of(byte).expect("payload from the alphabet");
        factor = if factor == 2 { 1 } else { 2 };
        addend = addend / n + addend % n;
        sum += addend;
    }
    ALPHABET[((n - sum % n) % n) as usize]
}

impl CouponCode {
    pub fn generate() -> Self {
        let bytes = random_bytes::<10>();
        // 80 bits → 16 groups of 5 bits, most significant first.
        let value = bytes.iter().fold(0u128, |acc, &b| (acc << 8) | b as u128);
        let mut payload: Vec<u8> = (0..PAYLOAD_CHARS)
            .rev()
            .map(|i| ALPHABET[((value >> (5 * i)) & 31) as usize])
            .collect();
        let check = check_character(&payload);
        payload.push(check);
        Self(String::from_utf8(payload).expect("ASCII"))
    }

    /// Accepts what people type: any case, dashes and spaces anywhere, and the letters
    /// Crockford maps (O → 0, I and L → 1).
    pub fn parse(input: &str) -> Result<Self, CouponCodeError> {
        let canonical: Vec<u8> = input
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' ' | b'\t'))
            .map(|b| match b.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                other => other,
            })
            .collect();
        if canonical.len() != PAYLOAD_CHARS + 1 {
            return Err(CouponCodeError::Length(canonical.len()));
        }
        if let Some((index, &byte)) = canonical
            .iter()
            .enumerate()
            .find(|(_, b)| value_of(**b).is_none())
        {
            return Err(CouponCodeError::Character {
                position: index + 1,
                found: byte as char,
            });
        }
        if check_character(&canonical[..PAYLOAD_CHARS]) != canonical[PAYLOAD_CHARS] {
            return Err(CouponCodeError::CheckCharacter);
        }
        Ok(Self(String::from_utf8(canonical).expect("ASCII")))
    }

    /// `7KQ2-M0ZD-4HXN-P9RB-T`, as printed in emails.
    pub fn formatted(&self) -> String {
        let chunks: Vec<&str> = [0, 4, 8, 12, 16]
            .iter()
            .map(|&start| &self.0[start..(start + 4).min(self.0.len())])
            .collect();
        chunks.join("-")
    }

    /// The last payload group and the check character: enough to tell coupons apart,
    /// far too little to use one (60 bits stay unknown).
    pub fn hint(&self) -> String {
        format!("****-****-****-{}-{}", &self.0[12..16], &self.0[16..])
    }
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.formatted())
    }
}

impl fmt::Debug for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CouponCode({})", self.hint())
    }
}

/// The key under which codes are stored: HMAC-SHA256(key, code). Without the key, the
/// stored hashes cannot be turned back into codes, nor checked against guesses.
pub struct CouponKey(Vec<u8>);

pub const COUPON_KEY_FILE: &str = "coupon-key";

impl CouponKey {
    pub fn new(key: Vec<u8>) -> Self {
        Self(key)
    }

    pub fn hash(&self, code: &CouponCode) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(code.0.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_codes_parse_back_and_differ() {
        let a = CouponCode::generate();
        let b = CouponCode::generate();
        assert_ne!(a, b);
        let text = a.formatted();
        assert_eq!(text.len(), 21, "{text}");
        assert_eq!(CouponCode::parse(&text).unwrap(), a);
        assert_eq!(
            CouponCode::parse(&text.to_lowercase().replace('-', " ")).unwrap(),
            a
        );
        assert!(format!("{a:?}").starts_with("CouponCode(****-****-****-"));
    }

    #[test]
    fn crockford_look_alikes_are_read_as_digits() {
        let code = CouponCode::generate();
        let typed = code.formatted().replace('0', "o").replace('1', "l");
        assert_eq!(CouponCode::parse(&typed).unwrap(), code);
    }

    #[test]
    fn bad_input_names_the_rule() {
        assert_eq!(CouponCode::parse("ABC").unwrap_err().rule(), "length");
        assert_eq!(
            CouponCode::parse("UUUU-UUUU-UUUU-UUUU-U")
                .unwrap_err()
                .rule(),
            "alphabet"
        );
    }

    #[test]
    fn keyed_hashes_depend_on_the_key() {
        let code = CouponCode::generate();
        let one = CouponKey::new(b"key one key one key one key one!".to_vec());
        let two = CouponKey::new(b"key two key two key two key two!".to_vec());
        assert_eq!(one.hash(&code), one.hash(&code));
        assert_ne!(one.hash(&code), two.hash(&code));
        assert_eq!(one.hash(&code).len(), 64);
    }

    proptest! {
        #[test]
        fn every_single_typo_is_caught(position in 0usize..17, replacement in 0usize..32) {
            let code = CouponCode::generate();
            let mut bytes = code.0.clone().into_bytes();
            prop_assume!(bytes[position] != ALPHABET[replacement]);
            bytes[position] = ALPHABET[replacement];
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(CouponCode::parse(&typo).unwrap_err(), CouponCodeError::CheckCharacter);
        }

        #[test]
        fn every_adjacent_swap_is_caught(position in 0usize..16) {
            let code = CouponCode::generate();
            let mut bytes = code.0.clone().into_bytes();
            prop_assume!(bytes[position] != bytes[position + 1]);
            let mut pair = [bytes[position], bytes[position + 1]];
            pair.sort_unstable();
            prop_assume!(pair != *b"0Z", "Luhn mod N cannot see the 0/Z swap");
            bytes.swap(position, position + 1);
            let swapped = String::from_utf8(bytes).unwrap();
            prop_assert!(CouponCode::parse(&swapped).is_err());
        }
    }
}
