//! Renewals of the certificates on a device. So far: renewal information for clients
//! that poll (RFC 9773); requests, issuance and installation come next.

pub mod info;
