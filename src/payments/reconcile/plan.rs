//! Planning an import: one reading of the file's spooled entries keeps the brand's
//! statements, drops repeats and sorts each entry into the spool of the pass that applies
//! it. Apart from the passes themselves, which only read the spools this fills.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use chrono::NaiveDate;

use super::lanes::lane_of;
use super::report::{MoneyFlow, SkippedStatement};
use super::reuse::another_payment;
use super::ImportError;
use crate::brands::Brand;
use crate::payments::statement::{EntryDirection, EntrySpool, ParsedStatement, StatementEntry};

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
pub(super) struct Plan {
    /// The credits that are not a transaction of a bank entry's detail, one spool per lane.
    pub(super) lanes: Vec<EntrySpool>,
    /// The detail credits, then the reversals: the pass that holds every lane.
    pub(super) last: [EntrySpool; 2],
    pub(super) statements: usize,
    pub(super) ignored: usize,
    pub(super) skipped: Vec<SkippedStatement>,
    /// Entries of the brand's statements.
    pub(super) entries: usize,
    /// Of them, repeated in the file (the same transaction as a batch and its detail).
    pub(super) repeated: usize,
    /// Entries reusing the bank reference of an earlier entry of the file for another
    /// payment, each with that entry's key (see
    /// [`flag_reused_in_file`](super::reuse::flag_reused_in_file)).
    pub(super) reused_in_file: Vec<(StatementEntry, String)>,
}

/// An entry of the file with a bank reference, as a later one is compared with it.
struct EarlierEntry {
    direction: EntryDirection,
    amount_cents: i64,
    booking_date: NaiveDate,
    dedup_key: String,
}

impl Plan {
    pub(super) fn of(
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
                        earlier.direction,
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
