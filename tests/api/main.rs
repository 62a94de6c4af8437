//! Integration tests: the real server, a real database per test. They run on SQLite,
//! and on PostgreSQL when TEST_DATABASE_URL is set (see .ci/run).

mod agent;
mod auth;
mod backoffice_pages;
mod billing;
mod catalog;
mod cli;
mod courtesy_copies;
mod credit_notes;
mod email_confirmation;
mod faults;
mod hardening;
mod health;
mod helpers;
mod invoices;
mod issuance;
mod limits;
mod lookup;
mod lost_codes;
mod metrics;
mod openapi;
mod orders;
mod outbox;
mod payments;
mod prepaid;
mod recovery;
mod reminders;
mod renewals;
mod schema;
mod sdi_receipts;
mod sdi_transmission;
mod shop_pages;
mod smtp;
mod statements;
mod user_management;
mod web_client;
