//! Importing a statement: every new entry becomes a payment, matched by its RF code to an
//! order or top-up and applied (order fulfilled, prepaid account credited, emails
//! written) in the same transaction as the payment row.
//!
//! Of a file with several statements, those of the brand's accounts (its IBAN, its postal
//! account) are imported; the others are listed in the report as skipped, with their
//! account, where they are and the money they carry. A file with none of the brand's is
//! refused whole: it is the wrong file, or uploaded under the wrong brand.
//!
//! A bank entry reported twice, as one sum (a camt.053's batch booking) and in detail
//! (a camt.054, or the entry's own transactions), is counted once, in whichever order
//! the files come (`statement::BankEntry` says when two are the same entry): the detail
//! is kept, as it carries the payers' RF codes. A sum that arrives after its detail is
//! already imported; a detail that arrives after its sum replaces it (the sum's payment,
//! still waiting untouched in the queue, is removed in the same transaction and the
//! removal audited); if the sum was resolved by hand meanwhile, its money is counted
//! there and the detail is taken as already imported. Detail transactions run in the
//! pass that holds every lane, so two files of one entry never race.
//!
//! Credits are split into lanes (`LANES`, by RF code, so all the payments of one order
//! go through one lane in file order) that run in parallel on PostgreSQL, each on its
//! own connection. A lane takes its entries in chunks, one transaction each, so that a
//! 100,000-entry statement never holds the brand's invoice counter for long. Work on one
//! lane of a brand is serialised across processes (`lock_payment_lane`), and inside
//! the lock each entry's de-duplication key is looked up before it is stored: an entry
//! falls in the same lane in every import, so re-importing a file, an overlapping
//! statement, or ten imports at once count each payment once. The unique key on (brand,
//! dedup_key) is the last line of defence. Reversals come last, holding every lane. A
//! chunk that fails rolls back whole; the chunks before it stay, and importing the file
//! again completes it.
//!
//! The entries are never all in memory: the file's are in a spool on disk
//! (`statement::read_file`), and one reading of it sorts the brand's into a spool per
//! pass (each lane, then details and reversals), keeping only keys for what needs the
//! whole file (repeats within the file, bank references reused in it); each lane then
//! reads its spool a chunk at a time. Imports of one brand take turns in a process
//! ([`turn_of`]), and the memory goes back to the system when one ends.
//!
//! Lock order, as in the prepaid checkout: lane locks, then the orders and top-ups of
//! the chunk (disjoint between lanes), prepaid accounts in id order, the invoice counter
//! last; the lanes of one import, other imports and checkouts never wait in a circle.
//!
//! Here: the import, a lane's chunks and the `statements` row (this file alone writes
//! it). The report it returns is in [`report`]; the reading of the file into a spool per
//! pass in [`plan`]; the lanes, their locks and the brand's turns in [`lanes`]; bank
//! references reused for another payment in [`reuse`]. The credits of a chunk are in
//! [`credits`], the reversals in [`reversals`], the payer's email in [`notices`]; rows
//! of other tables are written by their owners (`payments::store`, `orders::state`,
//! `prepaid::top_ups`, `prepaid`).

mod credits;
mod lanes;
mod notices;
mod plan;
mod report;
mod reuse;
mod reversals;

pub use lanes::{lock_payments_of_brand, turn_of, ImportTurn};
pub use report::{ImportReport, MoneyFlow, OutcomeTotal, ReusedReference, SkippedStatement};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use self::lanes::{lock_payment_lane, run_credit_lanes, LANES};
use self::plan::Plan;
use self::reuse::{flag_reused_in_file, reused_references};
use super::statement::upload::SpooledUpload;
use super::statement::{
    reused_reference_key, EntryDirection, EntrySpool, ParsedStatement, StatementEntry,
    StatementError,
};
use super::store;
use crate::audit::{self, Actor, AuditEntry};
use crate::brands::Brand;
use crate::coupons::CouponKey;
use crate::db::schema::{payments, statements};
use crate::db::{self, write_transaction, DbConnection, Pool};
use crate::money::Money;
use crate::orders::OrderError;
use crate::prepaid::PrepaidError;

