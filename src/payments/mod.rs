//! Payments by transfer (bank transfer, postal slip, cheque) identified by an ISO 11649
//! creditor reference ("RF code", reserved by `transfer`): the statements the back-office
//! imports, the matching of their entries, the back-office's work queue, and the expiry of
//! unpaid reservations.

pub mod expiry;
pub mod listing;
pub mod manual;
pub mod matching;
pub mod queue;
pub mod reconcile;
pub mod statement;
pub mod store;

// The RF code lives in `transfer`, below orders and top-ups; kept here at its old path
// for the front ends and the benches.
pub use crate::transfer::creditor_reference;
pub use crate::transfer::{CreditorReference, CreditorReferenceError};
