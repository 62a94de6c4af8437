//! The period's FatturaPA files of a brand as one ZIP, for the accountant. Built batch by
//! batch into a temporary file, so the memory it takes does not grow with the period.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::InvoiceError;
use crate::audit::Operator;
use crate::db::schema::invoices;
use crate::db::DbConnection;

/// The longest period one export covers: a tax year, with a leap day.
pub const MAX_DAYS: i64 = 366;

/// Files read from the database at a time.
const BATCH: i64 = 200;

/// Issue dates from `from` to `to`, both included: `from` not after `to`, at most
/// [`MAX_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportPeriod {
    from: NaiveDate,
    to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("to must be on or after from")]
    Reversed,
    #[error("the period can cover at most {MAX_DAYS} days")]
    TooLong,
}

impl crate::validation::Rule for PeriodError {
    fn rule(&self) -> &'static str {
        match self {
            Self::Reversed => "after_from",
            Self::TooLong => "max_days",
        }
    }
}

impl ExportPeriod {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, PeriodError> {
        if to < from {
            return Err(PeriodError::Reversed);
        }
        if (to - from).num_days() + 1 > MAX_DAYS {
            return Err(PeriodError::TooLong);
        }
        Ok(Self { from, to })
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// `fatture-visura-2026-01-01-2026-12-31.zip`.
    pub fn file_name(&self, brand_id: &str) -> String {
        format!("fatture-{brand_id}-{}-{}.zip", self.from, self.to)
    }
}

/// The ZIP of the operator's brand's documents issued in `period` (see [`write_zip`]), in
/// a temporary file that disappears when dropped, ready to be
/// read; and how many files it holds. Audited: it hands out a period of buyers' data.
pub fn export_zip(
    conn: &mut DbConnection,
    operator: Operator<'_>,
    period: ExportPeriod,
    now: DateTime<Utc>,
) -> Result<(File, usize), InvoiceError> {
    let brand_id = operator.brand_id;
    let mut file = tempfile::tempfile().map_err(anyhow::Error::from)?;
    let count = write_zip(conn, brand_id, period, &mut file)?;
    operator.record(
        conn,
        "invoices.exported",
        ("brand", brand_id),
        serde_json::json!({
            "from": period.from, "to": period.to, "files": count,
        }),
        now,
    )?;
    Ok((file, count))
}

/// Writes into `file` the ZIP of the brand's documents (invoices and credit notes) issued
/// in `period`, each as the SdI file it is, under its SdI name, oldest first; `file` is
/// left at its start, ready to be read. Returns how many files it holds.
pub fn write_zip(
    conn: &mut DbConnection,
    brand_id: &str,
    period: ExportPeriod,
    file: &mut File,
) -> Result<usize, InvoiceError> {
    let mut zip = ZipWriter::new(&mut *file);
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut after: Option<(NaiveDate, String)> = None;
    let mut count = 0;
    loop {
        let mut query = invoices::table
            .filter(invoices::brand_id.eq(brand_id))
            .filter(invoices::issue_date.ge(period.from))
            .filter(invoices::issue_date.le(period.to))
            .into_boxed();
        // Keyset paging: each batch after the last one's (date, id), so no row is read twice
        // or skipped however long the export takes.
        if let Some((date, id)) = &after {
            query = query.filter(
                invoices::issue_date.gt(*date).or(invoices::issue_date
                    .eq(*date)
                    .and(invoices::id.gt(id.clone()))),
            );
        }
        let batch: Vec<ExportedFile> = query
            .order((invoices::issue_date.asc(), invoices::id.asc()))
            .limit(BATCH)
            .select(ExportedFile::as_select())
            .load(conn)?;
        let full = batch.len() as i64 == BATCH;
        for file in &batch {
            zip.start_file(file.file_name.as_str(), options)
                .map_err(anyhow::Error::from)?;
            zip.write_all(file.xml.as_bytes())
                .map_err(anyhow::Error::from)?;
            count += 1;
        }
        match batch.into_iter().last() {
            Some(file) if full => after = Some((file.issue_date, file.id)),
            _ => break,
        }
    }
    zip.finish().map_err(anyhow::Error::from)?;
    file.seek(SeekFrom::Start(0)).map_err(anyhow::Error::from)?;
    Ok(count)
}

/// A document's file in the export, with where it stands in the keyset order.
#[derive(Queryable, Selectable)]
#[diesel(table_name = invoices)]
struct ExportedFile {
    id: String,
    issue_date: NaiveDate,
    file_name: String,
    xml: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_period_is_at_most_a_year_and_in_order() {
        assert!(ExportPeriod::new(day("2024-01-01"), day("2024-12-31")).is_ok());
        assert!(ExportPeriod::new(day("2026-03-01"), day("2026-03-01")).is_ok());
        assert_eq!(
            ExportPeriod::new(day("2026-03-02"), day("2026-03-01")),
            Err(PeriodError::Reversed)
        );
        assert_eq!(
            ExportPeriod::new(day("2025-01-01"), day("2026-01-02")),
            Err(PeriodError::TooLong)
        );
    }
}
