//! Payments by transfer (bank transfer, postal slip, cheque) identified by an ISO 11649
//! creditor reference ("RF code"): the reservation that gives an order or a top-up its
//! code, the statements the back-office imports, the matching of their entries, the
//! back-office's work queue, and the expiry of unpaid reservations.

pub mod creditor_reference;
pub mod expiry;
pub mod manual_match;
pub mod matching;
pub mod queue;
pub mod reconcile;
pub mod reservations;
pub mod statement;

pub use creditor_reference::{CreditorReference, CreditorReferenceError};
