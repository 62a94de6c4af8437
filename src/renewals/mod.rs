//! Renewals of the certificates on a device. So far: renewal information for clients
//! that poll (RFC 9773) and reminders by email; requests, issuance and installation
//! come next.

pub mod info;
pub mod reminders;
