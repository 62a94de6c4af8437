//! Payments by transfer (bank transfer, postal slip, cheque) identified by an ISO 11649
//! creditor reference. So far: the reference type; orders and statement import build on it.

pub mod creditor_reference;

pub use creditor_reference::{CreditorReference, CreditorReferenceError};