/// Entries per transaction: large enough that the per-transaction cost vanishes, small
/// enough that the invoice counter is held for milliseconds.
pub const CHUNK: usize = 500;

/// What the import needs besides the file.
pub struct ImportContext<'a> {
    pub brand: &'a Brand,
    pub operator_id: &'a str,
    pub coupon_key: &'a CouponKey,
    pub public_url: &'a str,
    pub file_name: Option<&'a str>,
    pub file_sha256: &'a str,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum ImportError {
        #[error("the statement file is empty")]
        EmptyFile,
        /// Not a statement rinnovo reads: nothing is imported.
        #[error(transparent)]
        Unreadable(#[from] StatementError),
        #[error("{location}: account {account} is not an account of {brand} (IBAN {iban}, postal account {postal}): wrong file or wrong brand")]
        ForeignAccount {
            location: String,
            account: String,
            brand: String,
            iban: String,
            postal: String,
        },
    }
    storage from diesel::result::Error, PrepaidError, OrderError, std::io::Error
}

/// Who imports an uploaded statement, in their brand's turn, and the service's settings
/// the import needs.
pub struct Importer<'a> {
    /// The brand's turn: holding it is the only way to name the brand imported into.
    pub turn: &'a ImportTurn,
    pub operator_id: &'a str,
    pub coupon_key: &'a CouponKey,
    pub public_url: &'a str,
    /// Where the file's entries, and each pass's, are spooled.
    pub spool_dir: &'a Path,
}

/// What importing an upload did: the report, and the file's header (its entries gone).
pub struct UploadImported {
    pub brand: Brand,
    pub report: ImportReport,
    pub statement: ParsedStatement<()>,
}

/// Imports an uploaded statement file for the importer's brand: the use-case the API and
/// the back-office page both run. The file is read in bounded memory
/// (`statement::read_file`), then applied ([`import`]). Blocking, and long for a large
/// file: call it off the async workers; it runs in the brand's turn ([`turn_of`]), which
/// the importer holds.
pub fn import_upload(
    pool: &Pool,
    conn: &mut DbConnection,
    importer: &Importer<'_>,
    upload: SpooledUpload,
    file_name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<UploadImported, ImportError> {
    if upload.size == 0 {
        return Err(ImportError::EmptyFile);
    }
    let statement = super::statement::read_file(&upload.file, importer.spool_dir)??;
    let brand = crate::brands::existing(conn, importer.turn.brand_id())?;
    let context = ImportContext {
        brand: &brand,
        operator_id: importer.operator_id,
        coupon_key: importer.coupon_key,
        public_url: importer.public_url,
        file_name,
        file_sha256: &upload.sha256,
    };
    let report = import(pool, conn, &context, &statement, importer.spool_dir, now)?;
    Ok(UploadImported {
        brand,
        report,
        statement: statement.with_no_entries(),
    })
}

/// Imports a statement read by `statement::read_file`: its entries are read from their
/// spool a chunk at a time, never all at once; the spools of the import's passes go in
/// `spool_dir`.
pub fn import(
    pool: &Pool,
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement: &ParsedStatement<EntrySpool>,
    spool_dir: &Path,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let lanes = if db::writes_in_parallel(conn) {
        LANES
    } else {
        1
    };
    let plan = Plan::of(context.brand, statement, lanes, spool_dir)?;
    let mut report = ImportReport {
        statement_id: None,
        statements: plan.statements,
        skipped: plan.skipped,
        entries: plan.entries,
        new_entries: 0,
        already_imported: plan.repeated,
        ignored: plan.ignored,
        outcomes: BTreeMap::new(),
        money_in: MoneyFlow::default(),
        money_out: MoneyFlow::default(),
        reused_references: Vec::new(),
        replaced_sums: MoneyFlow::default(),
    };
    // The statement row is committed first, so that every lane's payments can refer to
    // it; it is removed again if the file brings nothing new.
    let statement_id = write_transaction(conn, |conn| {
        record_statement(conn, context, statement, &report, now)
    })?;
    let run = Run {
        context,
        statement_id: &statement_id,
        now,
    };
    let mut parts = run_credit_lanes(pool, conn, &run, &plan.lanes);
    parts.push(run.lane(conn, None, &plan.last.iter().collect::<Vec<_>>()));
    for part in parts {
        report.add(part?);
    }
    write_transaction(conn, |conn| {
        flag_reused_in_file(
            conn,
            &context.brand.id,
            &statement_id,
            &plan.reused_in_file,
            &mut report,
        )?;
        finish_statement(conn, context, statement, &statement_id, &report, now)
    })?;
    if report.new_entries > 0 {
        report.statement_id = Some(statement_id);
    }
    Ok(report)
}

/// One import's work: what every lane and chunk of it shares.
struct Run<'a> {
    context: &'a ImportContext<'a>,
    statement_id: &'a str,
    now: DateTime<Utc>,
}

