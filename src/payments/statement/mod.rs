//! Bank and postal statements: bytes in, the payments they report out. No database, no
//! network: the importer decides what to do with the entries, this module only reads them
//! and refuses, naming where, anything it cannot read for certain.
//!
//! # Formats
//!
//! The format is told by the content, never by the file name:
//!
//! - **ISO 20022 camt.053** (`BkToCstmrStmt/Stmt/Ntry`) and **camt.054**
//!   (`BkToCstmrDbtCdtNtfctn/Ntfctn/Ntry`), message versions 001.02 to 001.08: the root is a
//!   `Document` in the namespace `urn:iso:std:iso:20022:tech:xsd:camt.05x.001.0N`. Other
//!   messages (camt.052...) and other versions are refused. Elements are matched by local
//!   name, so any prefix works. See [`camt`] for the elements read.
//! - **CBI statements** (the Italian banks' "rendicontazione", camt.053.001.02 in a CBI
//!   envelope): a root in a `urn:CBI:xsd:` namespace, or whose name starts with `CBI`
//!   (`CBIBdyBkToCstmrStmtReq`), holding elements with `Stmt` children
//!   (`CBIEnvelBkToCstmrStmtReqLogMsg/CBIBkToCstmrStmtReqLogMsg/CBIDlyStmtReqLogMsg`,
//!   or `CBIPrdcStmtReqLogMsg` for periodic statements). The envelope carries one such
//!   logical message per business day (`PhyMsgInf/NbOfLogMsg` of them): every one is
//!   read, its `Stmt`s exactly as a camt.053's.
//! - **The postal CSV** (our own layout, for the post office's reports): see [`postal_csv`].
//!
//! Files must be UTF-8 (a byte order mark is tolerated).
//!
//! # Several statements
//!
//! A file may hold several statements: one `Stmt` per account of the customer (or per
//! page), one `Ntfctn` per notification, one daily message per business day in a CBI
//! envelope, rows of several accounts in a postal CSV. Every one is read, in file order,
//! into [`ParsedStatement::statements`] with its account, and each entry says which
//! statement it is in. Which of them are imported is the importer's decision (the ones of
//! the brand's accounts); a malformed statement refuses the whole file, whatever its
//! account.
//!
//! # What counts
//!
//! Only booked entries (`Sts` BOOK; `tipo` accredito/storno) that move money in: credits,
//! and reversals of credits (the bank taking back a payment: a bounced cheque, a recalled
//! transfer). Debits, pending or informational entries and reversals of debits are only
//! counted in [`ParsedStatement::ignored`].
//!
//! # Dedup keys
//!
//! Re-importing a file, importing statements that overlap, or a camt.054 that reports a
//! transaction a camt.053 reports again, must give each payment the key it had before;
//! two different payments must never share one. See [`dedup`].

mod camt;
mod dedup;
mod postal_csv;

#[cfg(test)]
mod tests;

pub use dedup::reused_reference_key;

use chrono::NaiveDate;

use crate::money::Money;
use crate::transfer::CreditorReference;
use crate::validation::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementFormat {
    Camt053,
    Camt054,
    /// A camt.053 inside the Italian CBI envelope.
    CbiCamt053,
    PostalCsv,
}

impl StatementFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Camt053 => "camt.053",
            Self::Camt054 => "camt.054",
            Self::CbiCamt053 => "cbi-camt.053",
            Self::PostalCsv => "postal-csv",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryDirection {
    /// Money received.
    Credit,
    /// A credit taken back by the bank or the post office (a bounced cheque, a recalled
    /// transfer): the payment it undoes is no longer money we have.
    Reversal,
}

impl EntryDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credit => "credit",
            Self::Reversal => "reversal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParsedStatement {
    pub format: StatementFormat,
    /// The message version: `camt.053.001.08`, `camt.054.001.02`, the CBI namespace
    /// (`CBIDlyStmtReqLogMsg.00.01.02`, or `cbi` when it has none), `postal-csv-1`.
    pub version: String,
    /// `GrpHdr/MsgId`, when the file has one (the first one, in a CBI envelope).
    pub message_id: Option<String>,
    /// Every statement of the file, in file order: whose account it is decides whether
    /// its entries are imported.
    pub statements: Vec<StatementPart>,
    /// Booked credits and booked reversals of credits, in file order, of every statement.
    pub entries: Vec<StatementEntry>,
    /// Entries (or transactions of a batch entry) read but not counted: debits, entries
    /// not booked, reversals of debits.
    pub ignored: usize,
}

/// One statement of a file: a `Stmt` of a camt.053 (each business day's of a CBI
/// envelope too), an `Ntfctn` of a camt.054, or the rows of one account in a postal CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementPart {
    /// The account it is of, written as its entries' [`StatementEntry::account`].
    pub account: String,
    /// Where it starts, for people: `Stmt[2] (line 40)`,
    /// `CBIDlyStmtReqLogMsg[3]/Stmt[1] (line 812)`, `line 2`.
    pub location: String,
    /// Its entries read but not counted (see [`ParsedStatement::ignored`]).
    pub ignored: usize,
}

