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
pub mod upload;

#[cfg(test)]
mod tests;

pub use dedup::reused_reference_key;

use std::io::{BufRead, Read, Seek, Write};

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

text_enum!(
    /// Which way a statement entry moves money.
    EntryDirection {
        /// Money received.
        Credit => "credit",
        /// A credit taken back by the bank or the post office (a bounced cheque, a recalled
        /// transfer): the payment it undoes is no longer money we have.
        Reversal => "reversal",
    }
);

/// A statement file read: its entries in a `Vec` ([`parse`]), in an [`EntrySpool`]
/// ([`read_file`]), or not yet anywhere (`()`, inside this module).
#[derive(Debug, Clone)]
pub struct ParsedStatement<E = Vec<StatementEntry>> {
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
    pub entries: E,
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Reads a statement in any of the accepted formats, its entries into a `Vec`.
pub fn parse(bytes: &[u8]) -> Result<ParsedStatement, StatementError> {
    let mut entries = Vec::new();
    let head = read(&bytes, &mut |entry| entries.push(entry)).map_err(|failure| match failure {
        Failure::Statement(error) => error,
        // Bytes in memory are never an I/O error.
        Failure::Io(error) => StatementError::new("io", "line 1", error.to_string()),
    })?;
    Ok(head.with(entries))
}

/// Reads a statement file in bounded memory: the file is read a few times from disk (see
/// `camt::read`), never whole, and its entries go to a temporary file in `spool_dir`,
/// not to memory. The outer error is the server's (the disk), the inner one the file's.
pub fn read_file(
    file: &std::fs::File,
    spool_dir: &std::path::Path,
) -> std::io::Result<Result<ParsedStatement<EntrySpool>, StatementError>> {
    let mut spool = EntrySpool::new(spool_dir)?;
    let head = match read(file, &mut |entry| spool.push(&entry)) {
        Ok(head) => head,
        Err(Failure::Statement(error)) => return Ok(Err(error)),
        Err(Failure::Io(error)) => return Err(error),
    };
    Ok(Ok(head.with(spool.finish()?)))
}

/// The statement of `source`, its entries (keys assigned) into `sink` one at a time.
fn read(source: &dyn Source, sink: &mut dyn FnMut(StatementEntry)) -> Failing<Head> {
    check_utf8(source)?;
    let mut keys = dedup::KeyAssigner::default();
    let mut keyed = |mut entry: StatementEntry| {
        keys.assign(&mut entry);
        sink(entry);
    };
    match sniff(source)? {
        Sniffed::Xml => camt::read(source, &mut keyed),
        Sniffed::Csv => postal_csv::read(source, &mut keyed),
        Sniffed::Other => Err(Failure::Statement(StatementError::new(
            "unsupported_format",
            "line 1",
            "neither an XML statement (camt.053, camt.054, CBI) nor a postal CSV",
        ))),
    }
}

/// The header of a statement read, its entries elsewhere.
type Head = ParsedStatement<()>;

impl<E> ParsedStatement<E> {
    /// The header alone, its entries dropped.
    pub fn with_no_entries(self) -> ParsedStatement<()> {
        self.with(())
    }

