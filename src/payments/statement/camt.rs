//! ISO 20022 camt.053 / camt.054 (001.02 to 001.08) and the CBI statement envelope.
//!
//! What is read, relative to a `Stmt` (camt.053, CBI) or an `Ntfctn` (camt.054):
//!
//! - the account: `Acct/Id/IBAN` (uppercased, spaces removed), else `Acct/Id/Othr/Id`;
//! - per `Ntry`: `Amt` (its `Ccy` must be EUR), `CdtDbtInd`, `RvslInd`, `Sts` (plain text
//!   up to 001.06, `Sts/Cd` from 001.07; `Sts/Prtry` is never BOOK), `BookgDt` and `ValDt`
//!   (`Dt`, possibly with a time zone, or `DtTm`, of which the date is kept as written),
//!   `AcctSvcrRef`, `AddtlNtryInf`;
//! - per `NtryDtls/TxDtls` (every `NtryDtls`): `Refs/AcctSvcrRef`, `Refs/EndToEndId`, the
//!   amount (`Amt` from 001.05, else `AmtDtls/TxAmt/Amt`, else `AmtDtls/InstdAmt/Amt`),
//!   `CdtDbtInd` (from 001.05), `RltdPties/Dbtr/Nm` (`Dbtr/Pty/Nm` from 001.08; else the
//!   same under `UltmtDbtr`), `RmtInf/Ustrd` (all), `RmtInf/Strd/CdtrRefInf` (`Ref` and
//!   `Tp/CdOrPrtry/Cd`), `AddtlTxInf`.
//!
//! An entry with no or one `TxDtls` is one payment of the entry's amount. An entry with
//! several (a batch booking) is one payment per `TxDtls`, each of its own amount, which
//! must be there; in a credit batch, a transaction marked DBIT (a net batch) is ignored.
//!
//! The payment reason is the `Ustrd` lines; when there are none, `AddtlTxInf`, and for a
//! single-payment entry `AddtlNtryInf`: Italian banks often put the causale there only.
//!
//! References such as `NONREF` or `NOTPROVIDED` (placeholders written when the real one is
//! missing) are taken as absent: two payments sharing one must not share a dedup key.

use chrono::NaiveDate;

use super::{
    BankEntry, EntryDirection, Failing, Failure, Head, Source, StatementEntry, StatementError,
    StatementFormat, StatementPart,
};
use crate::money::Money;
use crate::xml_tree::{parse_stream, Element, Stop};

const ISO_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:";
const CBI_NAMESPACE: &str = "urn:CBI:xsd:";
const VERSIONS: [&str; 7] = ["02", "03", "04", "05", "06", "07", "08"];
const PLACEHOLDER_REFERENCES: [&str; 5] = ["NONREF", "NOTPROVIDED", "NOTAVAILABLE", "NA", "N/A"];

type Result<T> = std::result::Result<T, StatementError>;

/// Whether an element is an entry of a statement (or notification), read one at a time.
fn is_entry(parent: &Element, name: &str) -> bool {
    name == "Ntry" && (parent.name == "Stmt" || parent.name == "Ntfctn")
}

/// Reads the XML statement of `source` in two passes, each holding one entry at a time:
/// the first checks the whole document is well-formed XML and keeps its skeleton (the
/// headers, the statements and their accounts, without their entries), from which the
/// message and its statements are told as before; the second reads every entry of those
/// statements, in file order, into `sink`. Errors are the ones a reading of the whole
/// tree gives, in the same order: malformed XML anywhere first, then the message, then
/// each statement and its entries in turn.
pub(super) fn read(source: &dyn Source, sink: &mut dyn FnMut(StatementEntry)) -> Failing<Head> {
    let skeleton = parse_stream(
        source.open()?,
        is_entry,
        |_, _| Ok::<(), StatementError>(()),
    )
    .map_err(stopped)?;
    let message = identify(&skeleton)?;
    let mut reader = Reader {
        statements: Vec::new(),
        sink,
        ignored: 0,
        ignored_before: 0,
        entry_number: 0,
    };
    // A CBI envelope holds one message per business day, each with its statements: every
    // one is read, named by its message when there are several.
    let several = message.containers.len() > 1;
    let mut steps = Vec::new();
    for (message_index, container) in message.containers.iter().enumerate() {
        let statements: Vec<&Element> = container.children_named(message.statement_name).collect();
        if statements.is_empty() {
            steps.push(Step::Refused(missing(
                container,
                container.name.as_str(),
                message.statement_name,
            )));
            continue;
        }
        for (index, statement) in statements.into_iter().enumerate() {
            let mut path = format!("{}[{}]", message.statement_name, index + 1);
            if several {
                path = format!("{}[{}]/{path}", container.name, message_index + 1);
            }
            steps.push(Step::Statement(statement, path));
        }
    }
    let mut cursor = Cursor::default();
    parse_stream(source.open()?, is_entry, |entry, number| {
        cursor.entry(&steps, &mut reader, &entry, number)
    })
    .map_err(stopped)?;
    cursor.finish(&steps, &mut reader)?;
    Ok(Head {
        format: message.format,
        version: message.version,
        message_id: message.containers[0]
            .text_at("GrpHdr/MsgId")
            .map(str::to_owned),
        statements: reader.statements,
        entries: (),
        ignored: reader.ignored,
    })
}