impl Run<'_> {
    /// The entries of one lane (`None`: all lanes), spool after spool, a transaction per
    /// chunk: only a chunk of them is in memory.
    fn lane(
        &self,
        conn: &mut DbConnection,
        lane: Option<usize>,
        spools: &[&EntrySpool],
    ) -> Result<ImportReport, ImportError> {
        let mut part = ImportReport::default();
        let mut chunk: Vec<StatementEntry> = Vec::with_capacity(CHUNK);
        let mut apply = |chunk: &mut Vec<StatementEntry>| {
            let entries: Vec<&StatementEntry> = chunk.iter().collect();
            write_transaction(conn, |conn| self.chunk(conn, lane, &entries, &mut part))?;
            chunk.clear();
            Ok::<_, ImportError>(())
        };
        for spool in spools {
            for entry in spool.iter().context("reading the import's entries")? {
                chunk.push(entry.context("reading an entry of the import")?);
                if chunk.len() == CHUNK {
                    apply(&mut chunk)?;
                }
            }
        }
        if !chunk.is_empty() {
            apply(&mut chunk)?;
        }
        Ok(part)
    }

    /// One transaction of a lane (`None`: all lanes, for reversals): skips the entries
    /// already stored, then applies the credits and reversals of the rest.
    fn chunk(
        &self,
        conn: &mut DbConnection,
        lane: Option<usize>,
        chunk: &[&StatementEntry],
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let (context, statement_id, now) = (self.context, self.statement_id, self.now);
        let brand = context.brand;
        match lane {
            Some(lane) => lock_payment_lane(conn, &brand.id, lane)?,
            None => lock_payments_of_brand(conn, &brand.id)?,
        }
        db::plan_each_query(conn)?;
        let known = stored_with_keys(conn, &brand.id, chunk.iter().map(|e| e.dedup_key.clone()))?;
        // A key already stored for another amount or booking date is a bank reference
        // reused for another payment: that payment gets a key of its own (see `dedup`).
        let mut rekeyed: Vec<Option<StatementEntry>> = chunk
            .iter()
            .map(|entry| {
                let stored = known.get(&entry.dedup_key)?;
                let same = stored.amount_cents == entry.amount.cents()
                    && stored.booking_date == entry.booking_date;
                (!same).then(|| StatementEntry {
                    dedup_key: reused_reference_key(entry),
                    ..(*entry).clone()
                })
            })
            .collect();
        let known_again = stored_with_keys(
            conn,
            &brand.id,
            rekeyed.iter().flatten().map(|e| e.dedup_key.clone()),
        )?;
        for slot in &mut rekeyed {
            if slot
                .as_ref()
                .is_some_and(|e| known_again.contains_key(&e.dedup_key))
            {
                // Imported before under its own key: nothing new.
                *slot = None;
            }
        }
        let fresh: Vec<&StatementEntry> = chunk
            .iter()
            .zip(&rekeyed)
            .filter_map(|(entry, rekeyed)| match rekeyed {
                Some(own) => Some(own),
                None => (!known.contains_key(&entry.dedup_key)).then_some(*entry),
            })
            .collect();
        let fresh = self.once_per_bank_entry(conn, fresh, report)?;
        report.already_imported += chunk.len() - fresh.len();
        if fresh.is_empty() {
            return Ok(());
        }
        report.new_entries += fresh.len();
        let flagged = reused_references(conn, &brand.id, &fresh)?;

        let (credits, reversals): (Vec<&StatementEntry>, Vec<&StatementEntry>) = fresh
            .into_iter()
            .partition(|e| e.direction == EntryDirection::Credit);
        let applied = credits::apply_credits(conn, context, statement_id, &credits, now)?;
        for (status, amount) in applied {
            report.record(status, EntryDirection::Credit, amount);
        }
        for reversal in reversals {
            let (status, amount) =
                reversals::apply_reversal(conn, context, statement_id, reversal, now)?;
            report.record(status, EntryDirection::Reversal, amount);
        }
        let marks: Vec<(&str, &str)> = flagged
            .iter()
            .map(|(entry, earlier)| (entry.dedup_key.as_str(), earlier.id.as_str()))
            .collect();
        store::flag_reused_references(conn, &brand.id, &marks)?;
        report
            .reused_references
            .extend(flagged.iter().map(|(entry, earlier)| ReusedReference {
                account: entry.account.clone(),
                bank_reference: entry.bank_reference.clone().unwrap_or_default(),
                direction: entry.direction,
                amount: entry.amount,
                booking_date: entry.booking_date,
                location: entry.location.clone(),
                same_reference_as: earlier.id.clone(),
            }));
        Ok(())
    }
}

