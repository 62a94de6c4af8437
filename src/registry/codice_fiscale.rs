//! The Italian *codice fiscale* of a natural person (16 characters).
//!
//! Layout, 1-based positions:
//!
//! | positions | content                          | class                    |
//! |-----------|----------------------------------|--------------------------|
//! | 1-6       | surname and given-name letters   | letter                   |
//! | 7-8       | year of birth (two digits)       | digit (or omocodia)      |
//! | 9         | month of birth                   | one of `ABCDEHLMPRST`    |
//! | 10-11     | day of birth, +40 for women      | digit (or omocodia)      |
//! | 12        | first character of the Belfiore  | letter                   |
//! | 13-15     | rest of the Belfiore code        | digit (or omocodia)      |
//! | 16        | check character                  | letter                   |
//!
//! *Omocodia*: when two people would get the same code, the Agenzia delle Entrate
//! replaces digits, right to left, with the letters `LMNPQRSTUV` (standing for 0-9).
//! Such a code is still valid and encodes the same birth date and sex.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// 0-based indexes of the positions that hold digits (or their omocodia letters).
const NUMERIC_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
const MONTH_LETTERS: &[u8; 12] = b"ABCDEHLMPRST";
const OMOCODIA_LETTERS: &[u8; 10] = b"LMNPQRSTUV";
/// Values of the characters at odd (1-based) positions for the check character;
/// the index is the letter's offset from `A`, digits take the value of `A`..`J`.
const ODD_POSITION_VALUES: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// A codice fiscale that passed every structural rule and the check character.
/// Always 16 uppercase ASCII characters; the only way to get one is [`CodiceFiscale::parse`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CodiceFiscale(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// Which rule a candidate codice fiscale broke. `position` is 1-based, as people count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodiceFiscaleError {
    #[error("a codice fiscale has 16 characters, this one has {found}")]
    Length { found: usize },
    #[error("character {position} ('{found}') must be a letter A-Z")]
    ExpectedLetter { position: usize, found: char },
    #[error("character {position} ('{found}') must be a digit, or one of LMNPQRSTUV (omocodia)")]
    ExpectedDigit { position: usize, found: char },
    #[error("character 9 ('{found}') is not a month letter (one of ABCDEHLMPRST)")]
    Month { found: char },
    #[error("day of birth {found} is not 1-31 (men) or 41-71 (women)")]
    Day { found: u32 },
    #[error("day {day} does not exist in month {month}")]
    DayOfMonth { day: u32, month: u32 },
    #[error("check character is '{found}' but the other 15 characters give '{expected}'")]
    CheckCharacter { expected: char, found: char },
}

impl CodiceFiscaleError {
    /// A stable, machine-readable name of the rule, used in problem responses.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Length { .. } => "length",
            Self::ExpectedLetter { .. } => "letter_expected",
            Self::ExpectedDigit { .. } => "digit_expected",
            Self::Month { .. } => "month_letter",
            Self::Day { .. } => "day_of_birth",
            Self::DayOfMonth { .. } => "day_of_month",
            Self::CheckCharacter { .. } => "check_character",
        }
    }

    /// The rule that failed, in Italian, for the shop's pages.
    pub fn in_italian(&self) -> String {
        match self {
            Self::Length { found } => {
                format!("il codice fiscale ha 16 caratteri, questo ne ha {found}")
            }
            Self::ExpectedLetter { position, found } => {
                format!("il carattere {position} ('{found}') deve essere una lettera")
            }
            Self::ExpectedDigit { position, found } => format!(
                "il carattere {position} ('{found}') deve essere una cifra, o una lettera di omocodia (LMNPQRSTUV)"
            ),
            Self::Month { found } => format!(
                "il carattere 9 ('{found}') non è la lettera di un mese (ABCDEHLMPRST)"
            ),
            Self::Day { found } => format!(
                "il giorno di nascita {found} non è tra 1 e 31 (uomini) o tra 41 e 71 (donne)"
            ),
            Self::DayOfMonth { day, month } => {
                format!("il giorno {day} non esiste nel mese {month}")
            }
            Self::CheckCharacter { expected, found } => format!(
                "il carattere di controllo è '{found}' ma gli altri 15 caratteri danno '{expected}'"
            ),
        }
    }
}