fn stopped(stop: Stop<StatementError>) -> Failure {
    match stop {
        Stop::Xml(error) => Failure::Statement(error.into()),
        Stop::Sink(error) => Failure::Statement(error),
    }
}

/// What the second pass checks, in file order: a message without statements (refused),
/// or a statement of the file with its path.
enum Step<'a> {
    Refused(StatementError),
    Statement(&'a Element, String),
}

/// Where the second pass is: the step, whether it was begun (its account read), and how
/// many of its entries were read.
#[derive(Default)]
struct Cursor {
    step: usize,
    begun: bool,
    next: usize,
}

impl Cursor {
    /// Entry `number` of the file (every `Ntry` of a `Stmt` or `Ntfctn` counts, read or
    /// not): read if it is the next of the statement being read, else passed over (an
    /// entry of a statement the message does not hold).
    fn entry(
        &mut self,
        steps: &[Step<'_>],
        reader: &mut Reader<'_>,
        entry: &Element,
        number: usize,
    ) -> Result<()> {
        loop {
            let Some(step) = steps.get(self.step) else {
                return Ok(());
            };
            let (statement, path) = self.begin(step, reader)?;
            match statement.pruned.get(self.next) {
                Some(&expected) if expected == number => {
                    let path = format!("{path}/Ntry[{}]", self.next + 1);
                    self.next += 1;
                    reader.entry_number += 1;
                    let account = reader.statements.last().expect("begun").account.clone();
                    return reader.entry(entry, &account, &path);
                }
                Some(&expected) if expected > number => return Ok(()),
                _ => self.end(reader),
            }
        }
    }

    /// The statement of the current step, begun if it was not: a step that refuses the
    /// file refuses it here, in its turn.
    fn begin<'s>(
        &mut self,
        step: &'s Step<'s>,
        reader: &mut Reader<'_>,
    ) -> Result<(&'s Element, &'s str)> {
        match step {
            Step::Refused(error) => Err(error.clone()),
            Step::Statement(statement, path) => {
                if !self.begun {
                    reader.statement(statement, path)?;
                    self.begun = true;
                    self.next = 0;
                }
                Ok((statement, path))
            }
        }
    }

    fn end(&mut self, reader: &mut Reader<'_>) {
        reader.end_statement();
        self.step += 1;
        self.begun = false;
    }

    /// The steps after the last entry read: statements without entries, or refusals.
    fn finish(&mut self, steps: &[Step<'_>], reader: &mut Reader<'_>) -> Result<()> {
        while let Some(step) = steps.get(self.step) {
            self.begin(step, reader)?;
            self.end(reader);
        }
        Ok(())
    }
}

struct Message<'a> {
    format: StatementFormat,
    version: String,
    /// The elements whose children are `GrpHdr` and the statements: the message body, or
    /// each daily (or periodic) message of a CBI envelope, in file order. Never empty.
    containers: Vec<&'a Element>,
    statement_name: &'static str,
}

