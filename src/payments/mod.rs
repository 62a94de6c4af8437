//! Payments by transfer (bank transfer, postal slip, cheque) identified by an ISO 11649
//! creditor reference ("RF code", reserved by `transfer`): the statements the back-office
//! imports, the matching of their entries, the back-office's work queue, and the expiry of
//! unpaid reservations.
//!
//! - `statement`: parsing the files; `matching`: what a payment does (pure);
//! - `reconcile`: the import; `expiry`: the reservation worker;
//! - `listing` and `manual`: what the back-office sees and does, called through `queue`;
//! - `store`: the one writer of the `payments` table.
//!
//! This module sits above `orders` and `prepaid`: it finds what a payment pays for and
//! moves it on through their named state changes, never the other way round.

pub mod card;
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
