//! Money in euro: `Decimal` in code, integer cents in the database, decimal strings
//! ("12.50") in JSON, so no amount ever passes through a float.

use std::fmt;
use std::ops::{Add, Neg, Sub};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An amount of euro with at most two decimals. May be negative (a debit, a correction);
/// where only positive amounts make sense, use [`PositiveMoney`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not a decimal amount such as 12.50")]
    NotANumber(String),
    #[error("{0} has more than two decimals: amounts are in euro cents")]
    TooPrecise(String),
    #[error("{0} is too large")]
    TooLarge(String),
    #[error("{0} must be greater than zero")]
    NotPositive(String),
}

impl MoneyError {
    pub fn rule(&self) -> &'static str {
        match self {
            Self::NotANumber(_) => "decimal",
            Self::TooPrecise(_) => "cents",
            Self::TooLarge(_) => "maximum",
            Self::NotPositive(_) => "positive",
        }
    }
}

/// Larger than any sum this shop will see, small enough that cents sums never overflow i64.
const MAX_ABS_CENTS: i64 = 1_000_000_000_000; // ten billion euro

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    pub fn from_cents(cents: i64) -> Self {
        Self(Decimal::new(cents, 2))
    }

    pub fn cents(self) -> i64 {
        (self.0 * Decimal::ONE_HUNDRED)
            .to_i64()
            .expect("a Money holds at most two decimals within i64 cents")
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    /// Parses "12.5", "12.50", "-3", rejecting more than two decimals (never rounds
    /// silently: a third decimal in an amount someone typed is a mistake to report).
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let trimmed = text.trim();
        // Plain decimals only: no exponent ("1e3"), no thousands separators, no "+".
        let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
        let plain = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !plain(whole) || !plain(fraction) {
            return Err(MoneyError::NotANumber(trimmed.to_owned()));
        }
        let value: Decimal = trimmed
            .parse()
            .map_err(|_| MoneyError::NotANumber(trimmed.to_owned()))?;
        Self::from_decimal(value)
    }

    pub fn from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        if value.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise(value.to_string()));
        }
        let cents = (value * Decimal::ONE_HUNDRED).to_i64();
        match cents {
            Some(c) if c.abs() <= MAX_ABS_CENTS => Ok(Self::from_cents(c)),
            _ => Err(MoneyError::TooLarge(value.to_string())),
        }
    }

    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, other: Money) -> Money {
        Money(self.0 - other.0)
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    /// Accepts a JSON string ("12.50"). Numbers are refused: a JSON number may already
    /// have been through a float on the client's side.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Money::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `€ 1.464,00`: the Italian way, with the euro sign before.
pub fn euro(amount: Money) -> String {
    let cents = amount.cents();
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let units = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in units.chars().enumerate() {
        if i > 0 && (units.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    format!("€ {sign}{grouped},{:02}", cents % 100)
}

/// An amount strictly greater than zero: what a top-up, a debit or a price is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PositiveMoney(Money);

impl<'de> Deserialize<'de> for PositiveMoney {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let money = Money::deserialize(deserializer)?;
        PositiveMoney::new(money).map_err(serde::de::Error::custom)
    }
}

impl PositiveMoney {
    pub fn new(money: Money) -> Result<Self, MoneyError> {
        if money.is_positive() {
            Ok(Self(money))
        } else {
            Err(MoneyError::NotPositive(money.to_string()))
        }
    }

    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        Self::new(Money::parse(text)?)
    }

    pub fn money(self) -> Money {
        self.0
    }

    pub fn cents(self) -> i64 {
        self.0.cents()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn euro_amounts_are_written_the_italian_way() {
        assert_eq!(euro(Money::from_cents(3172)), "€ 31,72");
        assert_eq!(euro(Money::from_cents(146_400)), "€ 1.464,00");
        assert_eq!(euro(Money::from_cents(100_000_000)), "€ 1.000.000,00");
        assert_eq!(euro(Money::from_cents(5)), "€ 0,05");
        assert_eq!(euro(Money::from_cents(-1250)), "€ -12,50");
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_two_decimals() {
        assert_eq!(Money::parse("12.5").unwrap().to_string(), "12.50");
        assert_eq!(Money::parse(" 3 ").unwrap().cents(), 300);
        assert_eq!(Money::parse("-0.01").unwrap().cents(), -1);
        assert_eq!(Money::parse("26.00").unwrap(), Money::from_cents(2600));
        assert_eq!(
            Money::parse("1.230").unwrap().cents(),
            123,
            "trailing zeros are fine"
        );
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        assert_eq!(Money::parse("12.345").unwrap_err().rule(), "cents");
        assert_eq!(Money::parse("abc").unwrap_err().rule(), "decimal");
        assert_eq!(Money::parse("1e3").unwrap_err().rule(), "decimal");
        assert_eq!(Money::parse("1.000,50").unwrap_err().rule(), "decimal");
        assert_eq!(Money::parse("+5").unwrap_err().rule(), "decimal");
        assert_eq!(Money::parse("5.").unwrap_err().rule(), "decimal");
        assert_eq!(Money::parse("").unwrap_err().rule(), "decimal");
        assert_eq!(
            Money::parse("99999999999999").unwrap_err().rule(),
            "maximum"
        );
        assert_eq!(PositiveMoney::parse("0").unwrap_err().rule(), "positive");
        assert_eq!(PositiveMoney::parse("-5").unwrap_err().rule(), "positive");
    }

    #[test]
    fn json_is_a_string_both_ways() {
        let money: Money = serde_json::from_str("\"11.00\"").unwrap();
        assert_eq!(serde_json::to_string(&money).unwrap(), "\"11.00\"");
        assert!(serde_json::from_str::<Money>("11.0").is_err());
    }

    proptest! {
        #[test]
        fn cents_round_trip(cents in -MAX_ABS_CENTS..=MAX_ABS_CENTS) {
            let money = Money::from_cents(cents);
            prop_assert_eq!(money.cents(), cents);
            prop_assert_eq!(Money::parse(&money.to_string()).unwrap(), money);
        }
    }
}