/// Tells the message and its version from the namespaces, and finds the statements.
fn identify(root: &Element) -> Result<Message<'_>> {
    let namespace = root.namespace.as_deref().unwrap_or("");
    let unsupported = |message: String| {
        StatementError::new("unsupported_format", format!("line {}", root.line), message)
    };
    if let Some(message) = namespace.strip_prefix(ISO_NAMESPACE) {
        let (format, body, statement_name) = match message.get(..8) {
            Some("camt.053") => (StatementFormat::Camt053, "BkToCstmrStmt", "Stmt"),
            Some("camt.054") => (StatementFormat::Camt054, "BkToCstmrDbtCdtNtfctn", "Ntfctn"),
            _ => {
                return Err(unsupported(format!(
                    "{message} is neither a statement (camt.053) nor a debit/credit \
                     notification (camt.054)"
                )))
            }
        };
        let supported = message
            .get(8..)
            .and_then(|version| version.strip_prefix(".001."))
            .is_some_and(|number| VERSIONS.contains(&number));
        if !supported {
            return Err(unsupported(format!(
                "{message} is not a supported version: versions 001.02 to 001.08 are"
            )));
        }
        if root.name != "Document" {
            return Err(unsupported(format!(
                "the root element is <{}>, an ISO 20022 message has <Document>",
                root.name
            )));
        }
        let container = root
            .child(body)
            .ok_or_else(|| missing(root, "Document", body))?;
        return Ok(Message {
            format,
            version: message.to_owned(),
            containers: vec![container],
            statement_name,
        });
    }
    let cbi_namespace = namespace
        .get(..CBI_NAMESPACE.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(CBI_NAMESPACE));
    if cbi_namespace || root.name.starts_with("CBI") {
        let mut containers = Vec::new();
        statement_holders(root, &mut containers);
        let Some(&container) = containers.first() else {
            return Err(unsupported(format!(
                "<{}> is a CBI message without statements (Stmt): only the statement \
                 (rendicontazione) is read",
                root.name
            )));
        };
        // The statements' own namespace names their schema (`CBIDlyStmtReqLogMsg.00.01.02`).
        let version = container
            .child("Stmt")
            .and_then(|statement| statement.namespace.as_deref())
            .or(container.namespace.as_deref())
            .and_then(|namespace| {
                let cbi = namespace
                    .get(..CBI_NAMESPACE.len())
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(CBI_NAMESPACE));
                if cbi {
                    namespace.get(CBI_NAMESPACE.len()..)
                } else {
                    namespace.strip_prefix(ISO_NAMESPACE)
                }
            })
            .filter(|version| !version.is_empty())
            .unwrap_or("cbi");
        return Ok(Message {
            format: StatementFormat::CbiCamt053,
            version: version.to_owned(),
            containers,
            statement_name: "Stmt",
        });
    }
    let namespace = if namespace.is_empty() {
        "no namespace".to_owned()
    } else {
        format!("namespace {namespace}")
    };
    Err(unsupported(format!(
        "<{}> ({namespace}) is not a camt.053 or camt.054 Document, nor a CBI statement",
        root.name
    )))
}

/// Every element, this one or below, with `Stmt` children, in document order (the
/// statements' own descendants are not searched).
fn statement_holders<'a>(element: &'a Element, found: &mut Vec<&'a Element>) {
    if element.child("Stmt").is_some() {
        found.push(element);
        return;
    }
    for child in &element.children {
        statement_holders(child, found);
    }
}

struct Reader<'s> {
    statements: Vec<StatementPart>,
    /// Where the entries go, one at a time.
    sink: &'s mut dyn FnMut(StatementEntry),
    ignored: usize,
    /// Ignored entries when the current statement began.
    ignored_before: usize,
    /// Entries seen so far in the file, across statements: "entry 12" in messages.
    entry_number: usize,
}