/// One payment (or the reversal of one), whatever the format it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEntry {
    /// The account credited: an IBAN (uppercase, no spaces) or the postal account number.
    pub account: String,
    /// The statement of the file it is in: an index into [`ParsedStatement::statements`].
    pub statement: usize,
    pub direction: EntryDirection,
    /// Always positive: the direction says which way it went.
    pub amount: Money,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    /// The bank's (or the post office's) own reference for this transaction.
    pub bank_reference: Option<String>,
    /// The payer's end-to-end id, unless `NOTPROVIDED`.
    pub end_to_end_id: Option<String>,
    /// `RmtInf/Strd/CdtrRefInf/Ref` as written, whatever its type.
    pub structured_reference: Option<String>,
    /// Whether that reference was typed `SCOR` (an ISO 11649 creditor reference).
    pub structured_is_scor: bool,
    /// The payment reason: the `RmtInf/Ustrd` lines joined with `\n` (the causale in CSV).
    pub remittance_text: String,
    pub payer_name: Option<String>,
    /// The bank's entry this payment is (or is a transaction of), when the bank names the
    /// entry: see [`BankEntry`].
    pub bank_entry: Option<BankEntry>,
    /// Stable across imports: see [`dedup`].
    pub dedup_key: String,
    /// Where the entry is in the file, for people: `entry 12 (line 340)`, `line 17`.
    pub location: String,
}

impl StatementEntry {
    /// The RF code the payer quoted: the structured reference if it is a valid creditor
    /// reference (some banks type it wrongly, so the type code is not required), else one
    /// found in the free text.
    pub fn creditor_reference(&self) -> Option<CreditorReference> {
        self.structured_reference
            .as_deref()
            .and_then(|reference| CreditorReference::parse(reference).ok())
            .or_else(|| CreditorReference::find_in(&self.remittance_text))
    }
}

/// The bank's entry (`Ntry`) a payment comes from.
///
/// A bank books a batch of incoming transfers as one entry and may report it twice: as one
/// sum in the day's camt.053 and transaction by transaction in a camt.054 (or in the
/// entry's own `NtryDtls/TxDtls`). The entry is the same money in both. ISO 20022 gives
/// the entry its `AcctSvcrRef`, the account servicer's unique reference for the entry,
/// and the usage guidelines (the Swiss Payment Standards' camt.052/053/054
/// implementation guidelines, the German DK's) have the camt.054 that details a
/// collective booking carry the same entry reference, amount and booking date as the
/// camt.053 entry it details; `NtryDtls/Btch` (`NbOfTxs`, `TtlAmt`) only announces how
/// many transactions the entry sums up. So an entry is identified by its account, its
/// direction, its `AcctSvcrRef`, its booking date and its amount, all five: a reference
/// reused on another day or for another amount is another entry. An entry without an
/// `AcctSvcrRef` is never linked to another (nothing says it is the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankEntry {
    /// `entry:<account>:<direction>:<reference>:<booking date>:<cents>`.
    pub key: String,
    /// This payment is one transaction of the entry's detail (the entry had several
    /// `TxDtls`); else it is the whole entry.
    pub detail: bool,
}

impl BankEntry {
    pub fn part(&self) -> &'static str {
        if self.detail {
            "detail"
        } else {
            "whole"
        }
    }
}

/// Why a file was refused, and where: the whole file is refused, so that an import is
/// never half done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct StatementError {
    /// `Stmt[1]/Ntry[3]/Amt (line 42)`, `line 17, column importo`, `line 9`.
    pub location: String,
    pub message: String,
    /// A short stable code: `encoding`, `xml`, `unsupported_format`, `missing_element`,
    /// `value`, `amount`, `date`, `currency`, `csv_header`, `csv_row`.
    pub kind: &'static str,
}

impl From<crate::xml_tree::XmlError> for StatementError {
    fn from(error: crate::xml_tree::XmlError) -> Self {
        Self::new("xml", error.location, error.message)
    }
}

impl StatementError {
    pub(crate) fn new(
        kind: &'static str,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
            kind,
        }
    }
}

impl Rule for StatementError {
    fn rule(&self) -> &'static str {
        self.kind
    }
}

/// Reads a statement in any of the accepted formats.
pub fn parse(bytes: &[u8]) -> Result<ParsedStatement, StatementError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let line = line_of(bytes, error.valid_up_to());
        StatementError::new(
            "encoding",
            format!("line {line}"),
            "the file is not UTF-8 text",
        )
    })?;
    let mut statement = if text.trim_start().starts_with('<') {
        camt::parse(&crate::xml_tree::Element::parse_document(text)?)?
    } else if text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.contains(';'))
    {
        postal_csv::parse(text)?
    } else {
        return Err(StatementError::new(
            "unsupported_format",
            "line 1",
            "neither an XML statement (camt.053, camt.054, CBI) nor a postal CSV",
        ));
    };
    dedup::assign_keys(&mut statement.entries);
    Ok(statement)
}

/// The 1-based line of a byte offset.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    1 + bytes[..end].iter().filter(|&&b| b == b'\n').count()
}