impl Run<'_> {
    /// The new entries less those whose bank entry is already counted under other
    /// payments (see `statement::BankEntry`):
    ///
    /// - the whole entry, when its detail is stored, or the whole entry is stored under
    ///   another reference (a camt.054 and a camt.053 naming one transfer differently);
    /// - a transaction of the detail, when the detail is stored from another file, or when
    ///   the whole entry is stored and has been applied or resolved meanwhile (its money
    ///   is counted there).
    ///
    /// A whole entry stored and still waiting untouched, unmatched, is replaced by its
    /// detail: removed, in this transaction, so that the detail's RF codes pay their
    /// orders. Whichever of the two files comes first, the money is counted once and
    /// the detail is what stays when it can.
    fn once_per_bank_entry<'e>(
        &self,
        conn: &mut DbConnection,
        fresh: Vec<&'e StatementEntry>,
        report: &mut ImportReport,
    ) -> Result<Vec<&'e StatementEntry>, ImportError> {
        let keys: Vec<&str> = fresh
            .iter()
            .filter_map(|e| e.bank_entry.as_ref().map(|b| b.key.as_str()))
            .collect();
        if keys.is_empty() {
            return Ok(fresh);
        }
        let brand = self.context.brand;
        let stored: Vec<EntryPart> = payments::table
            .filter(payments::brand_id.eq(&brand.id))
            .filter(payments::bank_entry.eq_any(&keys))
            .order(payments::id.asc())
            .select((
                payments::id,
                payments::statement_id,
                payments::bank_entry,
                payments::bank_entry_part,
                payments::amount_cents,
            ))
            .load(conn)?;
        // Whole sums already looked at in this chunk: removed (replaced) or kept.
        let mut replaced: HashMap<String, bool> = HashMap::new();
        let mut kept = Vec::with_capacity(fresh.len());
        for entry in fresh {
            let Some(bank_entry) = &entry.bank_entry else {
                kept.push(entry);
                continue;
            };
            let same: Vec<&EntryPart> = stored
                .iter()
                .filter(|row| row.bank_entry.as_deref() == Some(bank_entry.key.as_str()))
                .collect();
            let stored_detail = same.iter().any(|row| {
                row.part.as_deref() == Some("detail") && row.statement_id != self.statement_id
            });
            let stored_whole = same.iter().find(|row| row.part.as_deref() == Some("whole"));
            let counted = match (bank_entry.detail, stored_whole) {
                (false, _) => stored_detail || stored_whole.is_some(),
                (true, _) if stored_detail => true,
                (true, None) => false,
                (true, Some(whole)) => {
                    let removed = match replaced.get(&whole.id) {
                        Some(removed) => *removed,
                        None => {
                            let removed = store::remove_replaced_sum(conn, &whole.id)?;
                            if removed {
                                self.record_replaced(conn, &whole.id, &bank_entry.key)?;
                                report
                                    .replaced_sums
                                    .add(Money::from_cents(whole.amount_cents));
                            }
                            replaced.insert(whole.id.clone(), removed);
                            removed
                        }
                    };
                    !removed
                }
            };
            if !counted {
                kept.push(entry);
            }
        }
        Ok(kept)
    }

    fn record_replaced(
        &self,
        conn: &mut DbConnection,
        payment_id: &str,
        bank_entry: &str,
    ) -> Result<(), ImportError> {
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&self.context.brand.id),
                actor: &Actor::System,
                action: "payment.replaced_by_detail",
                subject_type: "payment",
                subject_id: payment_id,
                details: json!({
                    "bank_entry": bank_entry, "statement_id": self.statement_id,
                }),
            },
            self.now,
        )?;
        Ok(())
    }
}

