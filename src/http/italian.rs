//! How amounts and states are written for Italian readers: the pages and the Italian
//! messages of the error identities (`errors`) share these, so a state reads the same in
//! a table and in a refusal.

use crate::money::Money;
use crate::payments::matching::PaymentStatus;

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

/// A payment state as stored (`unmatched`), in Italian; an unknown one as it is.
pub fn payment_status_text(status: &str) -> String {
    PaymentStatus::parse(status)
        .map_or_else(|| status.to_owned(), |s| payment_status_label(s).to_owned())
}

pub fn order_status_label(status: &str) -> String {
    match status {
        "awaiting_payment" => "in attesa di pagamento".into(),
        "paid" => "pagato".into(),
        "fulfilled" => "evaso".into(),
        "expired" => "scaduto".into(),
        "cancelled" => "annullato".into(),
        other => other.into(),
    }
}

pub fn coupon_status_label(status: &str) -> String {
    match status {
        "available" => "disponibile".into(),
        "reserved" => "prenotato per un rinnovo".into(),
        "redeemed" => "già utilizzato".into(),
        "voided" => "già annullato".into(),
        "expired" => "scaduto".into(),
        other => other.into(),
    }
}

/// What the pages say of a new password that breaks the rule.
pub fn password_rule(error: &crate::auth::PasswordError) -> &'static str {
    use crate::auth::PasswordError::*;
    match error {
        TooShort => "La password deve avere almeno 10 caratteri.",
        TooLong => "La password è troppo lunga.",
        TooRepetitive => "La password deve avere almeno 5 caratteri diversi.",
        Common => "Questa password è tra le più usate: scegline un'altra.",
        ContainsEmail => "La password non deve contenere l'indirizzo email.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euro_amounts_are_written_the_italian_way() {
        assert_eq!(euro(Money::from_cents(3172)), "€ 31,72");
        assert_eq!(euro(Money::from_cents(146_400)), "€ 1.464,00");
        assert_eq!(euro(Money::from_cents(100_000_000)), "€ 1.000.000,00");
        assert_eq!(euro(Money::from_cents(5)), "€ 0,05");
        assert_eq!(euro(Money::from_cents(-1250)), "€ -12,50");
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
