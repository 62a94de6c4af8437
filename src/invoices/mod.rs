//! Invoices. Today: their numbers, progressive per brand and year without gaps or
//! repeats (DESIGN.md, invariants). The order an invoice belongs to keeps the number it
//! was given (`orders` owns that row); this module owns the counters.

pub mod numbering;

pub use numbering::{invoice_number, take_numbers, InvoiceNumber};
