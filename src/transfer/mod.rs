//! Paying by transfer (bank transfer, postal slip, cheque) with an ISO 11649 creditor
//! reference ("RF code"): how an order or top-up is paid, the code itself, and the
//! reservation that gives an order or top-up its code and tells the payer how to pay.
//!
//! It sits below `orders`, `prepaid` and `payments`: orders and top-ups reserve codes
//! here, and the statement import (`payments`) finds them by the code.

pub mod creditor_reference;
pub mod reservation;

pub use creditor_reference::{CreditorReference, CreditorReferenceError};

text_enum!(
    PaymentMethod {
        Prepaid => "prepaid",
        BankTransfer => "bank_transfer",
        PostalSlip => "postal_slip",
        Cheque => "cheque",
        /// By card on the payment provider's hosted page (`card`).
        Card => "card",
    }
);

impl PaymentMethod {
    /// Paid by money that arrives later with an RF code (bank transfer, postal slip,
    /// cheque), rather than at once from the prepaid account.
    pub fn is_transfer(self) -> bool {
        matches!(
            self,
            PaymentMethod::BankTransfer | PaymentMethod::PostalSlip | PaymentMethod::Cheque
        )
    }

    pub fn italian(self) -> &'static str {
        match self {
            PaymentMethod::Prepaid => "conto prepagato",
            PaymentMethod::BankTransfer => "bonifico bancario",
            PaymentMethod::PostalSlip => "bollettino postale",
            PaymentMethod::Cheque => "assegno",
            PaymentMethod::Card => "carta di credito",
        }
    }
}