    fn with<F>(self, entries: F) -> ParsedStatement<F> {
        ParsedStatement {
            format: self.format,
            version: self.version,
            message_id: self.message_id,
            statements: self.statements,
            entries,
            ignored: self.ignored,
        }
    }
}

/// Why reading stopped: the file, or the disk the file (or its entries) is on.
enum Failure {
    Statement(StatementError),
    Io(std::io::Error),
}

impl From<StatementError> for Failure {
    fn from(error: StatementError) -> Self {
        Self::Statement(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

type Failing<T> = Result<T, Failure>;

/// A statement's bytes, read from the start as often as needed (each format takes more
/// than one pass), a byte order mark left out.
trait Source {
    fn open(&self) -> std::io::Result<Box<dyn BufRead + '_>>;
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Source for &[u8] {
    fn open(&self) -> std::io::Result<Box<dyn BufRead + '_>> {
        Ok(Box::new(self.strip_prefix(BOM).unwrap_or(self)))
    }
}

impl Source for std::fs::File {
    fn open(&self) -> std::io::Result<Box<dyn BufRead + '_>> {
        let mut file = self;
        file.seek(std::io::SeekFrom::Start(0))?;
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
        if reader.fill_buf()?.starts_with(BOM) {
            reader.consume(BOM.len());
        }
        Ok(Box::new(reader))
    }
}

/// Files must be UTF-8: refused at the line of the first byte that is not, before
/// anything else is said about them.
fn check_utf8(source: &dyn Source) -> Failing<()> {
    let mut input = source.open()?;
    // The bytes of a character cut at the end of the last buffer.
    let mut pending: Vec<u8> = Vec::new();
    let mut line = 1;
    let refused = |line: usize| {
        StatementError::new(
            "encoding",
            format!("line {line}"),
            "the file is not UTF-8 text",
        )
    };
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        let length = buffer.len();
        pending.extend_from_slice(buffer);
        input.consume(length);
        let valid = match std::str::from_utf8(&pending) {
            Ok(_) => pending.len(),
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(error) => {
                return Err(refused(line + newlines(&pending[..error.valid_up_to()])).into())
            }
        };
        line += newlines(&pending[..valid]);
        pending.drain(..valid);
    }
    if pending.is_empty() {
        Ok(())
    } else {
        Err(refused(line).into())
    }
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

enum Sniffed {
    Xml,
    Csv,
    Other,
}

/// The format is told from the content: XML when the first thing in it is a `<`, the
/// postal CSV when its first line with text has a `;`.
fn sniff(source: &dyn Source) -> Failing<Sniffed> {
    // A line is looked at up to this length: an XML file may be one long line, and a
    // CSV header is short.
    const LOOK: u64 = 64 * 1024;
    let mut input = source.open()?;
    let mut line = Vec::new();
    loop {
        line.clear();
        (&mut input).take(LOOK).read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(Sniffed::Other);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_start();
        if text.is_empty() {
            continue;
        }
        return Ok(if text.starts_with('<') {
            Sniffed::Xml
        } else if text.contains(';') {
            Sniffed::Csv
        } else {
            Sniffed::Other
        });
    }
}

/// Entries in a temporary file, one JSON document each, in the order pushed: a file's
/// entries without holding them in memory. The file goes when the spool is dropped.
#[derive(Debug)]
pub struct EntrySpool {
    writer: std::io::BufWriter<std::fs::File>,
    count: usize,
    /// The first write that failed: reported by [`EntrySpool::finish`].
    failed: Option<std::io::Error>,
}

impl EntrySpool {
    /// An empty spool in `dir` (the system's temporary directory if it cannot be used).
    pub fn new(dir: &std::path::Path) -> std::io::Result<Self> {
        let file = tempfile::tempfile_in(dir).or_else(|_| tempfile::tempfile())?;
        Ok(Self {
            writer: std::io::BufWriter::with_capacity(64 * 1024, file),
            count: 0,
            failed: None,
        })
    }

    pub fn push(&mut self, entry: &StatementEntry) {
        if self.failed.is_some() {
            return;
        }
        let written = serde_json::to_writer(&mut self.writer, entry)
            .map_err(std::io::Error::from)
            .and_then(|()| self.writer.write_all(b"\n"));
        match written {
            Ok(()) => self.count += 1,
            Err(error) => self.failed = Some(error),
        }
    }

    /// Flushed, ready to be read.
    pub fn finish(mut self) -> std::io::Result<Self> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        self.writer.flush()?;
        Ok(self)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries, from the first; each read is one entry in memory at a time.
    pub fn iter(
        &self,
    ) -> std::io::Result<impl Iterator<Item = std::io::Result<StatementEntry>> + '_> {
        let mut file = self.writer.get_ref();
        file.seek(std::io::SeekFrom::Start(0))?;
        let reader = std::io::BufReader::with_capacity(64 * 1024, file);
        Ok(serde_json::Deserializer::from_reader(reader)
            .into_iter::<StatementEntry>()
            .map(|entry| entry.map_err(std::io::Error::from)))
    }
}