impl Reader<'_> {
    /// Begins a statement: its account.
    fn statement(&mut self, statement: &Element, path: &str) -> Result<()> {
        let iban = statement.text_at("Acct/Id/IBAN").map(|iban| {
            iban.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase()
        });
        let account = iban
            .or_else(|| statement.text_at("Acct/Id/Othr/Id").map(str::to_owned))
            .ok_or_else(|| missing(statement, path, "Acct/Id/IBAN"))?;
        self.ignored_before = self.ignored;
        self.statements.push(StatementPart {
            account,
            location: format!("{path} (line {})", statement.line),
            ignored: 0,
        });
        Ok(())
    }

    /// Ends the statement begun last, after its entries.
    fn end_statement(&mut self) {
        let part = self.statements.last_mut().expect("begun");
        part.ignored = self.ignored - self.ignored_before;
    }

    fn entry(&mut self, entry: &Element, account: &str, path: &str) -> Result<()> {
        let amount_element = entry
            .child("Amt")
            .ok_or_else(|| missing(entry, path, "Amt"))?;
        let amount = amount(amount_element, &format!("{path}/Amt"))?;
        let credit = match required_text(entry, path, "CdtDbtInd")? {
            "CRDT" => true,
            "DBIT" => false,
            other => return Err(bad_value(entry, path, "CdtDbtInd", other, "CRDT or DBIT")),
        };
        let reversal = match entry.text_at("RvslInd") {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => return Err(bad_value(entry, path, "RvslInd", other, "true or false")),
        };
        let status = status(entry, path)?;
        let booking_date = date(entry, path, "BookgDt")?;
        let value_date = date(entry, path, "ValDt")?;
        let direction = match (status == "BOOK", credit, reversal) {
            (true, true, false) => EntryDirection::Credit,
            (true, false, true) => EntryDirection::Reversal,
            _ => {
                self.ignored += 1;
                return Ok(());
            }
        };
        let booking_date = booking_date.ok_or_else(|| missing(entry, path, "BookgDt"))?;
        let entry_reference = entry.text_at("AcctSvcrRef").and_then(meaningful);
        let transactions = transactions(entry, path);
        let statement_index = self.statements.len() - 1;
        let entry_key = entry_reference.as_ref().map(|reference| {
            format!(
                "entry:{account}:{}:{reference}:{}:{}",
                direction.as_str(),
                booking_date.format("%Y-%m-%d"),
                amount.cents()
            )
        });
        let detail = transactions.len() > 1;
        let payment = |amount: Money,
                       details: Details,
                       bank_reference: Option<String>,
                       location: String| StatementEntry {
            account: account.to_owned(),
            statement: statement_index,
            direction,
            amount,
            booking_date,
            value_date,
            bank_reference,
            end_to_end_id: details.end_to_end_id,
            structured_reference: details.structured_reference,
            structured_is_scor: details.structured_is_scor,
            remittance_text: details.remittance_text,
            payer_name: details.payer_name,
            bank_entry: entry_key.as_ref().map(|key| BankEntry {
                key: key.clone(),
                detail,
            }),
            dedup_key: String::new(),
            location,
        };

        if let [] | [_] = transactions.as_slice() {
            positive(amount, amount_element, &format!("{path}/Amt"))?;
            let transaction = transactions.first().map(|(_, transaction)| *transaction);
            let details = Details::of(transaction, Some(entry));
            let bank_reference = details.bank_reference.clone().or(entry_reference);
            let location = format!("entry {} (line {})", self.entry_number, entry.line);
            (self.sink)(payment(amount, details, bank_reference, location));
            return Ok(());
        }
        for (index, (transaction_path, transaction)) in transactions.iter().enumerate() {
            let number = index + 1;
            if direction == EntryDirection::Credit
                && transaction.text_at("CdtDbtInd") == Some("DBIT")
            {
                self.ignored += 1;
                continue;
            }
            let (amount_path, amount_element) = transaction_amount(transaction)
                .ok_or_else(|| missing(transaction, transaction_path, "Amt"))?;
            let amount_path = format!("{transaction_path}/{amount_path}");
            let tx_amount = self::amount(amount_element, &amount_path)?;
            positive(tx_amount, amount_element, &amount_path)?;
            let details = Details::of(Some(transaction), None);
            // The entry's reference names the whole batch: its transactions are told
            // apart by their place in it, which a re-sent statement keeps.
            let bank_reference = details.bank_reference.clone().or_else(|| {
                entry_reference
                    .as_ref()
                    .map(|reference| format!("{reference}/{number}"))
            });
            let location = format!(
                "entry {} transaction {number} (line {})",
                self.entry_number, transaction.line
            );
            (self.sink)(payment(tx_amount, details, bank_reference, location));
        }
        Ok(())
    }
}

