//! The courtesy copy (copia di cortesia) of an invoice or credit note: a PDF for people
//! to read, made from the stored FatturaPA file so it says exactly what the legal
//! document says. It states that the fiscally valid document is the XML sent through
//! the SdI.

mod pdf;
pub mod view;

pub use pdf::NOTICE;

use super::StoredDocument;

/// A courtesy copy, ready to download.
#[derive(Debug, Clone)]
pub struct CourtesyCopy {
    /// `fattura-VIS2026-000042.pdf`, `nota-di-credito-VISNC2026-000003.pdf`.
    pub file_name: String,
    pub pdf: Vec<u8>,
}

/// The courtesy copy of a stored document. A file that cannot be read back is a damaged
/// row: an error, never a copy that says something else.
pub fn of(document: &StoredDocument) -> anyhow::Result<CourtesyCopy> {
    let view = view::read(&document.xml)
        .map_err(|e| anyhow::anyhow!("invoice {}: its FatturaPA file: {e}", document.id))?;
    let prefix = match document.kind {
        super::DocumentKind::Invoice => "fattura",
        super::DocumentKind::CreditNote => "nota-di-credito",
    };
    // The number is the brand's prefix, the year and digits; anything else is kept out
    // of a header value.
    let number: String = document
        .number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(CourtesyCopy {
        file_name: format!("{prefix}-{number}.pdf"),
        pdf: pdf::render(&view),
    })
}