impl CodiceFiscale {
    /// Parses user input: spaces (and any whitespace) are dropped and letters uppercased
    /// before the rules are checked, so `"rss mra 80a01 h501u"` is accepted.
    pub fn parse(input: &str) -> Result<Self, CodiceFiscaleError> {
        let normalized: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let found = normalized.chars().count();
        if found != 16 {
            return Err(CodiceFiscaleError::Length { found });
        }
        let bytes = normalized.as_bytes();
        if bytes.len() != 16 {
            // 16 characters but more bytes: something outside ASCII. Name the first.
            let (position, found) = normalized
                .chars()
                .enumerate()
                .find(|(_, c)| !c.is_ascii())
                .map(|(i, c)| (i + 1, c))
                .expect("a non-ASCII character exists when bytes != chars");
            return Err(if NUMERIC_POSITIONS.contains(&(position - 1)) {
                CodiceFiscaleError::ExpectedDigit { position, found }
            } else {
                CodiceFiscaleError::ExpectedLetter { position, found }
            });
        }

        for (index, &byte) in bytes.iter().enumerate() {
            let position = index + 1;
            let found = byte as char;
            if NUMERIC_POSITIONS.contains(&index) {
                if !byte.is_ascii_digit() && !OMOCODIA_LETTERS.contains(&byte) {
                    return Err(CodiceFiscaleError::ExpectedDigit { position, found });
                }
            } else if !byte.is_ascii_uppercase() {
                return Err(CodiceFiscaleError::ExpectedLetter { position, found });
            }
        }

        if !MONTH_LETTERS.contains(&bytes[8]) {
            return Err(CodiceFiscaleError::Month {
                found: bytes[8] as char,
            });
        }
        let day = two_digit_value(bytes[9], bytes[10]);
        let day_of_month = match day {
            1..=31 => day,
            41..=71 => day - 40,
            _ => return Err(CodiceFiscaleError::Day { found: day }),
        };
        let month = month_number(bytes[8]);
        let year_in_century = two_digit_value(bytes[6], bytes[7]);
        if day_of_month > max_day_of_month(month, year_in_century) {
            return Err(CodiceFiscaleError::DayOfMonth {
                day: day_of_month,
                month,
            });
        }

        let expected = check_character(&bytes[..15]);
        if bytes[15] != expected {
            return Err(CodiceFiscaleError::CheckCharacter {
                expected: expected as char,
                found: bytes[15] as char,
            });
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn sex(&self) -> Sex {
        if self.day_field() > 40 {
            Sex::Female
        } else {
            Sex::Male
        }
    }

    /// The birth date. The code carries only two digits of the year, so the century is
    /// the latest one that does not put the birth after `today`.
    pub fn birth_date(&self, today: NaiveDate) -> NaiveDate {
        let bytes = self.0.as_bytes();
        let year_in_century = two_digit_value(bytes[6], bytes[7]) as i32;
        let month = month_number(bytes[8]);
        let day = self.day_field() % 40;
        let mut year = today.year() - today.year().rem_euclid(100) + year_in_century;
        loop {
            // Feb 29 of a non-leap year (e.g. 1900) is not a date: step back a century.
            match NaiveDate::from_ymd_opt(year, month, day) {
                Some(date) if date <= today => return date,
                _ => year -= 100,
            }
        }
    }

    fn day_field(&self) -> u32 {
        let bytes = self.0.as_bytes();
        two_digit_value(bytes[9], bytes[10])
    }
}

/// The check character of the first 15 characters (uppercase ASCII, already validated
/// by class). Public so tools that make test data can build valid codes.
pub fn check_character(first_fifteen: &[u8]) -> u8 {
    let sum: u32 = first_fifteen
        .iter()
        .enumerate()
        .map(|(index, &byte)| {
            let value = if byte.is_ascii_digit() {
                (byte - b'0') as u32
            } else {
                (byte - b'A') as u32
            };
            // Index 0 is position 1, an odd position.
            if index % 2 == 0 {
                ODD_POSITION_VALUES[value as usize]
            } else {
                value
            }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

fn digit_value(byte: u8) -> u32 {
    match OMOCODIA_LETTERS.iter().position(|&l| l == byte) {
        Some(value) => value as u32,
        None => (byte - b'0') as u32,
    }
}

fn two_digit_value(tens: u8, units: u8) -> u32 {
    digit_value(tens) * 10 + digit_value(units)
}

fn month_number(letter: u8) -> u32 {
    MONTH_LETTERS
        .iter()
        .position(|&l| l == letter)
        .map(|i| i as u32 + 1)
        .expect("month letter validated before use")
}

/// February allows the 29th whenever the two-digit year is a leap year in some century
/// (`00` is, because 2000 was).
fn max_day_of_month(month: u32, year_in_century: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year_in_century % 4 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

impl FromStr for CodiceFiscale {
    type Err = CodiceFiscaleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A codice fiscale is personal data; keep it recognisable but not whole in logs.
        write!(f, "CodiceFiscale({}…{})", &self.0[..6], &self.0[15..])
    }
}

impl<'de> Deserialize<'de> for CodiceFiscale {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl AsRef<str> for CodiceFiscale {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    #[test]
    fn known_valid_codes() {
        // (code, birth date, sex), checked against the Agenzia delle Entrate algorithm.
        let cases = [
            ("RSSMRA80A01H501U", (1980, 1, 1), Sex::Male),
            ("MRTMTT25D09F205Z", (2025, 4, 9), Sex::Male),
            ("BNCLRA85T52F205E", (1985, 12, 12), Sex::Female),
            ("VRDGPP13R10B593X", (2013, 10, 10), Sex::Male),
        ];
        for (code, (y, m, d), sex) in cases {
            let cf = CodiceFiscale::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(
                cf.birth_date(today()),
                NaiveDate::from_ymd_opt(y, m, d).unwrap()
            );
            assert_eq!(cf.sex(), sex, "{code}");
        }
    }

    #[test]
    fn normalises_case_and_spaces() {
        let cf = CodiceFiscale::parse("  rss mra 80a01 h501u\t").unwrap();
        assert_eq!(cf.as_str(), "RSSMRA80A01H501U");
    }

    #[test]
    fn omocodia_is_valid_and_keeps_birth_date() {
        // RSSMRA80A01H501U with the last digit of the Belfiore code (1) replaced by M.
        let mut first_fifteen = *b"RSSMRA80A01H50M";
        let cf = with_check_character(&first_fifteen);
        assert_eq!(
            cf.birth_date(today()),
            NaiveDate::from_ymd_opt(1980, 1, 1).unwrap()
        );
        // Omocodia in the day field too: 01 -> LM.
        first_fifteen[9] = b'L';
        first_fifteen[10] = b'M';
        let cf = with_check_character(&first_fifteen);
        assert_eq!(
            cf.birth_date(today()),
            NaiveDate::from_ymd_opt(1980, 1, 1).unwrap()
        );
        assert_eq!(cf.sex(), Sex::Male);
    }

    /// The codice fiscale made of `first_fifteen` and its check character.
    fn with_check_character(first_fifteen: &[u8; 15]) -> CodiceFiscale {
        let mut code = first_fifteen.to_vec();
        code.push(check_character(first_fifteen));
        CodiceFiscale::parse(std::str::from_utf8(&code).unwrap()).unwrap()
    }

    #[test]
    fn each_rule_is_named() {
        let cases = [
            ("RSSMRA80A01H501", "length"),
            ("RSSMRA80A01H501UX", "length"),
            ("", "length"),
            ("R5SMRA80A01H501U", "letter_expected"),
            ("RSSMRAX0A01H501U", "digit_expected"),
            ("RSSMRA80A01H5W1U", "digit_expected"),
            ("RSSMRA80A0155016", "letter_expected"),
            ("RSSMRA80F01H501U", "month_letter"),
            ("RSSMRA80A00H501U", "day_of_birth"),
            ("RSSMRA80A32H501U", "day_of_birth"),
            ("RSSMRA80A40H501U", "day_of_birth"),
            ("RSSMRA80A72H501U", "day_of_birth"),
            ("RSSMRA80B30H501U", "day_of_month"),
            ("RSSMRA81B29H501U", "day_of_month"),
            ("RSSMRA80D31H501U", "day_of_month"),
            ("RSSMRA80A01H501A", "check_character"),
            ("RSSMRÀ80A01H501U", "letter_expected"),
        ];
        for (code, rule) in cases {
            let error = CodiceFiscale::parse(code).expect_err(code);
            assert_eq!(error.rule(), rule, "{code}: {error}");
        }
    }

    #[test]
    fn the_error_message_says_what_was_expected() {
        let error = CodiceFiscale::parse("RSSMRA80A01H501A").unwrap_err();
        assert_eq!(
            error.to_string(),
            "check character is 'A' but the other 15 characters give 'U'"
        );
    }

    #[test]
    fn leap_day_birth_dates() {
        // 29 Feb '00 is 2000-02-29 (a leap year), never 1900-02-29 (not one).
        let mut first_fifteen = *b"RSSMRA00B29H501";
        let check = check_character(&first_fifteen);
        let code: String = first_fifteen
            .iter()
            .chain([check].iter())
            .map(|&b| b as char)
            .collect();
        let cf = CodiceFiscale::parse(&code).unwrap();
        assert_eq!(
            cf.birth_date(today()),
            NaiveDate::from_ymd_opt(2000, 2, 29).unwrap()
        );
        // Looking from 1999, 2000 is in the future, and neither 1900 nor 1800 nor 1700
        // had a Feb 29 (centuries are leap only when divisible by 400): 1600.
        let from_1999 = NaiveDate::from_ymd_opt(1999, 6, 1).unwrap();
        assert_eq!(
            cf.birth_date(from_1999),
            NaiveDate::from_ymd_opt(1600, 2, 29).unwrap()
        );
        first_fifteen[7] = b'4';
        let check = check_character(&first_fifteen);
        let code: String = first_fifteen
            .iter()
            .chain([check].iter())
            .map(|&b| b as char)
            .collect();
        assert!(CodiceFiscale::parse(&code).is_ok(), "04 is a leap year");
    }

    #[test]
    fn debug_output_does_not_leak_the_whole_code() {
        let cf = CodiceFiscale::parse("RSSMRA80A01H501U").unwrap();
        assert_eq!(format!("{cf:?}"), "CodiceFiscale(RSSMRA…U)");
    }

    /// A generator of valid codes: any letters, any birth date in the hundred years up to
    /// `today()` (two year digits cannot tell more), either sex, any Belfiore code, and
    /// omocodia applied to a random subset of the numeric positions.
    fn valid_code() -> impl Strategy<Value = (String, NaiveDate, Sex)> {
        (
            proptest::collection::vec(0u8..26, 7),
            0i64..36_500,
            any::<bool>(),
            0u32..1000,
            proptest::collection::vec(any::<bool>(), 7),
        )
            .prop_map(|(letters, days_ago, female, belfiore, omocodia)| {
                let date = today() - chrono::Duration::days(days_ago);
                let day = date.day() + if female { 40 } else { 0 };
                let mut code = Vec::with_capacity(16);
                code.extend(letters[..6].iter().map(|l| b'A' + l));
                code.extend(format!("{:02}", date.year() % 100).bytes());
                code.push(MONTH_LETTERS[date.month0() as usize]);
                code.extend(format!("{day:02}").bytes());
                code.push(b'A' + letters[6]);
                code.extend(format!("{belfiore:03}").bytes());
                for (index, substitute) in NUMERIC_POSITIONS.iter().zip(omocodia) {
                    if substitute {
                        code[*index] = OMOCODIA_LETTERS[(code[*index] - b'0') as usize];
                    }
                }
                code.push(check_character(&code));
                let sex = if female { Sex::Female } else { Sex::Male };
                (String::from_utf8(code).unwrap(), date, sex)
            })
    }

    proptest! {
        #[test]
        fn every_generated_code_parses_with_its_birth_date_and_sex((code, date, sex) in valid_code()) {
            let cf = CodiceFiscale::parse(&code).unwrap();
            prop_assert_eq!(cf.as_str(), code.as_str());
            prop_assert_eq!(cf.birth_date(today()), date);
            prop_assert_eq!(cf.sex(), sex);
        }

        #[test]
        fn lowercase_and_spaces_do_not_matter((code, _, _) in valid_code(), cut in 1usize..15) {
            let messy = format!(" {} {} ", code[..cut].to_lowercase(), &code[cut..]);
            let parsed = CodiceFiscale::parse(&messy).unwrap();
            prop_assert_eq!(parsed.as_str(), code.as_str());
        }

        #[test]
        fn changing_one_letter_is_caught((code, _, _) in valid_code(), position in 0usize..6, shift in 1u8..26) {
            let mut bytes = code.into_bytes();
            bytes[position] = b'A' + (bytes[position] - b'A' + shift) % 26;
            let error = CodiceFiscale::parse(std::str::from_utf8(&bytes).unwrap()).unwrap_err();
            prop_assert_eq!(error.rule(), "check_character");
        }

        #[test]
        fn swapping_the_check_character_is_caught((code, _, _) in valid_code(), shift in 1u8..26) {
            let mut bytes = code.into_bytes();
            bytes[15] = b'A' + (bytes[15] - b'A' + shift) % 26;
            let error = CodiceFiscale::parse(std::str::from_utf8(&bytes).unwrap()).unwrap_err();
            prop_assert_eq!(error.rule(), "check_character");
        }

        #[test]
        fn arbitrary_input_never_panics(input in ".{0,40}") {
            let _ = CodiceFiscale::parse(&input);
        }
    }
}