/// Every `NtryDtls/TxDtls` of an entry, with its path.
fn transactions<'a>(entry: &'a Element, path: &str) -> Vec<(String, &'a Element)> {
    let mut found = Vec::new();
    for (i, details) in entry.children_named("NtryDtls").enumerate() {
        for (j, transaction) in details.children_named("TxDtls").enumerate() {
            found.push((
                format!("{path}/NtryDtls[{}]/TxDtls[{}]", i + 1, j + 1),
                transaction,
            ));
        }
    }
    found
}

/// A transaction's own amount: `Amt` since 001.05, before that only under `AmtDtls`,
/// where the amount booked (`TxAmt`) is the one that reached the account.
fn transaction_amount(transaction: &Element) -> Option<(&'static str, &Element)> {
    ["Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt"]
        .into_iter()
        .find_map(|path| transaction.find(path).map(|element| (path, element)))
}

/// What a transaction says about the payment besides its amount.
#[derive(Default)]
struct Details {
    bank_reference: Option<String>,
    end_to_end_id: Option<String>,
    structured_reference: Option<String>,
    structured_is_scor: bool,
    remittance_text: String,
    payer_name: Option<String>,
}

impl Details {
    /// `entry` is given when the entry is the payment, so that its `AddtlNtryInf` can
    /// stand in for a missing reason.
    fn of(transaction: Option<&Element>, entry: Option<&Element>) -> Self {
        let mut details = Details::default();
        if let Some(transaction) = transaction {
            details.bank_reference = transaction.text_at("Refs/AcctSvcrRef").and_then(meaningful);
            details.end_to_end_id = transaction.text_at("Refs/EndToEndId").and_then(meaningful);
            let references = transaction.find_all("RmtInf/Strd/CdtrRefInf");
            let scor = |reference: &&&Element| {
                reference.text_at("Tp/CdOrPrtry/Cd") == Some("SCOR")
                    && reference.text_at("Ref").is_some()
            };
            let chosen = references
                .iter()
                .find(scor)
                .or_else(|| references.iter().find(|r| r.text_at("Ref").is_some()));
            if let Some(reference) = chosen {
                details.structured_is_scor = scor(&reference);
                details.structured_reference = reference.text_at("Ref").map(str::to_owned);
            }
            details.remittance_text = transaction
                .find_all("RmtInf/Ustrd")
                .into_iter()
                .filter_map(Element::text)
                .collect::<Vec<_>>()
                .join("\n");
            details.payer_name = [
                "RltdPties/Dbtr/Nm",
                "RltdPties/Dbtr/Pty/Nm",
                "RltdPties/UltmtDbtr/Nm",
                "RltdPties/UltmtDbtr/Pty/Nm",
            ]
            .into_iter()
            .find_map(|path| transaction.text_at(path))
            .map(str::to_owned);
        }
        if details.remittance_text.is_empty() {
            details.remittance_text = transaction
                .and_then(|transaction| transaction.text_at("AddtlTxInf"))
                .or_else(|| entry.and_then(|entry| entry.text_at("AddtlNtryInf")))
                .unwrap_or_default()
                .to_owned();
        }
        details
    }
}

fn meaningful(reference: &str) -> Option<String> {
    let placeholder = PLACEHOLDER_REFERENCES
        .iter()
        .any(|placeholder| reference.eq_ignore_ascii_case(placeholder));
    (!placeholder).then(|| reference.to_owned())
}

/// `Sts` is the code itself up to 001.06, `Sts/Cd` (or `Sts/Prtry`) after.
fn status<'a>(entry: &'a Element, path: &str) -> Result<&'a str> {
    let status = entry
        .child("Sts")
        .ok_or_else(|| missing(entry, path, "Sts"))?;
    status
        .text_at("Cd")
        .or_else(|| status.text_at("Prtry"))
        .or_else(|| status.text())
        .ok_or_else(|| missing(status, &format!("{path}/Sts"), "Cd"))
}

/// An amount as written (at most two decimals, no exponent), in euro.
fn amount(element: &Element, path: &str) -> Result<Money> {
    let location = || format!("{path} (line {})", element.line);
    match element.attribute("Ccy") {
        Some("EUR") => {}
        Some(currency) => {
            return Err(StatementError::new(
                "currency",
                location(),
                format!(
                    "an amount in {currency}: the accounts are in euro, so this is not \
                     the right file"
                ),
            ))
        }
        None => {
            return Err(StatementError::new(
                "currency",
                location(),
                "the amount has no currency (Ccy)",
            ))
        }
    }
    Money::parse(element.text().unwrap_or_default())
        .map_err(|error| StatementError::new("amount", location(), error.to_string()))
}

