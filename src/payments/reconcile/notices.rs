//! The `payment_update` email the owner of an order or top-up gets when a statement
//! brings (or the bank takes back) money for it.

use serde_json::json;

use super::super::statement::StatementEntry;
use crate::brands::Brand;
use crate::mail::outbox::OutgoingEmail;
use crate::mail::templates::EmailKind;
use crate::money::Money;
use crate::transfer::CreditorReference;

/// What the payment email says, all flags always present (the templates are strict).
#[derive(Default)]
pub(super) struct Notice {
    pub(super) partial_missing: Option<Money>,
    pub(super) overpaid: bool,
    pub(super) duplicate: bool,
    pub(super) top_up: bool,
    pub(super) late: bool,
    pub(super) reversed: bool,
    pub(super) credited: Money,
    pub(super) debited: Money,
    pub(super) voided: usize,
}

pub(super) fn payment_email(
    brand: &Brand,
    name: &str,
    recipient: &str,
    subject_id: &str,
    payment: &StatementEntry,
    reference: &CreditorReference,
    notice: Notice,
) -> OutgoingEmail {
    OutgoingEmail {
        brand_id: brand.id.clone(),
        kind: EmailKind::PaymentUpdate,
        reference: Some(subject_id.to_owned()),
        sender: brand.sender_address.clone(),
        recipient: recipient.to_owned(),
        context: json!({
            "name": name, "brand": brand.name,
            "amount": payment.amount.to_string(),
            "reference": reference.printed(),
            "date": payment.booking_date.format("%d/%m/%Y").to_string(),
            "partial": notice.partial_missing.is_some(),
            "missing": notice.partial_missing.unwrap_or_default().to_string(),
            "overpaid": notice.overpaid, "duplicate": notice.duplicate,
            "top_up": notice.top_up, "late": notice.late, "reversed": notice.reversed,
            "credited": notice.credited.to_string(),
            "debited": (notice.debited.is_positive()).then(|| notice.debited.to_string()),
            "voided": notice.voided,
        }),
        attachment: None,
    }
}
