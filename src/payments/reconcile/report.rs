//! What an import reports: its new entries by outcome, money in and out, the statements
//! of other accounts it skipped and the bank references it found reused. Apart, as the
//! API and the back-office page read these types and never the import's workings.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::money::Money;
use crate::payments::matching::PaymentStatus;
use crate::payments::statement::EntryDirection;

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
    pub(super) fn add(&mut self, amount: Money) {
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

impl ImportReport {
    /// Adds what one lane did.
    pub(super) fn add(&mut self, part: ImportReport) {
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
    pub(super) fn record(
        &mut self,
        status: PaymentStatus,
        direction: EntryDirection,
        amount: Money,
    ) {
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

/// A new entry under a bank reference that an earlier payment on the same account had
/// with another amount, booking date or direction: imported as a payment of its own, and
/// flagged, as a bank should not reuse a reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReusedReference {
    /// The account (IBAN or postal account).
    pub account: String,
    pub bank_reference: String,
    pub direction: EntryDirection,
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
