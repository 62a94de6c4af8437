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
//! Here: the import, its lanes and chunks, and the `statements` row (this file alone
//! writes it). The credits of a chunk are in [`credits`], the reversals in [`reversals`],
//! the payer's email in [`notices`]; rows of other tables are written by their owners
//! (`payments::store`, `orders::state`, `prepaid::top_ups`, `prepaid`).

mod credits;
mod notices;
mod reversals;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Context;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::matching::PaymentStatus;
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

/// The new entries with one outcome, money in and money out apart.
// Money in (credits) and money out (reversals, the bank taking a credit back) are
// different money: they are never netted but in `amount`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct OutcomeTotal {
    /// Credits and reversals.
    #[schema(minimum = 0)]
    pub count: u64,
    /// In euro, net: `money_in` less `money_out`, negative when more went out.
    #[schema(value_type = String, example = "126.88")]
    pub amount: Money,
    /// The credits (money received).
    pub money_in: MoneyFlow,
    /// The reversals (credits the bank took back).
    pub money_out: MoneyFlow,
}

impl OutcomeTotal {
    fn add(&mut self, direction: EntryDirection, amount: Money) {
        match direction {
            EntryDirection::Credit => self.money_in.add(amount),
            EntryDirection::Reversal => self.money_out.add(amount),
        }
        self.count = self.money_in.count + self.money_out.count;
        self.amount = self.money_in.amount - self.money_out.amount;
    }

    fn merge(&mut self, other: &OutcomeTotal) {
        for (flow, from) in [
            (&mut self.money_in, &other.money_in),
            (&mut self.money_out, &other.money_out),
        ] {
            flow.count += from.count;
            flow.amount = flow.amount + from.amount;
        }
        self.count = self.money_in.count + self.money_out.count;
        self.amount = self.money_in.amount - self.money_out.amount;
    }
}

/// A number of entries and their amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct MoneyFlow {
    #[schema(minimum = 0)]
    pub count: u64,
    /// In euro, never negative.
    #[schema(value_type = String, example = "126.88")]
    pub amount: Money,
}

impl MoneyFlow {
    fn add(&mut self, amount: Money) {
        self.count += 1;
        self.amount = self.amount + amount;
    }
}

/// A statement of the file that is not of the brand's accounts: read, not imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SkippedStatement {
    /// The account it is of (IBAN or postal account).
    #[schema(example = "IT02L1234512345123456789012")]
    pub account: String,
    /// Where it is in the file.
    #[schema(example = "Stmt[2] (line 40)")]
    pub location: String,
    /// Its credits and reversals.
    pub entries: usize,
    /// Its entries that are not incoming payments.
    pub ignored: usize,
    /// Its credits.
    pub money_in: MoneyFlow,
    /// Its reversals.
    pub money_out: MoneyFlow,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The statement recorded for this import; `None` when it brought nothing new.
    pub statement_id: Option<String>,
    /// Statements of the file imported: those of the brand's accounts.
    pub statements: usize,
    /// The file's statements of other accounts, not imported.
    pub skipped: Vec<SkippedStatement>,
    /// Entries of the imported statements.
    pub entries: usize,
    pub new_entries: usize,
    pub already_imported: usize,
    pub ignored: usize,
    /// The new entries by outcome.
    pub outcomes: BTreeMap<PaymentStatus, OutcomeTotal>,
    /// The new entries whatever their outcome: credits.
    pub money_in: MoneyFlow,
    /// The new entries whatever their outcome: reversals.
    pub money_out: MoneyFlow,
    /// New entries whose bank reference an earlier payment had, for another payment.
    pub reused_references: Vec<ReusedReference>,
    /// Payments of earlier imports that were a bank entry's whole sum, replaced by the
    /// entry's detail in this file (its money is now in this import's `money_in`).
    pub replaced_sums: MoneyFlow,
}

/// A new entry under a bank reference that an earlier payment on the same account had
/// with another amount, booking date or direction: imported as a payment of its own, and
/// flagged, as a bank should not reuse a reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReusedReference {
    /// The account (IBAN or postal account).
    pub account: String,
    pub bank_reference: String,
    /// `credit` or `reversal`.
    #[schema(example = "credit")]
    pub direction: &'static str,
    /// In euro.
    #[schema(value_type = String, example = "31.72")]
    pub amount: Money,
    pub booking_date: NaiveDate,
    /// Where it is in the file.
    #[schema(example = "entry 3 (line 40)")]
    pub location: String,
    /// The earlier payment with the same reference.
    pub same_reference_as: String,
}

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
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

