//! rinnovo: renewal coupons and certificate renewal for Italian qualified-signature
//! devices. See DESIGN.md (shared) for the picture; each domain lives in its folder.

#[macro_use]
mod macros;
// First, so that its backend macros (`upsert!`, `for_update!`...) reach every module.
#[macro_use]
pub mod db;

pub mod agent;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod brands;
pub mod ca;
pub mod card;
pub mod catalog;
pub mod config;
pub mod coupons;
pub mod demo;
pub mod email_address;
pub mod http;
pub mod idempotency;
pub mod invoices;
pub mod lookup;
pub mod mail;
pub mod money;
pub mod orders;
pub mod paging;
pub mod partita_iva;
pub mod payments;
pub mod pkcs11;
pub mod prepaid;
pub mod rate_limit;
pub mod registry;
pub mod renewals;
pub mod secrets;
pub mod seed;
pub mod spreadsheet;
pub mod startup;
pub mod telemetry;
pub mod transfer;
pub mod validation;
pub mod web;
pub mod workers;
pub mod xml_tree;