fn positive(amount: Money, element: &Element, path: &str) -> Result<()> {
    if amount.is_positive() {
        return Ok(());
    }
    Err(StatementError::new(
        "amount",
        format!("{path} (line {})", element.line),
        format!("the amount must be greater than zero, not {amount}"),
    ))
}

/// `BookgDt` or `ValDt`: `Dt` or `DtTm`; `None` when absent.
fn date(entry: &Element, path: &str, name: &str) -> Result<Option<NaiveDate>> {
    let Some(holder) = entry.child(name) else {
        return Ok(None);
    };
    let (element, is_date_time) = match (holder.child("Dt"), holder.child("DtTm")) {
        (Some(date), _) => (date, false),
        (None, Some(date_time)) => (date_time, true),
        (None, None) => return Ok(None),
    };
    let text = element.text().unwrap_or_default();
    iso_date(text, is_date_time).map(Some).ok_or_else(|| {
        let form = if is_date_time {
            "YYYY-MM-DDThh:mm:ss"
        } else {
            "YYYY-MM-DD"
        };
        StatementError::new(
            "date",
            format!("{path}/{name}/{} (line {})", element.name, element.line),
            format!("'{text}' is not a date ({form})"),
        )
    })
}

/// The date of an ISO date (which XML Schema lets carry a time zone: `2024-03-05+01:00`)
/// or date-time, as written: the bank's day is the day the money arrived for us too.
fn iso_date(text: &str, is_date_time: bool) -> Option<NaiveDate> {
    let date = text.get(..10)?;
    let rest = &text[10..];
    let bytes = date.as_bytes();
    let shaped = bytes.iter().enumerate().all(|(i, b)| match i {
        4 | 7 => *b == b'-',
        _ => b.is_ascii_digit(),
    });
    if !shaped {
        return None;
    }
    let number = |range: std::ops::Range<usize>| date[range].parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?;
    let suffix_ok = if is_date_time {
        rest.len() > 1 && rest.starts_with('T')
    } else {
        rest.is_empty() || rest == "Z" || is_zone_offset(rest)
    };
    suffix_ok.then_some(date)
}

/// `+01:00`, `-05:30`.
fn is_zone_offset(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 6
        && matches!(bytes[0], b'+' | b'-')
        && bytes[3] == b':'
        && [1, 2, 4, 5].iter().all(|&i| bytes[i].is_ascii_digit())
}

fn required_text<'a>(element: &'a Element, path: &str, name: &str) -> Result<&'a str> {
    element
        .text_at(name)
        .ok_or_else(|| missing(element, path, name))
}

fn missing(parent: &Element, path: &str, name: &str) -> StatementError {
    StatementError::new(
        "missing_element",
        format!("{path} (line {})", parent.line),
        format!("{name} is missing"),
    )
}

fn bad_value(
    parent: &Element,
    path: &str,
    name: &str,
    value: &str,
    expected: &str,
) -> StatementError {
    let line = parent
        .find(name)
        .map_or(parent.line, |element| element.line);
    StatementError::new(
        "value",
        format!("{path}/{name} (line {line})"),
        format!("'{value}' is not {expected}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_banks_write_them() {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(iso_date("2024-03-05", false), date(2024, 3, 5));
        assert_eq!(iso_date("2024-03-05+01:00", false), date(2024, 3, 5));
        assert_eq!(iso_date("2024-03-05Z", false), date(2024, 3, 5));
        assert_eq!(
            iso_date("2024-03-05T23:59:59.123+01:00", true),
            date(2024, 3, 5)
        );
        assert_eq!(iso_date("2024-03-05T10:00:00", false), None);
        assert_eq!(iso_date("2024-02-30", false), None);
        assert_eq!(iso_date("05/03/2024", false), None);
        assert_eq!(iso_date("2024-3-5", false), None);
        assert_eq!(iso_date("2024-03-05", true), None);
        assert_eq!(iso_date("2024-03-0€", false), None);
    }
}