storage_error_from!(ImportError: diesel::result::Error, PrepaidError, OrderError, std::io::Error);

fn compact(account: &str) -> String {
    account
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

fn is_brand_account(brand: &Brand, account: &str) -> bool {
    let iban = compact(&brand.iban);
    let postal = compact(&brand.postal_account);
    let postal_digits = postal.trim_start_matches('0');
    let account = compact(account);
    account == iban
        || (!postal_digits.is_empty() && account.trim_start_matches('0') == postal_digits)
}

/// Which statements of a file are the brand's, one flag per statement.
///
/// Only the statements of the brand's own accounts are imported: a statement of the
/// other brand's, or of an account the bank reports alongside, would match nothing and
/// fill the queue. The others are listed; a file with none of the brand's is refused, so
/// that a file uploaded under the wrong brand says so.
fn brand_statements<E>(
    brand: &Brand,
    statement: &ParsedStatement<E>,
) -> Result<Vec<bool>, ImportError> {
    let ours: Vec<bool> = statement
        .statements
        .iter()
        .map(|part| is_brand_account(brand, &part.account))
        .collect();
    if let (Some(first), false) = (statement.statements.first(), ours.contains(&true)) {
        return Err(ImportError::ForeignAccount {
            location: first.location.clone(),
            account: first.account.clone(),
            brand: brand.name.clone(),
            iban: brand.iban.clone(),
            postal: brand.postal_account.clone(),
        });
    }
    Ok(ours)
}

/// The work of an import, sorted out of the file's entries in one reading of them: the
/// brand's entries not repeated in the file, each in the spool of the pass that applies
/// it, and what the report needs of the whole file. It holds keys, never all the
/// entries.
struct Plan {
    /// The credits that are not a transaction of a bank entry's detail, one spool per lane.
    lanes: Vec<EntrySpool>,
    /// The detail credits, then the reversals: the pass that holds every lane.
    last: [EntrySpool; 2],
    statements: usize,
    ignored: usize,
    skipped: Vec<SkippedStatement>,
    /// Entries of the brand's statements.
    entries: usize,
    /// Of them, repeated in the file (the same transaction as a batch and its detail).
    repeated: usize,
    /// Entries reusing the bank reference of an earlier entry of the file for another
    /// payment, each with that entry's key (see [`flag_reused_in_file`]).
    reused_in_file: Vec<(StatementEntry, String)>,
}

/// An entry of the file with a bank reference, as a later one is compared with it.
struct EarlierEntry {
    direction: EntryDirection,
    amount_cents: i64,
    booking_date: NaiveDate,
    dedup_key: String,
}

impl Plan {
    fn of(
        brand: &Brand,
        statement: &ParsedStatement<EntrySpool>,
        lanes: usize,
        spool_dir: &Path,
    ) -> Result<Plan, ImportError> {
        let ours = brand_statements(brand, statement)?;
        let spool = || EntrySpool::new(spool_dir).context("a spool for the import");
        let mut plan = Plan {
            lanes: (0..lanes).map(|_| spool()).collect::<Result<_, _>>()?,
            last: [spool()?, spool()?],
            statements: 0,
            ignored: 0,
            skipped: Vec::new(),
            entries: 0,
            repeated: 0,
            reused_in_file: Vec::new(),
        };
        let mut skipped: HashMap<usize, SkippedStatement> = HashMap::new();
        for (index, part) in statement.statements.iter().enumerate() {
            if ours[index] {
                plan.statements += 1;
                plan.ignored += part.ignored;
            } else {
                skipped.insert(
                    index,
                    SkippedStatement {
                        account: part.account.clone(),
                        location: part.location.clone(),
                        entries: 0,
                        ignored: part.ignored,
                        money_in: MoneyFlow::default(),
                        money_out: MoneyFlow::default(),
                    },
                );
            }
        }
        // The same transaction reported twice in one file (a batch and its detail) is one.
        let mut seen: HashSet<String> = HashSet::new();
        let mut with_reference: HashMap<(String, String), Vec<EarlierEntry>> = HashMap::new();
        for entry in statement
            .entries
            .iter()
            .context("reading the spooled entries")?
        {
            let entry = entry.context("reading a spooled entry")?;
            if !ours.get(entry.statement).copied().unwrap_or(false) {
                if let Some(part) = skipped.get_mut(&entry.statement) {
                    part.entries += 1;
                    match entry.direction {
                        EntryDirection::Credit => part.money_in.add(entry.amount),
                        EntryDirection::Reversal => part.money_out.add(entry.amount),
                    }
                }
                continue;
            }
            plan.entries += 1;
            if !seen.insert(entry.dedup_key.clone()) {
                plan.repeated += 1;
                continue;
            }
            if let Some(reference) = &entry.bank_reference {
                let earlier = with_reference
                    .entry((entry.account.clone(), reference.clone()))
                    .or_default();
                let first_other = earlier.iter().find(|earlier| {
                    another_payment(
                        &entry,
                        earlier.direction.as_str(),
                        earlier.amount_cents,
                        earlier.booking_date,
                    )
                });
                if let Some(first_other) = first_other {
                    plan.reused_in_file
                        .push((entry.clone(), first_other.dedup_key.clone()));
                }
                earlier.push(EarlierEntry {
                    direction: entry.direction,
                    amount_cents: entry.amount.cents(),
                    booking_date: entry.booking_date,
                    dedup_key: entry.dedup_key.clone(),
                });
            }
            // The transactions of a bank entry's detail and reversals go last, holding
            // every lane: a detail replaces its entry's whole sum, which may have come
            // through any lane, and the credit a reversal takes back may have too, earlier
            // in this very file.
            let detail = entry.bank_entry.as_ref().is_some_and(|b| b.detail);
            let spool = match entry.direction {
                EntryDirection::Credit if !detail => {
                    let lane = if lanes == 1 { 0 } else { lane_of(&entry) };
                    &mut plan.lanes[lane]
                }
                EntryDirection::Credit => &mut plan.last[0],
                EntryDirection::Reversal => &mut plan.last[1],
            };
            spool.push(&entry);
        }
        let mut skipped: Vec<(usize, SkippedStatement)> = skipped.into_iter().collect();
        skipped.sort_by_key(|(index, _)| *index);
        plan.skipped = skipped.into_iter().map(|(_, part)| part).collect();
        plan.lanes = plan
            .lanes
            .into_iter()
            .map(EntrySpool::finish)
            .collect::<Result<_, _>>()
            .context("spooling the import's entries")?;
        let [details, reversals] = plan.last;
        plan.last = [
            details.finish().context("spooling the details")?,
            reversals.finish().context("spooling the reversals")?,
        ];
        Ok(plan)
    }
}

/// Lanes an import runs in parallel on PostgreSQL, each on its own connection and thread:
/// a lane is chosen by the entry's RF code (else its dedup key), so every payment for one
/// order or top-up goes through one lane, in file order, and the same entry falls in the
/// same lane in every import (the lane lock keeps two imports from storing it twice).
/// PostgreSQL runs one backend per connection: with one lane, one core does the work.
pub const LANES: usize = 2;

/// Serialises the work on one lane of a brand's payments across every process, for the
/// rest of the transaction: two imports never store the same entry, or decide on the
/// same order, at once.
pub fn lock_payment_lane(conn: &mut DbConnection, brand_id: &str, lane: usize) -> QueryResult<()> {
    db::lock_key(conn, &format!("rinnovo.payments.{brand_id}.{lane}"))
}

/// Every lane of the brand's payments, in lane order (so two holders never wait for each
/// other in a circle): for reversals and manual actions, which may touch any order.
pub fn lock_payments_of_brand(conn: &mut DbConnection, brand_id: &str) -> QueryResult<()> {
    (0..LANES).try_for_each(|lane| lock_payment_lane(conn, brand_id, lane))
}

fn lane_of(entry: &StatementEntry) -> usize {
    // Without an RF code, the bank entry: the same entry reported by two files under two
    // references falls in one lane, whose lock keeps both imports from counting it.
    let key = entry
        .creditor_reference()
        .map(|r| r.as_str().to_owned())
        .or_else(|| entry.bank_entry.as_ref().map(|b| b.key.clone()))
        .unwrap_or_else(|| entry.dedup_key.clone());
    // RF codes end in random digits, dedup keys in hex or a bank reference: the last
    // byte spreads them evenly enough, and is the same in every process and version.
    key.bytes().last().map_or(0, |b| b as usize % LANES)
}

/// Imports of one brand take turns in a process: each holds the file's keys and a chunk
/// per lane in memory, and ten at once would hold ten times that for no gain, as their
/// lanes serialise on the same locks anyway. Other brands' imports run alongside.
/// (Across processes the lane locks keep imports correct; each process queues its own.)
static TURNS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<String, std::sync::Arc<futures_util::lock::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// The brand's turn to import (reading the file and applying it); the next one waits,
/// without holding a thread or a connection, until this is dropped.
pub async fn turn_of(brand_id: &str) -> ImportTurn {
    let queue = TURNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(brand_id.to_owned())
        .or_default()
        .clone();
    ImportTurn(Some(queue.lock_owned().await))
}

/// An import's turn. When it ends the memory the import used is handed back to the
/// system: glibc keeps what a thread freed in that thread's arena for reuse, and after a
/// large import the service would otherwise stay at its peak.
pub struct ImportTurn(Option<futures_util::lock::OwnedMutexGuard<()>>);

impl Drop for ImportTurn {
    fn drop(&mut self) {
        self.0.take();
        release_memory();
    }
}

/// Returns the heap's free memory to the system, every arena's (glibc only: other
/// allocators return it themselves, or have no such call).
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Who imports an uploaded statement, and the service's settings the import needs.
pub struct Importer<'a> {
    pub brand_id: &'a str,
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
/// file: call it off the async workers, in the brand's [`turn_of`].
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
    let brand = crate::brands::existing(conn, importer.brand_id)?;
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

impl ImportReport {
    /// Adds what one lane did.
    fn add(&mut self, part: ImportReport) {
        self.reused_references
            .extend(part.reused_references.iter().cloned());
        self.new_entries += part.new_entries;
        self.already_imported += part.already_imported;
        for (status, total) in &part.outcomes {
            self.outcomes.entry(*status).or_default().merge(total);
        }
        for (flow, from) in [
            (&mut self.money_in, part.money_in),
            (&mut self.money_out, part.money_out),
            (&mut self.replaced_sums, part.replaced_sums),
        ] {
            flow.count += from.count;
            flow.amount = flow.amount + from.amount;
        }
    }

    /// One new entry and its outcome.
    fn record(&mut self, status: PaymentStatus, direction: EntryDirection, amount: Money) {
        self.outcomes
            .entry(status)
            .or_default()
            .add(direction, amount);
        match direction {
            EntryDirection::Credit => self.money_in.add(amount),
            EntryDirection::Reversal => self.money_out.add(amount),
        }
    }
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
                direction: entry.direction.as_str(),
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
    direction: String,
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

/// Whether `entry` is another payment than one with the same bank reference on the same
/// account and this direction, amount and booking date: it differs in any of them, and is
/// not a storno repeating the reference of the credit it takes back (same amount, booked
/// on or after it), which is how banks link the two.
fn another_payment(
    entry: &StatementEntry,
    direction: &str,
    amount_cents: i64,
    booking_date: NaiveDate,
) -> bool {
    let same_amount = amount_cents == entry.amount.cents();
    let takes_it_back = entry.direction == EntryDirection::Reversal
        && direction == EntryDirection::Credit.as_str()
        && same_amount
        && booking_date <= entry.booking_date;
    let same =
        same_amount && booking_date == entry.booking_date && direction == entry.direction.as_str();
    !takes_it_back && !same
}

/// After the lanes: the new entries of this file whose bank reference an earlier entry of
/// the same file, on the same account, had for another payment (the bank repeating a
/// reference within one statement), found while planning, each with the earlier entry's
/// key. Both are imported (their keys differ by `#n`); the later one is flagged like one
/// reusing the reference of an earlier file.
fn flag_reused_in_file(
    conn: &mut DbConnection,
    brand_id: &str,
    statement_id: &str,
    pairs: &[(StatementEntry, String)],
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    if pairs.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = pairs
        .iter()
        .flat_map(|(later, earlier)| [later.dedup_key.as_str(), earlier.as_str()])
        .collect();
    let stored: HashMap<String, (String, String, Option<String>)> = payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::dedup_key.eq_any(&keys))
        .select((
            payments::dedup_key,
            payments::id,
            payments::statement_id,
            payments::same_reference_as,
        ))
        .load::<(String, String, String, Option<String>)>(conn)?
        .into_iter()
        .map(|(key, id, statement, flag)| (key, (id, statement, flag)))
        .collect();
    let mut marks = Vec::new();
    for (later, earlier) in pairs {
        let (Some((_, later_statement, flag)), Some((earlier_id, _, _))) =
            (stored.get(&later.dedup_key), stored.get(earlier))
        else {
            continue;
        };
        // Only what this import stored, and not flagged already against an earlier file:
        // a re-import flags nothing again.
        if later_statement != statement_id || flag.is_some() {
            continue;
        }
        marks.push((later.dedup_key.as_str(), earlier_id.as_str()));
        report.reused_references.push(ReusedReference {
            account: later.account.clone(),
            bank_reference: later.bank_reference.clone().unwrap_or_default(),
            direction: later.direction.as_str(),
            amount: later.amount,
            booking_date: later.booking_date,
            location: later.location.clone(),
            same_reference_as: earlier_id.clone(),
        });
    }
    store::flag_reused_references(conn, brand_id, &marks)?;
    Ok(())
}

/// The new entries whose bank reference an earlier payment on the same account had with
/// another amount, booking date or direction, each with the first such payment. A
/// reversal that repeats the reference of the credit it takes back (same amount, booked
/// before) is how banks link the two, and is not flagged.
fn reused_references<'e>(
    conn: &mut DbConnection,
    brand_id: &str,
    fresh: &[&'e StatementEntry],
) -> QueryResult<Vec<(&'e StatementEntry, StoredEntry)>> {
    let references: Vec<&str> = fresh
        .iter()
        .filter_map(|e| e.bank_reference.as_deref())
        .collect();
    if references.is_empty() {
        return Ok(Vec::new());
    }
    let mut stored: Vec<StoredEntry> = payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::bank_reference.eq_any(&references))
        .order((payments::booking_date.asc(), payments::id.asc()))
        .select(StoredEntry::as_select())
        .load(conn)?;
    let mut flagged = Vec::new();
    for entry in fresh {
        let differs = |row: &&StoredEntry| {
            row.account == entry.account
                && row.bank_reference == entry.bank_reference
                && another_payment(entry, &row.direction, row.amount_cents, row.booking_date)
        };
        if let Some(index) = stored.iter().position(|row| differs(&row)) {
            flagged.push((*entry, stored.swap_remove(index)));
        }
    }
    Ok(flagged)
}