/// A stored payment of a bank entry: the whole entry or a transaction of its detail.
#[derive(Queryable)]
struct EntryPart {
    id: String,
    statement_id: String,
    bank_entry: Option<String>,
    part: Option<String>,
    amount_cents: i64,
}

/// A stored payment, as the duplicate check compares it with an entry.
#[derive(Queryable, Selectable)]
#[diesel(table_name = payments)]
struct StoredEntry {
    id: String,
    dedup_key: String,
    account: String,
    bank_reference: Option<String>,
    direction: EntryDirection,
    amount_cents: i64,
    booking_date: NaiveDate,
}

fn stored_with_keys(
    conn: &mut DbConnection,
    brand_id: &str,
    keys: impl Iterator<Item = String>,
) -> QueryResult<HashMap<String, StoredEntry>> {
    let keys: Vec<String> = keys.collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::dedup_key.eq_any(&keys))
        .select(StoredEntry::as_select())
        .load::<StoredEntry>(conn)?
        .into_iter()
        .map(|stored| (stored.dedup_key.clone(), stored))
        .collect())
}

/// The statement row gets its final counts and the audit entry, or goes again if the
/// file brought nothing new.
fn finish_statement<E>(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement: &ParsedStatement<E>,
    statement_id: &str,
    report: &ImportReport,
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    if report.new_entries == 0 {
        diesel::delete(statements::table.filter(statements::id.eq(statement_id))).execute(conn)?;
        return Ok(());
    }
    diesel::update(statements::table.filter(statements::id.eq(statement_id)))
        .set((
            statements::entries.eq(report.entries as i32),
            statements::new_entries.eq(report.new_entries as i32),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(&context.brand.id),
            actor: &Actor::User(context.operator_id.to_owned()),
            action: "statement.imported",
            subject_type: "statement",
            subject_id: statement_id,
            details: json!({
                "format": statement.format.as_str(), "version": statement.version,
                "file_name": context.file_name, "sha256": context.file_sha256,
                "entries": report.entries, "new_entries": report.new_entries,
                "skipped_accounts": report.skipped.iter().map(|s| &s.account).collect::<Vec<_>>(),
            }),
        },
        now,
    )?;
    Ok(())
}

fn record_statement<E>(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement: &ParsedStatement<E>,
    report: &ImportReport,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(statements::table)
        .values((
            statements::id.eq(&id),
            statements::brand_id.eq(&context.brand.id),
            statements::format.eq(statement.format.as_str()),
            statements::version.eq(&statement.version),
            statements::message_id.eq(&statement.message_id),
            statements::file_name.eq(context.file_name),
            statements::file_sha256.eq(context.file_sha256),
            statements::entries.eq(report.entries as i32),
            statements::new_entries.eq(0),
            statements::ignored_entries.eq(report.ignored as i32),
            statements::imported_by.eq(context.operator_id),
            statements::imported_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
}