/// The credits, each in the lane of its RF code: in parallel on PostgreSQL, one after the
/// other on SQLite (one writer at a time). One report per lane.
fn run_credit_lanes(
    pool: &Pool,
    conn: &mut DbConnection,
    run: &Run<'_>,
    by_lane: &[EntrySpool],
) -> Vec<Result<ImportReport, ImportError>> {
    let lanes = by_lane.len();
    let mut parts = Vec::new();
    std::thread::scope(|scope| {
        let mut here = Vec::new();
        let mut threads = Vec::new();
        for (lane, entries) in by_lane.iter().enumerate() {
            let lane_id = (lanes > 1).then_some(lane);
            // Lane 0 runs here; the others on connections of their own when the pool has
            // one to spare, else after it on this one.
            let own = (lane > 0)
                .then(|| pool.get_timeout(std::time::Duration::from_secs(1)).ok())
                .flatten();
            match own {
                Some(mut own) => {
                    threads.push(scope.spawn(move || run.lane(&mut own, lane_id, &[entries])))
                }
                None => here.push((lane_id, entries)),
            }
        }
        for (lane_id, entries) in here {
            parts.push(run.lane(conn, lane_id, &[entries]));
        }
        for thread in threads {
            parts.push(thread.join().unwrap_or_else(|_| {
                Err(ImportError::Storage(anyhow::anyhow!(
                    "an import lane panicked"
                )))
            }));
        }
    });
    parts
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
